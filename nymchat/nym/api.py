"""Codecs for the nym-client websocket API, both directions, Text (JSON) and Binary.

Requests go from an application to its nym-client; responses come back. `nymchat
mixnet` decodes requests and encodes responses; the transport does the opposite. The
exact contract is `docs/NYM-CLIENT-API.md`; error texts follow the real client, which
formats every failure as `<kind text>:<detail>`.
"""

import enum
import json
import struct
from dataclasses import dataclass

from nymchat import _native
from nymchat.errors import JsonError
from nymchat.nym import base58
from nymchat.nym.address import ADDRESS_LEN, Address, AddressError

SENDER_TAG_LEN = 16


class ErrorKind(enum.IntEnum):
    EMPTY_REQUEST = 0x01
    TOO_SHORT_REQUEST = 0x02
    UNKNOWN_REQUEST = 0x03
    MALFORMED_REQUEST = 0x04
    EMPTY_RESPONSE = 0x80
    TOO_SHORT_RESPONSE = 0x81
    UNKNOWN_RESPONSE = 0x82
    MALFORMED_RESPONSE = 0x83
    OTHER = 0xFF

    @property
    def text(self) -> str:
        return _KIND_TEXT[self]


_KIND_TEXT = {
    ErrorKind.EMPTY_REQUEST: "received request contained no data",
    ErrorKind.TOO_SHORT_REQUEST: "received request did not contain enough data",
    ErrorKind.UNKNOWN_REQUEST: "unknown request type",
    ErrorKind.MALFORMED_REQUEST: "malformed request",
    ErrorKind.EMPTY_RESPONSE: "received response contained no data",
    ErrorKind.TOO_SHORT_RESPONSE: "received response did not contain enough data",
    ErrorKind.UNKNOWN_RESPONSE: "unknown response type",
    ErrorKind.MALFORMED_RESPONSE: "malformed response",
    ErrorKind.OTHER: "other",
}


class ApiError(Exception):
    """A frame that does not decode; `str()` is the text the real client sends back."""

    def __init__(self, kind: ErrorKind, detail: str):
        super().__init__(f"{kind.text}:{detail}")
        self.kind = kind
        self.detail = detail


# --- requests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    recipient: Address
    message: bytes
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class SendAnonymous:
    recipient: Address
    message: bytes
    reply_surbs: int
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    sender_tag: bytes
    message: bytes
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class SelfAddress:
    pass


@dataclass(frozen=True, slots=True)
class ClosedConnection:
    connection_id: int


@dataclass(frozen=True, slots=True)
class GetLaneQueueLength:
    connection_id: int


Request = Send | SendAnonymous | Reply | SelfAddress | ClosedConnection | GetLaneQueueLength

# --- responses ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    message: bytes
    sender_tag: bytes | None = None


@dataclass(frozen=True, slots=True)
class SelfAddressIs:
    address: Address


@dataclass(frozen=True, slots=True)
class LaneQueueLength:
    lane: int
    queue_length: int


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    kind: ErrorKind
    message: str


Response = Received | SelfAddressIs | LaneQueueLength | ErrorResponse


def error_response(error: ApiError) -> ErrorResponse:
    return ErrorResponse(error.kind, error.detail)


# --- binary ---------------------------------------------------------------------------

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_REQUEST_TAGS = {
    0x00: "Send",
    0x01: "SendAnonymous",
    0x02: "Reply",
    0x03: "SelfAddress",
    0x04: "ClosedConnection",
    0x05: "GetLaneQueueLength",
}


def _conn(connection_id: int | None) -> bytes:
    return _U64.pack(connection_id or 0)


def _length_prefixed(tail: bytes, what: str, kind: ErrorKind) -> bytes:
    """`len u64 ‖ data` that must fill the rest of the frame exactly."""
    (length,) = _U64.unpack_from(tail)
    if length != len(tail) - 8:
        raise ApiError(
            kind, f"{what} len has inconsistent length. specified: {length} got: {len(tail) - 8}"
        )
    return bytes(tail[8:])


def _recipient(data: bytes) -> Address:
    try:
        return Address.from_bytes(data)
    except AddressError as e:
        raise ApiError(ErrorKind.MALFORMED_REQUEST, f"malformed recipient: {e}") from None


def encode_request_binary(request: Request) -> bytes:
    match request:
        case Send(recipient, message, conn):
            return b"\x00" + recipient.to_bytes() + _conn(conn) + _U64.pack(len(message)) + message
        case SendAnonymous(recipient, message, surbs, conn):
            return (
                b"\x01"
                + _U32.pack(surbs)
                + recipient.to_bytes()
                + _conn(conn)
                + _U64.pack(len(message))
                + message
            )
        case Reply(tag, message, conn):
            return b"\x02" + tag + _conn(conn) + _U64.pack(len(message)) + message
        case SelfAddress():
            return b"\x03"
        case ClosedConnection(conn):
            return b"\x04" + _U64.pack(conn)
        case GetLaneQueueLength(conn):
            return b"\x05" + _U64.pack(conn)
    raise TypeError(f"not a request: {request!r}")


# Shortest valid frame of each request that carries data, and its name in error texts.
_MINIMUM = {
    0x00: (1 + ADDRESS_LEN + 16, "send"),
    0x01: (1 + 4 + ADDRESS_LEN + 16, "send_anonymous"),
    0x02: (1 + SENDER_TAG_LEN + 16, "reply"),
}
_EXACT = {
    0x04: "The received closed connection has invalid length",
    0x05: "The received get lane queue lengths has invalid length",
}


def decode_request_binary(frame: bytes) -> Request:
    if not frame:
        raise ApiError(ErrorKind.EMPTY_REQUEST, "no data provided")
    tag = frame[0]
    if tag not in _REQUEST_TAGS:
        raise ApiError(
            ErrorKind.UNKNOWN_REQUEST, f"{tag} does not correspond to any valid request tag"
        )
    mal = ErrorKind.MALFORMED_REQUEST
    if tag in _MINIMUM:
        minimum, name = _MINIMUM[tag]
        if len(frame) < minimum:
            raise ApiError(
                ErrorKind.TOO_SHORT_REQUEST, f"not enough data provided to recover '{name}'"
            )
    if tag == 0x00:  # as the real client: the recipient, then the length
        recipient = _recipient(frame[1 : 1 + ADDRESS_LEN])
        (conn,) = _U64.unpack_from(frame, 1 + ADDRESS_LEN)
        message = _length_prefixed(frame[1 + ADDRESS_LEN + 8 :], "data", mal)
        return Send(recipient, message, conn or None)
    if tag == 0x01:
        (surbs,) = _U32.unpack_from(frame, 1)
        recipient = _recipient(frame[5 : 5 + ADDRESS_LEN])
        (conn,) = _U64.unpack_from(frame, 5 + ADDRESS_LEN)
        message = _length_prefixed(frame[5 + ADDRESS_LEN + 8 :], "data", mal)
        return SendAnonymous(recipient, message, surbs, conn or None)
    if tag == 0x02:
        (conn,) = _U64.unpack_from(frame, 1 + SENDER_TAG_LEN)
        message = _length_prefixed(frame[1 + SENDER_TAG_LEN + 8 :], "message", mal)
        return Reply(bytes(frame[1 : 1 + SENDER_TAG_LEN]), message, conn or None)
    if tag == 0x03:
        return SelfAddress()  # trailing bytes are ignored
    if len(frame) != 9:
        raise ApiError(mal, _EXACT[tag])
    (conn,) = _U64.unpack_from(frame, 1)
    return ClosedConnection(conn) if tag == 0x04 else GetLaneQueueLength(conn)


def encode_response_binary(response: Response) -> bytes:
    match response:
        case Received(message, tag):
            flag = b"\x00" if tag is None else b"\x01" + tag
            return b"\x01" + flag + _U64.pack(len(message)) + message
        case SelfAddressIs(address):
            return b"\x02" + address.to_bytes()
        case LaneQueueLength(lane, queue_length):
            return b"\x03" + _U64.pack(lane) + _U64.pack(queue_length)
        case ErrorResponse(kind, message):
            text = message.encode()
            return b"\x00" + bytes([kind]) + _U64.pack(len(text)) + text
    raise TypeError(f"not a response: {response!r}")


def _need_response(frame: bytes, length: int) -> None:
    if len(frame) < length:
        raise ApiError(ErrorKind.TOO_SHORT_RESPONSE, "not enough data provided")


def decode_response_binary(frame: bytes) -> Response:
    if not frame:
        raise ApiError(ErrorKind.EMPTY_RESPONSE, "no data provided")
    tag, mal = frame[0], ErrorKind.MALFORMED_RESPONSE
    if tag == 0x01:
        _need_response(frame, 10)
        if frame[1] == 0:
            return Received(_length_prefixed(frame[2:], "data", mal))
        if frame[1] != 1:
            raise ApiError(mal, f"invalid sender tag flag {frame[1]}")
        _need_response(frame, 10 + SENDER_TAG_LEN)
        return Received(
            _length_prefixed(frame[2 + SENDER_TAG_LEN :], "data", mal),
            bytes(frame[2 : 2 + SENDER_TAG_LEN]),
        )
    if tag == 0x02:
        _need_response(frame, 1 + ADDRESS_LEN)
        try:
            return SelfAddressIs(Address.from_bytes(frame[1 : 1 + ADDRESS_LEN]))
        except AddressError as e:
            raise ApiError(mal, str(e)) from None
    if tag == 0x03:
        _need_response(frame, 17)
        return LaneQueueLength(*struct.unpack_from(">QQ", frame, 1))
    if tag == 0x00:
        _need_response(frame, 10)
        try:
            kind = ErrorKind(frame[1])
        except ValueError:
            kind = ErrorKind.OTHER
        return ErrorResponse(
            kind, _length_prefixed(frame[2:], "message", mal).decode("utf-8", "replace")
        )
    raise ApiError(
        ErrorKind.UNKNOWN_RESPONSE, f"{tag} does not correspond to any valid response tag"
    )


# --- text -----------------------------------------------------------------------------


def _dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def encode_request_text(request: Request) -> str:
    """JSON form; `message` must be UTF-8 (Text mode cannot carry arbitrary bytes)."""
    obj: dict[str, str | int]
    match request:
        case Send(recipient, message, conn):
            obj = {"type": "send", "recipient": str(recipient), "message": message.decode()}
        case SendAnonymous(recipient, message, surbs, conn):
            obj = {
                "type": "sendAnonymous",
                "recipient": str(recipient),
                "message": message.decode(),
                "replySurbs": surbs,
            }
        case Reply(tag, message, conn):
            obj = {"type": "reply", "senderTag": base58.encode(tag), "message": message.decode()}
        case SelfAddress():
            return _dumps({"type": "selfAddress"})
        case _:
            raise ValueError(f"{type(request).__name__} has no Text form")
    if conn is not None:
        obj["connectionId"] = conn
    return _dumps(obj)


def encode_response_text(response: Response) -> str:
    match response:
        case Received(message, tag):
            return _dumps(
                {
                    "type": "received",
                    "message": message.decode("utf-8", "replace"),
                    "senderTag": None if tag is None else base58.encode(tag),
                }
            )
        case SelfAddressIs(address):
            return _dumps({"type": "selfAddress", "address": str(address)})
        case LaneQueueLength(lane, queue_length):
            return _dumps({"type": "laneQueueLength", "lane": lane, "queue_length": queue_length})
        case ErrorResponse(kind, message):
            return _dumps({"type": "error", "message": f"{kind.text}:{message}"})
    raise TypeError(f"not a response: {response!r}")


def decode_request_text(text: str) -> Request:
    """Reads a Text request as the real client does: serde_json with the crate's derived
    `ClientRequestText` (in the native core: the same limits, forms and error texts), then
    its `TryInto<ClientRequest>` (text.rs), here."""
    try:
        request = _native.parse_nym_request_text(text)
    except JsonError as e:
        raise ApiError(ErrorKind.MALFORMED_REQUEST, str(e)) from None
    match request:
        case ("selfAddress", *_):
            return SelfAddress()
        case ("reply", message, tag, _, conn):
            return Reply(_sender_tag(tag), message.encode(), conn)
        case ("send", message, recipient, _, conn):
            return Send(_address(recipient), message.encode(), conn)
        case ("sendAnonymous", message, recipient, surbs, conn):
            return SendAnonymous(_address(recipient), message.encode(), surbs, conn)


def _address(text: str) -> Address:
    try:
        return Address.parse(text)
    except AddressError as e:
        raise ApiError(ErrorKind.MALFORMED_REQUEST, str(e)) from None


def _sender_tag(text: str) -> bytes:
    try:
        tag = base58.decode(text)
    except ValueError as e:
        raise ApiError(
            ErrorKind.MALFORMED_REQUEST, f"Failed to decode the base58-encoded string - {e}"
        ) from None
    if len(tag) != SENDER_TAG_LEN:
        raise ApiError(
            ErrorKind.MALFORMED_REQUEST,
            f"Decoded AnonymousSenderTag has invalid length. Expected "
            f"{SENDER_TAG_LEN}, but got {len(tag)}",
        )
    return tag


def decode_response_text(text: str) -> Response:
    """Parses a Text response from a nym-client."""

    def malformed(detail: str) -> ApiError:
        return ApiError(ErrorKind.MALFORMED_RESPONSE, detail)

    try:
        obj = _native.json_loads(text.encode())
    except JsonError as e:
        raise malformed(str(e)) from None
    if not isinstance(obj, dict):
        raise malformed("not a JSON object")
    try:
        match obj.get("type"):
            case "received":
                tag = obj.get("senderTag")
                return Received(
                    obj["message"].encode(), None if tag is None else base58.decode(tag)
                )
            case "selfAddress":
                return SelfAddressIs(Address.parse(obj["address"]))
            case "laneQueueLength":
                return LaneQueueLength(int(obj["lane"]), int(obj["queue_length"]))
            case "error":
                kind_text, _, detail = str(obj["message"]).partition(":")
                kind = next((k for k in ErrorKind if k.text == kind_text), ErrorKind.OTHER)
                return ErrorResponse(
                    kind,
                    detail
                    if kind is not ErrorKind.OTHER or kind_text == "other"
                    else str(obj["message"]),
                )
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise malformed(f"{e.__class__.__name__}: {e}") from None
    raise ApiError(ErrorKind.UNKNOWN_RESPONSE, f"unknown response type {obj.get('type')!r}")
