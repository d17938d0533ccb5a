"""What the client keeps, as typed records. The sealed store holds them as JSON objects
whose field names are the ones older versions wrote (profiles on disk keep working);
`from_record`/`to_record` are the only places that know that shape."""

import enum
from dataclasses import dataclass
from typing import Any

from nymchat.client.events import Status


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"
    RECEIPT = "receipt"  # a receipt for one of ours, kept so that a copy is recognised
    CONTROL = "control"  # a direct-mode handshake message, likewise


def name_of(contact_id: str) -> str:
    """A contact's name at their node: their id without its node."""
    return contact_id.partition("@")[0]


@dataclass
class Contact:
    """A pinned person: the key first seen (trust on first use) and, while it has
    changed and the user has not trusted the change, the new one. With the identity, the
    agreement key it signed (what messages to them are sealed to; None for a contact
    pinned before sealed sending, until a lookup brings it), and the latest access key
    they gave us (what lets our messages to them through without proof of work).

    `username` is the contact's id, what the profile keys everything of theirs by: the
    bare name for a contact at the profile's origin node (and for every record made
    before federation), else `name@<node key base58>` (see `ContactIds.id_of`). `node` is
    their home node's key (None: the origin node), `node_contact` its contact string when
    we learnt it from them."""

    username: str
    identity: bytes
    account_key: bytes
    pinned: int
    verified: bool = False
    new_identity: bytes | None = None
    new_account_key: bytes | None = None
    session_broken: bool = False
    direct: dict[str, Any] | None = None  # direct mode's record (client/direct.py)
    agreement: bytes | None = None
    new_agreement: bytes | None = None
    access_key: bytes | None = None
    access_sent: int = 0  # the sender's time of the message that gave `access_key`
    node: bytes | None = None
    node_contact: str | None = None

    @property
    def changed(self) -> bool:
        return self.new_identity is not None

    @property
    def name(self) -> str:
        return name_of(self.username)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Contact":
        changed = record.get("changed") and record.get("new_identity")
        return cls(
            username=record["username"],
            identity=bytes.fromhex(record["identity"]),
            account_key=bytes.fromhex(record["account_key"]),
            pinned=record.get("pinned", 0),
            verified=bool(record.get("verified")),
            new_identity=bytes.fromhex(record["new_identity"]) if changed else None,
            new_account_key=bytes.fromhex(record["new_account_key"]) if changed else None,
            session_broken=bool(record.get("session_broken")),
            direct=record.get("direct"),
            agreement=_hex(record.get("agreement")),
            new_agreement=_hex(record.get("new_agreement")) if changed else None,
            access_key=_hex(record.get("access_key")),
            access_sent=record.get("access_sent", 0),
            node=_hex(record.get("node")),
            node_contact=record.get("node_contact"),
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "username": self.username,
            "identity": self.identity.hex(),
            "account_key": self.account_key.hex(),
            "pinned": self.pinned,
            "verified": self.verified,
            "changed": self.changed,
        }
        if self.new_identity is not None and self.new_account_key is not None:
            record["new_identity"] = self.new_identity.hex()
            record["new_account_key"] = self.new_account_key.hex()
        if self.session_broken:
            record["session_broken"] = True
        if self.direct is not None:
            record["direct"] = self.direct
        for name in ("agreement", "new_agreement", "access_key", "node"):
            if (value := getattr(self, name)) is not None:
                record[name] = value.hex()
        if self.node_contact is not None:
            record["node_contact"] = self.node_contact
        if self.access_key is not None:
            record["access_sent"] = self.access_sent
        return record


def _hex(value: str | None) -> bytes | None:
    return bytes.fromhex(value) if value is not None else None


@dataclass
class Message:
    """A message of a conversation, ours (`OUT`, with its status) or theirs (`IN`)."""

    id: bytes
    peer: str
    direction: Direction
    time: int  # the sender's clock, epoch milliseconds
    text: str
    status: Status = Status.DELIVERED
    reason: str | None = None  # why it failed
    shown: bool = True  # an incoming message the user has seen
    author: str | None = None  # an incoming group message's member (`peer` is "#group")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Message":
        direction = Direction(record["direction"])
        status = record.get("status", "delivered")
        return cls(
            id=bytes.fromhex(record["id"]),
            peer=record["to"] if direction is Direction.OUT else record["from"],
            direction=direction,
            time=record["time"],
            text=record["text"],
            status=Status.QUEUED if status == "sent" else Status(status),  # older: "sent"
            reason=record.get("reason"),
            shown=record.get("shown", True),
            author=record.get("author"),
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "direction": self.direction.value,
            "to" if self.direction is Direction.OUT else "from": self.peer,
            "text": self.text,
            "time": self.time,
            "id": self.id.hex(),
            "status": self.status.value,
        }
        if self.reason is not None:
            record["reason"] = self.reason
        if self.direction is Direction.IN:
            record["shown"] = self.shown
        if self.author is not None:
            record["author"] = self.author
        return record


class DirectStatus(enum.StrEnum):
    """How direct mode stands with a contact, as faces show it."""

    INVITING = "inviting"  # we invited them
    INVITED = "invited"  # they invited us
    CONFIRMING = "confirming"  # on, the path not confirmed yet
    ON = "on"


class MemberTrust(enum.StrEnum):
    """How far a group member's name is believed (client/roster.py `trust`)."""

    YOU = "you"
    VERIFIED = "verified"  # a contact with this identity, safety number compared
    PINNED = "pinned"  # a contact with this identity
    UNCONFIRMED = "unconfirmed"  # named by the group only
    MISMATCH = "mismatch"  # the name is a contact's (or was this group's) with another identity


@dataclass(frozen=True)
class GroupMember:
    name: str | None  # the roster's address, shown as people are (None: it names no one)
    identity: bytes
    trust: MemberTrust


@dataclass(frozen=True)
class Group:
    name: str  # without the "#"
    group_id: bytes
    epoch: int
    members: tuple[GroupMember, ...]
    unread: int
