"""The node's I/O: frames in from its nym-clients (frontends), reassembled fairly per route,
through the intake (rate per route, fair queues) in batches to the service, signed answers
and pushes back out as `reply`s through the frontend of their route; the signed frontend
descriptor; re-pushes and housekeeping on timers.

Several node processes may share one database (PostgreSQL), each with frontends of its
own: each claims its frontends' ids in the store and heartbeats them, and signs a
descriptor of every live process's frontends; a push for a user homed on another
process's frontend wakes that process (`NodeStore.wake`), which pushes at once.

The service keys everything by route (`nymchat.node.routes`: a frontend's id and the
sender tag it received); only this module splits one to send."""

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence

from nymchat import _native
from nymchat.errors import Busy, FramingError
from nymchat.node.database import StoreError
from nymchat.node.intake import Intake
from nymchat.node.routes import route, split_route
from nymchat.node.service import NodeService, Outgoing
from nymchat.nym.address import Address
from nymchat.nym.transport import NOT_CONNECTED, NymClient
from nymchat.protocol import wire

log = logging.getLogger(__name__)
MAX_BATCH = 256
PUSH_INTERVAL = 1.0
MAINTENANCE_INTERVAL = 60.0
MAX_REQUEST_BYTES = 1 << 20  # a group commit with its welcome (NodeConfig.max_commit_bytes)
RESIGN_MS = 86_400_000  # between two signatures of an unchanged descriptor
HEARTBEAT_INTERVAL = 10.0  # s: between two of a process's "my frontends live"
TAKEN_MS = 30_000  # a frontend heard from within this is a live process's: not claimed
LISTED_MS = 300_000  # a frontend heard from within this is in the descriptor
SEND_PATIENCE = 5.0  # seconds one answer may wait for its frontend's websocket


def now_ms() -> int:
    return int(time.time() * 1000)


class NodeRunner:
    """Runs the service on `transports`, frontend `first` + k being `transports[k]`.
    `on_published(frontends)` is told the live frontends' addresses by id (this process's
    and the others') each time a descriptor is signed with addresses other than
    the last one's."""

    def __init__(
        self,
        service: NodeService,
        transports: Sequence[NymClient],
        on_published: Callable[[dict[int, Address]], None] = lambda frontends: None,
        first: int = 1,
    ):
        self.service = service
        self.frontends = dict(enumerate(transports, first))
        self.on_published = on_published
        self.process = secrets.token_hex(8)  # this process, in the store's frontends
        # Fair per route: a route's frames can only evict that route's own messages. Memory
        # stays bounded by max_pending_bytes however large one request may be.
        self.reassembler = _native.Reassembler(
            max_message_bytes=MAX_REQUEST_BYTES,
            max_pending_bytes=64 << 20,
            max_pending_messages=4096,
            max_source_messages=16,
            max_source_bytes=1 << 20,
            ttl=60.0,
        )
        self.intake = Intake(service.config.requests_per_s, service.config.request_burst)
        self.work = asyncio.Event()
        self.dropped: Counter[str] = Counter(
            no_tag=0, bad_frame=0, unknown_frontend=0, frontend_down=0
        )
        self.sent: Counter[int] = Counter()  # frames sent, per frontend
        self.listed: tuple[wire.Frontend, ...] | None = None  # the signed descriptor's
        self.published: dict[int, Address] | None = None  # their addresses, by id
        self.issued: int | None = None  # when it was signed (ms)
        self._addresses_changed = asyncio.Event()
        self._woken = asyncio.Event()  # another process has something for us to push
        self._watches_changed = asyncio.Event()  # a held group watch is due, or one was held
        service.groups.watches.on_change = self._watches_changed.set
        for frontend, transport in self.frontends.items():
            transport.on_change = self._watch(frontend)

    def _watch(self, frontend: int) -> Callable[[str], None]:
        def changed(change: str) -> None:
            if change == "disconnected":
                log.warning("frontend %d lost its nym-client; the others carry on", frontend)
            else:
                log.info("frontend %d is back", frontend)
                self._addresses_changed.set()  # re-signed if an address is new

        return changed

    @property
    def connected(self) -> int:
        return sum(transport.connected for transport in self.frontends.values())

    async def run(self, stop: asyncio.Event) -> None:
        coroutines = [self._receive(frontend) for frontend in self.frontends]
        coroutines += [self._process(), self._repush(), self._maintain(), self._watches()]
        coroutines += [self._describe(), self._listen()]
        tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # requests that arrived but were never answered: answer now
            while batch := self.intake.take(MAX_BATCH):
                await self._answer(batch)

    async def _receive(self, frontend: int) -> None:
        loop = asyncio.get_running_loop()
        count = 0
        async for received in self.frontends[frontend]:
            count += 1
            if count % MAX_BATCH == 0:
                await asyncio.sleep(0)  # a flood of frames must not starve the answering
            if received.sender_tag is None:  # a node answers only what it can reply to
                self.dropped["no_tag"] += 1
                continue
            key = route(frontend, received.sender_tag)
            try:
                done = self.reassembler.push(received.message, loop.time(), key)
            except FramingError as e:
                self.dropped["bad_frame"] += 1
                log.debug("dropped a bad frame: %s", e)
                continue
            # whose the tag is is asked only of requests within its rate
            if (
                done is not None
                and self.intake.admit(key, now_ms())
                and self.intake.put(done[1], key, await self._known(key))
            ):
                self.work.set()

    async def _known(self, key: bytes) -> bool:
        """Whether route `key` is a registered user's (for the intake's order)."""
        try:
            return await self.service.known_tag(key)
        except StoreError:
            return False  # its request waits with the strangers'

    async def _process(self) -> None:
        while True:
            await self.work.wait()
            self.work.clear()
            while batch := self.intake.take(MAX_BATCH):
                await self._answer(batch)

    async def _answer(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Handles and answers a batch; if the database fails, the batch goes unanswered
        (its clients retry) and the node carries on."""
        try:
            outgoing = await self.service.handle_batch(batch, now_ms())
        except StoreError as e:
            log.warning("%d requests unanswered: %s", len(batch), e)
            return
        await self._send(outgoing)

    async def _repush(self) -> None:
        """Due pushes every `PUSH_INTERVAL`, and at once when another process wakes us."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), PUSH_INTERVAL)
            self._woken.clear()
            try:
                await self._send(await self.service.due_pushes(now_ms()))
            except StoreError as e:
                log.warning("no pushes this time: %s", e)

    async def _watches(self) -> None:
        """Answers held group watches as they become due: at once when their group has a
        new entry, else when the first one's time is up."""
        watches = self.service.groups.watches
        while True:
            until = watches.next_until()
            wait = None if until is None else max(0.0, (until - now_ms()) / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._watches_changed.wait(), wait)
            self._watches_changed.clear()
            try:
                await self._send(await self.service.groups.answer_watches(now_ms()))
            except StoreError as e:
                log.warning("held group watches unanswered for now: %s", e)
                await asyncio.sleep(PUSH_INTERVAL)
                self._watches_changed.set()

    async def _maintain(self) -> None:
        while True:
            try:
                expired, _forgotten = await self.service.maintain(now_ms())
                if expired:
                    log.info("dropped %d messages past the retention period", expired)
            except StoreError as e:
                log.warning("no housekeeping this time: %s", e)
            await asyncio.sleep(MAINTENANCE_INTERVAL)

    async def _listen(self) -> None:
        """Pushes at once what another process woke one of our frontends for, and answers
        the watches of a group another process posted to; ends when nothing can (SQLite:
        one process), or the store is closed."""
        while True:
            try:
                async for woken in self.service.store.woken():
                    if isinstance(woken, bytes):
                        self.service.groups.watches.posted(woken)
                    elif woken in self.frontends:
                        self._woken.set()
                return
            except StoreError as e:
                log.warning("not woken by the other node processes for now: %s", e)
            await asyncio.sleep(PUSH_INTERVAL)  # meanwhile the due pushes run on time

    async def _describe(self) -> None:
        """Heartbeats our frontends and signs the descriptor of every live one when that
        set changes (checked with each heartbeat, and at once when one of ours comes back
        with another address), and again every day."""
        while True:
            now = now_ms()
            due = self.issued is not None and now - self.issued >= RESIGN_MS
            try:
                await self.describe(now, always=due)
            except StoreError as e:
                log.warning("no heartbeat this time: %s", e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._addresses_changed.wait(), HEARTBEAT_INTERVAL)
            self._addresses_changed.clear()

    def _addresses(self) -> dict[int, str] | None:
        """Our frontends' addresses, once every one is known."""
        addresses = {n: t.address for n, t in self.frontends.items() if t.address is not None}
        if len(addresses) < len(self.frontends):
            return None
        return {n: str(address) for n, address in addresses.items()}

    async def claim(self, now: int) -> None:
        """Claims our frontends' ids in the store (every address known); `Busy` if another
        live process holds one with another address. On a database only this process
        uses (SQLite), whatever was there before is forgotten."""
        addresses = self._addresses()
        assert addresses is not None, "claimed before every frontend is connected"
        store = self.service.store
        async with store.transaction():
            if store.db.dialect == "sqlite":
                await store.forget_frontends(self.process)
            refused = await store.claim_frontends(self.process, addresses, now, now - TAKEN_MS)
            if refused:  # rolled back: none claimed
                raise Busy(
                    f"frontend {refused[0]} is another live node process's, with another "
                    "address: give this process another --first-frontend (or start it "
                    f"again {TAKEN_MS // 1000} s after that process stopped)"
                )

    async def describe(self, now: int, always: bool = False) -> None:
        """Heartbeats our frontends (once every address is known) and signs a descriptor
        of every frontend heard from within `LISTED_MS`, for the service, if (unless
        `always`) that list changed since the last signature."""
        addresses = self._addresses()
        if addresses is None:
            return
        store = self.service.store
        async with store.transaction():
            taken = await store.claim_frontends(self.process, addresses, now, now - TAKEN_MS)
        for frontend in taken:
            log.warning("frontend %d is now another node process's, with another address", frontend)
        listed = tuple(
            wire.Frontend(n, address) for n, address in await store.live_frontends(now - LISTED_MS)
        )
        if not listed or (not always and listed == self.listed):
            return
        descriptor = wire.Descriptor(
            node=self.service.identity.signing_public,
            issued=now,
            expires=now + wire.DESCRIPTOR_TTL_MS,
            frontends=listed[: wire.MAX_FRONTENDS],
        )
        self.service.descriptor = wire.encode_descriptor(self.service.identity, descriptor)
        self.issued = now
        if listed != self.listed:
            self.listed = listed
            self.published = {f.id: Address.parse(f.address) for f in descriptor.frontends}
            log.info("signed the descriptor of %d frontends", len(self.published))
            self.on_published(self.published)

    async def _send(self, outgoing: list[Outgoing]) -> None:
        """Each answer or push out through its route's frontend; one for a frontend that
        does not exist or is down is dropped and counted."""
        for out in outgoing:
            frontend, tag = split_route(out.tag)
            transport = self.frontends.get(frontend)
            if transport is None or not tag:
                self.dropped["unknown_frontend"] += 1
                continue
            if not transport.connected:
                self.dropped["frontend_down"] += 1
                continue
            try:
                async with asyncio.timeout(SEND_PATIENCE):  # it went down meanwhile
                    for frame in _native.encode_frames(out.message, out.frame_id):
                        await transport.reply(tag, frame)
                        self.sent[frontend] += 1
            except (TimeoutError, *NOT_CONNECTED):
                self.dropped["frontend_down"] += 1
