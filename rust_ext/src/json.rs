//! JSON from outside the process, read by serde_json as the real nym-client reads it.
//!
//! Every JSON reader of nymchat goes through here, so all share serde_json's bounds:
//! nesting at most 128 deep, numbers that fit u64, i64 or f64 (a longer one is
//! "number out of range", read in linear time), strict UTF-8 and no lone surrogate
//! escapes. Errors are serde_json's texts, with line and column.

use serde::Deserialize;
use serde::de::DeserializeSeed;

use crate::error::{Error, Result};

fn refused(err: serde_json::Error) -> Error {
    Error::Json(err.to_string())
}

/// `ClientRequestText` of nym's `clients/native/websocket-requests/src/text.rs` (crate
/// `nym-client-websocket-requests`), as it is there: serde derives the same reader, so
/// the local mixnet accepts what a real nym-client accepts (the sequence form
/// `["send", MESSAGE, RECIPIENT, CONNECTION_ID]` too) and refuses the rest in its words.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientRequestText {
    /// Send `message` to the Nym address `recipient`.
    #[serde(rename_all = "camelCase")]
    Send {
        /// The message (text).
        message: String,
        /// A Nym address.
        recipient: String,
        /// The caller's tag for the answer, if any.
        connection_id: Option<u64>,
    },
    /// Send `message` to `recipient` without revealing the sender, with `reply_surbs`
    /// single-use reply blocks so they can answer.
    #[serde(rename_all = "camelCase")]
    SendAnonymous {
        /// A Nym address.
        recipient: String,
        /// The message (text).
        message: String,
        /// How many reply blocks go with it.
        reply_surbs: u32,
        /// The caller's tag for the answer, if any.
        connection_id: Option<u64>,
    },
    /// Answer an anonymous sender through their reply blocks.
    #[serde(rename_all = "camelCase")]
    Reply {
        /// Who to answer, as the nym-client tagged them.
        sender_tag: String,
        /// The message (text).
        message: String,
        /// The caller's tag for the answer, if any.
        connection_id: Option<u64>,
    },
    /// Ask for the client's own Nym address.
    SelfAddress,
}

/// A Text request to a nym-client; the error's text is what the real client sends back
/// after `malformed request:`.
pub fn parse_request_text(text: &str) -> Result<ClientRequestText> {
    serde_json::from_str(text).map_err(refused)
}

/// One JSON document, built by `seed` (the binding builds Python objects).
pub fn read<'de, S: DeserializeSeed<'de>>(data: &'de [u8], seed: S) -> Result<S::Value> {
    let mut reader = serde_json::Deserializer::from_slice(data);
    let value = seed.deserialize(&mut reader).map_err(refused)?;
    reader.end().map_err(refused)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::marker::PhantomData;

    fn parse(data: &[u8]) -> Result<serde_json::Value> {
        read(data, PhantomData)
    }

    fn refused(text: &str) -> Error {
        Error::Json(text.into())
    }

    #[test]
    fn requests_are_read_as_maps_and_as_sequences() {
        let send = ClientRequestText::Send {
            message: "hi".into(),
            recipient: "r".into(),
            connection_id: Some(7),
        };
        let map = r#"{"type":"send","recipient":"r","message":"hi","connectionId":7,"x":[]}"#;
        assert_eq!(parse_request_text(map), Ok(send));
        let seq = r#"["send","hi","r",null]"#;
        assert!(matches!(
            parse_request_text(seq),
            Ok(ClientRequestText::Send {
                connection_id: None,
                ..
            })
        ));
        assert_eq!(
            parse_request_text(r#"["selfAddress"]"#),
            Ok(ClientRequestText::SelfAddress)
        );
    }

    #[test]
    fn hostile_documents_are_errors_with_a_position() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()),
            Err(refused("recursion limit exceeded at line 1 column 128"))
        );
        let long = format!("[{}]", "9".repeat(5000));
        assert_eq!(
            parse(long.as_bytes()),
            Err(refused("number out of range at line 1 column 5001"))
        );
        assert_eq!(
            parse(b"[1] 2"),
            Err(refused("trailing characters at line 1 column 5"))
        );
        // serde_json's words for lone surrogates depend on what follows the escape
        assert_eq!(
            parse_request_text(r#"{"type":"selfAddress","message":"\ud800"}"#),
            Err(refused("unexpected end of hex escape at line 1 column 40"))
        );
        assert_eq!(
            parse_request_text(r#"{"type":"selfAddress","message":"\udc00"}"#),
            Err(refused(
                "lone leading surrogate in hex escape at line 1 column 39"
            ))
        );
    }
}
