//! The one error type of the core. The binding maps each variant onto the Python class
//! of the same name in `nymchat.errors`.

use thiserror::Error;

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
    /// A frame that is malformed, inconsistent or over a limit.
    #[error("bad frame: {0}")]
    Framing(String),
    /// An argument outside what the API accepts (label syntax, id length, sizes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// JSON that serde_json refuses: bad syntax, or past its bounds; serde_json's own text.
    #[error("{0}")]
    Json(String),
}

pub type Result<T> = std::result::Result<T, Error>;
