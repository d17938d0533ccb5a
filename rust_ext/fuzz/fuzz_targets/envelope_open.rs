//! `envelope::open` on arbitrary bytes for a fixed recipient, plus a seal/open round trip
//! with one changed byte.
//!
//! First input byte: bit 7 chooses the mode, bits 0-1 the context, bit 2 whether the
//! sender is pinned. Mode 0 opens the rest as an envelope: no panic, and whatever opens
//! has the announced length, message id and (when pinned) sender. Mode 1 reads
//! `ephemeral[32] ‖ message_id[16] ‖ at u16 ‖ mask u8 ‖ plaintext`, seals, checks that the
//! envelope opens to the same fields, then that it no longer opens with byte `at` XORed
//! with `mask` (mask ≠ 0), nor cut short by one byte.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nymchat_native::envelope::{self, HEADER_LEN, OVERHEAD};
use nymchat_native::identity::Identity;
use nymchat_native_fuzz::{CONTEXTS, recipient, sender};
use x25519_dalek::StaticSecret;

fn parties() -> &'static (Identity, Identity) {
    static PARTIES: OnceLock<(Identity, Identity)> = OnceLock::new();
    PARTIES.get_or_init(|| (sender(), recipient()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sender, recipient) = parties();
    let context = CONTEXTS[usize::from(mode & 3)];
    let pinned = sender.signing_public();
    let expected = (mode & 4 != 0).then_some(&pinned[..]);
    if mode & 0x80 == 0 {
        if let Ok(opened) = envelope::open(recipient, context, rest, expected) {
            assert_eq!(rest.len(), OVERHEAD + opened.plaintext.len());
            assert_eq!(opened.message_id, rest[HEADER_LEN - 16..HEADER_LEN]);
            if let Some(expected) = expected {
                assert_eq!(opened.sender[..], *expected);
            }
        }
        return;
    }
    if rest.len() < 32 + 16 + 3 {
        return;
    }
    let (ephemeral, rest) = rest.split_at(32);
    let (message_id, rest) = rest.split_at(16);
    let (change, plaintext) = rest.split_at(3);
    let ephemeral = StaticSecret::from(<[u8; 32]>::try_from(ephemeral).expect("32 bytes"));
    let sealed = envelope::seal_with_ephemeral(
        sender,
        &recipient.agreement_public(),
        context,
        message_id,
        plaintext,
        ephemeral,
    )
    .expect("sealing to a real key works with any ephemeral secret");
    assert_eq!(sealed.len(), OVERHEAD + plaintext.len());
    let opened = envelope::open(recipient, context, &sealed, expected).expect("round trip");
    assert_eq!(opened.sender, pinned);
    assert_eq!(opened.message_id[..], *message_id);
    assert_eq!(opened.plaintext, plaintext);
    let at = usize::from(u16::from_be_bytes([change[0], change[1]])) % sealed.len();
    if change[2] != 0 {
        let mut bad = sealed.clone();
        bad[at] ^= change[2];
        assert!(
            envelope::open(recipient, context, &bad, None).is_err(),
            "opened with byte {at} changed"
        );
    }
    assert!(envelope::open(recipient, context, &sealed[..sealed.len() - 1], None).is_err());
});
