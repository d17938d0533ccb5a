"""What travels between two people, sans-I/O: the relayed payload around an Olm message,
the header bound inside every message, key-bundle checks, and safety numbers."""

import hashlib
import time
from dataclasses import dataclass

from nymchat import _native
from nymchat.protocol import wire

VERSION = 1
TEXT, RECEIPT = 1, 2
DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END = 3, 4, 5  # the direct-mode handshake (direct.py)
KINDS = (TEXT, RECEIPT, DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END)
CARRIES_KEYS = 1


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


INNER = wire.Record(Inner, [("kind", wire.U8), ("sender", wire.NAME), ("recipient", wire.NAME),
                            ("node", wire.B32), ("message_id", wire.B16), ("sent", wire.U64),
                            ("body", wire.BLOB)])
SENDER_KEYS = wire.Record(SenderKeys, [("identity", wire.B32), ("account_key", wire.B32),
                                       ("account_signature", wire.B64)])


def encode_inner(inner: Inner) -> bytes:
    return bytes([VERSION]) + wire.encode_record(INNER, inner)


def decode_inner(data: bytes) -> Inner:
    if not data or data[0] != VERSION:
        raise wire.WireError("unknown message version")
    inner = wire.decode_record(INNER, data[1:])
    if inner.kind not in KINDS:
        raise wire.WireError(f"unknown message kind {inner.kind}")
    return inner


def encode_payload(session_message: bytes, keys: SenderKeys | None) -> bytes:
    """The relayed payload: version ‖ flags ‖ [sender keys] ‖ Olm message."""
    if keys is None:
        return bytes([VERSION, 0]) + session_message
    return bytes([VERSION, CARRIES_KEYS]) + wire.encode_record(SENDER_KEYS, keys) + \
        session_message


def decode_payload(data: bytes) -> tuple[SenderKeys | None, bytes]:
    if len(data) < 2 or data[0] != VERSION or data[1] not in (0, CARRIES_KEYS):
        raise wire.WireError("not a nymchat message")
    if data[1] == 0:
        return None, data[2:]
    size = 32 + 32 + 64
    if len(data) < 2 + size:
        raise wire.WireError("truncated sender keys")
    return wire.decode_record(SENDER_KEYS, data[2:2 + size]), data[2 + size:]


def check_account_key(identity: bytes, account_key: bytes, signature: bytes) -> None:
    """Raises `BadSignature` unless the identity key signed this session identity key."""
    _native.verify(identity, "account-key", account_key, signature)


def check_one_time_key(identity: bytes, key: wire.OneTimeKey, fallback: bool) -> None:
    _native.verify(identity, "fallback-key" if fallback else "one-time-key",
                   key.key_id.to_bytes(8, "big") + key.key, key.signature)


def safety_number(name_a: str, identity_a: bytes, name_b: str, identity_b: bytes) -> str:
    """60 digits both people compute alike from both names and identity keys."""
    parts = sorted([name_a.encode() + b"\0" + identity_a, name_b.encode() + b"\0" + identity_b])
    digest = hashlib.sha512(b"nymchat-safety-number-v1\0" + parts[0] + b"\0" + parts[1]).digest()
    groups = [int.from_bytes(digest[i:i + 5], "big") % 100_000 for i in range(0, 60, 5)]
    return " ".join(f"{g:05d}" for g in groups)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Received:
    sender: str
    message_id: bytes
    sent: int
    text: str
    verified: bool
    key_changed: bool
