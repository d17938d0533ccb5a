"""The group roster, sans-I/O: what a commit that changes the members carries (the
binding's custom proposal 0xF1A1; a Welcome's GroupInfo extension 0xF1A0), encrypted to
the members only: the group's name and each member's name by identity key. The node never
sees it. A roster is a member's claim: names in it are shown with a trust (`trust`), never
pinned as contacts."""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nymchat.client.records import Contact, MemberTrust
from nymchat.protocol import names, wire

MAX_MEMBERS = 1000  # as the node's group_max_members


@dataclass(frozen=True, slots=True)
class Entry:
    identity: bytes
    username: str


@dataclass(frozen=True, slots=True)
class Roster:
    name: str
    members: tuple[Entry, ...]

    def names(self) -> dict[bytes, str]:
        return {entry.identity: entry.username for entry in self.members}

    def with_members(self, keep: set[bytes], add: dict[bytes, str]) -> "Roster":
        """The roster of the members `keep` (by identity) and `add` (identity → name)."""
        kept = [e for e in self.members if e.identity in keep and e.identity not in add]
        new = [Entry(identity, username) for identity, username in add.items()]
        return Roster(self.name, tuple(kept + new))


ENTRY = wire.Record(Entry, [("identity", wire.B32), ("username", wire.NAME)])
ROSTER = wire.Record(Roster, [("name", wire.NAME), ("members", wire.ListOf(ENTRY, MAX_MEMBERS))])


def encode(roster: Roster) -> bytes:
    return wire.encode_record(ROSTER, roster)


def decode(data: bytes) -> Roster:
    """A roster from the binding (`MlsGroup.roster`); `WireError` for anything but a valid
    one (names as usernames are, each identity once)."""
    roster = wire.decode_record(ROSTER, data)
    try:
        name = names.normalize(roster.name)
        members = tuple(Entry(e.identity, names.normalize(e.username)) for e in roster.members)
    except names.InvalidName as e:
        raise wire.WireError(f"a roster name is not valid: {e}") from None
    if len({e.identity for e in members}) != len(members):
        raise wire.WireError("a roster names an identity twice")
    return Roster(name, members)


def names_of(data: bytes) -> Mapping[bytes, str]:
    """The names a group's roster gives (none without one). Kept for the last rosters seen:
    every message taken in names its author, and a roster of 1,000 takes ms to decode."""
    return _names(data) if data else MappingProxyType({})


@functools.lru_cache(maxsize=64)
def _names(data: bytes) -> Mapping[bytes, str]:
    return MappingProxyType(decode(data).names())


def shown(identity: bytes, username: str | None) -> str:
    """A member as faces name them: the roster's name, else a short form of the key."""
    return username or f"member-{identity[:4].hex()}"


def trust(
    identity: bytes,
    username: str | None,
    mine: bytes,
    contact: Contact | None,
    first_names: dict[bytes, str],
) -> MemberTrust:
    """How far to believe that the member with `identity` is `username`: `contact` is our
    contact of that name (if any), `first_names` the names this group first gave each
    identity (a binding other than the first, either way, is a mismatch)."""
    if identity == mine:
        return MemberTrust.YOU
    if contact is not None:
        if contact.identity != identity:
            return MemberTrust.MISMATCH
        return MemberTrust.VERIFIED if contact.verified else MemberTrust.PINNED
    if username is not None:
        first = first_names.get(identity)
        others = (name for i, name in first_names.items() if i != identity)
        if (first is not None and first != username) or username in others:
            return MemberTrust.MISMATCH
    return MemberTrust.UNCONFIRMED
