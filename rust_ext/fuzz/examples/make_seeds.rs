//! Writes the seed corpus `corpus/<target>/` and the Olm state `state/` of the fuzz
//! targets: a handful of valid inputs each. Run from rust_ext/fuzz:
//!
//!     cargo run --example make_seeds
//!
//! Olm keys are random, so a run writes new state and new Olm seeds (together: the seeds
//! only fit the state written with them). The committed ones came from one run.

use std::fs;

use nymchat_native::envelope;
use nymchat_native::framing::{self, CHUNK_LEN, FRAME_SIZE};
use nymchat_native::session::Account;
use nymchat_native_fuzz::{CONTEXTS, LABELS, PICKLE_KEY, recipient, sender, state_dir};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = format!("{}/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(format!("{dir}/{name}"), data).unwrap();
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn frames() {
    for (name, len) in [
        ("empty", 0),
        ("short", 5),
        ("one-full-chunk", CHUNK_LEN),
        ("padding-only-last", 4 * CHUNK_LEN + 1),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let encoded = framing::encode(&payload, &[name.len() as u8; 16]).unwrap();
        let count = encoded.len() / FRAME_SIZE;
        let last = &encoded[(count - 1) * FRAME_SIZE..];
        write("frame_parse", &format!("{name}-{count}-last"), last);
    }
}

fn reassembler() {
    // config, then per push: op, id, len u16, index (see fuzz_targets/reassembler.rs).
    let push = |op: u8, id: u8, len: u16, index: u8| {
        let l = len.to_be_bytes();
        vec![op, id, l[0], l[1], index]
    };
    let three = (3 * CHUNK_LEN) as u16;
    let mut seq = vec![0x35];
    for index in [2, 0, 2, 1] {
        seq.extend(push(0x01, 1, three, index));
    }
    write("reassembler", "three-frames-reversed-duplicate", &seq);
    let mut seq = vec![0xff];
    seq.extend(push(0x11, 2, 100, 0));
    seq.extend(push(0x03, 2, 100, 0));
    seq.extend(push(0x01, 3, three, 0));
    seq.push(0xf0); // expire, 11 s later
    seq.extend(push(0x01, 3, three, 1));
    write("reassembler", "two-sources-and-expiry", &seq);
    let mut seq = vec![0x22];
    for id in 0..4 {
        seq.extend(push(0x01, id, 2 * CHUNK_LEN as u16, 0));
    }
    seq.extend(push(0x09, 5, 10, 0));
    seq.extend([0, 30, 0x01]); // corrupt byte 30 (payload) with 0x01
    write("reassembler", "eviction-and-corruption", &seq);
}

fn envelopes() {
    let (from, to) = (sender(), recipient());
    for (n, context) in CONTEXTS.iter().enumerate() {
        let plaintext: Vec<u8> = (0..n * 40).map(|i| i as u8).collect();
        let sealed = envelope::seal(
            &from,
            &to.agreement_public(),
            context,
            &[n as u8; 16],
            &plaintext,
        )
        .unwrap();
        write(
            "envelope_open",
            &format!("open-{context}"),
            &cat(&[&[n as u8 | 4], &sealed]),
        );
        let round_trip = cat(&[
            &[0x80 | n as u8],
            &[n as u8 + 1; 32],
            &[9; 16],
            &[0, 60, 1],
            &plaintext,
        ]);
        write(
            "envelope_open",
            &format!("round-trip-{context}"),
            &round_trip,
        );
    }
}

fn signatures() {
    let id = sender();
    let key = id.signing_public();
    for (n, label) in LABELS.iter().enumerate() {
        let message: Vec<u8> = (0..n * 50).map(|i| (i * 3) as u8).collect();
        let signature = id.sign(label, &message).unwrap();
        write(
            "public_key_and_signature",
            &format!("valid-{label}"),
            &cat(&[&[n as u8], &key, &signature, &message]),
        );
        let mut flips = [0u8; 96];
        write(
            "public_key_and_signature",
            &format!("unflipped-{label}"),
            &cat(&[&[0x80 | n as u8], &flips, &message]),
        );
        flips[32 + 63] = 0x10; // s + 2^252-ish: out of range
        write(
            "public_key_and_signature",
            &format!("flipped-{label}"),
            &cat(&[&[0x80 | n as u8], &flips, &message]),
        );
    }
}

fn olm() {
    let alice = Account::default();
    let mut bob = Account::default();
    let keys = bob.generate_one_time_keys(3).unwrap();
    bob.mark_keys_as_published();
    let account_pickle = bob.pickle(&PICKLE_KEY).unwrap();
    let mut first = alice.outbound(&bob.curve25519_key(), &keys[0].1).unwrap();
    let pre_key = first.encrypt(b"hello bob").unwrap();
    let pre_key_again = first.encrypt(b"still no answer").unwrap();
    let (mut bobs, _) = bob.inbound(&alice.curve25519_key(), &pre_key).unwrap();
    let session_pickle = bobs.pickle(&PICKLE_KEY).unwrap();
    first.decrypt(&bobs.encrypt(b"hi alice").unwrap()).unwrap();
    let normal = [
        first.encrypt(b"normal one").unwrap(),
        first.encrypt(b"normal two").unwrap(),
    ];
    let other = alice
        .outbound(&bob.curve25519_key(), &keys[1].1)
        .unwrap()
        .encrypt(b"other")
        .unwrap();

    let dir = state_dir();
    fs::create_dir_all(&dir).unwrap();
    fs::write(format!("{dir}/account.pickle"), &account_pickle).unwrap();
    fs::write(format!("{dir}/session.pickle"), &session_pickle).unwrap();
    fs::write(
        format!("{dir}/alice_curve25519.bin"),
        alice.curve25519_key(),
    )
    .unwrap();

    let alice_key = alice.curve25519_key();
    write("olm_message", "inbound-pre-key", &cat(&[&[0], &pre_key]));
    write(
        "olm_message",
        "inbound-other-session",
        &cat(&[&[0], &other]),
    );
    write(
        "olm_message",
        "inbound-key-in-message",
        &cat(&[&[1], &alice_key, &pre_key]),
    );
    write(
        "olm_message",
        "decrypt-pre-key",
        &cat(&[&[2], &pre_key_again]),
    );
    write("olm_message", "decrypt-normal-1", &cat(&[&[2], &normal[0]]));
    write("olm_message", "decrypt-normal-2", &cat(&[&[2], &normal[1]]));
    write("olm_message", "matches-pre-key", &cat(&[&[3], &pre_key]));

    write(
        "pickle",
        "account",
        &cat(&[&[0], account_pickle.as_bytes()]),
    );
    write(
        "pickle",
        "session",
        &cat(&[&[1], session_pickle.as_bytes()]),
    );
    write(
        "pickle",
        "session-wrong-key",
        &cat(&[&[0x83], session_pickle.as_bytes()]),
    );
}

fn main() {
    frames();
    reassembler();
    envelopes();
    signatures();
    olm();
}
