"""A node's contact string: its signing key and the nym addresses of its frontends (the
nym-clients it answers on), in one string. Clients pin the key; the addresses are a
starting point, superseded by the node's signed frontend descriptor. Each address is in
the slot of its frontend's id, so a string made while some frontends were down names the
others with their own ids."""

from collections.abc import Mapping
from dataclasses import dataclass

from nymchat.errors import UsageError
from nymchat.nym import base58
from nymchat.nym.address import Address, AddressError

PREFIX = "nymchat-node"
MAX_ADDRESSES = 64


class BadContact(UsageError, ValueError):
    message = "not a node contact string"


@dataclass(frozen=True)
class NodeContact:
    key: bytes
    addresses: tuple[Address, ...]  # of the frontends listed, in the order of their ids
    ids: tuple[int, ...] = ()  # their ids, ascending (none given: 1..N)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise BadContact("a node contact string names at least one nym address")
        if not self.ids:
            object.__setattr__(self, "ids", tuple(range(1, len(self.addresses) + 1)))
        ids = self.ids
        if len(ids) != len(self.addresses) or list(ids) != sorted(set(ids)) or ids[0] < 1:
            raise ValueError("a node contact's ids are one per address, ascending, from 1")
        if ids[-1] > MAX_ADDRESSES:
            raise BadContact(f"a node contact string names at most {MAX_ADDRESSES} frontends")

    @classmethod
    def of(cls, key: bytes, frontends: Mapping[int, Address]) -> "NodeContact":
        """The contact of the node with signing key `key` and these frontends (id: address)."""
        ids = tuple(sorted(frontends))
        return cls(key, tuple(frontends[n] for n in ids), ids)

    def __str__(self) -> str:
        """Frontend k's address in the k-th slot, a slot left empty for a frontend not
        listed (one that was down when the string was made): ids stay what they are."""
        slots = [""] * self.ids[-1]
        for n, address in zip(self.ids, self.addresses, strict=True):
            slots[n - 1] = str(address)
        return f"{PREFIX}:{base58.encode(self.key)}:" + ",".join(slots)

    @classmethod
    def parse(cls, text: str) -> "NodeContact":
        parts = text.strip().split(":")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise BadContact(
                f"a node contact string looks like {PREFIX}:<key>:<nym address>[,<nym address>…]"
            )
        try:
            key = base58.decode(parts[1])
        except ValueError as e:
            raise BadContact(f"the node key is not base58 ({e})") from None
        if len(key) != 32:
            raise BadContact("the node key must be 32 bytes")
        slots = parts[2].split(",")
        if len(slots) > MAX_ADDRESSES:
            raise BadContact(f"a node contact string names at most {MAX_ADDRESSES} frontends")
        frontends = {}
        for n, address in enumerate(slots, 1):
            if not address:
                continue  # a frontend not listed
            try:
                frontends[n] = Address.parse(address)
            except AddressError as e:
                which = "the node address" if len(slots) == 1 else f"node address {n}"
                raise BadContact(f"{which} is not valid: {e}") from None
        if len(set(frontends.values())) != len(frontends):
            raise BadContact("the node contact string names an address twice")
        return cls.of(key, frontends)
