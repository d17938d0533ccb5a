#!/usr/bin/env python3
"""nymchat benchmarks: figures measured in one run on one machine, written to
docs/BENCHMARKS.md (each suite rewrites only its own section).

    scripts/bench.py crypto|mixnet|node|e2e|flood|sealed|groups [--json] [--no-write]
    scripts/bench.py all

`crypto` compares the Rust core (`nymchat._native`) with the reference implementation in
plain Python (`tests/reference_crypto.py`, on `cryptography`) doing the same work.
`mixnet` runs the built `dist/nymchat mixnet --delay zero` and measures, through nymchat's
transport, the throughput and latency between two of its virtual clients. `node` runs
`dist/nymchat node` on it: relay throughput and CPU, lookups among 1,000,000 users, RSS,
on SQLite and on PostgreSQL (a throwaway cluster, or $NYMCHAT_TEST_POSTGRES's server), and
two node processes on one PostgreSQL.
`flood` floods that node with signed requests from one sender tag and measures what a
normal user's lookups take meanwhile (docs/SECURITY.md, "under a flood"). `sealed`
measures sealed sending against identified sending, and a node's throughput on the
paced mixnet with 1, 2 and 4 frontends. `groups` measures MLS groups of 10, 100 and
1,000 members: the sender's cost, the node's fan-out, the time until every member has a
message, and adding one member (scripts/bench_groups.py).
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]
REPORT = ROOT / "docs" / "BENCHMARKS.md"


def per_op_us(fn: Callable[[], object], *, rounds: int = 7, min_round_s: float = 0.15) -> float:
    """Median over rounds of the mean time of one call, in microseconds. Each round runs
    enough calls to last `min_round_s`, with the garbage collector off."""
    fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_round_s / 4:
            break
        calls *= 2
    calls = max(1, int(calls * 4 * min_round_s / max(min_round_s, time.perf_counter() - start)))
    samples = []
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            samples.append((time.perf_counter_ns() - start) / calls / 1000)
    finally:
        gc.enable()
    return statistics.median(samples)


def crypto_suite() -> dict:
    import reference_crypto as ref

    from nymchat import _native

    message = os.urandom(256)
    label = "bench"

    seed, x_secret = os.urandom(32), os.urandom(32)
    rust_id = _native.Identity.from_secret_bytes(seed + x_secret)
    ref_id = ref.RefIdentity(seed, x_secret)
    signature = rust_id.sign(label, message)
    rust_key = _native.PublicKey(rust_id.signing_public)
    ref_key = ref.RefPublicKey(rust_id.signing_public)

    batch_ids = [_native.Identity.generate() for _ in range(64)]
    batch_msgs = [os.urandom(256) for _ in range(64)]
    rust_items = [
        (_native.PublicKey(i.signing_public), label, m, i.sign(label, m))
        for i, m in zip(batch_ids, batch_msgs, strict=True)
    ]
    ref_items = [(ref.RefPublicKey(k.to_bytes()), label, m, s) for k, label, m, s in rust_items]

    def ref_batch():
        for key, lab, msg, sig in ref_items:
            key.verify(lab, msg, sig)

    recipient_seed, recipient_x = os.urandom(32), os.urandom(32)
    rust_recipient = _native.Identity.from_secret_bytes(recipient_seed + recipient_x)
    ref_recipient = ref.RefIdentity(recipient_seed, recipient_x)
    recipient_public = rust_recipient.agreement_public
    message_id = os.urandom(16)

    def rust_envelope():
        sealed = _native.seal_envelope(rust_id, recipient_public, "bench", message_id, message)
        _native.open_envelope(rust_recipient, "bench", sealed)

    def ref_envelope():
        sealed = ref.seal_with(ref_id, recipient_public, "bench", message_id, message)
        ref.open_with(ref_recipient, "bench", sealed)

    mib = os.urandom(1 << 20)

    def rust_framing():
        reassembler = _native.Reassembler()
        for frame in _native.encode_frames(mib, message_id):
            reassembler.push(frame, 0.0)

    def ref_framing():
        ref.reassemble(ref.encode_frames(mib, message_id))

    assert _native.verify_batch(rust_items) == [True] * 64
    cases = {
        "verify": (
            lambda: rust_key.verify(label, message, signature),
            lambda: ref_key.verify(label, message, signature),
            "Ed25519 verify of a 256 B message, key loaded once",
            2.0,
        ),
        "verify_batch64": (
            lambda: _native.verify_batch(rust_items),
            ref_batch,
            "64 signatures (256 B each); Rust: one batch equation, Python: 64 verifies",
            3.0,
        ),
        "envelope": (
            rust_envelope,
            ref_envelope,
            "seal + open of a 256 B message (2 X25519, sign, verify, HKDF, GCM)",
            1.5,
        ),
        "framing_1mib": (
            rust_framing,
            ref_framing,
            "split 1 MiB into 1600 B frames and reassemble them",
            10.0,
        ),
    }
    results = {}
    for name, (rust_fn, ref_fn, what, target) in cases.items():
        rust_us, python_us = per_op_us(rust_fn), per_op_us(ref_fn)
        results[name] = {
            "rust_us": round(rust_us, 2),
            "python_us": round(python_us, 2),
            "ratio": round(python_us / rust_us, 2),
            "target": target,
            "what": what,
        }
    return results


MIXNET_SIZES = {"100B": (100, 20_000), "10KB": (10_000, 3_000)}  # size, messages


def mixnet_suite() -> dict:
    import asyncio
    import tempfile

    from procs import MixnetProcess

    from nymchat.nym.transport import NymClient

    async def measure(url: str, size: int, count: int) -> dict:
        async with NymClient(f"{url}/bench-a") as a, NymClient(f"{url}/bench-b") as b:
            inbox = aiter(b)
            to = b.address
            assert to is not None  # learnt when the client started
            payload = bytes(size)
            # throughput: send as fast as the transport takes them, count what arrives
            start = time.perf_counter()

            async def receive_all():
                for _ in range(count):
                    await anext(inbox)
                return time.perf_counter()

            receiver = asyncio.create_task(receive_all())
            for _ in range(count):
                await a.send(to, payload)
            end = await receiver
            # latency: one message at a time, send to receive on one clock
            latencies = []
            for _ in range(min(count, 2000)):
                sent = time.perf_counter()
                await a.send(to, payload)
                await anext(inbox)
                latencies.append((time.perf_counter() - sent) * 1000)
        latencies.sort()
        return {
            "msgs_per_s": round(count / (end - start)),
            "p50_ms": round(latencies[len(latencies) // 2], 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)], 3),
            "messages": count,
        }

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        mixnet = MixnetProcess(Path(tmp) / "state", Path(tmp) / "shiv", delay="zero")
        started.callback(mixnet.stop)
        return {
            name: asyncio.run(measure(mixnet.url, size, count))
            for name, (size, count) in MIXNET_SIZES.items()
        }


def mixnet_markdown(results: dict) -> str:
    rows = [
        "Two virtual clients of one `dist/nymchat mixnet --delay zero` process, each "
        "reached through nymchat's transport (`nymchat/nym/transport.py`, Binary mode) "
        "from one benchmark process: throughput = N plain `send`s as fast as they go, "
        "latency = 2,000 sends one at a time, send to receive. Targets (100 B): "
        "≥ 5,000 messages/s, p50 ≤ 2 ms.",
        "",
        "| message | messages | msgs/s | p50 ms | p99 ms | target met? |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        if name == "100B":
            met = _met(r["msgs_per_s"] >= 5000 and r["p50_ms"] <= 2)
        else:
            met = "(no target)"
        rows.append(
            f"| {name} | {r['messages']} | {r['msgs_per_s']} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {met} |"
        )
    return "\n".join(rows)


NODE_RELAY_MESSAGES = 3000
NODE_USERS = 1_000_000
NODE_QUEUED = 100_000
NODE_LOOKUPS = 2000
UNLIMITED = [
    "--requests-per-s",
    "1e9",
    "--request-burst",
    "1e9",
    "--lookups-per-min",
    "1e9",
    "--sealed-sends-per-min",
    "1e9",
    "--queue-stranger-share",
    "1",
]


def _met(ok: bool) -> str:
    """The verdict column of the tables."""
    return "met" if ok else "**not met**"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (the state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User+system CPU of process `pid` (and of its children it has waited for, if
    `reaped`)."""
    fields = _stat(pid)
    ticks = sum(int(fields[n]) for n in ((11, 12, 13, 14) if reaped else (11, 12)))
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rows(names, users: int, queued: int):
    """What `_populate` writes: the rows of `users` users (as registration would write
    them) and `queued` messages of 300 bytes for random ones, as (recipient, message id,
    payload)."""
    from nodeclient import one_time_key

    from nymchat import _native
    from nymchat.protocol import wire

    someone = _native.Identity.generate()
    fallback = wire.encode_record(wire.ONE_TIME_KEY, one_time_key(someone, 1, "fallback-key"))
    signature = someone.sign("account-key", bytes(32))
    user_rows = (
        (
            names.name(f"user{n:07d}"),
            names.skeleton(f"user{n:07d}"),
            n.to_bytes(32, "big"),
            bytes(32),
            bytes(32),
            signature,
            fallback,
            0,
        )
        for n in range(users)
    )
    rng = random.Random(2)
    queue_rows = (
        (names.name(f"user{rng.randrange(users):07d}"), n.to_bytes(16, "big"), os.urandom(300))
        for n in range(queued)
    )
    return user_rows, queue_rows


USER_COLUMNS = (
    "name_hash, skeleton_hash, identity, agreement, account_key, account_signature, fallback,"
    " created"
)


def _populate(data: Path, node_secret: bytes, users: int, queued: int) -> None:
    """Registers `users` users straight into the SQLite database of the node of
    `node_secret` and queues `queued` messages for random ones (`_rows`)."""
    from itertools import islice

    from nymchat.node.registration import name_key
    from nymchat.node.store import open_sqlite

    store = open_sqlite(data / "node.db", name_key(node_secret))
    user_rows, queue_rows = _rows(store.names, users, queued)

    async def fill() -> None:
        while batch := list(islice(user_rows, 50_000)):
            async with store.transaction():
                await store.db.executemany(
                    f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch
                )
        now = int(time.time() * 1000)
        rows = [(r, m, now, p, len(p), now) for r, m, p in queue_rows]
        async with store.transaction():
            await store.db.executemany(
                "INSERT INTO queue (recipient, message_id, received, payload, size, next_push)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            await store.db.execute(
                "INSERT INTO queue_totals (shard, bytes) VALUES (0, ?) ON CONFLICT (shard)"
                " DO UPDATE SET bytes = queue_totals.bytes + excluded.bytes",
                (sum(row[4] for row in rows),),
            )
        await store.close()

    asyncio.run(fill())


def _populate_pg(url: str, node_secret: bytes, users: int, queued: int) -> None:
    """`_populate` on the PostgreSQL database at `url`: its schema made by the node's
    store, the same rows written with COPY."""
    import psycopg

    from nymchat.node.registration import name_key
    from nymchat.node.store import NameHashes, open_store

    async def migrate() -> None:
        await (await open_store(url, name_key(node_secret))).close()

    asyncio.run(migrate())
    user_rows, queue_rows = _rows(NameHashes(name_key(node_secret)), users, queued)
    now, total = int(time.time() * 1000), 0
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY users ({USER_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea"] * 7 + ["int8"])
            for row in user_rows:
                copy.write_row(row)
        with cursor.copy(
            "COPY queue (recipient, message_id, received, payload, size, next_push, pushes,"
            " stranger) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["bytea", "bytea", "int8", "bytea", "int4", "int8", "int4", "int4"])
            for recipient, message_id, payload in queue_rows:
                copy.write_row((recipient, message_id, now, payload, len(payload), now, 0, 0))
                total += len(payload)
        cursor.execute("INSERT INTO queue_totals (shard, bytes) VALUES (0, %s)", (total,))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def relay_node_args(messages: int) -> list[str]:
    """What the relay measurement needs of a node: no rate limits, and room to queue every
    message it sends before their acknowledgements come back (on a fast machine the sender
    is done before the recipient's first acknowledgement)."""
    return ["--pow-difficulty", "0", *UNLIMITED, "--queue-max-messages", str(messages)]


async def relay(
    url: str,
    contact: str,
    clocks: dict[str, Callable[[], float]],
    messages: int = NODE_RELAY_MESSAGES,
    ack_batch: int = 100,
    routes: Sequence[tuple[int | None, int | None]] = ((None, None),),
) -> dict:
    """`messages` sealed sends of 100 B (each with the recipient's access key, as from a
    contact) with 200 in flight, each pushed to the recipient, who acknowledges in batches
    of `ack_batch`. A sender and a recipient per route (the sender's frontend, the
    recipient's home; None: the last frontend, any home), the messages split evenly among
    them. CPU per message of each of `clocks` (name: CPU seconds so far)."""
    import asyncio
    from contextlib import AsyncExitStack

    from nodeclient import Anonymous, Client

    from nymchat.protocol import wire
    from nymchat.protocol.wire import Kind

    share = messages // len(routes)
    async with AsyncExitStack() as stack:
        pairs = []
        for n, (frontend, home) in enumerate(routes):
            sender = Anonymous(f"{url}/bench-s{n}", contact, frontend)
            identity = None if home is None else _homed(contact, home)
            recipient = Client(f"{url}/bench-r{n}", contact, identity)
            pairs.append(
                (
                    await stack.enter_async_context(sender),
                    await stack.enter_async_context(recipient),
                    os.urandom(32),
                )
            )
            await recipient.register(f"bench-r{n}")
            await recipient.request(
                Kind.SET_ACCESS, access_verifier=wire.access_verifier(pairs[-1][2]), strangers=16
            )
        window = asyncio.Semaphore(200)

        async def send(n: int, m: int) -> None:
            sender, _, key = pairs[n]
            async with window:
                answer = await sender.seal(
                    f"bench-r{n}", bytes(100), access_key=key, message_id=m.to_bytes(16, "big")
                )
                assert answer.kind is Kind.ACCEPTED, answer

        before, start = {name: clock() for name, clock in clocks.items()}, time.perf_counter()
        await asyncio.gather(
            *(_receive(recipient, share, ack_batch) for _, recipient, _ in pairs),
            *(send(n, m) for m in range(share) for n in range(len(pairs))),
        )
        elapsed = time.perf_counter() - start
        used = {name: clock() - before[name] for name, clock in clocks.items()}
    sent = share * len(routes)
    return {
        "sealed_relay_msgs_per_s": round(sent / elapsed),
        **{f"{name}_cpu_us_per_msg": round(cpu / sent * 1e6) for name, cpu in used.items()},
    }


async def _receive(recipient, messages: int, ack_batch: int, timeout: float = 60) -> None:
    """Takes `messages` distinct deliveries at `recipient`, acknowledging them in batches."""
    import asyncio

    from nymchat.protocol.wire import Kind

    seen: set[bytes] = set()
    acks: list[bytes] = []
    pending: list[asyncio.Task] = []
    while len(seen) < messages:
        push = await recipient.push(timeout=timeout)
        if push.kind is Kind.DELIVER and push.body["message_id"] not in seen:
            seen.add(push.body["message_id"])
            acks.append(push.body["message_id"])
            if len(acks) == ack_batch or len(seen) == messages:
                pending.append(
                    asyncio.create_task(recipient.request(Kind.ACK, message_ids=tuple(acks)))
                )
                acks = []
    await asyncio.gather(*pending)


NYM_FRONTENDS = (1, 2, 4)
NYM_PAIRS_PER_FRONTEND = 2  # senders, and recipients, per frontend
NYM_MESSAGES_PER_FRONTEND = 240


def _homed(contact: str, frontend_id: int):
    """An identity whose home frontend (rendezvous hash) is `frontend_id`."""
    from nymchat import _native
    from nymchat.client.frontends import rendezvous
    from nymchat.protocol.contact import NodeContact
    from nymchat.protocol.wire import Frontend

    listed = tuple(
        Frontend(n, str(a)) for n, a in enumerate(NodeContact.parse(contact).addresses, 1)
    )
    while True:
        identity = _native.Identity.generate()
        if rendezvous(identity.signing_public, listed)[0].id == frontend_id:
            return identity


async def relay_paced(url: str, contact: str, frontends: int) -> float:
    """Messages/s through a node of `frontends` frontends on a mixnet that paces every
    nym-client as the real one does (`--delay nym`: about 50 packets/s each, the node's
    frontends included): senders and recipients spread evenly over the frontends, each
    sender writing to its own recipient with 20 in flight."""
    import asyncio
    from contextlib import AsyncExitStack

    from nodeclient import Anonymous, Client

    from nymchat.protocol import wire
    from nymchat.protocol.wire import Kind

    pairs = NYM_PAIRS_PER_FRONTEND * frontends
    per_pair = NYM_MESSAGES_PER_FRONTEND * frontends // pairs
    async with AsyncExitStack() as stack:
        senders, recipients, keys = [], [], []
        for n in range(pairs):
            frontend = n % frontends + 1
            sender = Anonymous(f"{url}/paced-s{n}", contact, frontend)
            senders.append(await stack.enter_async_context(sender))
            recipient = Client(f"{url}/paced-r{n}", contact, _homed(contact, frontend))
            recipients.append(await stack.enter_async_context(recipient))
        for n, recipient in enumerate(recipients):
            await recipient.register(f"paced-r{n}")
            keys.append(os.urandom(32))
            await recipient.request(
                Kind.SET_ACCESS, access_verifier=wire.access_verifier(keys[-1]), strangers=16
            )

        async def pair(n: int) -> None:
            window = asyncio.Semaphore(20)

            async def send(m: int) -> None:
                async with window:
                    message_id = (n << 32 | m).to_bytes(16, "big")
                    for _ in range(5):  # paced: an answer may take a while
                        try:
                            await senders[n].seal(
                                f"paced-r{n}", bytes(100), keys[n], message_id, timeout=30
                            )
                            return
                        except TimeoutError:
                            continue

            await asyncio.gather(
                _receive(recipients[n], per_pair, 20, timeout=120),
                *(send(m) for m in range(per_pair)),
            )

        start = time.perf_counter()
        await asyncio.gather(*(pair(n) for n in range(pairs)))
        return round(pairs * per_pair / (time.perf_counter() - start), 1)


def _relay_at_zero_delay(
    tmp: Path, shiv: Path, started: ExitStack, mixnet=None, store: str | None = None
) -> dict:
    """`relay` through a node of its own on a zero-delay mixnet (`mixnet`, else one of its
    own), its store the PostgreSQL database at `store` (whose server's CPU is measured
    too) if given; what it starts stops with `started`, the node at once."""
    import asyncio

    from procs import MixnetProcess, NodeProcess

    if mixnet is None:
        mixnet = MixnetProcess(tmp / "mixnet", shiv, delay="zero")
        started.callback(mixnet.stop)
    where = () if store is None else ("--store", store)
    name = "relay" if store is None else "relay-pg"
    node = NodeProcess(
        tmp / name, shiv, f"{mixnet.url}/{name}", *relay_node_args(NODE_RELAY_MESSAGES), *where
    )
    started.callback(node.stop)
    clocks = {"node": lambda: _cpu_seconds(node.proc.pid)}
    if store is not None:
        clocks["postgres"] = _postgres_clock(store)
    results = asyncio.run(relay(mixnet.url, node.contact, clocks, NODE_RELAY_MESSAGES))
    node.stop()
    return results


TWO_PROCESS_ROUTES = [(f, f % 4 + 1) for f in range(1, 5)]  # half of them across processes


def _relay_two_processes(tmp: Path, shiv: Path, started: ExitStack, mixnet, store: str) -> dict:
    """`relay` through two node processes on the PostgreSQL database at `store` (one key
    file, frontends 1-2 and 3-4), from a sender through each frontend to a recipient homed
    on the next (`TWO_PROCESS_ROUTES`)."""
    import asyncio

    from procs import NodeProcess

    from nymchat.protocol.contact import NodeContact

    args = (*relay_node_args(NODE_RELAY_MESSAGES), "--store", store)
    a = NodeProcess(tmp / "pg-a", shiv, f"{mixnet.url}/node-a", *args)
    started.callback(a.stop)
    key = ("--key-file", str(a.data / "identity.json"))
    b = NodeProcess(
        tmp / "pg-b", shiv, f"{mixnet.url}/node-b", *args, *key, "--first-frontend", "3"
    )
    started.callback(b.stop)
    deadline = time.monotonic() + 60
    while NodeContact.parse((a.data / "contact.txt").read_text()) != NodeContact.parse(b.contact):
        if time.monotonic() > deadline:
            raise RuntimeError("the first node process never listed the second's frontends")
        time.sleep(0.2)
    clocks = {
        "node": lambda: _cpu_seconds(a.proc.pid) + _cpu_seconds(b.proc.pid),
        "postgres": _postgres_clock(store),
    }
    results = asyncio.run(
        relay(mixnet.url, b.contact, clocks, NODE_RELAY_MESSAGES, routes=TWO_PROCESS_ROUTES)
    )
    b.stop()
    a.stop()
    return results


def _postgres_server(started: ExitStack) -> str:
    """The PostgreSQL server to measure on (a URL): $NYMCHAT_TEST_POSTGRES's, else a
    throwaway cluster of scripts/pg_cluster.py, stopped when `started` closes."""
    import shutil
    import tempfile

    import pg_cluster

    given = os.environ.get("NYMCHAT_TEST_POSTGRES")
    if given:
        return given
    # not under the benchmark's private directory: as root the server runs as nobody
    directory = Path(tempfile.mkdtemp(prefix="nymchat-bench-pg-"))
    started.callback(shutil.rmtree, directory, ignore_errors=True)
    url = pg_cluster.start(directory)
    started.callback(pg_cluster.stop, directory)
    return url


def _database(server: str, started: ExitStack) -> str:
    """A new database on `server` (its URL), dropped when `started` closes."""
    from urllib.parse import urlsplit

    import psycopg

    name = f"bench_{os.urandom(6).hex()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

    started.callback(drop)
    return urlsplit(server)._replace(path=f"/{name}").geturl()


def _postgres_clock(url: str) -> Callable[[], float]:
    """The CPU seconds so far of the PostgreSQL server of `url`, working for its database:
    the postmaster with the children it reaped, its auxiliary processes, and the backends
    of this database (not other databases' on a shared server)."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid(), current_database()").fetchone()
        assert row is not None
        backend, database = row
        postmaster = int(_stat(backend)[1])  # while the backend lives

    def ours(pid: int) -> bool:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        a_backend = "[local]" in title or "(" in title  # "postgres: USER DB [local] STATE"
        return not a_backend or f" {database} " in title

    def clock() -> float:
        total = _cpu_seconds(postmaster, reaped=True)
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and int(_stat(int(entry.name))[1]) == postmaster:
                    total += _cpu_seconds(int(entry.name)) if ours(int(entry.name)) else 0
            except (OSError, IndexError):  # it ended meanwhile
                continue
        return total

    return clock


def sealed_suite() -> dict:
    import asyncio
    import tempfile

    from procs import MixnetProcess, NodeProcess

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        tmp = Path(tmp)
        shiv = tmp / "shiv"
        results.update(_relay_at_zero_delay(tmp, shiv, started))
        paced = MixnetProcess(tmp / "paced", shiv, delay="nym")
        started.callback(paced.stop)
        results["relay_nym_msgs_per_s"] = {}
        for frontends in NYM_FRONTENDS:
            node = NodeProcess(
                tmp / f"paced-{frontends}",
                shiv,
                f"{paced.url}/node{frontends}",
                *relay_node_args(NYM_MESSAGES_PER_FRONTEND * frontends),
                frontends=frontends,
            )
            started.callback(node.stop)
            results["relay_nym_msgs_per_s"][str(frontends)] = asyncio.run(
                relay_paced(paced.url, node.contact, frontends)
            )
            node.stop()
    results["identified_relay_msgs_per_s"] = IDENTIFIED_RELAY["msgs_per_s"]
    return results


# The relay figure of identified sending (signed `send`, before sealed sending), measured
# with the same harness (3,000 sends of 100 B, 200 in flight, through the local mixnet at
# zero delay) at the commit before sealed sending, on the machine of the figures below.
IDENTIFIED_RELAY = {"msgs_per_s": 2448, "commit": "b6d9397"}


def sealed_markdown(r: dict) -> str:
    ratio = r["sealed_relay_msgs_per_s"] / max(1, r["identified_relay_msgs_per_s"])
    paced = r["relay_nym_msgs_per_s"]
    one = paced["1"]
    rows = [
        "Sealed sending: the sender is anonymous to the node (an unsigned `sealed_send` with "
        "the recipient's access key, through another frontend than the recipient's home). "
        "Zero delay: 3,000 sealed sends of 100 B with 200 in flight through "
        "`dist/nymchat mixnet --delay zero`, each pushed to the recipient, who acknowledges "
        "in batches of 100; identified sending is the same measurement of the signed `send` "
        f"at commit `{IDENTIFIED_RELAY['commit']}`, the one before sealed sending. Paced: "
        "`--delay nym` gives every nym-client the real client's pacing (about 50 packets/s, "
        "the node's frontends included), so a node's throughput is bound by its frontends; "
        f"{NYM_PAIRS_PER_FRONTEND} senders and {NYM_PAIRS_PER_FRONTEND} recipients per "
        f"frontend, spread evenly, {NYM_MESSAGES_PER_FRONTEND} messages per frontend.",
        "",
        "| figure | measured | target | |",
        "|---|---:|---:|---|",
        f"| sealed relay, zero delay | {r['sealed_relay_msgs_per_s']} msg/s | | |",
        f"| identified relay (before), zero delay | {r['identified_relay_msgs_per_s']} msg/s | | |",
        f"| sealed ÷ identified | {ratio:.2f} | ≥ 0.80 | {_met(ratio >= 0.8)} |",
        f"| node CPU per sealed message | {r['node_cpu_us_per_msg']} µs | | |",
    ]
    for frontends, rate in paced.items():
        n = int(frontends)
        target = "" if n == 1 else f"≥ {0.8 * n:.1f} x one"
        met = "" if n == 1 else _met(rate >= 0.8 * n * one)
        rows.append(
            f"| relay on `--delay nym`, {n} frontend{'s' if n > 1 else ''} | {rate} msg/s "
            f"({rate / one:.2f} x one) | {target} | {met} |"
        )
    return "\n".join(rows)


def node_suite() -> dict:
    import asyncio
    import tempfile

    from nodeclient import Anonymous
    from procs import MixnetProcess, NodeProcess

    from nymchat import keystore

    async def lookups(url: str, contact: str) -> dict:
        rng = random.Random(1)
        async with Anonymous(f"{url}/bench-looker", contact) as looker:
            await looker.lookup("user0000000")
            times = []
            for _ in range(NODE_LOOKUPS):
                name = f"user{rng.randrange(NODE_USERS):07d}"
                started = time.perf_counter()
                answer = await looker.lookup(name)  # none has one-time keys: no work asked
                times.append((time.perf_counter() - started) * 1000)
                assert answer.body["username"] == name, answer
        times.sort()
        return {
            "lookup_p50_ms": round(times[len(times) // 2], 3),
            "lookup_p99_ms": round(times[int(len(times) * 0.99)], 3),
        }

    def big(name: str, fill: Callable[[Path, bytes], None], *args: str) -> dict:
        """Lookups through a node whose store `fill` wrote (its data directory, the node's
        secret), and how long writing took."""
        data = tmp / name
        data.mkdir(mode=0o700)
        node_secret = keystore.create(data, NodeProcess.PASSWORD).secret_bytes()
        populate_start = time.perf_counter()
        fill(data, node_secret)
        populate_s = round(time.perf_counter() - populate_start, 1)
        node = NodeProcess(data, shiv, f"{mixnet.url}/{name}", *UNLIMITED, *args)
        started.callback(node.stop)
        measured = asyncio.run(lookups(mixnet.url, node.contact))
        measured.update(populate_s=populate_s, rss_mb=round(_rss_mb(node.proc.pid), 1))
        node.stop()
        return measured

    with tempfile.TemporaryDirectory() as scratch, ExitStack() as started:
        tmp = Path(scratch)
        shiv = tmp / "shiv"
        mixnet = MixnetProcess(tmp / "mixnet", shiv, delay="zero")
        started.callback(mixnet.stop)
        results = _relay_at_zero_delay(tmp, shiv, started, mixnet)
        results.update(
            big("big", lambda data, secret: _populate(data, secret, NODE_USERS, NODE_QUEUED))
        )
        results["users"], results["queued"] = NODE_USERS, NODE_QUEUED
        # the same on PostgreSQL, each measurement on a database of its own
        server = _postgres_server(started)
        on_pg = _relay_at_zero_delay(tmp, shiv, started, mixnet, _database(server, started))
        results["relay_pg_msgs_per_s"] = on_pg["sealed_relay_msgs_per_s"]
        results["node_cpu_pg_us_per_msg"] = on_pg["node_cpu_us_per_msg"]
        results["postgres_cpu_us_per_msg"] = on_pg["postgres_cpu_us_per_msg"]
        two = _relay_two_processes(tmp, shiv, started, mixnet, _database(server, started))
        results["relay_two_processes_pg_msgs_per_s"] = two["sealed_relay_msgs_per_s"]
        results["node_cpu_two_processes_pg_us_per_msg"] = two["node_cpu_us_per_msg"]
        results["postgres_cpu_two_processes_us_per_msg"] = two["postgres_cpu_us_per_msg"]
        store = _database(server, started)
        on_pg = big(
            "big-pg",
            lambda _, secret: _populate_pg(store, secret, NODE_USERS, NODE_QUEUED),
            "--store",
            store,
        )
        results.update({f"lookup_pg_{p}_ms": on_pg[f"lookup_{p}_ms"] for p in ("p50", "p99")})
        results["populate_pg_s"] = on_pg["populate_s"]
    return results


RELAY_PG_TARGET = 1500  # msgs/s (issue 17), the database on the same machine


def node_markdown(r: dict) -> str:
    return "\n".join(
        [
            "`dist/nymchat node` on `dist/nymchat mixnet --delay zero`, driven through the "
            "nymchat transport and the node protocol client from one benchmark process (all "
            f"its processes share the machine's 2 cores). Relay: {NODE_RELAY_MESSAGES:,} sealed "
            "sends of 100 B with 200 in flight, each pushed to the recipient, who acknowledges "
            "in batches of 100; node CPU is the node process's user+system time over the run. "
            f"Lookups: {NODE_LOOKUPS:,} one at a time, of random names among {r['users']:,} "
            f"users written straight into the database with {r['queued']:,} queued messages "
            f"of 300 B ({r['populate_s']} s; "
            f"on PostgreSQL with COPY, {r['populate_pg_s']} s), end to end through the mixnet; "
            "RSS of the node after them. PostgreSQL: the node on `--store postgresql://…`, a "
            "database of its own on a throwaway cluster of `scripts/pg_cluster.py` on the same "
            "machine (Unix socket, fsync and synchronous commit on); its CPU is that of the "
            "server's processes working for the node (from /proc). Two processes: two node "
            "processes on one PostgreSQL (one key file, `--first-frontend 1` and `3`, two "
            "frontends each), a sender through each frontend to a recipient homed on the next "
            "(half the messages cross from one process to the other), the messages split "
            "among them; node CPU is the two processes' together.",
            "",
            "| figure | measured | target | |",
            "|---|---:|---:|---|",
            f"| relayed (sealed) messages/s | {r['sealed_relay_msgs_per_s']} | ≥ 3,000 | "
            f"{_met(r['sealed_relay_msgs_per_s'] >= 3000)} |",
            f"| node CPU per relayed message | {r['node_cpu_us_per_msg']} µs | ≤ 200 µs | "
            f"{_met(r['node_cpu_us_per_msg'] <= 200)} |",
            f"| lookup p50 | {r['lookup_p50_ms']:.3f} ms | | |",
            f"| lookup p99 | {r['lookup_p99_ms']:.3f} ms | ≤ 2 ms | "
            f"{_met(r['lookup_p99_ms'] <= 2)} |",
            f"| node RSS with {r['users']:,} users, {r['queued']:,} queued | {r['rss_mb']} MB | "
            "≤ 150 MB | "
            f"{_met(r['rss_mb'] <= 150)} |",
            f"| PostgreSQL: relayed (sealed) messages/s | {r['relay_pg_msgs_per_s']} | "
            f"≥ {RELAY_PG_TARGET:,} | {_met(r['relay_pg_msgs_per_s'] >= RELAY_PG_TARGET)} |",
            f"| PostgreSQL: node CPU per relayed message | {r['node_cpu_pg_us_per_msg']} µs | | |",
            f"| PostgreSQL: server CPU per relayed message | {r['postgres_cpu_us_per_msg']} µs "
            "| | |",
            f"| PostgreSQL: lookup p50 | {r['lookup_pg_p50_ms']:.3f} ms | | |",
            f"| PostgreSQL: lookup p99 | {r['lookup_pg_p99_ms']:.3f} ms | | |",
            "| PostgreSQL, two node processes: relayed messages/s | "
            f"{r['relay_two_processes_pg_msgs_per_s']} | | |",
            "| PostgreSQL, two node processes: node CPU per relayed message | "
            f"{r['node_cpu_two_processes_pg_us_per_msg']} µs | | |",
            "| PostgreSQL, two node processes: server CPU per relayed message | "
            f"{r['postgres_cpu_two_processes_us_per_msg']} µs | | |",
        ]
    )


FLOOD_REQUESTS = 100_000
FLOOD_BASELINE_LOOKUPS = 100
FLOOD_LOOKUP_GAP = 0.1  # seconds between a user's lookups: well within their tag's rate


def _flood_worker(url: str, contact: str, address: str, count: int, ready, done) -> None:
    """A process of its own that floods the node's frontend at `address` from one sender
    tag: `count` validly signed requests, as fast as its transport takes them."""
    import asyncio

    from nodeclient import flood, flood_frames

    from nymchat import _native
    from nymchat.nym.address import Address
    from nymchat.nym.transport import NymClient
    from nymchat.protocol.contact import NodeContact

    node = NodeContact.parse(contact)
    frames = flood_frames(_native.Identity.generate(), node.key, count)

    async def main() -> None:
        async with NymClient(f"{url}/bench-flooder") as nym:
            ready.set()
            start = time.perf_counter()
            await flood(nym, Address.parse(address), frames)
            done.put(time.perf_counter() - start)

    asyncio.run(main())


def flood_suite() -> dict:
    import asyncio
    import multiprocessing
    import re
    import socket
    import tempfile
    import urllib.request

    from nodeclient import Client, bundle
    from procs import MixnetProcess, NodeProcess

    from nymchat import _native, keystore
    from nymchat.errors import NymchatError
    from nymchat.node.registration import name_key
    from nymchat.node.store import open_sqlite
    from nymchat.protocol.wire import Kind

    def users(data: Path) -> dict[str, "_native.Identity"]:
        """bench-alice and bench-bob, written straight into a new node's database (so any
        version of the node can be measured alike)."""
        data.mkdir(mode=0o700)
        node = keystore.create(data, NodeProcess.PASSWORD)
        store = open_sqlite(data / "node.db", name_key(node.secret_bytes()))
        made = {name: _native.Identity.generate() for name in ("bench-alice", "bench-bob")}

        async def add() -> None:
            async with store.transaction():
                for name, identity in made.items():
                    await store.add_user(
                        name,
                        identity.signing_public,
                        bundle(identity),
                        None,
                        int(time.time() * 1000),
                    )
            await store.close()

        asyncio.run(add())
        return made

    def percentiles(times: list[float]) -> tuple[float, float]:
        times = sorted(times)
        return (
            round(times[len(times) // 2], 2),
            round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        )

    async def lookup(alice: Client) -> float | None:
        """One lookup, one attempt, at most 10 s: its time in ms, None if unanswered."""
        await asyncio.sleep(FLOOD_LOOKUP_GAP)
        started = time.perf_counter()
        try:
            await alice.link.request(Kind.LOOKUP, timeout=10, attempts=1, username="bench-bob")
        except NymchatError:
            return None
        return (time.perf_counter() - started) * 1000

    async def measure(url: str, contact: str, pid: int, metrics: int, alice_identity) -> dict:
        async with Client(f"{url}/bench-alice", contact, alice_identity) as alice:
            before = [
                t for _ in range(FLOOD_BASELINE_LOOKUPS) if (t := await lookup(alice)) is not None
            ]
            context = multiprocessing.get_context("fork")
            ready, done = context.Event(), context.Queue()
            # the flood hits the frontend alice's lookups go to (her anonymous one)
            anonymous = alice.link.frontends.anonymous() or alice.link.frontends.home()
            flooder = context.Process(
                target=_flood_worker,
                args=(url, contact, anonymous.address, FLOOD_REQUESTS, ready, done),
            )
            flooder.start()
            try:
                await asyncio.to_thread(ready.wait)
                cpu, start = _cpu_seconds(pid), time.perf_counter()
                during = []
                while flooder.is_alive():
                    during.append(await lookup(alice))
                # What the node still holds of the flood comes before a lookup sent now: the
                # flood is over for the user when that one is answered.
                for _ in range(30):
                    during.append(await lookup(alice))
                    if during[-1] is not None:
                        break
                elapsed = time.perf_counter() - start
                cpu = _cpu_seconds(pid) - cpu
                sending = done.get(timeout=10)
            finally:
                if flooder.is_alive():
                    flooder.kill()
                flooder.join()
        page = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10)
            .read()
            .decode()
        )
        dropped = sum(
            int(n)
            for n in re.findall(
                r'^nymchat_node_dropped_total\{reason="(?:rate_limited|intake_full)"\} (\d+)$',
                page,
                re.MULTILINE,
            )
        )
        handled = sum(
            int(n)
            for n in re.findall(r"^nymchat_node_requests_total\{.*\} (\d+)$", page, re.MULTILINE)
        )
        answered = [t for t in during if t is not None]
        return {
            "flood_requests": FLOOD_REQUESTS,
            "flood_per_s": round(FLOOD_REQUESTS / sending),
            "flood_s": round(sending, 1),
            "window_s": round(elapsed, 1),
            "dropped": dropped,
            "handled": handled,
            "node_cpu_percent": round(cpu / elapsed * 100),
            "before_p50_ms": percentiles(before)[0],
            "before_p99_ms": percentiles(before)[1],
            "during_lookups": len(during),
            "during_answered": len(answered),
            "during_p50_ms": percentiles(answered)[0] if answered else None,
            "during_p99_ms": percentiles(answered)[1] if answered else None,
        }

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        tmp = Path(tmp)
        mixnet = MixnetProcess(tmp / "mixnet", tmp / "shiv", delay="zero")
        started.callback(mixnet.stop)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            metrics = probe.getsockname()[1]
        alice = users(tmp / "node")["bench-alice"]
        node = NodeProcess(
            tmp / "node",
            tmp / "shiv",
            f"{mixnet.url}/node",
            "--lookups-per-min",
            "1e9",
            "--metrics",
            f"127.0.0.1:{metrics}",
        )
        started.callback(node.stop)
        return asyncio.run(measure(mixnet.url, node.contact, node.proc.pid, metrics, alice))


def flood_markdown(r: dict) -> str:
    during = (
        f"{r['during_p50_ms']} / {r['during_p99_ms']} ms"
        if r["during_answered"]
        else "none answered"
    )
    return "\n".join(
        [
            "`dist/nymchat node` (its default limits: 20 requests/s per sender tag, bursts of "
            "200) on `dist/nymchat mixnet --delay zero`. A process of its own sends "
            f"{r['flood_requests']:,} validly signed lookups from one sender tag as fast as its "
            "transport takes them; meanwhile a registered user looks another up, one lookup at a "
            f"time, {FLOOD_LOOKUP_GAP:g} s apart (one attempt each, 10 s at most), as they did "
            f"before the flood ({FLOOD_BASELINE_LOOKUPS} lookups), until one sent after the "
            f"flood's last request is answered ({r['window_s']} s in all). Node CPU is the node "
            "process's user+system time over that window, in % of one core; the four processes "
            "share the machine's 2 cores.",
            "",
            "| figure | measured |",
            "|---|---:|",
            f"| flood from one tag | {r['flood_per_s']:,} requests/s for {r['flood_s']} s |",
            f"| requests dropped unverified and unanswered | {r['dropped']:,} |",
            f"| requests verified and answered (all senders) | {r['handled']:,} |",
            f"| node CPU during the flood | {r['node_cpu_percent']} % |",
            f"| a user's lookup before, p50 / p99 | {r['before_p50_ms']} / "
            f"{r['before_p99_ms']} ms |",
            f"| a user's lookup during, p50 / p99 | {during} |",
            f"| a user's lookups answered during | {r['during_answered']} of "
            f"{r['during_lookups']} |",
        ]
    )


E2E_LATENCY_MESSAGES = 300
E2E_THROUGHPUT_MESSAGES = 300
ONESHOT_RUNS = 5


def e2e_suite() -> dict:
    import asyncio
    import statistics
    import subprocess
    import tempfile

    from procs import DIST, MixnetProcess, NodeProcess, clean_env

    from nymchat import keystore
    from nymchat.client.connect import connect
    from nymchat.client.engine import Engine
    from nymchat.client.profile import Profile
    from nymchat.client.records import DirectStatus
    from nymchat.protocol.contact import NodeContact

    passphrase = "bench passphrase"

    async def engine(home: Path, url: str, contact: str, name: str, stack) -> Engine:
        home.mkdir(mode=0o700)
        profile = Profile(home, keystore.create(home, passphrase))
        e = await stack.enter_async_context(connect(profile, url, NodeContact.parse(contact)))
        await e.register(name)
        return e

    async def timed(alice: Engine, to: str, inbox, what: str) -> list[float]:
        """Milliseconds from each of alice's sends to `to` until `inbox` yields it, sorted."""
        latencies = []
        for n in range(E2E_LATENCY_MESSAGES):
            start = time.perf_counter()
            await alice.send(to, f"{what} {n}")
            await anext(inbox)
            latencies.append((time.perf_counter() - start) * 1000)
        return sorted(latencies)

    async def holds_access_key(alice: Engine, bob: str) -> None:
        """As in any conversation once bob has answered: alice takes in bob's receipt of
        the warm-up, which carries his access key, so her sends need no proof of work (a
        stranger's first message pays one; the figures are a conversation's)."""
        for _ in range(20):
            await alice.inbox(quiet=0.2)
            contact = alice.contact(bob)
            if contact is not None and contact.access_key is not None:
                return
        raise RuntimeError(f"alice never received {bob}'s access key")

    async def federated(tmp: Path, url: str, alice: Engine, contact_b: str, stack) -> list[float]:
        """alice (at A) to bob at node B: looked up and sent to at B, anonymously."""
        from nymchat.client.messages import now_ms
        from nymchat.client.nodes import KnownNodes

        bob = await engine(tmp / "bob-b", f"{url}/bob-b", contact_b, "bob", stack)
        KnownNodes(alice.profile.store).add(
            "node-b", NodeContact.parse(contact_b), "manual", now_ms()
        )
        await alice.lookup("bob@node-b")
        inbox = bob.follow(refresh_every=3600)
        await alice.send("bob@node-b", "warm up")
        await anext(inbox)
        await holds_access_key(alice, "bob@node-b")
        latencies = await timed(alice, "bob@node-b", inbox, "federated")
        await inbox.aclose()
        return latencies

    async def measure(tmp: Path, url: str, contact: str, contact_b: str) -> dict:
        from contextlib import AsyncExitStack

        async with AsyncExitStack() as stack:
            alice = await engine(tmp / "alice", f"{url}/alice", contact, "alice", stack)
            bob = await engine(tmp / "bob", f"{url}/bob", contact, "bob", stack)
            await alice.lookup("bob")
            inbox = bob.follow(refresh_every=3600)
            await alice.send("bob", "warm up")
            await anext(inbox)
            await holds_access_key(alice, "bob")
            latencies = await timed(alice, "bob", inbox, "latency")
            start = time.perf_counter()
            for n in range(E2E_THROUGHPUT_MESSAGES):
                await alice.send("bob", f"throughput {n}")
            rate = E2E_THROUGHPUT_MESSAGES / (time.perf_counter() - start)
            await bob.inbox(quiet=1.0)  # takes in the relayed ones before direct mode
            await alice.direct_action("invite", "bob")
            await bob.inbox(quiet=0.3)
            await bob.direct_action("accept", "alice")
            await alice.inbox(quiet=0.3)
            while alice.direct_status("bob") is not DirectStatus.ON:  # bob answered alice's hello
                await asyncio.sleep(0.01)
            direct = await timed(alice, "bob", inbox, "direct")  # each send: till its receipt
            await inbox.aclose()
            across = await federated(tmp, url, alice, contact_b, stack)
        return {
            "p50_ms": round(latencies[len(latencies) // 2], 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
            "msgs_per_s": round(rate),
            "direct_p50_ms": round(direct[len(direct) // 2], 2),
            "direct_p99_ms": round(direct[int(len(direct) * 0.99)], 2),
            "federated_p50_ms": round(across[len(across) // 2], 2),
            "federated_p99_ms": round(across[int(len(across) * 0.99)], 2),
        }

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as started:
        tmp = Path(tmp)
        shiv = tmp / "shiv"
        mixnet = MixnetProcess(tmp / "mixnet", shiv, delay="zero")
        started.callback(mixnet.stop)
        node = NodeProcess(
            tmp / "node", shiv, f"{mixnet.url}/node", "--pow-difficulty", "0", *UNLIMITED
        )
        started.callback(node.stop)
        node_b = NodeProcess(
            tmp / "node-b", shiv, f"{mixnet.url}/node-b", "--pow-difficulty", "0", *UNLIMITED
        )
        started.callback(node_b.stop)
        results = asyncio.run(measure(tmp, mixnet.url, node.contact, node_b.contact))
        env = clean_env(shiv, NYMCHAT_PASSPHRASE=passphrase)
        times = {}
        for command in (["lookup", "bob"], ["send", "bob", "one-shot"]):
            runs = []
            for _ in range(ONESHOT_RUNS):
                start = time.perf_counter()
                subprocess.run(
                    [str(DIST), "--home", str(tmp / "alice"), *command],
                    check=True,
                    capture_output=True,
                    env=env,
                    timeout=60,
                )
                runs.append(time.perf_counter() - start)
            times[command[0]] = round(statistics.median(runs), 3)
        results["oneshot_lookup_s"] = times["lookup"]
        results["oneshot_send_s"] = times["send"]
        results["chat_rss_mb"] = _chat_rss(tmp / "alice", env)
    return results


def _chat_rss(home: Path, env: dict) -> float:
    """RSS of a running `nymchat chat` (scripted), once it is connected and serving."""
    import subprocess

    from procs import DIST, wait_until_serving

    chat = subprocess.Popen(
        [str(DIST), "--home", str(home), "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        wait_until_serving(home, chat)
        time.sleep(1)
        return round(_rss_mb(chat.pid), 1)
    finally:
        chat.communicate("/quit\n", timeout=30)


def e2e_markdown(r: dict) -> str:
    return "\n".join(
        [
            "Two users (client engines in one benchmark process) through `dist/nymchat node` on "
            "`dist/nymchat mixnet --delay zero`: latency = alice's `send` (encrypt, relay, the "
            "node's acceptance) until bob's engine has decrypted it, one message at a time; "
            "throughput = one sender's accepted messages per second; one-shot = wall time of "
            "`dist/nymchat lookup` / `send` (start, unlock with Argon2id, connect, work), median "
            "of 5. Direct mode: the same two after `contacts direct` / `accept-direct`, from "
            "alice's `send` until her engine has bob's receipt (the round trip, past the node) "
            "and bob's has shown the message. Across nodes: alice (registered at the first "
            "node) to a bob registered at a second node on the same mixnet, looked up and sent "
            "to there anonymously, measured as the same-node latency.",
            "",
            "| figure | measured | target | |",
            "|---|---:|---:|---|",
            f"| send→receive p50 | {r['p50_ms']} ms | ≤ 10 ms | {_met(r['p50_ms'] <= 10)} |",
            f"| send→receive p99 | {r['p99_ms']} ms | ≤ 50 ms | {_met(r['p99_ms'] <= 50)} |",
            f"| messages/s, one sender | {r['msgs_per_s']} | | |",
            f"| across nodes, send→receive p50 | {r['federated_p50_ms']} ms | "
            f"≤ {r['p50_ms'] + 2:.2f} ms (same-node p50 + 2 ms) | "
            f"{_met(r['federated_p50_ms'] <= r['p50_ms'] + 2)} |",
            f"| across nodes, send→receive p99 | {r['federated_p99_ms']} ms | | |",
            f"| direct mode, send→receipt p50 | {r['direct_p50_ms']} ms | | |",
            f"| direct mode, send→receipt p99 | {r['direct_p99_ms']} ms | | |",
            f"| one-shot `lookup` | {r['oneshot_lookup_s']} s | ≤ 0.5 s | "
            f"{_met(r['oneshot_lookup_s'] <= 0.5)} |",
            f"| one-shot `send` | {r['oneshot_send_s']} s | ≤ 0.5 s | "
            f"{_met(r['oneshot_send_s'] <= 0.5)} |",
            f"| RSS of a running `chat` | {r['chat_rss_mb']} MB | | |",
        ]
    )


def groups_suite() -> dict:
    import bench_groups

    return bench_groups.groups_suite()


def groups_markdown(r: dict) -> str:
    import bench_groups

    return bench_groups.groups_markdown(r, _met)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} "
        "before it began (other work on the machine slows every figure)"
    )


def crypto_markdown(results: dict) -> str:
    rows = [
        "Rust: `nymchat._native`, release build. Python: `tests/reference_crypto.py`, the "
        "reference implementation on `cryptography` (OpenSSL), doing the same work with "
        "keys loaded once, including the strict key and `R` checks the Rust does "
        "(under 1 µs of the Python figure).",
        "",
        "| operation | Rust µs | Python µs | ratio | target | met? |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        met = _met(r["ratio"] >= r["target"])
        rows.append(
            f"| `{name}`: {r['what']} | {r['rust_us']:.1f} | {r['python_us']:.1f} | "
            f"{r['ratio']:.2f}x | ≥ {r['target']:g}x | {met} |"
        )
    return "\n".join(rows)


def write_section(suite: str, body: str) -> None:
    """Replaces this suite's section of docs/BENCHMARKS.md, keeping the others."""
    start, end = f"<!-- suite:{suite} -->", f"<!-- /suite:{suite} -->"
    text = (
        REPORT.read_text()
        if REPORT.exists()
        else (
            "# Benchmarks\n\nWritten by `scripts/bench.py` (`./build.sh bench all`); do not edit "
            "the sections between the markers by hand.\n"
        )
    )
    block = f"{start}\n{body}\n{end}"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    REPORT.write_text(text)


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


SUITES = {
    "crypto": (crypto_suite, crypto_markdown, "Crypto core: Rust against Python"),
    "mixnet": (mixnet_suite, mixnet_markdown, "Local mixnet at zero delay"),
    "node": (node_suite, node_markdown, "Discovery node"),
    "e2e": (e2e_suite, e2e_markdown, "End to end: two users through a node"),
    "flood": (flood_suite, flood_markdown, "A node under a flood from one sender tag"),
    "sealed": (sealed_suite, sealed_markdown, "Sealed sending and frontends"),
    "groups": (groups_suite, groups_markdown, "Groups (MLS)"),
}


def main() -> int:
    # SIGTERM unwinds like Ctrl-C does, so that each suite stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=[*SUITES, "all"])
    parser.add_argument("--json", action="store_true", help="print results as one JSON object")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    names = list(SUITES) if args.suite == "all" else [args.suite]
    where = machine()
    output = {}
    for name in names:
        run, render, title = SUITES[name]
        results = run()
        output[name] = results
        if not args.no_write:
            when = time.strftime("%Y-%m-%d")
            write_section(
                name,
                f"## {title}\n\nMeasured {when} at commit `{git_revision()}` on "
                f"{where}, by `scripts/bench.py {name}`. Each figure is the "
                "median of 7 rounds of the mean per-call time.\n\n" + render(results),
            )
    if args.json:
        print(json.dumps(output[names[0]] if len(names) == 1 else output))
    else:
        for name in names:
            print(SUITES[name][1](output[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
