"""Who may reach this profile through the node without proof of work: a random access
key, given to contacts inside every message, of which the node keeps only a verifier;
and the policy for strangers (free, a proof of work of so many bits, or refused).
The node is told both with `set_access` whenever they differ from what it confirmed.
Removing a contact rotates the key, so the removed one can no longer use it."""

import os

from nymchat.client.store import ClientStore
from nymchat.errors import UsageError
from nymchat.protocol import pow, wire

KEY, STRANGERS, CONFIRMED = "access_key", "strangers", "access_confirmed"
DEFAULT_STRANGERS = 16  # bits of proof of work asked of a stranger's first message
ALLOW, DENY = 0, wire.STRANGERS_DENY


def policy(choice: str, bits: int | None = None) -> int:
    """The policy `set_access` sends for `allow`, `pow [BITS]` or `deny`."""
    if choice == "allow" and bits is None:
        return ALLOW
    if choice == "deny" and bits is None:
        return DENY
    if choice == "pow":
        bits = DEFAULT_STRANGERS if bits is None else bits
        if 1 <= bits <= pow.MAX_DIFFICULTY:
            return bits
        raise UsageError(f"a proof of work for strangers has 1 to {pow.MAX_DIFFICULTY} bits")
    raise UsageError("strangers are `allow`ed, asked for a `pow [BITS]`, or `deny`ed")


def words(strangers: int) -> str:
    """The policy as the person sets it: `allow`, `pow 16`, `deny`."""
    return {ALLOW: "allow", DENY: "deny"}.get(strangers, f"pow {strangers}")


class Access:
    def __init__(self, store: ClientStore):
        self.store = store

    def key(self) -> bytes:
        """This profile's access key (made on first use, outside a transaction)."""
        key = self.store.get(KEY)
        if key is None:
            with self.store.transaction():
                return self.rotate()
        return bytes.fromhex(key)

    def rotate(self) -> bytes:
        """A new access key, for the node to learn (within a transaction)."""
        key = os.urandom(32)
        self.store.put(KEY, key.hex())
        return key

    @property
    def strangers(self) -> int:
        value: int = self.store.get(STRANGERS, DEFAULT_STRANGERS)
        return value

    def set_strangers(self, strangers: int) -> None:
        with self.store.transaction():
            self.store.put(STRANGERS, strangers)

    def wanted(self) -> tuple[bytes, int] | None:
        """What `set_access` should tell the node (verifier, policy), or None when the
        node confirmed exactly that already."""
        wanted = (wire.access_verifier(self.key()), self.strangers)
        confirmed = self.store.get(CONFIRMED)
        return None if confirmed == [wanted[0].hex(), wanted[1]] else wanted

    def confirmed(self, verifier: bytes, strangers: int) -> None:
        with self.store.transaction():
            self.store.put(CONFIRMED, [verifier.hex(), strangers])

    def forget_confirmed(self) -> None:
        """A new account at a node knows nothing of ours yet (within a transaction)."""
        self.store.put(CONFIRMED, None)
