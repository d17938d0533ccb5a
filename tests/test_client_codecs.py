"""The client's own decoders (end-to-end payloads, inner messages, direct packets and
the direct-mode handshake): round trips, and random or mutated bytes that raise only
their typed error."""

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat import _native
from nymchat.client import direct_packets, messages
from nymchat.errors import BadSignature, CryptoError
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact

KEYS, OTHER = direct_packets.keys(b"\x01" * 32), direct_packets.keys(b"\x02" * 32)
INNER = messages.Inner(
    messages.TEXT, "alice", "bob", bytes(32), bytes(16), 5, b"\x07" * 32, b"hello"
)
BOB = _native.Identity.generate()
MESSAGE_ID = b"\x09" * 16
SENDER_KEYS = messages.SenderKeys(
    b"\x01" * 32, b"\x02" * 32, b"\x03" * 64, b"\x04" * 32, b"\x05" * 64
)
NODE = _native.Identity.generate()
# A certificate as large as a valid name makes one.
CERTIFICATE = wire.encode_certificate(NODE, "a" * 32, bytes(32), 2**64 - 1)
# The sender's node, as carried by a session-opening message: its first frontends.
HOME = NodeContact(
    NODE.signing_public,
    tuple(
        NymAddress(_native.Identity.generate().signing_public, os.urandom(32), bytes(32))
        for _ in range(messages.CARRIED_ADDRESSES)
    ),
    tuple(range(64 - messages.CARRIED_ADDRESSES + 1, 65)),  # the largest ids there are
)
OPENING = messages.Sealed(
    "alice", CERTIFICATE, SENDER_KEYS, b"\x00olm", NODE.signing_public, str(HOME)
)
NORMAL = messages.Sealed("alice", CERTIFICATE, None, b"\x01olm", NODE.signing_public)
PACKET = direct_packets.encode_packet(
    KEYS, direct_packets.MESSAGE, direct_packets.FROM_DIALER, b"\x03" * 16, b"payload"
)
VALID = [
    messages.encode_inner(INNER),
    messages.encode_sealed(OPENING),
    messages.encode_sealed(NORMAL),
    messages.encode_payload(BOB.agreement_public, MESSAGE_ID, OPENING),
    messages.encode_payload(BOB.agreement_public, MESSAGE_ID, NORMAL),
    PACKET,
    direct_packets.encode_packet(
        KEYS, direct_packets.HELLO, direct_packets.FROM_LISTENER, bytes(16)
    ),
    direct_packets.encode_accept(direct_packets.Accept(bytes(16), bytes(32), bytes(96))),
]


def decode_all(data: bytes) -> None:
    """Every client decoder on `data`: each may refuse it, only with its own error."""
    with contextlib.suppress(wire.WireError, CryptoError):
        messages.open_payload(BOB, MESSAGE_ID, data)
    for decode in (
        messages.decode_inner,
        messages.decode_payload,
        messages.decode_sealed,
        direct_packets.decode_accept,
        direct_packets.decode_invite,
        direct_packets.decode_end,
    ):
        with contextlib.suppress(wire.WireError):
            decode(data)
    with contextlib.suppress(direct_packets.BadPacket):
        packet = direct_packets.decode_packet(data)
        direct_packets.authentic(packet, KEYS)


def test_round_trips():
    assert messages.decode_inner(messages.encode_inner(INNER)) == INNER
    for sealed in (OPENING, NORMAL):
        assert messages.decode_sealed(messages.encode_sealed(sealed)) == sealed
        payload = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, sealed)
        assert messages.open_payload(BOB, MESSAGE_ID, payload) == sealed
    accept = direct_packets.Accept(b"\x04" * 16, b"\x05" * 32, b"\x06" * 96)
    assert direct_packets.decode_accept(direct_packets.encode_accept(accept)) == accept
    assert direct_packets.decode_end(bytes([direct_packets.DECLINED])) == direct_packets.DECLINED


def test_direct_packets_need_the_shared_secret():
    decoded = direct_packets.decode_packet(PACKET)
    assert (decoded.channel, decoded.payload) == (KEYS.channel, b"payload")
    assert direct_packets.authentic(decoded, KEYS) and not direct_packets.authentic(decoded, OTHER)
    flipped = bytearray(PACKET)
    flipped[-40] ^= 1
    assert not direct_packets.authentic(direct_packets.decode_packet(bytes(flipped)), KEYS)
    for bad in (b"", PACKET[:40], b"\x01" + PACKET[1:], PACKET[:2] + b"\x09" + PACKET[3:]):
        with pytest.raises(direct_packets.BadPacket):
            direct_packets.decode_packet(bad)


def test_the_payload_shows_the_node_nothing_of_the_sender():
    payload = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, OPENING)
    for secret in (b"alice", SENDER_KEYS.identity, SENDER_KEYS.account_key, b"\x00olm"):
        assert secret not in payload
    again = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, OPENING)
    assert again != payload and len(again) == len(payload)  # a fresh ephemeral key each time


def test_a_payload_opens_only_for_its_recipient_and_its_message_id():
    payload = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, NORMAL)
    with pytest.raises(wire.WireError, match="another message id"):
        messages.open_payload(BOB, os.urandom(16), payload)  # relayed under another id
    with pytest.raises(CryptoError):
        messages.open_payload(_native.Identity.generate(), MESSAGE_ID, payload)
    flipped = bytearray(payload)
    flipped[40] ^= 1
    with pytest.raises(CryptoError):
        messages.open_payload(BOB, MESSAGE_ID, bytes(flipped))


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_typed_errors(data):
    decode_all(data)
    decode_all(bytes([direct_packets.MAGIC, direct_packets.VERSION]) + data)
    decode_all(bytes([messages.VERSION]) + data)
    decode_all(bytes([messages.VERSION]) + len(data).to_bytes(4, "big") + data)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 1000),
)
def test_mutated_messages_raise_only_typed_errors(data, changes, cut):
    mutated = bytearray(data)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[:cut] if cut < len(mutated) else mutated)
    decode_all(mutated)
    if mutated not in VALID:  # a changed packet never passes the MAC
        with contextlib.suppress(direct_packets.BadPacket):
            assert not direct_packets.authentic(direct_packets.decode_packet(mutated), KEYS)


def _sealed_payloads(bodies, rounds: int = 1):
    """Payloads of real Olm messages (session-opening, with sender keys, and normal) around
    padded inner messages with these bodies, sealed for BOB; with the most that encryption
    added to a padded plaintext."""
    alice, bob = _native.Account(), _native.Account()
    [(_key_id, one_time)] = bob.generate_one_time_keys(1)
    outbound = alice.outbound(bob.curve25519_key, one_time)
    most = 0

    def payload(session, keys, inner: messages.Inner) -> bytes:
        nonlocal most
        plaintext = messages.encode_inner(inner)
        sealed = messages.Sealed(
            inner.sender,
            CERTIFICATE,
            keys,
            session.encrypt(plaintext),
            NODE.signing_public,
            str(HOME) if keys else None,
        )
        data = messages.encode_payload(BOB.agreement_public, inner.message_id, sealed)
        most = max(most, 5 + len(messages.decode_payload(data)) - len(plaintext))
        return data

    long_name = "a" * 32
    opening = [
        payload(
            outbound,
            SENDER_KEYS,
            messages.Inner(kind, long_name, "b" * 32, bytes(32), bytes(16), 2**63, bytes(32), body),
        )
        for kind, body in bodies
        for _ in range(rounds)
    ]
    inbound, _ = bob.inbound(alice.curve25519_key, outbound.encrypt(b"open"))
    normal = [
        payload(
            inbound,
            None,
            messages.Inner(kind, "bob", "a", bytes(32), bytes(16), 1, bytes(32), body),
        )
        for kind, body in bodies
    ]
    return opening + normal, most


def test_texts_receipts_and_handshakes_that_fit_one_frame_are_the_same_size():
    """The node sees payload sizes: a receipt, a direct-mode acceptance and texts of 1 to
    350 characters (the sender certificate and node take their room) must not be told
    apart by them."""
    bodies = [(messages.TEXT, b"x" * n) for n in (0, 1, 33, 100, 300, 350)] + [
        (messages.RECEIPT, bytes(16)),
        (messages.DIRECT_INVITE, bytes(16)),
        (messages.DIRECT_ACCEPT, bytes(16 + 32 + 96)),
        (messages.DIRECT_END, b"\x01"),
        (messages.ACCESS, bytes(32)),
    ]
    payloads, most = _sealed_payloads(bodies)
    assert {len(p) for p in payloads} == {messages.payload_size(0)}
    assert messages.payload_size(0) + messages.SEND_OVERHEAD == 1575  # one frame's chunk
    assert most <= messages.ENCRYPTION_RESERVE  # what padding leaves room for


def test_longer_payloads_fall_in_frame_buckets_and_open_again():
    bodies = [(messages.TEXT, b"y" * n) for n in range(1000, messages.MAX_BODY + 1, 4999)]
    bodies.append((messages.TEXT, b"z" * messages.MAX_BODY))
    payloads, most = _sealed_payloads(bodies, rounds=40)  # the opening message's counter grows
    buckets = {n * 1575 - messages.SEND_OVERHEAD for n in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)}
    assert {len(p) for p in payloads} <= buckets
    assert max(len(p) for p in payloads) == messages.MAX_PAYLOAD <= messages.NODE_MAX_PAYLOAD
    assert most <= messages.ENCRYPTION_RESERVE
    opened = messages.open_payload(BOB, bytes(16), payloads[-1])
    assert opened.keys is None and opened.session_message[0] == 1


def test_padding_is_checked():
    inner = messages.encode_inner(INNER)
    assert messages.decode_inner(inner) == INNER
    for bad in (inner.rstrip(b"\0")[:-1], inner + b"\x01", inner[:-1] + b"\x02"):
        with pytest.raises(wire.WireError):
            messages.decode_inner(bad)
    payload = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, NORMAL)
    with pytest.raises(wire.WireError, match="padding"):
        messages.decode_payload(payload[:-1] + b"\x01")


def version_3(agreement: bytes, message_id: bytes, sealed: messages.Sealed) -> bytes:
    """A payload as clients before federation sealed it: no sender node, no contact."""
    plain = bytearray()
    wire.NAME.write(sealed.sender, plain)
    wire.CERTIFICATE_BYTES.write(sealed.certificate, plain)
    plain.append(messages.CARRIES_KEYS if sealed.keys else 0)
    if sealed.keys:
        plain += wire.encode_record(messages.SENDER_KEYS, sealed.keys)
    plain += sealed.session_message
    envelope = _native.seal_anonymous(agreement, messages.CONTEXT, message_id, bytes(plain))
    data = bytes([3]) + len(envelope).to_bytes(4, "big") + envelope
    return data + bytes(messages.payload_size(len(data)) - len(data))


def test_a_version_3_payload_still_opens_naming_no_node():
    for sealed in (OPENING, NORMAL):
        opened = messages.open_payload(
            BOB, MESSAGE_ID, version_3(BOB.agreement_public, MESSAGE_ID, sealed)
        )
        assert (opened.sender, opened.keys, opened.session_message) == (
            sealed.sender,
            sealed.keys,
            sealed.session_message,
        )
        assert opened.node is None and opened.node_contact is None  # the recipient's node
    written = messages.encode_payload(BOB.agreement_public, MESSAGE_ID, NORMAL)
    assert written[0] == messages.VERSION == 4


def test_a_session_opening_message_carries_the_first_frontends_of_the_senders_node():
    many = NodeContact(
        NODE.signing_public,
        tuple(
            NymAddress(_native.Identity.generate().signing_public, os.urandom(32), bytes(32))
            for _ in range(5)
        ),
    )
    carried = NodeContact.parse(messages.carried(str(many)))
    assert carried.key == many.key and carried.addresses == many.addresses[:2]
    sealed = messages.Sealed(
        "alice", CERTIFICATE, SENDER_KEYS, b"\x00olm", NODE.signing_public, str(many)
    )
    assert messages.decode_sealed(messages.encode_sealed(sealed)) == sealed  # up to 8 open


def test_a_carried_node_contact_over_the_bound_is_refused():
    encoded = bytearray(messages.encode_sealed(OPENING))
    at = 1 + len("alice") + 32 + 2 + len(CERTIFICATE) + 1 + messages.SENDER_KEYS_LEN
    assert encoded[at] == messages.CARRIED_ADDRESSES
    encoded[at] = messages.MAX_CARRIED + 1
    with pytest.raises(wire.WireError, match="node contact"):
        messages.decode_sealed(bytes(encoded))


MOVER = _native.Identity.generate()
NEW_HOME = NodeContact(
    NODE.signing_public,
    tuple(
        NymAddress(_native.Identity.generate().signing_public, os.urandom(32), bytes(32))
        for _ in range(3)
    ),
)


def test_a_move_names_the_new_node_by_the_identitys_own_signature():
    body = messages.moved_body(MOVER, "alice", str(NEW_HOME))
    opened = NodeContact.parse(
        messages.open_moved(body, "alice", MOVER.signing_public, NODE.signing_public)
    )
    assert opened.key == NEW_HOME.key and opened.addresses == NEW_HOME.addresses[:2]
    with pytest.raises(BadSignature):  # signed by another identity
        messages.open_moved(body, "alice", BOB.signing_public, NODE.signing_public)
    with pytest.raises(BadSignature):  # another name's
        messages.open_moved(body, "mallory", MOVER.signing_public, NODE.signing_public)
    with pytest.raises(wire.WireError, match="another node"):  # not the certifying node
        messages.open_moved(body, "alice", MOVER.signing_public, BOB.signing_public)
    forged = bytearray(body)
    forged[40] ^= 1  # an address changed on the way
    with pytest.raises((BadSignature, wire.WireError)):
        messages.open_moved(bytes(forged), "alice", MOVER.signing_public, NODE.signing_public)
    assert len(body) < 350  # one frame's text budget: a move travels as a short message


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_hostile_move_bodies_are_refused_cleanly(body):
    with contextlib.suppress(wire.WireError, BadSignature):
        messages.open_moved(body, "alice", MOVER.signing_public, NODE.signing_public)
        raise AssertionError("a random body opened as a move")
