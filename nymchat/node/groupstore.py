"""The node's group tables (schema 007): the key-package directory and, per group, its
epoch, the verifiers of its last access keys, its members and its log. Members are name
hashes like every user key of `NodeStore`; what is posted is stored once (an entry) with
one delivery row per recipient, and an entry goes with its last delivery. Entry bytes
count in the node's queued total (`queue_total`), so one bound holds for everything."""

import sqlite3
from dataclasses import dataclass

KEPT_EPOCHS = 4  # the access keys a post may present: the current epoch's and 3 before


@dataclass(frozen=True)
class Group:
    epoch: int
    last_commit: bytes  # the message id of the commit that led to `epoch`


@dataclass(frozen=True)
class GroupQueued:
    """A delivery with what its push needs: the entry and the recipient's route."""

    recipient: bytes  # a name hash
    identity: bytes
    sender_tag: bytes | None
    push_key: bytes | None
    pushes: int
    entry: int
    message_id: bytes
    group_id: bytes
    epoch: int
    post: int
    received: int
    payload: bytes


_QUEUED = (
    "SELECT d.recipient, u.identity, u.sender_tag, u.push_key, d.pushes, e.seq, e.message_id,"
    " e.group_id, e.epoch, e.post, e.received, e.payload FROM group_deliveries d"
    " JOIN group_entries e ON e.seq = d.entry JOIN users u ON u.name_hash = d.recipient"
)


class GroupStore:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    # --- key packages ---------------------------------------------------------------

    def count_key_packages(self, key: bytes) -> int:
        """The packages `key` has left to hand out (the last resort not counted)."""
        return self.db.execute(
            "SELECT count(*) FROM key_packages WHERE name_hash = ? AND last_resort = 0", (key,)
        ).fetchone()[0]

    def add_key_packages(self, key: bytes, packages) -> None:
        self.db.executemany(
            "INSERT INTO key_packages (name_hash, key_package) VALUES (?, ?)",
            [(key, package) for package in packages],
        )

    def set_last_resort(self, key: bytes, package: bytes) -> None:
        self.db.execute("DELETE FROM key_packages WHERE name_hash = ? AND last_resort = 1", (key,))
        self.db.execute(
            "INSERT INTO key_packages (name_hash, key_package, last_resort) VALUES (?, ?, 1)",
            (key, package),
        )

    def take_key_package(self, key: bytes) -> bytes | None:
        """Removes and returns the oldest package: each is handed out once."""
        row = self.db.execute(
            "DELETE FROM key_packages WHERE seq = (SELECT min(seq) FROM key_packages"
            " WHERE name_hash = ? AND last_resort = 0) RETURNING key_package",
            (key,),
        ).fetchone()
        return row[0] if row else None

    def last_resort(self, key: bytes) -> bytes | None:
        row = self.db.execute(
            "SELECT key_package FROM key_packages WHERE name_hash = ? AND last_resort = 1",
            (key,),
        ).fetchone()
        return row[0] if row else None

    # --- groups ---------------------------------------------------------------------

    def group(self, group_id: bytes) -> Group | None:
        row = self.db.execute(
            "SELECT epoch, last_commit FROM groups WHERE group_id = ?", (group_id,)
        ).fetchone()
        return Group(*row) if row else None

    def verifier(self, group_id: bytes, epoch: int) -> bytes | None:
        row = self.db.execute(
            "SELECT verifier FROM group_verifiers WHERE group_id = ? AND epoch = ?",
            (group_id, epoch),
        ).fetchone()
        return row[0] if row else None

    def create(self, group_id: bytes, verifier: bytes, now: int) -> None:
        """A group at epoch 0 with no member yet (its creating commit follows)."""
        self.db.execute(
            "INSERT INTO groups (group_id, epoch, last_commit, created) VALUES (?, 0, x'', ?)",
            (group_id, now),
        )
        self.db.execute(
            "INSERT INTO group_verifiers (group_id, epoch, verifier) VALUES (?, 0, ?)",
            (group_id, verifier),
        )

    def advance(self, group_id: bytes, epoch: int, verifier: bytes, message_id: bytes) -> None:
        """The commit `message_id` at `epoch` was accepted: the group is at `epoch + 1`,
        whose access key `verifier` checks; the oldest kept epoch is forgotten."""
        self.db.execute(
            "UPDATE groups SET epoch = ?, last_commit = ? WHERE group_id = ?",
            (epoch + 1, message_id, group_id),
        )
        self.db.execute(
            "INSERT INTO group_verifiers (group_id, epoch, verifier) VALUES (?, ?, ?)",
            (group_id, epoch + 1, verifier),
        )
        self.db.execute(
            "DELETE FROM group_verifiers WHERE group_id = ? AND epoch <= ?",
            (group_id, epoch + 1 - KEPT_EPOCHS),
        )

    def members(self, group_id: bytes) -> list[bytes]:
        return [
            row[0]
            for row in self.db.execute(
                "SELECT name_hash FROM group_members WHERE group_id = ?", (group_id,)
            )
        ]

    def add_members(self, group_id: bytes, keys) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO group_members (group_id, name_hash) VALUES (?, ?)",
            [(group_id, key) for key in keys],
        )

    def remove_members(self, group_id: bytes, keys) -> None:
        """Drops `keys` from the fan-out (what is queued for them stays theirs)."""
        self.db.executemany(
            "DELETE FROM group_members WHERE group_id = ? AND name_hash = ?",
            [(group_id, key) for key in keys],
        )

    def leave(self, group_id: bytes, key: bytes) -> None:
        """`key` leaves: no more deliveries, none pending; an emptied group goes."""
        entries = [
            row[0]
            for row in self.db.execute(
                "DELETE FROM group_deliveries WHERE recipient = ? AND entry IN"
                " (SELECT seq FROM group_entries WHERE group_id = ?) RETURNING entry",
                (key, group_id),
            ).fetchall()
        ]
        self._drop_done(entries)
        self.db.execute(
            "DELETE FROM group_members WHERE group_id = ? AND name_hash = ?", (group_id, key)
        )
        self.db.execute(
            "DELETE FROM groups WHERE group_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM group_members WHERE group_id = ?)",
            (group_id, group_id),
        )

    def forget_user(self, key: bytes) -> None:
        """Before `key` is unregistered: out of every group, deliveries and all."""
        groups = self.db.execute(
            "SELECT group_id FROM group_members WHERE name_hash = ?", (key,)
        ).fetchall()
        for (group_id,) in groups:
            self.leave(group_id, key)
        entries = [
            row[0]
            for row in self.db.execute(
                "DELETE FROM group_deliveries WHERE recipient = ? RETURNING entry", (key,)
            ).fetchall()
        ]
        self._drop_done(entries)

    def count_groups(self) -> int:
        return self.db.execute("SELECT count(*) FROM groups").fetchone()[0]

    # --- the log --------------------------------------------------------------------

    def has_entry(self, group_id: bytes, message_id: bytes) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM group_entries WHERE group_id = ? AND message_id = ?",
                (group_id, message_id),
            ).fetchone()
            is not None
        )

    def count_entries(self, group_id: bytes) -> int:
        return self.db.execute(
            "SELECT count(*) FROM group_entries WHERE group_id = ?", (group_id,)
        ).fetchone()[0]

    def post(
        self,
        group_id: bytes,
        epoch: int,
        post: int,
        message_id: bytes,
        payload: bytes,
        now: int,
        recipients: list[bytes],
    ) -> int | None:
        """Stores `payload` once with a delivery for each of `recipients` (due now);
        returns the entry, None if there is no recipient (nothing stored)."""
        if not recipients:
            return None
        entry = self.db.execute(
            "INSERT INTO group_entries (group_id, epoch, post, message_id, received, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (group_id, epoch, post, message_id, now, payload),
        ).lastrowid
        self.db.executemany(
            "INSERT INTO group_deliveries (recipient, entry, next_push) VALUES (?, ?, ?)",
            [(key, entry, now) for key in recipients],
        )
        self.db.execute("UPDATE queue_total SET bytes = bytes + ?", (len(payload),))
        return entry

    def entry_deliveries(self, entry: int) -> list[GroupQueued]:
        """The deliveries of `entry` to recipients with a route (to push now)."""
        rows = self.db.execute(
            _QUEUED + " WHERE d.entry = ? AND u.sender_tag IS NOT NULL", (entry,)
        ).fetchall()
        return [GroupQueued(*row) for row in rows]

    def queued(self, recipient: bytes, limit: int) -> list[GroupQueued]:
        rows = self.db.execute(
            _QUEUED + " WHERE d.recipient = ? ORDER BY d.entry LIMIT ?", (recipient, limit)
        ).fetchall()
        return [GroupQueued(*row) for row in rows]

    def queue_size(self, recipient: bytes) -> int:
        return self.db.execute(
            "SELECT count(*) FROM group_deliveries WHERE recipient = ?", (recipient,)
        ).fetchone()[0]

    def due_pushes(self, now: int, limit: int) -> list[GroupQueued]:
        rows = self.db.execute(
            _QUEUED + " WHERE d.next_push <= ? AND u.sender_tag IS NOT NULL"
            " ORDER BY d.next_push LIMIT ?",
            (now, limit),
        ).fetchall()
        return [GroupQueued(*row) for row in rows]

    def pushed(self, deliveries: list[tuple[bytes, int, int]]) -> None:
        """(recipient, entry, next push) of deliveries just pushed."""
        self.db.executemany(
            "UPDATE group_deliveries SET pushes = pushes + 1, next_push = ?"
            " WHERE recipient = ? AND entry = ?",
            [(when, recipient, entry) for recipient, entry, when in deliveries],
        )

    def reschedule(self, recipient: bytes, when: int) -> None:
        self.db.execute(
            "UPDATE group_deliveries SET next_push = ? WHERE recipient = ?", (when, recipient)
        )

    def ack(self, recipient: bytes, message_ids) -> list[int]:
        """Deletes the deliveries of entries with these ids; returns when each was taken."""
        received, entries = [], []
        for message_id in message_ids:
            for entry, when in self.db.execute(
                "SELECT d.entry, e.received FROM group_deliveries d JOIN group_entries e"
                " ON e.seq = d.entry WHERE d.recipient = ? AND e.message_id = ?",
                (recipient, message_id),
            ).fetchall():
                self.db.execute(
                    "DELETE FROM group_deliveries WHERE recipient = ? AND entry = ?",
                    (recipient, entry),
                )
                entries.append(entry)
                received.append(when)
        self._drop_done(entries)
        return received

    def _drop_done(self, entries) -> None:
        """Deletes those of `entries` no delivery needs any more."""
        freed = 0
        for entry in set(entries):
            row = self.db.execute(
                "DELETE FROM group_entries WHERE seq = ? AND NOT EXISTS (SELECT 1 FROM"
                " group_deliveries WHERE entry = ?) RETURNING length(payload)",
                (entry, entry),
            ).fetchone()
            freed += row[0] if row else 0
        if freed:
            self.db.execute("UPDATE queue_total SET bytes = bytes - ?", (freed,))

    def expire(self, before: int) -> int:
        """Drops entries taken before `before`, their deliveries with them."""
        rows = self.db.execute(
            "DELETE FROM group_entries WHERE received < ? RETURNING length(payload)", (before,)
        ).fetchall()
        if rows:
            self.db.execute("UPDATE queue_total SET bytes = bytes - ?", (sum(r[0] for r in rows),))
        return len(rows)
