"""Several node processes as one node (docs/OPERATIONS.md, "Several node processes"): the
frontend ids each takes (`--first-frontend`), the one node key they share (`--key-file`),
their frontends claimed and heartbeaten in the store, the descriptor of every live one,
pushes across processes, shared limits, and a process killed mid-traffic."""

import asyncio
import os
import signal
import subprocess
import time

import pytest
from inprocess import InProcessMixnet, InProcessTransport, until
from nodeclient import Anonymous, Client, bundle, run
from procs import DIST, NodeProcess, clean_env
from test_frontends import StubService, settings

from nymchat import _native
from nymchat.client.frontends import rendezvous
from nymchat.client.nodelink import NodeRefused
from nymchat.node import runner as runner_module
from nymchat.node.runner import NodeRunner
from nymchat.node.settings import frontends
from nymchat.node.store import open_sqlite, open_store
from nymchat.protocol import pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

# --- settings --------------------------------------------------------------------------


def plan(tmp_path, *argv: str, env: dict | None = None) -> list[tuple[int, str, str | None]]:
    values = settings(tmp_path, *argv, env=env)
    return [(f.id, f.url, f.nym_id) for f in frontends(values)]


def test_first_frontend_numbers_this_process_frontends_from_it(tmp_path):
    two = ("--nym", "ws://127.0.0.1:1/a", "--nym", "ws://127.0.0.1:2/b")
    assert plan(tmp_path, *two) == [
        (1, "ws://127.0.0.1:1/a", None),
        (2, "ws://127.0.0.1:2/b", None),
    ]
    assert plan(tmp_path, *two, "--first-frontend", "3") == [
        (3, "ws://127.0.0.1:1/a", None),
        (4, "ws://127.0.0.1:2/b", None),
    ]
    assert plan(tmp_path, env={"NYMCHAT_NODE_FIRST_FRONTEND": "5"})[0][0] == 5
    (tmp_path / "node.toml").write_text("first_frontend = 7\n")
    assert plan(tmp_path)[0][0] == 7
    # supervised nym-clients keep this process's own ports and --id names
    supervised = ("--nym-client-bin", "/bin/true", "--nym-id", "me", "--first-frontend", "3")
    assert plan(tmp_path, *supervised) == [
        (3, "ws://127.0.0.1:1977", "me"),
        (4, "ws://127.0.0.1:1978", "me-2"),
    ]


@pytest.mark.parametrize("first", ["0", "65535"])
def test_frontend_ids_beyond_a_route_are_refused(tmp_path, first):
    from nymchat.node.settings import SettingsError

    two = ("--nym", "ws://127.0.0.1:1/a", "--nym", "ws://127.0.0.1:2/b")
    with pytest.raises(SettingsError, match="frontend ids are 1 to 65535"):
        plan(tmp_path, *two, "--first-frontend", first)


# --- the frontends' registry in the store -----------------------------------------------


def claims(store, process, addresses, now, live_after):
    async def claim():
        async with store.transaction():
            return await store.claim_frontends(process, addresses, now, live_after)

    return asyncio.run(claim())


def registry_contract(store) -> None:
    """What every backend's store does with the frontends of the node's processes."""
    assert claims(store, "a", {1: "addr-1", 2: "addr-2"}, 1_000, 0) == []
    # another live process may not take an id with another address (the others it
    # claims are its; a caller refused rolls back)...
    assert claims(store, "b", {2: "addr-x", 3: "addr-3"}, 2_000, 1_000) == [2]
    # ...but may take it back with the same address (a process started again)
    assert claims(store, "b", {2: "addr-2"}, 3_000, 1_000) == []
    assert claims(store, "a", {1: "addr-1"}, 4_000, 1_000) == []  # a's heartbeat
    live = asyncio.run(store.live_frontends(1_500))
    assert live == [(1, "addr-1"), (2, "addr-2"), (3, "addr-3")]
    assert asyncio.run(store.live_frontends(3_500)) == [(1, "addr-1")]
    # once a's heartbeat is old, its ids are free
    assert claims(store, "b", {1: "addr-y"}, 40_000, 10_000) == []
    assert asyncio.run(store.live_frontends(40_000)) == [(1, "addr-y")]


def test_a_frontend_id_is_one_live_process_s_and_the_live_ones_are_listed():
    registry_contract(open_sqlite(":memory:", os.urandom(32)))


def test_a_frontend_id_is_one_live_process_s_on_postgresql(pg_url):
    async def opened():
        return await open_store(pg_url, os.urandom(32))

    store = asyncio.run(opened())
    try:
        registry_contract(store)
    finally:
        asyncio.run(store.close())


# --- node processes ------------------------------------------------------------------------


def node(start_node, mixnet, data, name, *args):
    return start_node(mixnet, *args, data=data, name=name)


@pytest.mark.cli
def test_a_key_file_elsewhere_is_made_once_then_only_read(start_mixnet, start_node, tmp_path):
    """The first process makes the key in --key-file; a second one, on a read-only copy
    of it and a data directory of its own, is the same node (the same key)."""
    mixnet = start_mixnet()
    key_dir = tmp_path / "key"
    key_dir.mkdir()
    key = key_dir / "node-key.json"
    one = node(start_node, mixnet, tmp_path / "one", "one", "--key-file", str(key))
    assert key.exists() and not (one.data / "identity.json").exists()
    assert key.stat().st_mode & 0o777 == 0o600
    written = key.read_bytes(), key.stat().st_mtime_ns
    one.stop()
    key.chmod(0o400)
    key_dir.chmod(0o500)  # nothing may be written beside it either
    try:
        two = node(start_node, mixnet, tmp_path / "two", "two", "--key-file", str(key))
        assert NodeContact.parse(two.contact).key == NodeContact.parse(one.contact).key
        assert not (two.data / "identity.json").exists()
        two.stop()
    finally:
        key_dir.chmod(0o700)
    assert (key.read_bytes(), key.stat().st_mtime_ns) == written


@pytest.mark.cli
def test_a_second_process_may_not_take_a_live_process_s_frontend_ids(
    start_mixnet, start_node, shiv_root, tmp_path, pg_url
):
    mixnet = start_mixnet()
    one = node(start_node, mixnet, tmp_path / "one", "one", "--store", pg_url)
    out = subprocess.run(
        [
            str(DIST),
            "node",
            f"--nym={mixnet.url}/other",
            f"--nym={mixnet.url}/other-2",
            "--data",
            str(tmp_path / "other"),
            "--key-file",
            str(one.data / "identity.json"),
            "--store",
            pg_url,
            "--first-frontend",
            "2",  # 2 is one's, with another address
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD=NodeProcess.PASSWORD),
    )
    assert out.returncode == 8, out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("nymchat: error:")]
    assert line == (
        "nymchat: error: frontend 2 is another live node process's, with another address: "
        "give this process another --first-frontend (or start it again 30 s after that "
        "process stopped)"
    )
    assert NodeContact.parse((one.data / "contact.txt").read_text()) == NodeContact.parse(
        one.contact
    )  # its own two frontends, nothing of the refused one's


# --- two node processes on one PostgreSQL -------------------------------------------------


def two_processes(start_mixnet, start_node, tmp_path, pg_url, *args):
    """Processes a (frontends 1, 2) and b (3, 4) of one node on the database `pg_url`, b on
    a's key file; returns (mixnet, a, b) once a lists b's frontends too."""
    mixnet = start_mixnet()
    a = node(start_node, mixnet, tmp_path / "a", "a", "--store", pg_url, *args)
    key = ("--key-file", str(a.data / "identity.json"))
    b = node(
        start_node,
        mixnet,
        tmp_path / "b",
        "b",
        "--store",
        pg_url,
        "--first-frontend",
        "3",
        *key,
        *args,
    )
    contact = NodeContact.parse(b.contact)
    assert len(contact.addresses) == 4
    assert contact.addresses[:2] == NodeContact.parse(a.contact).addresses
    started = time.monotonic()
    while NodeContact.parse((a.data / "contact.txt").read_text()) != contact:
        assert time.monotonic() - started < 30, "a never listed b's frontends"
        time.sleep(0.2)
    print(f"a listed b's frontends {time.monotonic() - started:.1f} s after b started")
    return mixnet, a, b


def homed(contact: str, first: set[int], then: set[int] | None = None):
    """An identity whose home is one of the frontends `first` (and the next in its order
    one of `then`)."""
    frontends = tuple(
        wire.Frontend(n, str(a)) for n, a in enumerate(NodeContact.parse(contact).addresses, 1)
    )
    while True:
        identity = _native.Identity.generate()
        order = [f.id for f in rendezvous(identity.signing_public, frontends)]
        if order[0] in first and (then is None or order[1] in then):
            return identity


async def open_to_strangers(c: Client, name: str, access_key: bytes) -> None:
    assert (await c.register(name)).kind is Kind.REGISTERED
    verifier = wire.access_verifier(access_key)
    await c.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=16)


async def pushed(c: Client, want: set[bytes], timeout: float = 60) -> set[bytes]:
    """Payloads pushed to `c` until `want` are all in (or `timeout`), asking the node again
    (fetch) whenever it is quiet a moment."""
    got: set[bytes] = set()
    deadline = time.monotonic() + timeout
    while not want <= got and time.monotonic() < deadline:
        try:
            push = await c.push(timeout=2)
            if push.kind is Kind.DELIVER:
                got.add(push.body["payload"])
        except TimeoutError:
            await c.request(Kind.FETCH, max=100)
    return got


@pytest.mark.cli
def test_two_processes_are_one_node_and_one_killed_mid_traffic_loses_nothing(
    start_mixnet, start_node, tmp_path, pg_url
):
    """Users homed on each process; a message to each is pushed at once by the other
    process; then a is killed (SIGKILL) mid-traffic: every message answered `accepted` is
    delivered, alice (homed on a, and a's other frontend next in her order) moving home
    to b."""
    mixnet, a, b = two_processes(start_mixnet, start_node, tmp_path, pg_url)
    key = os.urandom(32)
    alice_id = homed(b.contact, {1, 2}, {1, 2})  # both her first choices are a's
    bob_id = homed(b.contact, {3, 4})

    async def main():
        async with (
            Client(f"{mixnet.url}/alice", b.contact, alice_id) as alice,
            Client(f"{mixnet.url}/bob", b.contact, bob_id) as bob,
            Anonymous(f"{mixnet.url}/via-a", b.contact, frontend=2) as via_a,
            Anonymous(f"{mixnet.url}/via-b", b.contact, frontend=4) as via_b,
        ):
            await open_to_strangers(alice, "alice", key)
            await open_to_strangers(bob, "bob", key)
            # across processes: sent through a's frontend 2 for bob (homed on b), through
            # b's frontend 4 for alice (homed on a): pushed at once by the other process
            for sender, to, user in ((via_a, "bob", bob), (via_b, "alice", alice)):
                started = time.monotonic()
                assert (await sender.seal(to, b"hello " + to.encode(), key)).kind is Kind.ACCEPTED
                accepted = time.monotonic()
                push = await user.push(timeout=10)
                assert push.body["payload"] == b"hello " + to.encode()
                print(
                    f"to {to} across processes: accepted in {accepted - started:.3f} s, "
                    f"pushed {time.monotonic() - accepted:.3f} s later"
                )

            accepted: dict[str, set[bytes]] = {"alice": set(), "bob": set()}
            killed = asyncio.Event()

            async def traffic(sender: Anonymous, name: str) -> None:
                for n in range(40):
                    to = ("alice", "bob")[n % 2]
                    payload = f"{name} {n} to {to}".encode()
                    try:
                        answer = await sender.seal(to, payload, key, timeout=5)
                    except TimeoutError:
                        assert killed.is_set(), f"{name}: no answer while both ran"
                        return  # its process is gone
                    assert answer.kind is Kind.ACCEPTED
                    accepted[to].add(payload)
                    if n == 10 and sender is via_a:
                        a.stop(signal.SIGKILL)  # mid-traffic: b's sender is sending too
                        killed.set()

            await asyncio.gather(traffic(via_a, "via a"), traffic(via_b, "via b"))
            assert a.proc.returncode == -signal.SIGKILL
            print(f"accepted: {len(accepted['alice'])} for alice, {len(accepted['bob'])} for bob")
            # alice's home is gone: her next request moves it to b, which pushes what waits
            started = time.monotonic()
            await alice.request(Kind.REFRESH)
            assert alice.link.frontends.home().id in {3, 4}
            print(f"alice moved home to b in {time.monotonic() - started:.1f} s")
            assert accepted["alice"] <= await pushed(alice, accepted["alice"])
            assert accepted["bob"] <= await pushed(bob, accepted["bob"])

    run(main(), timeout=300)


async def answer_at(c: Client, address, kind: Kind, **body) -> wire.Answer | ErrorCode:
    """The answer to a signed request sent to the frontend at `address` (a refusal: its
    code)."""
    data, request_id = wire.encode_request(
        c.identity, c.contact.key, kind, body, int(time.time() * 1000)
    )
    try:
        return await c.link.request_raw(data, request_id, 10, to=address)
    except NodeRefused as refused:
        return ErrorCode(refused.code)


@pytest.mark.cli
def test_processes_share_an_identity_s_request_budget_and_spent_challenges(
    start_mixnet, start_node, tmp_path, pg_url
):
    limits = ("--requests-per-s", "0.001", "--request-burst", "4")
    mixnet, _a, b = two_processes(start_mixnet, start_node, tmp_path, pg_url, *limits)
    at_a, at_b = (
        NodeContact.parse(b.contact).addresses[0],
        NodeContact.parse(b.contact).addresses[2],
    )

    async def main():
        # one budget of 4 for an identity, whichever process its requests reach
        async with Client(f"{mixnet.url}/x", b.contact) as x:
            fetch = {"kind": Kind.FETCH, "max": 1}
            answers = [await answer_at(x, at, **fetch) for at in (at_a, at_b, at_a, at_b)]
            assert answers == [ErrorCode.NOT_REGISTERED] * 4
            assert await answer_at(x, at_a, **fetch) == ErrorCode.RATE_LIMITED
            assert await answer_at(x, at_b, **fetch) == ErrorCode.RATE_LIMITED
        # a challenge one process issued is spent for both
        async with Client(f"{mixnet.url}/y", b.contact) as y:
            offered = bundle(y.identity)
            challenge = await answer_at(
                y, at_a, Kind.REGISTER_BEGIN, username="yvonne", bundle=offered
            )
            assert challenge.kind is Kind.CHALLENGE
            solution = pow.solve(
                pow.registration(challenge.body["challenge"], "yvonne", y.identity.signing_public),
                challenge.body["difficulty"],
            )
            finish = {"username": "yvonne", "bundle": offered, "proof_of_work": solution}
            finish |= challenge.body
            registered = await answer_at(y, at_b, Kind.REGISTER_FINISH, **finish)
            assert registered.kind is Kind.REGISTERED
            gone = await answer_at(y, at_b, Kind.UNREGISTER, username="yvonne")
            assert gone.kind is Kind.UNREGISTERED
            again = await answer_at(y, at_a, Kind.REGISTER_FINISH, **finish)  # a new request
            assert again == ErrorCode.CHALLENGE_FAILED

    run(main())


@pytest.mark.cli
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_node_killed_mid_traffic_loses_nothing_it_accepted(
    start_mixnet, start_node, tmp_path, request, database
):
    store = request.getfixturevalue("pg_url") if database == "postgresql" else None
    args = ("--store", store) if store else ()
    mixnet = start_mixnet()
    node_ = node(start_node, mixnet, tmp_path / "node", "node", *args)
    key, bob_id = os.urandom(32), _native.Identity.generate()
    accepted: set[bytes] = set()

    async def before():
        async with Client(f"{mixnet.url}/bob", node_.contact, bob_id) as bob:
            await open_to_strangers(bob, "bob", key)

        async def traffic(name: str) -> None:
            async with Anonymous(f"{mixnet.url}/{name}", node_.contact) as sender:
                for n in range(100):
                    payload = f"{name} {n}".encode()
                    try:
                        answer = await sender.seal("bob", payload, key, timeout=5)
                    except TimeoutError:
                        return  # the node is gone
                    assert answer.kind is Kind.ACCEPTED
                    accepted.add(payload)
                    if name == "s0" and n == 15:
                        node_.stop(signal.SIGKILL)  # the other senders are sending
            raise AssertionError(f"{name} was answered after the node was killed")

        await asyncio.gather(*(traffic(f"s{n}") for n in range(3)))

    run(before())
    assert node_.proc.returncode == -signal.SIGKILL
    print(f"{len(accepted)} accepted before the kill ({database})")
    again = node(start_node, mixnet, tmp_path / "node", "node", *args)

    async def after():
        async with Client(f"{mixnet.url}/bob", again.contact, bob_id) as bob:
            await bob.request(Kind.REFRESH)
            return await pushed(bob, accepted)

    assert accepted <= run(after())


def test_a_process_pushes_at_once_what_another_wakes_its_frontends_for(
    tmp_path, pg_url, monkeypatch
):
    """Only a wake-up for one of its frontends (the timer is an hour here) makes the
    runner run its due pushes."""
    monkeypatch.setattr(runner_module, "PUSH_INTERVAL", 3600.0)

    async def main():
        service = StubService()
        service.store = await open_store(pg_url, os.urandom(32))
        other = await open_store(pg_url, os.urandom(32))  # another process's
        runs: list[int] = []
        due = service.due_pushes

        async def counted(now):
            runs.append(now)
            return await due(now)

        service.due_pushes = counted
        transport = InProcessTransport(InProcessMixnet(tmp_path), "node-3")
        await transport.start()
        runner = NodeRunner(service, [transport], first=3)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))

        async def wake(frontend: int) -> None:
            async with other.transaction():
                await other.wake(frontend)

        try:
            for _ in range(100):  # until it listens
                await wake(3)
                await asyncio.sleep(0.1)
                if runs:
                    break
            assert runs, "never woken"
            await asyncio.sleep(0.2)
            runs.clear()
            await wake(4)  # not its frontend
            await asyncio.sleep(0.5)
            assert runs == []
            await wake(3)
            await until(lambda: runs, "the due pushes")
        finally:
            stop.set()
            await task
            await other.close()
            await service.store.close()

    run(main())


def test_the_descriptor_lists_every_live_process_s_frontends_and_follows_them(tmp_path):
    """Signed again when another process's frontend is heard of, and when it has not been
    for `LISTED_MS`; ours stay, heartbeaten with each look."""
    from test_frontends import _addresses

    from nymchat.nym.address import Address

    class Known:
        def __init__(self, address):
            self.address, self.connected = address, True

    ours, theirs = _addresses(tmp_path, 2)
    service, published = StubService(), []
    runner = NodeRunner(service, [Known(Address.parse(ours))], published.append, first=2)
    key = _native.PublicKey(service.identity.signing_public)

    def listed(now):
        return [
            (f.id, f.address)
            for f in wire.decode_descriptor(service.descriptor, key, now).frontends
        ]

    run(runner.claim(1_000))
    run(runner.describe(1_000))
    assert listed(1_000) == [(2, ours)]
    # another process claims frontend 1
    assert claims(service.store, "other", {1: theirs}, 2_000, 0) == []
    run(runner.describe(3_000))
    assert listed(3_000) == [(1, theirs), (2, ours)]
    last = runner_module.LISTED_MS + 2_000
    run(runner.describe(last))  # still heard of
    assert len(published) == 2
    run(runner.describe(last + 1))  # no more
    assert listed(last + 1) == [(2, ours)]
    assert published == [
        {2: Address.parse(ours)},
        {1: Address.parse(theirs), 2: Address.parse(ours)},
        {2: Address.parse(ours)},  # its contact string: ",<ours>", frontend 2 stays 2
    ]
