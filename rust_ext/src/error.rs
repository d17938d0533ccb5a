//! The one error type of the core. The binding maps each variant onto its class in
//! `nymchat.errors` (`Random` onto Python's `OSError`), bound once.

use thiserror::Error;

/// Everything the core refuses or fails at; each variant says whose fault it is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A public or secret key that is malformed, of the wrong length or weak.
    #[error("invalid key: {0}")]
    BadKey(&'static str),
    /// A signature that does not verify for the given key, label and message.
    #[error("signature verification failed")]
    BadSignature,
    /// An envelope that does not open: wrong recipient, context, tampered or truncated.
    #[error("envelope could not be opened: {0}")]
    DecryptionFailed(&'static str),
    /// An end-to-end session that cannot go on: a session message that is malformed or
    /// does not decrypt in it, a session-opening message that opens none, a session state
    /// that does not load. The client starts a new session.
    #[error("the end-to-end session cannot go on: {0}")]
    SessionBroken(&'static str),
    /// A frame that is malformed, inconsistent or over a limit.
    #[error("bad frame: {0}")]
    Framing(String),
    /// An argument outside what the API accepts (label syntax, id length, sizes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// JSON that serde_json refuses: bad syntax, or past its bounds; serde_json's own text.
    #[error("{0}")]
    Json(String),
    /// An MLS message, key package, welcome or state that does not apply (mls-rs's reason),
    /// or a group operation MLS refuses.
    #[error("MLS: {0}")]
    Mls(String),
    /// The operating system's random source failed: no key or nonce can be made.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// The result of every fallible call of the core.
pub type Result<T> = std::result::Result<T, Error>;
