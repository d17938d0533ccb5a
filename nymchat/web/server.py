"""The I/O edge of `nymchat web`: one `websockets` server answers the page's plain HTTP
requests (as the `Gate` says) and its websocket at /api, where each text message is one
JSON-RPC request or batch and each answer or event one text message: the setup service
until the profile's engine is open, the engine's API (and setup.state) after."""

import argparse
import asyncio
import contextlib
import http
import json
import logging
import secrets
import socket
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from nymchat.client import control, rpc
from nymchat.client.connect import open_engine
from nymchat.client.engine import Engine
from nymchat.client.profile import Profile
from nymchat.errors import NymchatError
from nymchat.sentences import teller
from nymchat.web import assets
from nymchat.web.gate import API_PATH, PROTOCOL, SECURITY_HEADERS, Gate, Reply
from nymchat.web.setup import Setup

log = logging.getLogger(__name__)


def response_of(reply: Reply) -> Response:
    phrase = http.HTTPStatus(reply.status).phrase
    return Response(
        reply.status, phrase, Headers([*reply.headers, ("Connection", "close")]), reply.body
    )


class Web:
    """What the page's websockets are served by: the setup, then the engine's API."""

    def __init__(self, gate: Gate, setup: Setup):
        self.gate, self.setup = gate, setup
        self.service: rpc.Service | None = None

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        headers = list(request.headers.raw_items())
        if request.method == "GET" and path == API_PATH:
            refusal = self.gate.websocket(path, headers)
            return None if refusal is None else response_of(refusal)
        return response_of(self.gate.http(request.method, path, query, headers))

    @staticmethod
    def process_response(
        connection: ServerConnection, request: Request, response: Response
    ) -> None:
        """The security headers on websockets' own answers too (426, 400, 101)."""
        for name, value in SECURITY_HEADERS:
            if name not in response.headers:
                response.headers[name] = value

    async def handle(self, websocket: ServerConnection) -> None:
        served = self.service or self.setup
        await bridge(websocket, served.connect)


async def bridge(websocket: ServerConnection, connect: Callable[[rpc.Push], rpc.Served]) -> None:
    """Serves one websocket until it closes; a client that does not read what it asked
    for is cut off once `control.MAX_BACKLOG` waits for it, as on the control socket."""
    waiting: asyncio.Queue[str] = asyncio.Queue()
    backlog = 0

    def push(message: rpc.Answer) -> None:
        nonlocal backlog
        text = json.dumps(message)
        backlog += len(text)
        if backlog > control.MAX_BACKLOG:
            log.info("a page does not read what it asked for: cut off")
            websocket.transport.abort()
            return
        waiting.put_nowait(text)

    async def write() -> None:
        nonlocal backlog
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await waiting.get()
                await websocket.send(text)
                backlog -= len(text)

    async def readline() -> bytes:
        """One message as a line (a message over `max_size` closes the connection)."""
        try:
            message = await websocket.recv()
        except ConnectionClosed:
            return b""
        return (message.encode() if isinstance(message, str) else bytes(message)) + b"\n"

    writer = asyncio.create_task(write())
    try:
        await rpc.serve(connect(push), readline)
    finally:
        writer.cancel()


def address(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


async def _serve_engine(
    args: argparse.Namespace, web: Web, profile: Profile, opened: "asyncio.Future[None] | None"
) -> None:
    """The engine of `profile`, serving the page and the control socket, taking messages in
    until the command ends; `opened` is told once it serves."""

    async with open_engine(args, profile=profile, tell=False) as engine:
        engine.events.subscribe(teller(engine.display))
        async with control.serving(engine, "web", web.setup.methods()) as service:
            web.service = service
            web.setup.opened()
            if opened is not None:
                opened.set_result(None)
            await _take_in(engine)


async def _take_in(engine: Engine) -> None:
    async for message in engine.follow():
        engine.shown(message)


def listening(host: str, port: int) -> socket.socket:
    """The server's socket, bound before serving so that the gate knows its port
    ("localhost" is served on 127.0.0.1: one port, one address)."""
    bound = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in bound else socket.AF_INET
    try:
        return socket.create_server((bound, port), family=family)
    except OSError as e:
        raise NymchatError(f"cannot serve on {address(host, port)}: {e.strerror}") from None


async def run(args: argparse.Namespace, opened: Callable[[str], None]) -> None:
    """Serves the page at --host and --port until cancelled; `opened(url)` is told the
    link with the token once the server listens."""
    setup = Setup(args)
    try:
        setup.unlock_at_start()
        token = secrets.token_urlsafe(32)
        sock = listening(args.host, args.port)
        port = sock.getsockname()[1]
        web = Web(Gate(token, args.host, port, assets.load()), setup)
        async with serve(
            web.handle,
            sock=sock,
            process_request=web.process_request,
            process_response=Web.process_response,
            max_size=control.MAX_REQUEST,
            subprotocols=[Subprotocol(PROTOCOL)],  # with `key.KEY`, which the gate checked
            compression=None,
            server_header=None,
        ):
            opened(f"{address(args.host, port)}/?token={token}")
            if (profile := setup.registered()) is not None:
                await _serve_engine(args, web, profile, None)  # a failure ends the command
            while True:
                profile, done = await setup.opening()
                try:
                    await _serve_engine(args, web, profile, done)
                except NymchatError as e:
                    if done.done():
                        raise
                    done.set_exception(e)
    finally:
        setup.close()
