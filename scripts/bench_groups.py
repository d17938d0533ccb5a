"""The `groups` suite of scripts/bench.py: MLS groups of 10, 100 and 1,000 members, their
sender's cost, the node's fan-out, and how long until every member has the message.

Everything runs in one process, with no transport between the parts (the mixnet at zero
delay adds its hops on top): each member is an `MlsMember` with its own group state, the
node is a `NodeService` on a database in a temporary directory with the members
registered, and a message goes sender → `GROUP_POST` → the node's pushes → each member's
check of the push's signature and its MLS decryption. Members decrypt on their own
devices, in parallel: "all received" is the node's time to have every push out plus the
slowest member's own time to open it."""

import asyncio
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

SIZES = (10, 100, 1000)
MESSAGES = 30  # per group size
ADD_ROUNDS = 7
SEND_ROUNDS, SEND_PER_ROUND = 7, 200
TEXT = b"x" * 100


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _await(coroutine):
    """One of the node's coroutines run to its end (nothing else runs meanwhile)."""
    return _loop().run_until_complete(coroutine)


def _group(size: int):
    """`size` members in one group made by the first: each member's group, creator first."""
    from nymchat import _native

    members = [_native.MlsMember.generate(_native.Identity.generate()) for _ in range(size)]
    creator = members[0].create_group(os.urandom(32), b"")
    packages = [m.key_packages(1)[0] for m in members[1:]]
    _, welcome, _ = creator.commit(packages, [], None)
    creator.apply_pending()
    assert welcome is not None
    return [creator] + [m.join(welcome) for m in members[1:]]


def _node(tmp: Path, size: int):
    """A node service with `size` users registered straight into its database, each with a
    route (so the node pushes to them) and strangers let in free."""
    from nodeclient import one_time_key

    from nymchat import _native
    from nymchat.database import transaction
    from nymchat.node.registration import name_key
    from nymchat.node.service import NodeConfig, NodeService
    from nymchat.node.sqlite import SqliteDatabase
    from nymchat.node.store import open_sqlite
    from nymchat.protocol import wire

    node = _native.Identity.generate()
    store = open_sqlite(tmp / f"node-{size}.db", name_key(node.secret_bytes()))
    users = [_native.Identity.generate() for _ in range(size)]
    fallback = wire.encode_record(wire.ONE_TIME_KEY, one_time_key(node, 1, "fallback-key"))
    rows = [
        (
            store.names.name(f"member{n:04d}"),
            store.names.skeleton(f"member{n:04d}"),
            who.signing_public,
            bytes(32),
            bytes(32),
            bytes(64),
            fallback,
            0,
            os.urandom(18),
            0,
        )
        for n, who in enumerate(users)
    ]
    assert isinstance(store.db, SqliteDatabase)
    with transaction(store.db.connection):
        store.db.connection.executemany(
            "INSERT INTO users (name_hash, skeleton_hash, identity, agreement, account_key,"
            " account_signature, fallback, created, sender_tag, strangers)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    config = NodeConfig(sealed_sends_per_min=1e9, queue_max_messages=100_000)
    return NodeService(node, store, config), users


def _post(group, post, payload: bytes, now: int, **commit) -> tuple[bytes, bytes]:
    from nymchat.protocol import wire
    from nymchat.protocol.wire import Kind

    message_id = os.urandom(16)
    body = {
        "group_id": group.group_id,
        "epoch": group.epoch,
        "message_id": message_id,
        "post": post,
        "access_key": group.access_key(),
        "next_verifier": None,
        "add": (),
        "remove": (),
        "welcome": None,
        "payload": payload,
        **commit,
    }
    return wire.encode_anonymous_request(Kind.GROUP_POST, body, now)[0], message_id


def _create_at_node(service, group, size: int, now: int) -> None:
    """The group as the node knows it: created by a commit at epoch 0 (their MLS side is
    already made; the node sees opaque bytes) that adds the members one commit may name;
    the others are written straight into its database, as further commits would."""
    from nymchat.database import transaction
    from nymchat.protocol import wire
    from nymchat.protocol.wire import GroupPost, Kind

    names = [f"member{n:04d}" for n in range(size)]
    add = tuple(wire.NewMember(name, None, 0) for name in names[: wire.MAX_LIST])
    body = {
        "group_id": group.group_id,
        "epoch": 0,
        "message_id": os.urandom(16),
        "post": GroupPost.COMMIT,
        "access_key": os.urandom(32),
        "next_verifier": wire.access_verifier(group.access_key()),
        "add": add,
        "remove": (),
        "welcome": None,
        "payload": b"commit",
    }
    data = wire.encode_anonymous_request(Kind.GROUP_POST, body, now)[0]
    [answer] = [o for o in _await(service.handle_batch([(data, os.urandom(18))], now))]
    db = service.store.db.connection
    with transaction(db):
        db.executemany(
            "INSERT INTO group_members (group_id, name_hash) VALUES (?, ?)",
            [(group.group_id, service.store.names.name(name)) for name in names[wire.MAX_LIST :]],
        )
        # The creating commit's copies wait unacknowledged: gone, as if acknowledged.
        db.execute("DELETE FROM group_deliveries")
    epoch = _await(service.store.groups.group(group.group_id)).epoch
    if epoch != group.epoch:  # the node moved to epoch 1 as the MLS group did
        raise RuntimeError(f"the node is at epoch {epoch}, the group at {group.epoch}")
    assert answer is not None


def _measure(size: int, tmp: Path) -> dict:
    from nymchat import _native
    from nymchat.database import transaction
    from nymchat.protocol import wire
    from nymchat.protocol.wire import GroupPost

    groups = _group(size)
    service, users = _node(tmp, size)
    node_key = _native.PublicKey(service.identity.signing_public)
    now = int(time.time() * 1000)
    _create_at_node(service, groups[0], size, now)
    sender, receivers = groups[0], groups[1:]
    send_cpu, all_received, node_seconds, deliveries = [], [], 0.0, 0
    by_tag = {}
    for n, who in enumerate(users):
        tag = service.store.db.connection.execute(
            "SELECT sender_tag FROM users WHERE identity = ?", (who.signing_public,)
        ).fetchone()[0]
        by_tag[tag] = (n, who)
    for _ in range(MESSAGES):
        data, _ = _post(sender, GroupPost.APPLICATION, sender.encrypt(TEXT), now)
        started = time.perf_counter()
        out = _await(service.handle_batch([(data, os.urandom(18))], now))
        node_s = time.perf_counter() - started
        node_seconds += node_s
        pushes = [o for o in out if o.tag in by_tag]
        deliveries += len(pushes)
        slowest = 0.0
        for push in pushes:
            n, who = by_tag[push.tag]
            if n == 0:
                continue  # the sender's own copy: dropped by its id, never opened
            started = time.perf_counter()
            answer = wire.decode_answer(push.message, node_key, who.signing_public)
            processed = receivers[n - 1].process(answer.body["payload"])
            slowest = max(slowest, time.perf_counter() - started)
            assert processed.plaintext == TEXT
        all_received.append((node_s + slowest) * 1000)
        with transaction(service.store.db.connection):  # as if every member acknowledged it
            service.store.db.connection.execute("DELETE FROM group_deliveries")
    all_received.sort()
    _await(service.store.close())
    state_ms = []
    member = receivers[-1] if receivers else sender
    for _ in range(ADD_ROUNDS):  # what a member then writes (sealed) to keep its group
        started = time.perf_counter()
        member.state()
        state_ms.append((time.perf_counter() - started) * 1000)
    for _ in range(SEND_ROUNDS):  # the sender alone, once the members are done
        started = time.process_time()
        for _ in range(SEND_PER_ROUND):
            _post(sender, GroupPost.APPLICATION, sender.encrypt(TEXT), now)
        send_cpu.append((time.process_time() - started) * 1000 / SEND_PER_ROUND)
    return {
        "send_cpu_ms": round(statistics.median(send_cpu), 3),
        "all_received_p50_ms": round(all_received[len(all_received) // 2], 2),
        "all_received_p99_ms": round(all_received[int(len(all_received) * 0.99)], 2),
        "deliveries_per_s": round(deliveries / node_seconds),
        "state_ms": round(statistics.median(state_ms), 2),
        "groups": groups,
    }


def _add_one(groups) -> float:
    """Milliseconds to make the commit (and its Welcome) that adds one member."""
    from nymchat import _native

    creator = groups[0]
    times = []
    for _ in range(ADD_ROUNDS):
        newcomer = _native.MlsMember.generate(_native.Identity.generate())
        package = newcomer.key_packages(1)[0]
        started = time.perf_counter()
        creator.commit([package], [], None)
        times.append((time.perf_counter() - started) * 1000)
        creator.clear_pending()
    return round(statistics.median(times), 2)


def groups_suite() -> dict:
    results: dict = {
        "group_send_cpu_ms": {},
        "group_all_received_p50_ms": {},
        "group_all_received_p99_ms": {},
        "group_state_ms": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            measured = _measure(size, Path(tmp))
            key = str(size)
            results["group_send_cpu_ms"][key] = measured["send_cpu_ms"]
            results["group_all_received_p50_ms"][key] = measured["all_received_p50_ms"]
            results["group_all_received_p99_ms"][key] = measured["all_received_p99_ms"]
            results["group_state_ms"][key] = measured["state_ms"]
            if size == max(SIZES):
                results["fanout_deliveries_per_s"] = measured["deliveries_per_s"]
                results["add_member_1000_ms"] = _add_one(measured["groups"])
    return results


def groups_markdown(r: dict, met) -> str:
    send = r["group_send_cpu_ms"]
    sizes = list(send)
    flat = max(send.values()) <= 2 * min(send.values())

    def row(figure: str, values: dict, unit: str, target: str = "", verdict: str = "") -> str:
        cells = " | ".join(f"{values[size]} {unit}" for size in sizes)
        return f"| {figure} | {cells} | {target} | {verdict} |"

    rows = [
        "MLS groups (RFC 9420, `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`) of "
        f"{', '.join(f'{int(size):,}' for size in sizes)} members, {MESSAGES} messages of "
        "100 B each, in one process with no transport: the sender encrypts and encodes its "
        "`group_post`; the node (a `NodeService` on SQLite, every member registered) checks "
        "the group's access key, stores the ciphertext once and signs one `group_deliver` "
        "push per member; each member checks its push's signature and decrypts. Members "
        "open on their own devices, in parallel: *all received* is the node's time to have "
        "every push out plus the slowest member's own time; each member then writes its "
        "group state out, to seal it into its profile with the message (the last row). "
        "The sender's CPU is the median "
        f"of {SEND_ROUNDS} rounds of {SEND_PER_ROUND} messages. The add is the commit (and "
        "Welcome) that adds one member to the largest group, freshly made (an add carries "
        "no path: docs/PROTOCOL.md).",
        "",
        f"| figure | {' | '.join(f'{int(size):,}' for size in sizes)} | target | |",
        f"|---|{'---:|' * len(sizes)}---:|---|",
        row("sender's CPU per message", send, "ms", "independent of size", met(flat)),
        row("all received, p50", r["group_all_received_p50_ms"], "ms"),
        row("all received, p99", r["group_all_received_p99_ms"], "ms"),
        row("a member's group state, written out", r["group_state_ms"], "ms"),
        "",
        "| figure | measured | target | |",
        "|---|---:|---:|---|",
        f"| node fan-out, {int(sizes[-1]):,} members | {r['fanout_deliveries_per_s']} "
        f"deliveries/s | ≥ 20,000 | {met(r['fanout_deliveries_per_s'] >= 20_000)} |",
        f"| add one member to {int(sizes[-1]):,} (commit) | {r['add_member_1000_ms']} ms "
        f"| ≤ 50 ms | {met(r['add_member_1000_ms'] <= 50)} |",
    ]
    return "\n".join(rows)
