//! nymchat's crypto core, and its one reader of JSON from outside (`json`).
//!
//! Pure modules (no Python, covered by `cargo test`) plus one binding module that
//! PyO3 compiles into `nymchat._native` when the `python` feature is on.

pub mod envelope;
pub mod error;
pub mod framing;
pub mod group;
pub mod identity;
pub mod json;
#[cfg(feature = "python")]
mod python;
pub mod session;

pub use error::Error;

/// Version of this crate, reported by `nymchat --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> error::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(Error::Random)?;
    Ok(buf)
}
