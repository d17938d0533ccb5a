"""An asyncio client for the nym-client websocket API, used by the node and by clients.

Speaks Binary by default (Text on request), keeps one websocket at a time, reconnects
with backoff when it drops, and relies on nothing that only `nymchat mixnet` does: it
decodes each incoming frame by its own type (a real client flushes buffered messages as
Binary before the first request) and ignores frames it does not need.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidURI

from nymchat.errors import Busy, Unreachable, UsageError
from nymchat.nym import api
from nymchat.nym.address import Address

log = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:1977"
CONNECT_TIMEOUT = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
INBOX_SIZE = 10_000


class NymClientUnavailable(Unreachable):
    def __init__(self, url: str, reason: str = ""):
        super().__init__(
            f"no nym-client at {url}{f' ({reason})' if reason else ''}: start one, "
            "or use `nymchat mixnet` for a local test network"
        )
        self.url = url


class NymClientBusy(Busy):
    """A nym-client listens at the URL but closed the connection before the handshake: it
    serves one websocket at a time, and another program holds it."""

    def __init__(self, url: str, holder: str = "a running chat or node?"):
        super().__init__(f"the nym-client at {url} is in use by another program ({holder})")
        self.url = url


# Not connected, and trying again may help: what a reconnecting client waits out.
NOT_CONNECTED = (NymClientUnavailable, NymClientBusy)


def _closed_at_once(error: BaseException) -> bool:
    """Whether a failed handshake means the server accepted the connection and closed it
    (what a nym-client does to a second websocket), rather than that nothing listens."""
    if isinstance(error, InvalidMessage):
        error = error.__cause__ or error
    return isinstance(error, EOFError | ConnectionResetError | BrokenPipeError)


class NymClient:
    """One connection to one nym-client. Use as `async with NymClient(url) as nym:`;
    iterate it for received messages (`api.Received`)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        text: bool = False,
        reconnect: bool = True,
        on_change: Callable[[str], None] | None = None,
    ):
        self.url = url
        self.text = text
        self.reconnect = reconnect
        self.address: Address | None = None
        self.on_change = on_change or (lambda event: None)
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._inbox: asyncio.Queue[api.Received | None] = asyncio.Queue(INBOX_SIZE)
        self._address_waiters: list[asyncio.Future[Address]] = []
        self._reader: asyncio.Task | None = None
        self._address_check: asyncio.Task | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> "NymClient":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> Address:
        """Connects and learns this client's address; `NymClientUnavailable` if absent,
        `NymClientBusy` if another program holds it."""
        await self._open()
        self._reader = asyncio.create_task(self._read_forever())
        return await self.self_address()

    async def _open(self) -> None:
        try:
            self._ws = await asyncio.wait_for(
                connect(
                    self.url,
                    max_size=None,
                    compression=None,
                    ping_interval=None,
                    open_timeout=CONNECT_TIMEOUT,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, InvalidHandshake, TimeoutError, EOFError) as e:
            if _closed_at_once(e):
                raise NymClientBusy(self.url) from None
            raise NymClientUnavailable(self.url, str(e) or type(e).__name__) from None
        except InvalidURI as e:
            raise UsageError(f"{self.url} is not a websocket URL ({e})") from None
        self._connected.set()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait(None)  # ends iteration

    # --- requests -----------------------------------------------------------------

    async def _request(self, request: api.Request) -> None:
        frame = (
            api.encode_request_text(request) if self.text else api.encode_request_binary(request)
        )
        while True:
            await self._connected.wait()
            assert self._ws is not None  # set by _open before _connected, never unset
            try:
                await self._ws.send(frame)
                return
            except ConnectionClosed:
                if not self.reconnect or self._closing:
                    raise NymClientUnavailable(self.url, "connection closed") from None
                self._connected.clear()

    async def self_address(self) -> Address:
        waiter: asyncio.Future[Address] = asyncio.get_running_loop().create_future()
        self._address_waiters.append(waiter)
        await self._request(api.SelfAddress())
        self.address = await asyncio.wait_for(waiter, CONNECT_TIMEOUT)
        return self.address

    async def send(self, recipient: Address, message: bytes) -> None:
        await self._request(api.Send(recipient, message))

    async def send_anonymous(self, recipient: Address, message: bytes, reply_surbs: int) -> None:
        await self._request(api.SendAnonymous(recipient, message, reply_surbs))

    async def reply(self, sender_tag: bytes, message: bytes) -> None:
        await self._request(api.Reply(sender_tag, message))

    # --- receiving ----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[api.Received]:
        return self._received()

    async def _received(self) -> AsyncIterator[api.Received]:
        while (item := await self._inbox.get()) is not None:
            yield item

    async def _read_forever(self) -> None:
        delay = BACKOFF_FIRST
        while not self._closing:
            assert self._ws is not None  # this task starts after _open connected
            try:
                async for frame in self._ws:
                    await self._dispatch(frame)
            except ConnectionClosed:
                pass
            self._connected.clear()
            if self._closing or not self.reconnect:
                break
            log.warning("lost the nym-client at %s; reconnecting", self.url)
            self.on_change("disconnected")
            while not self._closing:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                except NOT_CONNECTED:
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                delay = BACKOFF_FIRST
                self._address_check = asyncio.create_task(self._check_address())
                break
        await self._inbox.put(None)

    async def _check_address(self) -> None:
        old = self.address
        try:
            new = await self.self_address()
        except (TimeoutError, *NOT_CONNECTED):
            return
        log.info("reconnected to the nym-client at %s", self.url)
        self.on_change("reconnected" if new == old else "address-changed")

    async def _dispatch(self, frame: str | bytes) -> None:
        try:
            response = (
                api.decode_response_text(frame)
                if isinstance(frame, str)
                else api.decode_response_binary(frame)
            )
        except api.ApiError as e:
            log.debug("ignoring a frame from the nym-client: %s", e)
            return
        match response:
            case api.Received():
                await self._inbox.put(response)
            case api.SelfAddressIs(address):
                while self._address_waiters:
                    waiter = self._address_waiters.pop(0)
                    if not waiter.done():
                        waiter.set_result(address)
            case api.ErrorResponse(kind, message):
                log.warning("the nym-client refused a request: %s:%s", kind.text, message)
            case _:
                pass  # laneQueueLength and anything newer: not needed here
