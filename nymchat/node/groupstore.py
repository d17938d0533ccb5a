"""The node's group tables (schema 007, 009): the key-package directory and, per group,
its epoch, the verifiers of its last access keys, its members and its log. Members are
name hashes like every user key of `NodeStore`; what is posted is stored once (an entry)
with one delivery row per recipient, and an entry goes with its last delivery, unless
its group is watched (by members homed at other nodes): then it stays until the
retention, for them. Entry bytes count in the node's queued total (`QueueTotals`), so
one bound holds for everything."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nymchat.node.database import Database
from nymchat.protocol.wire import GroupEntry, GroupPost

KEPT_EPOCHS = 4  # the access keys a post may present: the current epoch's and 3 before


async def hold_user(db: Database, key: bytes) -> None:
    """Holds user `key`'s row until the transaction ends: another process's change of
    what hangs on it (a queued message, a key package) waits, so a read-modify-write of
    those cannot interleave with one (no lost count, no second last resort)."""
    await db.fetchone(f"SELECT 1 FROM users WHERE name_hash = ?{db.for_update}", (key,))


def marks(values) -> str:
    """`(?, ?, …)`, a placeholder for each of `values` (not empty)."""
    return "(" + ", ".join("?" * len(values)) + ")"


async def one(db: Database, sql: str, params: Sequence[Any] = ()) -> tuple:
    """The row of a statement that always has one (an aggregate, an insert's RETURNING)."""
    row = await db.fetchone(sql, params)
    assert row is not None
    return row


class QueueTotals:
    """The payload bytes queued on the node (pair queue and group log), as shards: each
    store adds to its own row, so node processes never wait for one another's; the total
    is their sum. Inside a transaction (`begin` .. `commit`) the change is kept here and
    written once at the end, and the total is read once: one statement per batch, not
    two per message."""

    def __init__(self, db: Database, shard: int):
        self.db, self.shard = db, shard
        self.pending: int | None = None  # the open transaction's change (None: none open)
        self._read: int | None = None  # the total as the open transaction first read it

    def begin(self) -> None:
        self.pending, self._read = 0, None

    async def commit(self) -> None:
        """Writes the transaction's change (inside it, before it commits)."""
        pending, self.pending = self.pending, None
        await self._write(pending or 0)

    def abandon(self) -> None:
        self.pending = None

    async def add(self, size: int) -> None:
        if self.pending is None:
            await self._write(size)
        else:
            self.pending += size

    async def _write(self, size: int) -> None:
        if size:
            await self.db.write(
                "INSERT INTO queue_totals (shard, bytes) VALUES (?, ?)"
                " ON CONFLICT (shard) DO UPDATE SET bytes = queue_totals.bytes + excluded.bytes",
                (self.shard, size),
            )

    async def total(self) -> int:
        if self.pending is not None and self._read is not None:
            return self._read + self.pending
        row = await one(self.db, "SELECT CAST(coalesce(sum(bytes), 0) AS BIGINT) FROM queue_totals")
        if self.pending is None:
            return row[0]
        self._read = row[0]  # without this transaction's change, not written yet
        return row[0] + self.pending

    async def fold(self) -> None:
        """Folds the other shards into this one (they pile up as stores come and go).
        Its own shard is held first and those another transaction holds are left for
        next time, so two stores folding at once never deadlock (also when each writes
        its shard at its transaction's end)."""
        await self.db.execute(
            "INSERT INTO queue_totals (shard, bytes) VALUES (?, 0)"
            " ON CONFLICT (shard) DO UPDATE SET bytes = queue_totals.bytes",
            (self.shard,),
        )
        rows = await self.db.fetchall(
            "DELETE FROM queue_totals WHERE shard IN (SELECT shard FROM queue_totals"
            f" WHERE shard <> ?{self.db.skip_locked}) RETURNING bytes",
            (self.shard,),
        )
        moved = sum(size for (size,) in rows)
        if self._read is not None:
            self._read -= moved  # now in this transaction's change
        await self.add(moved)


@dataclass(frozen=True)
class Group:
    epoch: int
    last_commit: bytes  # the message id of the commit that led to `epoch`
    position: int  # of its newest entry (0: none yet)
    watched_until: int  # ms: kept for its watchers until then

    def watched(self, now: int) -> bool:
        return self.watched_until > now


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


# an entry no delivery needs is kept while its group is watched (a Welcome, never watched, is not)
_UNWATCHED = (
    "(group_entries.post = 4 OR NOT EXISTS (SELECT 1 FROM groups"
    " WHERE groups.group_id = group_entries.group_id AND groups.watched_until > ?))"
)
_QUEUED = (
    "SELECT d.recipient, u.identity, u.sender_tag, u.push_key, d.pushes, e.seq, e.message_id,"
    " e.group_id, e.epoch, e.post, e.received, e.payload FROM group_deliveries d"
    " JOIN group_entries e ON e.seq = d.entry JOIN users u ON u.name_hash = d.recipient"
)


class GroupStore:
    def __init__(self, db: Database, totals: QueueTotals):
        self.db, self.totals = db, totals

    # --- key packages ---------------------------------------------------------------

    async def count_key_packages(self, key: bytes) -> int:
        """The packages `key` has left to hand out (the last resort not counted)."""
        row = await one(
            self.db,
            "SELECT count(*) FROM key_packages WHERE name_hash = ? AND last_resort = 0",
            (key,),
        )
        return row[0]

    async def add_key_packages(self, key: bytes, packages) -> None:
        await self.db.executemany(
            "INSERT INTO key_packages (name_hash, key_package) VALUES (?, ?)",
            [(key, package) for package in packages],
        )

    async def set_last_resort(self, key: bytes, package: bytes) -> None:
        await hold_user(self.db, key)
        await self.db.execute(
            "DELETE FROM key_packages WHERE name_hash = ? AND last_resort = 1", (key,)
        )
        await self.db.execute(
            "INSERT INTO key_packages (name_hash, key_package, last_resort) VALUES (?, ?, 1)",
            (key, package),
        )

    async def take_key_package(self, key: bytes) -> bytes | None:
        """Removes and returns the oldest package: each is handed out once."""
        row = await self.db.fetchone(
            "DELETE FROM key_packages WHERE seq = (SELECT seq FROM key_packages"
            " WHERE name_hash = ? AND last_resort = 0 ORDER BY seq LIMIT 1"
            f"{self.db.skip_locked}) RETURNING key_package",
            (key,),
        )
        return row[0] if row else None

    async def last_resort(self, key: bytes) -> bytes | None:
        row = await self.db.fetchone(
            "SELECT key_package FROM key_packages WHERE name_hash = ? AND last_resort = 1",
            (key,),
        )
        return row[0] if row else None

    # --- groups ---------------------------------------------------------------------

    async def group(self, group_id: bytes) -> Group | None:
        row = await self.db.fetchone(
            "SELECT epoch, last_commit, position, watched_until FROM groups WHERE group_id = ?",
            (group_id,),
        )
        return Group(*row) if row else None

    async def verifier(self, group_id: bytes, epoch: int) -> bytes | None:
        row = await self.db.fetchone(
            "SELECT verifier FROM group_verifiers WHERE group_id = ? AND epoch = ?",
            (group_id, epoch),
        )
        return row[0] if row else None

    async def create(self, group_id: bytes, verifier: bytes, now: int) -> None:
        """A group at epoch 0 with no member yet (its creating commit follows)."""
        await self.db.execute(
            "INSERT INTO groups (group_id, epoch, last_commit, created) VALUES (?, 0, ?, ?)",
            (group_id, b"", now),
        )
        await self.db.execute(
            "INSERT INTO group_verifiers (group_id, epoch, verifier) VALUES (?, 0, ?)",
            (group_id, verifier),
        )

    async def advance(
        self, group_id: bytes, epoch: int, verifier: bytes, message_id: bytes
    ) -> None:
        """The commit `message_id` at `epoch` was accepted: the group is at `epoch + 1`,
        whose access key `verifier` checks; the oldest kept epoch is forgotten."""
        await self.db.execute(
            "UPDATE groups SET epoch = ?, last_commit = ? WHERE group_id = ?",
            (epoch + 1, message_id, group_id),
        )
        await self.db.execute(
            "INSERT INTO group_verifiers (group_id, epoch, verifier) VALUES (?, ?, ?)",
            (group_id, epoch + 1, verifier),
        )
        await self.db.execute(
            "DELETE FROM group_verifiers WHERE group_id = ? AND epoch <= ?",
            (group_id, epoch + 1 - KEPT_EPOCHS),
        )

    async def watch(self, group_id: bytes, until: int) -> None:
        """Keeps the group's entries for its watchers until `until` (ms)."""
        await self.db.execute(
            "UPDATE groups SET watched_until = ? WHERE group_id = ?", (until, group_id)
        )

    async def members(self, group_id: bytes) -> list[bytes]:
        rows = await self.db.fetchall(
            "SELECT name_hash FROM group_members WHERE group_id = ?", (group_id,)
        )
        return [row[0] for row in rows]

    async def add_members(self, group_id: bytes, keys) -> None:
        await self.db.executemany(
            "INSERT INTO group_members (group_id, name_hash) VALUES (?, ?)"
            " ON CONFLICT (group_id, name_hash) DO NOTHING",
            [(group_id, key) for key in keys],
        )

    async def remove_members(self, group_id: bytes, keys) -> None:
        """Drops `keys` from the fan-out (what is queued for them stays theirs)."""
        await self.db.executemany(
            "DELETE FROM group_members WHERE group_id = ? AND name_hash = ?",
            [(group_id, key) for key in keys],
        )

    async def leave(self, group_id: bytes, key: bytes, now: int) -> None:
        """`key` leaves: no more deliveries, none pending; an emptied group goes (once no
        longer watched)."""
        rows = await self.db.fetchall(
            "DELETE FROM group_deliveries WHERE recipient = ? AND entry IN"
            " (SELECT seq FROM group_entries WHERE group_id = ?) RETURNING entry",
            (key, group_id),
        )
        await self._drop_done([row[0] for row in rows], now)
        await self.db.execute(
            "DELETE FROM group_members WHERE group_id = ? AND name_hash = ?", (group_id, key)
        )
        await self.db.execute(
            "DELETE FROM groups WHERE group_id = ? AND watched_until <= ? AND NOT EXISTS"
            " (SELECT 1 FROM group_members WHERE group_id = ?)",
            (group_id, now, group_id),
        )

    async def forget_user(self, key: bytes, now: int) -> None:
        """Before `key` is unregistered: out of every group, deliveries and all."""
        groups = await self.db.fetchall(
            "SELECT group_id FROM group_members WHERE name_hash = ?", (key,)
        )
        for (group_id,) in groups:
            await self.leave(group_id, key, now)
        rows = await self.db.fetchall(
            "DELETE FROM group_deliveries WHERE recipient = ? RETURNING entry", (key,)
        )
        await self._drop_done([row[0] for row in rows], now)

    async def count_groups(self) -> int:
        return (await one(self.db, "SELECT count(*) FROM groups"))[0]

    # --- the log --------------------------------------------------------------------

    async def has_entry(self, group_id: bytes, message_id: bytes) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM group_entries WHERE group_id = ? AND message_id = ?",
            (group_id, message_id),
        )
        return row is not None

    async def count_entries(self, group_id: bytes) -> int:
        row = await one(
            self.db, "SELECT count(*) FROM group_entries WHERE group_id = ?", (group_id,)
        )
        return row[0]

    async def post(
        self,
        group_id: bytes,
        epoch: int,
        post: int,
        message_id: bytes,
        payload: bytes,
        now: int,
        recipients: list[bytes],
        watched: bool = False,
    ) -> int | None:
        """Stores `payload` once with a delivery for each of `recipients` (due now);
        returns the entry, None if there is no recipient and the group is not `watched`
        (nothing stored). All but a Welcome take the group's next position, with its row
        held to the commit: positions grow per group in the order posts commit, and a
        watcher of the group is told (`notify`)."""
        if not recipients and not watched:
            return None
        position = 0
        if post != GroupPost.WELCOME:
            (position,) = await one(
                self.db,
                "UPDATE groups SET position = position + 1 WHERE group_id = ? RETURNING position",
                (group_id,),
            )
            await self.db.notify(f"group {group_id.hex()}")
        (entry,) = await one(
            self.db,
            "INSERT INTO group_entries (group_id, epoch, post, message_id, received, payload,"
            " position) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (group_id, epoch, post, message_id, now, payload, position),
        )
        await self.db.executemany(
            "INSERT INTO group_deliveries (recipient, entry, next_push) VALUES (?, ?, ?)",
            [(key, entry, now) for key in recipients],
        )
        await self.totals.add(len(payload))
        return entry

    async def make_room(self, group_id: bytes, most: int) -> bool:
        """Drops the oldest entries no local delivery needs until the group's log holds
        fewer than `most`; False (nothing to drop) if every one still has a delivery."""
        excess = await self.count_entries(group_id) - most + 1
        if excess <= 0:
            return True
        rows = await self.db.fetchall(
            "DELETE FROM group_entries WHERE seq IN (SELECT seq FROM group_entries WHERE"
            " group_id = ? AND NOT EXISTS (SELECT 1 FROM group_deliveries"
            " WHERE entry = group_entries.seq) ORDER BY seq LIMIT ?) RETURNING length(payload)",
            (group_id, excess),
        )
        await self.totals.add(-sum(size for (size,) in rows))
        return len(rows) == excess

    async def entries_after(
        self, group_id: bytes, after: int, budget: int, overhead: int, most: int
    ) -> list[GroupEntry]:
        """Up to `most` entries (no Welcome) after position `after`, in order, while their
        payloads and `overhead` each fit `budget` bytes; the first one always."""
        rows = await self.db.fetchall(
            "SELECT position, message_id, epoch, post, received, payload FROM"
            " (SELECT position, message_id, epoch, post, received, payload, sum(length(payload)"
            " + ?) OVER (ORDER BY position) AS running FROM group_entries"
            " WHERE group_id = ? AND position > ?) AS entries"
            " WHERE running <= ? OR running = length(payload) + ? ORDER BY position LIMIT ?",
            (overhead, group_id, after, budget, overhead, most),
        )
        return [GroupEntry(*row) for row in rows]

    async def oldest_position(self, group_id: bytes) -> int | None:
        row = await one(
            self.db,
            "SELECT min(position) FROM group_entries WHERE group_id = ? AND position > 0",
            (group_id,),
        )
        return row[0]

    async def entry_deliveries(self, entry: int) -> list[GroupQueued]:
        """The deliveries of `entry` to recipients with a route (to push now)."""
        rows = await self.db.fetchall(
            _QUEUED + " WHERE d.entry = ? AND u.sender_tag IS NOT NULL", (entry,)
        )
        return [GroupQueued(*row) for row in rows]

    async def queued(self, recipient: bytes, limit: int) -> list[GroupQueued]:
        rows = await self.db.fetchall(
            _QUEUED + " WHERE d.recipient = ? ORDER BY d.entry LIMIT ?", (recipient, limit)
        )
        return [GroupQueued(*row) for row in rows]

    async def queue_size(self, recipient: bytes) -> int:
        row = await one(
            self.db, "SELECT count(*) FROM group_deliveries WHERE recipient = ?", (recipient,)
        )
        return row[0]

    async def due_pushes(
        self, now: int, limit: int, frontends: frozenset[int] | None = None
    ) -> list[GroupQueued]:
        """Deliveries due a push to recipients with a route (through one of `frontends`;
        None: any)."""
        homes = "" if frontends is None else f" AND u.home IN {marks(frontends)}"
        rows = await self.db.fetchall(
            _QUEUED + f" WHERE d.next_push <= ? AND u.sender_tag IS NOT NULL{homes}"
            " ORDER BY d.next_push LIMIT ?",
            (now, *sorted(frontends or ()), limit),
        )
        return [GroupQueued(*row) for row in rows]

    async def pushed(self, deliveries: list[tuple[bytes, int, int]]) -> None:
        """(recipient, entry, next push) of deliveries just pushed."""
        await self.db.executemany(
            "UPDATE group_deliveries SET pushes = pushes + 1, next_push = ?"
            " WHERE recipient = ? AND entry = ?",
            [(when, recipient, entry) for recipient, entry, when in deliveries],
        )

    async def reschedule(self, recipient: bytes, when: int) -> None:
        await self.db.execute(
            "UPDATE group_deliveries SET next_push = ? WHERE recipient = ?", (when, recipient)
        )

    async def ack(self, recipient: bytes, message_ids, now: int) -> list[int]:
        """Deletes the deliveries of entries with these ids; returns when each was taken."""
        if not message_ids:
            return []
        rows = await self.db.fetchall(
            "DELETE FROM group_deliveries WHERE recipient = ? AND entry IN (SELECT seq FROM"
            f" group_entries WHERE message_id IN {marks(message_ids)}) RETURNING entry",
            (recipient, *message_ids),
        )
        entries = [row[0] for row in rows]
        if not entries:
            return []
        received = dict(
            await self.db.fetchall(
                f"SELECT seq, received FROM group_entries WHERE seq IN {marks(entries)}",
                entries,
            )
        )
        await self._drop_done(entries, now)
        return [received[entry] for entry in entries]

    async def _drop_done(self, entries, now: int) -> None:
        """Deletes those of `entries` no delivery needs any more (nor a watcher)."""
        freed = 0
        for entry in set(entries):
            row = await self.db.fetchone(
                "DELETE FROM group_entries WHERE seq = ? AND NOT EXISTS (SELECT 1 FROM"
                f" group_deliveries WHERE entry = ?) AND {_UNWATCHED} RETURNING length(payload)",
                (entry, entry, now),
            )
            freed += row[0] if row else 0
        await self.totals.add(-freed)

    async def expire(self, before: int, now: int) -> int:
        """Drops entries taken before `before`, their deliveries with them (returns how
        many), and those no delivery needs (nor a watcher), and groups with no member
        left (nor a watcher): two processes taking an entry's last two deliveries (or two
        last members leaving) at once each still see the other's, and neither drops it."""
        rows = await self.db.fetchall(
            "DELETE FROM group_entries WHERE received < ? RETURNING length(payload)", (before,)
        )
        done = await self.db.fetchall(
            "DELETE FROM group_entries WHERE NOT EXISTS (SELECT 1 FROM group_deliveries"
            f" WHERE entry = group_entries.seq) AND {_UNWATCHED} RETURNING length(payload)",
            (now,),
        )
        await self.totals.add(-sum(size for (size,) in rows + done))
        await self.db.execute(
            "DELETE FROM groups WHERE watched_until <= ? AND NOT EXISTS (SELECT 1 FROM"
            " group_members WHERE group_id = groups.group_id)",
            (now,),
        )
        return len(rows)
