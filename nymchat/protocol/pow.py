"""Proofs of work (hashcash): SHA-256 over a domain, what the proof is bound to and a
nonce u64 must start with `difficulty` zero bits. Registration binds the node's challenge,
the name and the key; an anonymous lookup binds the node, its request id and the name
looked up (so each proof buys one lookup); a stranger's sealed send binds the node, the
recipient and the message id (a copy of the message is a retry, accepted once)."""

import hashlib
import struct

from nymchat.errors import Refused

REGISTER_DOMAIN = b"nymchat-pow-v1\x00"
LOOKUP_DOMAIN = b"nymchat-lookup-pow-v1\x00"
SEND_DOMAIN = b"nymchat-send-pow-v1\x00"
# The most a node may ask for (about 2**24 hashes: seconds to a minute); a node's
# difficulty rises with its registration rate up to this.
MAX_DIFFICULTY = 24


class TooDifficult(Refused):
    message = "the node asks for more proof of work than a client does"


def registration(challenge: bytes, name: str, requester: bytes) -> bytes:
    return REGISTER_DOMAIN + challenge + name.encode("ascii") + requester


def lookup(node_key: bytes, request_id: bytes, name: str) -> bytes:
    return LOOKUP_DOMAIN + node_key + request_id + name.encode("ascii")


def send(node_key: bytes, recipient: str, message_id: bytes) -> bytes:
    return SEND_DOMAIN + node_key + bytes([len(recipient)]) + recipient.encode("ascii") + message_id


def _leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def check(bound: bytes, nonce: int, difficulty: int) -> bool:
    """Whether `nonce` proves `difficulty` bits of work over `bound` (one of the
    functions above)."""
    if difficulty == 0:
        return True
    if not 0 <= nonce < 1 << 64:
        return False
    digest = hashlib.sha256(bound + struct.pack(">Q", nonce)).digest()
    return _leading_zero_bits(digest) >= difficulty


def solve(bound: bytes, difficulty: int, what: str = "a proof of work") -> int:
    """The first nonce that meets `difficulty` (about 2**difficulty hashes); `TooDifficult`
    over MAX_DIFFICULTY, before any work."""
    if difficulty > MAX_DIFFICULTY:
        raise TooDifficult(
            f"the node asks for {what} of {difficulty} bits; nymchat does at most "
            f"{MAX_DIFFICULTY} (about {2**MAX_DIFFICULTY:,} hashes): the node is "
            "misconfigured or hostile"
        )
    prefix = hashlib.sha256(bound)
    nonce = 0
    while difficulty:
        h = prefix.copy()
        h.update(struct.pack(">Q", nonce))
        if _leading_zero_bits(h.digest()) >= difficulty:
            break
        nonce += 1
    return nonce
