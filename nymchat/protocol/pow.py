"""Registration proof of work: hashcash over the challenge, the name and the key."""

import hashlib
import struct

DOMAIN = b"nymchat-pow-v1\x00"


def _digest(challenge: bytes, name: str, requester: bytes, nonce: int) -> bytes:
    return hashlib.sha256(DOMAIN + challenge + name.encode("ascii") + requester
                          + struct.pack(">Q", nonce)).digest()


def _leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def check(challenge: bytes, name: str, requester: bytes, nonce: int, difficulty: int) -> bool:
    return difficulty == 0 or \
        _leading_zero_bits(_digest(challenge, name, requester, nonce)) >= difficulty


def solve(challenge: bytes, name: str, requester: bytes, difficulty: int) -> int:
    """The first nonce that meets `difficulty` (about 2**difficulty hashes)."""
    prefix = hashlib.sha256(DOMAIN + challenge + name.encode("ascii") + requester)
    nonce = 0
    while difficulty:
        h = prefix.copy()
        h.update(struct.pack(">Q", nonce))
        if _leading_zero_bits(h.digest()) >= difficulty:
            break
        nonce += 1
    return nonce
