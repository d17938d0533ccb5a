"""A node's contact string: its signing key and the nym addresses of its frontends (the
nym-clients it answers on), in one string. Clients pin the key; the addresses are a
starting point, superseded by the node's signed frontend descriptor."""

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
    addresses: tuple[Address, ...]  # in the order of the frontends' ids, 1 first

    def __post_init__(self) -> None:
        if not self.addresses:
            raise BadContact("a node contact string names at least one nym address")

    def __str__(self) -> str:
        return f"{PREFIX}:{base58.encode(self.key)}:" + ",".join(map(str, self.addresses))

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
        texts = parts[2].split(",")
        if len(texts) > MAX_ADDRESSES:
            raise BadContact(f"a node contact string names at most {MAX_ADDRESSES} addresses")
        addresses = []
        for n, address in enumerate(texts, 1):
            try:
                addresses.append(Address.parse(address))
            except AddressError as e:
                which = "the node address" if len(texts) == 1 else f"node address {n}"
                raise BadContact(f"{which} is not valid: {e}") from None
        if len(set(addresses)) != len(addresses):
            raise BadContact("the node contact string names an address twice")
        return cls(key, tuple(addresses))
