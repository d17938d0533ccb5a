"""The node protocol codec: round trips, strictness, and random or mutated bytes that
must only ever raise WireError."""

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nodeclient import bundle

from nymchat import _native
from nymchat.nym.address import Address
from nymchat.protocol import wire
from nymchat.protocol.contact import BadContact, NodeContact
from nymchat.protocol.wire import Kind

NODE = _native.Identity.generate()
NODE_KEY = _native.PublicKey(NODE.signing_public)
USER = _native.Identity.generate()
BODIES = {
    Kind.ACK: {"message_ids": (bytes(16), b"1" * 16)},
    Kind.REGISTER_BEGIN: {"username": "alice", "bundle": bundle(USER, 3)},
    Kind.PUBLISH_KEYS: {
        "one_time_keys": bundle(USER, 2).one_time_keys,
        "fallback": None,
        "agreement_signature": bytes(range(64)),
    },
    Kind.SET_ACCESS: {"access_verifier": bytes(range(32)), "strangers": 16},
    Kind.CERTIFY: {"username": "alice"},
    Kind.REFRESH: {"push_key": bytes(range(32))},
    Kind.PUBLISH_KEY_PACKAGES: {"key_packages": (b"k" * 300, b"p" * 2), "last_resort": b"r" * 9},
    Kind.LEAVE_GROUP: {"group_id": bytes(range(32))},
    Kind.REGISTER_FINISH: {
        "username": "alice",
        "bundle": bundle(USER, 2),
        "challenge": bytes(32),
        "difficulty": 12,
        "expires": 9,
        "proof_of_work": 77,
    },
}
ANONYMOUS_BODIES = {
    Kind.SEALED_SEND: {
        "recipient": "bob",
        "message_id": bytes(16),
        "payload": b"x" * 100,
        "access_key": bytes(range(32)),
        "proof_of_work": 2**64 - 1,
    },
    Kind.LOOKUP: {"username": "alice", "proof_of_work": 12345},
    Kind.FRONTENDS: {},
    Kind.CLAIM_KEY_PACKAGE: {"username": "alice", "proof_of_work": 3},
    Kind.GROUP_POST: {
        "group_id": bytes(range(32)),
        "epoch": 2**64 - 1,
        "message_id": bytes(16),
        "post": wire.GroupPost.COMMIT,
        "access_key": bytes(32),
        "next_verifier": b"v" * 32,
        "add": (
            wire.NewMember("bob", bytes(range(32)), 0),
            wire.NewMember("carol", None, 2**64 - 1),
        ),
        "remove": ("dave",),
        "welcome": b"w" * 70,
        "payload": b"c" * 200,
    },
    Kind.GROUP_WATCH: {
        "group_id": bytes(range(32)),
        "epoch": 7,
        "access_key": b"k" * 32,
        "after": 2**64 - 1,
        "hold": 55,
    },
}
REQUESTS = [
    wire.encode_request(USER, NODE.signing_public, k, b, 5)[0] for k, b in BODIES.items()
] + [wire.encode_anonymous_request(k, b, 5)[0] for k, b in ANONYMOUS_BODIES.items()]
ANSWERS = [
    wire.encode_answer(
        NODE, USER.signing_public, Kind.ACCEPTED, {"message_id": bytes(16)}, 5, bytes(16)
    ),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.DELIVER,
        {"message_id": bytes(16), "sent": 1, "payload": b"p"},
        5,
    ),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.BUNDLE,
        {"username": "bob", "identity": bytes(32), "bundle": bundle(USER, 1), "strangers": 16},
        5,
        bytes(16),
    ),
    wire.encode_answer(
        NODE, USER.signing_public, Kind.POW_REQUIRED, {"difficulty": 18}, 5, bytes(16)
    ),
    wire.encode_answer(NODE, USER.signing_public, Kind.ACCESS_SET, {}, 5, bytes(16)),
    wire.encode_answer(
        NODE, USER.signing_public, Kind.CERTIFIED, {"certificate": b"c" * 80}, 5, bytes(16)
    ),
    wire.encode_answer(
        NODE, USER.signing_public, Kind.FRONTENDS_ARE, {"descriptor": b"d" * 90}, 5, bytes(16)
    ),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.KEY_PACKAGES_PUBLISHED,
        {"key_packages_left": 7},
        5,
        bytes(16),
    ),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.KEY_PACKAGE,
        {"username": "bob", "identity": bytes(32), "key_package": b"k" * 40},
        5,
        bytes(16),
    ),
    wire.encode_answer(
        NODE, USER.signing_public, Kind.POSTED, {"message_id": bytes(16), "epoch": 4}, 5, bytes(16)
    ),
    wire.encode_answer(NODE, USER.signing_public, Kind.LEFT_GROUP, {}, 5, bytes(16)),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.GROUP_DELIVER,
        {
            "message_id": bytes(16),
            "group_id": bytes(range(32)),
            "epoch": 3,
            "post": wire.GroupPost.WELCOME,
            "sent": 9,
            "payload": b"w" * 30,
        },
        5,
    ),
    wire.encode_answer(
        NODE, USER.signing_public, Kind.KEY_PACKAGES_LOW, {"key_packages_left": 2}, 5
    ),
    wire.encode_answer(
        NODE,
        USER.signing_public,
        Kind.GROUP_ENTRIES,
        {
            "entries": (
                wire.GroupEntry(3, bytes(16), 1, wire.GroupPost.APPLICATION, 9, b"a" * 20),
                wire.GroupEntry(4, b"m" * 16, 2, wire.GroupPost.COMMIT, 10, b""),
            ),
            "last": 4,
            "oldest": 1,
        },
        5,
        bytes(16),
    ),
]


@pytest.mark.parametrize("kind", list(BODIES))
def test_requests_round_trip_and_verify(kind):
    data, request_id = wire.encode_request(USER, NODE.signing_public, kind, BODIES[kind], 7)
    request = wire.decode_request(data)
    assert (request.kind, request.requester, request.timestamp, request.request_id) == (
        kind,
        USER.signing_public,
        7,
        request_id,
    )
    assert request.body == BODIES[kind]
    assert wire.verify_requests(NODE.signing_public, [request]) == [True]
    assert wire.verify_requests(os.urandom(32), [request]) == [False]  # names the node


@pytest.mark.parametrize("kind", list(ANONYMOUS_BODIES))
def test_anonymous_requests_round_trip_with_no_requester_and_no_signature(kind):
    data, request_id = wire.encode_anonymous_request(kind, ANONYMOUS_BODIES[kind], 7)
    request = wire.decode_request(data)
    assert (request.kind, request.requester, request.timestamp, request.request_id) == (
        kind,
        wire.ANONYMOUS,
        7,
        request_id,
    )
    assert request.body == ANONYMOUS_BODIES[kind]
    assert (request.signed, request.signature) == (data, b"")
    assert USER.signing_public not in data
    assert wire.verify_requests(NODE.signing_public, [request]) == [True]
    with pytest.raises(AssertionError):
        wire.encode_request(USER, NODE.signing_public, kind, ANONYMOUS_BODIES[kind], 7)


def test_an_answer_to_an_anonymous_request_verifies_for_nobody_else():
    data = wire.encode_answer(
        NODE, wire.ANONYMOUS, Kind.ACCEPTED, {"message_id": bytes(16)}, 5, bytes(16)
    )
    assert wire.decode_answer(data, NODE_KEY, wire.ANONYMOUS).kind is Kind.ACCEPTED
    with pytest.raises(wire.WireError):
        wire.decode_answer(data, NODE_KEY, USER.signing_public)


def test_answers_verify_only_for_their_node_and_user():
    for data in ANSWERS:
        assert wire.decode_answer(data, NODE_KEY, USER.signing_public)
        with pytest.raises(wire.WireError):
            wire.decode_answer(data, _native.PublicKey(USER.signing_public), USER.signing_public)


def test_group_answers_and_pushes_round_trip():
    for data in ANSWERS[-7:]:
        answer = wire.decode_answer(data, NODE_KEY, USER.signing_public)
        assert (
            wire.encode_answer(
                NODE, USER.signing_public, answer.kind, answer.body, 5, answer.in_reply_to
            )
            == data
        )  # Ed25519 signatures are deterministic


def test_key_packages_and_group_lists_are_bounded_on_the_wire():
    def publish(packages, last_resort=None):
        body = {"key_packages": packages, "last_resort": last_resort}
        return wire.encode_request(USER, NODE.signing_public, Kind.PUBLISH_KEY_PACKAGES, body, 5)

    publish((b"k" * wire.MAX_KEY_PACKAGE,) * 100, b"r" * wire.MAX_KEY_PACKAGE)
    for packages, last_resort in [
        ((b"k",) * 101, None),
        ((b"k" * (wire.MAX_KEY_PACKAGE + 1),), None),
        ((), b"r" * (wire.MAX_KEY_PACKAGE + 1)),
    ]:
        with pytest.raises(wire.WireError):
            publish(packages, last_resort)
    post = dict(ANONYMOUS_BODIES[Kind.GROUP_POST], add=(wire.NewMember("bob", None, 0),) * 257)
    with pytest.raises(wire.WireError):
        wire.encode_anonymous_request(Kind.GROUP_POST, post, 5)
    # a hand-made request that claims 257 members is refused before they are read
    data = bytearray(
        wire.encode_anonymous_request(Kind.GROUP_POST, ANONYMOUS_BODIES[Kind.GROUP_POST], 5)[0]
    )
    at = data.index(b"\x00\x02\x03bob")
    data[at : at + 2] = (257).to_bytes(2, "big")
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.decode_request(bytes(data))


def test_a_sender_certificate_holds_only_signed_by_its_node_and_until_its_grace_ends():
    expires = 1_000_000
    data = wire.encode_certificate(NODE, "alice", USER.signing_public, expires)
    certificate = wire.Certificate("alice", USER.signing_public, expires)
    assert wire.decode_certificate(data, NODE_KEY, expires + wire.CERTIFICATE_GRACE_MS) == (
        certificate
    )
    with pytest.raises(wire.WireError, match="expired"):
        wire.decode_certificate(data, NODE_KEY, expires + wire.CERTIFICATE_GRACE_MS + 1)
    other = _native.PublicKey(_native.Identity.generate().signing_public)
    with pytest.raises(wire.WireError, match="not signed"):
        wire.decode_certificate(data, other, 0)
    for bad in (data[:-1], data + b"\0", data[:5] + b"x" + data[6:]):
        with pytest.raises(wire.WireError):
            wire.decode_certificate(bad, NODE_KEY, 0)


def test_strictness():
    good = REQUESTS[0]
    for bad in [good[:-1], good + b"\x00", b"\x02" + good[1:], good[:1] + b"\x3f" + good[2:]]:
        with pytest.raises(wire.WireError):
            wire.decode_request(bad)
    with pytest.raises(wire.WireError):
        wire.decode_request(ANSWERS[0])  # an answer is not a request
    with pytest.raises(wire.WireError):
        wire.encode_request(
            USER, NODE.signing_public, Kind.ACK, {"message_ids": (bytes(16),) * 257}, 0
        )


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_wire_errors(data):
    for decode in (
        wire.decode_request,
        lambda d: wire.decode_answer(d, NODE_KEY, USER.signing_public),
        lambda d: wire.decode_answer(d, NODE_KEY, wire.ANONYMOUS),
        lambda d: wire.decode_descriptor(d, NODE_KEY, 0),
        lambda d: wire.decode_certificate(d, NODE_KEY, 0),
    ):
        with contextlib.suppress(wire.WireError):
            decode(data)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(REQUESTS + ANSWERS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_mutated_messages_raise_only_wire_errors(data, changes, cut):
    mutated = bytearray(data)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[: max(cut, 1)] if cut < len(mutated) else mutated)
    try:
        request = wire.decode_request(mutated)
        wire.verify_requests(NODE.signing_public, [request])
    except wire.WireError:
        pass
    with contextlib.suppress(wire.WireError):
        wire.decode_answer(mutated, NODE_KEY, USER.signing_public)


def test_contact_strings():
    address = (
        "H1gtKSPiyjiNqe3m2i495rgvVyf3KtoHVVUM34FmkMT3.GtggWJNj8sYMzMfdZeureKvqXjkViGaCa7"
        "MyXfL3xRb5@C5Y5uUxCMFfZgoQLb89pbr2wGNXUu8ucbpya2KLvooZk"
    )
    from nymchat.nym import base58

    text = f"nymchat-node:{base58.encode(NODE.signing_public)}:{address}"
    contact = NodeContact.parse(text)
    assert str(contact) == text and contact.key == NODE.signing_public
    for bad in [
        "",
        "nymchat-node:abc",
        text.replace("nymchat-node", "other"),
        text.replace(":H1", ":0O"),
        f"nymchat-node:{base58.encode(b'x')}:{address}",
        f"nymchat-node:{base58.encode(NODE.signing_public)}:,,",  # no address at all
        f"nymchat-node:{base58.encode(NODE.signing_public)}:{address},{address}",
        f"nymchat-node:{base58.encode(NODE.signing_public)}:" + "," * 64 + address,  # slot 65
    ]:
        with pytest.raises(BadContact):
            NodeContact.parse(bad)


def test_a_contact_string_made_while_frontends_were_down_keeps_the_others_ids():
    first, third = (
        Address(_native.Identity.generate().signing_public, os.urandom(32), NODE.signing_public)
        for _ in range(2)
    )
    contact = NodeContact.of(NODE.signing_public, {3: third, 1: first})
    assert (contact.ids, contact.addresses) == ((1, 3), (first, third))
    assert str(contact).endswith(f":{first},,{third}")
    assert NodeContact.parse(str(contact)) == contact
    only_third = NodeContact.parse(str(contact).replace(f":{first},", ":,"))
    assert (only_third.ids, only_third.addresses) == ((3,), (third,))
    assert NodeContact(NODE.signing_public, (first, third)).ids == (1, 2)  # none given: 1..N


GROUP_ENTRIES = st.builds(
    wire.GroupEntry,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**64 - 1),
    st.sampled_from([p for p in wire.GroupPost if p is not wire.GroupPost.WELCOME]),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 255),
    st.lists(GROUP_ENTRIES, max_size=5),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_group_watches_and_their_entries_round_trip(
    group_id, epoch, after, hold, entries, last, oldest
):
    watch = {
        "group_id": group_id,
        "epoch": epoch,
        "access_key": os.urandom(32),
        "after": after,
        "hold": hold,
    }
    data, request_id = wire.encode_anonymous_request(Kind.GROUP_WATCH, watch, 5)
    request = wire.decode_request(data)
    assert (request.kind, request.request_id, request.body) == (Kind.GROUP_WATCH, request_id, watch)
    body = {"entries": tuple(entries), "last": last, "oldest": oldest}
    answer = wire.encode_answer(NODE, wire.ANONYMOUS, Kind.GROUP_ENTRIES, body, 5, request_id)
    decoded = wire.decode_answer(answer, NODE_KEY, wire.ANONYMOUS)
    assert (decoded.kind, decoded.in_reply_to, decoded.body) == (
        Kind.GROUP_ENTRIES,
        request_id,
        body,
    )


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_hostile_group_watch_and_entries_bytes_raise_only_wire_errors(body):
    """Whatever follows their headers: the watch's fields, the entries' counts and
    lengths (a list that claims more than it holds, a payload past the end)."""
    request = bytes([wire.VERSION, Kind.GROUP_WATCH]) + bytes(8) + bytes(16) + body
    answer = bytes([wire.VERSION, Kind.GROUP_ENTRIES]) + bytes(16) + bytes(8) + body
    with contextlib.suppress(wire.WireError):
        wire.decode_request(request)
    with contextlib.suppress(wire.WireError):
        wire.decode_answer(answer, NODE_KEY, wire.ANONYMOUS)
