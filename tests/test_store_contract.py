"""The node's store, one contract over both its databases: every test runs on a fresh
SQLite file and on a fresh PostgreSQL database (the `pg_url` fixture), through the
store's public methods only. Several stores on one database stand for several node
processes: on PostgreSQL each has its own connections and they run as concurrent tasks;
on SQLite each has its own connection to the file and runs in a thread of its own."""

import asyncio
import contextlib
import dataclasses
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from nodeclient import bundle
from oldschema import sqlite_at_schema

from nymchat import _native
from nymchat.database import newest_schema
from nymchat.node import quota
from nymchat.node.postgres import PostgresDatabase, migrate, migrations
from nymchat.node.routes import route
from nymchat.node.service import NodeConfig
from nymchat.node.store import NameHashes, NodeStore, open_store, seen_key
from nymchat.protocol import names, wire

KEY = bytes(range(32))  # the node's name key
T0 = 1_800_000_000_000
STORES = 6  # stores at once (SQLite: threads; the default executor runs 6 on 2 cores)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path) -> str:
    """A fresh database: a SQLite file's path or a PostgreSQL URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "node.db")


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def on_postgresql(where: str) -> bool:
    return where.startswith("postgresql://")


@asynccontextmanager
async def stores(where: str, n: int = 1) -> AsyncIterator[list[NodeStore]]:
    """`n` stores on the database at `where` (the first one makes its schema)."""
    opened = [await open_store(where, KEY)]
    try:
        for _ in range(n - 1):
            opened.append(await open_store(where, KEY))
        yield opened
    finally:
        for store in opened:
            await store.close()


async def at_once(where: str, work: list[Awaitable]) -> list:
    """Runs `work` (one coroutine per store) at once: concurrent tasks on PostgreSQL, a
    thread each on SQLite (whose store never suspends inside a transaction)."""
    if on_postgresql(where):
        return await asyncio.gather(*work)
    return await asyncio.gather(*(asyncio.to_thread(asyncio.run, w) for w in work))


async def register(
    store: NodeStore, name: str, keys: int = 0, tag=None, identity=None
) -> bytes | None:
    identity = identity or _native.Identity.generate()
    return await store.add_user(name, identity.signing_public, bundle(identity, keys), tag, T0)


# --- registration -----------------------------------------------------------------------


def test_a_name_its_look_alikes_and_its_identity_belong_to_one_user(where):
    async def go():
        async with stores(where) as [store]:
            martin = _native.Identity.generate()
            key = await register(store, "martin", keys=3, tag=route(2, b"t" * 16), identity=martin)
            user = await store.user(key)
            assert user is not None and user.key == key == store.names.name("martin")
            assert user.identity == martin.signing_public and user.sender_tag == route(2, b"t" * 16)
            assert await store.user_by_identity(martin.signing_public) == user
            assert await store.count_one_time_keys(key) == 3
            for look_alike in ("martin", "rnartin", "rnart1n"):
                assert await store.skeleton_taken(names.skeleton(look_alike)), look_alike
            assert not await store.skeleton_taken(names.skeleton("marta"))
            for name, identity in (
                ("martin", None),  # the same name
                ("rnartin", None),  # a look-alike
                ("marta", martin),  # the same identity
            ):
                assert await register(store, name, keys=2, identity=identity) is None, name
            assert await store.count_users() == 1
            assert await store.user(store.names.name("rnartin")) is None
            assert await store.count_one_time_keys(key) == 3

    run(go())


def test_of_two_stores_registering_look_alikes_at_once_exactly_one_wins(where):
    """The service's check then add, in two stores at once. On PostgreSQL both check
    before either adds (a barrier), so both find the name free: the later insert waits
    for the other's transaction and, once that commits, adds nothing."""
    both_checked = asyncio.Barrier(2) if on_postgresql(where) else None  # SQLite: one at a time
    free = []

    async def claim(store: NodeStore, name: str) -> bool:
        async with store.transaction():
            taken = await store.skeleton_taken(names.skeleton(name))
            if both_checked is not None:
                await both_checked.wait()
            if taken:
                return False
            free.append(name)
            return await register(store, name) is not None

    async def go():
        async with stores(where, 2) as [a, b]:
            won = await at_once(where, [claim(a, "martin"), claim(b, "rnartin")])
            assert sorted(won) == [False, True]
            assert await a.count_users() == await b.count_users() == 1
            if on_postgresql(where):
                assert len(free) == 2  # the race did happen: both found the name free

    run(go())


# --- one-time keys and key packages under concurrent lookups ------------------------------


async def claims(where: str, take: Callable[[NodeStore], Awaitable], per_store: int) -> list:
    """What `STORES` stores hand out when each claims `per_store` times at once, each
    claim a transaction that stays open a moment (as a batch does) while others claim."""

    async def claimer(store: NodeStore) -> list:
        got = []
        for _ in range(per_store):
            async with store.transaction():
                got.append(await take(store))
                await asyncio.sleep(0.005)
        return got

    async with stores(where, STORES) as many:
        handed = await at_once(where, [claimer(store) for store in many])
    return [item for items in handed for item in items]


def test_each_one_time_key_is_handed_out_once_and_every_one_is_before_none_left(where):
    pool, per_store = 20, 6  # 36 claims for 20 keys

    async def go():
        async with stores(where) as [store]:
            key = await register(store, "bob", keys=pool)
        taken = await claims(where, lambda s: s.take_one_time_key(key), per_store)
        given = [k.key_id for k in taken if k is not None]
        assert len(given) == len(set(given)) == pool
        assert taken.count(None) == STORES * per_store - pool
        async with stores(where) as [store]:
            assert await store.count_one_time_keys(key) == 0
            assert await store.take_one_time_key(key) is None
            user = await store.user(key)
            assert user is not None and user.fallback.key_id == 1000  # the fallback stays

    run(go())


def test_each_key_package_is_handed_out_once_and_the_last_resort_stays(where):
    pool, per_store = 20, 6

    async def go():
        async with stores(where) as [store]:
            key = await register(store, "bob")
            await store.groups.set_last_resort(key, b"last resort")
            await store.groups.add_key_packages(key, [b"package %d" % n for n in range(pool)])
            assert await store.groups.count_key_packages(key) == pool
        taken = await claims(where, lambda s: s.groups.take_key_package(key), per_store)
        given = [p for p in taken if p is not None]
        assert sorted(given) == sorted(b"package %d" % n for n in range(pool))
        async with stores(where) as [store]:
            assert await store.groups.count_key_packages(key) == 0
            assert await store.groups.take_key_package(key) is None
            assert await store.groups.last_resort(key) == b"last resort"

    run(go())


# --- queue quotas and retention --------------------------------------------------------


def test_a_queue_counts_its_messages_bytes_and_strangers_share_for_the_quotas(where):
    config = NodeConfig(queue_max_messages=4, queue_max_bytes=100, queue_stranger_share=0.5)

    async def room(store: NodeStore, key: bytes, stranger: bool) -> quota.Room:
        queued, strangers = await store.queue_sizes(key)
        return quota.Room(queued, strangers if stranger else None, await store.queued_bytes())

    async def go():
        async with stores(where) as [store]:
            bob = await register(store, "bob")
            assert await store.enqueue(bob, b"k1", b"x" * 10, T0, stranger=False)
            assert await store.enqueue(bob, b"s1", b"x" * 20, T0, stranger=True)
            assert not await store.enqueue(bob, b"s1", b"x" * 30, T0, stranger=True)  # again
            assert await store.queue_sizes(bob) == ((2, 30), (1, 20))
            assert await store.queued_bytes() == 30
            assert quota.refusal(config, "bob", 10, await room(store, bob, True)) is None
            assert await store.enqueue(bob, b"s2", b"x" * 10, T0, stranger=True)
            refused = quota.refusal(config, "bob", 10, await room(store, bob, True))
            assert refused is not None and refused[0] is wire.ErrorCode.QUEUE_FULL  # 2 of 2
            assert quota.refusal(config, "bob", 10, await room(store, bob, False)) is None
            assert await store.enqueue(bob, b"k2", b"x" * 10, T0, stranger=False)
            refused = quota.refusal(config, "bob", 1, await room(store, bob, False))
            assert refused is not None and "bob's queue is full" in refused[1]  # 4 of 4
            assert await store.ack(bob, [b"s1", b"k2", b"unknown"]) == [T0, T0]
            assert await store.queue_sizes(bob) == ((2, 20), (1, 10))
            assert await store.queued_bytes() == 20
            assert [q.message_id for q in await store.queued(bob, 10)] == [b"k1", b"s2"]

    run(go())


def test_a_message_refused_after_queueing_leaves_no_count_when_its_savepoint_rolls_back(where):
    """The service queues, then checks the room, and rolls the request back if there was
    none: nothing of it may stay in the recipient's counts or the node's total."""

    async def go():
        async with stores(where) as [store]:
            bob = await register(store, "bob")
            async with store.transaction():
                assert await store.enqueue(bob, b"kept", b"x" * 10, T0, stranger=True)
                with pytest.raises(ValueError):
                    async with store.savepoint():
                        assert await store.enqueue(bob, b"gone", b"x" * 7, T0, stranger=True)
                        assert await store.queue_sizes(bob) == ((2, 17), (2, 17))
                        assert await store.queued_bytes() == 17
                        raise ValueError("no room")
            assert await store.queue_sizes(bob) == ((1, 10), (1, 10))
            assert await store.queued_bytes() == 10

    run(go())


def statements(store: NodeStore) -> list[str]:
    """The SQL of every statement `store` runs from now on, as it runs them."""
    sent: list[str] = []
    for name in ("execute", "write", "executemany", "insert_rows", "fetchone", "fetchall"):
        method = getattr(store.db, name)

        async def spied(sql, params=(), _method=method):
            sent.append(sql)
            return await _method(sql, params)

        setattr(store.db, name, spied)
    return sent


def savepoint_statements(store: NodeStore, monkeypatch) -> list[str]:
    """The SAVEPOINT, RELEASE and ROLLBACK TO statements `store`'s database sends from now
    on (PostgreSQL: its transaction's commands; SQLite: from its connection's trace)."""
    sent: list[str] = []
    db: Any = store.db
    if db.dialect == "postgresql":
        command = db._command

        async def spy(sql):
            sent.append(sql)
            await command(sql)

        monkeypatch.setattr(db, "_command", spy)
    else:
        words = ("SAVEPOINT", "RELEASE", "ROLLBACK TO")
        db.connection.set_trace_callback(lambda sql: sql.startswith(words) and sent.append(sql))
    return sent


def test_a_savepoint_is_sent_only_before_its_first_write_and_not_if_it_only_read(
    where, monkeypatch
):
    """Reads need no savepoint: a scope that wrote nothing sends no SAVEPOINT, RELEASE or
    ROLLBACK TO; one that writes sends its own (and its outer scopes') first."""

    async def go():
        async with stores(where) as [store]:
            db = store.db
            write = "INSERT INTO node_state (name, value, updated) VALUES (?, 0, 0)"
            read = "SELECT name FROM node_state ORDER BY name"
            sent = savepoint_statements(store, monkeypatch)
            async with db.transaction():
                await db.execute(write, ("a",))
                async with db.savepoint():
                    assert await db.fetchall(read) == [("a",)]
                with pytest.raises(KeyError):
                    async with db.savepoint():
                        await db.fetchone(read)
                        raise KeyError("refused")
                assert sent == []
                with pytest.raises(KeyError):
                    async with db.savepoint():
                        await db.fetchone(read)
                        async with db.savepoint():
                            await db.fetchone(read)
                            await db.execute(write, ("b",))
                        raise KeyError("refused after the inner scope wrote")
                rollback = "ROLLBACK TO SAVEPOINT s1" if on_postgresql(where) else "ROLLBACK TO s1"
                assert [sql.replace("RELEASE SAVEPOINT", "RELEASE") for sql in sent] == [
                    "SAVEPOINT s1",
                    "SAVEPOINT s2",
                    "RELEASE s2",
                    rollback,
                    "RELEASE s1",
                ]
            assert await db.fetchall(read) == [("a",)]

    run(go())


def test_a_batchs_messages_and_answers_go_out_as_one_insert_each_at_the_commit(where):
    """What the batch read ahead as absent is held back: a request queuing a message and
    recording its answer runs no statement (so on PostgreSQL no savepoint either); one
    rolled back leaves nothing; the commit writes the rest, one INSERT a table, in order."""

    async def go():
        async with stores(where) as [store]:
            bob = await register(store, "bob")
            ids = [bytes([n]) * 16 for n in range(5)]
            async with store.transaction():
                await store.preload(ids, [], [bob], [(bob, request_id) for request_id in ids])
                sent = statements(store)
                for n, request_id in enumerate(ids):
                    with pytest.raises(ValueError) if n == 2 else contextlib.nullcontext():
                        async with store.savepoint():
                            assert await store.enqueue(bob, request_id, b"x" * n, T0, False)
                            assert await store.remember(request_id, b"d", b"answer", T0 + 1)
                            if n == 2:
                                raise ValueError("no room")
                assert sent == []
            inserts = [sql for sql in sent if sql.startswith("INSERT INTO")]
            assert [sql.split()[2] for sql in inserts] == ["queue", "seen", "queue_totals"]
            kept = [request_id for n, request_id in enumerate(ids) if n != 2]
            assert [q.message_id for q in await store.queued(bob, 10)] == kept
            assert [await store.seen(request_id) is not None for request_id in ids] == [
                n != 2 for n in range(5)
            ]
            assert await store.queued_bytes() == 0 + 1 + 3 + 4

    run(go())


def test_an_acknowledgement_in_a_batch_keeps_the_sizes_known_to_the_sends_after_it(where):
    """A busy recipient acknowledges in nearly every batch that queues for them: the
    sends after it are still counted on what was read ahead, and held back (no statement
    each), with the acknowledged messages (a stranger's among them) taken off."""

    async def go():
        async with stores(where) as [store]:
            bob = await register(store, "bob")
            await store.enqueue(bob, b"old", b"x" * 5, T0, stranger=True)
            await store.enqueue(bob, b"older", b"x" * 3, T0, stranger=False)
            ids = [bytes([n]) * 16 for n in range(3)]
            async with store.transaction():
                await store.preload([], [], [bob], [(bob, message_id) for message_id in ids])
                sent = statements(store)
                assert await store.ack(bob, [b"old"]) == [T0]
                for n, message_id in enumerate(ids):
                    assert await store.queue_sizes(bob) == ((1 + n, 3 + n), (n, n))
                    assert await store.enqueue(bob, message_id, b"x", T0, stranger=True)
                assert [sql.split()[0] for sql in sent] == ["DELETE"]
            assert await store.queue_sizes(bob) == ((4, 6), (3, 3))
            assert await store.queued_bytes() == 6

    run(go())


def test_held_back_rows_flushed_inside_a_savepoint_rolled_back_are_not_lost(where):
    """A read the batch did not read ahead writes the held-back rows first, inside the
    savepoint of the request that reads: rolling that request back takes its own rows
    back, and the earlier requests' rows are written again (at the commit)."""

    async def go():
        async with stores(where) as [store]:
            bob = await register(store, "bob")
            async with store.transaction():
                await store.preload([b"id1", b"id2"], [], [bob], [(bob, b"m1"), (bob, b"m2")])
                async with store.savepoint():
                    assert await store.enqueue(bob, b"m1", b"x" * 3, T0, stranger=False)
                    assert await store.remember(b"id1", b"d1", b"a1", T0 + 100)
                with pytest.raises(ValueError):
                    async with store.savepoint():
                        assert await store.enqueue(bob, b"m2", b"y" * 4, T0, stranger=False)
                        assert await store.remember(b"id2", b"d2", b"a2", T0 + 100)
                        # not read ahead: the held-back rows go out first, in this savepoint
                        assert [q.message_id for q in await store.queued(bob, 10)] == [
                            b"m1",
                            b"m2",
                        ]
                        assert await store.seen(b"id1") == (b"d1", b"a1")
                        raise ValueError("refused")
                assert await store.seen(b"id2") is None
            assert [q.message_id for q in await store.queued(bob, 10)] == [b"m1"]
            assert await store.seen(b"id1") == (b"d1", b"a1")
            assert await store.seen(b"id2") is None
            assert await store.queue_size(bob) == (1, 3) and await store.queued_bytes() == 3

    run(go())


def test_the_node_total_is_one_across_stores_and_their_shards(where):
    async def go():
        async with stores(where, 2) as [a, b]:
            bob, carol = await register(a, "bob"), await register(a, "carol")
            await a.enqueue(bob, b"m1", b"x" * 10, T0, stranger=False)
            await b.enqueue(bob, b"m2", b"x" * 5, T0, stranger=False)
            await b.enqueue(carol, b"m3", b"x" * 3, T0, stranger=False)
            await a.groups.create(b"g" * 32, b"verifier", T0)
            await a.groups.post(b"g" * 32, 0, 1, b"p1", b"y" * 7, T0, [bob, carol])
            assert await a.queued_bytes() == await b.queued_bytes() == 25
            assert await b.ack(bob, [b"m1"]) == [T0]  # a's message, from b's shard
            assert await a.queued_bytes() == await b.queued_bytes() == 15
            await b.groups.ack(bob, [b"p1"], T0)  # carol still has it: it stays counted
            assert await a.queued_bytes() == 15
            await a.groups.ack(carol, [b"p1"], T0)
            assert await a.queued_bytes() == 8
            async with b.transaction():
                await b.totals.fold()
            async with a.transaction():
                await a.totals.fold()
            assert await a.queued_bytes() == await b.queued_bytes() == 8
            await b.delete_user(carol)
            assert await a.queued_bytes() == 5
            assert await a.queue_size(bob) == (1, 5) and await a.count_queued() == 1

    run(go())


def test_stores_queueing_for_the_same_recipient_at_once_lose_no_message_and_no_byte(where):
    """Several processes queue for one recipient (and fold the total) at once: no
    conflict, no wait that fails, every message and byte counted once."""
    per_store = 10

    async def sender(store: NodeStore, bob: bytes, n: int) -> None:
        for m in range(per_store):
            async with store.transaction():
                payload = b"x" * (n + m + 1)
                assert await store.enqueue(bob, b"%d-%d" % (n, m), payload, T0, stranger=False)
                if m == per_store // 2:
                    await store.totals.fold()
                await asyncio.sleep(0.001)

    async def go():
        async with stores(where, STORES) as many:
            bob = await register(many[0], "bob")
            await at_once(where, [sender(s, bob, n) for n, s in enumerate(many)])
            size = sum(n + m + 1 for n in range(STORES) for m in range(per_store))
            for store in many:
                assert await store.queue_size(bob) == (STORES * per_store, size)
                assert await store.queued_bytes() == size

    run(go())


def test_expiry_drops_what_is_older_and_the_totals_follow(where):
    async def go():
        async with stores(where, 2) as [a, b]:
            bob = await register(a, "bob")
            await a.enqueue(bob, b"old", b"x" * 10, T0, stranger=True)
            await a.enqueue(bob, b"new", b"x" * 4, T0 + 10, stranger=True)
            await a.groups.create(b"g" * 32, b"verifier", T0)
            await a.groups.post(b"g" * 32, 0, 1, b"g-old", b"y" * 6, T0, [bob])
            await a.groups.post(b"g" * 32, 0, 1, b"g-new", b"y" * 2, T0 + 10, [bob])
            assert await b.queued_bytes() == 22
            async with b.transaction():
                assert await b.expire(T0 + 5) == 1
                assert await b.groups.expire(T0 + 5, T0 + 5) == 1
            assert await a.queue_sizes(bob) == ((1, 4), (1, 4))
            assert [q.message_id for q in await a.queued(bob, 10)] == [b"new"]
            assert [g.message_id for g in await a.groups.queued(bob, 10)] == [b"g-new"]
            assert await a.groups.queue_size(bob) == 1
            assert await a.queued_bytes() == 6
            assert await b.expire(T0 + 5) == 0

    run(go())


def test_a_group_entry_taken_by_its_last_recipients_at_once_is_gone_by_the_next_expiry(where):
    """On PostgreSQL two stores acknowledging an entry's last two deliveries at once each
    still see the other's, so neither drops the entry: expiry drops what nothing needs."""
    both_acked = asyncio.Barrier(2) if on_postgresql(where) else None  # SQLite: one at a time

    async def ack(store: NodeStore, key: bytes) -> None:
        async with store.transaction():
            assert await store.groups.ack(key, [b"post"], T0) == [T0]
            if both_acked is not None:
                await both_acked.wait()

    async def go():
        async with stores(where, 2) as [a, b]:
            bob, carol = await register(a, "bob"), await register(a, "carol")
            assert bob is not None and carol is not None
            await a.groups.create(b"g" * 32, b"verifier", T0)
            await a.groups.post(b"g" * 32, 0, 1, b"post", b"y" * 9, T0, [bob, carol])
            await at_once(where, [ack(a, bob), ack(b, carol)])
            async with a.transaction():
                assert await a.groups.expire(T0, T0) == 0  # nothing older than T0
            assert await b.groups.count_entries(b"g" * 32) == 0
            assert await b.queued_bytes() == 0

    run(go())


def test_a_group_its_last_members_leave_at_once_is_gone_by_the_next_expiry(where):
    both_left = asyncio.Barrier(2) if on_postgresql(where) else None  # SQLite: one at a time

    async def leave(store: NodeStore, key: bytes) -> None:
        async with store.transaction():
            await store.groups.leave(b"g" * 32, key, T0)
            if both_left is not None:
                await both_left.wait()

    async def go():
        async with stores(where, 2) as [a, b]:
            bob, carol = await register(a, "bob"), await register(a, "carol")
            await a.groups.create(b"g" * 32, b"verifier", T0)
            await a.groups.add_members(b"g" * 32, [bob, carol])
            await at_once(where, [leave(a, bob), leave(b, carol)])
            async with a.transaction():
                await a.groups.expire(T0, T0)
            assert await b.groups.group(b"g" * 32) is None
            assert await b.groups.count_groups() == 0

    run(go())


# --- replay ids and the answer cache ----------------------------------------------------


def test_a_request_id_is_seen_first_once_and_answered_once_across_stores(where):
    async def go():
        async with stores(where, 2) as [a, b]:
            assert await a.first_sight(b"challenge", T0 + 100)
            assert not await b.first_sight(b"challenge", T0 + 100)
            assert await b.seen(b"challenge") == (None, None)  # spent: no answer to repeat
            assert await a.seen(b"request") is None
            assert await a.remember(b"request", b"digest", b"the answer", T0 + 200)
            assert not await b.remember(b"request", b"other", b"another answer", T0 + 200)
            assert await b.seen(b"request") == (b"digest", b"the answer")
            assert not await b.first_sight(b"request", T0 + 200)
            assert await a.remember(b"short-lived", b"d", b"a", T0 + 50)
            assert await b.forget_seen(T0 + 100) == 1  # expired before T0 + 100
            assert await a.seen(b"short-lived") is None
            assert await a.seen(b"challenge") == (None, None)  # expires at T0 + 100: kept
            assert await b.forget_seen(T0 + 201) == 2
            assert await a.first_sight(b"challenge", T0 + 300)  # forgotten: new again
            assert await a.remember(b"request", b"d2", b"again", T0 + 300)
            assert await b.seen(b"request") == (b"d2", b"again")

    run(go())


@pytest.mark.parametrize("outcome", ["commits", "rolls back"])
def test_remembering_an_id_another_store_is_answering_waits_for_its_transaction(where, outcome):
    """On PostgreSQL the second insert waits on the first's uncommitted row; on SQLite
    the second store waits for the file's write lock. Either way it learns the outcome."""
    remembered = threading.Event()

    async def first(store: NodeStore) -> None:
        try:
            async with store.transaction():
                assert await store.remember(b"id", b"d1", b"first answer", T0 + 100)
                remembered.set()
                await asyncio.sleep(0.2)  # while the other store tries
                if outcome == "rolls back":
                    raise ValueError("rolled back")
        except ValueError:
            pass

    async def second(store: NodeStore) -> bool:
        await asyncio.to_thread(remembered.wait, 30)
        return await store.remember(b"id", b"d2", b"second answer", T0 + 100)

    async def go():
        async with stores(where, 2) as [a, b]:
            _, stored = await at_once(where, [first(a), second(b)])
            assert stored is (outcome == "rolls back")
            expected = b"first answer" if outcome == "commits" else b"second answer"
            assert (await a.seen(b"id"))[1] == expected

    run(go())


async def first_then_second(
    where: str, first: Callable[[], Awaitable], second: Callable[[], Awaitable], stores_: list
) -> None:
    """`first` (run in a transaction of the first store, which stays open a while after it)
    and `second` (through the second store, once `first` ran): the second store's change
    meets the first's uncommitted one."""
    done = threading.Event()

    async def one(store: NodeStore) -> None:
        async with store.transaction():
            await first(store)
            done.set()
            await asyncio.sleep(0.2)  # while the other store tries

    async def other(store: NodeStore) -> None:
        await asyncio.to_thread(done.wait, 30)
        async with store.transaction():
            await second(store)

    await at_once(where, [one(stores_[0]), other(stores_[1])])


def test_a_user_deleted_while_another_store_queues_for_it_leaves_the_total_right(where):
    """The queuing store's message is counted with the user's others, or refused."""

    async def go():
        async with stores(where, 2) as [a, b]:
            bob = await register(a, "bob")
            await a.enqueue(bob, b"m0", b"abc", T0, stranger=False)

            async def queue(store):
                assert await store.enqueue(bob, b"m1", b"defgh", T0, stranger=False)

            async def delete(store):
                await store.delete_user(bob)

            await first_then_second(where, queue, delete, [b, a])
            assert await a.count_queued() == 0 and await a.queued_bytes() == 0

    run(go())


def test_registrations_counted_by_two_stores_at_once_are_both_counted(where):
    async def go():
        async with stores(where, 2) as [a, b]:

            async def count(store):
                value, _ = await store.held_node_state("registrations", T0)
                await store.set_node_state("registrations", value + 1, T0)

            await first_then_second(where, count, count, [a, b])
            assert await a.node_state("registrations") == (2, T0)

    run(go())


def test_last_resorts_set_by_two_stores_at_once_leave_the_later_one(where):
    async def go():
        async with stores(where, 2) as [a, b]:
            bob = await register(a, "bob")

            async def first(store):
                await store.groups.set_last_resort(bob, b"first")

            async def second(store):
                await store.groups.set_last_resort(bob, b"second")

            await first_then_second(where, first, second, [a, b])
            for _ in range(3):  # handed out again and again, never another
                assert await b.groups.last_resort(bob) == b"second"
            await a.groups.set_last_resort(bob, b"third")
            assert await b.groups.last_resort(bob) == b"third"

    run(go())


# --- limits shared by the node's processes ----------------------------------------------


def test_token_buckets_and_the_registration_score_are_shared_by_the_stores(where):
    rate, burst = 1 / 1000, 3  # a token a second, 3 at most

    async def go():
        async with stores(where, 2) as [a, b]:
            takes = [await s.take_token(b"alice", rate, burst, T0) for s in (a, b, a, b)]
            assert takes == [True, True, True, False]
            assert await a.take_token(b"bob", rate, burst, T0)  # another bucket
            assert not await a.take_token(b"alice", rate, burst, T0 + 999)
            assert await b.take_token(b"alice", rate, burst, T0 + 1000)  # refilled one
            assert not await a.take_token(b"alice", rate, burst, T0 + 1000)
            assert await a.forget_full_buckets(T0 + 2500, rate, burst) == 1  # bob's
            assert await b.forget_full_buckets(T0 + 4000, rate, burst) == 1  # alice's
            takes = [await b.take_token(b"alice", rate, burst, T0 + 9000) for _ in range(4)]
            assert takes == [True, True, True, False]  # full again, not more than full

            assert await b.node_state("registrations") is None
            await a.set_node_state("registrations", 2.5, T0)
            assert await b.node_state("registrations") == (2.5, T0)
            await b.set_node_state("registrations", 3.5, T0 + 10)
            assert await a.node_state("registrations") == (3.5, T0 + 10)

    run(go())


def test_stores_taking_from_one_bucket_at_once_take_no_more_than_it_holds(where):
    burst = 10

    async def taker(store: NodeStore) -> int:
        taken = 0
        for _ in range(5):
            async with store.transaction():
                taken += await store.take_token(b"alice", 1 / 1000, burst, T0)
                await asyncio.sleep(0.001)
        return taken

    async def go():
        async with stores(where, STORES) as many:
            assert sum(await at_once(where, [taker(s) for s in many])) == burst

    run(go())


# --- migrations from an older schema ----------------------------------------------------


def _old_sqlite(path: str, identity, message: wire.OneTimeKey) -> None:
    """A node database made by the migrations up to 7 (before issue 17), with bob, his
    one-time key and fallback, two queued messages (one a stranger's), a remembered
    answer and the node's total."""
    hashes = NameHashes(KEY)
    functions = {"name_skeleton": names.skeleton, "seen_key": seen_key}
    functions.update(name_hash=hashes.name, skeleton_hash=hashes.skeleton)
    db = sqlite_at_schema(path, 7, functions)
    b = bundle(identity, 0)
    bob = hashes.name("bob")
    db.execute(
        "INSERT INTO users (name_hash, skeleton_hash, identity, agreement, agreement_signature,"
        " account_key, account_signature, fallback, sender_tag, created, queued_messages,"
        " queued_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2, 7)",
        (
            bob,
            hashes.skeleton(names.skeleton("bob")),
            identity.signing_public,
            b.identity_agreement,
            b.agreement_signature,
            b.account_key,
            b.account_signature,
            wire.encode_record(wire.ONE_TIME_KEY, b.fallback),
            route(3, b"t" * 16),
            T0,
        ),
    )
    db.execute(
        "INSERT INTO one_time_keys (name_hash, key_id, encoded) VALUES (?, ?, ?)",
        (bob, message.key_id, wire.encode_record(wire.ONE_TIME_KEY, message)),
    )
    for n, payload in enumerate((b"abc", b"defg")):
        db.execute(
            "INSERT INTO queue (recipient, message_id, received, payload, next_push, stranger)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (bob, b"m%d" % n, T0, payload, T0, n),
        )
    db.execute("UPDATE queue_total SET bytes = 7")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


async def _old_postgresql(url: str, identity, message: wire.OneTimeKey) -> None:
    """A PostgreSQL node database of schema 001 only (no group tables) with the same
    content, made through the store (its methods need nothing newer)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        assert await migrate(conn, migrations()[:1]) == 1
    store = NodeStore(PostgresDatabase(url), KEY)  # as is: `connect` would migrate it
    try:
        b = dataclasses.replace(bundle(identity, 0), one_time_keys=(message,))
        bob = await store.add_user("bob", identity.signing_public, b, route(3, b"t" * 16), T0)
        await store.enqueue(bob, b"m0", b"abc", T0, stranger=False)
        await store.enqueue(bob, b"m1", b"defg", T0, stranger=True)
        assert await store.schema_version() == 1
    finally:
        await store.close()


def test_a_database_of_an_older_schema_opens_with_everything_it_held(where):
    """SQLite: a file made by the migrations up to 7; PostgreSQL: a database of schema
    001 only. Both open at the newest schema, with their users, keys and queues."""
    identity = _native.Identity.generate()
    message = wire.OneTimeKey(7, os.urandom(32), bytes(64))

    async def go():
        if on_postgresql(where):
            await _old_postgresql(where, identity, message)
        else:
            _old_sqlite(where, identity, message)
        async with stores(where) as [store]:
            newest = migrations()[-1][0] if on_postgresql(where) else newest_schema("nymchat.node")
            assert await store.schema_version() == newest
            bob = store.names.name("bob")
            user = await store.user(bob)
            assert user is not None and user.identity == identity.signing_public
            assert await store.skeleton_taken(names.skeleton("b0b"))
            assert await store.queue_sizes(bob) == ((2, 7), (1, 4))
            assert await store.queued_bytes() == 7
            assert await store.count_homed(3) == 1
            assert [q.message_id for q in await store.due_pushes(T0, 10, frozenset({3}))] == [
                b"m0",
                b"m1",
            ]
            assert await store.take_one_time_key(bob) == message
            # what the newer schema added works on what was there
            await store.groups.add_key_packages(bob, [b"package"])
            assert await store.groups.take_key_package(bob) == b"package"
            assert await store.take_token(b"bob", 1.0, 1, T0)
            await store.delete_user(bob)
            assert await store.queued_bytes() == 0 and await store.count_queued() == 0

    run(go())


# --- pushes: to the process holding the recipient's frontend ----------------------------


def test_due_pushes_are_those_of_recipients_homed_on_the_given_frontends(where):
    async def go():
        async with stores(where) as [store]:
            one = await register(store, "one", tag=route(1, b"a" * 16))
            three = await register(store, "three", tag=route(3, b"b" * 16))
            away = await register(store, "away")  # no route: nothing to push to
            for key in (one, three, away):
                await store.enqueue(key, b"now", b"x", T0, stranger=False)
            await store.enqueue(one, b"later", b"x", T0, stranger=False, pushed_until=T0 + 50)
            await store.groups.create(b"g" * 32, b"verifier", T0)
            await store.groups.post(b"g" * 32, 0, 1, b"post", b"y", T0, [one, three, away])

            async def due(now, frontends):
                pair = await store.due_pushes(now, 10, frontends)
                group = await store.groups.due_pushes(now, 10, frontends)
                return sorted((q.recipient, q.message_id) for q in pair), sorted(
                    d.recipient for d in group
                )

            assert await due(T0, frozenset({1})) == ([(one, b"now")], [one])
            assert await due(T0, frozenset({3})) == ([(three, b"now")], [three])
            assert await due(T0, frozenset({2})) == ([], [])
            everyone = sorted([(one, b"now"), (three, b"now")]), sorted([one, three])
            assert await due(T0, frozenset({1, 3})) == everyone
            assert await due(T0, None) == everyone
            assert (await due(T0 + 50, frozenset({1})))[0] == [(one, b"later"), (one, b"now")]
            assert (await store.count_homed(1), await store.count_homed(3)) == (1, 1)

            moved = await store.set_sender_tag(one, route(3, b"c" * 16), T0 + 1)
            assert moved is not None and moved.sender_tag == route(3, b"c" * 16)
            assert await due(T0, frozenset({1})) == ([], [])
            assert len((await due(T0, frozenset({3})))[1]) == 2
            assert (await store.count_homed(1), await store.count_homed(3)) == (0, 2)

    run(go())


def test_a_wake_reaches_another_store_only_once_its_transaction_commits(where):
    """PostgreSQL: the other process is woken for frontend N on commit, not before, once
    however often the transaction asked, and not for a savepoint rolled back. SQLite: one
    process, nobody to tell; its wakes end at once."""

    async def go():
        async with stores(where, 2) as [a, b]:
            if not on_postgresql(where):
                async with a.transaction():
                    await a.wake(3)
                assert [n async for n in b.woken()] == []
                return
            got: list[int] = []

            async def listen() -> None:
                async for frontend in b.woken():
                    got.append(frontend)

            listener = asyncio.ensure_future(listen())
            while not got:  # until b listens: wakes outside a transaction
                await a.wake(0)
                await asyncio.sleep(0.1)
            told, notify = [], a.db.notify

            async def counted(payload: str) -> None:
                told.append(payload)
                await notify(payload)

            a.db.notify = counted
            async with a.transaction():
                for frontend in (3, 4, 3, 3):
                    await a.wake(frontend)
                with pytest.raises(ValueError):
                    async with a.savepoint():
                        await a.wake(5)  # rolled back with its request
                        raise ValueError("no room")
                await asyncio.sleep(0.3)
                assert 3 not in got  # not before the commit
            while 4 not in got:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            assert set(got) == {0, 3, 4}
            assert told == ["push 3", "push 4"]  # once a frontend
            listener.cancel()

    run(go())
