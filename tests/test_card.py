"""Contact cards (protocol.card): a card gives a name, its identity and its home node;
one changed in any byte, signed by another node or by another identity, or not a card at
all is refused with `BadCard`, its size bounded before anything is decoded."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat import _native
from nymchat.nym import base58
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol import card, wire
from nymchat.protocol.card import BadCard
from nymchat.protocol.contact import NodeContact

NOW = 1_796_137_941_123
NODE = _native.Identity.generate()
ALICE = _native.Identity.generate()


def nym_address() -> NymAddress:
    return NymAddress(
        _native.Identity.generate().signing_public,
        os.urandom(32),
        _native.Identity.generate().signing_public,
    )


CONTACT = NodeContact(NODE.signing_public, (nym_address(), nym_address()))


def certificate(node=NODE, name="alice", identity=ALICE, expires=NOW) -> bytes:
    return wire.encode_certificate(node, name, identity.signing_public, expires)


CARD = card.encode(ALICE, certificate(), CONTACT)


def test_a_card_gives_the_name_the_identity_and_the_home_node():
    assert CARD.startswith("nymchat-card:") and "\n" not in CARD
    taken = card.decode(f"  {CARD}\n")
    assert (taken.name, taken.identity, taken.node, taken.expires) == (
        "alice",
        ALICE.signing_public,
        CONTACT,
        NOW,
    )


def test_a_card_outlives_its_certificate():
    old = card.encode(ALICE, certificate(expires=1), CONTACT)
    assert card.decode(old).name == "alice"


def test_a_card_carries_at_most_eight_of_the_nodes_frontends_in_their_slots():
    many = NodeContact(NODE.signing_public, tuple(nym_address() for _ in range(12)))
    taken = card.decode(card.encode(ALICE, certificate(), many))
    assert taken.node.ids == tuple(range(1, 9)) and taken.node.addresses == many.addresses[:8]


def test_a_card_whose_certificate_another_node_signed_is_refused_as_forged():
    other = _native.Identity.generate()
    forged = card.encode(ALICE, certificate(node=other), CONTACT)
    with pytest.raises(BadCard, match="forged: its node did not certify"):
        card.decode(forged)


def test_a_card_with_a_bad_node_signature_is_refused_as_forged():
    signed = bytearray(certificate())
    signed[-1] ^= 1
    with pytest.raises(BadCard, match="forged: its node did not certify"):
        card.decode(card.encode(ALICE, bytes(signed), CONTACT))


def test_a_card_signed_by_another_identity_is_refused_as_forged():
    mallory = _native.Identity.generate()
    with pytest.raises(BadCard, match="forged: alice's identity did not sign it"):
        card.decode(card.encode(mallory, certificate(), CONTACT))


def test_a_card_naming_another_node_than_its_certificates_is_refused_as_forged():
    elsewhere = NodeContact(_native.Identity.generate().signing_public, CONTACT.addresses)
    with pytest.raises(BadCard, match="forged"):
        card.decode(card.encode(ALICE, certificate(), elsewhere))


def test_a_card_too_long_is_refused_before_it_is_decoded():
    with pytest.raises(BadCard, match="not that long"):
        card.decode("nymchat-card:" + "z" * 1_000_000)


@given(st.integers(0, len(base58.decode(CARD[len(card.PREFIX) :])) - 1), st.integers(1, 255))
def test_a_card_changed_in_any_byte_is_refused(position, flip):
    data = bytearray(base58.decode(CARD[len(card.PREFIX) :]))
    data[position] ^= flip
    with pytest.raises(BadCard):
        card.decode(card.PREFIX + base58.encode(bytes(data)))


@given(st.integers(1, len(CARD) - len(card.PREFIX) - 1))
def test_a_card_cut_short_is_refused(keep):
    with pytest.raises(BadCard):
        card.decode(CARD[: len(card.PREFIX) + keep])


@given(st.text(max_size=300))
def test_any_text_is_a_card_or_refused_as_one(text):
    with pytest.raises(BadCard):
        card.decode(text)


@given(st.binary(max_size=card.MAX_BYTES + 10))
def test_any_bytes_after_the_prefix_are_refused_as_a_card(data):
    with pytest.raises(BadCard):
        card.decode(card.PREFIX + base58.encode(data))


@given(
    st.binary(max_size=wire.MAX_CERTIFICATE + 40),
    st.text(max_size=300),
    st.sampled_from([card.VERSION, 0, 2]),
)
def test_any_signed_record_of_a_hostile_certificate_and_contact_is_refused(raw, contact, version):
    out = bytearray((version,))
    wire.U16.write(len(raw), out)
    out += raw
    wire.U16.write(len(contact.encode()), out)
    out += contact.encode()
    signed = bytes(out)
    with pytest.raises(BadCard):
        card.decode(card.PREFIX + base58.encode(signed + ALICE.sign(card.LABEL, signed)))
