"""`nymchat mixnet` as a program: what it prints, what it refuses, how it stops."""

import json
import signal
import subprocess
import time

import pytest
from procs import DIST, clean_env
from websockets.sync.client import connect

pytestmark = pytest.mark.cli


def start(shiv_root, tmp_path, *args):
    return subprocess.Popen(
        [str(DIST), "mixnet", "--port", "0", "--state", str(tmp_path / "state"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(shiv_root),
    )


def test_says_loudly_it_has_no_anonymity_and_stops_cleanly(shiv_root, tmp_path):
    proc = start(shiv_root, tmp_path, "--stats")
    line = proc.stdout.readline()
    assert line.startswith("listening on ws://127.0.0.1:")
    url = line.split()[2].removesuffix("/NAME")
    with connect(f"{url}/someone") as ws:
        ws.send(b"\x03")
        assert ws.recv(timeout=5)[0] == 0x02
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130  # Ctrl-C: it stopped cleanly, and the status says why
    assert "LOCAL TEST NETWORK" in err and "NO ANONYMITY" in err
    assert out.splitlines()[0].startswith("stats: messages=0 packets=0")
    assert out.splitlines()[-1] == "stopped"


def test_json_status_lines_and_sigterm(shiv_root, tmp_path):
    proc = start(shiv_root, tmp_path, "--json", "--delay", "nym", "--seed", "1")
    status = json.loads(proc.stdout.readline())
    assert status["event"] == "listening" and status["anonymity"] is False
    assert status["delay"] == "nym" and status["url"] == f"ws://127.0.0.1:{status['port']}"
    with connect(f"{status['url']}/a") as a, connect(f"{status['url']}/b") as b:
        b.send(b"\x03")
        bob = b.recv(timeout=5)[1:]
        started = time.monotonic()
        a.send(b"\x00" + bob + bytes(8) + (5).to_bytes(8, "big") + b"hello")
        b.recv(timeout=5)
        assert time.monotonic() - started > 0.02  # 3 hops of 15 ms mean, plus sending
    proc.send_signal(signal.SIGUSR1)
    assert json.loads(proc.stdout.readline())["delivered"] == 1
    proc.terminate()
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert json.loads(out.splitlines()[-1]) == {"event": "stopped"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "refusing to listen on 0.0.0.0"),
        (["--delay", "slow"], "delay 'slow'"),
        (["--loss", "1"], "a loss of 1 would lose every packet"),
        (["--duplicate", "2"], "not a probability"),
    ],
)
def test_refuses_bad_settings(shiv_root, tmp_path, args, message):
    out = subprocess.run(
        [str(DIST), "mixnet", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=clean_env(shiv_root, NYMCHAT_HOME=str(tmp_path)),
        timeout=30,
    )
    assert out.returncode == 2
    assert message in out.stderr


def test_port_in_use_is_a_clear_error(shiv_root, tmp_path):
    first = start(shiv_root, tmp_path, "--json")
    port = json.loads(first.stdout.readline())["port"]
    try:
        out = subprocess.run(
            [str(DIST), "mixnet", "--port", str(port), "--state", str(tmp_path / "other")],
            capture_output=True,
            text=True,
            env=clean_env(shiv_root),
            timeout=30,
        )
        assert out.returncode == 1
        assert f"nymchat: error: cannot listen on 127.0.0.1:{port}" in out.stderr
    finally:
        first.terminate()
        first.wait(timeout=15)


def test_bad_client_names_are_refused(shiv_root, tmp_path):
    proc = start(shiv_root, tmp_path, "--json")
    url = json.loads(proc.stdout.readline())["url"]
    try:
        with pytest.raises(Exception, match="404"):
            connect(f"{url}/{'x' * 65}").close()
        with connect(f"{url}/") as default:  # the path "/" is client "default"
            default.send(b"\x03")
            assert default.recv(timeout=5)[0] == 0x02
    finally:
        proc.terminate()
        proc.wait(timeout=15)
