"""Watching a group's log anonymously (`group_watch`), as members homed at other nodes
do: entries after a position at once, or the request held until one is posted or the
hold is up; a watched group keeps its entries for its watchers. Sans-I/O on the service
(a clock passed in), then a real node on a mixnet, then two stores on one PostgreSQL."""

import asyncio
import os
import time
from dataclasses import dataclass

import psycopg
import pytest
from nodeclient import anonymous, client, run
from oldschema import sqlite_at_schema
from test_node_groups import Group
from test_node_metrics import free_port, get
from test_node_service import T0, Harness, People

from nymchat import _native
from nymchat.database import newest_schema
from nymchat.node.database import StoreUnavailable
from nymchat.node.groups import WATCH_ANSWER_BYTES
from nymchat.node.postgres import PostgresDatabase, migrate, migrations
from nymchat.node.registration import name_key
from nymchat.node.service import NodeConfig, NodeService
from nymchat.node.store import open_store
from nymchat.node.watches import Held, Watches
from nymchat.protocol import wire
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

FORBIDDEN = {"code": ErrorCode.FORBIDDEN, "detail": "not a member of this group"}


@dataclass
class Watch:
    answer: wire.Answer | None  # None: held
    data: bytes
    request_id: bytes
    route: bytes


def watch(g: Group, after=0, hold=0, epoch=None, key=None, now=T0, route=None, request_id=None):
    """A watch of `g`'s log through `route` (a fresh one unless given)."""
    epoch = g.epoch if epoch is None else epoch
    body = {
        "group_id": g.id,
        "epoch": epoch,
        "access_key": key or g.keys[epoch],
        "after": after,
        "hold": hold,
    }
    data, request_id = wire.encode_anonymous_request(Kind.GROUP_WATCH, body, now, request_id)
    return send(g.h, data, request_id, route or os.urandom(18), now)


def send(h: Harness, data: bytes, request_id: bytes, route: bytes, now=T0) -> Watch:
    out = h.service.handle_batch([(data, route)], now)
    answers = [o for o in out if o.frame_id == wire.answer_frame_id(request_id)]
    assert all(o.tag == route for o in answers)
    answer = [wire.decode_answer(o.message, h.key, wire.ANONYMOUS) for o in answers]
    return Watch(answer[0] if answer else None, data, request_id, route)


def answered(h: Harness, now: int) -> dict[bytes, tuple[bytes, wire.Answer]]:
    """The held watches answered at `now`: by request id, (route, answer)."""
    return {
        (a := wire.decode_answer(o.message, h.key, wire.ANONYMOUS)).in_reply_to: (o.tag, a)
        for o in h.service.groups.answer_watches(now)
    }


def log_of(answer: wire.Answer) -> list[tuple[int, int, bytes]]:
    return [(e.position, e.post, e.payload) for e in answer.body["entries"]]


def group_of(h: Harness, *members: str, others=()) -> tuple[Group, People]:
    """A group of `members` (people `others` registered too, not members)."""
    p = People(h, *members, *others)
    g = Group(h, p)
    assert g.commit(add=list(members))[0].kind is Kind.POSTED
    return g, p


def ack(h: Harness, p: People, name: str, *message_ids: bytes, now=T0) -> None:
    who, home = p.who[name]
    h.answer(who, home, Kind.ACK, now, message_ids=message_ids)


# --- at once ---------------------------------------------------------------------------


def test_entries_after_a_position_come_at_once_in_order_without_welcomes():
    h = Harness()
    g, _ = group_of(h, "alice", "bob")  # its Welcome waits for both: not in the log
    g.post(payload=b"one")
    g.post(kind=GroupPost.PROPOSAL, payload=b"two")
    g.commit(payload=b"three")
    got = watch(g).answer
    assert got is not None and got.kind is Kind.GROUP_ENTRIES
    assert log_of(got) == [
        (1, GroupPost.APPLICATION, b"one"),
        (2, GroupPost.PROPOSAL, b"two"),
        (3, GroupPost.COMMIT, b"three"),
    ]
    assert (got.body["last"], got.body["oldest"]) == (3, 1)
    [first] = got.body["entries"][:1]
    assert (first.epoch, first.sent, len(first.message_id)) == (1, T0, 16)
    assert log_of(watch(g, after=2).answer) == [(3, GroupPost.COMMIT, b"three")]
    nothing = watch(g, after=3).answer  # hold 0: at once, empty
    assert nothing.body == {"entries": (), "last": 3, "oldest": 1}


def test_an_answer_fits_the_frames_its_request_pays_for_and_a_large_entry_goes_alone():
    h = Harness()
    g, _ = group_of(h, "alice")
    for n in range(12):
        g.post(payload=bytes([n]) * 1500)
    g.post(payload=b"L" * 40_000)
    g.post(payload=b"after")
    seen, after, sizes = [], 0, []
    while True:
        got = watch(g, after=after)
        entries = got.answer.body["entries"]
        if not entries:
            break
        encoded = wire.encode_answer(
            h.node, wire.ANONYMOUS, Kind.GROUP_ENTRIES, got.answer.body, T0, got.request_id
        )
        sizes.append((len(entries), len(_native.encode_frames(encoded, bytes(16)))))
        seen += [e.position for e in entries]
        after = entries[-1].position
    assert seen == list(range(1, 15))  # every one, in order, once
    print(f"\nanswers (entries, frames) of a {WATCH_ANSWER_BYTES}-byte budget: {sizes}")
    assert sizes[-2] == (1, 32)  # the large entry alone, whatever it takes
    assert all(frames <= 8 for n, frames in sizes if n > 1)


# --- refused ---------------------------------------------------------------------------


def test_a_wrong_key_an_unknown_group_and_a_forgotten_epoch_are_one_forbidden():
    h = Harness()
    g, _ = group_of(h, "alice")
    for _ in range(4):
        g.commit()
    assert g.epoch == 5
    refused = [
        watch(g, key=os.urandom(32)).answer,
        watch(Group(h, g.p), epoch=0).answer,
        watch(g, epoch=1).answer,  # 2..5 are kept
    ]
    assert [a.body for a in refused] == [FORBIDDEN] * 3
    assert g.post(key=os.urandom(32))[0].body == FORBIDDEN  # as a post is told
    assert watch(g, epoch=2).answer.kind is Kind.GROUP_ENTRIES


def test_epochs_and_positions_past_what_the_database_holds_are_refused_or_empty_never_busy():
    h = Harness()
    g, _ = group_of(h, "alice")
    g.post(payload=b"one")
    most = (1 << 64) - 1  # a u64 on the wire, past a signed 64-bit column
    assert watch(g, epoch=most, key=os.urandom(32)).answer.body == FORBIDDEN
    assert g.post(epoch=most, key=os.urandom(32))[0].body == FORBIDDEN
    assert watch(g, after=most).answer.body == {"entries": (), "last": 1, "oldest": 1}


def test_a_hold_over_55_seconds_is_a_bad_request():
    h = Harness()
    g, _ = group_of(h, "alice")
    assert watch(g, hold=56).answer.body == {
        "code": ErrorCode.BAD_REQUEST,
        "detail": "a watch is held 55 s at most",
    }
    assert watch(g, hold=55).answer is None  # held


# --- held ------------------------------------------------------------------------------


def test_a_held_watch_is_answered_when_an_entry_is_posted_through_its_route():
    h = Harness()
    g, _ = group_of(h, "alice")
    g.post(payload=b"seen")
    held = watch(g, after=1, hold=30)
    assert held.answer is None and len(h.real.groups.watches) == 1
    assert h.real.counts[("group_watch", "held")] == 1
    assert answered(h, T0 + 100) == {}  # nothing posted, time not up
    g.post(payload=b"news", now=T0 + 200)
    [(route, answer)] = answered(h, T0 + 200).values()
    assert route == held.route and answer.in_reply_to == held.request_id
    assert log_of(answer) == [(2, GroupPost.APPLICATION, b"news")]
    assert len(h.real.groups.watches) == 0
    again = send(h, held.data, held.request_id, os.urandom(18), T0 + 300)  # a late retry
    assert again.answer == answer  # from the answer cache
    assert h.real.counts[("group_watch", "again")] == 1


def test_a_held_watch_times_out_empty_and_leaves_nothing_in_the_answer_cache():
    h = Harness()
    g, _ = group_of(h, "alice")
    held = watch(g, hold=2)
    assert held.answer is None
    assert answered(h, T0 + 1999) == {}
    [(route, answer)] = answered(h, T0 + 2000).values()
    assert route == held.route
    assert answer.body == {"entries": (), "last": 0, "oldest": 1}
    assert h.store.seen(held.request_id) is None  # a retry is handled anew
    g.post(payload=b"now", now=T0 + 2100)
    retried = send(h, held.data, held.request_id, held.route, T0 + 2100)
    assert log_of(retried.answer) == [(1, GroupPost.APPLICATION, b"now")]


def test_a_held_watch_gets_the_commit_that_adds_a_member_never_its_welcome():
    h = Harness()
    g, _ = group_of(h, "alice", "bob", others=["carol"])
    held = watch(g, hold=30)
    g.commit(add=["carol"], now=T0 + 10)  # a commit (in the log) and a Welcome (not)
    [(_, answer)] = answered(h, T0 + 10).values()
    assert [e.post for e in answer.body["entries"]] == [GroupPost.COMMIT]
    assert answer.in_reply_to == held.request_id


def test_a_retry_while_held_is_answered_through_the_latest_route_other_bytes_are_a_replay():
    h = Harness()
    g, _ = group_of(h, "alice")
    first = watch(g, hold=30)
    retry = send(h, first.data, first.request_id, os.urandom(18), T0 + 50)
    assert retry.answer is None and len(h.real.groups.watches) == 1
    body = {"group_id": g.id, "epoch": 1, "access_key": g.keys[1], "after": 5, "hold": 30}
    other, _ = wire.encode_anonymous_request(Kind.GROUP_WATCH, body, T0, first.request_id)
    replay = send(h, other, first.request_id, os.urandom(18), T0 + 60)
    assert replay.answer.body["code"] == ErrorCode.REPLAYED
    g.post(now=T0 + 70)
    [(route, _)] = answered(h, T0 + 70).values()
    assert route == retry.route  # the latest; the first route's is dropped


def test_a_held_watch_whose_retry_was_answered_at_once_is_dropped_not_answered_twice():
    h = Harness()
    g, _ = group_of(h, "alice")
    first = watch(g, hold=30)
    g.post(payload=b"news", now=T0 + 10)  # due, not yet answered
    retry = send(h, first.data, first.request_id, os.urandom(18), T0 + 20)
    assert log_of(retry.answer) == [(1, GroupPost.APPLICATION, b"news")]
    assert answered(h, T0 + 30) == {} and len(h.real.groups.watches) == 0


def test_watches_due_when_the_database_fails_are_answered_the_next_time():
    h = Harness()
    g, _ = group_of(h, "alice")
    held = watch(g, hold=30)
    g.post(now=T0 + 10)
    answer_held = h.real.groups._answer_held

    async def failing(*args):
        raise StoreUnavailable()

    h.real.groups._answer_held = failing
    with pytest.raises(StoreUnavailable):
        answered(h, T0 + 10)
    h.real.groups._answer_held = answer_held
    assert list(answered(h, T0 + 20)) == [held.request_id]  # still due, not left to time out


def test_watches_held_per_route_and_in_all_are_bounded_beyond_answered_at_once():
    h = Harness()
    g, _ = group_of(h, "alice")
    route = os.urandom(18)
    assert all(watch(g, hold=30, route=route).answer is None for _ in range(16))
    over = watch(g, hold=30, route=route).answer
    assert over is not None and over.body == {"entries": (), "last": 0, "oldest": 1}
    assert watch(g, hold=30).answer is None  # another route still may
    h.real.groups.watches.most = 17
    assert watch(g, hold=30).answer.kind is Kind.GROUP_ENTRIES  # the node's bound
    assert len(h.real.groups.watches) == 17
    g.post(now=T0 + 5)
    assert len(answered(h, T0 + 5)) == 17


def test_a_post_committed_while_a_watch_batch_runs_makes_that_watch_due():
    watches = Watches()
    woken = []
    watches.on_change = lambda: woken.append(1)
    held = Held(b"r" * 16, b"d" * 32, b"t" * 18, b"g" * 32, 0, T0 + 30_000)
    watches.begin()
    watches.posted(b"g" * 32)  # another process's, told before the batch committed
    watches.held([held])
    assert watches.take(T0) == [held] and woken
    watches.begin()
    watches.posted(b"g" * 32)
    watches.held([])  # a batch that held nothing forgets what it saw: the next one read
    watches.begin()  # after that post
    watches.held([held])
    assert watches.take(T0) == [] and watches.take(T0 + 30_000) == [held]


# --- retention -------------------------------------------------------------------------


def test_a_watched_group_keeps_acked_entries_and_drops_the_oldest_past_its_cap():
    h = Harness(queue_max_messages=3)
    g, p = group_of(h, "alice", "bob")
    welcome = h.sqlite.execute("SELECT message_id FROM group_entries").fetchone()[0]
    watch(g)
    for name in ("alice", "bob"):
        ack(h, p, name, welcome)
    assert h.store.groups.count_entries(g.id) == 0  # a Welcome is never kept for watchers
    ids = [os.urandom(16) for _ in range(4)]
    assert [g.post(message_id=m)[0].kind for m in ids[:3]] == [Kind.POSTED] * 3
    full, _ = g.post(message_id=ids[3])
    assert full.body["code"] == ErrorCode.QUEUE_FULL  # every entry still has a delivery
    for name in ("alice", "bob"):
        ack(h, p, name, *ids[:2])
    assert h.store.groups.count_entries(g.id) == 3  # kept for the watchers
    h.service.maintain(T0 + 1)
    assert h.store.groups.count_entries(g.id) == 3
    assert g.post(message_id=ids[3])[0].kind is Kind.POSTED  # the oldest acked one goes
    got = watch(g).answer
    assert [e.position for e in got.body["entries"]] == [2, 3, 4]
    assert got.body["oldest"] == 2  # after + 1 < oldest: a watcher at 0 missed one
    assert h.store.queued_bytes() == 3


def test_an_unwatched_group_drops_acked_entries_and_refuses_past_its_cap_as_before():
    h = Harness(queue_max_messages=3)
    g, p = group_of(h, "alice")
    ids = [os.urandom(16) for _ in range(3)]
    assert [g.post(message_id=m)[0].kind for m in ids] == [Kind.POSTED, Kind.POSTED, Kind.ERROR]
    ack(h, p, "alice", *ids[:2])
    assert h.store.groups.count_entries(g.id) == 1  # the Welcome, still waiting
    assert h.sqlite.execute("SELECT watched_until FROM groups").fetchall() == [(0,)]


def test_a_watched_groups_entries_go_with_the_retention_and_an_emptied_group_with_the_watch():
    h = Harness(retention_ms=10_000)
    g, p = group_of(h, "alice")
    watch(g)
    message = os.urandom(16)
    g.post(message_id=message)
    ack(h, p, "alice", message)
    who, home = p.who["alice"]
    h.answer(who, home, Kind.LEAVE_GROUP, T0 + 1, group_id=g.id)
    assert h.store.groups.group(g.id) is not None  # its watchers still read it
    assert h.service.maintain(T0 + 5_000)[0] == 0
    assert h.store.groups.count_entries(g.id) == 1
    h.service.maintain(T0 + 10_001)
    assert h.store.groups.count_entries(g.id) == 0
    assert h.store.groups.group(g.id) is None


# --- a real node -----------------------------------------------------------------------


def test_a_watch_held_by_a_node_process_is_answered_as_soon_as_a_post_lands(
    start_mixnet, start_node
):
    mixnet = start_mixnet()
    port = free_port()
    net = mixnet, start_node(mixnet, "--metrics", f"127.0.0.1:{port}")

    def metric(line: str) -> str:
        [value] = [
            x.rsplit(" ", 1)[1]
            for x in get(port, "/metrics")[1].splitlines()
            if x.startswith(line + " ")
        ]
        return value

    async def main():
        keys = {"alice": os.urandom(32)}
        async with (
            client(net, "alice") as alice,
            anonymous(net, "poster") as poster,
            anonymous(net, "watcher") as watcher,
        ):
            await alice.register("alice")
            verifier = wire.access_verifier(keys["alice"])
            await alice.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=16)
            group_id, epoch_keys = os.urandom(32), [os.urandom(32), os.urandom(32)]

            def post(kind, epoch, payload, **commit):
                body = {"next_verifier": None, "add": (), "remove": (), "welcome": None}
                return poster.request(
                    Kind.GROUP_POST,
                    group_id=group_id,
                    epoch=epoch,
                    message_id=os.urandom(16),
                    post=kind,
                    access_key=epoch_keys[epoch],
                    payload=payload,
                    **{**body, **commit},
                )

            created = await post(
                GroupPost.COMMIT,
                0,
                b"commit",
                next_verifier=wire.access_verifier(epoch_keys[1]),
                add=(wire.NewMember("alice", keys["alice"], 0),),
                welcome=b"welcome",
            )
            assert created.kind is Kind.POSTED
            await post(GroupPost.APPLICATION, 1, b"first")

            def watching(after: int, hold: int):
                return watcher.request(
                    Kind.GROUP_WATCH,
                    timeout=hold + 10,
                    group_id=group_id,
                    epoch=1,
                    access_key=epoch_keys[1],
                    after=after,
                    hold=hold,
                )

            first = await watching(0, 20)
            assert log_of(first) == [(1, GroupPost.APPLICATION, b"first")]
            held = asyncio.ensure_future(watching(1, 20))
            await asyncio.sleep(1.0)
            assert not held.done()
            assert metric("nymchat_node_group_watches_held") == "1"
            assert metric('nymchat_node_requests_total{kind="group_watch",result="held"}') == "1"
            sent = time.monotonic()
            posted = await post(GroupPost.APPLICATION, 1, b"second")
            accepted = time.monotonic()
            answer = await held
            got = time.monotonic()
            assert posted.kind is Kind.POSTED
            assert log_of(answer) == [(2, GroupPost.APPLICATION, b"second")]
            print(
                f"\npost sent -> held watch answered: {(got - sent) * 1000:.1f} ms"
                f" (post answered after {(accepted - sent) * 1000:.1f} ms)"
            )
            start = time.monotonic()
            empty = await watching(2, 1)
            waited = time.monotonic() - start
            assert empty.body["entries"] == () and empty.body["last"] == 2
            print(f"a 1 s hold with nothing new answered empty after {waited:.2f} s")
            assert waited >= 1.0
            assert metric("nymchat_node_group_watches_held") == "0"

    run(main())


# --- several node processes on one PostgreSQL ---------------------------------------------


def test_a_post_by_one_node_process_answers_a_watch_held_by_another(pg_url):
    """Two services (node processes) on one database: a watch held by `a` is answered as
    soon as `b` commits a post to its group, told through the database."""
    node = _native.Identity.generate()
    config = NodeConfig(pow_difficulty=0)

    async def go():
        names = name_key(node.secret_bytes())
        a = NodeService(node, await open_store(pg_url, names), config, frozenset({1}))
        b = NodeService(node, await open_store(pg_url, names), config, frozenset({2}))
        changed = asyncio.Event()
        a.groups.watches.on_change = changed.set

        async def listen():
            async for woken in a.store.woken():
                if isinstance(woken, bytes):
                    a.groups.watches.posted(woken)

        listener = asyncio.ensure_future(listen())
        try:
            group_id, key = os.urandom(32), os.urandom(32)
            await b.store.groups.create(group_id, wire.access_verifier(key), T0)
            body = {"group_id": group_id, "epoch": 0, "access_key": key, "after": 0, "hold": 30}
            data, request_id = wire.encode_anonymous_request(Kind.GROUP_WATCH, body, T0)
            assert await a.handle_batch([(data, b"\x00\x01" + os.urandom(16))], T0) == []
            assert len(a.groups.watches) == 1
            await asyncio.sleep(0.3)  # a listens
            changed.clear()
            post = {
                "group_id": group_id,
                "epoch": 0,
                "message_id": os.urandom(16),
                "post": GroupPost.APPLICATION,
                "access_key": key,
                "next_verifier": None,
                "add": (),
                "remove": (),
                "welcome": None,
                "payload": b"from b",
            }
            posting, _ = wire.encode_anonymous_request(Kind.GROUP_POST, post, T0)
            start = time.monotonic()
            await b.handle_batch([(posting, b"\x00\x02" + os.urandom(16))], T0)
            await asyncio.wait_for(changed.wait(), 5)
            [out] = await a.groups.answer_watches(T0 + 1)
            took = (time.monotonic() - start) * 1000
            print(f"\nanother process's post -> watch answered: {took:.1f} ms")
            answer = wire.decode_answer(
                out.message, _native.PublicKey(node.signing_public), wire.ANONYMOUS
            )
            assert answer.in_reply_to == request_id
            assert log_of(answer) == [(1, GroupPost.APPLICATION, b"from b")]
        finally:
            listener.cancel()
            await a.store.close()
            await b.store.close()

    run(go())


def test_posts_committed_at_once_by_two_processes_take_distinct_positions_in_commit_order(pg_url):
    """The position is the group's counter, taken with its row held until the commit: the
    posts of two processes never take one twice nor leave a gap (so a watcher that read
    position N never later finds a new entry below it)."""
    per_store = 8

    async def poster(store, group_id: bytes, n: int) -> None:
        for m in range(per_store):
            async with store.transaction():
                await store.groups.post(
                    group_id, 0, GroupPost.APPLICATION, bytes([n, m]) * 8, b"x", T0, [], True
                )
                await asyncio.sleep(0.001)  # the other waits for this row meanwhile

    async def go():
        names = bytes(32)
        a, b = await open_store(pg_url, names), await open_store(pg_url, names)
        try:
            group_id = os.urandom(32)
            await a.groups.create(group_id, b"v" * 32, T0)
            await asyncio.gather(poster(a, group_id, 0), poster(b, group_id, 1))
            entries = await a.groups.entries_after(group_id, 0, 1 << 20, 45, 256)
            assert [e.position for e in entries] == list(range(1, 2 * per_store + 1))
            assert {e.message_id[:2] for e in entries} == {
                bytes([n, m]) for n in (0, 1) for m in range(per_store)
            }
            group = await a.groups.group(group_id)
            assert group is not None and group.position == 2 * per_store
        finally:
            await a.close()
            await b.close()

    run(go())


# --- the schema ------------------------------------------------------------------------


def test_a_schema_8_database_numbers_its_kept_entries_per_group_and_watches_none(tmp_path):
    path = tmp_path / "node.db"
    old = sqlite_at_schema(path, 8)
    old.execute(
        "INSERT INTO groups (group_id, epoch, last_commit, created) VALUES (?, 1, ?, ?)",
        (b"g" * 32, b"c" * 16, T0),
    )
    for seq, post in ((3, GroupPost.COMMIT), (5, GroupPost.WELCOME), (9, GroupPost.APPLICATION)):
        old.execute(
            "INSERT INTO group_entries (seq, group_id, epoch, post, message_id, received,"
            " payload) VALUES (?, ?, 1, ?, ?, ?, x'00')",
            (seq, b"g" * 32, post, bytes([seq]) * 16, T0),
        )
    old.execute("PRAGMA user_version = 8")
    old.commit()
    old.close()
    h = Harness(path)
    assert h.store.schema_version() == newest_schema("nymchat.node")
    g = Group(h, People(h, "alice"))
    g.id = b"g" * 32
    assert h.store.groups.group(g.id).watched_until == 0
    g.keys = [os.urandom(32), os.urandom(32)]
    h.sqlite.execute(
        "INSERT INTO group_verifiers VALUES (?, 1, ?)", (g.id, wire.access_verifier(g.keys[1]))
    )
    got = watch(g).answer
    assert [(e.position, e.post) for e in got.body["entries"]] == [
        (3, GroupPost.COMMIT),
        (9, GroupPost.APPLICATION),
    ]
    assert (got.body["last"], got.body["oldest"]) == (9, 3)
    assert g.post(now=T0 + 1)[0].kind is Kind.POSTED
    assert [e.position for e in watch(g, after=9).answer.body["entries"]] == [10]


def test_a_postgresql_database_of_schema_2_numbers_its_kept_entries_per_group(pg_url):
    async def go():
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            assert await migrate(conn, migrations()[:2]) == 2
            await conn.execute(
                "INSERT INTO groups (group_id, epoch, last_commit, created)"
                " VALUES ('\\x01', 1, '\\x02', 0)"
            )
            for post in (GroupPost.COMMIT, GroupPost.WELCOME, GroupPost.APPLICATION):
                await conn.execute(
                    "INSERT INTO group_entries (group_id, epoch, post, message_id, received,"
                    " payload) VALUES ('\\x01', 1, %s, %s, 0, '\\x00')",
                    (post, bytes([post]) * 16),
                )
        db = await PostgresDatabase.connect(pg_url)
        try:
            rows = await db.fetchall("SELECT seq, post, position FROM group_entries ORDER BY seq")
            assert [(post, position) for _, post, position in rows] == [
                (GroupPost.COMMIT, rows[0][0]),
                (GroupPost.WELCOME, 0),
                (GroupPost.APPLICATION, rows[2][0]),
            ]
            assert await db.fetchone("SELECT position, watched_until FROM groups") == (
                rows[2][0],
                0,
            )
        finally:
            await db.close()

    run(go())
