//! Known-answer tests of the primitives under the core, through the functions the core
//! itself calls: `PublicKey::from_bytes` + `PublicKey::verify_raw` (Ed25519, strict),
//! `envelope::x25519_shared` (X25519 with the all-zero check) and
//! `envelope::aead_seal_in_place` / `aead_open_in_place` (AES-256-GCM). The vectors,
//! tests/vectors/kat_*.json, are Wycheproof-shaped and written by scripts/make_kat.py from
//! published test vectors and an independent implementation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::{array, bytes, cases, list, load, text};
use ed25519_dalek::{Signer, SigningKey};
use nymchat_native::envelope;
use nymchat_native::error::Error;
use nymchat_native::identity::{Identity, PublicKey};
use serde_json::Value;
use x25519_dalek::StaticSecret;

fn flagged(test: &Value, flag: &str) -> bool {
    list(test, "flags").iter().any(|f| f.as_str() == Some(flag))
}

fn valid(test: &Value) -> bool {
    match text(test, "result") {
        "valid" => true,
        "invalid" => false,
        other => panic!("result {other:?} in {test}"),
    }
}

/// Runs `check` on every test of `file` (with its group) and returns how many ran, after
/// checking the tcIds are 1..=numberOfTests and that there are at least `minimum`.
fn each_test(file: &str, minimum: usize, mut check: impl FnMut(&Value, &Value, &str)) {
    let doc = load(file);
    let mut count = 0;
    for group in cases(&doc, "testGroups") {
        for test in cases(group, "tests") {
            count += 1;
            assert_eq!(
                test["tcId"].as_u64(),
                Some(count as u64),
                "{file}: tcIds in order"
            );
            let what = format!("{file} tcId {count}: {}", text(test, "comment"));
            check(group, test, &what);
        }
    }
    assert_eq!(doc["numberOfTests"].as_u64(), Some(count as u64), "{file}");
    assert!(
        count >= minimum,
        "{file}: {count} tests, expected at least {minimum}"
    );
}

const KEY_FLAGS: [&str; 3] = [
    "SmallOrderPublicKey",
    "NonCanonicalPublicKey",
    "InvalidPublicKey",
];

#[test]
fn ed25519_known_answers() {
    let mut valid_count = 0;
    each_test("kat_ed25519.json", 60, |group, test, what| {
        let key = &group["key"];
        let (public, message, signature) =
            (bytes(key, "pk"), bytes(test, "msg"), bytes(test, "sig"));
        if key.get("sk").is_some() {
            let seed: [u8; 32] = array(key, "sk");
            let identity = Identity::from_secret(&[seed, [0u8; 32]].concat()).unwrap();
            assert_eq!(identity.signing_public().to_vec(), public, "{what}");
            if valid(test) {
                let signed = SigningKey::from_bytes(&seed).sign(&message).to_bytes();
                assert_eq!(signed.to_vec(), signature, "{what}: signing");
            }
        }
        let loaded = PublicKey::from_bytes(&public);
        if KEY_FLAGS.iter().any(|flag| flagged(test, flag)) {
            assert!(!valid(test), "{what}");
            assert!(
                matches!(loaded, Err(Error::BadKey(_))),
                "{what}: {loaded:?}"
            );
            return;
        }
        let loaded = loaded.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(loaded.to_bytes().to_vec(), public, "{what}");
        let verdict = loaded.verify_raw(&message, &signature);
        if valid(test) {
            valid_count += 1;
            assert_eq!(verdict, Ok(()), "{what}");
        } else {
            assert_eq!(verdict, Err(Error::BadSignature), "{what}");
        }
    });
    assert!(valid_count >= 8);
}

#[test]
fn x25519_known_answers() {
    let mut refused = 0;
    each_test("kat_x25519.json", 35, |_, test, what| {
        let private = StaticSecret::from(array::<32>(test, "private"));
        let got = envelope::x25519_shared(&private, &array(test, "public"));
        if valid(test) {
            let shared = got.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(shared.as_bytes().to_vec(), bytes(test, "shared"), "{what}");
        } else {
            assert!(flagged(test, "ZeroSharedSecret"), "{what}");
            assert_eq!(bytes(test, "shared"), [0u8; 32], "{what}");
            assert!(matches!(got, Err(Error::BadKey(_))), "{what}");
            refused += 1;
        }
    });
    assert!(refused >= 10);
}

#[test]
fn aes_gcm_known_answers() {
    let mut tampered = 0;
    each_test("kat_aes_gcm.json", 30, |group, test, what| {
        assert_eq!(
            (group["keySize"].as_u64(), group["ivSize"].as_u64()),
            (Some(256), Some(96))
        );
        let (key, iv) = (array::<32>(test, "key"), array::<12>(test, "iv"));
        let (aad, msg, ct, tag) = (
            bytes(test, "aad"),
            bytes(test, "msg"),
            bytes(test, "ct"),
            bytes(test, "tag"),
        );
        let mut buffer = ct.clone();
        let opened = envelope::aead_open_in_place(&key, &iv, &aad, &mut buffer, &tag);
        if valid(test) {
            assert_eq!(opened, Ok(()), "{what}");
            assert_eq!(buffer, msg, "{what}: plaintext");
            let mut buffer = msg.clone();
            let sealed_tag = envelope::aead_seal_in_place(&key, &iv, &aad, &mut buffer).unwrap();
            assert_eq!(buffer, ct, "{what}: ciphertext");
            assert_eq!(sealed_tag.to_vec(), tag, "{what}: tag");
        } else {
            assert!(
                matches!(opened, Err(Error::DecryptionFailed(_))),
                "{what}: {opened:?}"
            );
            tampered += 1;
        }
    });
    assert!(tampered >= 10);
}
