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
_REQUEST_TAGS = {0x00: "Send", 0x01: "SendAnonymous", 0x02: "Reply", 0x03: "SelfAddress",
                 0x04: "ClosedConnection", 0x05: "GetLaneQueueLength"}


def _conn(connection_id: int | None) -> bytes:
    return _U64.pack(connection_id or 0)


def _data(tail: bytes, kind: ErrorKind) -> bytes:
    """Length-prefixed data that must fill the rest of the frame exactly."""
    if len(tail) < 8:
        raise ApiError(ErrorKind.TOO_SHORT_REQUEST if kind is ErrorKind.MALFORMED_REQUEST
                       else ErrorKind.TOO_SHORT_RESPONSE, "")
    (length,) = _U64.unpack_from(tail)
    if length != len(tail) - 8:
        raise ApiError(kind, f"data len has inconsistent length. specified: {length} got: "
                             f"{len(tail) - 8}")
    return tail[8:]


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
            return (b"\x01" + _U32.pack(surbs) + recipient.to_bytes() + _conn(conn)
                    + _U64.pack(len(message)) + message)
        case Reply(tag, message, conn):
            return b"\x02" + tag + _conn(conn) + _U64.pack(len(message)) + message
        case SelfAddress():
            return b"\x03"
        case ClosedConnection(conn):
            return b"\x04" + _U64.pack(conn)
        case GetLaneQueueLength(conn):
            return b"\x05" + _U64.pack(conn)
    raise TypeError(f"not a request: {request!r}")


def _need(frame: bytes, length: int) -> None:
    if len(frame) < length:
        raise ApiError(ErrorKind.TOO_SHORT_REQUEST, "")


def decode_request_binary(frame: bytes) -> Request:
    if not frame:
        raise ApiError(ErrorKind.EMPTY_REQUEST, "")
    tag = frame[0]
    if tag not in _REQUEST_TAGS:
        raise ApiError(ErrorKind.UNKNOWN_REQUEST,
                       f"{tag} does not correspond to any valid request tag")
    mal = ErrorKind.MALFORMED_REQUEST
    if tag == 0x00:
        _need(frame, 1 + ADDRESS_LEN + 8 + 8)
        (conn,) = _U64.unpack_from(frame, 1 + ADDRESS_LEN)
        message = _data(frame[1 + ADDRESS_LEN + 8:], mal)
        return Send(_recipient(frame[1:1 + ADDRESS_LEN]), message, conn or None)
    if tag == 0x01:
        _need(frame, 1 + 4 + ADDRESS_LEN + 8 + 8)
        (surbs,) = _U32.unpack_from(frame, 1)
        (conn,) = _U64.unpack_from(frame, 5 + ADDRESS_LEN)
        message = _data(frame[5 + ADDRESS_LEN + 8:], mal)
        return SendAnonymous(_recipient(frame[5:5 + ADDRESS_LEN]), message, surbs, conn or None)
    if tag == 0x02:
        _need(frame, 1 + SENDER_TAG_LEN + 8 + 8)
        (conn,) = _U64.unpack_from(frame, 1 + SENDER_TAG_LEN)
        message = _data(frame[1 + SENDER_TAG_LEN + 8:], mal)
        return Reply(bytes(frame[1:1 + SENDER_TAG_LEN]), message, conn or None)
    if tag == 0x03:
        return SelfAddress()
    _need(frame, 9)
    (conn,) = _U64.unpack_from(frame, 1)
    return ClosedConnection(conn) if tag == 0x04 else GetLaneQueueLength(conn)


def encode_response_binary(response: Response) -> bytes:
    match response:
        case Received(message, None):
            return b"\x01\x00" + _U64.pack(len(message)) + message
        case Received(message, tag):
            return b"\x01\x01" + tag + _U64.pack(len(message)) + message
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
        raise ApiError(ErrorKind.TOO_SHORT_RESPONSE, "")


def decode_response_binary(frame: bytes) -> Response:
    if not frame:
        raise ApiError(ErrorKind.EMPTY_RESPONSE, "")
    tag, mal = frame[0], ErrorKind.MALFORMED_RESPONSE
    if tag == 0x01:
        _need_response(frame, 2)
        if frame[1] == 0:
            return Received(_data(frame[2:], mal))
        if frame[1] != 1:
            raise ApiError(mal, f"invalid sender tag flag {frame[1]}")
        _need_response(frame, 2 + SENDER_TAG_LEN)
        return Received(_data(frame[2 + SENDER_TAG_LEN:], mal),
                        bytes(frame[2:2 + SENDER_TAG_LEN]))
    if tag == 0x02:
        _need_response(frame, 1 + ADDRESS_LEN)
        try:
            return SelfAddressIs(Address.from_bytes(frame[1:1 + ADDRESS_LEN]))
        except AddressError as e:
            raise ApiError(mal, str(e)) from None
    if tag == 0x03:
        _need_response(frame, 17)
        return LaneQueueLength(*struct.unpack_from(">QQ", frame, 1))
    if tag == 0x00:
        _need_response(frame, 2)
        try:
            kind = ErrorKind(frame[1])
        except ValueError:
            kind = ErrorKind.OTHER
        return ErrorResponse(kind, _data(frame[2:], mal).decode("utf-8", "replace"))
    raise ApiError(ErrorKind.UNKNOWN_RESPONSE,
                   f"{tag} does not correspond to any valid response tag")


# --- text -----------------------------------------------------------------------------

_VARIANTS = ("send", "sendAnonymous", "reply", "selfAddress")


def _dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def encode_request_text(request: Request) -> str:
    """JSON form; `message` must be UTF-8 (Text mode cannot carry arbitrary bytes)."""
    match request:
        case Send(recipient, message, conn):
            obj = {"type": "send", "recipient": str(recipient), "message": message.decode()}
        case SendAnonymous(recipient, message, surbs, conn):
            obj = {"type": "sendAnonymous", "recipient": str(recipient),
                   "message": message.decode(), "replySurbs": surbs}
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
            return _dumps({"type": "received",
                           "message": message.decode("utf-8", "replace"),
                           "senderTag": None if tag is None else base58.encode(tag)})
        case SelfAddressIs(address):
            return _dumps({"type": "selfAddress", "address": str(address)})
        case LaneQueueLength(lane, queue_length):
            return _dumps({"type": "laneQueueLength", "lane": lane, "queue_length": queue_length})
        case ErrorResponse(kind, message):
            return _dumps({"type": "error", "message": f"{kind.text}:{message}"})
    raise TypeError(f"not a response: {response!r}")


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _Duplicate(key)
        obj[key] = value
    return obj


def _reject_constant(name):
    raise json.JSONDecodeError("Expecting value", "", 0)


def _describe(value) -> str:
    """serde's name for an unexpected JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def _syntax_error(text: str, error: json.JSONDecodeError) -> str:
    """Turns Python's JSON error into serde_json's wording and position."""
    at_end = error.pos >= len(text.rstrip())
    container = _innermost_container(text[:error.pos])
    if error.msg.startswith("Unterminated string"):
        detail, at_end = "EOF while parsing a string", True
    elif at_end and container == "{":
        detail = "EOF while parsing an object"
    elif at_end and container == "[":
        detail = "EOF while parsing a list"
    elif at_end:
        detail = "EOF while parsing a value"
    elif error.msg.startswith("Expecting property name"):
        detail = "key must be a string"
    elif error.msg.startswith("Expecting ':'"):
        detail = "expected `:`"
    elif error.msg.startswith("Expecting ','"):
        detail = "expected `,` or `}`" if container == "{" else "expected `,` or `]`"
    elif error.msg.startswith("Extra data"):
        detail = "trailing characters"
    elif error.msg.startswith("Invalid control character"):
        detail = "control character (\\u0000-\\u001F) found while parsing a string"
    elif error.msg.startswith("Invalid \\"):
        detail = "invalid escape"
    else:
        detail = "expected value"
    pos = len(text) if at_end else error.pos + 1
    return f"{detail} {_position(text, pos)}"


def _position(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1)
    return f"at line {line} column {column}"


def _innermost_container(prefix: str) -> str | None:
    stack, in_string, escaped = [], False, False
    for c in prefix:
        if in_string:
            escaped = not escaped and c == "\\"
            if c == '"' and not escaped:
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            stack.append(c)
        elif c in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def decode_request_text(text: str) -> Request:
    """Parses a Text request as the real client's serde definition does."""
    def malformed(detail: str) -> ApiError:
        return ApiError(ErrorKind.MALFORMED_REQUEST, detail)

    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise malformed(_syntax_error(text, e)) from None
    except _Duplicate as e:
        raise malformed(f"duplicate field `{e.args[0]}` {_position(text, len(text.rstrip()))}")\
            from None
    except RecursionError:
        raise malformed(f"recursion limit exceeded {_position(text, len(text))}") from None
    end = _position(text, len(text.rstrip()))
    if not isinstance(obj, dict):
        raise malformed(f"invalid type: {_describe(obj)}, expected internally tagged enum "
                        f"ClientRequestText {end}")
    if "type" not in obj:
        raise malformed(f"missing field `type` {end}")
    variant = obj["type"]
    if not isinstance(variant, str):
        raise malformed(f"invalid type: {_describe(variant)}, expected variant identifier {end}")
    if variant not in _VARIANTS:
        expected = ", ".join(f"`{v}`" for v in _VARIANTS)
        raise malformed(f"unknown variant `{variant}`, expected one of {expected}")

    def field(name: str, kind: str, optional: bool = False):
        if name not in obj or (optional and obj[name] is None):
            if optional:
                return None
            raise malformed(f"missing field `{name}` {end}")
        value = obj[name]
        if kind == "string":
            if not isinstance(value, str):
                raise malformed(f"invalid type: {_describe(value)}, expected a string {end}")
            return value
        bits = 64 if kind == "u64" else 32
        if isinstance(value, bool) or not isinstance(value, int):
            raise malformed(f"invalid type: {_describe(value)}, expected {kind} {end}")
        if not 0 <= value < 2**bits:
            raise malformed(f"invalid value: integer `{value}`, expected {kind} {end}")
        return value

    if variant == "selfAddress":
        return SelfAddress()
    if variant == "reply":
        tag_text = field("senderTag", "string")
        message = field("message", "string").encode()
        conn = field("connectionId", "u64", optional=True)
        try:
            tag = base58.decode(tag_text)
        except ValueError as e:
            raise malformed(f"{e} {end}") from None
        if len(tag) != SENDER_TAG_LEN:
            raise malformed(f"sender tag must be {SENDER_TAG_LEN} bytes {end}")
        return Reply(tag, message, conn)
    recipient_text = field("recipient", "string")
    message = field("message", "string").encode()
    surbs = field("replySurbs", "u32") if variant == "sendAnonymous" else None
    conn = field("connectionId", "u64", optional=True)
    try:
        recipient = Address.parse(recipient_text)
    except AddressError as e:
        raise malformed(str(e)) from None
    if variant == "send":
        return Send(recipient, message, conn)
    return SendAnonymous(recipient, message, surbs, conn)


def decode_response_text(text: str) -> Response:
    """Parses a Text response from a nym-client."""
    def malformed(detail: str) -> ApiError:
        return ApiError(ErrorKind.MALFORMED_RESPONSE, detail)

    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise malformed(str(e)) from None
    if not isinstance(obj, dict):
        raise malformed("not a JSON object")
    try:
        match obj.get("type"):
            case "received":
                tag = obj.get("senderTag")
                return Received(obj["message"].encode(),
                                None if tag is None else base58.decode(tag))
            case "selfAddress":
                return SelfAddressIs(Address.parse(obj["address"]))
            case "laneQueueLength":
                return LaneQueueLength(int(obj["lane"]), int(obj["queue_length"]))
            case "error":
                kind_text, _, detail = str(obj["message"]).partition(":")
                kind = next((k for k in ErrorKind if k.text == kind_text), ErrorKind.OTHER)
                return ErrorResponse(kind, detail if kind is not ErrorKind.OTHER
                                     or kind_text == "other" else str(obj["message"]))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise malformed(f"{e.__class__.__name__}: {e}") from None
    raise ApiError(ErrorKind.UNKNOWN_RESPONSE, f"unknown response type {obj.get('type')!r}")
