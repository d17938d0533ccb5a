"""Operating `nymchat node`: settings, metrics, a supervised nym-client."""

import asyncio
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from nodeclient import Anonymous, Client
from procs import DIST, NodeProcess, clean_env

from nymchat.protocol.wire import Kind

pytestmark = pytest.mark.cli


def test_print_config_shows_each_setting_and_its_origin(shiv_root, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "node.toml").write_text('pow_difficulty = 20\nretention-days = 3\nnym = "ws://x"\n')
    out = subprocess.run(
        [str(DIST), "node", "--data", str(data), "--print-config", "--nym", "ws://flag"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root, NYMCHAT_NODE_RETENTION_DAYS="7"),
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" = ", 1) for line in out.stdout.splitlines())
    assert lines["nym"] == '["ws://flag"]  # command line'  # a list: --nym repeats
    assert lines["retention_days"] == "7  # environment"
    assert lines["pow_difficulty"] == f"20  # {data / 'node.toml'}"
    assert lines["freshness"] == "120  # default"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ("pow_difficulty = 'x'\n", "'pow_difficulty' must be a int"),
        ("not toml", "cannot read"),
    ],
)
def test_bad_config_files_are_clear_errors(shiv_root, tmp_path, toml, message):
    (tmp_path / "node.toml").write_text(toml)
    out = subprocess.run(
        [str(DIST), "node", "--data", str(tmp_path), "--print-config"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root),
    )
    assert out.returncode == 2
    assert message in out.stderr


def test_metrics_on_loopback(start_mixnet, start_node, tmp_path):
    mixnet = start_mixnet()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = start_node(mixnet, "--metrics", f"127.0.0.1:{port}")

    async def traffic():
        async with (
            Client(f"{mixnet.url}/alice", node.contact) as alice,
            Anonymous(f"{mixnet.url}/someone", node.contact) as someone,
        ):
            await alice.register("alice")
            assert (await someone.seal("alice", b"a note", work=16)).kind is Kind.ACCEPTED

    asyncio.run(traffic())
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "nymchat_node_users 1" in page
    assert "nymchat_node_queued_messages 1" in page
    assert 'nymchat_node_requests_total{kind="sealed_send",result="ok"} 1' in page
    assert "nymchat_node_frontends 2" in page
    assert "nymchat_node_frontends_connected 2" in page
    assert "nymchat_node_relay_seconds_count 0" in page
    assert "alice" not in page and "note to self" not in page


def test_metrics_refuse_other_interfaces(shiv_root, tmp_path):
    out = subprocess.run(
        [str(DIST), "node", "--data", str(tmp_path), "--metrics", "0.0.0.0:9477"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD="x" * 10),
    )
    assert out.returncode == 2
    assert "give a loopback HOST:PORT" in out.stderr


def free_ports(n: int) -> int:
    """The first of `n` consecutive loopback ports free now."""
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        try:
            for port in range(first + 1, first + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


def fake_nym_client(tmp_path, shiv_root, clients: int = 2) -> tuple[str, int]:
    """A stand-in nym-client: `init --id ID --port P` marks (and notes its environment and
    port), `run --id ID` notes its environment and is a local mixnet on ID's port, its
    state kept per port (a client reaches the node's frontend k on port + k - 1; another
    id on the same port finds the same network). Returns its path and the first port."""
    port = free_ports(clients)
    fake = tmp_path / "fake-nym-client"
    fake.write_text(f"""#!/bin/sh
env > {tmp_path}/env-"$1"
case "$1" in
  init) echo "$@" >> {tmp_path}/init-calls; echo "$5" > {tmp_path}/port-"$3"; exit 0 ;;
  run) echo $$ > {tmp_path}/nym-client-"$3".pid
       port=$(cat {tmp_path}/port-"$3")
       SHIV_ROOT={shiv_root} exec {DIST} mixnet --port "$port" \\
           --delay zero --state {tmp_path}/mixnet-"$port" ;;
esac
exit 3
""")
    fake.chmod(0o755)
    return str(fake), port


def supervised_node(tmp_path, shiv_root, nym_id: str, *args: str) -> tuple[NodeProcess, int]:
    """A node that starts and supervises its nym-clients (the stand-in above, --frontends
    2 by default) from one --nym URL; returns it and its first nym-client's port."""
    fake, port = fake_nym_client(tmp_path, shiv_root)
    node = NodeProcess(
        tmp_path / "node",
        shiv_root,
        f"ws://127.0.0.1:{port}/node",
        "--nym-client-bin",
        fake,
        "--nym-id",
        nym_id,
        *args,
        frontends=1,  # one --nym: the node runs its --frontends nym-clients from its port
    )
    return node, port


def test_supervised_nym_client_is_started_and_restarted(shiv_root, tmp_path):
    """The node initialises its nym-clients once, runs them, restarts one when it dies, and
    reconnects."""
    node, port = supervised_node(tmp_path, shiv_root, "nymchat-node", "--pow-difficulty", "0")
    try:
        assert sorted((tmp_path / "init-calls").read_text().splitlines()) == [
            f"init --id nymchat-node --port {port}",
            f"init --id nymchat-node-2 --port {port + 1}",
        ]

        async def use(name):
            async with Client(f"ws://127.0.0.1:{port}/{name}", node.contact) as c:
                return (await c.register(name)).kind

        assert asyncio.run(use("alice")) is Kind.REGISTERED
        os.kill(int((tmp_path / "nym-client-nymchat-node.pid").read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert asyncio.run(use("bob")) is Kind.REGISTERED
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert len((tmp_path / "init-calls").read_text().splitlines()) == 2
    finally:
        assert node.stop() == 0


def test_the_supervised_nym_client_never_sees_the_node_password(shiv_root, tmp_path):
    node, _ = supervised_node(tmp_path, shiv_root, "nymchat-node")
    node.stop()
    for step in ("init", "run"):
        env = (tmp_path / f"env-{step}").read_text()
        assert NodeProcess.PASSWORD not in env and "NYMCHAT_" not in env
        assert "PATH=" in env  # what a program needs is kept


def test_logs_are_structured_and_hold_no_content_or_names(start_mixnet, start_node):
    mixnet = start_mixnet()
    node = start_node(mixnet, "-v", "--log-format", "json")
    tags = []

    async def traffic():
        async with (
            Anonymous(f"{mixnet.url}/alice", node.contact) as alice,
            Client(f"{mixnet.url}/bob", node.contact) as bob,
        ):
            await bob.register("bob")
            await alice.seal("bob", b"secret words", work=16)
            push = await bob.push()
            while push.kind is not Kind.DELIVER:
                push = await bob.push()
            tags.append(push)

    asyncio.run(traffic())
    assert node.stop() == 0
    import json

    from nymchat.nym import base58

    entries = [json.loads(line) for line in node.log.read_text().splitlines()]
    assert {"serving 0 users with 0 queued messages on 2 frontends", "stopped"} <= {
        e["msg"] for e in entries
    }
    text = node.log.read_text()
    assert "secret words" not in text and "alice" not in text
    assert base58.encode(tags[0].body["message_id"]) not in text
