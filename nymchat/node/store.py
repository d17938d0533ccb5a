"""The node's database: SQLite in WAL mode, schema versioned by the numbered files in
`schema/`. Every change the node acknowledges is committed before the answer goes out."""

from dataclasses import dataclass
from pathlib import Path

from nymchat.database import open_database, transaction
from nymchat.protocol import names, wire


@dataclass(frozen=True)
class User:
    username: str
    identity: bytes
    agreement: bytes
    account_key: bytes
    account_signature: bytes
    fallback: wire.OneTimeKey
    sender_tag: bytes | None
    push_key: bytes | None  # the client recognises our pushes by it (docs/PROTOCOL.md)


@dataclass(frozen=True)
class Queued:
    seq: int
    recipient: str
    message_id: bytes
    sender: str
    received: int
    payload: bytes
    pushes: int


class NodeStore:
    def __init__(self, path: Path | str):
        # NORMAL in WAL mode: a commit survives the process being killed; only a power
        # loss may take the last ones back. FULL would fsync every batch.
        self.db = open_database(
            path, "nymchat.node", synchronous="NORMAL", functions={"name_skeleton": names.skeleton}
        )

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def transaction(self):
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()

    # --- users --------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        row = self.db.execute(
            "SELECT username, identity, agreement, account_key, account_signature, fallback,"
            " sender_tag, push_key FROM users WHERE username = ?",
            (username,),
        ).fetchone()
        return _user(row)

    def user_by_identity(self, identity: bytes) -> User | None:
        row = self.db.execute(
            "SELECT username, identity, agreement, account_key, account_signature, fallback,"
            " sender_tag, push_key FROM users WHERE identity = ?",
            (identity,),
        ).fetchone()
        return _user(row)

    def skeleton_taken(self, skeleton: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM users WHERE skeleton = ?", (skeleton,)).fetchone()
            is not None
        )

    def add_user(
        self,
        username: str,
        skeleton: str,
        identity: bytes,
        bundle: wire.Bundle,
        sender_tag: bytes | None,
        now: int,
    ) -> None:
        self.db.execute(
            "INSERT INTO users (username, skeleton, identity, agreement, account_key,"
            " account_signature, fallback, sender_tag, tag_updated, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                username,
                skeleton,
                identity,
                bundle.identity_agreement,
                bundle.account_key,
                bundle.account_signature,
                wire.encode_record(wire.ONE_TIME_KEY, bundle.fallback),
                sender_tag,
                now,
                now,
            ),
        )
        self.add_one_time_keys(username, bundle.one_time_keys)

    def set_sender_tag(self, username: str, tag: bytes, now: int) -> None:
        self.db.execute(
            "UPDATE users SET sender_tag = ?, tag_updated = ? WHERE username = ?",
            (tag, now, username),
        )

    def set_push_key(self, username: str, key: bytes) -> None:
        self.db.execute("UPDATE users SET push_key = ? WHERE username = ?", (key, username))

    def tag_registered(self, tag: bytes) -> bool:
        """Whether `tag` is some user's current sender tag."""
        return (
            self.db.execute("SELECT 1 FROM users WHERE sender_tag = ?", (tag,)).fetchone()
            is not None
        )

    def delete_user(self, username: str) -> None:
        self.db.execute(
            "UPDATE queue_total SET bytes = bytes - (SELECT queued_bytes FROM users"
            " WHERE username = ?)",
            (username,),
        )
        self.db.execute("DELETE FROM users WHERE username = ?", (username,))

    def count_users(self) -> int:
        return self.db.execute("SELECT count(*) FROM users").fetchone()[0]

    # --- keys ---------------------------------------------------------------------

    def add_one_time_keys(self, username: str, keys) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO one_time_keys (username, key_id, encoded) VALUES (?, ?, ?)",
            [(username, k.key_id, wire.encode_record(wire.ONE_TIME_KEY, k)) for k in keys],
        )

    def set_fallback(self, username: str, key: wire.OneTimeKey) -> None:
        self.db.execute(
            "UPDATE users SET fallback = ? WHERE username = ?",
            (wire.encode_record(wire.ONE_TIME_KEY, key), username),
        )

    def count_one_time_keys(self, username: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM one_time_keys WHERE username = ?", (username,)
        ).fetchone()[0]

    def take_one_time_key(self, username: str) -> wire.OneTimeKey | None:
        """Removes and returns one one-time key: each is handed out once."""
        row = self.db.execute(
            "DELETE FROM one_time_keys WHERE username = ? AND key_id = (SELECT min(key_id)"
            " FROM one_time_keys WHERE username = ?) RETURNING encoded",
            (username, username),
        ).fetchone()
        return wire.decode_record(wire.ONE_TIME_KEY, row[0]) if row else None

    # --- queue --------------------------------------------------------------------

    def enqueue(
        self,
        recipient: str,
        message_id: bytes,
        sender: str,
        payload: bytes,
        now: int,
        stranger: bool = False,
    ) -> bool:
        """Queues a message; False if the recipient already has one with this id."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO queue (recipient, message_id, sender, received, payload,"
            " next_push, stranger) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (recipient, message_id, sender, now, payload, now, stranger),
        )
        if cursor.rowcount != 1:
            return False
        self._count(recipient, 1, len(payload))
        return True

    def _count(self, recipient: str, messages: int, size: int) -> None:
        self.db.execute(
            "UPDATE users SET queued_messages = queued_messages + ?,"
            " queued_bytes = queued_bytes + ? WHERE username = ?",
            (messages, size, recipient),
        )
        self.db.execute("UPDATE queue_total SET bytes = bytes + ?", (size,))

    def queue_size(self, recipient: str) -> tuple[int, int]:
        """(messages, payload bytes) queued for `recipient`."""
        return self.db.execute(
            "SELECT queued_messages, queued_bytes FROM users WHERE username = ?", (recipient,)
        ).fetchone() or (0, 0)

    def queued_from(self, recipient: str, sender: str) -> tuple[int, int]:
        """(messages, payload bytes) from `sender` queued for `recipient` (as many rows
        as one sender's share: the quota keeps this bounded)."""
        return self.db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM queue"
            " WHERE recipient = ? AND sender = ?",
            (recipient, sender),
        ).fetchone()

    def queued_from_strangers(self, recipient: str) -> tuple[int, int]:
        """(messages, payload bytes) queued for `recipient` by senders it did not know."""
        return self.db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM queue"
            " WHERE recipient = ? AND stranger = 1",
            (recipient,),
        ).fetchone()

    def queued_bytes(self) -> int:
        """Payload bytes queued on the whole node."""
        return self.db.execute("SELECT bytes FROM queue_total").fetchone()[0]

    def queued(self, recipient: str, limit: int) -> list[Queued]:
        rows = self.db.execute(
            "SELECT seq, recipient, message_id, sender, received, payload, pushes FROM queue"
            " WHERE recipient = ? ORDER BY seq LIMIT ?",
            (recipient, limit),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def queued_one(self, recipient: str, message_id: bytes) -> list[Queued]:
        rows = self.db.execute(
            "SELECT seq, recipient, message_id, sender, received, payload, pushes FROM queue"
            " WHERE recipient = ? AND message_id = ?",
            (recipient, message_id),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def is_queued(self, recipient: str, message_id: bytes) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM queue WHERE recipient = ? AND message_id = ?",
                (recipient, message_id),
            ).fetchone()
            is not None
        )

    def due_pushes(self, now: int, limit: int) -> list[Queued]:
        rows = self.db.execute(
            "SELECT q.seq, q.recipient, q.message_id, q.sender, q.received, q.payload, q.pushes"
            " FROM queue q JOIN users u ON u.username = q.recipient"
            " WHERE q.next_push <= ? AND u.sender_tag IS NOT NULL ORDER BY q.next_push LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def pushed(self, seqs: list[int], next_push: int) -> None:
        self.db.executemany(
            "UPDATE queue SET pushes = pushes + 1, next_push = ? WHERE seq = ?",
            [(next_push, seq) for seq in seqs],
        )

    def reschedule(self, recipient: str, when: int) -> None:
        self.db.execute("UPDATE queue SET next_push = ? WHERE recipient = ?", (when, recipient))

    def ack(self, recipient: str, message_ids) -> list[int]:
        """Deletes acknowledged messages; returns when each was received."""
        received, size = [], 0
        for message_id in message_ids:
            row = self.db.execute(
                "DELETE FROM queue WHERE recipient = ? AND message_id = ?"
                " RETURNING received, length(payload)",
                (recipient, message_id),
            ).fetchone()
            if row:
                received.append(row[0])
                size += row[1]
        self._count(recipient, -len(received), -size)
        return received

    def count_queued(self) -> int:
        return self.db.execute("SELECT count(*) FROM queue").fetchone()[0]

    def expire(self, before: int) -> int:
        rows = self.db.execute(
            "DELETE FROM queue WHERE received < ? RETURNING recipient, length(payload)", (before,)
        ).fetchall()
        for recipient, size in rows:
            self._count(recipient, -1, -size)
        return len(rows)

    # --- known senders (keyed hashes of pairs, see node/quota.py) --------------------

    def known_since(self, pair: bytes) -> int | None:
        row = self.db.execute(
            "SELECT last_seen FROM known_senders WHERE pair = ?", (pair,)
        ).fetchone()
        return row[0] if row else None

    def remember_known(self, pair: bytes, day: int, *, create: bool) -> None:
        """Records that a pair was seen on `day` (only if known already unless `create`)."""
        if create:
            self.db.execute(
                "INSERT INTO known_senders (pair, last_seen) VALUES (?, ?)"
                " ON CONFLICT (pair) DO UPDATE SET last_seen = excluded.last_seen",
                (pair, day),
            )
        else:
            self.db.execute("UPDATE known_senders SET last_seen = ? WHERE pair = ?", (day, pair))

    def note_pushes(self, pairs: list[bytes], now: int) -> None:
        self.db.executemany(
            "INSERT INTO recent_pushes (pair, pushed) VALUES (?, ?)"
            " ON CONFLICT (pair) DO UPDATE SET pushed = excluded.pushed",
            [(pair, now) for pair in pairs],
        )

    def pushed_since(self, pair: bytes, since: int) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM recent_pushes WHERE pair = ? AND pushed >= ?", (pair, since)
            ).fetchone()
            is not None
        )

    def forget_pairs(self, known_before: int, pushed_before: int) -> None:
        self.db.execute("DELETE FROM known_senders WHERE last_seen < ?", (known_before,))
        self.db.execute("DELETE FROM recent_pushes WHERE pushed < ?", (pushed_before,))

    # --- replay protection ----------------------------------------------------------

    def first_sight(self, request_id: bytes, expires: int) -> bool:
        """Records a request id; False if it was seen before (a replay)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO seen_requests (request_id, expires) VALUES (?, ?)",
            (request_id, expires),
        )
        return cursor.rowcount == 1

    def forget_seen(self, now: int) -> int:
        return self.db.execute("DELETE FROM seen_requests WHERE expires < ?", (now,)).rowcount


def _user(
    row: tuple[str, bytes, bytes, bytes, bytes, bytes, bytes | None, bytes | None] | None,
) -> User | None:
    if row is None:
        return None
    username, identity, agreement, account_key, account_signature, fallback, tag, push_key = row
    return User(
        username,
        identity,
        agreement,
        account_key,
        account_signature,
        wire.decode_record(wire.ONE_TIME_KEY, fallback),
        tag,
        push_key,
    )
