"""Direct mode, sans-I/O: what two clients exchange to talk without the node.

The handshake rides inside the end-to-end session, through the node: an invitation (a
random id), an acceptance (the id, a fresh 32-byte secret and the accepter's nym
address), an end. Only the accepter discloses an address, and only to the inviter: the
inviter (the *dialer*) sends to it with `sendAnonymous`, the accepter (the *listener*)
answers with `reply` on the dialer's SURBs, so the dialer's address stays hidden.

Direct packets carry Olm messages exactly as the node would relay them, wrapped with a
channel id and an HMAC under keys derived from the shared secret: a packet from anyone
who does not hold the secret (a stranger who learned the address, a node) is dropped
after one table lookup and one MAC, before any session is touched.
"""

import hashlib
import hmac
from dataclasses import dataclass

from nymchat.protocol import wire

MAGIC = 0xD1  # first byte of every direct packet; node answers start with wire.VERSION
VERSION = 1
MESSAGE, HELLO = 1, 2
FROM_DIALER, FROM_LISTENER = 1, 2
CHANNEL_LEN, MAC_LEN = 16, 32
HEADER_LEN = 2 + 1 + 1 + CHANNEL_LEN + 16
MAX_PACKET = HEADER_LEN + wire.MAX_BLOB + MAC_LEN

ENDED, DECLINED, FAILED = 0, 1, 2
END_REASONS = {ENDED: "ended", DECLINED: "declined", FAILED: "failed"}


class BadPacket(ValueError):
    """Bytes that are not a direct packet."""


@dataclass(frozen=True, slots=True)
class Keys:
    """What a shared secret gives: the channel id that names the pair, and the MAC key."""

    channel: bytes
    mac: bytes


def keys(secret: bytes) -> Keys:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    okm = HKDF(hashes.SHA256(), CHANNEL_LEN + 32, salt=None, info=b"nymchat-direct-v1").derive(
        secret
    )
    return Keys(okm[:CHANNEL_LEN], okm[CHANNEL_LEN:])


@dataclass(frozen=True, slots=True)
class Packet:
    kind: int
    direction: int
    channel: bytes
    message_id: bytes
    payload: bytes
    signed: bytes  # everything the MAC covers
    mac: bytes


def encode_packet(
    keys_: Keys, kind: int, direction: int, message_id: bytes, payload: bytes = b""
) -> bytes:
    signed = bytes([MAGIC, VERSION, kind, direction]) + keys_.channel + message_id + payload
    return signed + hmac.new(keys_.mac, signed, hashlib.sha256).digest()


def decode_packet(data: bytes) -> Packet:
    """Splits a packet; the MAC is checked by `authentic` once the channel is known."""
    if not HEADER_LEN + MAC_LEN <= len(data) <= MAX_PACKET:
        raise BadPacket("wrong size for a direct packet")
    if data[0] != MAGIC or data[1] != VERSION:
        raise BadPacket("not a direct packet of this version")
    kind, direction = data[2], data[3]
    if kind not in (MESSAGE, HELLO) or direction not in (FROM_DIALER, FROM_LISTENER):
        raise BadPacket("unknown kind or direction")
    if kind == HELLO and len(data) != HEADER_LEN + MAC_LEN:
        raise BadPacket("a hello carries nothing")
    signed, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    return Packet(
        kind,
        direction,
        signed[4 : 4 + CHANNEL_LEN],
        signed[4 + CHANNEL_LEN : HEADER_LEN],
        signed[HEADER_LEN:],
        signed,
        mac,
    )


def authentic(packet: Packet, keys_: Keys) -> bool:
    expected = hmac.new(keys_.mac, packet.signed, hashlib.sha256).digest()
    return hmac.compare_digest(expected, packet.mac)


# --- the handshake, inside end-to-end messages --------------------------------------


@dataclass(frozen=True, slots=True)
class Accept:
    invite: bytes
    secret: bytes
    address: bytes  # the accepter's nym address, 96 bytes


ACCEPT = wire.Record(Accept, [("invite", wire.B16), ("secret", wire.B32), ("address", wire.B96)])


def encode_accept(accept: Accept) -> bytes:
    return wire.encode_record(ACCEPT, accept)


def decode_accept(body: bytes) -> Accept:
    return wire.decode_record(ACCEPT, body)


def decode_invite(body: bytes) -> bytes:
    if len(body) != 16:
        raise wire.WireError("an invitation is a 16-byte id")
    return body


def decode_end(body: bytes) -> int:
    if len(body) != 1 or body[0] not in END_REASONS:
        raise wire.WireError("unknown reason to end direct mode")
    return body[0]
