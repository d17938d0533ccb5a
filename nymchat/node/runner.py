"""The node's I/O: frames in from the nym-client, reassembled fairly per sender tag,
through the intake (rate per tag, fair queues) in batches to the service, signed answers
and pushes back out as `reply`s; re-pushes and housekeeping on timers."""

import asyncio
import logging
import time

from nymchat import _native
from nymchat.errors import FramingError
from nymchat.node.intake import Intake
from nymchat.node.service import NodeService, Outgoing
from nymchat.nym.transport import NymClient

log = logging.getLogger(__name__)
MAX_BATCH = 256
PUSH_INTERVAL = 1.0
MAINTENANCE_INTERVAL = 60.0
MAX_REQUEST_BYTES = 256 << 10


def now_ms() -> int:
    return int(time.time() * 1000)


class NodeRunner:
    def __init__(self, service: NodeService, transport: NymClient):
        self.service = service
        self.transport = transport
        # Fair per sender tag: a tag's frames can only evict that tag's own messages.
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
        self.dropped = {"no_tag": 0, "bad_frame": 0}

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(coroutine)
            for coroutine in (self._receive(), self._process(), self._repush(), self._maintain())
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # requests that arrived but were never answered: answer now
            while batch := self.intake.take(MAX_BATCH):
                await self._send(self.service.handle_batch(batch, now_ms()))

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        count = 0
        async for received in self.transport:
            count += 1
            if count % MAX_BATCH == 0:
                await asyncio.sleep(0)  # a flood of frames must not starve the answering
            if received.sender_tag is None:  # a node answers only what it can reply to
                self.dropped["no_tag"] += 1
                continue
            try:
                done = self.reassembler.push(received.message, loop.time(), received.sender_tag)
            except FramingError as e:
                self.dropped["bad_frame"] += 1
                log.debug("dropped a bad frame: %s", e)
                continue
            if done is not None and self.intake.offer(
                done[1], received.sender_tag, now_ms(), self.service.known_tag
            ):
                self.work.set()

    async def _process(self) -> None:
        while True:
            await self.work.wait()
            self.work.clear()
            while batch := self.intake.take(MAX_BATCH):
                await self._send(self.service.handle_batch(batch, now_ms()))

    async def _repush(self) -> None:
        while True:
            await asyncio.sleep(PUSH_INTERVAL)
            await self._send(self.service.due_pushes(now_ms()))

    async def _maintain(self) -> None:
        while True:
            expired, _forgotten = self.service.maintain(now_ms())
            if expired:
                log.info("dropped %d messages past the retention period", expired)
            await asyncio.sleep(MAINTENANCE_INTERVAL)

    async def _send(self, outgoing: list[Outgoing]) -> None:
        for out in outgoing:
            for frame in _native.encode_frames(out.message, out.frame_id):
                await self.transport.reply(out.tag, frame)
