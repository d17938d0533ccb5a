"""The nym-client API codecs: round trips, random or hostile frames that must only ever
raise `ApiError` (never crash a server loop), and fidelity to the real client's reading
(nym's `nym-client-websocket-requests` and `nym-sphinx-addressing`)."""

import contextlib
import json
import os

import pytest
import reference_crypto as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from nymchat.nym import api, base58
from nymchat.nym.address import Address, AddressError


def make_address() -> Address:
    return Address(
        bytes(SigningKey.generate().verify_key),
        os.urandom(32),
        bytes(SigningKey.generate().verify_key),
    )


ADDRESS = make_address()
P = 2**255 - 19
NOT_A_POINT = next(k for k in (bytes([n]) * 32 for n in range(256)) if not ref.decompresses(k))
u64 = st.integers(0, 2**64 - 1)
conn_ids = st.one_of(st.none(), st.integers(1, 2**64 - 1))
payloads = st.binary(max_size=3000)
requests = st.one_of(
    st.builds(api.Send, st.just(ADDRESS), payloads, conn_ids),
    st.builds(api.SendAnonymous, st.just(ADDRESS), payloads, st.integers(0, 2**32 - 1), conn_ids),
    st.builds(api.Reply, st.binary(min_size=16, max_size=16), payloads, conn_ids),
    st.just(api.SelfAddress()),
    st.builds(api.ClosedConnection, u64),
    st.builds(api.GetLaneQueueLength, u64),
)
responses = st.one_of(
    st.builds(api.Received, payloads, st.one_of(st.none(), st.binary(min_size=16, max_size=16))),
    st.just(api.SelfAddressIs(ADDRESS)),
    st.builds(api.LaneQueueLength, u64, u64),
    st.builds(api.ErrorResponse, st.sampled_from(list(api.ErrorKind)), st.text(max_size=100)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_binary_requests_round_trip(request):
    assert api.decode_request_binary(api.encode_request_binary(request)) == request


@settings(max_examples=200, deadline=None)
@given(requests, st.text(max_size=200))
def test_text_requests_round_trip(request, text):
    if isinstance(request, api.ClosedConnection | api.GetLaneQueueLength):
        with pytest.raises(ValueError):
            api.encode_request_text(request)
        return
    if hasattr(request, "message"):
        request = type(request)(
            *[text.encode() if f == "message" else getattr(request, f) for f in request.__slots__]
        )
    assert api.decode_request_text(api.encode_request_text(request)) == request


@settings(max_examples=300, deadline=None)
@given(responses)
def test_binary_responses_round_trip(response):
    assert api.decode_response_binary(api.encode_response_binary(response)) == response


@settings(max_examples=200, deadline=None)
@given(responses)
def test_text_responses_round_trip(response):
    decoded = api.decode_response_text(api.encode_response_text(response))
    if isinstance(response, api.Received):
        assert decoded.message == response.message.decode("utf-8", "replace").encode()
        assert decoded.sender_tag == response.sender_tag
    else:
        assert decoded == response


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_random_binary_requests_raise_only_api_errors(frame):
    try:
        api.decode_request_binary(frame)
    except api.ApiError as e:
        assert str(e).startswith(e.kind.text + ":")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_random_binary_responses_raise_only_api_errors(frame):
    with contextlib.suppress(api.ApiError):
        api.decode_response_binary(frame)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=200))
def test_random_text_requests_raise_only_malformed_request(text):
    try:
        api.decode_request_text(text)
    except api.ApiError as e:
        assert e.kind is api.ErrorKind.MALFORMED_REQUEST


@settings(max_examples=1000, deadline=None)
@given(json_values, st.sampled_from(["send", "sendAnonymous", "reply", "selfAddress", "x"]))
def test_hostile_json_requests_raise_only_malformed_request(value, variant):
    for document in (
        value,
        {
            "type": variant,
            "message": value,
            "recipient": value,
            "replySurbs": value,
            "senderTag": value,
            "connectionId": value,
        },
    ):
        try:
            api.decode_request_text(json.dumps(document))
        except api.ApiError as e:
            assert e.kind is api.ErrorKind.MALFORMED_REQUEST


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_random_text_responses_raise_only_api_errors(text):
    with contextlib.suppress(api.ApiError):
        api.decode_response_text(text)


def test_deeply_nested_json_is_an_error_not_a_crash():
    with pytest.raises(api.ApiError):
        api.decode_request_text("[" * 100_000)


# --- Text requests as serde reads them ------------------------------------------------


def nested(depth: int) -> str:
    """A JSON value `depth` containers deep, arrays and objects alternating."""
    return (
        "".join("[" if n % 2 else '{"k":' for n in range(depth))
        + "0"
        + "".join("]" if n % 2 else "}" for n in reversed(range(depth)))
    )


def error_of(text: str) -> str | None:
    try:
        api.decode_request_text(text)
    except api.ApiError as e:
        assert e.kind is api.ErrorKind.MALFORMED_REQUEST
        return e.detail
    return None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.sampled_from(["x", "message", "connectionId"]))
def test_nesting_is_refused_past_serdes_recursion_limit_wherever_it_is(depth, field):
    # serde_json allows 127 levels; the request object is the first, ignored fields count
    text = f'{{"type":"selfAddress","{field}":{nested(depth)}}}'
    error = error_of(text)
    if depth <= 126:
        assert error is None
    else:
        assert error.startswith("recursion limit exceeded at line 1 column ")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6000),
    st.sampled_from(["", "-", "0.", "1e"]),
    st.sampled_from(["x", "connectionId", "replySurbs"]),
)
def test_numbers_of_any_length_are_read_in_range_or_refused(digits, prefix, field):
    number = prefix + "9" * digits
    error = error_of(f'{{"type":"selfAddress","{field}":{number}}}')
    too_big = (prefix in ("", "-") and digits > 308) or (prefix == "1e" and digits > 2)
    assert (error is not None and error.startswith("number out of range")) == too_big


@settings(max_examples=300, deadline=None)
@given(st.integers(0xD800, 0xDFFF), st.sampled_from(["", "\\u0041", "\\udc00", "x"]))
def test_surrogate_escapes_are_answered_in_serdes_words(unit, after):
    text = f'{{"type":"send","recipient":"{ADDRESS}","message":"\\u{unit:04x}{after}"}}'
    error = error_of(text)
    if unit < 0xDC00 and after == "\\udc00":
        assert error is None  # a pair: one character
    elif unit >= 0xDC00 or after == "\\u0041":
        assert error.startswith("lone leading surrogate in hex escape at line 1 column ")
    else:
        assert error.startswith("unexpected end of hex escape at line 1 column ")


def sequence_form(request: api.Request) -> str:
    """A request as the JSON array serde also reads: the tag, then the fields in order."""
    match request:
        case api.Send(recipient, message, conn):
            items = ["send", message.decode(), str(recipient), conn]
        case api.SendAnonymous(recipient, message, surbs, conn):
            items = ["sendAnonymous", str(recipient), message.decode(), surbs, conn]
        case api.Reply(tag, message, conn):
            items = ["reply", base58.encode(tag), message.decode(), conn]
        case _:
            items = ["selfAddress"]
    return json.dumps(items)


@settings(max_examples=200, deadline=None)
@given(
    requests.filter(lambda r: not isinstance(r, api.ClosedConnection | api.GetLaneQueueLength)),
    st.text(max_size=50),
)
def test_requests_are_read_as_json_arrays_too(request, text):
    if hasattr(request, "message"):
        request = type(request)(
            *[text.encode() if f == "message" else getattr(request, f) for f in request.__slots__]
        )
    assert api.decode_request_text(sequence_form(request)) == request


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '["send","hi"]',
            "invalid length 1, expected struct variant ClientRequestText::Send with 3 elements",
        ),
        (f'["send","hi","{ADDRESS}",null,5]', "invalid length 4, expected 3 elements in sequence"),
        ("[]", "missing field `type` at line 1 column 2"),
        ('["selfAddress",[' + "[" * 200, "recursion limit exceeded at line 1 column 142"),
        (
            '{"type":"send","message":"m","recipient":"r","connectionId":18446744073709551616}',
            "invalid type: floating point `1.8446744073709552e+19`, expected u64",
        ),
        (
            '{"type":"sendAnonymous","message":"m","recipient":"r","replySurbs":4294967296}',
            "invalid value: integer `4294967296`, expected u32",
        ),
        (
            f'{{"type":"send","message":"m","recipient":"{base58.encode(NOT_A_POINT)}.x@y"}}',
            "recipient's identity key is malformed: signature error: "
            "Cannot decompress Edwards point",
        ),
    ],
)
def test_text_errors_are_serdes(text, error):
    assert error_of(text) == error


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers(1, 6000).map(lambda n: "-9" * (n % 2) + "9" * n)
        | st.sampled_from(
            ['"\\ud800"', '"\\udfff"', '"\\ud800\\udc00"', "1e999", "-0.0", '"x"', "null"]
        ),
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda xs: f"[{','.join(xs)}]")
            | st.lists(inner, max_size=3).map(
                lambda xs: (
                    "{" + ",".join(f'"{k}":{v}' for k, v in zip("abc", xs, strict=False)) + "}"
                )
            )
        ),
        max_leaves=8,
    ),
    st.integers(0, 130),
)
def test_hostile_documents_only_raise_malformed_request(value, depth):
    for text in (
        value,
        "[" * depth + value + "]" * depth,
        f'{{"type":"selfAddress","x":{value}}}',
        f'["send",{value},"{ADDRESS}",{value}]',
        f'{{"type":"send","message":{value},"recipient":"{ADDRESS}"}}',
    ):
        error_of(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_base58_round_trip(data):
    assert base58.decode(base58.encode(data)) == data


def test_address_string_form():
    text = str(ADDRESS)
    assert Address.parse(text) == ADDRESS
    assert Address.from_bytes(ADDRESS.to_bytes()) == ADDRESS
    identity, _rest = text.split(".")
    assert 43 <= len(identity) <= 44
    for bad in [text.replace("@", "#"), text.replace(".", ""), text + "@x", "a.b@c"]:
        with pytest.raises(AddressError):
            Address.parse(bad)


# --- addresses as the real client reads them ------------------------------------------


def encoding(y: int, sign: int = 0) -> bytes:
    """An Ed25519 point encoding with this y (up to 2^255 - 1) and sign bit of x."""
    return (y | sign << 255).to_bytes(32, "little")


# Random keys, and the encodings where strict decoders part from curve25519-dalek: a y of
# p or more (reduced) and x = 0 with its sign bit set.
ed25519_encodings = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.builds(encoding, st.integers(P, 2**255 - 1), st.integers(0, 1)),
    st.builds(encoding, st.sampled_from([1, P - 1, P + 1]), st.just(1)),
)


@settings(max_examples=500, deadline=None)
@given(ed25519_encodings)
def test_address_keys_are_whatever_curve25519_dalek_decompresses(key):
    raw = key + os.urandom(32) + bytes(ADDRESS.gateway)
    if ref.decompresses(key):
        assert Address.from_bytes(raw).identity == key
        assert Address.parse(str(Address.from_bytes(raw))).identity == key
    else:
        with pytest.raises(AddressError) as raised:
            Address.from_bytes(raw)
        assert str(raised.value) == (
            "recipient's identity key is malformed: signature error: "
            "Cannot decompress Edwards point"
        )


GATEWAY = base58.encode(ADDRESS.gateway)
IDENTITY = base58.encode(ADDRESS.identity)
ENCRYPTION = base58.encode(ADDRESS.encryption)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "no-at-sign",
            "recipient is malformed - the string address does not contain exactly a "
            "single '@' character ",
        ),
        (
            "a@b@c",
            "recipient is malformed - the string address does not contain exactly a single "
            "'@' character ",
        ),
        (
            f"{IDENTITY}@{GATEWAY}",
            "recipient is malformed - the string address does not contain "
            "exactly a single '.' character ",
        ),
        (
            f"0{IDENTITY[1:]}.x@y",
            "recipient's identity key is malformed: the base58 representation "
            "of the public key was malformed - provided string contained "
            "invalid character '0' at byte 0",
        ),
        (
            "ab\\'.x@y",
            "recipient's identity key is malformed: the base58 representation of the "
            "public key was malformed - provided string contained invalid character "
            "'\\\\' at byte 2",
        ),
        (
            "aé.x@y",
            "recipient's identity key is malformed: the base58 representation of the public "
            "key was malformed - provided string contained non-ascii character starting "
            "at byte 1",
        ),
        ("abc.x@y", "recipient's identity key is malformed: could not convert slice to array"),
        (
            f"{base58.encode(NOT_A_POINT)}.x@y",
            "recipient's identity key is malformed: signature "
            "error: Cannot decompress Edwards point",
        ),
        (
            f"{IDENTITY}.abc@y",
            "recipient's encryption key is malformed: received public key of "
            "invalid size. Got: 3, expected: 32",
        ),
        (
            f"{IDENTITY}.{ENCRYPTION}@l",
            "recipient gateway's identity key is malformed: the base58 "
            "representation of the public key was malformed - provided "
            "string contained invalid character 'l' at byte 0",
        ),
        (
            f"{IDENTITY}.{ENCRYPTION}@{base58.encode(NOT_A_POINT)}",
            "recipient gateway's identity key is malformed: signature error: Cannot decompress "
            "Edwards point",
        ),
    ],
)
def test_address_errors_are_the_real_clients_in_its_order(text, error):
    with pytest.raises(AddressError) as raised:
        Address.parse(text)
    assert str(raised.value) == error


def test_a_binary_recipient_is_checked_before_the_length():
    frame = b"\x00" + NOT_A_POINT + bytes(64) + (0).to_bytes(8, "big") + (9).to_bytes(8, "big")
    with pytest.raises(api.ApiError) as raised:
        api.decode_request_binary(frame + b"short")
    assert raised.value.detail == (
        "malformed recipient: recipient's identity key is malformed: "
        "signature error: Cannot decompress Edwards point"
    )
