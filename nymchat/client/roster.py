"""The group roster, sans-I/O: what a commit that changes the members carries (the
binding's custom proposal 0xF1A1; a Welcome's GroupInfo extension 0xF1A0), encrypted to
the members only: the group's name and each member's name and home node by identity key.
The node never sees it. A roster is a member's claim: names in it are shown with a trust
(`trust`), never pinned as contacts.

Version 2 (members at several nodes): `0x00 ‖ 0x02 ‖ name ‖ nodes ListOf(B32) ‖ members
ListOf(identity ‖ username ‖ node index u8)`. Version 1 (before federation) starts with
the name's length (3 or more) and names no node: every member is at the group's log node."""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nymchat.client.records import Contact, MemberTrust
from nymchat.nym import base58
from nymchat.protocol import names, wire
from nymchat.protocol.address import Address

MAX_MEMBERS = 1000  # as the node's group_max_members
MAX_NODES = 255  # a member's node is an index u8 into the roster's nodes
VERSION_2 = b"\x00\x02"


@dataclass(frozen=True, slots=True)
class Entry:
    identity: bytes
    username: str
    node: bytes  # the member's home node key

    @property
    def address(self) -> Address:
        return Address(self.username, self.node)


@dataclass(frozen=True, slots=True)
class Roster:
    name: str
    members: tuple[Entry, ...]

    def names(self) -> dict[bytes, Address]:
        return {entry.identity: entry.address for entry in self.members}

    def with_members(self, keep: set[bytes], add: dict[bytes, Address]) -> "Roster":
        """The roster of the members `keep` (by identity) and `add` (identity → address)."""
        kept = [e for e in self.members if e.identity in keep and e.identity not in add]
        new = [Entry(identity, a.name, a.node) for identity, a in add.items()]
        return Roster(self.name, tuple(kept + new))


@dataclass(frozen=True, slots=True)
class _Member:
    identity: bytes
    username: str
    node: int


@dataclass(frozen=True, slots=True)
class _Roster:
    name: str
    nodes: tuple[bytes, ...]
    members: tuple[_Member, ...]


@dataclass(frozen=True, slots=True)
class _RosterV1:
    name: str
    members: tuple[_Member, ...]


V1 = wire.Record(
    _RosterV1,
    [
        ("name", wire.NAME),
        (
            "members",
            wire.ListOf(
                wire.Record(
                    lambda identity, username: _Member(identity, username, 0),
                    [("identity", wire.B32), ("username", wire.NAME)],
                ),
                MAX_MEMBERS,
            ),
        ),
    ],
)
V2 = wire.Record(
    _Roster,
    [
        ("name", wire.NAME),
        ("nodes", wire.ListOf(wire.B32, MAX_NODES)),
        (
            "members",
            wire.ListOf(
                wire.Record(
                    _Member, [("identity", wire.B32), ("username", wire.NAME), ("node", wire.U8)]
                ),
                MAX_MEMBERS,
            ),
        ),
    ],
)


def encode(roster: Roster) -> bytes:
    """Version 2, each node once, in the order members first name it."""
    nodes = list(dict.fromkeys(e.node for e in roster.members))
    index = {node: n for n, node in enumerate(nodes)}
    members = tuple(_Member(e.identity, e.username, index[e.node]) for e in roster.members)
    return VERSION_2 + wire.encode_record(V2, _Roster(roster.name, tuple(nodes), members))


def decode(data: bytes, log_node: bytes) -> Roster:
    """A roster from the binding (`MlsGroup.roster`); `WireError` for anything but a valid
    one (names as usernames are, each identity once, each node index one of its nodes).
    A version 1 roster's members are at `log_node`, where the group's log is."""
    if data[:2] == VERSION_2:
        raw = wire.decode_record(V2, data[2:])
        nodes = raw.nodes
    else:
        raw, nodes = wire.decode_record(V1, data), (log_node,)
    if any(m.node >= len(nodes) for m in raw.members):
        raise wire.WireError("a roster names a node it does not list")
    try:
        name = names.normalize(raw.name)
        members = tuple(
            Entry(m.identity, names.normalize(m.username), nodes[m.node]) for m in raw.members
        )
    except names.InvalidName as e:
        raise wire.WireError(f"a roster name is not valid: {e}") from None
    if len({e.identity for e in members}) != len(members):
        raise wire.WireError("a roster names an identity twice")
    return Roster(name, members)


def names_of(data: bytes, log_node: bytes) -> Mapping[bytes, Address]:
    """The addresses a group's roster gives (none without one). Kept for the last rosters
    seen: every message taken in names its author, and a roster of 1,000 takes ms to
    decode."""
    return _names(data, log_node) if data else MappingProxyType({})


@functools.lru_cache(maxsize=64)
def _names(data: bytes, log_node: bytes) -> Mapping[bytes, Address]:
    return MappingProxyType(decode(data, log_node).names())


def shown(identity: bytes, name: str | None) -> str:
    """A member as faces name them: as people are shown (`name`), else a short form of
    the key."""
    return name or f"member-{identity[:4].hex()}"


@functools.lru_cache(maxsize=4096)
def first(text: str, log_node: bytes) -> Address:
    """An address a group record keeps (`first_names`): canonical `name@<node key>`, or
    a bare name (a record made before federation: at the log node)."""
    name, _, key = text.partition("@")
    return Address(name, base58.decode(key) if key else log_node)


def trust(
    identity: bytes,
    address: Address | None,
    mine: bytes,
    contact: Contact | None,
    first_names: dict[bytes, Address],
) -> MemberTrust:
    """How far to believe that the member with `identity` is who the roster says
    (`address`): `contact` is our contact at that address (if any), `first_names` whom
    this group first said each identity is (a binding other than the first, either way,
    is a mismatch)."""
    if identity == mine:
        return MemberTrust.YOU
    if contact is not None:
        if contact.identity != identity:
            return MemberTrust.MISMATCH
        return MemberTrust.VERIFIED if contact.verified else MemberTrust.PINNED
    if address is not None:
        first_address = first_names.get(identity)
        others = (a for i, a in first_names.items() if i != identity)
        if (first_address is not None and first_address != address) or address in others:
            return MemberTrust.MISMATCH
    return MemberTrust.UNCONFIRMED
