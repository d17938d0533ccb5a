"""Running the built dist/nymchat as real processes, for tests and scripts/bench.py."""

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("NYMCHAT_DIST", ROOT / "dist" / "nymchat"))


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Sends `sig` and waits; a process still running after `timeout` s is killed (and that
    is an error: it ignored the signal)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"{proc.args[:2]} ignored signal {sig} for {timeout:g} s; killed"
            ) from None
    return proc.returncode


def clean_env(shiv_root: Path, **extra: str) -> dict[str, str]:
    """The environment without the caller's NYMCHAT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NYMCHAT_")}
    env["SHIV_ROOT"] = str(shiv_root)
    env.update(extra)
    return env


class MixnetProcess:
    """`nymchat mixnet --json --stats` on a free loopback port."""

    def __init__(self, state: Path, shiv_root: Path, *args: str, delay: str = "zero"):
        state.mkdir(parents=True, exist_ok=True)
        self.log = state / "mixnet.log"
        self.proc = subprocess.Popen(
            [
                str(DIST),
                "mixnet",
                "--port",
                "0",
                "--json",
                "--stats",
                "--delay",
                delay,
                "--state",
                str(state),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
            env=clean_env(shiv_root),
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            first = self.next_line(timeout=30)
            assert first["event"] == "listening", first
        except BaseException:
            self.proc.kill()
            raise
        self.url, self.port = first["url"], first["port"]

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_line(self, timeout: float = 10) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"mixnet said nothing for {timeout} s; its log: {self.log.read_text()}"
            ) from None

    def stats(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        line = self.next_line()
        assert line["event"] == "stats", line
        return line

    def stop(self) -> list[dict]:
        """SIGTERM; returns what it printed on the way out."""
        stop(self.proc)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return out


class NodeProcess:
    """`nymchat node` answering on `frontends` nym-clients: `nym_url`, then `nym_url-2`,
    ... (on a mixnet: its virtual clients NAME, NAME-2, ...)."""

    PASSWORD = "operator password"

    def __init__(self, data: Path, shiv_root: Path, nym_url: str, *args: str, frontends: int = 2):
        self.data = data
        self.log = data.with_name(data.name + ".log")
        urls = [nym_url] + [f"{nym_url}-{n}" for n in range(2, frontends + 1)]
        self.proc = subprocess.Popen(
            [str(DIST), "node", *(f"--nym={url}" for url in urls), "--data", str(data), *args],
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
            env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD=self.PASSWORD),
        )
        line = self.proc.stdout.readline()
        if not line.startswith("node contact: "):
            self.proc.kill()
            raise AssertionError(f"node did not start: {line!r} {self.log.read_text()}")
        self.contact = line.removeprefix("node contact: ").strip()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop(self.proc, sig)


PASSPHRASE = "correct horse battery"


def wait_until_serving(home: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Waits until `proc` (`chat`, `inbox --follow`) serves the profile in `home` on its
    control socket, i.e. it is connected and listening."""
    deadline = time.monotonic() + timeout
    while not (home / "control.sock").exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before serving {home}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing served {home} within {timeout:g} s")
        time.sleep(0.1)


class User:
    """A person running dist/nymchat commands with their own home, on a mixnet and node."""

    def __init__(self, name, home, shiv_root, mixnet, node, python=None):
        self.name, self.home, self.shiv_root = name, home, shiv_root
        self.command = [python, str(DIST)] if python else [str(DIST)]  # else its shebang
        self.nym = f"{mixnet.url}/{name}"
        self.contact = node.contact

    def __call__(self, *args, passphrase=PASSPHRASE, input=None, check=True, **env):
        """Runs the file as this user, with `env` (NAME=value) added to its environment."""
        out = subprocess.run(
            [*self.command, "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=90,
            env=clean_env(self.shiv_root, NYMCHAT_PASSPHRASE=passphrase, **env),
        )
        if check:
            assert out.returncode == 0, out.stderr
        return out

    def json(self, *args) -> list[dict]:
        return [json.loads(line) for line in self(*args, "--json").stdout.splitlines()]

    def register(self):
        self("keys", "new")
        return self("register", self.name, "--node", self.contact, "--nym", self.nym)


class WebProcess:
    """`nymchat web --no-browser` for the profile in `home` (extra arguments as given): its
    printed link, and signing in with it as the page does."""

    def __init__(self, home: Path, shiv_root: Path, *args: str, **env: str):
        self.log = home.with_name(home.name + "-web.log")
        self.proc = subprocess.Popen(
            [str(DIST), "--home", str(home), "web", "--no-browser", *args],
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
            env=clean_env(shiv_root, **env),
        )
        self.line = self.proc.stdout.readline()
        if not self.line.startswith("nymchat web: open http://"):
            self.proc.kill()
            raise AssertionError(f"web did not start: {self.line!r} {self.log.read_text()}")
        self.url = self.line.removeprefix("nymchat web: open ").strip()
        self.origin = self.url.split("/?")[0]  # http://127.0.0.1:PORT
        self.host = self.origin.removeprefix("http://")
        self.port = int(self.host.rpartition(":")[2])
        self.key: str | None = None  # the session's key, once `sign_in` has it

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
        """The response to one plain HTTP request (its body read)."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            response.body = response.read()
            return response
        finally:
            connection.close()

    def sign_in(self) -> str:
        """Trades the link's token for the session cookie ("nymchat_session_PORT=..."); the
        session's key (the redirect's fragment, which the API's websocket needs too) is
        kept as `self.key`."""
        response = self.get("/" + self.url.split("/", 3)[3])
        assert response.status == 303, (response.status, response.body)
        self.key = response.getheader("Location").removeprefix("/#key=")
        return response.getheader("Set-Cookie").split(";")[0]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop(self.proc, sig)
