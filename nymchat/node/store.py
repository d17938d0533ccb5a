"""The node's database: SQLite in WAL mode, schema versioned by the numbered files in
`schema/`. Every change the node acknowledges is committed before the answer goes out.

Nothing in it names anyone in clear: users are keyed by a keyed hash of their name
(`NameHashes`, under a key derived from the node's secret), the queue holds no sender, and
the answer cache is keyed and sealed by request ids it does not hold (docs/PROTOCOL.md)."""

import hashlib
import hmac
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from nymchat.database import open_database, transaction
from nymchat.node.groupstore import GroupStore
from nymchat.protocol import names, wire

SEEN_DOMAIN = b"nymchat-seen-v1\x00"
ANSWER_KEY_DOMAIN = b"nymchat-answer-key-v1\x00"
HASHED_SCHEMA = 6  # the first schema version with names only as keyed hashes


class NameHashes:
    """Usernames and skeletons as the database holds them: HMAC-SHA256 under the node's
    name key, so a copy of the database alone names nobody."""

    def __init__(self, key: bytes):
        self.key = key

    def name(self, username: str) -> bytes:
        return hmac.digest(self.key, b"name\0" + username.encode(), "sha256")

    def skeleton(self, skeleton: str) -> bytes:
        return hmac.digest(self.key, b"skeleton\0" + skeleton.encode(), "sha256")


def seen_key(request_id: bytes) -> bytes:
    return hashlib.sha256(SEEN_DOMAIN + request_id).digest()


def _answer_cipher(request_id: bytes) -> ChaCha20Poly1305:
    """One answer per request id, so one message per key: the zero nonce is safe."""
    return ChaCha20Poly1305(hashlib.sha256(ANSWER_KEY_DOMAIN + request_id).digest())


@dataclass(frozen=True)
class User:
    key: bytes  # the name's keyed hash (NameHashes.name)
    identity: bytes
    agreement: bytes
    agreement_signature: bytes | None  # None: registered before it was asked for
    account_key: bytes
    account_signature: bytes
    fallback: wire.OneTimeKey
    sender_tag: bytes | None  # the route of the latest fresh signed request
    push_key: bytes | None  # the client recognises our pushes by it (docs/PROTOCOL.md)
    access_verifier: bytes | None
    strangers: int  # bits of work asked of a stranger's send; wire.STRANGERS_DENY: none


@dataclass(frozen=True)
class Queued:
    seq: int
    recipient: bytes  # a name hash
    message_id: bytes
    received: int
    payload: bytes
    pushes: int


_USER = (
    "name_hash, identity, agreement, agreement_signature, account_key, account_signature,"
    " fallback, sender_tag, push_key, access_verifier, strangers"
)
_QUEUED = "seq, recipient, message_id, received, payload, pushes"


def _schema_version(path: Path | str) -> int:
    if str(path) == ":memory:" or not Path(path).exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


class NodeStore:
    def __init__(self, path: Path | str, name_key: bytes):
        self.names = NameHashes(name_key)
        before = _schema_version(path)
        # NORMAL in WAL mode: a commit survives the process being killed; only a power
        # loss may take the last ones back. FULL would fsync every batch.
        self.db = open_database(
            path,
            "nymchat.node",
            synchronous="NORMAL",
            functions={
                "name_skeleton": names.skeleton,
                "name_hash": self.names.name,
                "skeleton_hash": self.names.skeleton,
                "seen_key": seen_key,
            },
        )
        # What is deleted is overwritten, so no freed page keeps a payload or a route.
        self.db.execute("PRAGMA secure_delete = ON")
        self.groups = GroupStore(self.db)
        if 0 < before < HASHED_SCHEMA:
            # The migration freed pages that held names and senders in clear.
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def transaction(self):
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()

    # --- users --------------------------------------------------------------------

    def user(self, key: bytes) -> User | None:
        row = self.db.execute(f"SELECT {_USER} FROM users WHERE name_hash = ?", (key,)).fetchone()
        return _user(row)

    def user_by_identity(self, identity: bytes) -> User | None:
        row = self.db.execute(
            f"SELECT {_USER} FROM users WHERE identity = ?", (identity,)
        ).fetchone()
        return _user(row)

    def skeleton_taken(self, skeleton: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM users WHERE skeleton_hash = ?", (self.names.skeleton(skeleton),)
            ).fetchone()
            is not None
        )

    def add_user(
        self,
        username: str,
        identity: bytes,
        bundle: wire.Bundle,
        sender_tag: bytes | None,
        now: int,
    ) -> bytes:
        """Adds a user; returns its key (the name hash)."""
        key = self.names.name(username)
        self.db.execute(
            "INSERT INTO users (name_hash, skeleton_hash, identity, agreement,"
            " agreement_signature, account_key, account_signature, fallback, sender_tag,"
            " tag_updated, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                self.names.skeleton(names.skeleton(username)),
                identity,
                bundle.identity_agreement,
                bundle.agreement_signature,
                bundle.account_key,
                bundle.account_signature,
                wire.encode_record(wire.ONE_TIME_KEY, bundle.fallback),
                sender_tag,
                now,
                now,
            ),
        )
        self.add_one_time_keys(key, bundle.one_time_keys)
        return key

    def set_sender_tag(self, key: bytes, tag: bytes, now: int) -> None:
        self.db.execute(
            "UPDATE users SET sender_tag = ?, tag_updated = ? WHERE name_hash = ?",
            (tag, now, key),
        )

    def set_push_key(self, key: bytes, push_key: bytes) -> None:
        self.db.execute("UPDATE users SET push_key = ? WHERE name_hash = ?", (push_key, key))

    def set_access(self, key: bytes, verifier: bytes, strangers: int) -> None:
        self.db.execute(
            "UPDATE users SET access_verifier = ?, strangers = ? WHERE name_hash = ?",
            (verifier, strangers, key),
        )

    def set_agreement_signature(self, key: bytes, signature: bytes) -> None:
        self.db.execute(
            "UPDATE users SET agreement_signature = ? WHERE name_hash = ?", (signature, key)
        )

    def tag_registered(self, tag: bytes) -> bool:
        """Whether `tag` (a route) is some user's current one."""
        return (
            self.db.execute("SELECT 1 FROM users WHERE sender_tag = ?", (tag,)).fetchone()
            is not None
        )

    def delete_user(self, key: bytes) -> None:
        self.db.execute(
            "UPDATE queue_total SET bytes = bytes - (SELECT queued_bytes FROM users"
            " WHERE name_hash = ?)",
            (key,),
        )
        self.db.execute("DELETE FROM users WHERE name_hash = ?", (key,))

    def count_users(self) -> int:
        return self.db.execute("SELECT count(*) FROM users").fetchone()[0]

    # --- keys ---------------------------------------------------------------------

    def add_one_time_keys(self, key: bytes, keys) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO one_time_keys (name_hash, key_id, encoded) VALUES (?, ?, ?)",
            [(key, k.key_id, wire.encode_record(wire.ONE_TIME_KEY, k)) for k in keys],
        )

    def set_fallback(self, key: bytes, fallback: wire.OneTimeKey) -> None:
        self.db.execute(
            "UPDATE users SET fallback = ? WHERE name_hash = ?",
            (wire.encode_record(wire.ONE_TIME_KEY, fallback), key),
        )

    def count_one_time_keys(self, key: bytes) -> int:
        return self.db.execute(
            "SELECT count(*) FROM one_time_keys WHERE name_hash = ?", (key,)
        ).fetchone()[0]

    def take_one_time_key(self, key: bytes) -> wire.OneTimeKey | None:
        """Removes and returns one one-time key: each is handed out once."""
        row = self.db.execute(
            "DELETE FROM one_time_keys WHERE name_hash = ? AND key_id = (SELECT min(key_id)"
            " FROM one_time_keys WHERE name_hash = ?) RETURNING encoded",
            (key, key),
        ).fetchone()
        return wire.decode_record(wire.ONE_TIME_KEY, row[0]) if row else None

    # --- queue --------------------------------------------------------------------

    def enqueue(
        self, recipient: bytes, message_id: bytes, payload: bytes, now: int, stranger: bool
    ) -> bool:
        """Queues a message; False if the recipient already has one with this id."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO queue (recipient, message_id, received, payload, next_push,"
            " stranger) VALUES (?, ?, ?, ?, ?, ?)",
            (recipient, message_id, now, payload, now, stranger),
        )
        if cursor.rowcount != 1:
            return False
        self._count(recipient, 1, len(payload))
        return True

    def _count(self, recipient: bytes, messages: int, size: int) -> None:
        self.db.execute(
            "UPDATE users SET queued_messages = queued_messages + ?,"
            " queued_bytes = queued_bytes + ? WHERE name_hash = ?",
            (messages, size, recipient),
        )
        self.db.execute("UPDATE queue_total SET bytes = bytes + ?", (size,))

    def queue_size(self, recipient: bytes) -> tuple[int, int]:
        """(messages, payload bytes) queued for `recipient`."""
        return self.db.execute(
            "SELECT queued_messages, queued_bytes FROM users WHERE name_hash = ?", (recipient,)
        ).fetchone() or (0, 0)

    def queued_from_strangers(self, recipient: bytes) -> tuple[int, int]:
        """(messages, payload bytes) queued for `recipient` without its access key."""
        return self.db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM queue"
            " WHERE recipient = ? AND stranger = 1",
            (recipient,),
        ).fetchone()

    def queued_bytes(self) -> int:
        """Payload bytes queued on the whole node."""
        return self.db.execute("SELECT bytes FROM queue_total").fetchone()[0]

    def queued(self, recipient: bytes, limit: int) -> list[Queued]:
        rows = self.db.execute(
            f"SELECT {_QUEUED} FROM queue WHERE recipient = ? ORDER BY seq LIMIT ?",
            (recipient, limit),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def queued_one(self, recipient: bytes, message_id: bytes) -> list[Queued]:
        rows = self.db.execute(
            f"SELECT {_QUEUED} FROM queue WHERE recipient = ? AND message_id = ?",
            (recipient, message_id),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def is_queued(self, recipient: bytes, message_id: bytes) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM queue WHERE recipient = ? AND message_id = ?",
                (recipient, message_id),
            ).fetchone()
            is not None
        )

    def due_pushes(self, now: int, limit: int) -> list[Queued]:
        rows = self.db.execute(
            "SELECT q.seq, q.recipient, q.message_id, q.received, q.payload, q.pushes"
            " FROM queue q JOIN users u ON u.name_hash = q.recipient"
            " WHERE q.next_push <= ? AND u.sender_tag IS NOT NULL ORDER BY q.next_push LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Queued(*row) for row in rows]

    def pushed(self, seqs: list[int], next_push: int) -> None:
        self.db.executemany(
            "UPDATE queue SET pushes = pushes + 1, next_push = ? WHERE seq = ?",
            [(next_push, seq) for seq in seqs],
        )

    def reschedule(self, recipient: bytes, when: int) -> None:
        self.db.execute("UPDATE queue SET next_push = ? WHERE recipient = ?", (when, recipient))

    def ack(self, recipient: bytes, message_ids) -> list[int]:
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

    # --- replay protection and the answer cache --------------------------------------

    def first_sight(self, request_id: bytes, expires: int) -> bool:
        """Records an id (a spent challenge); False if it was seen before."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO seen (key, expires) VALUES (?, ?)",
            (seen_key(request_id), expires),
        )
        return cursor.rowcount == 1

    def seen(self, request_id: bytes) -> tuple[bytes | None, bytes | None] | None:
        """(request digest, answer) of a request id seen before, or None."""
        row = self.db.execute(
            "SELECT digest, answer FROM seen WHERE key = ?", (seen_key(request_id),)
        ).fetchone()
        if row is None:
            return None
        digest, sealed = row
        answer = _answer_cipher(request_id).decrypt(bytes(12), sealed, None) if sealed else None
        return digest, answer

    def remember(self, request_id: bytes, digest: bytes, answer: bytes, expires: int) -> None:
        """Records a handled request's digest and answer (sealed) until `expires`."""
        self.db.execute(
            "INSERT INTO seen (key, digest, answer, expires) VALUES (?, ?, ?, ?)",
            (
                seen_key(request_id),
                digest,
                _answer_cipher(request_id).encrypt(bytes(12), answer, None),
                expires,
            ),
        )

    def forget_seen(self, now: int) -> int:
        return self.db.execute("DELETE FROM seen WHERE expires < ?", (now,)).rowcount


def _user(row) -> User | None:
    if row is None:
        return None
    (key, identity, agreement, agreement_signature, account_key, account_signature) = row[:6]
    fallback, tag, push_key, verifier, strangers = row[6:]
    return User(
        key,
        identity,
        agreement,
        agreement_signature,
        account_key,
        account_signature,
        wire.decode_record(wire.ONE_TIME_KEY, fallback),
        tag,
        push_key,
        verifier,
        strangers,
    )
