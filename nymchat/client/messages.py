"""What travels between two people, sans-I/O: the relayed payload (a sealed layer that
hides the sender's name and keys from the node, around an Olm message), the header bound
inside every message, padding, key-bundle checks, and safety numbers.

Padding: the node stores and relays payloads, so their sizes must tell it nothing. Every
payload is exactly as long as the largest that a `sealed_send` request of its frame bucket
carries (`payload_size`): a receipt, a direct-mode handshake and a short text all travel
as one-frame payloads of the same size, longer texts in the sizes of the frame buckets.
The plaintext is padded before encryption (so the ciphertext hides the length from
anyone), and the payload after it is filled with zeros to the exact size (the Olm header
and sender keys vary by a few bytes)."""

import hashlib
import time
from dataclasses import dataclass

from nymchat import _native
from nymchat.nym.address import Address as NymAddress
from nymchat.nym.address import AddressError
from nymchat.protocol import names, wire
from nymchat.protocol.contact import NodeContact

VERSION = 4  # what is written; version 3 (before federation: no sender node) still opens
OLD_VERSION = 3
VERSIONS = (OLD_VERSION, VERSION)
TEXT, RECEIPT = 1, 2
DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END = 3, 4, 5  # the direct-mode handshake (direct_packets.py)
ACCESS = 6  # the sender's new access key, after they removed a contact
MOVED = 7  # the sender's new home node (`moved_body`)
KINDS = (TEXT, RECEIPT, DIRECT_INVITE, DIRECT_ACCEPT, DIRECT_END, ACCESS, MOVED)
MOVED_LABEL = "nymchat-moved"
CARRIES_KEYS = 1
CONTEXT = "nymchat-message"  # of the sealed layer (`_native.seal_anonymous`)
# A `sealed_send` request around its payload, at most: header, time, request id,
# recipient, message id, payload length, access key, proof of work (docs/PROTOCOL.md).
SEND_OVERHEAD = 2 + 8 + 16 + (1 + names.MAX_LEN) + 16 + 4 + (1 + 32) + 8
# A sender certificate (wire.Certificate) at most, for a valid name, with its length.
CERTIFICATE_SPACE = 2 + (1 + names.MAX_LEN) + 32 + 8 + 64
# The sender's home node contact a session-opening message carries: its first
# `CARRIED_ADDRESSES` frontends (id, nym address), enough to reach the node and fetch its
# signed descriptor, which lists the rest; a message may name up to `MAX_CARRIED`.
CARRIED_ADDRESSES, MAX_CARRIED = 2, 8
FRONTEND_LEN = 1 + 96
NODE_SPACE = 32 + 1 + CARRIED_ADDRESSES * FRONTEND_LEN
# What encryption may add to a padded plaintext: the payload's header, the sealed layer
# (its envelope, the sender's name, node, certificate, flags, keys and node contact), the
# opening Olm message's keys, header and MAC, the cipher's block padding. The largest
# seen is 502 bytes without the certificate and node (tests/test_client_codecs.py checks
# that it holds).
ENCRYPTION_RESERVE = 576 + CERTIFICATE_SPACE + NODE_SPACE
# The node relays at most 64 KiB by default; the largest frame bucket under it.
NODE_MAX_PAYLOAD = 64 << 10


@dataclass(frozen=True, slots=True)
class SenderKeys:
    """What a first message carries so the recipient can check who opened the session
    and pin the key that sealed messages to the sender are sealed to."""

    identity: bytes
    agreement: bytes
    agreement_signature: bytes
    account_key: bytes
    account_signature: bytes


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the sealed layer hides from the node: who sends, at which home node, that
    node's certificate that the name is theirs, and the Olm message; a session-opening
    one also the sender's keys and how to reach their node."""

    sender: str
    certificate: bytes  # wire.encode_certificate, by the sender's home node
    keys: SenderKeys | None
    session_message: bytes
    node: bytes | None = None  # the sender's home node key; None: version 3 (the recipient's)
    node_contact: str | None = None  # with `keys`: the sender's node (CARRIED_ADDRESSES of it)


@dataclass(frozen=True, slots=True)
class Inner:
    """Encrypted with the session: sender, recipient, the sender's home node (what its
    certificate is bound to) and message id are bound to the content, so a message cannot
    be replayed to another person, node or id."""

    kind: int
    sender: str
    recipient: str
    node: bytes
    message_id: bytes
    sent: int
    access_key: bytes  # the sender's current one: how to reach them without work
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
        ("access_key", wire.B32),
        ("body", wire.BLOB),
    ],
)
SENDER_KEYS = wire.Record(
    SenderKeys,
    [
        ("identity", wire.B32),
        ("agreement", wire.B32),
        ("agreement_signature", wire.B64),
        ("account_key", wire.B32),
        ("account_signature", wire.B64),
    ],
)
SENDER_KEYS_LEN = 32 + 32 + 64 + 32 + 64


def payload_size(length: int) -> int:
    """The size a payload of `length` bytes is padded to: all that a `sealed_send`
    request of its frame bucket holds."""
    frames = _native.frame_count(length + SEND_OVERHEAD)
    return frames * _native.FRAME_CHUNK_LEN - SEND_OVERHEAD


def _largest_payload(limit: int) -> int:
    size = payload_size(0)
    while (bigger := payload_size(size + 1)) <= limit:
        size = bigger
    return size


MAX_PAYLOAD = _largest_payload(NODE_MAX_PAYLOAD)
# The inner header at most (two names of MAX_LEN) and the padding marker.
INNER_OVERHEAD = 1 + 1 + 2 * (1 + names.MAX_LEN) + 32 + 16 + 8 + 32 + 4 + 1
MAX_BODY = MAX_PAYLOAD - ENCRYPTION_RESERVE - INNER_OVERHEAD


def encode_inner(inner: Inner) -> bytes:
    """The plaintext of a message, padded so that its payload fills its frame bucket:
    version ‖ record ‖ 0x80 ‖ zeros."""
    data = bytes([VERSION]) + wire.encode_record(INNER, inner) + b"\x80"
    size = payload_size(len(data) + ENCRYPTION_RESERVE) - ENCRYPTION_RESERVE
    return data + bytes(size - len(data))


def decode_inner(data: bytes) -> Inner:
    if not data or data[0] not in VERSIONS:
        raise wire.WireError("unknown message version")
    unpadded = data.rstrip(b"\0")
    if not unpadded.endswith(b"\x80"):
        raise wire.WireError("bad message padding")
    inner = wire.decode_record(INNER, unpadded[1:-1])
    if inner.kind not in KINDS:
        raise wire.WireError(f"unknown message kind {inner.kind}")
    return inner


def carried(contact: str) -> str:
    """What a session-opening message carries of the sender's node contact: its first
    `CARRIED_ADDRESSES` frontends."""
    node = NodeContact.parse(contact)
    n = CARRIED_ADDRESSES
    return str(NodeContact(node.key, node.addresses[:n], node.ids[:n]))


def _encode_contact(contact: str | None, out: bytearray) -> None:
    """count u8 ‖ (frontend id u8 ‖ nym address b96)*: the key is the sealed layer's node."""
    node = NodeContact.parse(contact) if contact is not None else None
    frontends = list(zip(node.ids, node.addresses, strict=True)) if node else []
    if len(frontends) > MAX_CARRIED or any(n > 255 for n, _ in frontends):
        raise ValueError(f"a message carries at most {MAX_CARRIED} frontends, ids up to 255")
    out.append(len(frontends))
    for n, address in frontends:
        out.append(n)
        out += address.to_bytes()


def _decode_contact(data: bytes, start: int, node: bytes) -> tuple[str | None, int]:
    count = data[start] if start < len(data) else MAX_CARRIED + 1
    end = start + 1 + count * FRONTEND_LEN
    if count > MAX_CARRIED or len(data) < end:
        raise wire.WireError("a truncated or oversized node contact")
    if count == 0:
        return None, end
    frontends: dict[int, NymAddress] = {}
    for at in range(start + 1, end, FRONTEND_LEN):
        try:
            frontends[data[at]] = NymAddress.from_bytes(data[at + 1 : at + FRONTEND_LEN])
        except (AddressError, ValueError) as e:
            raise wire.WireError(f"a bad node contact: {e}") from None
    try:
        return str(NodeContact.of(node, frontends)), end
    except ValueError as e:
        raise wire.WireError(f"a bad node contact: {e}") from None


def moved_body(identity: _native.Identity, name: str, contact: str) -> bytes:
    """What a MOVED message says: node key b32 ‖ node contact (its first
    `CARRIED_ADDRESSES` frontends) ‖ the identity's signature over (name ‖ both), so that
    the move is the person's own word, not only their session's."""
    node = NodeContact.parse(carried(contact))
    out = bytearray(node.key)
    _encode_contact(str(node), out)
    return bytes(out) + identity.sign(MOVED_LABEL, name.encode() + b"\0" + bytes(out))


def open_moved(body: bytes, name: str, identity: bytes, node: bytes) -> str:
    """The node contact a MOVED `body` of `name` (signed by `identity`) names, which must
    be of `node`, the home node that certified the message; `WireError` or `BadSignature`."""
    if len(body) < 32 + 1 + 64:
        raise wire.WireError("a truncated move")
    signed, signature = body[:-64], body[-64:]
    if signed[:32] != node:
        raise wire.WireError("a move to another node than the one that certified it")
    contact, end = _decode_contact(signed, 32, node)
    if contact is None or end != len(signed):
        raise wire.WireError("a move without its node's addresses")
    _native.verify(identity, MOVED_LABEL, name.encode() + b"\0" + signed, signature)
    return contact


def encode_sealed(sealed: Sealed) -> bytes:
    """The sealed layer's plaintext: sender name ‖ node key b32 ‖ certificate (u16
    length) ‖ flags ‖ [sender keys ‖ node contact] ‖ Olm message."""
    if sealed.node is None:
        raise ValueError("a message names its sender's node")
    out = bytearray()
    wire.NAME.write(sealed.sender, out)
    out += sealed.node
    wire.CERTIFICATE_BYTES.write(sealed.certificate, out)
    out.append(0 if sealed.keys is None else CARRIES_KEYS)
    if sealed.keys is not None:
        out += wire.encode_record(SENDER_KEYS, sealed.keys)
        _encode_contact(sealed.node_contact, out)
    return bytes(out + sealed.session_message)


def decode_sealed(data: bytes, version: int = VERSION) -> Sealed:
    """A sealed layer's plaintext, as `version` wrote it (3: no node, no contact)."""
    if not data or len(data) < 1 + data[0] + 2:
        raise wire.WireError("truncated sealed message")
    name_end = 1 + data[0]
    try:
        sender = data[1:name_end].decode("ascii")
    except UnicodeDecodeError:
        raise wire.WireError("the sender's name is not ASCII") from None
    node = None
    if version == VERSION:
        node, name_end = data[name_end : name_end + 32], name_end + 32
        if len(data) < name_end + 2:
            raise wire.WireError("truncated sealed message")
    length = int.from_bytes(data[name_end : name_end + 2], "big")
    start = name_end + 2 + length
    if length > wire.MAX_CERTIFICATE or len(data) < start + 1:
        raise wire.WireError("truncated or oversized sender certificate")
    certificate, flags = data[name_end + 2 : start], data[start]
    start += 1
    if flags not in (0, CARRIES_KEYS):
        raise wire.WireError("unknown sealed message flags")
    keys, contact = None, None
    if flags == CARRIES_KEYS:
        if len(data) < start + SENDER_KEYS_LEN:
            raise wire.WireError("truncated sender keys")
        keys = wire.decode_record(SENDER_KEYS, data[start : start + SENDER_KEYS_LEN])
        start += SENDER_KEYS_LEN
        if node is not None:
            contact, start = _decode_contact(data, start, node)
    if start == len(data):
        raise wire.WireError("a sealed message without its Olm message")
    return Sealed(sender, certificate, keys, data[start:], node, contact)


def encode_payload(recipient_agreement: bytes, message_id: bytes, sealed: Sealed) -> bytes:
    """The relayed payload: version ‖ length u32 ‖ envelope ‖ zeros to `payload_size`;
    the envelope seals `sealed` to the recipient's agreement key, bound to the message
    id, with nothing of the sender in the clear."""
    envelope = _native.seal_anonymous(
        recipient_agreement, CONTEXT, message_id, encode_sealed(sealed)
    )
    out = bytearray((VERSION,))
    wire.U32.write(len(envelope), out)
    out += envelope
    return bytes(out) + bytes(payload_size(len(out)) - len(out))


def decode_payload(data: bytes) -> bytes:
    """The envelope of a payload, its framing and padding checked."""
    if len(data) < 5 or data[0] not in VERSIONS:
        raise wire.WireError("not a nymchat message")
    length = int.from_bytes(data[1:5], "big")
    end = 5 + length
    if end > len(data) or data[end:].strip(b"\0"):
        raise wire.WireError("bad payload length or padding")
    return data[5:end]


def open_payload(identity: _native.Identity, message_id: bytes, data: bytes) -> Sealed:
    """Opens a payload sealed to us for `message_id` (as the node or the direct packet
    says): `DecryptionFailed` if it is not ours, `WireError` if it is malformed or
    sealed under another id."""
    sealed_id, plaintext = _native.open_anonymous(identity, CONTEXT, decode_payload(data))
    if sealed_id != message_id:
        raise wire.WireError("a message sealed under another message id")
    return decode_sealed(plaintext, data[0])


def check_account_key(identity: bytes, account_key: bytes, signature: bytes) -> None:
    """Raises `BadSignature` unless the identity key signed this session identity key."""
    _native.verify(identity, "account-key", account_key, signature)


def check_agreement_key(identity: bytes, agreement: bytes, signature: bytes) -> None:
    """Raises `BadSignature` unless the identity key signed this agreement key."""
    _native.verify(identity, "agreement-key", agreement, signature)


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
