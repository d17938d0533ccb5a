"""The nym-client API codecs: round trips, and random or hostile frames that must only
ever raise `ApiError` (never crash a server loop)."""

import contextlib
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from nymchat.nym import api, base58
from nymchat.nym.address import Address, AddressError, is_ed25519_point


def make_address() -> Address:
    return Address(bytes(SigningKey.generate().verify_key), os.urandom(32),
                   bytes(SigningKey.generate().verify_key))


ADDRESS = make_address()
u64 = st.integers(0, 2**64 - 1)
conn_ids = st.one_of(st.none(), st.integers(1, 2**64 - 1))
payloads = st.binary(max_size=3000)
requests = st.one_of(
    st.builds(api.Send, st.just(ADDRESS), payloads, conn_ids),
    st.builds(api.SendAnonymous, st.just(ADDRESS), payloads, st.integers(0, 2**32 - 1),
              conn_ids),
    st.builds(api.Reply, st.binary(min_size=16, max_size=16), payloads, conn_ids),
    st.just(api.SelfAddress()),
    st.builds(api.ClosedConnection, u64),
    st.builds(api.GetLaneQueueLength, u64),
)
responses = st.one_of(
    st.builds(api.Received, payloads, st.one_of(st.none(), st.binary(min_size=16,
                                                                       max_size=16))),
    st.just(api.SelfAddressIs(ADDRESS)),
    st.builds(api.LaneQueueLength, u64, u64),
    st.builds(api.ErrorResponse, st.sampled_from(list(api.ErrorKind)), st.text(max_size=100)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


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
        request = type(request)(*[text.encode() if f == "message" else getattr(request, f)
                                  for f in request.__slots__])
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
    for document in (value, {"type": variant, "message": value, "recipient": value,
                             "replySurbs": value, "senderTag": value, "connectionId": value}):
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


def test_ed25519_point_check_matches_libsodium_decoding():
    from nacl.bindings import crypto_core_ed25519_is_valid_point

    for _ in range(300):
        data = os.urandom(32)
        # libsodium also refuses small-order points; those are rare in random data
        if crypto_core_ed25519_is_valid_point(data):
            assert is_ed25519_point(data)
    valid = sum(is_ed25519_point(os.urandom(32)) for _ in range(400))
    assert 120 < valid < 280  # about half of random strings are points
