//! Olm session messages (`type ‖ body`) on Bob's fixed account and session from `state/`.
//!
//! First input byte, mode % 4: 0 `Account::inbound` from Alice's identity key; 1 the
//! same with the identity key taken from the first 32 bytes of the message; 2
//! `Session::decrypt`; 3 `Session::matches`. The state is restored from its pickle for
//! every input, so each run starts alike.
//!
//! Invariants: no panic; a session opened by `inbound` matches the message that opened
//! it, and the same message cannot open a second one (its one-time key is used up); a
//! message `decrypt` accepts is refused the second time (a message key is used once), and
//! the advanced session pickles and restores with the same id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nymchat_native::session::{Account, Session};
use nymchat_native_fuzz::{PICKLE_KEY, olm_state};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, message)) = data.split_first() else {
        return;
    };
    let state = olm_state();
    match mode % 4 {
        0 | 1 => {
            let mut account = Account::from_pickle(&state.account, &PICKLE_KEY).expect("state");
            let (identity, message) = if mode % 4 == 1 && message.len() >= 32 {
                message.split_at(32)
            } else {
                (&state.alice_curve25519[..], message)
            };
            if let Ok((session, _plaintext)) = account.inbound(identity, message) {
                assert!(
                    session.matches(message),
                    "a session does not match its first message"
                );
                assert!(
                    account.inbound(identity, message).is_err(),
                    "one pre-key message opened two sessions"
                );
            }
        }
        2 => {
            let mut session = Session::from_pickle(&state.session, &PICKLE_KEY).expect("state");
            if session.decrypt(message).is_ok() {
                assert!(
                    session.decrypt(message).is_err(),
                    "decrypted a message twice"
                );
                let pickled = session.pickle(&PICKLE_KEY).expect("pickles");
                let restored = Session::from_pickle(&pickled, &PICKLE_KEY).expect("restores");
                assert_eq!(restored.id(), session.id());
            }
        }
        _ => {
            let session = Session::from_pickle(&state.session, &PICKLE_KEY).expect("state");
            let _ = session.matches(message);
        }
    }
});
