//! `PublicKey::from_bytes`, `PublicKey::verify` / `verify_raw` and `identity::verify_batch`
//! on arbitrary keys and signatures, plus bit flips of a real signature.
//!
//! Input: `mode ‖ key[32] ‖ signature[64] ‖ message`. Mode bits 0-1 choose the label;
//! bit 2 makes the signature length `mode >> 3` instead of 64; bit 7 switches to flip
//! mode: the fixed sender signs the message and `key ‖ signature` (96 bytes) is XORed
//! into `public key ‖ signature`.
//!
//! Invariants: no panic; a key that loads encodes back to the same bytes; `verify` and
//! `verify_raw` of the signed bytes agree; `verify_batch` gives the same verdict as
//! `verify` for the item alone and beside a good item (which stays valid); in flip
//! mode, the signature verifies exactly when nothing was flipped (strict Ed25519 is not
//! malleable).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nymchat_native::identity::{self, Identity, PublicKey, SignedItem};
use nymchat_native_fuzz::{LABELS, sender};

struct Good {
    identity: Identity,
    key: PublicKey,
    signature: [u8; 64],
}

fn good() -> &'static Good {
    static GOOD: OnceLock<Good> = OnceLock::new();
    GOOD.get_or_init(|| {
        let identity = sender();
        let key = PublicKey::from_bytes(&identity.signing_public()).expect("a real key");
        let signature = identity.sign("t", b"fine").expect("label is valid");
        Good {
            identity,
            key,
            signature,
        }
    })
}

fn verdicts(key: &PublicKey, label: &str, message: &[u8], signature: &[u8]) -> bool {
    let single = key.verify(label, message, signature).is_ok();
    let raw = identity::signed_bytes(label, message).expect("label is valid");
    assert_eq!(key.verify_raw(&raw, signature).is_ok(), single);
    let item = SignedItem {
        key,
        label,
        message,
        signature,
    };
    assert_eq!(identity::verify_batch(&[item]), Ok(vec![single]));
    let good = good();
    let items = [
        SignedItem {
            key,
            label,
            message,
            signature,
        },
        SignedItem {
            key: &good.key,
            label: "t",
            message: b"fine",
            signature: &good.signature,
        },
    ];
    assert_eq!(identity::verify_batch(&items), Ok(vec![single, true]));
    single
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + 32 + 64 {
        return;
    }
    let (mode, key, signature, message) = (data[0], &data[1..33], &data[33..97], &data[97..]);
    let label = LABELS[usize::from(mode & 3)];
    if mode & 0x80 == 0 {
        let signature = if mode & 4 != 0 {
            &signature[..usize::from(mode >> 3).min(64)]
        } else {
            signature
        };
        if let Ok(loaded) = PublicKey::from_bytes(key) {
            assert_eq!(loaded.to_bytes(), key);
            verdicts(&loaded, label, message, signature);
        }
        return;
    }
    let good = good();
    let real = good.identity.sign(label, message).expect("label is valid");
    let mut public = good.identity.signing_public();
    let mut flipped = real;
    public.iter_mut().zip(key).for_each(|(b, m)| *b ^= m);
    flipped.iter_mut().zip(signature).for_each(|(b, m)| *b ^= m);
    let unchanged = public == good.identity.signing_public() && flipped == real;
    let Ok(loaded) = PublicKey::from_bytes(&public) else {
        assert!(!unchanged, "the real key does not load");
        return;
    };
    assert_eq!(verdicts(&loaded, label, message, &flipped), unchanged);
});
