"""Receiving: asking the node for what is queued (`inbox`) or following what it pushes
(`follow`), taking each message in, acknowledging it, and sending receipts; with what
came over direct paths. While following, the node is kept supplied with SURBs, the
outbox is flushed whenever the node answers again, and the published keys are kept."""

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from nymchat.client.directintake import DirectIntake
from nymchat.client.directpaths import DirectPaths
from nymchat.client.events import (
    EventBus,
    InboxCutShort,
    MessageReceived,
    NodeReachable,
    NodeUnreachable,
)
from nymchat.client.groupintake import GroupIntake
from nymchat.client.intake import Intake
from nymchat.client.keypackages import KeyPackages
from nymchat.client.nodelink import Link
from nymchat.client.outbox import Outbox
from nymchat.client.registration import Registration
from nymchat.errors import NymchatError
from nymchat.protocol import wire
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
RETRY_OFFLINE = 5.0  # seconds between attempts to reach a node that does not answer
INBOX_LIMIT = 30.0  # seconds `inbox` takes messages in, at most
CATCH_UP_POLL = 0.1  # seconds between looks at what `catch_up` waits for


class Inbox:
    def __init__(
        self,
        link: Link,
        intake: Intake,
        direct: DirectPaths,
        direct_intake: DirectIntake,
        outbox: Outbox,
        registration: Registration,
        events: EventBus,
        group_intake: GroupIntake,
        key_packages: KeyPackages,
    ):
        self.link, self.intake, self.direct, self.outbox = link, intake, direct, outbox
        self.group_intake, self.key_packages = group_intake, key_packages
        self.arrivals = direct_intake.arrivals  # what came directly
        self.registration, self.events = registration, events
        self.node_answers = True  # False while `follow` cannot reach the node
        self.wake = asyncio.Event()  # set: `follow` refreshes (and retries the node) now

    async def inbox(
        self, quiet: float = 1.5, limit: float = INBOX_LIMIT, link: Link | None = None
    ) -> list[MessageReceived]:
        """Asks the node (or the one of `link`: a home being left) for what is queued,
        takes it in, acknowledges it; with it, what came directly and anything stored but
        never shown. Returns once nothing came for `quiet` seconds, or after `limit`
        seconds whatever keeps arriving (what was not taken in by then stays queued at
        the node for the next time)."""
        link = link or self.link
        received = self.intake.never_shown()
        taken = {m.message_id for m in received}
        await link.request(Kind.REFRESH)
        ids: list[bytes] = []
        relayed: list[MessageReceived] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while (left := deadline - loop.time()) > 0:
            item = await self._next(min(quiet, left), link=link)
            if item is None or isinstance(item, bool):
                break
            relayed_now = isinstance(item, wire.Answer)
            messages = self._push(item, ids) if isinstance(item, wire.Answer) else [item]
            for message in messages:
                if message.message_id not in taken:
                    taken.add(message.message_id)
                    received.append(message)
                    if relayed_now:
                        relayed.append(message)
        if loop.time() >= deadline:  # not quiet: cut short
            self.events.emit(InboxCutShort(limit))
        await self._after(ids, relayed, link)
        received.sort(key=lambda m: m.sent)
        return received

    async def follow(self, refresh_every: float = 60.0) -> AsyncGenerator[MessageReceived]:
        """Yields messages as they arrive, for as long as it runs. Keeps the node supplied
        with SURBs (a refresh now and then, and whenever `wake` is set, e.g. after the
        nym-client reconnected), so the node can push promptly; and direct peers too."""
        for message in self.intake.never_shown():
            yield message
        wake = self.wake
        wake.set()
        wait = refresh_every
        while True:
            if wake.is_set():
                wake.clear()
                wait = refresh_every if await self._back_online() else RETRY_OFFLINE
            item = await self._next(wait, wake)
            if item is None:
                wake.set()  # quiet for a while: hand the node fresh SURBs
                continue
            if isinstance(item, MessageReceived):
                if self.intake.still_unshown(item.message_id):
                    yield item  # (unless it came out already, with the never-shown ones)
                continue
            if not isinstance(item, wire.Answer):
                continue  # woken
            ids: list[bytes] = []
            received = self._push(item, ids)
            await self._after(ids, received)
            for message in received:
                yield message

    async def _next(
        self, timeout: float, wake: asyncio.Event | None = None, link: Link | None = None
    ) -> wire.Answer | MessageReceived | bool | None:
        """The next push of the node (of `link`, else home) as a `wire.Answer`, or direct
        message (`MessageReceived`); True when `wake` was set, None after `timeout`
        seconds of quiet."""
        link = link or self.link
        waiters: dict[asyncio.Future[Any], str] = {
            asyncio.ensure_future(link.pushes.get()): "push",
            asyncio.ensure_future(self.arrivals.get()): "direct",
        }
        if wake is not None:
            waiters[asyncio.ensure_future(wake.wait())] = "wake"
        try:
            done, pending = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:  # none may be left to take the next one and drop it
            for waiter, source in waiters.items():
                if waiter.cancel() or source == "wake":
                    continue
                if source == "push":  # it took one already: put it back
                    link.pushes.put_nowait(waiter.result())
                else:
                    self.arrivals.put_nowait(waiter.result())
            raise
        for waiter in pending:
            waiter.cancel()
        results: dict[str, Any] = {waiters[w]: w.result() for w in done}
        # Both queues may have yielded at once: put back what will not be handled now.
        if "push" in results and "direct" in results:
            self.arrivals.put_nowait(results.pop("direct"))
        for source in ("push", "direct"):
            if source in results:
                item: wire.Answer | MessageReceived = results[source]
                return item
        return True if results else None

    async def _back_online(self) -> bool:
        """Hands the node fresh SURBs and sends what waits in the outbox; False (an event
        says so, once) while the node does not answer. Greets direct peers, so they
        hold fresh SURBs too."""
        await self.direct.keep()
        try:
            await self.link.request(Kind.REFRESH)
        except NymchatError as e:
            if self.node_answers:
                self.node_answers = False
                self.events.emit(NodeUnreachable(str(e)))
            return False
        if not self.node_answers:
            self.node_answers = True
            self.events.emit(NodeReachable())
        await self.outbox.flush()
        await self.registration.keep()
        return True

    async def catch_up(self, done: Callable[[], bool], limit: float) -> None:
        """Takes in what the node pushes until `done()` holds, for `limit` seconds at
        most (a group operation waiting for the commit that won its epoch)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        await self.link.request(Kind.REFRESH)
        while not done() and (left := deadline - loop.time()) > 0:
            try:  # briefly: a running `follow` may take in what we wait for
                async with asyncio.timeout(min(left, CATCH_UP_POLL)):
                    push = await self.link.pushes.get()
            except TimeoutError:
                continue
            ids: list[bytes] = []
            received = self._push(push, ids)
            await self._after(ids, received)

    def _push(self, push: wire.Answer, ids: list[bytes]) -> list[MessageReceived]:
        if push.kind is Kind.KEYS_LOW:
            self.registration.keys_low()
        if push.kind is Kind.KEY_PACKAGES_LOW:
            self.key_packages.low()
        body = push.body
        if push.kind is Kind.GROUP_DELIVER:
            ids.append(body["message_id"])
            return self.group_intake.take(body)
        if push.kind is not Kind.DELIVER:
            return []
        # no sender: only the sealed payload says who sent it
        ids.append(body["message_id"])
        message = self.intake.take(
            body["message_id"], body["payload"], self.direct.handshake, received=body["sent"]
        )
        return [message] if message is not None else []

    async def _after(
        self, ids: list[bytes], received: list[MessageReceived], link: Link | None = None
    ) -> None:
        """Acknowledges what was taken (to the node of `link`, else home), sends receipts,
        publishes keys if asked to."""
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), wire.MAX_LIST):  # one request holds so many
            try:
                await (link or self.link).request(
                    Kind.ACK, message_ids=tuple(ids[start : start + wire.MAX_LIST])
                )
            except NymchatError as e:  # the node pushes them again; copies are dropped
                log.info("acknowledgement not taken (%s); the node will push again", e)
        for message in received:  # end-to-end receipts: delivered to this device
            if message.group is None:  # (none in groups: the node's acceptance is the last)
                await self.direct.receipt(message.sender, message.message_id)
        await self.registration.keep()
