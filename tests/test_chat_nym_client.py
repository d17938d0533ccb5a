"""`nymchat chat --nym-client-bin PATH --nym-id ID`: the chat starts a nym-client of the
user's own, talks through it, and stops it when the chat ends. The stand-in nym-client
(tests/test_node_ops.py) runs the local mixnet on its port, with its state kept, so the
node and bob find the same network again when the chat starts it anew."""

import json
import os
import signal
import socket
import subprocess
import time
from types import SimpleNamespace

import pytest
from procs import DIST, PASSPHRASE, NodeProcess, User, clean_env, wait_until_serving
from test_node_ops import fake_nym_client

pytestmark = pytest.mark.cli


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_chat_starts_its_own_nym_client_talks_through_it_and_stops_it(shiv_root, tmp_path):
    fake, port = fake_nym_client(tmp_path, shiv_root)
    url = f"ws://127.0.0.1:{port}"
    # the network as it was before: the same stand-in, started by hand, to register on
    (tmp_path / "port-setup").write_text(f"{port}\n")  # as `init --id setup` would note
    setup = subprocess.Popen([fake, "run", "--id", "setup"])
    node = None
    try:
        wait_for_port(port)
        node = NodeProcess(tmp_path / "node", shiv_root, f"{url}/node", "--pow-difficulty", "0")
        mixnet = SimpleNamespace(url=url)
        alice, bob = (User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob"))
        alice.register()
        bob.register()
        setup.terminate()
        setup.wait(timeout=15)

        chat = subprocess.Popen(
            [
                str(DIST),
                "--home",
                str(alice.home),
                "chat",
                "--json",
                "--nym-client-bin",
                fake,
                "--nym-id",
                "alice-client",
                "--nym",
                f"{url}/alice",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
        )
        try:
            wait_until_serving(alice.home, chat, timeout=60)
            assert (tmp_path / "init-calls").read_text().split() == [
                "init",
                "--id",
                "alice-client",
                "--port",
                str(port),
            ]
            started = int((tmp_path / "nym-client-alice-client.pid").read_text())
            os.kill(started, 0)  # running
            env = (tmp_path / "env-run").read_text()  # with what it needs, not the passphrase
            assert "PATH=" in env and PASSPHRASE not in env and "NYMCHAT_" not in env
            bob("send", "alice", "hi alice")
            event = json.loads(chat.stdout.readline())
            assert (event["event"], event["from"], event["text"]) == ("message", "bob", "hi alice")
            chat.stdin.write("hi bob\n")
            chat.stdin.flush()
            events = [json.loads(chat.stdout.readline()) for _ in range(2)]
            assert ("sent", "accepted") in [(e["event"], e.get("status")) for e in events]
            chat.stdin.write("/quit\n")
            chat.stdin.flush()
            assert chat.wait(timeout=30) == 0
        finally:
            chat.kill()
        with pytest.raises(ProcessLookupError):  # stopped with the chat
            os.kill(started, 0)
        assert "starting your nym-client (alice-client)" in chat.stderr.read()
        # bob reads alice's answer once a nym-client runs again
        setup = subprocess.Popen([fake, "run", "--id", "setup"])
        wait_for_port(port)
        assert [m["text"] for m in bob.json("inbox")] == ["hi bob"]
    finally:
        setup.terminate()
        setup.wait(timeout=15)
        if node is not None:
            node.stop()


def test_a_chat_stopped_by_sigterm_stops_its_nym_client(shiv_root, tmp_path):
    """SIGTERM while the chat waits for a nym-client that never answers: both end."""
    fake = tmp_path / "silent-nym-client"
    fake.write_text(f"""#!/bin/sh
case "$1" in
  init) exit 0 ;;
  run) echo $$ > {tmp_path}/pid; exec sleep 300 ;;
esac
exit 3
""")
    fake.chmod(0o755)
    chat = subprocess.Popen(
        [
            str(DIST),
            "--home",
            str(tmp_path / "alice"),
            "chat",
            "--nym-client-bin",
            str(fake),
            "--nym-id",
            "a",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(shiv_root),
    )
    try:
        assert "starting your nym-client (a)" in chat.stderr.readline()
        deadline = time.monotonic() + 30
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < deadline, "the nym-client was not started"
            time.sleep(0.1)
        started = int((tmp_path / "pid").read_text())
        chat.send_signal(signal.SIGTERM)
        assert chat.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        chat.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(started, 0)


def test_a_missing_nym_client_binary_is_one_clear_line(shiv_root, tmp_path):
    out = subprocess.run(
        [
            str(DIST),
            "--home",
            str(tmp_path / "home"),
            "chat",
            "--nym-client-bin",
            str(tmp_path / "no-such-nym-client"),
            "--nym-id",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=clean_env(shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    assert out.returncode == 6
    assert out.stderr.splitlines()[-1] == (
        f"nymchat: error: cannot run the nym-client {tmp_path / 'no-such-nym-client'}: no such file"
    )
    assert "Traceback" not in out.stderr


def test_nym_client_bin_and_nym_id_go_together(shiv_root, tmp_path):
    out = subprocess.run(
        [str(DIST), "--home", str(tmp_path), "chat", "--nym-id", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=clean_env(shiv_root),
    )
    assert out.returncode == 2 and "go together" in out.stderr
