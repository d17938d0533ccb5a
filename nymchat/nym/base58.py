"""Base58 with the Bitcoin alphabet, as Nym writes keys, addresses and sender tags."""

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {ord(c): i for i, c in enumerate(ALPHABET)}
_RUST_ESCAPES = {"\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r", "'": "\\'", "\\": "\\\\"}


def encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    return "1" * zeros + "".join(reversed(out))


def decode(text: str) -> bytes:
    """Raises ValueError in the words of the bs58 crate, which Nym decodes with (its texts
    reach applications inside the real client's error answers)."""
    n = 0
    for i, byte in enumerate(text.encode("utf-8", "surrogatepass")):
        if byte > 127:
            raise ValueError(f"provided string contained non-ascii character starting at byte {i}")
        try:
            n = n * 58 + _INDEX[byte]
        except KeyError:
            raise ValueError(
                f"provided string contained invalid character {_rust_debug(chr(byte))} at byte {i}"
            ) from None
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _rust_debug(c: str) -> str:
    """An ASCII character as Rust's `{:?}` writes it."""
    escaped = _RUST_ESCAPES.get(c) or (c if c.isprintable() else f"\\u{{{ord(c):x}}}")
    return f"'{escaped}'"
