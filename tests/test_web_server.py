"""`nymchat web` as the built file: the printed link, what is refused without it, the
cookie, the API on the websocket (setup, then the engine), on real mixnet and node
processes; plain HTTP and websocket clients, no browser."""

import asyncio
import json
import re
import signal
import socket
import subprocess
import time

import pytest
from procs import DIST, PASSPHRASE, User, WebProcess, clean_env, stop, wait_until_serving
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


@pytest.fixture
def start_web(shiv_root, tmp_path):
    """Starts `dist/nymchat web --no-browser` for a home; stops them all after."""
    started = []

    def start(home, *args: str, **env: str) -> WebProcess:
        web = WebProcess(home, shiv_root, *args, **env)
        started.append(web)
        return web

    yield start
    for web in started:
        web.stop()


class Page:
    """A websocket on /api, as the page holds it: requests by id, events kept aside."""

    def __init__(self, socket):
        self.socket, self.events, self.ids = socket, [], 0

    async def ask(self, method: str, **params) -> dict:
        self.ids += 1
        request = {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}
        await self.socket.send(json.dumps(request))
        async with asyncio.timeout(60):
            while True:
                said = json.loads(await self.socket.recv())
                if said.get("id") == self.ids:
                    return said
                self.events.append(said["params"])

    async def result(self, method: str, **params) -> dict:
        said = await self.ask(method, **params)
        assert "result" in said, said
        return said["result"]

    async def event(self, kind: str) -> dict:
        async with asyncio.timeout(60):
            while not any(e["type"] == kind for e in self.events):
                self.events.append(json.loads(await self.socket.recv())["params"])
        return next(e for e in self.events if e["type"] == kind)


def page(web: WebProcess, cookie: str, origin: str | None = None, key: str | None = None):
    """The page's websocket: the cookie, the Origin and the session's key (`web.key`)."""
    return connect(
        f"ws://{web.host}/api",
        additional_headers={"Cookie": cookie},
        origin=origin or web.origin,
        subprotocols=["nymchat", f"key.{web.key if key is None else key}"],
    )


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.mark.cli
def test_the_link_is_printed_and_nothing_is_served_without_it(start_web, tmp_path):
    web = start_web(tmp_path / "home")
    assert re.fullmatch(
        r"nymchat web: open http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{43}\n", web.line
    )
    for path in ["/", "/app.js", "/style.css", "/?token=wrong"]:
        refused = web.get(path)
        assert refused.status == 403 and b"nymchat web" in refused.body, path
        assert "script-src 'self'" in refused.getheader("Content-Security-Policy")
    cookie = web.sign_in()
    spent = web.get("/" + web.url.split("/", 3)[3])
    assert spent.status == 403 and spent.getheader("Set-Cookie") is None
    index = web.get("/", {"Cookie": cookie})
    assert index.status == 200 and b"<html" in index.body
    assert index.getheader("Content-Type") == "text/html; charset=utf-8"
    assert index.getheader("X-Frame-Options") == "DENY"
    script = web.get("/app.js", {"Cookie": cookie})
    assert script.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert web.get("/", {"Cookie": cookie, "Host": f"rebound.example:{web.port}"}).status == 403
    assert web.get("/", {"Cookie": cookie}, method="POST").status == 405


@pytest.mark.cli
def test_the_websocket_needs_the_cookie_and_this_pages_origin(start_web, tmp_path):
    web = start_web(tmp_path / "home")
    cookie = web.sign_in()

    async def talk():
        key = ["nymchat", f"key.{web.key}"]
        for headers, origin, protocols in [
            ({}, web.origin, key),  # no cookie
            ({"Cookie": cookie}, "http://evil.example", key),
            ({"Cookie": cookie}, f"http://127.0.0.1:{web.port + 1}", key),
            ({"Cookie": cookie}, web.origin, ["nymchat"]),  # the cookie alone: no key
            ({"Cookie": cookie}, web.origin, None),
        ]:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(
                    f"ws://{web.host}/api",
                    additional_headers=headers,
                    origin=origin,
                    subprotocols=protocols,
                ):
                    pass
            assert refused.value.response.status_code == 403
        async with page(web, cookie) as socket:
            said = await Page(socket).result("setup.state")
            assert said == {
                "stage": "new",
                "username": None,
                "default_nym": "ws://127.0.0.1:1977/NAME",
            }

    run(talk())


@pytest.mark.cli
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.com"])
def test_an_address_other_than_loopback_is_refused_before_anything_opens(shiv_root, tmp_path, host):
    out = subprocess.run(
        [str(DIST), "--home", str(tmp_path / "home"), "web", "--no-browser", "--host", host],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(shiv_root),
    )
    assert out.returncode == 2 and out.stdout == ""
    (said,) = out.stderr.splitlines()
    assert said.startswith("nymchat: error: nymchat web serves this machine only: ")
    assert not (tmp_path / "home").exists()


@pytest.mark.cli
def test_a_port_in_use_is_said_in_one_line(shiv_root, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = subprocess.run(
            [str(DIST), "--home", str(tmp_path / "home"), "web", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(shiv_root),
        )
    assert out.returncode == 1 and out.stdout == ""
    (said,) = out.stderr.splitlines()
    assert said.startswith(f"nymchat: error: cannot serve on http://127.0.0.1:{port}: ")


@pytest.mark.cli
def test_the_browser_is_given_a_file_only_you_can_read_not_the_token(shiv_root, tmp_path):
    """A command line is readable by every user of the machine: the token is not on the
    browser's; the file it is given leads to the link and is gone when the server ends."""
    said = tmp_path / "browser-said"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$@" > {said}\n')
    browser.chmod(0o700)
    home = tmp_path / "home"

    def web(**env):
        return subprocess.Popen(
            [str(DIST), "--home", str(home), "web"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(shiv_root, DISPLAY="", WAYLAND_DISPLAY="", **env),
        )

    server = web(BROWSER=str(browser))
    try:
        url = server.stdout.readline().removeprefix("nymchat web: open ").strip()
        for _ in range(300):
            if said.exists() and said.read_text():
                break
            time.sleep(0.1)
        (argument,) = said.read_text().split()
        assert argument == (home / "web-open.html").as_uri() and "token" not in argument
        opener = home / "web-open.html"
        assert opener.stat().st_mode & 0o777 == 0o600
        assert f'content="0;url={url}"' in opener.read_text()
    finally:
        assert stop(server) == 0
    assert not opener.exists()

    headless = web(BROWSER="")
    try:
        assert headless.stdout.readline().startswith("nymchat web: open http://127.0.0.1:")
        assert (
            headless.stderr.readline() == "nymchat web: no browser here: open the link yourself\n"
        )
    finally:
        assert stop(headless) == 0


@pytest.fixture
def people(net, shiv_root, tmp_path):
    mixnet, node = net

    def make(*names):
        users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in names]
        for user in users:
            user.register()
        return users

    return make


@pytest.mark.cli
def test_a_registered_profile_is_served_by_its_engine_through_the_page(people, start_web):
    alice, bob = people("alice", "bob")
    web = start_web(alice.home, NYMCHAT_PASSPHRASE=PASSPHRASE)
    wait_until_serving(alice.home, web.proc)  # the engine is open
    cookie = web.sign_in()

    async def talk():
        async with page(web, cookie) as socket:
            alices = Page(socket)
            status = await alices.result("status")
            assert (status["serving"], status["username"]) == ("web", "alice")
            assert (await alices.result("setup.state"))["stage"] == "ready"
            assert (await alices.result("subscribe"))["subscribed"] is True
            sent = await alices.result("send", to="bob", text="hello from the page")
            assert sent["status"] in ("accepted", "delivered"), sent
            await asyncio.to_thread(bob, "send", "alice", "hello back")
            received = await alices.event("message_received")
            assert (received["sender"], received["text"]) == ("bob", "hello back")

    run(talk())
    assert "hello from the page" in bob("inbox").stdout
    # A one-shot command goes through the page's engine; a second server is refused.
    alice("send", "bob", "from the terminal", passphrase="not needed")
    busy = alice("daemon", check=False)
    assert busy.returncode == 8 and "`web`" in busy.stderr
    assert web.stop() == 0


@pytest.mark.cli
def test_the_first_run_on_the_page_creates_registers_and_reconnects_to_the_engine(
    people, start_web, tmp_path, net
):
    (bob,) = people("bob")
    mixnet, node = net
    home = tmp_path / "carol"
    web = start_web(home)
    cookie = web.sign_in()

    async def first_run():
        async with page(web, cookie) as socket:
            carols = Page(socket)
            weak = await carols.ask("setup.create", passphrase="short")
            assert weak["error"]["data"]["code"] == "passphrase"
            created = await carols.result("setup.create", passphrase=PASSPHRASE)
            assert created["stage"] == "unregistered"
            bad = await carols.ask("setup.register", username="Not A Name!", node=node.contact)
            assert bad["error"]["data"]["code"] == "usage"
            taken = await carols.ask(
                "setup.register", username="bob", node=node.contact, nym=f"{mixnet.url}/carol"
            )
            assert taken["error"]["data"]["node_code"] == "name_taken", taken
            ready = await carols.result(
                "setup.register", username="carol", node=node.contact, nym=f"{mixnet.url}/carol"
            )
            assert ready["stage"] == "ready" and ready["username"] == "carol"
        async with page(web, cookie) as socket:  # the page reconnects: the engine answers
            carols = Page(socket)
            assert (await carols.result("status"))["username"] == "carol"
            await carols.result("send", to="bob", text="first words from the page")

    run(first_run())
    assert "first words from the page" in bob("inbox").stdout
    assert web.stop(signal.SIGINT) == 130

    locked = start_web(home)  # no passphrase given: the page unlocks
    cookie = locked.sign_in()

    async def unlock():
        async with page(locked, cookie) as socket:
            carols = Page(socket)
            assert (await carols.result("setup.state"))["stage"] == "locked"
            wrong = await carols.ask("setup.unlock", passphrase="not it at all")
            assert wrong["error"]["data"]["code"] == "passphrase"
            assert (await carols.result("setup.unlock", passphrase=PASSPHRASE))["stage"] == "ready"
        async with page(locked, cookie) as socket:
            assert (await Page(socket).result("status"))["serving"] == "web"

    run(unlock())


def test_a_page_that_does_not_read_what_it_asked_for_is_cut_off(monkeypatch):
    """In-process, with a small bound: the server keeps no more than the backlog for a
    page that stopped reading, and serves the next one."""
    from websockets.asyncio.server import serve

    from nymchat.client import control
    from nymchat.web import server

    monkeypatch.setattr(control, "MAX_BACKLOG", 256 << 10)

    class Echo:
        """A service answering each request with 64 KiB."""

        def connect(self, push):
            class Connection:
                async def answer(self, line):
                    return {"jsonrpc": "2.0", "id": 1, "result": {"pad": "x" * (64 << 10)}}

                def close(self):
                    pass

            connection = Connection()
            connection.push = push
            return connection

    async def flood():
        async def handle(websocket):
            await server.bridge(websocket, Echo().connect)

        async with serve(handle, "127.0.0.1", 0, compression=None) as listening:
            port = listening.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", compression=None) as socket:
                socket.transport.pause_reading()  # reads nothing more
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(60):
                        for _ in range(2000):  # 128 MiB: past what the kernel buffers
                            await socket.send("{}")
                            await asyncio.sleep(0)
            async with connect(f"ws://127.0.0.1:{port}") as socket:
                await socket.send("{}")
                assert len(await socket.recv()) > 64 << 10

    run(flood())
