"""A node's contact string: its signing key and its nym address, in one string."""

from dataclasses import dataclass

from nymchat.errors import UsageError
from nymchat.nym import base58
from nymchat.nym.address import Address, AddressError

PREFIX = "nymchat-node"


class BadContact(UsageError, ValueError):
    message = "not a node contact string"


@dataclass(frozen=True)
class NodeContact:
    key: bytes
    address: Address

    def __str__(self) -> str:
        return f"{PREFIX}:{base58.encode(self.key)}:{self.address}"

    @classmethod
    def parse(cls, text: str) -> "NodeContact":
        parts = text.strip().split(":")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise BadContact(f"a node contact string looks like {PREFIX}:<key>:<nym address>")
        try:
            key = base58.decode(parts[1])
        except ValueError as e:
            raise BadContact(f"the node key is not base58 ({e})") from None
        if len(key) != 32:
            raise BadContact("the node key must be 32 bytes")
        try:
            return cls(key, Address.parse(parts[2]))
        except AddressError as e:
            raise BadContact(f"the node address is not valid: {e}") from None
