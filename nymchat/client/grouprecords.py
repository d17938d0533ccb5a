"""The groups a profile is in, at rest: one sealed record per group (MLS state, local
name, the node its log is at and how far it was taken in there, the addresses its roster
first gave each identity, ids of our own posts, the key update counters), and the log
entries of epochs not reached yet. The live `MlsGroup` of each group is kept here, one
per group, so that what is sent and what is taken in advance the same state; every
change is written in the caller's transaction."""

import os
from dataclasses import dataclass, field
from typing import Any

from nymchat import _native
from nymchat.client.store import ClientStore
from nymchat.errors import NotFound
from nymchat.protocol import names

MAX_WAITING = 1000  # entries of later epochs kept per group
MAX_WAITING_UNJOINED = 200  # entries kept, in all, for groups whose Welcome has not come
SEEN = 256  # ids of our own posts and of proposals taken in, kept to drop their copies


@dataclass
class GroupRecord:
    group_id: bytes
    name: str
    # identity → the first address seen (canonical `name@<node key>`; a bare name in
    # records made before federation: at the log node)
    first_names: dict[bytes, str] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)  # newest last
    sent_since_update: int = 0  # messages we sent since our last key update
    updated: int = 0  # when we last made one (a commit with a path), ms
    # Our commit whose answer never came (the node may have taken it): the MLS state keeps
    # it pending until its copy comes (ours won) or another commit does (it did not).
    unanswered: bytes | None = None
    node: bytes | None = None  # the log node's key (None: made before federation, the origin)
    node_contact: str | None = None  # how to reach it, when it is not a known node
    after: int = 0  # the log position taken in up to, watching it from elsewhere
    joined_epoch: int = 0  # the epoch we joined at: entries of earlier ones are not ours

    def saw(self, message_id: bytes) -> None:
        self.seen = [*self.seen, message_id][-SEEN:]

    def to_record(self, state: bytes) -> dict[str, Any]:
        return {
            "group_id": self.group_id.hex(),
            "name": self.name,
            "state": state.hex(),
            "first_names": {i.hex(): n for i, n in self.first_names.items()},
            "seen": [m.hex() for m in self.seen],
            "sent_since_update": self.sent_since_update,
            "updated": self.updated,
            "unanswered": self.unanswered.hex() if self.unanswered else None,
            "node": self.node.hex() if self.node else None,
            "node_contact": self.node_contact,
            "after": self.after,
            "joined_epoch": self.joined_epoch,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "GroupRecord":
        return cls(
            bytes.fromhex(record["group_id"]),
            record["name"],
            {bytes.fromhex(i): n for i, n in record["first_names"].items()},
            [bytes.fromhex(m) for m in record["seen"]],
            record["sent_since_update"],
            record["updated"],
            bytes.fromhex(record["unanswered"]) if record.get("unanswered") else None,
            bytes.fromhex(record["node"]) if record.get("node") else None,
            record.get("node_contact"),
            record.get("after", 0),
            record.get("joined_epoch", 0),
        )


@dataclass(frozen=True)
class Waiting:
    """A log entry of an epoch not reached yet, as `GROUP_DELIVER` brought it."""

    message_id: bytes
    epoch: int
    post: int
    sent: int
    payload: bytes


class GroupRecords:
    def __init__(self, store: ClientStore):
        self.store = store
        self._live: dict[bytes, tuple[GroupRecord, _native.MlsGroup]] = {}
        self.in_flight: set[bytes] = set()  # ids of our commits posted, not answered yet

    def _row(self, group_id: bytes) -> bytes:
        return self.store.blind("group", group_id)

    def get(
        self, group_id: bytes, member: "_native.MlsMember"
    ) -> tuple[GroupRecord, "_native.MlsGroup"] | None:
        """The group's record and live MLS group; None for a group we are not in."""
        if group_id in self._live:
            return self._live[group_id]
        row = self._row(group_id)
        found = self.store.db.execute("SELECT sealed FROM groups WHERE id = ?", (row,)).fetchone()
        if found is None:
            return None
        record = self.store.open("groups", row, found[0])
        live = GroupRecord.from_record(record), member.load_group(bytes.fromhex(record["state"]))
        self._live[group_id] = live
        return live

    def named(
        self, name: str, member: "_native.MlsMember"
    ) -> tuple[GroupRecord, "_native.MlsGroup"]:
        group_id = self.group_id(name)
        live = self.get(group_id, member) if group_id is not None else None
        if live is None:
            raise NotFound(f"no group '#{name}': `nymchat group list` shows yours")
        return live

    def group_id(self, name: str) -> bytes | None:
        found = self.store.db.execute(
            "SELECT id, sealed FROM groups WHERE name = ?", (self.store.blind("group-name", name),)
        ).fetchone()
        return bytes.fromhex(self.store.open("groups", *found)["group_id"]) if found else None

    def ids(self) -> list[bytes]:
        rows = self.store.db.execute("SELECT id, sealed FROM groups").fetchall()
        return sorted(bytes.fromhex(self.store.open("groups", r, s)["group_id"]) for r, s in rows)

    def free_name(self, wanted: str) -> str:
        """`wanted`, or wanted-2, -3... when a group of ours has that name already."""
        name, n = wanted, 1
        while self.group_id(name) is not None:
            n += 1
            suffix = f"-{n}"
            name = wanted[: names.MAX_LEN - len(suffix)] + suffix
        return name

    def put(self, record: GroupRecord, group: "_native.MlsGroup") -> None:
        """Within a transaction: the record with the group's current state."""
        row = self._row(record.group_id)
        self.store.db.execute(
            "INSERT OR REPLACE INTO groups (id, name, sealed) VALUES (?, ?, ?)",
            (
                row,
                self.store.blind("group-name", record.name),
                self.store.seal("groups", row, record.to_record(group.state())),
            ),
        )
        self._live[record.group_id] = record, group

    def delete(self, group_id: bytes) -> None:
        """Within a transaction: the group, and what waited for it (its messages stay)."""
        row = self._row(group_id)
        self.store.db.execute("DELETE FROM groups WHERE id = ?", (row,))
        self.store.db.execute("DELETE FROM group_waiting WHERE group_id = ?", (row,))
        self._live.pop(group_id, None)

    def forget_live(self, group_id: bytes) -> None:
        """Drops the live group (after a failure left it where the store's is not)."""
        self._live.pop(group_id, None)

    # --- entries of future epochs ---------------------------------------------------

    def wait(self, group_id: bytes, entry: Waiting, joined: bool = True) -> bool:
        """Keeps an entry until its epoch is reached (within a transaction); of a group
        not `joined`, until its Welcome comes (the mixnet may deliver it later). False
        when as many wait already as are kept (a node could send any number)."""
        row = self._row(group_id)
        if joined:
            count, most = "SELECT count(*) FROM group_waiting WHERE group_id = ?", MAX_WAITING
            args: tuple[bytes, ...] = (row,)
        else:
            count = (
                "SELECT count(*) FROM group_waiting WHERE group_id NOT IN (SELECT id FROM groups)"
            )
            most, args = MAX_WAITING_UNJOINED, ()
        if self.store.db.execute(count, args).fetchone()[0] >= most:
            return False
        mid = self.store.blind("group-entry", entry.message_id)
        value = {
            "message_id": entry.message_id.hex(),
            "post": entry.post,
            "sent": entry.sent,
            "payload": entry.payload.hex(),
        }
        self.store.db.execute(
            "INSERT OR IGNORE INTO group_waiting (group_id, epoch, message_id, sealed) "
            "VALUES (?, ?, ?, ?)",
            (row, entry.epoch, mid, self.store.seal("group_waiting", mid, value)),
        )
        return True

    def waiting(self, group_id: bytes, epoch: int) -> list[Waiting]:
        """The entries that waited for `epoch` (or an older one), in the order they came."""
        rows = self.store.db.execute(
            "SELECT message_id, epoch, sealed FROM group_waiting WHERE group_id = ? AND "
            "epoch <= ? ORDER BY seq",
            (self._row(group_id), epoch),
        ).fetchall()
        found = []
        for mid, entry_epoch, sealed in rows:
            value = self.store.open("group_waiting", mid, sealed)
            found.append(
                Waiting(
                    bytes.fromhex(value["message_id"]),
                    entry_epoch,
                    value["post"],
                    value["sent"],
                    bytes.fromhex(value["payload"]),
                )
            )
        return found

    def unwait(self, message_id: bytes) -> None:
        """Within the transaction that took a waiting entry in."""
        mid = self.store.blind("group-entry", message_id)
        self.store.db.execute("DELETE FROM group_waiting WHERE message_id = ?", (mid,))


def new_group_id() -> bytes:
    return os.urandom(32)
