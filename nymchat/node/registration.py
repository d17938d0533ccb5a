"""Registration, sans-I/O (clock passed in): stateless challenges, and a proof-of-work
difficulty that rises with the node-wide registration rate.

A challenge is a MAC, under a key only the node holds, over everything the finish needs:
the name, the requester's key, a digest of the bundle, the difficulty and the expiry. The
client sends all of it back with its proof of work, so a registration in progress costs
the node no memory, and no number of sender tags can fill a table of pending ones."""

import hashlib
import hmac
import struct

from nymchat.protocol import pow, wire

CHALLENGE_DOMAIN = b"nymchat-challenge-v1\x00"
KEY_INFO = b"nymchat-node-challenge-key-v1"
NAME_KEY_INFO = b"nymchat-node-name-key-v1"


def _derive(identity_secret: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(identity_secret)


def challenge_key(identity_secret: bytes) -> bytes:
    """The node's challenge MAC key, from its identity secret (HKDF-SHA256): nothing to
    store, and challenges stay good across a restart."""
    return _derive(identity_secret, KEY_INFO)


def name_key(identity_secret: bytes) -> bytes:
    """The key of the names' hashes in the node's database (`store.NameHashes`): sealed
    with the node key, so a copy of the database alone names nobody."""
    return _derive(identity_secret, NAME_KEY_INFO)


class Challenges:
    def __init__(self, key: bytes, ttl: int):
        self.key, self.ttl = key, ttl

    def _mac(
        self, username: str, requester: bytes, bundle: wire.Bundle, difficulty: int, expires: int
    ) -> bytes:
        name = username.encode("ascii")
        digest = hashlib.sha256(wire.encode_record(wire.BUNDLE, bundle)).digest()
        message = (
            CHALLENGE_DOMAIN
            + bytes([len(name)])
            + name
            + requester
            + struct.pack(">QB", expires, difficulty)
            + digest
        )
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def issue(
        self, username: str, requester: bytes, bundle: wire.Bundle, difficulty: int, now: int
    ) -> tuple[bytes, int]:
        """A challenge for this registration, and when it expires."""
        expires = now + self.ttl
        return self._mac(username, requester, bundle, difficulty, expires), expires

    def valid(
        self,
        challenge: bytes,
        username: str,
        requester: bytes,
        bundle: wire.Bundle,
        difficulty: int,
        expires: int,
        now: int,
    ) -> bool:
        """Whether this node issued `challenge` for exactly these values, and it is live."""
        return now < expires and hmac.compare_digest(
            self._mac(username, requester, bundle, difficulty, expires), challenge
        )


class Difficulty:
    """The proof of work asked of a registration: `base` bits (0: none), one more per
    doubling of recent registrations beyond `free`, at most `pow.MAX_DIFFICULTY`. Recent
    registrations are a count that halves every `half_life` ms, kept by the store (shared
    by the node's processes) as the count and when it was last set."""

    def __init__(self, base: int, free: int, half_life: int):
        self.base, self.free, self.half_life = base, free, half_life

    def recent(self, state: tuple[float, int] | None, now: int) -> float:
        """The count now, of a `(count, when)` stored (None: no registration yet)."""
        if state is None:
            return 0.0
        count, at = state
        return count * 0.5 ** (max(0, now - at) / self.half_life)

    def bits(self, recent: float) -> int:
        if not self.base:
            return 0
        return min(pow.MAX_DIFFICULTY, self.base + int(recent / self.free).bit_length())
