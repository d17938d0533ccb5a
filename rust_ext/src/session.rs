//! End-to-end sessions between people: Olm (the double ratchet with 3DH session setup) from
//! the audited `vodozemac` crate, never our own ratchet. This module only adapts its types
//! to bytes: keys as 32 raw bytes, messages as `type ‖ body`, state as encrypted pickles.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{
    Account as OlmAccount, AccountPickle, OlmMessage, Session as OlmSession, SessionConfig,
    SessionPickle,
};

use crate::error::{Error, Result};

/// Type byte of a session-opening (pre-key) message on the wire.
pub const PRE_KEY: u8 = 0;
/// Type byte of a message in an established session.
pub const NORMAL: u8 = 1;

fn key(bytes: &[u8]) -> Result<Curve25519PublicKey> {
    Curve25519PublicKey::from_slice(bytes).map_err(|_| Error::BadKey("not a Curve25519 key"))
}

/// vodozemac shows a key id (a u64) only as unpadded base64 of its 8 big-endian bytes.
fn key_id(id: vodozemac::KeyId) -> Result<u64> {
    let mut raw = [0u8; 8];
    match STANDARD_NO_PAD.decode_slice(id.to_base64(), &mut raw) {
        Ok(8) => Ok(u64::from_be_bytes(raw)),
        _ => Err(Error::BadKey("a key id that is not 8 bytes of base64")),
    }
}

fn pickle_key(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| Error::InvalidArgument("a pickle key is 32 bytes".into()))
}

fn encode(message: &OlmMessage) -> Vec<u8> {
    let (kind, body) = message.to_parts();
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(if kind == 0 { PRE_KEY } else { NORMAL });
    out.extend_from_slice(&body);
    out
}

fn decode(message: &[u8]) -> Result<OlmMessage> {
    let (&kind, body) = message
        .split_first()
        .ok_or(Error::SessionBroken("empty session message"))?;
    if kind > NORMAL {
        return Err(Error::SessionBroken("unknown session message type"));
    }
    OlmMessage::from_parts(kind as usize, body)
        .map_err(|_| Error::SessionBroken("malformed session message"))
}

/// A device's session keys: a Curve25519 identity key, one-time keys and a fallback key.
pub struct Account(OlmAccount);

impl Default for Account {
    fn default() -> Self {
        Self(OlmAccount::new())
    }
}

impl Account {
    /// The account's identity key, published with the one-time keys.
    pub fn curve25519_key(&self) -> [u8; 32] {
        self.0.curve25519_key().to_bytes()
    }

    /// Makes `count` new one-time keys; returns all unpublished ones as (id, key).
    pub fn generate_one_time_keys(&mut self, count: usize) -> Result<Vec<(u64, [u8; 32])>> {
        self.0.generate_one_time_keys(count);
        self.one_time_keys()
    }

    /// The one-time keys not published yet, as (id, key) by id.
    pub fn one_time_keys(&self) -> Result<Vec<(u64, [u8; 32])>> {
        let mut keys = self
            .0
            .one_time_keys()
            .into_iter()
            .map(|(id, k)| Ok((key_id(id)?, k.to_bytes())))
            .collect::<Result<Vec<_>>>()?;
        keys.sort();
        Ok(keys)
    }

    /// Rotates the fallback key: the previous one stays usable for late messages, the one
    /// before it is forgotten.
    pub fn generate_fallback_key(&mut self) -> Result<(u64, [u8; 32])> {
        self.0.generate_fallback_key();
        self.fallback_key()?
            .ok_or(Error::BadKey("vodozemac made no fallback key"))
    }

    /// The fallback key while it is not published yet (vodozemac returns no other).
    pub fn fallback_key(&self) -> Result<Option<(u64, [u8; 32])>> {
        self.0
            .fallback_key()
            .into_iter()
            .next()
            .map(|(id, k)| Ok((key_id(id)?, k.to_bytes())))
            .transpose()
    }

    /// Marks the one-time and fallback keys as published: they are no longer returned.
    pub fn mark_keys_as_published(&mut self) {
        self.0.mark_keys_as_published();
    }

    /// Opens a session to a peer from their identity key and one of their one-time (or
    /// fallback) keys.
    pub fn outbound(&self, identity: &[u8], one_time_key: &[u8]) -> Result<Session> {
        self.0
            .create_outbound_session(
                SessionConfig::version_1(),
                key(identity)?,
                key(one_time_key)?,
            )
            .map(Session)
            .map_err(|_| Error::BadKey("cannot open a session with these keys"))
    }

    /// Accepts a session from a peer's first (pre-key) message; returns it and the
    /// plaintext. The one-time key it used is removed, so it can never be used again.
    pub fn inbound(&mut self, identity: &[u8], message: &[u8]) -> Result<(Session, Vec<u8>)> {
        let OlmMessage::PreKey(pre_key) = decode(message)? else {
            return Err(Error::SessionBroken("not a session-opening message"));
        };
        self.0
            .create_inbound_session(SessionConfig::version_1(), key(identity)?, &pre_key)
            .map(|created| (Session(created.session), created.plaintext))
            .map_err(|_| Error::SessionBroken("a session-opening message that opens none"))
    }

    /// The account's state, encrypted under the 32-byte key `with`.
    pub fn pickle(&self, with: &[u8]) -> Result<String> {
        Ok(self.0.pickle().encrypt(&pickle_key(with)?))
    }

    /// Restores an account from `pickle` made under the same key.
    pub fn from_pickle(pickle: &str, with: &[u8]) -> Result<Self> {
        AccountPickle::from_encrypted(pickle, &pickle_key(with)?)
            .map(|p| Self(OlmAccount::from_pickle(p)))
            .map_err(|_| Error::DecryptionFailed("account state does not open with this key"))
    }
}

/// A double-ratchet session with one peer.
pub struct Session(OlmSession);

impl Session {
    /// The session's id, the same on both sides.
    pub fn id(&self) -> String {
        self.0.session_id()
    }

    /// Encrypts the next message: session-opening until the peer has answered.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.0
            .encrypt(plaintext)
            .map(|m| encode(&m))
            .map_err(|_| Error::SessionBroken("the session cannot encrypt"))
    }

    /// Decrypts; out-of-order messages work within vodozemac's bound on skipped keys.
    pub fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        self.0
            .decrypt(&decode(message)?)
            .map_err(|_| Error::SessionBroken("a message that does not decrypt in it"))
    }

    /// Whether a pre-key message belongs to this session (a peer's retry).
    pub fn matches(&self, message: &[u8]) -> bool {
        match decode(message) {
            Ok(OlmMessage::PreKey(m)) => m.session_id() == self.0.session_id(),
            _ => false,
        }
    }

    /// The session's state, encrypted under the 32-byte key `with`.
    pub fn pickle(&self, with: &[u8]) -> Result<String> {
        Ok(self.0.pickle().encrypt(&pickle_key(with)?))
    }

    /// Restores a session from `pickle` made under the same key.
    pub fn from_pickle(pickle: &str, with: &[u8]) -> Result<Self> {
        SessionPickle::from_encrypted(pickle, &pickle_key(with)?)
            .map(|p| Self(OlmSession::from_pickle(p)))
            .map_err(|_| Error::SessionBroken("its state does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Account, Account, Session, Session) {
        let alice = Account::default();
        let mut bob = Account::default();
        let (_, otk) = bob.generate_one_time_keys(1).unwrap()[0];
        bob.mark_keys_as_published();
        let mut out = alice.outbound(&bob.curve25519_key(), &otk).unwrap();
        let first = out.encrypt(b"hello").unwrap();
        assert_eq!(first[0], PRE_KEY);
        let (inbound, plain) = bob.inbound(&alice.curve25519_key(), &first).unwrap();
        assert_eq!(plain, b"hello");
        (alice, bob, out, inbound)
    }

    #[test]
    fn sessions_ratchet_both_ways_and_out_of_order() {
        let (_, _, mut a, mut b) = pair();
        let reply = b.encrypt(b"hi back").unwrap();
        assert_eq!(reply[0], NORMAL);
        assert_eq!(a.decrypt(&reply).unwrap(), b"hi back");
        let m1 = a.encrypt(b"one").unwrap();
        let m2 = a.encrypt(b"two").unwrap();
        assert_eq!(b.decrypt(&m2).unwrap(), b"two");
        assert_eq!(b.decrypt(&m1).unwrap(), b"one");
        assert!(b.decrypt(&m1).is_err(), "a message key is used once");
    }

    #[test]
    fn a_one_time_key_opens_one_session_only() {
        let alice = Account::default();
        let mut bob = Account::default();
        let (_, otk) = bob.generate_one_time_keys(1).unwrap()[0];
        let mut first = alice.outbound(&bob.curve25519_key(), &otk).unwrap();
        let mut second = alice.outbound(&bob.curve25519_key(), &otk).unwrap();
        let one = first.encrypt(b"1").unwrap();
        let two = second.encrypt(b"2").unwrap();
        bob.inbound(&alice.curve25519_key(), &one).unwrap();
        assert!(bob.inbound(&alice.curve25519_key(), &two).is_err());
    }

    #[test]
    fn fallback_keys_open_sessions_when_one_time_keys_are_gone() {
        let alice = Account::default();
        let mut bob = Account::default();
        let (_, fallback) = bob.generate_fallback_key().unwrap();
        let mut out = alice.outbound(&bob.curve25519_key(), &fallback).unwrap();
        let message = out.encrypt(b"via fallback").unwrap();
        let (_, plain) = bob.inbound(&alice.curve25519_key(), &message).unwrap();
        assert_eq!(plain, b"via fallback");
    }

    #[test]
    fn state_pickles_only_open_with_their_key() {
        let (_, bob, mut a, b) = pair();
        let k = [7u8; 32];
        let pickled = b.pickle(&k).unwrap();
        assert!(Session::from_pickle(&pickled, &[8u8; 32]).is_err());
        let mut restored = Session::from_pickle(&pickled, &k).unwrap();
        let m = a.encrypt(b"after restore").unwrap();
        assert_eq!(restored.decrypt(&m).unwrap(), b"after restore");
        let account = Account::from_pickle(&bob.pickle(&k).unwrap(), &k).unwrap();
        assert_eq!(account.curve25519_key(), bob.curve25519_key());
    }

    #[test]
    fn hostile_messages_are_errors() {
        let (_, mut bob, _, mut b) = pair();
        for bad in [&b""[..], b"\x07abc", b"\x00", b"\x01\x00\x01\x02"] {
            assert!(b.decrypt(bad).is_err());
            assert!(bob.inbound(&[9u8; 32], bad).is_err());
        }
    }
}
