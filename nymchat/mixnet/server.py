"""The websocket face of the local mixnet: one URL path per virtual nym-client, the
real client's connection rules, and a timer that hands due deliveries to websockets."""

import asyncio
import contextlib
import logging
from collections import deque
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from nymchat.mixnet.identities import IdentityStore
from nymchat.mixnet.model import Mixnet
from nymchat.nym import api

log = logging.getLogger(__name__)

DEFAULT_NAME = "default"  # the client at ws://host:port/
MAX_OUTBOX = 10_000  # frames queued for a websocket that does not read


def client_name(path: str) -> tuple[str, bool]:
    """The virtual client a URL path names, and whether `?restart` asks for a fresh start."""
    parts = urlsplit(path)
    name = parts.path.strip("/") or DEFAULT_NAME
    return name, "restart" in parse_qs(parts.query, keep_blank_values=True)


class _Connection:
    """One open websocket: its format (that of the last request) and its outbox."""

    def __init__(self, websocket: ServerConnection):
        self.websocket = websocket
        self.text = False  # Binary until the first Text request
        self.outbox: deque[str | bytes] = deque()
        self.ready = asyncio.Event()
        self.dropped = 0

    def push(self, response: api.Response) -> None:
        if len(self.outbox) >= MAX_OUTBOX:
            self.outbox.popleft()
            self.dropped += 1
        self.outbox.append(
            api.encode_response_text(response)
            if self.text
            else api.encode_response_binary(response)
        )
        self.ready.set()

    async def write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ready.wait()
                self.ready.clear()
                while self.outbox:
                    await self.websocket.send(self.outbox.popleft())


class MixnetServer:
    def __init__(self, model: Mixnet, identities: IdentityStore, *, max_frame: int):
        self.model = model
        self.identities = identities
        self.max_frame = max_frame
        self.connections: dict[str, _Connection] = {}
        self._claimed: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.loop = asyncio.get_running_loop()
        for name in identities.names():
            model.add_client(name, identities.address(name))

    def serve(self, host: str, port: int):
        return serve(
            self._handle,
            host,
            port,
            process_request=self._admit,
            max_size=self.max_frame,
            compression=None,
            ping_interval=None,
            server_header=None,
        )

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Picks the virtual client; a second websocket to one is closed before the
        handshake, as the real client closes a second TCP connection."""
        name, _ = client_name(request.path)
        if name in self._claimed:
            log.info("refusing a second connection to %s", name)
            connection.transport.abort()
            await asyncio.sleep(0)
            return None
        if name not in self.model.clients:
            try:
                address = self.identities.address(name)
                self.model.add_client(name, address)
            except (ValueError, OverflowError) as e:
                return Response(
                    404 if isinstance(e, ValueError) else 503,
                    "Refused",
                    Headers(),
                    f"{e}\n".encode(),
                )
        self._claimed.add(name)
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None  # the handshake is over when a handler runs
        name, restart = client_name(websocket.request.path)
        connection = _Connection(websocket)
        self.connections[name] = connection
        writer = asyncio.create_task(connection.write())
        try:
            if restart:
                self.model.restart(name)
            for received in self.model.connect(name, self.loop.time()):
                connection.push(received)
            self._pump()
            log.info("%s connected", name)
            async for frame in websocket:
                self._request(name, connection, frame)
                await asyncio.sleep(0)  # one request per turn: other clients and signals too
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self.model.disconnect(name)
            del self.connections[name]
            self._claimed.discard(name)
            log.info("%s disconnected", name)

    def _request(self, name: str, connection: _Connection, frame: str | bytes) -> None:
        connection.text = isinstance(frame, str)
        try:
            request = (
                api.decode_request_text(frame)
                if isinstance(frame, str)
                else api.decode_request_binary(frame)
            )
        except api.ApiError as e:
            self.model.stats["bad_requests"] += 1
            connection.push(api.error_response(e))
            return
        try:
            responses = self.model.handle(name, request, self.loop.time())
        except Exception:  # a bug must not take the virtual client down with it
            log.exception("failed to handle %r from %s", request, name)
            responses = [api.ErrorResponse(api.ErrorKind.OTHER, "internal error")]
        for response in responses:
            connection.push(response)
        self._pump()

    def _pump(self) -> None:
        """Delivers what is due and arms the timer for what comes next."""
        for name, received in self.model.due(self.loop.time()):
            self.connections[name].push(received)
        when = self.model.next_due()
        if when is not None and when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = self.loop.call_at(when, self._fire), when

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self._pump()
