"""Contact cards: how a person gives their address (name, identity and home node) as one
line of text, or the QR code of that line (docs/PROTOCOL.md, contact cards).

    nymchat-card:<base58 of: version u8 ‖ certificate (u16 length ‖ the sender certificate
        as the home node signed it) ‖ contact string (u16 length ‖ ASCII) ‖ signature b64>

The signature is the identity's (the certificate's key), label "nymchat-card", over all
before it. A card is taken when the certificate is signed by the key of the contact string
(so the node vouches that the name is the identity's there) and the identity signed the
card (so it names the node its owner chose). The certificate's expiry is not enforced: a
printed card outlives a certificate, and the lookup at the node confirms the identity."""

import math
from dataclasses import dataclass

from nymchat import _native
from nymchat.errors import BadKey, BadSignature, UsageError
from nymchat.nym import base58
from nymchat.protocol import names, wire
from nymchat.protocol.contact import BadContact, NodeContact

PREFIX = "nymchat-card:"
VERSION = 1
LABEL = "nymchat-card"
MAX_ADDRESSES = 8  # of the home node's frontends, on a card
MAX_CONTACT = 2048  # bytes of the contact string
MAX_BYTES = 1 + (2 + wire.MAX_CERTIFICATE) + (2 + MAX_CONTACT) + 64
MAX_TEXT = len(PREFIX) + math.ceil(MAX_BYTES * math.log(256, 58)) + 1


class BadCard(UsageError, ValueError):
    message = "not a valid contact card"


@dataclass(frozen=True, slots=True)
class Card:
    name: str
    identity: bytes  # Ed25519, as the home node certified it for `name`
    node: NodeContact  # the home node
    expires: int  # ms, of the certificate inside (not enforced)


@dataclass(frozen=True, slots=True)
class _Signed:
    version: int
    certificate: bytes
    contact: str


_SIGNED = wire.Record(
    _Signed,
    [("version", wire.U8), ("certificate", wire.CERTIFICATE_BYTES), ("contact", wire.TEXT)],
)


def encode(identity: "_native.Identity", certificate: bytes, node: NodeContact) -> str:
    """The card of the person holding `identity`, with their sender certificate from the
    node of `node` (the contact string carries its first `MAX_ADDRESSES` frontends)."""
    listed = dict(zip(node.ids, node.addresses, strict=True))
    shortened = NodeContact.of(node.key, {n: listed[n] for n in sorted(listed)[:MAX_ADDRESSES]})
    signed = wire.encode_record(_SIGNED, _Signed(VERSION, certificate, str(shortened)))
    return PREFIX + base58.encode(signed + identity.sign(LABEL, signed))


def decode(text: str) -> Card:
    """The card in `text`, checked; `BadCard` saying what is wrong otherwise. Sizes are
    bounded before anything is decoded, the contact string parsed before any signature."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise BadCard(f"a contact card starts with '{PREFIX}'")
    if len(text) > MAX_TEXT:
        raise BadCard("a contact card is not that long")
    try:
        data = base58.decode(text[len(PREFIX) :])
    except ValueError:
        raise BadCard("the contact card is not base58 (mistyped or cut short?)") from None
    if not 1 + 64 < len(data) <= MAX_BYTES or data[0] != VERSION:
        raise BadCard("not a contact card of a known version (cut short?)")
    signed, signature = data[:-64], data[-64:]
    try:
        card = wire.decode_record(_SIGNED, signed)
        node = NodeContact.parse(card.contact)
    except BadContact as e:
        raise BadCard(f"the card's node contact string is not valid: {e}") from None
    except wire.WireError:
        raise BadCard("the contact card is malformed (cut short?)") from None
    if len(node.addresses) > MAX_ADDRESSES:
        raise BadCard(f"a contact card lists at most {MAX_ADDRESSES} node addresses")
    try:
        # now 0: the expiry is not enforced (see the module's docstring)
        held = wire.decode_certificate(card.certificate, _native.PublicKey(node.key), 0)
    except (wire.WireError, BadKey):
        raise BadCard("the card is forged: its node did not certify this name") from None
    try:
        if names.normalize(held.name) != held.name:
            raise names.InvalidName()
        _native.verify(held.identity, LABEL, signed, signature)
    except names.InvalidName:
        raise BadCard("the card's name is not a valid username") from None
    except (BadSignature, BadKey):
        raise BadCard(f"the card is forged: {held.name}'s identity did not sign it") from None
    return Card(held.name, held.identity, node, held.expires)
