//! The Rust core against the vectors in tests/vectors/, which scripts/make_vectors.py
//! writes from the independent Python reference (tests/reference_crypto.py).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use common::{array, bytes, cases as list, load, number, text};
use nymchat_native::envelope;
use nymchat_native::error::Error;
use nymchat_native::framing::{self, FRAME_SIZE};
use nymchat_native::identity::{self, Identity, PublicKey, SignedItem};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x25519_dalek::StaticSecret;

fn identity(seed: &[u8], x25519_secret: &[u8]) -> Identity {
    Identity::from_secret(&[seed, x25519_secret].concat()).unwrap()
}

#[test]
fn signatures_match_and_verify() {
    let file = load("signatures.json");
    for v in list(&file, "vectors") {
        let what = text(v, "description");
        let (label, message) = (text(v, "label"), bytes(v, "message"));
        let id = identity(&bytes(v, "seed"), &[0u8; 32]);
        assert_eq!(
            id.signing_public().to_vec(),
            bytes(v, "public_key"),
            "{what}"
        );
        assert_eq!(
            identity::signed_bytes(label, &message).unwrap(),
            bytes(v, "signed_bytes"),
            "{what}"
        );
        let signature = id.sign(label, &message).unwrap();
        assert_eq!(hex::encode(signature), text(v, "signature"), "{what}");
        let key = PublicKey::from_bytes(&bytes(v, "public_key")).unwrap();
        key.verify(label, &message, &signature)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

#[test]
fn invalid_signatures_are_refused() {
    let file = load("signatures.json");
    for v in list(&file, "invalid") {
        let what = text(v, "description");
        let (label, message, signature) =
            (text(v, "label"), bytes(v, "message"), bytes(v, "signature"));
        match (
            PublicKey::from_bytes(&bytes(v, "public_key")),
            text(v, "error"),
        ) {
            (Err(Error::BadKey(_)), "key") => {}
            (Ok(key), "signature") => assert_eq!(
                key.verify(label, &message, &signature),
                Err(Error::BadSignature),
                "{what}"
            ),
            (got, error) => panic!("{what}: expected {error} error, loading the key gave {got:?}"),
        }
    }
}

#[test]
fn invalid_signatures_are_refused_in_a_batch() {
    let file = load("signatures.json");
    let good = identity(&[7u8; 32], &[0u8; 32]);
    let good_key = PublicKey::from_bytes(&good.signing_public()).unwrap();
    let good_signature = good.sign("t", b"fine").unwrap();
    for v in list(&file, "invalid") {
        let Ok(key) = PublicKey::from_bytes(&bytes(v, "public_key")) else {
            continue;
        };
        let what = text(v, "description");
        let (message, signature) = (bytes(v, "message"), bytes(v, "signature"));
        let items = [
            SignedItem {
                key: &key,
                label: text(v, "label"),
                message: &message,
                signature: &signature,
            },
            SignedItem {
                key: &good_key,
                label: "t",
                message: b"fine",
                signature: &good_signature,
            },
        ];
        let alone = identity::verify_batch(&items[..1]).unwrap();
        assert_eq!(alone, [false], "{what}");
        assert_eq!(
            identity::verify_batch(&items).unwrap(),
            [false, true],
            "{what}"
        );
    }
}

#[test]
fn envelopes_match_and_open() {
    let file = load("envelopes.json");
    for v in list(&file, "vectors") {
        let what = text(v, "description");
        let sender = identity(&bytes(v, "sender_seed"), &[0u8; 32]);
        let recipient = identity(
            &bytes(v, "recipient_seed"),
            &bytes(v, "recipient_x25519_secret"),
        );
        assert_eq!(
            sender.signing_public().to_vec(),
            bytes(v, "sender_public"),
            "{what}"
        );
        assert_eq!(
            recipient.agreement_public().to_vec(),
            bytes(v, "recipient_x25519_public"),
            "{what}"
        );
        let ephemeral = StaticSecret::from(array::<32>(v, "ephemeral_secret"));
        assert_eq!(
            x25519_dalek::PublicKey::from(&ephemeral)
                .as_bytes()
                .to_vec(),
            bytes(v, "ephemeral_public"),
            "{what}"
        );
        let (context, message_id, plaintext) = (
            text(v, "context"),
            bytes(v, "message_id"),
            bytes(v, "plaintext"),
        );
        let sealed = envelope::seal_with_ephemeral(
            &sender,
            &recipient.agreement_public(),
            context,
            &message_id,
            &plaintext,
            ephemeral,
        )
        .unwrap();
        assert_eq!(hex::encode(&sealed), text(v, "envelope"), "{what}");
        assert_eq!(sealed.len(), envelope::OVERHEAD + plaintext.len(), "{what}");
        let opened =
            envelope::open(&recipient, context, &sealed, Some(&sender.signing_public())).unwrap();
        assert_eq!(opened.sender, sender.signing_public(), "{what}");
        assert_eq!(opened.message_id.to_vec(), message_id, "{what}");
        assert_eq!(opened.plaintext, plaintext, "{what}");
    }
}

#[test]
fn invalid_envelopes_do_not_open() {
    let file = load("envelopes.json");
    for v in list(&file, "invalid") {
        let what = text(v, "description");
        let recipient = identity(
            &bytes(v, "recipient_seed"),
            &bytes(v, "recipient_x25519_secret"),
        );
        let expected = v["expected_sender"]
            .as_str()
            .map(|s| hex::decode(s).unwrap());
        let got = envelope::open(
            &recipient,
            text(v, "context"),
            &bytes(v, "envelope"),
            expected.as_deref(),
        );
        let ok = matches!(
            (&got, text(v, "error")),
            (Err(Error::DecryptionFailed(_)), "decryption_failed")
                | (Err(Error::BadSignature), "bad_signature")
                | (Err(Error::BadKey(_)), "bad_key")
        );
        assert!(ok, "{what}: expected {}, got {got:?}", text(v, "error"));
    }
}

#[test]
fn anonymous_envelopes_match_and_open() {
    let file = load("anonymous_envelopes.json");
    for v in list(&file, "vectors") {
        let what = text(v, "description");
        let recipient = identity(
            &bytes(v, "recipient_seed"),
            &bytes(v, "recipient_x25519_secret"),
        );
        let (context, message_id, plaintext) = (
            text(v, "context"),
            bytes(v, "message_id"),
            bytes(v, "plaintext"),
        );
        let ephemeral = StaticSecret::from(array::<32>(v, "ephemeral_secret"));
        let sealed = envelope::seal_anonymous_with_ephemeral(
            &recipient.agreement_public(),
            context,
            &message_id,
            &plaintext,
            ephemeral,
        )
        .unwrap();
        assert_eq!(hex::encode(&sealed), text(v, "envelope"), "{what}");
        assert_eq!(
            sealed.len(),
            envelope::ANONYMOUS_OVERHEAD + plaintext.len(),
            "{what}"
        );
        let (id, opened) = envelope::open_anonymous(&recipient, context, &sealed).unwrap();
        assert_eq!((id.to_vec(), opened), (message_id, plaintext), "{what}");
    }
    for v in list(&file, "invalid") {
        let what = text(v, "description");
        let recipient = identity(
            &bytes(v, "recipient_seed"),
            &bytes(v, "recipient_x25519_secret"),
        );
        let got = envelope::open_anonymous(&recipient, text(v, "context"), &bytes(v, "envelope"));
        assert!(
            matches!(got, Err(Error::DecryptionFailed(_))),
            "{what}: {got:?}"
        );
    }
}

fn payload(v: &Value) -> Vec<u8> {
    if v.get("payload").is_some() {
        return bytes(v, "payload");
    }
    let rule = &v["payload_rule"];
    let (mul, add) = (number(rule, "mul"), number(rule, "add"));
    (0..number(rule, "length"))
        .map(|i| ((i * mul + add) % 256) as u8)
        .collect()
}

#[test]
fn frames_match_and_parse() {
    let file = load("frames.json");
    assert_eq!(number(&file, "frame_size"), FRAME_SIZE);
    assert_eq!(number(&file, "chunk_len"), framing::CHUNK_LEN);
    for v in list(&file, "vectors") {
        let what = text(v, "description");
        let (data, message_id) = (payload(v), bytes(v, "message_id"));
        let encoded = framing::encode(&data, &message_id).unwrap();
        let count = number(v, "frame_count");
        assert_eq!(encoded.len(), count * FRAME_SIZE, "{what}");
        assert_eq!(framing::frame_count(data.len()).unwrap(), count, "{what}");
        assert_eq!(
            hex::encode(Sha256::digest(&encoded)),
            text(v, "frames_sha256"),
            "{what}"
        );
        let frames: Vec<&[u8]> = encoded.chunks(FRAME_SIZE).collect();
        match v["frames"].as_array() {
            Some(expected) => {
                let expected: Vec<&str> = expected.iter().map(|f| f.as_str().unwrap()).collect();
                let got: Vec<String> = frames.iter().map(hex::encode).collect();
                assert_eq!(got, expected, "{what}");
            }
            None => assert_eq!(hex::encode(frames[0]), text(v, "first_frame"), "{what}"),
        }
        let mut joined = Vec::new();
        for (index, frame) in frames.iter().enumerate() {
            let (header, chunk) = framing::parse(frame).unwrap();
            assert_eq!(
                (header.index, header.count, header.total_len),
                (index, count, data.len())
            );
            assert_eq!(header.message_id.to_vec(), message_id, "{what}");
            joined.extend_from_slice(chunk);
        }
        assert_eq!(joined, data, "{what}");
    }
}

#[test]
fn frame_counts_match() {
    let file = load("frames.json");
    for v in list(&file, "frame_counts") {
        let length = number(v, "length");
        assert_eq!(
            framing::frame_count(length).unwrap(),
            number(v, "frame_count"),
            "{length}"
        );
    }
    let too_large = number(&file, "too_large");
    assert!(matches!(
        framing::frame_count(too_large),
        Err(Error::InvalidArgument(_))
    ));
    assert!(framing::frame_count(too_large - 1).is_ok());
}

#[test]
fn invalid_frames_are_refused() {
    let file = load("frames.json");
    for v in list(&file, "invalid") {
        let what = text(v, "description");
        let frame = bytes(v, "frame");
        let got = framing::parse(&frame);
        assert!(matches!(got, Err(Error::Framing(_))), "{what}: {got:?}");
    }
}
