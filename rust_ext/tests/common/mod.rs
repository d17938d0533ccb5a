//! Reading the JSON vector files in tests/vectors/, shared by the integration tests.
#![allow(dead_code)] // each test crate uses its own subset

use serde_json::Value;

pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The list under `key` (may be empty).
pub(crate) fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key:?}"))
}

/// The list under `key`, which must not be empty (a file that lost its cases fails).
pub(crate) fn cases<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    let items = list(value, key);
    assert!(!items.is_empty(), "empty list {key:?}");
    items
}

pub(crate) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value}"))
}

pub(crate) fn bytes(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(value, key)).unwrap_or_else(|e| panic!("{key:?}: {e}"))
}

pub(crate) fn array<const N: usize>(value: &Value, key: &str) -> [u8; N] {
    bytes(value, key)
        .try_into()
        .unwrap_or_else(|_| panic!("{key:?} is not {N} bytes in {value}"))
}

pub(crate) fn number(value: &Value, key: &str) -> usize {
    let n = value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key:?} in {value}"));
    usize::try_from(n).unwrap()
}
