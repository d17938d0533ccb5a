"""Node protocol messages (docs/PROTOCOL.md): strict binary encoding from one schema per
kind, and the domain-separated signatures that bind each message to its node and user."""

import enum
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from nymchat import _native
from nymchat.errors import NymchatError
from nymchat.protocol.address import normalize_petname
from nymchat.protocol.contact import NodeContact

VERSION = 1
MAX_LIST = 256
MAX_BLOB = 1 << 20
REQUEST_LABEL, ANSWER_LABEL, PUSH_LABEL = "node-request", "node-answer", "node-push"
FRONTENDS_LABEL = "node-frontends"
DIRECTORY_LABEL = "nymchat-directory"
# Who an answer to an anonymous request is signed for: nobody (docs/PROTOCOL.md).
ANONYMOUS = bytes(32)
# A recipient's policy for strangers' sealed sends (`set_access`): 0 lets them in free,
# 1..24 asks for a proof of work of that many bits, DENY refuses them.
STRANGERS_DENY = 255

T = TypeVar("T")
Body = dict[str, Any]  # a message's fields by name, as BODIES lists them


class WireError(NymchatError, ValueError):
    message = "bytes that are not a valid node message"


class Kind(enum.IntEnum):
    # signed requests: from a registered identity, through the user's home frontend
    REGISTER_BEGIN = 0x01
    REGISTER_FINISH = 0x02
    PUBLISH_KEYS = 0x04
    FETCH = 0x06
    ACK = 0x07
    REFRESH = 0x08
    UNREGISTER = 0x09
    SET_ACCESS = 0x0A
    CERTIFY = 0x0B
    PUBLISH_KEY_PACKAGES = 0x0C
    LEAVE_GROUP = 0x0D
    # anonymous requests: no requester, no signature, through another frontend
    SEALED_SEND = 0x21
    LOOKUP = 0x22
    FRONTENDS = 0x23
    CLAIM_KEY_PACKAGE = 0x24
    GROUP_POST = 0x25
    DIRECTORY = 0x26
    GROUP_WATCH = 0x27
    CHALLENGE = 0x41
    REGISTERED = 0x42
    BUNDLE = 0x43
    KEYS_PUBLISHED = 0x44
    ACCEPTED = 0x45
    FETCHED = 0x46
    ACKED = 0x47
    REFRESHED = 0x48
    UNREGISTERED = 0x49
    POW_REQUIRED = 0x4A
    FRONTENDS_ARE = 0x4B
    ACCESS_SET = 0x4C
    CERTIFIED = 0x4D
    ERROR = 0x4F
    KEY_PACKAGES_PUBLISHED = 0x50
    KEY_PACKAGE = 0x51
    POSTED = 0x52
    LEFT_GROUP = 0x53
    DIRECTORY_IS = 0x54
    GROUP_ENTRIES = 0x55
    DELIVER = 0x81
    KEYS_LOW = 0x82
    GROUP_DELIVER = 0x83
    KEY_PACKAGES_LOW = 0x84

    @property
    def is_request(self) -> bool:
        return self < 0x40

    @property
    def is_anonymous(self) -> bool:
        """A request that names no requester and carries no signature."""
        return 0x20 <= self < 0x40

    @property
    def is_push(self) -> bool:
        return self >= 0x80


class ErrorCode(enum.IntEnum):
    BAD_REQUEST = 1
    BAD_SIGNATURE = 2
    STALE = 3
    REPLAYED = 4
    RATE_LIMITED = 5
    INVALID_NAME = 6
    NAME_TAKEN = 7
    NOT_FOUND = 8
    NOT_REGISTERED = 9
    CHALLENGE_FAILED = 10
    QUEUE_FULL = 11
    TOO_LARGE = 12
    KEYS_FULL = 13
    BUSY = 14
    FORBIDDEN = 15  # the recipient takes no sealed sends from strangers
    EPOCH_CONFLICT = 16  # a commit for an epoch the group has left: another commit won


class GroupPost(enum.IntEnum):
    """What a group log entry carries (docs/PROTOCOL.md, groups)."""

    APPLICATION = 1  # an MLS application message: a member's text
    PROPOSAL = 2  # an MLS proposal (a member leaving), committed by another member
    COMMIT = 3  # an MLS commit: the group's next epoch
    WELCOME = 4  # an MLS Welcome, for the members a commit adds only


# --- field types ----------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise WireError("message is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk


class Field(Protocol[T]):
    """How one field is written and read."""

    def write(self, value: T, out: bytearray) -> None: ...

    def read(self, r: _Reader) -> T: ...


class _Int:
    def __init__(self, fmt: str):
        self.struct = struct.Struct(">" + fmt)

    def write(self, value: int, out: bytearray) -> None:
        try:
            out += self.struct.pack(value)
        except struct.error as e:
            raise WireError(str(e)) from None

    def read(self, r: _Reader) -> int:
        value: int = self.struct.unpack(r.take(self.struct.size))[0]
        return value


class _Fixed:
    def __init__(self, size: int):
        self.size = size

    def write(self, value: bytes, out: bytearray) -> None:
        if len(value) != self.size:
            raise WireError(f"field must be {self.size} bytes, got {len(value)}")
        out += value

    def read(self, r: _Reader) -> bytes:
        return bytes(r.take(self.size))


class _Bytes:
    """Length-prefixed bytes (`length` is the prefix type) up to `limit`."""

    def __init__(self, length: _Int, limit: int):
        self.length, self.limit = length, limit

    def write(self, value: bytes, out: bytearray) -> None:
        if len(value) > self.limit:
            raise WireError(f"field of {len(value)} bytes is over the limit of {self.limit}")
        self.length.write(len(value), out)
        out += value

    def read(self, r: _Reader) -> bytes:
        n = self.length.read(r)
        if n > self.limit:
            raise WireError(f"field of {n} bytes is over the limit of {self.limit}")
        return bytes(r.take(n))


class _Text:
    """Text as length-prefixed bytes in `encoding`, up to `limit` bytes."""

    def __init__(self, length: _Int, limit: int, encoding: str):
        self.data, self.encoding = _Bytes(length, limit), encoding

    def write(self, value: str, out: bytearray) -> None:
        try:
            data = value.encode(self.encoding)
        except UnicodeEncodeError:
            raise WireError(f"{value!r} is not {self.encoding}") from None
        self.data.write(data, out)

    def read(self, r: _Reader) -> str:
        try:
            return self.data.read(r).decode(self.encoding)
        except UnicodeDecodeError:
            raise WireError("text is not valid") from None


class ListOf(Generic[T]):
    def __init__(self, item: Field[T], limit: int = MAX_LIST):
        self.item, self.limit = item, limit

    def write(self, values: Sequence[T], out: bytearray) -> None:
        if len(values) > self.limit:
            raise WireError(f"list of {len(values)} is over the limit of {self.limit}")
        U16.write(len(values), out)
        for value in values:
            self.item.write(value, out)

    def read(self, r: _Reader) -> tuple[T, ...]:
        n = U16.read(r)
        if n > self.limit:
            raise WireError(f"list of {n} is over the limit of {self.limit}")
        return tuple(self.item.read(r) for _ in range(n))


class Optional(Generic[T]):
    def __init__(self, item: Field[T]):
        self.item = item

    def write(self, value: T | None, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.item.write(value, out)

    def read(self, r: _Reader) -> T | None:
        flag = r.take(1)[0]
        if flag > 1:
            raise WireError("bad option flag")
        return self.item.read(r) if flag else None


class Record(Generic[T]):
    """A fixed sequence of named fields, read into `cls`."""

    def __init__(self, cls: Callable[..., T], fields: list[tuple[str, Field[Any]]]):
        self.cls, self.fields = cls, fields

    def write(self, value: T, out: bytearray) -> None:
        for name, kind in self.fields:
            kind.write(getattr(value, name), out)

    def read(self, r: _Reader) -> T:
        return self.cls(*(kind.read(r) for _, kind in self.fields))


U8, U16, U32, U64 = _Int("B"), _Int("H"), _Int("I"), _Int("Q")
B16, B32, B64, B96 = _Fixed(16), _Fixed(32), _Fixed(64), _Fixed(96)
NAME = _Text(U8, 255, "ascii")
TEXT = _Text(U16, 4096, "utf-8")
BLOB = _Bytes(U32, MAX_BLOB)
KEY = _Bytes(U32, 256)


@dataclass(frozen=True, slots=True)
class OneTimeKey:
    key_id: int
    key: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    identity_agreement: bytes
    agreement_signature: bytes  # Sign_identity("agreement-key", identity_agreement)
    account_key: bytes
    account_signature: bytes
    one_time_keys: tuple[OneTimeKey, ...]
    fallback: OneTimeKey


@dataclass(frozen=True, slots=True)
class NewMember:
    """A member a commit adds: their welcome is a sealed send to them, so it needs their
    access key or the work their policy for strangers asks (`pow.send`, the post's id)."""

    username: str
    access_key: bytes | None
    proof_of_work: int


ONE_TIME_KEY = Record(OneTimeKey, [("key_id", U64), ("key", KEY), ("signature", B64)])
BUNDLE = Record(
    Bundle,
    [
        ("identity_agreement", B32),
        ("agreement_signature", B64),
        ("account_key", KEY),
        ("account_signature", B64),
        ("one_time_keys", ListOf(ONE_TIME_KEY, 100)),
        ("fallback", ONE_TIME_KEY),
    ],
)


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """One entry of a group's log, as a watcher gets it (`group_entries`)."""

    position: int  # increasing per group: the watcher's next `after`
    message_id: bytes
    epoch: int
    post: int  # GroupPost, never WELCOME
    sent: int  # when the node took it, ms
    payload: bytes


NEW_MEMBER = Record(
    NewMember, [("username", NAME), ("access_key", Optional(B32)), ("proof_of_work", U64)]
)
MAX_KEY_PACKAGE = 16 << 10
GROUP_ENTRY = Record(
    GroupEntry,
    [
        ("position", U64),
        ("message_id", B16),
        ("epoch", U64),
        ("post", U8),
        ("sent", U64),
        ("payload", BLOB),
    ],
)
MAX_WATCH_HOLD_S = 55  # the longest a `group_watch` may be held

BODIES: dict[Kind, list[tuple[str, Field[Any]]]] = {
    Kind.REGISTER_BEGIN: [("username", NAME), ("bundle", BUNDLE)],
    Kind.REGISTER_FINISH: [
        ("username", NAME),
        ("bundle", BUNDLE),
        ("challenge", B32),
        ("difficulty", U8),
        ("expires", U64),
        ("proof_of_work", U64),
    ],
    Kind.PUBLISH_KEYS: [
        ("one_time_keys", ListOf(ONE_TIME_KEY, 100)),
        ("fallback", Optional(ONE_TIME_KEY)),
        ("agreement_signature", Optional(B64)),  # for accounts registered before it
    ],
    Kind.FETCH: [("max", U16)],
    Kind.ACK: [("message_ids", ListOf(B16))],
    Kind.REFRESH: [("push_key", B32)],
    Kind.UNREGISTER: [("username", NAME)],
    Kind.SET_ACCESS: [("access_verifier", B32), ("strangers", U8)],
    Kind.CERTIFY: [("username", NAME)],  # the account's own: the node keeps names hashed
    Kind.PUBLISH_KEY_PACKAGES: [
        ("key_packages", ListOf(_Bytes(U32, MAX_KEY_PACKAGE), 100)),
        ("last_resort", Optional(_Bytes(U32, MAX_KEY_PACKAGE))),
    ],
    Kind.LEAVE_GROUP: [("group_id", B32)],
    Kind.SEALED_SEND: [
        ("recipient", NAME),
        ("message_id", B16),
        ("payload", BLOB),
        ("access_key", Optional(B32)),
        ("proof_of_work", U64),
    ],
    Kind.LOOKUP: [("username", NAME), ("proof_of_work", U64)],
    Kind.FRONTENDS: [],
    Kind.CLAIM_KEY_PACKAGE: [("username", NAME), ("proof_of_work", U64)],
    Kind.GROUP_POST: [
        ("group_id", B32),
        ("epoch", U64),  # the epoch the payload belongs to (a commit's: the one it leaves)
        ("message_id", B16),
        ("post", U8),  # GroupPost, never WELCOME
        ("access_key", B32),  # the group's access key of `epoch` (docs/PROTOCOL.md)
        ("next_verifier", Optional(B32)),  # a commit's: the verifier of epoch + 1
        ("add", ListOf(NEW_MEMBER)),  # a commit's
        ("remove", ListOf(NAME)),  # a commit's
        ("welcome", Optional(BLOB)),  # a commit's, when it adds
        ("payload", BLOB),
    ],
    Kind.GROUP_WATCH: [
        ("group_id", B32),
        ("epoch", U64),
        ("access_key", B32),  # the group's access key of `epoch`, as for GROUP_POST
        ("after", U64),  # the position of the last entry taken in (0: from the oldest kept)
        ("hold", U8),  # seconds the node may hold it while nothing is after `after`
    ],
    Kind.CHALLENGE: [("challenge", B32), ("difficulty", U8), ("expires", U64)],
    Kind.REGISTERED: [("username", NAME)],
    Kind.BUNDLE: [
        ("username", NAME),
        ("identity", B32),
        ("bundle", BUNDLE),
        ("strangers", U8),
    ],
    Kind.KEYS_PUBLISHED: [("one_time_keys_left", U32)],
    Kind.ACCEPTED: [("message_id", B16)],
    Kind.FETCHED: [("pushed", U32), ("queued", U32)],
    Kind.ACKED: [("deleted", U32)],
    Kind.REFRESHED: [("queued", U32)],
    Kind.UNREGISTERED: [],
    Kind.POW_REQUIRED: [("difficulty", U8)],
    Kind.FRONTENDS_ARE: [("descriptor", BLOB)],
    Kind.ACCESS_SET: [],
    Kind.CERTIFIED: [("certificate", BLOB)],
    Kind.ERROR: [("code", U16), ("detail", TEXT)],
    Kind.KEY_PACKAGES_PUBLISHED: [("key_packages_left", U32)],
    Kind.KEY_PACKAGE: [
        ("username", NAME),
        ("identity", B32),
        ("key_package", _Bytes(U32, MAX_KEY_PACKAGE)),
    ],
    Kind.POSTED: [("message_id", B16), ("epoch", U64)],  # the group's epoch now
    Kind.LEFT_GROUP: [],
    Kind.DIRECTORY: [],
    Kind.DIRECTORY_IS: [("directory", BLOB)],
    Kind.GROUP_ENTRIES: [
        ("entries", ListOf(GROUP_ENTRY)),  # after `after`, in position order
        ("last", U64),  # the position of the group's newest entry
        ("oldest", U64),  # of the oldest kept (`last + 1` when none is kept)
    ],
    Kind.DELIVER: [("message_id", B16), ("sent", U64), ("payload", BLOB)],
    Kind.KEYS_LOW: [("one_time_keys_left", U32)],
    Kind.GROUP_DELIVER: [
        ("message_id", B16),
        ("group_id", B32),
        ("epoch", U64),
        ("post", U8),  # GroupPost
        ("sent", U64),  # when the node took it, ms
        ("payload", BLOB),
    ],
    Kind.KEY_PACKAGES_LOW: [("key_packages_left", U32)],
}


def _encode_body(kind: Kind, body: Body, out: bytearray) -> None:
    for name, field in BODIES[kind]:
        field.write(body[name], out)


def _decode_body(kind: Kind, r: _Reader) -> Body:
    return {name: field.read(r) for name, field in BODIES[kind]}


# --- messages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    kind: Kind
    requester: bytes
    timestamp: int
    request_id: bytes
    body: Body
    signed: bytes  # the bytes the signature covers, after the node key (anonymous: all)
    signature: bytes  # empty for an anonymous request


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer (to `in_reply_to`) or, with `in_reply_to` None, a push."""

    kind: Kind
    in_reply_to: bytes | None
    timestamp: int
    body: Body


def _kind(data: bytes, r: _Reader) -> Kind:
    version, kind = r.take(1)[0], r.take(1)[0]
    if version != VERSION:
        raise WireError(f"unknown protocol version {version}")
    try:
        return Kind(kind)
    except ValueError:
        raise WireError(f"unknown message kind {kind}") from None


def encode_request(
    identity: "_native.Identity",
    node_key: bytes,
    kind: Kind,
    body: Body,
    now_ms: int,
    request_id: bytes | None = None,
) -> tuple[bytes, bytes]:
    """A signed request: returns (request bytes, request_id)."""
    assert not kind.is_anonymous, f"{kind.name.lower()} is an anonymous request"
    request_id = request_id or os.urandom(16)
    out = bytearray((VERSION, kind))
    out += identity.signing_public
    U64.write(now_ms, out)
    out += request_id
    _encode_body(kind, body, out)
    out += identity.sign(REQUEST_LABEL, node_key + out)
    return bytes(out), request_id


def encode_anonymous_request(
    kind: Kind, body: Body, now_ms: int, request_id: bytes | None = None
) -> tuple[bytes, bytes]:
    """An anonymous request (no requester, no signature): returns (bytes, request_id)."""
    assert kind.is_anonymous, f"{kind.name.lower()} is a signed request"
    request_id = request_id or os.urandom(16)
    out = bytearray((VERSION, kind))
    U64.write(now_ms, out)
    out += request_id
    _encode_body(kind, body, out)
    return bytes(out), request_id


def decode_request(data: bytes) -> Request:
    """Parses a request; the caller checks the signature of a signed one (see
    `verify_requests`). An anonymous one has requester `ANONYMOUS` and no signature."""
    r = _Reader(data)
    kind = _kind(data, r)
    if not kind.is_request:
        raise WireError(f"{kind.name.lower()} is not a request")
    if kind.is_anonymous:
        timestamp, request_id = U64.read(r), B16.read(r)
        body = _decode_body(kind, r)
        if r.pos != len(data):
            raise WireError("request has trailing bytes")
        return Request(kind, ANONYMOUS, timestamp, request_id, body, bytes(data), b"")
    requester, timestamp, request_id = B32.read(r), U64.read(r), B16.read(r)
    body = _decode_body(kind, r)
    if len(data) - r.pos != 64:
        raise WireError("request has trailing bytes or no signature")
    return Request(
        kind, requester, timestamp, request_id, body, bytes(data[: r.pos]), bytes(data[r.pos :])
    )


def verify_requests(node_key: bytes, requests: list[Request]) -> list[bool]:
    """Checks many request signatures in one batch; an anonymous request has none to
    check (True)."""
    signed = [r for r in requests if not r.kind.is_anonymous]
    verdicts = iter(
        _native.verify_batch(
            [(r.requester, REQUEST_LABEL, node_key + r.signed, r.signature) for r in signed]
        )
        if signed
        else []
    )
    return [True if r.kind.is_anonymous else next(verdicts) for r in requests]


def encode_answer(
    node: "_native.Identity",
    requester: bytes,
    kind: Kind,
    body: Body,
    now_ms: int,
    in_reply_to: bytes | None = None,
) -> bytes:
    """An answer to `in_reply_to`, or a push when it is None; signed for `requester`
    (`ANONYMOUS` for the answer to an anonymous request)."""
    out = bytearray((VERSION, kind))
    if in_reply_to is None:
        assert kind.is_push, "an answer needs in_reply_to"
    else:
        assert not kind.is_push, "a push answers nothing"
        out += in_reply_to
    U64.write(now_ms, out)
    _encode_body(kind, body, out)
    label = PUSH_LABEL if kind.is_push else ANSWER_LABEL
    out += node.sign(label, requester + out)
    return bytes(out)


def decode_answer(data: bytes, node_key: "_native.PublicKey", requester: bytes) -> Answer:
    """Parses and verifies an answer or push from the node; `WireError` if it is not
    exactly that, signed by `node_key` for `requester`."""
    r = _Reader(data)
    kind = _kind(data, r)
    if kind.is_request:
        raise WireError(f"{kind.name.lower()} is not an answer")
    in_reply_to = None if kind.is_push else B16.read(r)
    timestamp = U64.read(r)
    body = _decode_body(kind, r)
    if len(data) - r.pos != 64:
        raise WireError("answer has trailing bytes or no signature")
    label = PUSH_LABEL if kind.is_push else ANSWER_LABEL
    try:
        node_key.verify(label, requester + data[: r.pos], data[r.pos :])
    except Exception as e:  # BadSignature from the native core
        raise WireError("answer is not signed by the node") from e
    return Answer(kind, in_reply_to, timestamp, body)


# --- frame ids of node answers and pushes -----------------------------------------------
# The frames of a node answer or push carry a message id that only the node and the user
# can make, so the user's client reassembles them apart from what strangers send to its
# address (docs/PROTOCOL.md).

ANSWER_FRAME_DOMAIN = b"nymchat-answer-frame-v1\x00"
PUSH_FRAME_DOMAIN = b"nymchat-push-frame-v1\x00"


def answer_frame_id(request_id: bytes) -> bytes:
    """The frame message id of the answer to `request_id` (a secret of user and node)."""
    return hashlib.sha256(ANSWER_FRAME_DOMAIN + request_id).digest()[:16]


def push_frame_id(push_key: bytes, nonce: bytes | None = None) -> bytes:
    """A frame message id for a push: a random nonce and its MAC under the user's push key."""
    nonce = nonce or os.urandom(8)
    return nonce + hmac.new(push_key, PUSH_FRAME_DOMAIN + nonce, hashlib.sha256).digest()[:8]


def is_push_frame_id(push_key: bytes, frame_id: bytes) -> bool:
    return len(frame_id) == 16 and hmac.compare_digest(
        push_frame_id(push_key, frame_id[:8]), frame_id
    )


# --- the frontend descriptor -------------------------------------------------------------
# Which nym addresses (frontends) a node answers on, signed by the node key, with a time
# of issue and an expiry (docs/PROTOCOL.md). Clients cache it, refuse one older than the
# one they hold, and pick their home frontend among its entries by rendezvous hash.

MAX_FRONTENDS = 64
DESCRIPTOR_VERSION = 1
DESCRIPTOR_TTL_MS = 7 * 86_400_000  # how long a descriptor is valid after its issue


@dataclass(frozen=True, slots=True)
class Frontend:
    id: int  # u16, stable for the slot of the node's nym-client
    address: str  # the nym address, as text


@dataclass(frozen=True, slots=True)
class Descriptor:
    node: bytes  # the node's signing key
    issued: int  # ms
    expires: int  # ms
    frontends: tuple[Frontend, ...]


FRONTEND = Record(Frontend, [("id", U16), ("address", _Text(U8, 255, "ascii"))])
DESCRIPTOR = Record(
    Descriptor,
    [
        ("node", B32),
        ("issued", U64),
        ("expires", U64),
        ("frontends", ListOf(FRONTEND, MAX_FRONTENDS)),
    ],
)


class _NodeSigned(Protocol):
    @property
    def node(self) -> bytes: ...  # the signing key of the node that signed it


S = TypeVar("S", bound=_NodeSigned)


def _sign_node_record(
    node: "_native.Identity", record: Record[S], value: S, version: int, label: str
) -> bytes:
    """version u8 ‖ the record ‖ Sign_node(label, version ‖ record): what a node signs
    about itself for its users (its frontend descriptor, its directory)."""
    out = bytearray((version,))
    record.write(value, out)
    out += node.sign(label, bytes(out))
    return bytes(out)


def _open_node_record(
    data: bytes,
    node_key: "_native.PublicKey",
    record: Record[S],
    version: int,
    label: str,
    what: str,
) -> S:
    """The value of `_sign_node_record`'s bytes, once of `version`, signed by `node_key`
    and naming it (its `node` field); `WireError` naming `what` otherwise."""
    if len(data) < 1 + 64 or data[0] != version:
        raise WireError(f"not a {what} of a known version")
    try:
        node_key.verify(label, data[:-64], data[-64:])
    except Exception as e:  # BadSignature from the native core
        raise WireError(f"the {what} is not signed by the node") from e
    value = decode_record(record, data[1:-64])
    if value.node != node_key.to_bytes():
        raise WireError(f"the {what} is another node's")
    return value


def encode_descriptor(node: "_native.Identity", descriptor: Descriptor) -> bytes:
    """version u8 ‖ the record ‖ Sign_node("node-frontends", version ‖ record)."""
    if not descriptor.frontends:
        raise WireError("a descriptor lists at least one frontend")
    return _sign_node_record(node, DESCRIPTOR, descriptor, DESCRIPTOR_VERSION, FRONTENDS_LABEL)


def decode_descriptor(data: bytes, node_key: "_native.PublicKey", now_ms: int) -> Descriptor:
    """A descriptor signed by `node_key` for itself, issued and not yet expired at
    `now_ms` (give or take the freshness of requests); `WireError` otherwise."""
    descriptor = _open_node_record(
        data, node_key, DESCRIPTOR, DESCRIPTOR_VERSION, FRONTENDS_LABEL, "frontend descriptor"
    )
    if not descriptor.frontends:
        raise WireError("the frontend descriptor lists no frontend")
    if len({f.id for f in descriptor.frontends}) != len(descriptor.frontends):
        raise WireError("the frontend descriptor lists an id twice")
    if descriptor.issued > now_ms + 120_000:
        raise WireError("the frontend descriptor is issued in the future")
    if descriptor.expires <= now_ms:
        raise WireError("the frontend descriptor has expired")
    return descriptor


# --- node directories (docs/PROTOCOL.md, node directory) ---------------------------------
# The nodes a node's operator lists for its users to pin by petname: the node signs the
# list, so that it can be shown (and checked) apart from the answer that carried it.

MAX_DIRECTORY = 256  # entries
MAX_DIRECTORY_CONTACT = 2048  # bytes of an entry's contact string
DIRECTORY_VERSION = 1


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    petname: str  # normalised (protocol.address)
    contact: str  # a node contact string (protocol.contact)


@dataclass(frozen=True, slots=True)
class Directory:
    node: bytes  # the signing key of the node that lists them
    issued: int  # ms
    expires: int  # ms
    entries: tuple[DirectoryEntry, ...]


DIRECTORY_ENTRY = Record(
    DirectoryEntry,
    [("petname", NAME), ("contact", _Text(U16, MAX_DIRECTORY_CONTACT, "ascii"))],
)
DIRECTORY = Record(
    Directory,
    [
        ("node", B32),
        ("issued", U64),
        ("expires", U64),
        ("entries", ListOf(DIRECTORY_ENTRY, MAX_DIRECTORY)),
    ],
)


def encode_directory(node: "_native.Identity", directory: Directory) -> bytes:
    """version u8 ‖ the record ‖ Sign_node("nymchat-directory", version ‖ record)."""
    return _sign_node_record(node, DIRECTORY, directory, DIRECTORY_VERSION, DIRECTORY_LABEL)


def decode_directory(data: bytes, node_key: "_native.PublicKey", now_ms: int) -> Directory:
    """A directory signed by `node_key` for itself, issued and not expired at `now_ms`,
    each entry a valid petname (once) and contact string; `WireError` otherwise."""
    directory = _open_node_record(
        data, node_key, DIRECTORY, DIRECTORY_VERSION, DIRECTORY_LABEL, "node directory"
    )
    if directory.issued > now_ms + 120_000 or directory.expires <= now_ms:
        raise WireError("the node directory is not current")
    for entry in directory.entries:
        try:
            if normalize_petname(entry.petname) != entry.petname:
                raise WireError(f"the directory's petname {entry.petname!r} is not normalised")
            NodeContact.parse(entry.contact)
        except ValueError as e:
            raise WireError(f"the node directory lists a bad entry: {e}") from None
    if len({entry.petname for entry in directory.entries}) != len(directory.entries):
        raise WireError("the node directory lists a petname twice")
    return directory


# --- sender certificates ----------------------------------------------------------------
# The node's word that a name is an identity's, until a time: a sealed message carries
# its sender's, so that its recipient knows the name inside is not merely claimed
# (docs/PROTOCOL.md, end-to-end messages).

CERTIFICATE_LABEL = "sender-certificate"
CERTIFICATE_GRACE_MS = 10 * 60_000  # an expired certificate is still taken for so long
MAX_CERTIFICATE = (1 + 255) + 32 + 8 + 64


@dataclass(frozen=True, slots=True)
class Certificate:
    name: str
    identity: bytes
    expires: int  # ms


CERTIFICATE = Record(Certificate, [("name", NAME), ("identity", B32), ("expires", U64)])
CERTIFICATE_BYTES = _Bytes(U16, MAX_CERTIFICATE)  # a certificate inside another message


def encode_certificate(node: "_native.Identity", name: str, identity: bytes, expires: int) -> bytes:
    """The record ‖ Sign_node("sender-certificate", record)."""
    record = encode_record(CERTIFICATE, Certificate(name, identity, expires))
    return record + node.sign(CERTIFICATE_LABEL, record)


def decode_certificate(data: bytes, node_key: "_native.PublicKey", now_ms: int) -> Certificate:
    """A certificate signed by `node_key`, expired at most `CERTIFICATE_GRACE_MS` before
    `now_ms`; `WireError` otherwise."""
    if not 64 < len(data) <= MAX_CERTIFICATE:
        raise WireError("not a sender certificate")
    try:
        node_key.verify(CERTIFICATE_LABEL, data[:-64], data[-64:])
    except Exception as e:  # BadSignature from the native core
        raise WireError("the sender certificate is not signed by the node") from e
    certificate = decode_record(CERTIFICATE, data[:-64])
    if certificate.expires + CERTIFICATE_GRACE_MS < now_ms:
        raise WireError("the sender certificate has expired")
    return certificate


# --- access keys (docs/PROTOCOL.md, sealed sending) ------------------------------------

ACCESS_DOMAIN = b"nymchat-access-v1\x00"


def access_verifier(access_key: bytes) -> bytes:
    """What the node keeps of a user's access key: enough to check one, not to make one."""
    return hashlib.sha256(ACCESS_DOMAIN + access_key).digest()


def encode_record(record: Record[T], value: T) -> bytes:
    out = bytearray()
    record.write(value, out)
    return bytes(out)


def decode_record(record: Record[T], data: bytes) -> T:
    r = _Reader(data)
    value = record.read(r)
    if r.pos != len(data):
        raise WireError("trailing bytes")
    return value
