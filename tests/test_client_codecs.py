"""The client's own decoders (end-to-end payloads, inner messages, direct packets and
the direct-mode handshake): round trips, and random or mutated bytes that raise only
their typed error."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat.client import direct, messages
from nymchat.protocol import wire

KEYS, OTHER = direct.keys(b"\x01" * 32), direct.keys(b"\x02" * 32)
INNER = messages.Inner(messages.TEXT, "alice", "bob", bytes(32), bytes(16), 5, b"hello")
PACKET = direct.encode_packet(KEYS, direct.MESSAGE, direct.FROM_DIALER, b"\x03" * 16,
                              b"payload")
VALID = [
    messages.encode_inner(INNER),
    messages.encode_payload(b"\x00olm", messages.SenderKeys(bytes(32), bytes(32), bytes(64))),
    messages.encode_payload(b"\x01olm", None),
    PACKET,
    direct.encode_packet(KEYS, direct.HELLO, direct.FROM_LISTENER, bytes(16)),
    direct.encode_accept(direct.Accept(bytes(16), bytes(32), bytes(96))),
]


def decode_all(data: bytes) -> None:
    """Every client decoder on `data`: each may refuse it, only with its own error."""
    for decode in (messages.decode_inner, messages.decode_payload, direct.decode_accept,
                   direct.decode_invite, direct.decode_end):
        with contextlib.suppress(wire.WireError):
            decode(data)
    with contextlib.suppress(direct.BadPacket):
        packet = direct.decode_packet(data)
        direct.authentic(packet, KEYS)


def test_round_trips():
    assert messages.decode_inner(messages.encode_inner(INNER)) == INNER
    keys = messages.SenderKeys(b"\x01" * 32, b"\x02" * 32, b"\x03" * 64)
    assert messages.decode_payload(messages.encode_payload(b"\x00olm", keys)) == \
        (keys, b"\x00olm")
    accept = direct.Accept(b"\x04" * 16, b"\x05" * 32, b"\x06" * 96)
    assert direct.decode_accept(direct.encode_accept(accept)) == accept
    assert direct.decode_end(bytes([direct.DECLINED])) == direct.DECLINED


def test_direct_packets_need_the_shared_secret():
    decoded = direct.decode_packet(PACKET)
    assert (decoded.channel, decoded.payload) == (KEYS.channel, b"payload")
    assert direct.authentic(decoded, KEYS) and not direct.authentic(decoded, OTHER)
    flipped = bytearray(PACKET)
    flipped[-40] ^= 1
    assert not direct.authentic(direct.decode_packet(bytes(flipped)), KEYS)
    for bad in (b"", PACKET[:40], b"\x01" + PACKET[1:], PACKET[:2] + b"\x09" + PACKET[3:]):
        with pytest.raises(direct.BadPacket):
            direct.decode_packet(bad)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_typed_errors(data):
    decode_all(data)
    decode_all(bytes([direct.MAGIC, direct.VERSION]) + data)
    decode_all(bytes([messages.VERSION]) + data)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)),
                                        min_size=1, max_size=4), st.integers(0, 1000))
def test_mutated_messages_raise_only_typed_errors(data, changes, cut):
    mutated = bytearray(data)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[:cut] if cut < len(mutated) else mutated)
    decode_all(mutated)
    if mutated not in VALID:  # a changed packet never passes the MAC
        with contextlib.suppress(direct.BadPacket):
            assert not direct.authentic(direct.decode_packet(mutated), KEYS)
