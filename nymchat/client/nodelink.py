"""Requests to one node through the mixnet, and the node's signed answers and pushes.

Requests go with `sendAnonymous` (the node learns a sender tag, not our address); the
node answers with `reply`. Only messages that verify under the pinned node key, are
meant for our identity and answer a request we have outstanding are accepted: anyone who
learns our address can send us bytes, but cannot forge a node answer. Everything else
that arrives (sent to our address, or a direct peer's reply) goes to `on_direct`.

Nor can they crowd out the node's frames: those carry message ids only the node can make
(derived from our secret request ids, or MAC'd under the push key we give the node in
every refresh) and are reassembled in a pool of their own; everything else shares another.
"""

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from nymchat import _native
from nymchat.client.direct_packets import MAGIC
from nymchat.errors import (
    FramingError,
    NotFound,
    NotRegistered,
    NymchatError,
    Refused,
    Unreachable,
)
from nymchat.nym.transport import NymClient
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

log = logging.getLogger(__name__)
DIRECT_MAGIC = bytes([MAGIC])
REPLY_SURBS = 20  # the node's nym-client keeps 10 in reserve; 20 leave room for answers
TIMEOUT, ATTEMPTS = 10.0, 3


class NodeRefused(Refused):
    """The node refused a request: `code` is its `ErrorCode` (or the number of one this
    version does not know), `detail` its words. `refusal` picks the class by code."""

    def __init__(self, code: ErrorCode | int, detail: str):
        name = code.name.lower() if isinstance(code, ErrorCode) else f"error {code}"
        super().__init__(f"the node refused: {detail} ({name})")
        self.code, self.detail, self.node_code = code, detail, name


class NodeNotFound(NotFound, NodeRefused):
    """The node knows no such name (`ErrorCode.NOT_FOUND`): exit status of `NotFound`."""


class NodeNotRegistered(NotRegistered, NodeRefused):
    """The node has no name for this profile's key (`ErrorCode.NOT_REGISTERED`)."""


_REFUSALS = {ErrorCode.NOT_FOUND: NodeNotFound, ErrorCode.NOT_REGISTERED: NodeNotRegistered}


def refusal(code: int, detail: str) -> NodeRefused:
    """The error for a node's error answer, of the class its code calls for."""
    if code not in ErrorCode._value2member_map_:
        return NodeRefused(code, detail)
    code = ErrorCode(code)
    return _REFUSALS.get(code, NodeRefused)(code, detail)


class NodeSilent(Unreachable):
    message = "the node did not answer"


class NodeLink:
    online = True

    def __init__(
        self,
        transport: NymClient,
        contact: NodeContact,
        identity: "_native.Identity",
        *,
        reply_surbs: int = REPLY_SURBS,
        on_direct: Callable[[bytes, bytes | None], None] | None = None,
    ):
        self.transport = transport
        self.contact = contact
        self.node_key = _native.PublicKey(contact.key)
        self.identity = identity
        self.reply_surbs = reply_surbs
        self.on_direct = on_direct  # called with (message, sender tag or None)
        self.pushes: asyncio.Queue[wire.Answer] = asyncio.Queue()
        self.rejected = 0  # messages that were not a valid node answer for us
        self.latency: float | None = None  # seconds, request to answer, of the last request
        self._pending: dict[bytes, asyncio.Future[wire.Answer]] = {}
        self.push_key = os.urandom(32)  # given to the node with every refresh
        self._answer_frames: set[bytes] = set()  # frame ids of the answers we wait for
        self._node_frames = _native.Reassembler(
            max_message_bytes=4 << 20, max_source_messages=256, max_source_bytes=32 << 20
        )  # one source
        # Whoever learns our address can send to it: they share another, smaller pool.
        self._strangers = _native.Reassembler(max_message_bytes=1 << 20)
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "NodeLink":
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for received in self.transport:
            tag = received.sender_tag
            from_node = tag is None and self._node_frame(received.message[1:17])
            pool = self._node_frames if from_node else self._strangers
            try:
                done = pool.push(received.message, loop.time(), tag or b"")
            except FramingError:
                self.rejected += 1
                continue
            if done is None:
                continue
            if tag is None and done[1][:1] != DIRECT_MAGIC:
                self._accept(done[1])
            elif self.on_direct is not None:  # not a reply, or a direct peer's reply
                self.on_direct(done[1], tag)
            else:
                self.rejected += 1

    def _node_frame(self, frame_id: bytes) -> bool:
        """Whether a frame's message id is one only the node can make for us."""
        return frame_id in self._answer_frames or wire.is_push_frame_id(self.push_key, frame_id)

    def _accept(self, data: bytes) -> None:
        try:
            answer = wire.decode_answer(data, self.node_key, self.identity.signing_public)
        except wire.WireError as e:
            self.rejected += 1
            log.debug("ignored a message that is not a valid node answer: %s", e)
            return
        if answer.in_reply_to is None:
            self.pushes.put_nowait(answer)
            return
        waiter = self._pending.pop(answer.in_reply_to, None)
        if waiter is None or waiter.done():
            self.rejected += 1  # an answer to nothing we asked (or a duplicate)
            return
        waiter.set_result(answer)

    async def send_raw(self, data: bytes) -> None:
        """Sends request bytes as they are (frames; SURBs with the first)."""
        for n, frame in enumerate(_native.encode_frames(data, os.urandom(16))):
            await self.transport.send_anonymous(
                self.contact.addresses[0], frame, self.reply_surbs if n == 0 else 0
            )

    async def request(
        self, kind: Kind, timeout: float = TIMEOUT, attempts: int = ATTEMPTS, **body: Any
    ) -> wire.Answer:
        """Sends a request and returns the node's answer; `NodeRefused` for an error
        answer, `NodeSilent` when every attempt goes unanswered. Each attempt is a new
        request (new id and time): the node refuses replays, and every operation is safe
        to repeat. A refresh carries our push key."""
        if kind is Kind.REFRESH:
            body = {"push_key": self.push_key, **body}
        for _ in range(attempts):
            data, request_id = wire.encode_request(
                self.identity, self.contact.key, kind, body, int(time.time() * 1000)
            )
            try:
                return await self.request_raw(data, request_id, timeout)
            except TimeoutError:
                continue
        raise NodeSilent(
            f"the node did not answer {attempts} attempts of {timeout:.0f} s: "
            "check that it runs, that your nym-client is connected, and the "
            "node contact string"
        )

    async def request_raw(self, data: bytes, request_id: bytes, timeout: float) -> wire.Answer:
        """Sends encoded request bytes and waits for the answer to `request_id`."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[wire.Answer] = loop.create_future()
        self._pending[request_id] = waiter
        frame_id = wire.answer_frame_id(request_id)
        self._answer_frames.add(frame_id)
        started = loop.time()
        try:
            await self.send_raw(data)
            # Not `wait_for`: on Python 3.11 it loses a cancellation that comes as the
            # answer does, and a stopped `follow` would run on.
            async with asyncio.timeout(timeout):
                answer = await waiter
        finally:
            self._pending.pop(request_id, None)
            self._answer_frames.discard(frame_id)
        self.latency = loop.time() - started
        if answer.kind is Kind.ERROR:
            raise refusal(answer.body["code"], answer.body["detail"])
        return answer


class Offline(NymchatError):
    message = "this needs the node, and this engine was opened offline"


class OfflineLink:
    """The link of an engine opened without the network (a command that only reads or
    changes the profile): every request is refused at once with `Offline`."""

    online = False
    transport = None
    latency = None

    def __init__(self, contact: NodeContact | None):
        self.contact = contact
        self.pushes: asyncio.Queue[wire.Answer] = asyncio.Queue()
        self.on_direct: Callable[[bytes, bytes | None], None] | None = None

    async def request(self, kind: Kind, **body: Any) -> wire.Answer:
        raise Offline()


Link = NodeLink | OfflineLink
