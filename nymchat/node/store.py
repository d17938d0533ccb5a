"""The node's store: its tables, as SQL both its databases speak (`database.Database`:
SQLite, the default, or PostgreSQL, shared by several node processes). Every change the
node acknowledges is committed before the answer goes out.

Nothing in it names anyone in clear: users are keyed by a keyed hash of their name
(`NameHashes`, under a key derived from the node's secret), the queue holds no sender, and
the answer cache is keyed and sealed by request ids it does not hold (docs/PROTOCOL.md)."""

import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from nymchat.node.database import Database
from nymchat.node.groupstore import GroupStore, QueueTotals, hold_user, marks, one
from nymchat.node.routes import route_frontend
from nymchat.protocol import names, wire

SEEN_DOMAIN = b"nymchat-seen-v1\x00"
ANSWER_KEY_DOMAIN = b"nymchat-answer-key-v1\x00"
POSTGRES_URLS = ("postgresql://", "postgres://")  # a `store` starting so is PostgreSQL


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
_SUM = "CAST(coalesce(sum({}), 0) AS BIGINT)"  # PostgreSQL's sum of bigints is a numeric
KNOWN_TAGS_TTL = 10.0  # s, that a route is (or is not) a user's, as the database said
KNOWN_TAGS_MAX = 4096  # routes remembered so
REGISTRATIONS = "registrations"  # node_state: the recent registrations' decaying count


Sizes = tuple[int, int, int, int]  # a queue's messages, bytes, strangers' and their bytes


class _Ahead:
    """Rows a batch's transaction read at its start (`NodeStore.preload`), kept true while
    it runs: what a write may change is dropped (and read again if asked for), a queue's
    sizes are counted on by the store's writes, and a savepoint rolled back takes its
    counting back (`mark`, `undo`). Only ever filled by `preload`, never by a read, so
    nothing a rolled-back savepoint wrote can be served from it."""

    def __init__(self) -> None:
        self.seen: dict[bytes, tuple[bytes | None, bytes | None] | None] = {}  # by seen_key
        self.users: dict[bytes, User | None] = {}  # by name hash
        self.identities: dict[bytes, User | None] = {}  # by identity
        self.sizes: dict[bytes, Sizes] = {}  # by recipient
        self.queued: dict[tuple[bytes, bytes], bool] = {}  # (recipient, message id): queued?
        self._undo: list[tuple[bytes, Sizes | None]] = []

    def found_users(self, rows: list[tuple]) -> None:
        """Rows of `users` read for the identities and keys asked."""
        for row in rows:
            user = _user(row)
            assert user is not None
            if user.identity in self.identities:
                self.identities[user.identity] = user
            if user.key in self.users:
                self.users[user.key] = user

    def forget_user(self, key: bytes) -> None:
        user = self.users.pop(key, None)
        if user is not None:
            self.identities.pop(user.identity, None)
        for identity, known in list(self.identities.items()):
            if known is not None and known.key == key:
                del self.identities[identity]

    def count(self, recipient: bytes, sizes: Sizes | None) -> None:
        """Sets `recipient`'s queue sizes (None: not known any more)."""
        self._undo.append((recipient, self.sizes.get(recipient)))
        if sizes is None:
            self.sizes.pop(recipient, None)
        else:
            self.sizes[recipient] = sizes

    def add(self, recipient: bytes, change: Sizes) -> None:
        """Counts `change` on `recipient`'s queue sizes, if they are known."""
        sizes = self.sizes.get(recipient)
        if sizes is not None:
            n, size, strangers, stranger_size = sizes
            dn, dsize, dstrangers, dstranger_size = change
            self.count(
                recipient,
                (n + dn, size + dsize, strangers + dstrangers, stranger_size + dstranger_size),
            )

    def mark(self) -> int:
        return len(self._undo)

    def undo(self, mark: int) -> None:
        while len(self._undo) > mark:
            recipient, sizes = self._undo.pop()
            if sizes is None:
                self.sizes.pop(recipient, None)
            else:
                self.sizes[recipient] = sizes


class _Behind:
    """Rows of one table written later, all at once (write-behind): a batch's messages and
    answers go out as one INSERT each (`Database.insert_rows`), before the table is next
    read (`flush`) and at the commit, not one statement each. Rows stay listed until the transaction
    ends; `sent` of them went out. A savepoint rolled back drops its own rows in memory
    (`undo`), and takes back to unsent the earlier rows flushed inside it (the database
    rolled that flush back too: it ran inside the savepoint)."""

    def __init__(self, insert: str, width: int):
        self.insert = insert  # "INSERT INTO table (columns)"
        self.row = "(" + ", ".join("?" * width) + ")"
        self.rows: list[tuple] = []
        self.sent = 0

    def mark(self) -> tuple[int, int]:
        return len(self.rows), self.sent

    def undo(self, mark: tuple[int, int]) -> None:
        del self.rows[mark[0] :]
        self.sent = mark[1]

    async def flush(self, db: Database) -> None:
        rows, self.sent = self.rows[self.sent :], len(self.rows)
        if rows:
            await db.insert_rows(self.insert, rows)


_QUEUE_INSERT = (
    "INSERT INTO queue (recipient, message_id, received, payload, size, next_push, pushes,"
    " stranger)"
)
_SEEN_INSERT = "INSERT INTO seen (key, digest, answer, expires)"


class NodeStore:
    def __init__(self, db: Database, name_key: bytes):
        self.db = db
        self.names = NameHashes(name_key)
        # this store's shard of the node's queued total (a random one: other processes
        # add to theirs without waiting for this one's row)
        self.totals = QueueTotals(db, secrets.randbits(31))
        self.groups = GroupStore(db, self.totals)
        self._tags: dict[bytes, tuple[bool, float]] = {}  # route: (registered, until)
        self._ahead = _Ahead()  # the open transaction's
        # the open transaction's messages and answers read ahead as absent, not written yet
        self._queue = _Behind(_QUEUE_INSERT, 8)
        self._seen = _Behind(_SEEN_INSERT, 4)
        self._wakes: list[int] | None = None  # the open transaction's, told at its end

    async def schema_version(self) -> int:
        return await self.db.schema_version()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            async with self.db.transaction():
                self.totals.begin()
                self._wakes = []
                yield
                await self._flush_queue()
                await self._flush_seen()
                await self.totals.commit()
                for frontend in dict.fromkeys(self._wakes):
                    await self.db.notify(f"push {frontend}")
        finally:
            self._wakes = None
            self.totals.abandon()
            self._ahead = _Ahead()
            self._queue = _Behind(_QUEUE_INSERT, 8)
            self._seen = _Behind(_SEEN_INSERT, 4)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        pending, mark = self.totals.pending, self._ahead.mark()
        queue, seen = self._queue.mark(), self._seen.mark()
        wakes = len(self._wakes or ())
        try:
            async with self.db.savepoint():
                yield
        except BaseException:
            # what was counted, written and woken for inside went back with it
            self.totals.pending = pending
            self._ahead.undo(mark)
            self._queue.undo(queue)
            self._seen.undo(seen)
            if self._wakes is not None:
                del self._wakes[wakes:]
            raise

    async def _flush_queue(self) -> None:
        """Writes the queue rows held back: before the queue is read or changed."""
        await self._queue.flush(self.db)

    async def _flush_seen(self) -> None:
        await self._seen.flush(self.db)

    async def preload(
        self,
        request_ids: Collection[bytes],
        identities: Collection[bytes],
        keys: Collection[bytes],
        messages: Collection[tuple[bytes, bytes]] = (),
    ) -> None:
        """Reads at once, for the open transaction, what its requests will ask: the seen
        rows of `request_ids`, the users of `identities` and of name hashes `keys`, and
        which `messages` (recipient, message id) are queued, with their recipients' queue
        sizes. A few statements a batch instead of several a request (each a round trip to
        PostgreSQL); and what is known not to be there is written with the batch's others
        (`enqueue`, `remember`)."""
        if self.totals.pending is None:  # what it holds back is written at the commit
            raise RuntimeError("a preload outside a transaction")
        ahead = self._ahead
        await self._flush_queue()
        await self._flush_seen()
        reads: list[tuple[str, Sequence, Callable[[list[tuple]], None]]] = []
        if messages:
            ahead.queued.update(dict.fromkeys(messages, False))
            pairs = ", ".join(["(?, ?)"] * len(messages))
            reads.append(
                (
                    "SELECT recipient, message_id FROM queue"
                    f" WHERE (recipient, message_id) IN ({pairs})",
                    [value for pair in messages for value in pair],
                    lambda rows: ahead.queued.update(dict.fromkeys(rows, True)),
                )
            )
        if request_ids:
            by_key = {seen_key(request_id): request_id for request_id in request_ids}
            ahead.seen.update(dict.fromkeys(by_key))
            reads.append(
                (
                    f"SELECT key, digest, answer FROM seen WHERE key IN {marks(by_key)}",
                    tuple(by_key),
                    lambda rows: ahead.seen.update({key: (d, a) for key, d, a in rows}),
                )
            )
        identities, keys = tuple(identities), tuple(keys)
        where = [f"identity IN {marks(identities)}"] if identities else []
        where += [f"name_hash IN {marks(keys)}"] if keys else []
        if where:
            ahead.identities.update(dict.fromkeys(identities))
            ahead.users.update(dict.fromkeys(keys))
            reads.append(
                (
                    f"SELECT {_USER} FROM users WHERE {' OR '.join(where)}",
                    (*identities, *keys),
                    ahead.found_users,
                )
            )
        recipients = tuple({recipient for recipient, _ in messages})
        if recipients:
            ahead.sizes.update(dict.fromkeys(recipients, (0, 0, 0, 0)))
            reads.append(
                (
                    f"SELECT recipient, count(*), {_SUM.format('size')},"
                    f" {_SUM.format('stranger')}, {_SUM.format('stranger * size')} FROM queue"
                    f" WHERE recipient IN {marks(recipients)} GROUP BY recipient",
                    recipients,
                    lambda rows: ahead.sizes.update({r: tuple(sizes) for r, *sizes in rows}),
                )
            )
        results = await self.db.fetch_each([(sql, params) for sql, params, _ in reads])
        for (_, _, found), rows in zip(reads, results, strict=True):
            found(rows)

    async def close(self) -> None:
        await self.db.close()

    async def wake(self, frontend: int) -> None:
        """Tells the process holding `frontend` that it has something to push now: in a
        transaction, once at its end however often it was asked (not for what a savepoint
        rolled back)."""
        if self._wakes is None:
            await self.db.notify(f"push {frontend}")
        else:
            self._wakes.append(frontend)

    # --- users --------------------------------------------------------------------

    async def user(self, key: bytes) -> User | None:
        if key in self._ahead.users:
            return self._ahead.users[key]
        return _user(
            await self.db.fetchone(f"SELECT {_USER} FROM users WHERE name_hash = ?", (key,))
        )

    async def user_by_identity(self, identity: bytes) -> User | None:
        if identity in self._ahead.identities:
            return self._ahead.identities[identity]
        return _user(
            await self.db.fetchone(f"SELECT {_USER} FROM users WHERE identity = ?", (identity,))
        )

    async def skeleton_taken(self, skeleton: str) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM users WHERE skeleton_hash = ?", (self.names.skeleton(skeleton),)
        )
        return row is not None

    async def add_user(
        self,
        username: str,
        identity: bytes,
        bundle: wire.Bundle,
        sender_tag: bytes | None,
        now: int,
    ) -> bytes | None:
        """Adds a user; returns its key (the name hash), or None if the name, a look-alike
        or the identity is registered already (on PostgreSQL also by another process's
        transaction: the insert waits for it, and is nothing if it commits)."""
        key = self.names.name(username)
        self._tags.clear()
        self._ahead.forget_user(key)
        self._ahead.identities.pop(identity, None)
        added = await self.db.execute(
            "INSERT INTO users (name_hash, skeleton_hash, identity, agreement,"
            " agreement_signature, account_key, account_signature, fallback, sender_tag,"
            " home, tag_updated, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
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
                route_frontend(sender_tag),
                now,
                now,
            ),
        )
        if not added:
            return None
        await self.add_one_time_keys(key, bundle.one_time_keys)
        return key

    async def set_sender_tag(self, key: bytes, tag: bytes, now: int) -> User | None:
        """Moves the user's route (and home) to `tag`; returns the user as updated."""
        self._tags.clear()
        self._ahead.forget_user(key)
        return _user(
            await self.db.fetchone(
                "UPDATE users SET sender_tag = ?, home = ?, tag_updated = ? WHERE name_hash = ?"
                f" RETURNING {_USER}",
                (tag, route_frontend(tag), now, key),
            )
        )

    async def set_push_key(self, key: bytes, push_key: bytes) -> None:
        self._ahead.forget_user(key)
        await self.db.execute("UPDATE users SET push_key = ? WHERE name_hash = ?", (push_key, key))

    async def set_access(self, key: bytes, verifier: bytes, strangers: int) -> None:
        self._ahead.forget_user(key)
        await self.db.execute(
            "UPDATE users SET access_verifier = ?, strangers = ? WHERE name_hash = ?",
            (verifier, strangers, key),
        )

    async def set_agreement_signature(self, key: bytes, signature: bytes) -> None:
        self._ahead.forget_user(key)
        await self.db.execute(
            "UPDATE users SET agreement_signature = ? WHERE name_hash = ?", (signature, key)
        )

    async def tag_registered(self, tag: bytes) -> bool:
        """Whether `tag` (a route) is some user's current one: as this process last moved
        a route, or as the database said at most `KNOWN_TAGS_TTL` ago (another process's
        change shows late; the intake asks it of every request, for their order only)."""
        now = time.monotonic()
        cached = self._tags.pop(tag, None)
        if cached is None or cached[1] <= now:
            row = await self.db.fetchone("SELECT 1 FROM users WHERE sender_tag = ?", (tag,))
            cached = (row is not None, now + KNOWN_TAGS_TTL)
            if len(self._tags) >= KNOWN_TAGS_MAX:
                del self._tags[next(iter(self._tags))]  # the least recently asked
        self._tags[tag] = cached
        return cached[0]

    async def delete_user(self, key: bytes) -> None:
        """Removes the user and all it has queued (a message another process queues for
        it meanwhile is counted, or refused once the user is gone)."""
        await self._flush_queue()
        await hold_user(self.db, key)
        (size,) = await one(
            self.db, f"SELECT {_SUM.format('size')} FROM queue WHERE recipient = ?", (key,)
        )
        await self.totals.add(-size)
        self._tags.clear()
        self._ahead.forget_user(key)
        self._ahead.count(key, None)
        self._ahead.queued.clear()
        await self.db.execute("DELETE FROM users WHERE name_hash = ?", (key,))

    async def ping(self) -> None:
        """Raises unless the database answers (`StoreError`, or the caller's timeout)."""
        await self.db.fetchone("SELECT 1")

    async def count_users(self) -> int:
        return (await one(self.db, "SELECT count(*) FROM users"))[0]

    async def count_homed(self, frontend: int) -> int:
        """Users whose route is through `frontend`."""
        return (await one(self.db, "SELECT count(*) FROM users WHERE home = ?", (frontend,)))[0]

    # --- keys ---------------------------------------------------------------------

    async def add_one_time_keys(self, key: bytes, keys) -> None:
        await self.db.executemany(
            "INSERT INTO one_time_keys (name_hash, key_id, encoded) VALUES (?, ?, ?)"
            " ON CONFLICT (name_hash, key_id) DO UPDATE SET encoded = excluded.encoded",
            [(key, k.key_id, wire.encode_record(wire.ONE_TIME_KEY, k)) for k in keys],
        )

    async def set_fallback(self, key: bytes, fallback: wire.OneTimeKey) -> None:
        self._ahead.forget_user(key)
        await self.db.execute(
            "UPDATE users SET fallback = ? WHERE name_hash = ?",
            (wire.encode_record(wire.ONE_TIME_KEY, fallback), key),
        )

    async def count_one_time_keys(self, key: bytes) -> int:
        row = await one(self.db, "SELECT count(*) FROM one_time_keys WHERE name_hash = ?", (key,))
        return row[0]

    async def take_one_time_key(self, key: bytes) -> wire.OneTimeKey | None:
        """Removes and returns one one-time key: each is handed out once (concurrent
        takers on PostgreSQL skip the rows another holds: no false "none left")."""
        row = await self.db.fetchone(
            "DELETE FROM one_time_keys WHERE name_hash = ? AND key_id = (SELECT key_id FROM"
            " one_time_keys WHERE name_hash = ? ORDER BY key_id LIMIT 1"
            f"{self.db.skip_locked}) RETURNING encoded",
            (key, key),
        )
        return wire.decode_record(wire.ONE_TIME_KEY, row[0]) if row else None

    # --- queue --------------------------------------------------------------------

    async def enqueue(
        self,
        recipient: bytes,
        message_id: bytes,
        payload: bytes,
        now: int,
        stranger: bool,
        pushed_until: int | None = None,
    ) -> bool:
        """Queues a message (pushed already, next due at `pushed_until`, if given); False
        if the recipient already has one with this id. One the batch read ahead as not
        queued is held back and written with the batch's others (`_Behind`): another
        process queuing it meanwhile is a conflict (`StoreConflict`, raised then)."""
        queued = self._ahead.queued.pop((recipient, message_id), None)
        if queued:
            return False
        values = (
            recipient,
            message_id,
            now,
            payload,
            len(payload),
            now if pushed_until is None else pushed_until,
            0 if pushed_until is None else 1,
            int(stranger),
        )
        if queued is False:
            self._queue.rows.append(values)  # written with the batch's others
        else:
            await self._flush_queue()
            if (
                await self.db.fetchone(
                    f"{_QUEUE_INSERT} VALUES {self._queue.row}"
                    " ON CONFLICT (recipient, message_id) DO NOTHING RETURNING seq",
                    values,
                )
                is None
            ):
                return False
        await self.totals.add(len(payload))
        self._ahead.add(recipient, (1, len(payload), int(stranger), len(payload) * stranger))
        return True

    async def queue_sizes(self, recipient: bytes) -> tuple[tuple[int, int], tuple[int, int]]:
        """(messages, payload bytes) queued for `recipient`: all, and those without its
        access key (from strangers). One read of the covering index (or none: preloaded)."""
        sizes = self._ahead.sizes.get(recipient)
        if sizes is None:
            await self._flush_queue()
        n, size, strangers, stranger_size = sizes or await one(
            self.db,
            f"SELECT count(*), {_SUM.format('size')}, {_SUM.format('stranger')},"
            f" {_SUM.format('stranger * size')} FROM queue WHERE recipient = ?",
            (recipient,),
        )
        return (n, size), (strangers, stranger_size)

    async def queue_size(self, recipient: bytes) -> tuple[int, int]:
        return (await self.queue_sizes(recipient))[0]

    async def queued_from_strangers(self, recipient: bytes) -> tuple[int, int]:
        return (await self.queue_sizes(recipient))[1]

    async def queued_bytes(self) -> int:
        """Payload bytes queued on the whole node."""
        return await self.totals.total()

    async def queued(self, recipient: bytes, limit: int) -> list[Queued]:
        await self._flush_queue()
        rows = await self.db.fetchall(
            f"SELECT {_QUEUED} FROM queue WHERE recipient = ? ORDER BY seq LIMIT ?",
            (recipient, limit),
        )
        return [Queued(*row) for row in rows]

    async def due_pushes(
        self, now: int, limit: int, frontends: frozenset[int] | None = None
    ) -> list[Queued]:
        """Messages due a push to recipients with a route (through one of `frontends`,
        this process's; None: any)."""
        await self._flush_queue()
        homes = "" if frontends is None else f" AND u.home IN {marks(frontends)}"
        rows = await self.db.fetchall(
            "SELECT q.seq, q.recipient, q.message_id, q.received, q.payload, q.pushes"
            " FROM queue q JOIN users u ON u.name_hash = q.recipient"
            f" WHERE q.next_push <= ? AND u.sender_tag IS NOT NULL{homes}"
            " ORDER BY q.next_push LIMIT ?",
            (now, *sorted(frontends or ()), limit),
        )
        return [Queued(*row) for row in rows]

    async def pushed(self, messages: list[tuple[int, int]]) -> None:
        """(seq, next push) of messages just pushed."""
        await self._flush_queue()
        await self.db.executemany(
            "UPDATE queue SET pushes = pushes + 1, next_push = ? WHERE seq = ?",
            [(when, seq) for seq, when in messages],
        )

    async def reschedule(self, recipient: bytes, when: int) -> None:
        await self._flush_queue()
        await self.db.execute(
            "UPDATE queue SET next_push = ? WHERE recipient = ?", (when, recipient)
        )

    async def ack(self, recipient: bytes, message_ids) -> list[int]:
        """Deletes acknowledged messages; returns when each was received."""
        if not message_ids:
            return []
        await self._flush_queue()
        rows = await self.db.fetchall(
            f"DELETE FROM queue WHERE recipient = ? AND message_id IN {marks(message_ids)}"
            " RETURNING received, size, stranger",
            (recipient, *message_ids),
        )
        size = sum(size for _, size, _ in rows)
        await self.totals.add(-size)
        strangers = [size for _, size, stranger in rows if stranger]
        self._ahead.add(recipient, (-len(rows), -size, -len(strangers), -sum(strangers)))
        for message_id in message_ids:
            self._ahead.queued.pop((recipient, message_id), None)
        return [received for received, _, _ in rows]

    async def count_queued(self) -> int:
        await self._flush_queue()
        return (await one(self.db, "SELECT count(*) FROM queue"))[0]

    async def expire(self, before: int) -> int:
        await self._flush_queue()
        rows = await self.db.fetchall(
            "DELETE FROM queue WHERE received < ? RETURNING size", (before,)
        )
        await self.totals.add(-sum(size for (size,) in rows))
        for recipient in list(self._ahead.sizes):
            self._ahead.count(recipient, None)
        self._ahead.queued.clear()
        return len(rows)

    # --- replay protection and the answer cache --------------------------------------

    async def first_sight(self, request_id: bytes, expires: int) -> bool:
        """Records an id (a spent challenge); False if it was seen before."""
        self._ahead.seen.pop(seen_key(request_id), None)
        await self._flush_seen()
        changed = await self.db.execute(
            "INSERT INTO seen (key, expires) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (seen_key(request_id), expires),
        )
        return changed == 1

    async def seen(self, request_id: bytes) -> tuple[bytes | None, bytes | None] | None:
        """(request digest, answer) of a request id seen before, or None."""
        key = seen_key(request_id)
        if key in self._ahead.seen:
            row = self._ahead.seen[key]
        else:
            await self._flush_seen()
            row = await self.db.fetchone("SELECT digest, answer FROM seen WHERE key = ?", (key,))
        if row is None:
            return None
        digest, sealed = row
        answer = _answer_cipher(request_id).decrypt(bytes(12), sealed, None) if sealed else None
        return digest, answer

    async def remember(self, request_id: bytes, digest: bytes, answer: bytes, expires: int) -> bool:
        """Records a handled request's digest and answer (sealed) until `expires`; False if
        the id was recorded meanwhile (another process answered it: on PostgreSQL this
        waits for that process's transaction). An id the batch read ahead as unseen is
        held back and written with the batch's others (`_Behind`): another process
        recording it meanwhile is a conflict (`StoreConflict`, raised then: the batch runs
        again)."""
        key = seen_key(request_id)
        unseen = key in self._ahead.seen and self._ahead.seen[key] is None
        self._ahead.seen.pop(key, None)
        values = (key, digest, _answer_cipher(request_id).encrypt(bytes(12), answer, None), expires)
        if unseen:
            self._seen.rows.append(values)  # written with the batch's others
            return True
        await self._flush_seen()
        sql = f"{_SEEN_INSERT} VALUES {self._seen.row} ON CONFLICT (key) DO NOTHING"
        return await self.db.execute(sql, values) == 1

    async def forget_seen(self, now: int) -> int:
        self._ahead.seen.clear()
        await self._flush_seen()
        return await self.db.execute("DELETE FROM seen WHERE expires < ?", (now,))

    # --- limits shared by the node's processes -------------------------------------

    async def take_token(self, key: bytes, rate_per_ms: float, burst: float, now: int) -> bool:
        """Takes a token from `key`'s bucket (refilled at `rate_per_ms` up to `burst`), in
        one atomic statement; False (and nothing changed) if it holds less than one."""
        refilled, refill = "rate_limits.tokens + (? - rate_limits.updated) * ?", (now, rate_per_ms)
        row = await self.db.fetchone(
            "INSERT INTO rate_limits (key, tokens, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET"
            f" tokens = CASE WHEN {refilled} > ? THEN ? ELSE {refilled} END - 1,"
            f" updated = excluded.updated WHERE {refilled} >= 1 RETURNING 1",
            (key, burst - 1, now, *refill, burst, burst, *refill, *refill),
        )
        return row is not None

    async def forget_full_buckets(self, now: int, rate_per_ms: float, burst: float) -> int:
        """Drops the buckets full again (as good as no row)."""
        return await self.db.execute(
            "DELETE FROM rate_limits WHERE tokens + (? - updated) * ? >= ?",
            (now, rate_per_ms, burst),
        )

    async def node_state(self, name: str) -> tuple[float, int] | None:
        """(value, when it was set) of a named value of the whole node."""
        return await self.db.fetchone(
            "SELECT value, updated FROM node_state WHERE name = ?", (name,)
        )

    async def held_node_state(self, name: str, now: int) -> tuple[float, int]:
        """`node_state`, (0, now) for a new one, held until the transaction ends: of two
        processes changing it at once, the later reads the earlier's change (none lost)."""
        return await one(
            self.db,
            "INSERT INTO node_state (name, value, updated) VALUES (?, 0, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = node_state.value RETURNING value, updated",
            (name, now),
        )

    async def set_node_state(self, name: str, value: float, now: int) -> None:
        await self.db.execute(
            "INSERT INTO node_state (name, value, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (name, value, now),
        )

    # --- the frontends of the node's processes --------------------------------------

    async def claim_frontends(
        self, process: str, addresses: Mapping[int, str], now: int, live_after: int
    ) -> list[int]:
        """Claims (or heartbeats) `process`'s frontends, id to address; returns the ids
        refused: held by another process with another address and heard from since
        `live_after`. Run in a transaction (all or none, if the caller raises)."""
        refused = []
        for frontend, address in sorted(addresses.items()):
            row = await self.db.fetchone(
                "INSERT INTO frontends (id, address, process, heartbeat) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET address = excluded.address,"
                " process = excluded.process, heartbeat = excluded.heartbeat"
                " WHERE frontends.process = excluded.process"
                " OR frontends.address = excluded.address OR frontends.heartbeat < ?"
                " RETURNING id",
                (frontend, address, process, now, live_after),
            )
            if row is None:
                refused.append(frontend)
        return refused

    async def forget_frontends(self, process: str) -> None:
        """Drops every other process's frontends (a database only this process uses)."""
        await self.db.execute("DELETE FROM frontends WHERE process <> ?", (process,))

    async def live_frontends(self, since: int) -> list[tuple[int, str]]:
        """(id, address) of every process's frontends heard from since `since`, by id."""
        rows = await self.db.fetchall(
            "SELECT id, address FROM frontends WHERE heartbeat >= ? ORDER BY id", (since,)
        )
        return [(frontend, address) for frontend, address in rows]

    async def woken(self) -> AsyncIterator[int | bytes]:
        """What other processes tell, as they do: a frontend they `wake` (an int), the id
        of a group they posted to (bytes: `GroupStore.post`)."""
        async for payload in self.db.notifications():
            kind, _, value = payload.partition(" ")
            if kind == "push" and value.isdigit() and len(value) <= 5:
                yield int(value)
            elif kind == "group" and len(value) == 64:
                with contextlib.suppress(ValueError):
                    yield bytes.fromhex(value)


async def open_store(where: str, name_key: bytes) -> NodeStore:
    """The node's store at `where`: a `postgresql://` (or `postgres://`) URL, else the
    path of its SQLite file."""
    if where.startswith(POSTGRES_URLS):
        from nymchat.node.postgres import (  # type: ignore[import-untyped, unused-ignore]
            PostgresDatabase,
        )

        return NodeStore(await PostgresDatabase.connect(where), name_key)
    return open_sqlite(where, name_key)


def open_sqlite(path: Path | str, name_key: bytes) -> NodeStore:
    """The node's store in the SQLite file at `path` (":memory:" for none)."""
    from nymchat.node.sqlite import SqliteDatabase

    hashes = NameHashes(name_key)
    functions: dict[str, Callable] = {
        "name_skeleton": names.skeleton,
        "name_hash": hashes.name,
        "skeleton_hash": hashes.skeleton,
        "seen_key": seen_key,
        "route_frontend": route_frontend,
    }
    return NodeStore(SqliteDatabase(path, functions), name_key)


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
