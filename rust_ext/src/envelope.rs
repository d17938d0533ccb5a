//! One-shot sealed envelopes: signed ones for control messages to and from a node, and
//! anonymous ones around the messages people send each other.
//!
//! X25519 (fresh ephemeral key, recipient's static key) → HKDF-SHA256 → AES-256-GCM.
//! In a signed envelope the sender's identity key signs the whole context inside the
//! ciphertext, so only the recipient learns who sent it, and the signature cannot be
//! re-used for another recipient, context or envelope. An anonymous envelope carries no
//! sender and no signature (it is deniable): whatever is inside must authenticate itself
//! (an Olm message does). Layout (see docs/PROTOCOL.md):
//!
//! ```text
//! envelope  = 0x01 ‖ ephemeral[32] ‖ message_id[16] ‖ AES-GCM(inner) ‖ tag[16]
//! ad        = envelope header ‖ len(context) ‖ context ‖ recipient[32]
//! inner     = sender[32] ‖ sign("envelope", ad ‖ sender ‖ plaintext)[64] ‖ plaintext
//! anonymous = 0x02 ‖ ephemeral[32] ‖ message_id[16] ‖ AES-GCM(plaintext) ‖ tag[16]
//! ```

use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::{Aes256Gcm, Key};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey as AgreementPublic, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::identity::{Identity, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN, check_label};

/// The signed envelope format's version byte.
pub const VERSION: u8 = 1;
/// The anonymous envelope format's version byte.
pub const ANONYMOUS_VERSION: u8 = 2;
/// Bytes of a message id.
pub const MESSAGE_ID_LEN: usize = 16;
/// Bytes of the cleartext header: version ‖ ephemeral key ‖ message id.
pub const HEADER_LEN: usize = 1 + PUBLIC_KEY_LEN + MESSAGE_ID_LEN;
/// Bytes of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + PUBLIC_KEY_LEN + SIGNATURE_LEN + TAG_LEN;
/// Bytes an anonymous envelope adds to its plaintext.
pub const ANONYMOUS_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
const KDF_INFO: &[u8] = b"nymchat-envelope-v1\x00";
const ANONYMOUS_KDF_INFO: &[u8] = b"nymchat-anonymous-envelope-v1\x00";
const SIGNATURE_LABEL: &str = "envelope";

/// What `open` hands back.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The sender's Ed25519 key, whose signature inside was checked.
    pub sender: [u8; PUBLIC_KEY_LEN],
    /// The message id from the (authenticated) header.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// What was sealed.
    pub plaintext: Vec<u8>,
}

fn associated_data(header: &[u8], context: &str, recipient: &[u8; 32]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(header.len() + 1 + context.len() + recipient.len());
    ad.extend_from_slice(header);
    ad.push(context.len() as u8);
    ad.extend_from_slice(context.as_bytes());
    ad.extend_from_slice(recipient);
    ad
}

/// X25519 as envelopes use it: `own_secret` times `peer`, refused when the result is all
/// zeros (a low-order `peer`, RFC 7748 §6.1). Public for the known-answer tests.
pub fn x25519_shared(own_secret: &StaticSecret, peer: &[u8; 32]) -> Result<SharedSecret> {
    let shared = own_secret.diffie_hellman(&AgreementPublic::from(*peer));
    if !shared.was_contributory() {
        return Err(Error::BadKey("low-order X25519 key"));
    }
    Ok(shared)
}

/// AES-256-GCM with a 96-bit nonce: encrypts `buffer` in place and returns the tag.
/// Public, with `aead_open_in_place`, for the known-answer tests.
pub fn aead_seal_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN]> {
    let tag = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(*nonce), ad, buffer.into())
        .map_err(|_| Error::InvalidArgument("plaintext too long".into()))?;
    Ok(tag.into())
}

/// Checks `tag` and decrypts `buffer` in place (AES-256-GCM, 96-bit nonce).
pub fn aead_open_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    buffer: &mut [u8],
    tag: &[u8],
) -> Result<()> {
    let tag = Tag::<Aes256Gcm>::try_from(tag)
        .map_err(|_| Error::DecryptionFailed("authentication failed"))?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .decrypt_inout_detached(&Nonce::<Aes256Gcm>::from(*nonce), ad, buffer.into(), &tag)
        .map_err(|_| Error::DecryptionFailed("authentication failed"))
}

/// The AEAD key and nonce of an envelope.
struct CipherKey {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 12],
}

/// Derives the AEAD key and nonce; `own_secret` is the ephemeral secret when sealing
/// and the recipient's static secret when opening, `peer` the other side's public key,
/// `kdf_info` the format's label.
fn cipher(
    own_secret: &StaticSecret,
    peer: &[u8; 32],
    ephemeral_public: &[u8; 32],
    recipient: &[u8; 32],
    context: &str,
    kdf_info: &[u8],
) -> Result<CipherKey> {
    let shared = x25519_shared(own_secret, peer)?;
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public);
    salt[32..].copy_from_slice(recipient);
    let mut info = Vec::with_capacity(kdf_info.len() + 1 + context.len());
    info.extend_from_slice(kdf_info);
    info.push(context.len() as u8);
    info.extend_from_slice(context.as_bytes());
    let mut okm = Zeroizing::new([0u8; 44]);
    Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes())
        .expand(&info, okm.as_mut())
        .map_err(|_| Error::InvalidArgument("HKDF-SHA256 cannot give 44 bytes".into()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    Ok(CipherKey { key, nonce })
}

fn read_key(bytes: &[u8], what: &'static str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| Error::BadKey(what))
}

fn kdf_info(version: u8) -> &'static [u8] {
    if version == ANONYMOUS_VERSION {
        ANONYMOUS_KDF_INFO
    } else {
        KDF_INFO
    }
}

/// The cleartext header of an envelope of format `version`, its associated data and its
/// cipher.
fn seal_header(
    version: u8,
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    ephemeral: StaticSecret,
) -> Result<(Vec<u8>, Vec<u8>, CipherKey)> {
    check_label(context)?;
    let recipient = read_key(recipient, "recipient key must be 32 bytes")?;
    let message_id: [u8; MESSAGE_ID_LEN] = message_id.try_into().map_err(|_| {
        Error::InvalidArgument(format!("message id must be {MESSAGE_ID_LEN} bytes"))
    })?;
    let ephemeral_public = AgreementPublic::from(&ephemeral).to_bytes();
    let aead = cipher(
        &ephemeral,
        &recipient,
        &ephemeral_public,
        &recipient,
        context,
        kdf_info(version),
    )?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.push(version);
    header.extend_from_slice(&ephemeral_public);
    header.extend_from_slice(&message_id);
    let ad = associated_data(&header, context, &recipient);
    Ok((header, ad, aead))
}

/// An envelope's body, decrypted, with what authenticated it.
struct Decrypted {
    message_id: [u8; MESSAGE_ID_LEN],
    body: Zeroizing<Vec<u8>>,
    ad: Vec<u8>,
}

/// Checks an envelope's length and version and decrypts it for `recipient`.
fn open_body(
    version: u8,
    minimum: usize,
    recipient: &Identity,
    context: &str,
    envelope: &[u8],
) -> Result<Decrypted> {
    check_label(context)?;
    if envelope.len() < minimum {
        return Err(Error::DecryptionFailed("too short"));
    }
    if envelope[0] != version {
        return Err(Error::DecryptionFailed("unknown envelope version"));
    }
    let (header, body) = envelope.split_at(HEADER_LEN);
    let ephemeral_public = read_key(&header[1..33], "ephemeral key")?;
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    message_id.copy_from_slice(&header[33..]);
    let recipient_public = recipient.agreement_public();
    let aead = cipher(
        recipient.agreement_secret(),
        &ephemeral_public,
        &ephemeral_public,
        &recipient_public,
        context,
        kdf_info(version),
    )
    .map_err(|_| Error::DecryptionFailed("bad ephemeral key"))?;
    let ad = associated_data(header, context, &recipient_public);
    let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
    let mut inner = Zeroizing::new(ciphertext.to_vec());
    aead_open_in_place(&aead.key, &aead.nonce, &ad, inner.as_mut_slice(), tag)?;
    Ok(Decrypted {
        message_id,
        body: inner,
        ad,
    })
}

/// Seals `plaintext` to the holder of the X25519 key `recipient`, with no sender: the
/// envelope of the messages people send each other (their Olm session inside says who
/// sent it, to the recipient only).
pub fn seal_anonymous(
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let ephemeral = StaticSecret::from(crate::random_bytes::<32>()?);
    seal_anonymous_with_ephemeral(recipient, context, message_id, plaintext, ephemeral)
}

/// `seal_anonymous` with a given ephemeral secret: for test vectors only.
pub fn seal_anonymous_with_ephemeral(
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
    ephemeral: StaticSecret,
) -> Result<Vec<u8>> {
    let (mut out, ad, aead) =
        seal_header(ANONYMOUS_VERSION, recipient, context, message_id, ephemeral)?;
    out.reserve(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    encrypt_body(out, &ad, &aead)
}

/// Encrypts what follows the header of `out` in place and appends the tag.
fn encrypt_body(mut out: Vec<u8>, ad: &[u8], aead: &CipherKey) -> Result<Vec<u8>> {
    let tag = aead_seal_in_place(&aead.key, &aead.nonce, ad, &mut out[HEADER_LEN..])?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens an anonymous envelope addressed to `recipient` in `context`: returns the message
/// id (authenticated) and the plaintext.
pub fn open_anonymous(
    recipient: &Identity,
    context: &str,
    envelope: &[u8],
) -> Result<([u8; MESSAGE_ID_LEN], Vec<u8>)> {
    let opened = open_body(
        ANONYMOUS_VERSION,
        ANONYMOUS_OVERHEAD,
        recipient,
        context,
        envelope,
    )?;
    Ok((opened.message_id, opened.body.to_vec()))
}

/// Seals `plaintext` from `sender` to the holder of the X25519 key `recipient`.
pub fn seal(
    sender: &Identity,
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let ephemeral = StaticSecret::from(crate::random_bytes::<32>()?);
    seal_with_ephemeral(sender, recipient, context, message_id, plaintext, ephemeral)
}

/// `seal` with a given ephemeral secret: for test vectors only.
pub fn seal_with_ephemeral(
    sender: &Identity,
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
    ephemeral: StaticSecret,
) -> Result<Vec<u8>> {
    let (mut out, ad, aead) = seal_header(VERSION, recipient, context, message_id, ephemeral)?;
    out.reserve(OVERHEAD - HEADER_LEN + plaintext.len());

    let sender_public = sender.signing_public();
    let mut signed = Vec::with_capacity(ad.len() + PUBLIC_KEY_LEN + plaintext.len());
    signed.extend_from_slice(&ad);
    signed.extend_from_slice(&sender_public);
    signed.extend_from_slice(plaintext);
    let signature = sender.sign(SIGNATURE_LABEL, &signed)?;

    out.extend_from_slice(&sender_public);
    out.extend_from_slice(&signature);
    out.extend_from_slice(plaintext);
    encrypt_body(out, &ad, &aead)
}

/// Opens an envelope addressed to `recipient` in `context`. With `expected_sender`,
/// an envelope signed by any other key is refused.
pub fn open(
    recipient: &Identity,
    context: &str,
    envelope: &[u8],
    expected_sender: Option<&[u8]>,
) -> Result<Opened> {
    let Decrypted {
        message_id,
        body: inner,
        ad,
    } = open_body(VERSION, OVERHEAD, recipient, context, envelope)?;

    let (sender, rest) = inner.split_at(PUBLIC_KEY_LEN);
    let (signature, plaintext) = rest.split_at(SIGNATURE_LEN);
    if let Some(expected) = expected_sender {
        if expected != sender {
            return Err(Error::DecryptionFailed("sent by an unexpected key"));
        }
    }
    let mut signed = Vec::with_capacity(ad.len() + PUBLIC_KEY_LEN + plaintext.len());
    signed.extend_from_slice(&ad);
    signed.extend_from_slice(sender);
    signed.extend_from_slice(plaintext);
    PublicKey::from_bytes(sender)?.verify(SIGNATURE_LABEL, &signed, signature)?;

    Ok(Opened {
        sender: read_key(sender, "sender key")?,
        message_id,
        plaintext: plaintext.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [7u8; 16];

    fn pair() -> (Identity, Identity) {
        (Identity::generate().unwrap(), Identity::generate().unwrap())
    }

    #[test]
    fn round_trip() {
        let (alice, node) = pair();
        let env = seal(&alice, &node.agreement_public(), "to-node", &ID, b"hello").unwrap();
        assert_eq!(env.len(), OVERHEAD + 5);
        let opened = open(&node, "to-node", &env, Some(&alice.signing_public())).unwrap();
        assert_eq!(opened.plaintext, b"hello");
        assert_eq!(opened.sender, alice.signing_public());
        assert_eq!(opened.message_id, ID);
    }

    #[test]
    fn wrong_recipient_context_or_sender_fails() {
        let (alice, node) = pair();
        let mallory = Identity::generate().unwrap();
        let env = seal(&alice, &node.agreement_public(), "to-node", &ID, b"hello").unwrap();
        assert!(matches!(
            open(&mallory, "to-node", &env, None),
            Err(Error::DecryptionFailed(_))
        ));
        assert!(matches!(
            open(&node, "from-node", &env, None),
            Err(Error::DecryptionFailed(_))
        ));
        assert!(matches!(
            open(&node, "to-node", &env, Some(&mallory.signing_public())),
            Err(Error::DecryptionFailed(_))
        ));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let (alice, node) = pair();
        let env = seal(&alice, &node.agreement_public(), "ctx", &ID, b"pay").unwrap();
        for i in 0..env.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = env.clone();
                bad[i] ^= bit;
                assert!(
                    open(&node, "ctx", &bad, None).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        for cut in 0..env.len() {
            assert!(open(&node, "ctx", &env[..cut], None).is_err());
        }
    }

    #[test]
    fn low_order_recipient_key_is_refused() {
        let alice = Identity::generate().unwrap();
        assert!(matches!(
            seal(&alice, &[0u8; 32], "ctx", &ID, b"x"),
            Err(Error::BadKey(_))
        ));
    }

    #[test]
    fn anonymous_round_trip_carries_no_sender() {
        let (_, bob) = pair();
        let env = seal_anonymous(&bob.agreement_public(), "message", &ID, b"hello").unwrap();
        assert_eq!(env.len(), ANONYMOUS_OVERHEAD + 5);
        assert_eq!(env[0], ANONYMOUS_VERSION);
        let (id, plaintext) = open_anonymous(&bob, "message", &env).unwrap();
        assert_eq!((id, plaintext.as_slice()), (ID, &b"hello"[..]));
    }

    #[test]
    fn anonymous_and_signed_envelopes_do_not_open_as_each_other() {
        let (alice, bob) = pair();
        let anonymous = seal_anonymous(&bob.agreement_public(), "ctx", &ID, &[0u8; 200]).unwrap();
        assert!(open(&bob, "ctx", &anonymous, None).is_err());
        let signed = seal(&alice, &bob.agreement_public(), "ctx", &ID, b"x").unwrap();
        assert!(open_anonymous(&bob, "ctx", &signed).is_err());
        let mut relabelled = signed.clone();
        relabelled[0] = ANONYMOUS_VERSION;
        assert!(open_anonymous(&bob, "ctx", &relabelled).is_err());
    }

    #[test]
    fn every_flipped_bit_of_an_anonymous_envelope_is_detected() {
        let (mallory, bob) = pair();
        let env = seal_anonymous(&bob.agreement_public(), "ctx", &ID, b"pay").unwrap();
        for i in 0..env.len() {
            let mut bad = env.clone();
            bad[i] ^= 0x01;
            assert!(open_anonymous(&bob, "ctx", &bad).is_err(), "byte {i}");
        }
        for cut in 0..env.len() {
            assert!(open_anonymous(&bob, "ctx", &env[..cut]).is_err());
        }
        assert!(open_anonymous(&mallory, "ctx", &env).is_err());
        assert!(open_anonymous(&bob, "other", &env).is_err());
    }

    #[test]
    fn message_id_must_be_16_bytes() {
        let (alice, node) = pair();
        let err = seal(&alice, &node.agreement_public(), "ctx", &[1, 2], b"x");
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
    }
}
