"""The node's listener for operators: /health, /ready, per-frontend metrics, who may
reach it; and what the node logs about its frontends and requests."""

import asyncio
import base64
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from nodeclient import Anonymous, Client
from procs import DIST, clean_env

from nymchat.node.database import StoreUnavailable
from nymchat.node.metrics import parse_listen, unready
from nymchat.node.store import NodeStore
from nymchat.nym import base58
from nymchat.protocol.wire import Kind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:g} s")
        time.sleep(0.2)
    return result


def sample(page: str, name: str, frontend: int) -> int:
    prefix = f'{name}{{frontend="{frontend}"}} '
    [line] = [line for line in page.splitlines() if line.startswith(prefix)]
    return int(line.removeprefix(prefix))


@pytest.mark.cli
def test_ready_follows_the_frontends_health_stays_and_the_log_names_no_one(
    start_mixnet, start_node, tmp_path
):
    state = tmp_path / "mixnet"
    mixnet = start_mixnet(state=state)
    port = free_port()
    node = start_node(mixnet, "-v", "--metrics", f"127.0.0.1:{port}")
    assert get(port, "/health") == (200, "ok\n")
    assert get(port, "/ready") == (200, "ready\n")
    assert get(port, "/nothing")[0] == 404

    async def traffic():
        async with (
            Client(f"{mixnet.url}/alice", node.contact) as alice,
            Client(f"{mixnet.url}/bob", node.contact) as bob,
            Anonymous(f"{mixnet.url}/someone", node.contact) as someone,
        ):
            await alice.register("alice")
            await bob.register("bob")
            sealed = await someone.seal("alice", b"a secret note", work=16)
            assert sealed.kind is Kind.ACCEPTED
            return [str(c.transport.address) for c in (alice, bob, someone)]

    addresses = asyncio.run(traffic())
    page = get(port, "/metrics")[1]
    assert [sample(page, "nymchat_node_frontend_connected", n) for n in (1, 2)] == [1, 1]
    homed = [sample(page, "nymchat_node_frontend_users_homed", n) for n in (1, 2)]
    assert sum(homed) == 2  # alice and bob, wherever they are homed
    sent = [sample(page, "nymchat_node_frontend_packets_sent_total", n) for n in (1, 2)]
    # the users' answers leave through their home, the sealed send's through frontend 2
    assert sent[1] and all(packets for packets, users in zip(sent, homed, strict=True) if users)

    mixnet.stop()  # both frontends lose their nym-client
    _, body = until(lambda: (answer := get(port, "/ready"))[0] == 503 and answer, "503")
    assert body == "not ready: no frontend is connected to its nym-client\n"
    assert get(port, "/health") == (200, "ok\n")
    page = get(port, "/metrics")[1]
    assert [sample(page, "nymchat_node_frontend_connected", n) for n in (1, 2)] == [0, 0]
    start_mixnet("--port", str(mixnet.port), state=state)
    until(lambda: get(port, "/ready")[0] == 200, "ready again")

    log = until(lambda: "frontend 2 is back" in (text := node.log.read_text()) and text, "log")
    for frontend in (1, 2):
        assert f"WARNING nymchat.node.runner: frontend {frontend} lost its nym-client" in log
        assert f"INFO nymchat.node.runner: frontend {frontend} is back" in log
    for kind in ("register_begin", "register_finish", "sealed_send"):
        assert f"nymchat.node.service: request {kind}: ok in " in log
    with sqlite3.connect(node.data / "node.db") as db:
        routes = [row[0] for row in db.execute("SELECT sender_tag FROM users")]
    assert len(routes) == 2
    secrets = ["alice", "bob", "secret note", *addresses]
    for route in routes:
        for tag in (route, route[2:]):
            secrets += [tag.hex(), base58.encode(tag), base64.b64encode(tag).decode()]
            secrets += [base64.urlsafe_b64encode(tag).decode().rstrip("=")]
    assert [secret for secret in secrets if secret in log] == []


def test_ready_is_503_with_the_reason_when_the_database_fails():
    class Db:
        def __init__(self, fails):
            self.fails = fails

        async def fetchone(self, sql, params=()):
            assert sql == "SELECT 1"
            if self.fails == "unreachable":
                raise StoreUnavailable("the node's database cannot be reached: refused")
            if self.fails == "slow":
                await asyncio.sleep(60)
            return (1,)

    class Node:
        def __init__(self, fails=None, connected=1):
            self.service = type("Service", (), {})()
            self.service.store = NodeStore(Db(fails), bytes(32))  # type: ignore[arg-type]
            self.connected = connected

    assert asyncio.run(unready(Node())) is None
    assert asyncio.run(unready(Node(connected=0))) == "no frontend is connected to its nym-client"
    assert asyncio.run(unready(Node("unreachable"))) == (
        "the node's database cannot be reached: refused"
    )
    assert asyncio.run(unready(Node("slow"))) == "the database did not answer within 2 s"


def test_metrics_listen_beyond_loopback_only_when_told():
    assert parse_listen("127.0.0.1:9477") == ("127.0.0.1", 9477)
    assert parse_listen("[::1]:9477") == ("::1", 9477)
    assert parse_listen("0.0.0.0:9100", public=True) == ("0.0.0.0", 9100)
    with pytest.raises(ValueError, match="counts an observer should not see"):
        parse_listen("0.0.0.0:9100")
    with pytest.raises(ValueError, match="give a loopback HOST:PORT"):
        parse_listen("localhost:9100", public=True)


@pytest.mark.cli
@pytest.mark.parametrize(
    ("public", "env"),
    [(["--metrics-public"], {}), ([], {"NYMCHAT_NODE_METRICS_PUBLIC": "true"})],
)
def test_the_node_refuses_a_public_metrics_address_unless_told(shiv_root, tmp_path, public, env):
    def node(*args, **extra):
        return subprocess.run(
            [str(DIST), "node", "--data", str(tmp_path), "--metrics", "0.0.0.0:9100", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD="x" * 10, **extra),
        )

    refused = node()
    assert refused.returncode == 2
    assert "the metrics show counts an observer should not see" in refused.stderr
    assert "--metrics-public" in refused.stderr
    # told: the address passes (the next check, of another setting, is what stops it here,
    # so that nothing listens beyond loopback in a test)
    told = node(*public, "--queue-stranger-share", "2", **env)
    assert told.returncode == 2
    assert "metrics" not in told.stderr and "queue-stranger-share" in told.stderr
    shown = node(*public, "--print-config", **env)
    origin = "command line" if public else "environment"
    assert f"metrics_public = true  # {origin}\n" in shown.stdout
    assert "metrics_public = false  # default\n" in node("--print-config").stdout
