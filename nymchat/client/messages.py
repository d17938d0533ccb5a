"""What travels between two people, sans-I/O: the relayed payload around an Olm message,
the header bound inside every message, padding, key-bundle checks, and safety numbers.

Padding: the node stores and relays payloads, so their sizes must tell it nothing. Every
payload is exactly as long as the largest that a `send` request of its frame bucket
carries (`payload_size`): a receipt, a direct-mode handshake and a short text all travel
as one-frame payloads of the same size, longer texts in the sizes of the frame buckets.
The plaintext is padded before encryption (so the ciphertext hides the length from
anyone), and the payload after it is filled with zeros to the exact size (the Olm header
and sender keys vary by a few bytes)."""

import hashlib
import time
from dataclasses import dataclass

from nymchat import _native
from nymchat.protocol import names, wire

VERSION = 2
TEXT, RECEIPT = 1, 2
DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END = 3, 4, 5  # the direct-mode handshake (direct_packets.py)
KINDS = (TEXT, RECEIPT, DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END)
CARRIES_KEYS = 1
# A `send` request around its payload, at most: header, recipient, message id, payload
# length, signature (docs/PROTOCOL.md).
SEND_OVERHEAD = 2 + 32 + 8 + 16 + (1 + names.MAX_LEN) + 16 + 4 + 64
# What encryption may add to a padded plaintext: sender keys, the opening Olm message's
# keys, header and MAC, the cipher's block padding, the length of the Olm message. The
# largest seen is 308 bytes (tests/test_client_codecs.py checks that it holds).
ENCRYPTION_RESERVE = 384
# The node relays at most 64 KiB by default; the largest frame bucket under it.
NODE_MAX_PAYLOAD = 64 << 10


@dataclass(frozen=True, slots=True)
class SenderKeys:
    """What a first message carries so the recipient can check who opened the session."""

    identity: bytes
    account_key: bytes
    account_signature: bytes


@dataclass(frozen=True, slots=True)
class Inner:
    """Encrypted with the session: sender, recipient, node and message id are bound to
    the content, so a message cannot be replayed to another person, node or id."""

    kind: int
    sender: str
    recipient: str
    node: bytes
    message_id: bytes
    sent: int
    body: bytes


INNER = wire.Record(
    Inner,
    [
        ("kind", wire.U8),
        ("sender", wire.NAME),
        ("recipient", wire.NAME),
        ("node", wire.B32),
        ("message_id", wire.B16),
        ("sent", wire.U64),
        ("body", wire.BLOB),
    ],
)
SENDER_KEYS = wire.Record(
    SenderKeys, [("identity", wire.B32), ("account_key", wire.B32), ("account_signature", wire.B64)]
)


def payload_size(length: int) -> int:
    """The size a payload of `length` bytes is padded to: all that a `send` request of
    its frame bucket holds."""
    frames = _native.frame_count(length + SEND_OVERHEAD)
    return frames * _native.FRAME_CHUNK_LEN - SEND_OVERHEAD


def _largest_payload(limit: int) -> int:
    size = payload_size(0)
    while (bigger := payload_size(size + 1)) <= limit:
        size = bigger
    return size


MAX_PAYLOAD = _largest_payload(NODE_MAX_PAYLOAD)
# The inner header at most (two names of MAX_LEN) and the padding marker.
INNER_OVERHEAD = 1 + 1 + 2 * (1 + names.MAX_LEN) + 32 + 16 + 8 + 4 + 1
MAX_BODY = MAX_PAYLOAD - ENCRYPTION_RESERVE - INNER_OVERHEAD


def encode_inner(inner: Inner) -> bytes:
    """The plaintext of a message, padded so that its payload fills its frame bucket:
    version ‖ record ‖ 0x80 ‖ zeros."""
    data = bytes([VERSION]) + wire.encode_record(INNER, inner) + b"\x80"
    size = payload_size(len(data) + ENCRYPTION_RESERVE) - ENCRYPTION_RESERVE
    return data + bytes(size - len(data))


def decode_inner(data: bytes) -> Inner:
    if not data or data[0] != VERSION:
        raise wire.WireError("unknown message version")
    unpadded = data.rstrip(b"\0")
    if not unpadded.endswith(b"\x80"):
        raise wire.WireError("bad message padding")
    inner = wire.decode_record(INNER, unpadded[1:-1])
    if inner.kind not in KINDS:
        raise wire.WireError(f"unknown message kind {inner.kind}")
    return inner


def encode_payload(session_message: bytes, keys: SenderKeys | None) -> bytes:
    """The relayed payload: version ‖ flags ‖ [sender keys] ‖ Olm message length u32 ‖
    Olm message ‖ zeros to `payload_size`."""
    out = bytearray((VERSION, 0 if keys is None else CARRIES_KEYS))
    if keys is not None:
        out += wire.encode_record(SENDER_KEYS, keys)
    wire.U32.write(len(session_message), out)
    out += session_message
    return bytes(out) + bytes(payload_size(len(out)) - len(out))


def decode_payload(data: bytes) -> tuple[SenderKeys | None, bytes]:
    if len(data) < 2 or data[0] != VERSION or data[1] not in (0, CARRIES_KEYS):
        raise wire.WireError("not a nymchat message")
    start = 2 + (32 + 32 + 64 if data[1] == CARRIES_KEYS else 0)
    if len(data) < start + 4:
        raise wire.WireError("truncated payload")
    keys = wire.decode_record(SENDER_KEYS, data[2:start]) if data[1] == CARRIES_KEYS else None
    length = int.from_bytes(data[start : start + 4], "big")
    end = start + 4 + length
    if end > len(data) or data[end:].strip(b"\0"):
        raise wire.WireError("bad payload length or padding")
    return keys, data[start + 4 : end]


def check_account_key(identity: bytes, account_key: bytes, signature: bytes) -> None:
    """Raises `BadSignature` unless the identity key signed this session identity key."""
    _native.verify(identity, "account-key", account_key, signature)


def check_one_time_key(identity: bytes, key: wire.OneTimeKey, fallback: bool) -> None:
    _native.verify(
        identity,
        "fallback-key" if fallback else "one-time-key",
        key.key_id.to_bytes(8, "big") + key.key,
        key.signature,
    )


def safety_number(name_a: str, identity_a: bytes, name_b: str, identity_b: bytes) -> str:
    """60 digits both people compute alike from both names and identity keys."""
    parts = sorted([name_a.encode() + b"\0" + identity_a, name_b.encode() + b"\0" + identity_b])
    digest = hashlib.sha512(b"nymchat-safety-number-v1\0" + parts[0] + b"\0" + parts[1]).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 60, 5)]
    return " ".join(f"{g:05d}" for g in groups)


def now_ms() -> int:
    return int(time.time() * 1000)
