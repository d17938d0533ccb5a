//! `Account::from_pickle` and `Session::from_pickle` on arbitrary strings and keys.
//!
//! Input: `mode ‖ pickle text` (UTF-8, lossily). Mode bit 0 chooses the Account or the
//! Session decoder; bit 1 uses the fixed `PICKLE_KEY` (the seeds' key) or, when set, a key
//! of `mode >> 2` bytes of `mode` (wrong length, or 32 bytes of a wrong key).
//!
//! Invariants: no panic; a key that is not 32 bytes is refused; whatever opens pickles
//! again and restores to the same identity key and one-time keys (Account) or the same
//! session id (Session).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nymchat_native::session::{Account, Session};
use nymchat_native_fuzz::PICKLE_KEY;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let other = vec![mode; usize::from(mode >> 2)];
    let key: &[u8] = if mode & 2 == 0 { &PICKLE_KEY } else { &other };
    if mode & 1 == 0 {
        let Ok(account) = Account::from_pickle(&text, key) else {
            return;
        };
        assert_eq!(key.len(), 32);
        let again =
            Account::from_pickle(&account.pickle(key).expect("pickles"), key).expect("restores");
        assert_eq!(again.curve25519_key(), account.curve25519_key());
        assert_eq!(again.one_time_keys(), account.one_time_keys());
        assert_eq!(again.fallback_key(), account.fallback_key());
    } else {
        let Ok(session) = Session::from_pickle(&text, key) else {
            return;
        };
        assert_eq!(key.len(), 32);
        let again =
            Session::from_pickle(&session.pickle(key).expect("pickles"), key).expect("restores");
        assert_eq!(again.id(), session.id());
    }
});
