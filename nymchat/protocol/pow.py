"""Registration proof of work: hashcash over the challenge, the name and the key."""

import hashlib
import struct

from nymchat.errors import Refused

DOMAIN = b"nymchat-pow-v1\x00"
# The most a node may ask for (about 2**24 hashes: seconds to a minute); a node's
# difficulty rises with its registration rate up to this.
MAX_DIFFICULTY = 24


class TooDifficult(Refused):
    message = "the node asks for more proof of work than a client does"


def _digest(challenge: bytes, name: str, requester: bytes, nonce: int) -> bytes:
    return hashlib.sha256(
        DOMAIN + challenge + name.encode("ascii") + requester + struct.pack(">Q", nonce)
    ).digest()


def _leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def check(challenge: bytes, name: str, requester: bytes, nonce: int, difficulty: int) -> bool:
    return (
        difficulty == 0
        or _leading_zero_bits(_digest(challenge, name, requester, nonce)) >= difficulty
    )


def solve(challenge: bytes, name: str, requester: bytes, difficulty: int) -> int:
    """The first nonce that meets `difficulty` (about 2**difficulty hashes); `TooDifficult`
    over MAX_DIFFICULTY, before any work."""
    if difficulty > MAX_DIFFICULTY:
        raise TooDifficult(
            f"the node asks for a proof of work of {difficulty} bits; nymchat "
            f"does at most {MAX_DIFFICULTY} (about {2**MAX_DIFFICULTY:,} "
            "hashes): the node is misconfigured or hostile; nothing was "
            "registered"
        )
    prefix = hashlib.sha256(DOMAIN + challenge + name.encode("ascii") + requester)
    nonce = 0
    while difficulty:
        h = prefix.copy()
        h.update(struct.pack(">Q", nonce))
        if _leading_zero_bits(h.digest()) >= difficulty:
            break
        nonce += 1
    return nonce
