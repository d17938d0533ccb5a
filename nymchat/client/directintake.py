"""Direct packets coming in: from the link, everything sent to our address that is not a
node answer (a direct peer's packet, or anyone's bytes), checked in order in a bounded
backlog, before any session is touched: decoded, matched to a channel and its MAC, the
direct-mode machine told; then the message taken in and its receipt sent."""

import asyncio
import logging

from nymchat.client import direct
from nymchat.client import direct_packets as packets
from nymchat.client.directpaths import DirectPaths
from nymchat.client.events import MessageReceived
from nymchat.client.intake import Intake
from nymchat.client.nodelink import Link
from nymchat.errors import NymchatError
from nymchat.protocol import wire

log = logging.getLogger(__name__)
DIRECT_BACKLOG = 1000, 16 << 20  # packets, bytes waiting to be checked; more are dropped


class DirectIntake:
    def __init__(self, paths: DirectPaths, intake: Intake, link: Link):
        self.paths, self.intake = paths, intake
        self.rejected = 0  # direct packets dropped: strangers, bad MACs, garbage
        self.arrivals: asyncio.Queue[MessageReceived] = asyncio.Queue()  # taken directly
        self._in: asyncio.Queue[tuple[bytes, bytes | None]] = asyncio.Queue(DIRECT_BACKLOG[0])
        self._in_bytes = 0
        self._loop_task: asyncio.Task[None] | None = None
        if link.online:
            link.on_direct = self._arrived

    def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()

    def _arrived(self, data: bytes, tag: bytes | None) -> None:
        """From the link: a message that is not a node answer. Checked in order, later."""
        if self._in_bytes + len(data) > DIRECT_BACKLOG[1]:
            self._reject("too much waiting")
            return
        try:
            self._in.put_nowait((data, tag))
        except asyncio.QueueFull:
            self._reject("too many waiting")
            return
        self._in_bytes += len(data)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            data, tag = await self._in.get()
            self._in_bytes -= len(data)
            try:
                await self._packet(data, tag)
            except (NymchatError, wire.WireError, ValueError) as e:
                log.warning("a direct message could not be handled: %s", e)

    def _reject(self, why: str) -> None:
        """Counts a dropped direct packet; logs the 1st, 2nd, 4th, 8th... so that a
        flood cannot fill the log."""
        self.rejected += 1
        n = self.rejected
        if n & (n - 1) == 0:
            log.warning(
                "ignored %d message(s) sent to this address by strangers (last: %s)", n, why
            )

    async def _packet(self, data: bytes, tag: bytes | None) -> None:
        try:
            packet = packets.decode_packet(data)
        except packets.BadPacket as e:
            return self._reject(str(e))
        peer = self.paths.channels().get(packet.channel)
        if peer is None or not packets.authentic(packet, peer[1]):
            return self._reject("unknown channel or bad MAC")
        username = peer[0]
        event = direct.PacketAuthentic(packet.kind, packet.direction, tag)
        refused = await self.paths.run(username, event)
        if refused is not None:
            return self._reject(refused.value)
        if packet.kind == packets.HELLO:
            return
        if self.intake.was_taken(packet.message_id):  # a copy: the receipt may have been lost
            await self.paths.receipt(username, packet.message_id)
            return
        received = self.intake.take(
            packet.message_id, packet.payload, self.paths.handshake, peer=username
        )
        if received is not None:
            self.arrivals.put_nowait(received)
            await self.paths.receipt(username, received.message_id)
