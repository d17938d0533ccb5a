"""A person's address: `name` or `name@petname` as the user types it, and `Address` (a
name at a node key) once the petname is resolved. A petname is the user's own name for a
pinned node key, kept in the profile (client.nodes); it never leaves the profile. How an
address is shown: `name` at the home node, `name@petname` at a named node, and
`name@<first 8 base58 characters of its key>` at a node the user has not named (never typed
back: the user names the node first)."""

import re
from dataclasses import dataclass

from nymchat.errors import UsageError
from nymchat.nym import base58
from nymchat.protocol import names

SEPARATOR = "@"
KEY_LEN = 32
SHORT_KEY = 8  # base58 characters shown of a node the user has not named
_PETNAME = re.compile(rf"[A-Za-z0-9_-]{{{names.MIN_LEN},{names.MAX_LEN}}}")


class InvalidPetname(UsageError, ValueError):
    message = "a node petname that is not allowed"


def normalize_petname(petname: str) -> str:
    """The canonical form of a node petname (lower case; the alphabet and lengths of a
    username), or `InvalidPetname` saying why."""
    petname = petname.strip(" \t\r\n")
    if not _PETNAME.fullmatch(petname):
        if not names.MIN_LEN <= len(petname) <= names.MAX_LEN:
            raise InvalidPetname(f"a node petname has {names.MIN_LEN}-{names.MAX_LEN} characters")
        raise InvalidPetname("a node petname uses only a-z, 0-9, '_' and '-'")
    return petname.lower()


def parse_typed(text: str) -> tuple[str, str | None]:
    """`name` or `name@petname` as typed: (name, petname or None), both normalised;
    `InvalidName` or `InvalidPetname` saying what is wrong."""
    name, separator, petname = text.strip(" \t\r\n").partition(SEPARATOR)
    return names.normalize(name), normalize_petname(petname) if separator else None


@dataclass(frozen=True, slots=True)
class Address:
    """A name at a node, the node by its signing key."""

    name: str
    node: bytes

    def __post_init__(self) -> None:
        if len(self.node) != KEY_LEN:
            raise ValueError(f"a node key is {KEY_LEN} bytes")

    def __str__(self) -> str:
        """The canonical form, `name@<base58 key>`: the same for every profile."""
        return f"{self.name}{SEPARATOR}{base58.encode(self.node)}"


def short_key(key: bytes) -> str:
    """How a node the user has not named is shown."""
    return base58.encode(key)[:SHORT_KEY]


def display(address: Address, home: bytes | None, petname: str | None) -> str:
    """The address as shown to the user whose home node key is `home` and who calls the
    address's node `petname` (None: not named)."""
    if address.node == home:
        return address.name
    return f"{address.name}{SEPARATOR}{petname or short_key(address.node)}"
