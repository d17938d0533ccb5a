"""What a group member's application message carries inside MLS, sans-I/O: kind, the
message id (the same as the node's entry: a copy relayed under another id does not
open as new), the sender's clock and the text. MLS pads and encrypts it; the author is
the MLS sender, whose identity the credential binds."""

from dataclasses import dataclass

from nymchat.client import messages
from nymchat.protocol import wire

TEXT = 1


@dataclass(frozen=True, slots=True)
class GroupInner:
    kind: int
    message_id: bytes
    sent: int
    text: str


GROUP_INNER = wire.Record(
    GroupInner,
    [
        ("kind", wire.U8),
        ("message_id", wire.B16),
        ("sent", wire.U64),
        ("text", wire._Text(wire.U32, messages.MAX_BODY, "utf-8")),
    ],
)


def encode(inner: GroupInner) -> bytes:
    return wire.encode_record(GROUP_INNER, inner)


def decode(data: bytes) -> GroupInner:
    """`WireError` for anything but a text message of ours."""
    inner = wire.decode_record(GROUP_INNER, data)
    if inner.kind != TEXT:
        raise wire.WireError(f"a group message of unknown kind {inner.kind}")
    return inner
