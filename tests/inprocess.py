"""An in-process network for tests: engines, the node and the mixnet in one event loop, no
process and no socket. The mixnet is the sans-I/O model `nymchat mixnet` serves
(nymchat/mixnet/model.py) driven by the loop's clock; the node is the real `NodeService`
on its `NodeStore` (a temporary directory), fed by the real `NodeRunner`. Only the
websocket between a program and its nym-client is replaced: `InProcessTransport` has the
face of `NymClient` that `NodeLink` and `DirectPaths` use.

    async with network(tmp_path) as net:
        alice, bob = await net.engine("alice"), await net.engine("bob")

Delays are zero; everything a test waits for is bounded (`until`), so a bug fails a test
instead of hanging the suite.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from nymchat import _native
from nymchat.client.engine import Engine
from nymchat.client.events import Event, MessageReceived
from nymchat.client.nodelink import NodeLink
from nymchat.client.profile import Profile
from nymchat.mixnet.identities import IdentityStore
from nymchat.mixnet.model import Mixnet
from nymchat.node.registration import name_key
from nymchat.node.runner import NodeRunner
from nymchat.node.service import NodeConfig, NodeService
from nymchat.node.store import open_sqlite
from nymchat.nym import api
from nymchat.nym.address import Address
from nymchat.protocol.contact import NodeContact

WAIT = 10.0  # seconds a test waits for anything, at most


class InProcessMixnet:
    """The mixnet model on the loop's clock: requests go in as transports make them, and
    what is due is handed to the connected transports (as `MixnetServer` hands it to
    websockets)."""

    def __init__(self, state: Path):
        self.model = Mixnet()
        self.identities = IdentityStore(state)
        self.loop = asyncio.get_running_loop()
        self.connected: dict[str, InProcessTransport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def connect(self, transport: "InProcessTransport") -> Address:
        name = transport.name
        if name not in self.model.clients:
            self.model.add_client(name, self.identities.address(name))
        self.connected[name] = transport
        for received in self.model.connect(name, self.loop.time()):
            transport.deliver(received)
        self.pump()
        return self.model.clients[name].address

    def disconnect(self, transport: "InProcessTransport") -> None:
        if self.connected.get(transport.name) is transport:
            del self.connected[transport.name]
            self.model.disconnect(transport.name)

    def handle(self, name: str, request: api.Request) -> None:
        self.model.handle(name, request, self.loop.time())
        self.pump()

    def pump(self) -> None:
        for name, received in self.model.due(self.loop.time()):
            self.connected[name].deliver(received)
        when = self.model.next_due()
        if when is not None and when != self._timer_at:
            self.close()
            self._timer, self._timer_at = self.loop.call_at(when, self._fire), when

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self.pump()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None


class InProcessTransport:
    """A nym-client connection for one program (the face `NymClient` shows to the node
    link and direct paths). `lose` and `restore` play a nym-client that goes away and comes
    back: requests wait meanwhile, as the real transport's do."""

    def __init__(self, mixnet: InProcessMixnet, name: str):
        self.mixnet, self.name = mixnet, name
        self.address: Address | None = None
        self.on_change: Callable[[str], None] = lambda change: None
        self._inbox: asyncio.Queue[api.Received | None] = asyncio.Queue()
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:  # (the node's metrics show it)
        return self._connected.is_set()

    async def start(self) -> Address:
        self.address = self.mixnet.connect(self)
        self._connected.set()
        return self.address

    async def close(self) -> None:
        self.mixnet.disconnect(self)
        self._connected.clear()
        self._inbox.put_nowait(None)  # ends iteration

    async def __aenter__(self) -> "InProcessTransport":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def lose(self) -> None:
        """The nym-client went away (what arrives meanwhile waits in the mixnet)."""
        self.mixnet.disconnect(self)
        self._connected.clear()
        self.on_change("disconnected")

    def restore(self) -> None:
        self.mixnet.connect(self)
        self._connected.set()
        self.on_change("reconnected")

    def deliver(self, received: api.Received) -> None:
        self._inbox.put_nowait(received)

    async def _request(self, request: api.Request) -> None:
        await self._connected.wait()
        self.mixnet.handle(self.name, request)
        await asyncio.sleep(0)  # one request per turn, as over a websocket

    async def send_anonymous(self, recipient: Address, message: bytes, reply_surbs: int) -> None:
        await self._request(api.SendAnonymous(recipient, message, reply_surbs))

    async def reply(self, sender_tag: bytes, message: bytes) -> None:
        await self._request(api.Reply(sender_tag, message))

    def __aiter__(self) -> AsyncIterator[api.Received]:
        return self._received()

    async def _received(self) -> AsyncIterator[api.Received]:
        while (item := await self._inbox.get()) is not None:
            yield item


class InProcessNode:
    """The node: its service and store live as long as the network; `stop` and `start`
    take its process (and its nym-clients, one per frontend) away and bring it back."""

    def __init__(self, mixnet: InProcessMixnet, data: Path, config: NodeConfig, frontends: int = 2):
        self.mixnet = mixnet
        self.frontend_count = frontends
        self.identity = _native.Identity.generate()
        data.mkdir(parents=True, exist_ok=True)
        self.store = open_sqlite(data / "node.db", name_key(self.identity.secret_bytes()))
        self.service = NodeService(self.identity, self.store, config)
        self.contact: NodeContact | None = None
        self.frontends: list[InProcessTransport] = []
        self.runner: NodeRunner | None = None
        self._running: tuple[asyncio.Event, asyncio.Task] | None = None

    @property
    def relayed(self) -> int:
        """Messages the node accepted for relaying."""
        return self.service.counts[("send", "ok")]

    async def start(self) -> None:
        self.frontends = [
            InProcessTransport(self.mixnet, f"node-{n}") for n in range(1, self.frontend_count + 1)
        ]
        addresses = tuple([await transport.start() for transport in self.frontends])
        self.contact = NodeContact(self.identity.signing_public, addresses)
        stop = asyncio.Event()
        self.runner = NodeRunner(self.service, self.frontends)
        task = asyncio.create_task(self.runner.run(stop))
        self._running = stop, task

    async def stop(self) -> None:
        if self._running is None:
            return
        stop, task = self._running
        self._running = None
        stop.set()
        await asyncio.wait_for(task, WAIT)
        for transport in self.frontends:
            await transport.close()

    async def aclose(self) -> None:
        await self.stop()
        await self.store.close()


class Network:
    def __init__(
        self, root: Path, stack: AsyncExitStack, timeout: float, attempts: int, frontends: int
    ):
        self.root, self.stack = root, stack
        self.timeout, self.attempts = timeout, attempts
        self.mixnet = InProcessMixnet(root / "mixnet")
        self.node = InProcessNode(
            self.mixnet, root / "node", NodeConfig(pow_difficulty=0), frontends
        )
        self.transports: dict[Engine, InProcessTransport] = {}
        self._closers: dict[Engine, AsyncExitStack] = {}

    def profile(self, name: str) -> Profile:
        """A new profile (a home of its own) under `name`, closed with the network."""
        home = self.root / "homes" / name
        n = 1
        while home.exists():
            n += 1
            home = self.root / "homes" / f"{name}-{n}"
        home.mkdir(parents=True)
        profile = Profile(home, _native.Identity.generate())
        self.stack.callback(profile.close)
        return profile

    async def engine(self, name: str, profile: Profile | None = None, **options) -> Engine:
        """An engine on the node; a new profile registered as `name`, or `profile` as it
        is (a program that starts again on the same profile, with the same nym-client).
        `options` go to `Engine`."""
        new = profile is None
        profile = profile or self.profile(name)
        closer = AsyncExitStack()
        transport = InProcessTransport(self.mixnet, f"{name}-nym")
        await transport.start()
        closer.push_async_callback(transport.close)
        assert self.node.contact is not None
        link = _Link(self.timeout, self.attempts, transport, self.node.contact, profile.identity)
        await closer.enter_async_context(link)
        engine = Engine(profile, link, **options)
        closer.push_async_callback(engine.aclose)
        self.transports[engine] = transport
        self._closers[engine] = closer
        if new:
            await engine.register(name)
        return engine

    async def close(self, engine: Engine) -> None:
        """Closes an engine's link and nym-client connection (its profile stays open)."""
        await self._closers.pop(engine).aclose()

    async def aclose(self) -> None:
        for engine in list(self._closers):
            await self.close(engine)
        await self.node.aclose()
        self.mixnet.close()


class _Link(NodeLink):
    """A node link that gives up sooner: a test of a silent node need not wait 30 s."""

    def __init__(self, timeout: float, attempts: int, *args):
        super().__init__(*args)
        self._timeout, self._attempts = timeout, attempts

    async def request(self, kind, timeout=None, attempts=None, **body):
        return await super().request(
            kind, timeout or self._timeout, attempts or self._attempts, **body
        )


@asynccontextmanager
async def network(root: Path, timeout: float = 5.0, attempts: int = 2, frontends: int = 2):
    """A mixnet and a running node with `frontends` nym-clients; engines made with
    `net.engine`, all closed after."""
    async with AsyncExitStack() as stack:
        net = Network(root, stack, timeout, attempts, frontends)
        await net.node.start()
        try:
            yield net
        finally:
            await net.aclose()


def record(engine: Engine) -> list[Event]:
    """Every event the engine emits from now on."""
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


async def until(check: Callable[[], object], what: str = "the condition", wait: float = WAIT):
    """Waits (bounded) until `check()` is true; returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not (value := check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
    return value


async def event(events: list[Event], kind: type, wait: float = WAIT, **fields):
    """The first event of type `kind` (with these field values) in `events`, waited for."""

    def find():
        for e in events:
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()):
                return e
        return None

    return await until(find, f"{kind.__name__} {fields}", wait)


@asynccontextmanager
async def following(engine: Engine) -> AsyncIterator[list[MessageReceived]]:
    """Runs `engine.follow()` in the background; yields the list it fills."""
    received: list[MessageReceived] = []

    async def run():
        async for message in engine.follow():
            engine.shown(message)
            received.append(message)

    task = asyncio.create_task(run())
    try:
        yield received
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=WAIT)
        if not task.done():
            raise AssertionError("`follow` runs on after it was cancelled")
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # what made it fail


def run(coroutine, limit: float = 30.0):
    """Runs a test's coroutine, bounded (`TimeoutError` past `limit` seconds)."""

    async def bounded():
        async with asyncio.timeout(limit):
            return await coroutine

    return asyncio.run(bounded())


async def take_in(engine: Engine) -> list[MessageReceived]:
    """What `nymchat inbox` does: takes in what waits at the node, and shows it."""
    taken = await engine.inbox(quiet=0.2, limit=WAIT)
    for message in taken:
        engine.shown(message)
    return taken
