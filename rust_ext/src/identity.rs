//! Identity keys and domain-separated Ed25519 signatures.
//!
//! Every signature is over `SIGNATURE_DOMAIN ‖ len(label) ‖ label ‖ message`, so a
//! signature made in one role (say, answering a registration challenge) can never be
//! accepted in another (say, a node answer). Labels are short fixed strings chosen by
//! nymchat's code, never by a peer.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey as AgreementPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Prefix of every signed transcript: nymchat's signatures are never valid elsewhere.
pub const SIGNATURE_DOMAIN: &[u8] = b"nymchat-sig-v1\x00";
/// Bytes of an Ed25519 or X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Secret material of an identity: Ed25519 seed ‖ X25519 secret.
pub const SECRET_LEN: usize = 64;
/// Longest label (signature role or envelope context), in bytes.
pub const MAX_LABEL_LEN: usize = 64;

/// Checks a label (signature role or envelope context): 1–64 bytes of `[a-z0-9._/-]`.
pub fn check_label(label: &str) -> Result<()> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b);
    if label.is_empty() || label.len() > MAX_LABEL_LEN || !label.bytes().all(ok_char) {
        return Err(Error::InvalidArgument(format!(
            "label {label:?} must be 1-{MAX_LABEL_LEN} characters of [a-z0-9._/-]"
        )));
    }
    Ok(())
}

/// The exact bytes an Ed25519 signature covers for `label` and `message`.
pub fn signed_bytes(label: &str, message: &[u8]) -> Result<Vec<u8>> {
    check_label(label)?;
    let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 1 + label.len() + message.len());
    out.extend_from_slice(SIGNATURE_DOMAIN);
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

/// A user's (or node's) long-term keys: Ed25519 for signing, X25519 for key agreement.
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
    agreement_public: AgreementPublic,
}

impl Identity {
    /// A fresh identity from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let secret = Zeroizing::new(crate::random_bytes::<SECRET_LEN>()?);
        Self::from_secret(secret.as_slice())
    }

    /// Restores an identity from `secret_bytes()` output.
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() != SECRET_LEN {
            return Err(Error::BadKey("identity secret must be 64 bytes"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut agreement = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&secret[..32]);
        agreement.copy_from_slice(&secret[32..]);
        let agreement = StaticSecret::from(*agreement);
        let agreement_public = AgreementPublic::from(&agreement);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            agreement,
            agreement_public,
        })
    }

    /// The secret keys (Ed25519 seed ‖ X25519 secret), the input of `from_secret`.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_LEN]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.agreement.as_bytes());
        out
    }

    /// The Ed25519 public key: who this identity is.
    pub fn signing_public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    /// The X25519 public key, to which envelopes are sealed.
    pub fn agreement_public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.agreement_public.to_bytes()
    }

    pub(crate) fn agreement_secret(&self) -> &StaticSecret {
        &self.agreement
    }

    /// Signs `message` in the role `label` (domain-separated, see the module header).
    pub fn sign(&self, label: &str, message: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        Ok(self.signing.sign(&signed_bytes(label, message)?).to_bytes())
    }
}

/// A checked Ed25519 public key, kept decompressed between verifications.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

/// Whether 32 bytes are a public key to ed25519-dalek's `VerifyingKey::from_bytes` alone,
/// without the checks of `PublicKey::from_bytes`: how a nym-client reads the keys of a Nym
/// address (a y of p or more is reduced, weak keys pass).
pub fn decompresses(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    VerifyingKey::from_bytes(bytes).is_ok()
}

impl PublicKey {
    /// Rejects encodings that are not curve points and weak (small-order) keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::BadKey("public key must be 32 bytes"))?;
        // RFC 8032 §5.1.3: a y coordinate of p or more does not decode. Decompression would
        // reduce it, giving a second encoding of a point (found by the KATs, kat_ed25519.json).
        if !canonical_y(bytes) {
            return Err(Error::BadKey("non-canonical Ed25519 point encoding"));
        }
        let key =
            VerifyingKey::from_bytes(bytes).map_err(|_| Error::BadKey("not an Ed25519 point"))?;
        if key.is_weak() {
            return Err(Error::BadKey("weak Ed25519 key"));
        }
        Ok(Self(key))
    }

    /// The 32-byte encoding of the key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.to_bytes()
    }

    /// `Ok` only if `signature` signs `message` in the role `label` under this key.
    pub fn verify(&self, label: &str, message: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_raw(&signed_bytes(label, message)?, signature)
    }

    /// Plain Ed25519 (strict) over `message` as given, without the domain prefix: what
    /// `verify` does after building the signed bytes. Public for the known-answer tests
    /// (rust_ext/tests/kat.rs); protocol code verifies with a label through `verify`.
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let signature = parse_signature(signature)?;
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| Error::BadSignature)
    }
}

fn parse_signature(signature: &[u8]) -> Result<Signature> {
    let bytes: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| Error::BadSignature)?;
    Ok(Signature::from_bytes(bytes))
}

/// One item of a batch: who signed, in which role, what, and the signature.
pub struct SignedItem<'a> {
    /// The signer's key.
    pub key: &'a PublicKey,
    /// The role the signature was made in.
    pub label: &'a str,
    /// What was signed (without the domain prefix).
    pub message: &'a [u8],
    /// The signature, checked for its length here.
    pub signature: &'a [u8],
}

/// y-coordinates (little-endian) of the eight points of small order: the identity (1),
/// order 2 (p - 1), order 4 (0) and order 8 (±y8).
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether `R` can pass `verify_strict`, judged from its encoding alone: `y` below the
/// field prime (canonical) and not a point of small order. The batch equation checks
/// neither; decompressing every `R` instead would add half to the cost of a batch.
fn strict_r(signature: &Signature) -> bool {
    let mut y = *signature.r_bytes();
    y[31] &= 0x7f;
    canonical_y(&y) && !SMALL_ORDER_Y.contains(&y)
}

/// Whether the y coordinate of a point encoding (the sign bit of x ignored) is below p.
fn canonical_y(encoding: &[u8; 32]) -> bool {
    let high = encoding[31] & 0x7f;
    let at_least_p =
        high == 0x7f && encoding[1..31].iter().all(|&b| b == 0xff) && encoding[0] >= 0xed;
    !at_least_p
}

/// Verifies many signatures, returning one verdict per item, the same as `verify` gives
/// for each (see docs/PROTOCOL.md for the one kind of signature where they can differ).
///
/// The fast path is one batch equation for all items; only when it fails, or an item
/// has an `R` that `verify_strict` would refuse, is each item checked alone.
pub fn verify_batch(items: &[SignedItem<'_>]) -> Result<Vec<bool>> {
    let mut transcripts = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    let mut well_formed = true;
    for item in items {
        transcripts.push(signed_bytes(item.label, item.message)?);
        match parse_signature(item.signature) {
            Ok(sig) if strict_r(&sig) => signatures.push(sig),
            _ => well_formed = false,
        }
        keys.push(item.key.0);
    }
    if well_formed {
        let messages: Vec<&[u8]> = transcripts.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return Ok(vec![true; items.len()]);
        }
    }
    Ok(items
        .iter()
        .map(|item| {
            item.key
                .verify(item.label, item.message, item.signature)
                .is_ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use sha2::Digest;

    #[test]
    fn signatures_are_bound_to_their_label() {
        let id = Identity::generate().unwrap();
        let key = PublicKey::from_bytes(&id.signing_public()).unwrap();
        let sig = id.sign("node-answer", b"hello").unwrap();
        assert!(key.verify("node-answer", b"hello", &sig).is_ok());
        assert_eq!(
            key.verify("challenge", b"hello", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            key.verify("node-answer", b"hellO", &sig),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn label_and_message_boundary_is_unambiguous() {
        // "ab" + "c..." must not sign the same bytes as "abc" + "...".
        assert_ne!(
            signed_bytes("ab", b"cd").unwrap(),
            signed_bytes("abc", b"d").unwrap()
        );
    }

    #[test]
    fn bad_labels_are_refused() {
        for label in ["", "UPPER", "with space", "nul\0", &"x".repeat(65)] {
            assert!(
                matches!(check_label(label), Err(Error::InvalidArgument(_))),
                "{label:?}"
            );
        }
    }

    #[test]
    fn secret_round_trip_keeps_both_keys() {
        let id = Identity::generate().unwrap();
        let again = Identity::from_secret(id.secret_bytes().as_ref()).unwrap();
        assert_eq!(id.signing_public(), again.signing_public());
        assert_eq!(id.agreement_public(), again.agreement_public());
        assert!(Identity::from_secret(&[0u8; 63]).is_err());
    }

    #[test]
    fn weak_and_malformed_keys_are_refused() {
        // The identity point (small order) and a wrong length.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert!(PublicKey::from_bytes(&identity_point).is_err());
        assert!(PublicKey::from_bytes(&[1u8; 31]).is_err());
    }

    /// Regression (kat_ed25519.json): y = p + 2..p + 18 are second encodings of curve
    /// points; decompression accepted them, RFC 8032 refuses them.
    #[test]
    fn non_canonical_keys_are_refused() {
        let mut refused = 0;
        for low in 0xed..=0xffu8 {
            for sign in [0u8, 0x80] {
                let mut e = [0xffu8; 32];
                e[0] = low;
                e[31] = 0x7f | sign;
                if CompressedEdwardsY(e).decompress().is_some() {
                    assert!(PublicKey::from_bytes(&e).is_err(), "{e:02x?}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 4);
    }

    /// A Nym address key is read as a nym-client reads it: the same non-canonical
    /// encodings decompress (y = p + 1 is the identity point), and random bytes fail about
    /// half the time.
    #[test]
    fn nym_keys_are_whatever_decompresses() {
        let mut p_plus_one = [0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        assert!(decompresses(&p_plus_one) && PublicKey::from_bytes(&p_plus_one).is_err());
        let mut state = [7u8; 32];
        let points = (0..400)
            .filter(|_| {
                state = sha2::Sha256::digest(state).into();
                decompresses(&state)
            })
            .count();
        assert!((120..280).contains(&points), "{points}");
    }

    /// The encoding-only test agrees with decompressing: on every point that decompresses,
    /// `strict_r` is true exactly when the point is canonical and not of small order.
    #[test]
    fn strict_r_matches_decompression() {
        let mut encodings: Vec<[u8; 32]> = Vec::new();
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut e = y;
                e[31] |= sign;
                encodings.push(e);
            }
        }
        for low in 0xe0..=0xffu8 {
            let mut e = [0xffu8; 32];
            e[0] = low;
            encodings.push(e); // around and above p, both signs
            e[31] = 0x7f;
            encodings.push(e);
        }
        for n in 0..2000u32 {
            encodings.push(sha2::Sha256::digest(n.to_be_bytes()).into());
        }
        let id = Identity::generate().unwrap();
        for n in 0..50u32 {
            let sig = id.sign("t", &n.to_be_bytes()).unwrap();
            encodings.push(sig[..32].try_into().unwrap());
        }
        let mut checked = 0;
        for e in encodings {
            let compressed = CompressedEdwardsY(e);
            let Some(point) = compressed.decompress() else {
                continue;
            };
            let mut bytes = [0u8; 64];
            bytes[..32].copy_from_slice(&e);
            let expected = !point.is_small_order() && point.compress() == compressed;
            assert_eq!(
                strict_r(&Signature::from_bytes(&bytes)),
                expected,
                "{e:02x?}"
            );
            checked += 1;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn batch_names_the_bad_items() {
        let ids: Vec<Identity> = (0..8).map(|_| Identity::generate().unwrap()).collect();
        let keys: Vec<PublicKey> = ids
            .iter()
            .map(|id| PublicKey::from_bytes(&id.signing_public()).unwrap())
            .collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Vec<u8>> = ids
            .iter()
            .zip(&messages)
            .map(|(id, m)| id.sign("t", m).unwrap().to_vec())
            .collect();
        let items = |sigs: &[Vec<u8>]| -> Vec<bool> {
            let items: Vec<SignedItem> = (0..8)
                .map(|i| SignedItem {
                    key: &keys[i],
                    label: "t",
                    message: &messages[i],
                    signature: &sigs[i],
                })
                .collect();
            verify_batch(&items).unwrap()
        };
        assert_eq!(items(&sigs), vec![true; 8]);
        sigs[3][0] ^= 1;
        sigs[6].truncate(10);
        let verdicts = items(&sigs);
        assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 2);
        assert!(!verdicts[3] && !verdicts[6]);
    }
}
