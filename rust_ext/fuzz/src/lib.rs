//! Fixtures shared by the fuzz targets and by `examples/make_seeds.rs`, which writes the seed
//! corpus (`corpus/<target>/`) and the Olm state (`state/`) the targets load.

use std::sync::OnceLock;

use nymchat_native::identity::Identity;

/// The key that encrypts the Olm pickles in `state/` and in the `pickle` corpus.
pub const PICKLE_KEY: [u8; 32] = [0x5a; 32];

/// Envelope contexts the targets pick from (the first byte of an input chooses).
pub const CONTEXTS: [&str; 4] = ["to-node", "from-node", "self-test", "a"];

/// Signature labels the targets pick from.
pub const LABELS: [&str; 4] = ["envelope", "node-answer", "one-time-key", "t"];

/// The recipient of the `envelope_open` target: fixed, so seeds sealed to it stay valid.
pub fn recipient() -> Identity {
    Identity::from_secret(&[[0x11; 32], [0x22; 32]].concat()).expect("64 bytes")
}

/// The sender of the `envelope_open` seeds and the signer of `public_key_and_signature`.
pub fn sender() -> Identity {
    Identity::from_secret(&[[0x33; 32], [0x44; 32]].concat()).expect("64 bytes")
}

/// Bob's side of one Olm conversation with Alice, as `make_seeds` left it: his account
/// with unused one-time keys (the `olm_message` pre-key seeds use them) and his session
/// before the normal-message seeds were decrypted.
pub struct OlmState {
    pub account: String,
    pub session: String,
    pub alice_curve25519: Vec<u8>,
}

pub fn state_dir() -> String {
    format!("{}/state", env!("CARGO_MANIFEST_DIR"))
}

pub fn olm_state() -> &'static OlmState {
    static STATE: OnceLock<OlmState> = OnceLock::new();
    STATE.get_or_init(|| {
        let read = |name: &str| {
            let path = format!("{}/{name}", state_dir());
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run make_seeds)"))
        };
        OlmState {
            account: String::from_utf8(read("account.pickle")).expect("utf-8"),
            session: String::from_utf8(read("session.pickle")).expect("utf-8"),
            alice_curve25519: read("alice_curve25519.bin"),
        }
    })
}
