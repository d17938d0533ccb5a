"""A node on several nym-clients (frontends): its settings, the runner keying everything by
route and answering through the frontend a request came on, the signed descriptor, and the
node process on two frontends (docs/PROTOCOL.md, "Frontends")."""

import argparse
import asyncio
import os
import re
import subprocess
from contextlib import asynccontextmanager

import pytest
from inprocess import InProcessMixnet, InProcessTransport, run, until
from nodeclient import Client
from procs import DIST, NodeProcess, clean_env
from test_node_ops import supervised_node

from nymchat import _native
from nymchat.client.nodelink import NodeRefused
from nymchat.node import runner as runner_module
from nymchat.node.database import StoreUnavailable
from nymchat.node.metrics import render
from nymchat.node.routes import route, split_route
from nymchat.node.runner import NodeRunner
from nymchat.node.service import NodeConfig, Outgoing
from nymchat.node.settings import (
    SettingsError,
    add_arguments,
    frontends,
    resolve,
    without_password,
)
from nymchat.node.store import open_sqlite
from nymchat.node.watches import Watches
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

# --- settings --------------------------------------------------------------------------


def settings(tmp_path, *argv: str, toml: str | None = None, env: dict | None = None) -> dict:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    if toml is not None:
        (tmp_path / "node.toml").write_text(toml)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        values, _ = resolve(parser.parse_args(["--data", str(tmp_path), *argv]), tmp_path)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return values


def test_print_config_shows_a_store_url_without_its_password(tmp_path, capsys):
    from nymchat.commands.node import _print_config

    url = "postgresql://nymchat:s3cret@127.0.0.1:5432/nymchat?sslmode=disable&password=other"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    _print_config(*resolve(parser.parse_args(["--data", str(tmp_path), "--store", url]), tmp_path))
    printed = capsys.readouterr().out
    assert "s3cret" not in printed and "other" not in printed
    assert (
        'store = "postgresql://nymchat:***@127.0.0.1:5432/nymchat?sslmode=disable&password=***"'
        in printed
    )
    assert settings(tmp_path, env={"NYMCHAT_NODE_STORE": "/srv/node.db"})["store"] == "/srv/node.db"
    assert without_password("/srv/node.db") == "/srv/node.db"  # a path is shown as it is


def planned(tmp_path, *argv: str, **kw) -> list[tuple[int, str, str | None]]:
    return [(f.id, f.url, f.nym_id) for f in frontends(settings(tmp_path, *argv, **kw))]


def test_the_default_is_one_frontend_on_the_usual_port(tmp_path):
    assert planned(tmp_path) == [(1, "ws://127.0.0.1:1977", None)]


def test_nym_is_repeatable_and_frontends_follow_its_order(tmp_path):
    argv = ("--nym", "ws://127.0.0.1:1977/b", "--nym", "ws://127.0.0.1:1977/a")
    assert planned(tmp_path, *argv) == [
        (1, "ws://127.0.0.1:1977/b", None),
        (2, "ws://127.0.0.1:1977/a", None),
    ]
    assert planned(tmp_path, *argv, "--frontends", "2")[1][0] == 2


def test_nym_in_toml_is_a_string_or_a_list_and_in_the_environment_comma_separated(tmp_path):
    assert settings(tmp_path, toml='nym = "ws://h:1"\n')["nym"] == ["ws://h:1"]
    assert settings(tmp_path, toml='nym = ["ws://h:1", "ws://h:2"]\n')["nym"] == [
        "ws://h:1",
        "ws://h:2",
    ]
    from_env = settings(tmp_path, env={"NYMCHAT_NODE_NYM": "ws://h:1, ws://h:2"})
    assert from_env["nym"] == ["ws://h:1", "ws://h:2"]
    flags_win = settings(tmp_path, "--nym", "ws://h:3", env={"NYMCHAT_NODE_NYM": "ws://h:1"})
    assert flags_win["nym"] == ["ws://h:3"]


def test_print_config_writes_what_config_loads_back(shiv_root, tmp_path):
    def print_config(*args):
        out = subprocess.run(
            [str(DIST), "node", "--data", str(tmp_path), "--print-config", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(shiv_root),
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    written = print_config("--nym", "ws://127.0.0.1:1/a", "--nym", "ws://127.0.0.1:2/b")
    assert 'nym = ["ws://127.0.0.1:1/a", "ws://127.0.0.1:2/b"]  # command line' in written
    (tmp_path / "written.toml").write_text(written)
    loaded = print_config("--config", str(tmp_path / "written.toml"))
    assert 'nym = ["ws://127.0.0.1:1/a", "ws://127.0.0.1:2/b"]' in loaded
    assert "# frontends =  # unset" in loaded


def test_a_supervised_node_runs_two_frontends_by_default_on_consecutive_ports(tmp_path):
    bin_ = ("--nym-client-bin", "/bin/true", "--nym-id", "me")
    assert planned(tmp_path, "--nym", "ws://127.0.0.1:2000/x", *bin_) == [
        (1, "ws://127.0.0.1:2000/x", "me"),
        (2, "ws://127.0.0.1:2001/x", "me-2"),
    ]
    three = planned(tmp_path, *bin_, "--frontends", "3")
    assert [(n, url, i) for n, url, i in three] == [
        (1, "ws://127.0.0.1:1977", "me"),
        (2, "ws://127.0.0.1:1978", "me-2"),
        (3, "ws://127.0.0.1:1979", "me-3"),
    ]
    assert len(planned(tmp_path, *bin_, "--frontends", "1")) == 1


@pytest.mark.parametrize(
    ("argv", "toml", "message"),
    [
        (("--nym", "ws://h:1", "--nym", "ws://h:1"), None, "names a URL twice"),
        (("--frontends", "2"), None, "--frontends 2 but 1 --nym URL(s)"),
        (("--frontends", "0", "--nym-client-bin", "x", "--nym-id", "i"), None, "1 to 16"),
        (("--frontends", "17", "--nym-client-bin", "x", "--nym-id", "i"), None, "1 to 16"),
        (
            ("--nym", "ws://h:1", "--nym", "ws://h:2", "--nym-client-bin", "x", "--nym-id", "i"),
            None,
            "give one --nym URL",
        ),
        (("--nym", "http://h:1"), None, "give a websocket URL"),
        (("--nym", "ws://h:99999"), None, "the port is not valid"),
        (
            ("--nym", "ws://h:65535", "--nym-client-bin", "x", "--nym-id", "i"),
            None,
            "no room for 2 ports",
        ),
        ((), "nym = [1, 2]\n", "'nym' must be a str or a list of str"),
    ],
)
def test_frontend_settings_that_cannot_work_are_clear_errors(tmp_path, argv, toml, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        frontends(settings(tmp_path, *argv, toml=toml))


def test_the_node_command_refuses_bad_frontends_before_asking_anything(shiv_root, tmp_path):
    out = subprocess.run(
        [str(DIST), "node", "--data", str(tmp_path), "--frontends", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root),
    )
    assert out.returncode == 2
    assert "without --nym-client-bin the node answers on one nym-client per --nym" in out.stderr


# --- the runner, on the in-process mixnet, with a stand-in service ------------------------


class StubGroups:
    """What the runner uses of the service's group handlers: its held watches (none)."""

    def __init__(self):
        self.watches = Watches()

    async def answer_watches(self, now):
        return []


class StubService:
    """What the runner uses of a `NodeService`: answers each request (`b"answer " + it`)
    to its route, and pushes to the route of a user's latest request (a request's bytes
    name its user), as the service does with `users.sender_tag`."""

    def __init__(self):
        self.identity = _native.Identity.generate()
        self.config = NodeConfig()
        self.store = open_sqlite(":memory:", os.urandom(32))  # the frontends' registry
        self.descriptor: bytes | None = None
        self.latest: dict[bytes, bytes] = {}  # user → route of their latest request
        self.routes: list[bytes] = []
        self.to_push: list[bytes] = []
        self.groups = StubGroups()

    async def known_tag(self, key: bytes) -> bool:
        return key in self.latest.values()

    async def handle_batch(self, items, now):
        out = []
        for data, key in items:
            self.latest[data] = key
            self.routes.append(key)
            out.append(Outgoing(key, b"answer " + data, os.urandom(16)))
        return out

    async def due_pushes(self, now):
        pushes = [Outgoing(self.latest[u], b"push " + u, os.urandom(16)) for u in self.to_push]
        self.to_push.clear()
        return pushes

    async def maintain(self, now):
        return 0, 0


class User:
    """A program with its own nym-client that sends requests to a frontend's address and
    reads what comes back."""

    def __init__(self, transport: InProcessTransport):
        self.transport = transport
        self.reassembler = _native.Reassembler(
            max_message_bytes=1 << 20,
            max_pending_bytes=1 << 22,
            max_pending_messages=64,
            max_source_messages=64,
            max_source_bytes=1 << 22,
            ttl=60.0,
        )

    async def send(self, address, message: bytes) -> None:
        for frame in _native.encode_frames(message, os.urandom(16)):
            await self.transport.send_anonymous(address, frame, 5)

    async def next(self) -> bytes:
        async for received in self.transport:
            done = self.reassembler.push(received.message, 0.0, b"node")
            if done is not None:
                return done[1]
        raise AssertionError("the transport closed")


@asynccontextmanager
async def serving(mixnet: InProcessMixnet, count: int = 2, **kw):
    """The runner on `count` in-process frontends of a stand-in service, stopped on the way
    out."""
    service = StubService()
    transports = [InProcessTransport(mixnet, f"node-{n}") for n in range(1, count + 1)]
    for transport in transports:
        await transport.start()
    runner = NodeRunner(service, transports, **kw)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
        assert not task.done()  # the loop carried on through whatever the test did
    finally:
        stop.set()
        await task


async def user(mixnet: InProcessMixnet, name: str) -> User:
    transport = InProcessTransport(mixnet, name)
    await transport.start()
    return User(transport)


def test_routes_are_the_frontend_id_then_the_sender_tag():
    tag = os.urandom(16)
    assert route(3, tag) == b"\x00\x03" + tag
    assert split_route(route(513, tag)) == (513, tag)


def test_an_answer_leaves_through_the_frontend_its_request_came_on(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            alice = await user(mixnet, "alice")
            for n, transport in enumerate(transports, 1):
                await alice.send(transport.address, b"alice %d" % n)
                assert await asyncio.wait_for(alice.next(), 5) == b"answer alice %d" % n
            # the service saw two routes, one per frontend, each with that frontend's id
            assert [split_route(key)[0] for key in service.routes] == [1, 2]
            assert len({split_route(key)[1] for key in service.routes}) == 2  # a tag each
            assert mixnet.model.stats.get("dropped_unknown_tag", 0) == 0

    run(main())


def test_a_batch_the_database_failed_goes_unanswered_and_the_node_carries_on(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            service, [frontend, _] = runner.service, list(runner.frontends.values())
            handle = service.handle_batch

            async def unreachable(items, now):
                service.handle_batch = handle  # the database comes back
                raise StoreUnavailable("the node's database cannot be reached: gone")

            service.handle_batch = unreachable
            alice = await user(mixnet, "alice")
            await alice.send(frontend.address, b"lost")
            await until(lambda: service.handle_batch == handle)
            await alice.send(frontend.address, b"alice")
            assert await asyncio.wait_for(alice.next(), 5) == b"answer alice"

    run(main())


def test_a_push_leaves_through_the_frontend_of_the_users_latest_request(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            alice = await user(mixnet, "alice")
            await alice.send(transports[0].address, b"alice")
            await asyncio.wait_for(alice.next(), 5)
            await alice.send(transports[1].address, b"alice")  # she moved to frontend 2
            await asyncio.wait_for(alice.next(), 5)
            sent = {n: 0 for n in (1, 2)}
            for n, transport in enumerate(transports, 1):
                reply = transport.reply

                async def counted(tag, frame, n=n, reply=reply):
                    sent[n] += 1
                    await reply(tag, frame)

                transport.reply = counted
            service.to_push.append(b"alice")
            assert await asyncio.wait_for(alice.next(), 5) == b"push alice"
            assert sent == {1: 0, 2: 1}

    run(main())


def test_an_answer_for_an_unknown_or_disconnected_frontend_is_dropped_and_counted(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            alice = await user(mixnet, "alice")
            await alice.send(transports[0].address, b"alice")
            await asyncio.wait_for(alice.next(), 5)
            tag = split_route(service.latest[b"alice"])[1]
            await runner._send(
                [
                    Outgoing(route(9, tag), b"nowhere", os.urandom(16)),
                    Outgoing(b"\x00", b"no tag", os.urandom(16)),
                ]
            )
            assert runner.dropped["unknown_frontend"] == 2
            transports[0].lose()
            service.to_push.append(b"alice")  # her route is on the frontend that is down
            await asyncio.sleep(runner_module.PUSH_INTERVAL * 1.5)
            assert runner.dropped["frontend_down"] == 1

    run(main())


def test_with_one_frontend_down_the_other_still_answers(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            transports = list(runner.frontends.values())
            alice, bob = await user(mixnet, "alice"), await user(mixnet, "bob")
            transports[0].lose()
            await alice.send(transports[1].address, b"alice")
            assert await asyncio.wait_for(alice.next(), 5) == b"answer alice"
            await bob.send(transports[0].address, b"bob")  # waits in the mixnet meanwhile
            assert runner.connected == 1
            page = await render_page(runner)
            assert "nymchat_node_frontends 2" in page
            assert "nymchat_node_frontends_connected 1" in page
            transports[0].restore()
            assert await asyncio.wait_for(bob.next(), 5) == b"answer bob"

    run(main())


async def render_page(runner: NodeRunner) -> str:
    class Store:
        async def count_users(self):
            return 0

        async def count_queued(self):
            return 0

        async def count_homed(self, frontend):
            return 0

    from nymchat.node.metrics import Histogram

    runner.service.store = Store()
    runner.service.counts = {}
    runner.service.relay_seconds = Histogram()
    return await render(runner)


def test_metrics_hold_no_route_or_tag(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            alice = await user(mixnet, "alice")
            await alice.send(transports[0].address, b"alice")
            await asyncio.wait_for(alice.next(), 5)
            page = await render_page(runner)
            for key in service.routes:
                for text in (key.hex(), key[2:].hex(), str(key)):
                    assert text not in page
            assert 'nymchat_node_dropped_total{reason="frontend_down"} 0' in page

    run(main())


# --- the frontend descriptor --------------------------------------------------------------


def test_the_descriptor_is_signed_once_every_frontend_is_known_and_lists_them_all(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        published = []
        async with serving(mixnet, 3, on_published=published.append) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            await until(lambda: service.descriptor, "a descriptor")
            key = _native.PublicKey(service.identity.signing_public)
            now = runner_module.now_ms()
            descriptor = wire.decode_descriptor(service.descriptor, key, now)
            assert [(f.id, f.address) for f in descriptor.frontends] == [
                (n, str(t.address)) for n, t in enumerate(transports, 1)
            ]
            assert now - 10_000 < descriptor.issued <= now
            assert descriptor.expires == descriptor.issued + wire.DESCRIPTOR_TTL_MS
            assert published == [dict(enumerate((t.address for t in transports), 1))]

    run(main())


def test_no_descriptor_while_a_frontend_address_is_unknown():
    service = StubService()

    class Unstarted:
        address = None
        connected = False

    runner = NodeRunner(service, [Unstarted(), Unstarted()])
    run(runner.describe(1_000))
    assert service.descriptor is None and runner.published is None


def test_the_descriptor_is_signed_again_when_a_frontend_changes_address(tmp_path):
    async def main():
        mixnet = InProcessMixnet(tmp_path)
        published = []
        async with serving(mixnet, on_published=published.append) as runner:
            service, transports = runner.service, list(runner.frontends.values())
            await until(lambda: service.descriptor, "a descriptor")
            first = service.descriptor
            transports[1].lose()
            transports[1].restore()  # the same address: nothing to sign
            await asyncio.sleep(0.05)
            assert service.descriptor == first
            other = await user(mixnet, "elsewhere")  # an address the frontend comes back with
            transports[1].address = other.transport.address
            transports[1].on_change("address-changed")
            await until(lambda: service.descriptor != first, "a new descriptor")
            key = _native.PublicKey(service.identity.signing_public)
            descriptor = wire.decode_descriptor(service.descriptor, key, runner_module.now_ms())
            assert descriptor.frontends[1] == wire.Frontend(2, str(other.transport.address))
            assert len(published) == 2 and published[1][2] == other.transport.address

    run(main())


def test_the_descriptor_is_signed_again_every_day_unchanged(tmp_path):
    service = StubService()

    class Known:
        def __init__(self, address):
            self.address, self.connected = address, True

    from nymchat.nym.address import Address

    addresses = [Address.parse(a) for a in _addresses(tmp_path, 2)]
    published = []
    runner = NodeRunner(service, [Known(a) for a in addresses], published.append)
    run(runner.describe(1_000, always=True))
    first = service.descriptor
    run(runner.describe(2_000))  # nothing new: kept
    assert service.descriptor == first
    run(runner.describe(86_401_000, always=True))  # the daily signature
    key = _native.PublicKey(service.identity.signing_public)
    assert wire.decode_descriptor(service.descriptor, key, 86_402_000).issued == 86_401_000
    assert len(published) == 1  # the same addresses: contact.txt stays


def test_reconnections_do_not_put_off_the_daily_signature(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "RESIGN_MS", 1500)

    async def main():
        mixnet = InProcessMixnet(tmp_path)
        async with serving(mixnet) as runner:
            await until(lambda: runner.issued, "a descriptor")
            first = runner.issued
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while runner.issued == first and loop.time() < deadline:
                runner.frontends[1].on_change("reconnected")  # the same address
                await asyncio.sleep(0.1)
            assert runner.issued - first >= 1500  # re-signed, unchanged, on time

    run(main())


def _addresses(state, n: int) -> list[str]:
    from nymchat.mixnet.identities import IdentityStore

    return [str(IdentityStore(state).address(f"x{k}")) for k in range(n)]


# --- the node process on two frontends ----------------------------------------------------


async def answered(url: str, key: bytes, address) -> bool:
    """Whether a signed request sent to the frontend at `address` gets the node's signed
    answer (a refusal: this key is not registered). The answer can only come back
    through the nym-client that received the request: the mixnet drops a reply to a
    sender tag another client received."""
    async with Client(url, str(NodeContact(key, (address,)))) as c:
        with pytest.raises(NodeRefused) as refused:
            await c.request(Kind.FETCH, max=1)
        return refused.value.code is ErrorCode.NOT_REGISTERED


def test_the_node_answers_on_each_frontend_and_publishes_every_address(
    start_mixnet, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    node = NodeProcess(tmp_path / "node", shiv_root, f"{mixnet.url}/node")
    try:
        contact = NodeContact.parse(node.contact)
        assert len(contact.addresses) == 2
        assert (node.data / "contact.txt").read_text() == f"{contact}\n"
        lines = (node.data / "nym_address.txt").read_text().splitlines()
        assert lines == [str(a) for a in contact.addresses]

        for n, address in enumerate(contact.addresses, 1):
            assert asyncio.run(answered(f"{mixnet.url}/user{n}", contact.key, address))
        assert "one frontend" not in node.log.read_text()
    finally:
        assert node.stop() == 0


def test_a_node_on_one_frontend_warns_once_that_messages_are_not_sealed(
    start_mixnet, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    node = NodeProcess(tmp_path / "node", shiv_root, f"{mixnet.url}/node", frontends=1)
    assert node.stop() == 0
    log = node.log.read_text()
    assert log.count("one frontend: this node's users cannot seal their messages") == 1
    assert "WARNING" in log.split("one frontend:")[0].splitlines()[-1]


def test_supervised_frontends_have_their_ids_and_ports_and_each_answers(shiv_root, tmp_path):
    node, port = supervised_node(tmp_path, shiv_root, "front")
    try:
        assert sorted((tmp_path / "init-calls").read_text().splitlines()) == [
            f"init --id front --port {port}",
            f"init --id front-2 --port {port + 1}",
        ]
        contact = NodeContact.parse(node.contact)

        # each fake nym-client is a mixnet of its own: frontend k is reached on its port
        for k, address in enumerate(contact.addresses):
            url = f"ws://127.0.0.1:{port + k}/someone"
            assert asyncio.run(answered(url, contact.key, address))
    finally:
        assert node.stop() == 0


@pytest.mark.cli
def test_the_node_keeps_its_users_in_the_store_it_is_given(start_mixnet, start_node, tmp_path):
    import sqlite3

    mixnet = start_mixnet()
    elsewhere = tmp_path / "disk" / "nymchat-node.db"
    elsewhere.parent.mkdir()
    node = start_node(mixnet, "--store", str(elsewhere))

    async def register() -> None:
        async with Client(f"{mixnet.url}/alice", node.contact) as alice:
            assert (await alice.register("alice")).kind is Kind.REGISTERED

    asyncio.run(register())
    assert not (node.data / "node.db").exists()
    assert elsewhere.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(elsewhere) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)
