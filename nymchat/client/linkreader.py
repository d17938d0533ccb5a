"""The one reader of a profile's nym-client: every node link (home and foreign) shares it.

Node answers of any node arrive with no sender tag; they are told apart only by their frame
ids, which only a node can make for us (derived from a link's secret request ids, or MAC'd
under the push key the home link gives its node). So each frame goes to the link that
claims its id (`NodeLink.wants`), reassembled in a pool of node frames; everything else
(sent to our address, or a direct peer's reply) shares another, smaller pool and goes to
`on_direct`. Anyone who learns our address can send us bytes, but cannot crowd out or
forge a node's answer.
"""

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from nymchat import _native
from nymchat.client.direct_packets import MAGIC
from nymchat.errors import FramingError
from nymchat.nym.transport import NymClient

if TYPE_CHECKING:
    from nymchat.client.nodelink import NodeLink

DIRECT_MAGIC = bytes([MAGIC])


class LinkReader:
    def __init__(self, transport: NymClient):
        self.transport = transport
        self.links: list[NodeLink] = []  # the first is home: what no link claims is counted on it
        self.on_direct: Callable[[bytes, bytes | None], None] | None = None
        self._node_frames = _native.Reassembler(
            max_message_bytes=4 << 20, max_source_messages=256, max_source_bytes=32 << 20
        )  # one source
        # Whoever learns our address can send to it: they share another, smaller pool.
        self._strangers = _native.Reassembler(max_message_bytes=1 << 20)
        self._task: asyncio.Task[None] | None = None

    def add(self, link: "NodeLink") -> None:
        self.links.append(link)

    def remove(self, link: "NodeLink") -> None:
        if link in self.links:
            self.links.remove(link)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._read())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def owner(self, frame_id: bytes) -> "NodeLink | None":
        """The link a frame with no sender tag belongs to, if any claims its id."""
        return next((link for link in self.links if link.wants(frame_id)), None)

    def _rejected(self) -> None:
        if self.links:
            self.links[0].rejected += 1

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for received in self.transport:
            tag = received.sender_tag
            owner = self.owner(received.message[1:17]) if tag is None else None
            pool = self._node_frames if owner is not None else self._strangers
            try:
                done = pool.push(received.message, loop.time(), tag or b"")
            except FramingError:
                self._rejected()
                continue
            if done is None:
                continue
            if owner is not None and done[1][:1] != DIRECT_MAGIC:
                owner.accept(done[1])
            elif tag is None and done[1][:1] != DIRECT_MAGIC and self.links:
                self.links[0].accept(done[1])  # checked there: a forgery is counted
            elif self.on_direct is not None:  # not a reply, or a direct peer's reply
                self.on_direct(done[1], tag)
            else:
                self._rejected()
