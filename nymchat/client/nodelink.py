"""Requests to one node through the mixnet, and the node's signed answers and pushes.

Requests go with `sendAnonymous` (the node learns a sender tag, not our address) to one of
the node's frontends (its nym-clients): signed ones to our home frontend, anonymous ones
(sealed sends, lookups) to another that never was our home, so that the node cannot link
them to our account (`Frontends` picks them). A retry sends the same bytes (the node
answers a request it has seen with the same answer again), to the next frontend when one
does not answer. The node answers with `reply`, through whichever frontend the request
came in on. Only messages that verify under the pinned node key, are meant for our
identity (or, answering an anonymous request, for nobody) and answer a request we have
outstanding are accepted: anyone who learns our address can send us bytes, but cannot
forge a node answer. Everything else that arrives (sent to our address, or a direct
peer's reply) goes to `on_direct`.

Nor can they crowd out the node's frames: those carry message ids only the node can make
(derived from our secret request ids, or MAC'd under the push key we give the node in
every refresh); the profile's one `LinkReader` hands each to the link that claims it.

A link to a node we are not registered at (a contact's: `Links`) is *anonymous only*: it
never signs, never picks or burns a home, and fetches the node's descriptor anonymously.
"""

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nymchat import _native
from nymchat.client.events import DescriptorRefused, Event, HomeMoved, NotSealed
from nymchat.client.frontends import Frontends
from nymchat.client.linkreader import LinkReader
from nymchat.client.store import ClientStore
from nymchat.errors import (
    NotFound,
    NotRegistered,
    NymchatError,
    Refused,
    Unreachable,
)
from nymchat.nym.address import Address
from nymchat.nym.transport import NymClient
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Frontend, Kind

log = logging.getLogger(__name__)
REPLY_SURBS = 20  # the node's nym-client keeps 10 in reserve; 20 leave room for answers
TIMEOUT, ATTEMPTS = 10.0, 3
RESEND_MS = 100_000  # older, a request is made anew (the node would refuse it as stale)
FRONTENDS_KEY = "frontends"  # the profile store's record of them (`frontends:<key hex>`
# for a node we are not registered at)


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


@dataclass(frozen=True)
class _Outgoing:
    """A request as it goes out, the same bytes on every attempt."""

    kind: Kind
    body: dict[str, Any]
    data: bytes
    request_id: bytes
    made: int  # ms


class NodeLink:
    online = True

    def __init__(
        self,
        transport: NymClient,
        contact: NodeContact,
        identity: "_native.Identity",
        *,
        reply_surbs: int = REPLY_SURBS,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
        reader: LinkReader | None = None,
        anonymous_only: bool = False,
    ):
        """Shares `reader` (of the same `transport`) when given, else reads it alone."""
        self.transport = transport
        self.anonymous_only = anonymous_only
        self._owns_reader = reader is None
        self.reader = reader or LinkReader(transport)
        self.timeout = timeout  # seconds an attempt waits for the node's answer
        self.contact = contact
        self.node_key = _native.PublicKey(contact.key)
        self.identity = identity
        self.reply_surbs = reply_surbs
        self.clock = clock
        self.frontends = Frontends(contact, identity.signing_public, anonymous_only=anonymous_only)
        self.tell: Callable[[Event], None] = lambda event: None  # the engine's events
        self._told_not_sealed = False
        self._choosing = asyncio.Lock()  # one descriptor fetch or home move at a time
        self.pushes: asyncio.Queue[wire.Answer] = asyncio.Queue()
        self.rejected = 0  # messages that were not a valid node answer for us
        self.latency: float | None = None  # seconds, request to answer, of the last request
        # request id → (waiter, whom the answer is signed for)
        self._pending: dict[bytes, tuple[asyncio.Future[wire.Answer], bytes]] = {}
        self.push_key = os.urandom(32)  # given to the node with every refresh
        self._answer_frames: set[bytes] = set()  # frame ids of the answers we wait for
        self.reader.add(self)

    def beside(self, contact: NodeContact, anonymous_only: bool = False) -> "NodeLink":
        """A link to another node through this one's nym-client and reader, with the same
        identity, SURBs and timings."""
        return NodeLink(
            self.transport,
            contact,
            self.identity,
            reply_surbs=self.reply_surbs,
            clock=self.clock,
            timeout=self.timeout,
            reader=self.reader,
            anonymous_only=anonymous_only,
        )

    @property
    def on_direct(self) -> Callable[[bytes, bytes | None], None] | None:
        """Called with (message, sender tag or None) for what is no node's answer."""
        return self.reader.on_direct

    @on_direct.setter
    def on_direct(self, on_direct: Callable[[bytes, bytes | None], None] | None) -> None:
        self.reader.on_direct = on_direct

    def attach(self, store: ClientStore, tell: Callable[[Event], None]) -> None:
        """Keeps the frontends (descriptor, home, burned addresses) in the profile `store`,
        as they were at the last run, and tells what changes to `tell`. An anonymous-only
        link keeps its node's record apart and takes the burned addresses from home's."""
        self.tell = tell
        key = FRONTENDS_KEY
        burned: set[str] = set()
        if self.anonymous_only:
            key = f"{FRONTENDS_KEY}:{self.contact.key.hex()}"
            burned = set((store.get(FRONTENDS_KEY) or {}).get("burned", ()))
        self.frontends = Frontends(
            self.contact,
            self.identity.signing_public,
            store.get(key),
            lambda record: store.put(key, record),
            anonymous_only=self.anonymous_only,
            burned=burned,
        )

    async def __aenter__(self) -> "NodeLink":
        self.reader.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.reader.remove(self)
        if self._owns_reader:
            self.reader.stop()

    def wants(self, frame_id: bytes) -> bool:
        """Whether a frame's message id is one only our node can make for this link."""
        return frame_id in self._answer_frames or wire.is_push_frame_id(self.push_key, frame_id)

    @property
    def idle(self) -> bool:
        """No request waits for an answer."""
        return not self._pending

    def accept(self, data: bytes) -> None:
        """A message the reader reassembled for this link: kept if it is a valid answer
        of our node (or push, on the home link), else counted as rejected."""
        # An answer names the request it answers after version and kind: that request
        # says whom the answer is signed for (us, or nobody for an anonymous request).
        pending = self._pending.get(data[2:18]) if data[1:2] < b"\x80" else None
        requester = pending[1] if pending is not None else self.identity.signing_public
        try:
            answer = wire.decode_answer(data, self.node_key, requester)
        except wire.WireError as e:
            self.rejected += 1
            log.debug("ignored a message that is not a valid node answer: %s", e)
            return
        if answer.in_reply_to is None:
            if self.anonymous_only:
                self.rejected += 1  # no node pushes to a link that never gave a push key
                return
            self.pushes.put_nowait(answer)
            return
        found = self._pending.pop(answer.in_reply_to, None)
        if found is None or found[0].done():
            self.rejected += 1  # an answer to nothing we asked (or a duplicate)
            return
        found[0].set_result(answer)

    async def send_raw(self, data: bytes, to: Address | None = None) -> None:
        """Sends request bytes as they are (frames; SURBs with the first) to the frontend
        at `to` (where a descriptor request goes by default: home, or for an anonymous-only
        link its anonymous frontend)."""
        to = to or self.frontends.address(self._route(Kind.FRONTENDS))
        for n, frame in enumerate(_native.encode_frames(data, os.urandom(16))):
            await self.transport.send_anonymous(to, frame, self.reply_surbs if n == 0 else 0)

    async def request(
        self,
        kind: Kind,
        timeout: float | None = None,
        attempts: int = ATTEMPTS,
        request_id: bytes | None = None,
        **body: Any,
    ) -> wire.Answer:
        """Sends a request and returns the node's answer; `NodeRefused` for an error
        answer, `NodeSilent` when every attempt goes unanswered. Signed requests go to our
        home frontend, anonymous ones to our anonymous frontend (see `Frontends`). Each
        attempt sends the same bytes (the node answers a request it has seen again), with
        fresh SURBs; once every attempt at a frontend is unanswered, the next one takes
        over. A request too old for the node to take is made anew (a new id, even if
        `request_id` gave the first: work bound to it is asked for again). A refresh
        carries our push key."""
        timeout = self.timeout if timeout is None else timeout
        if kind is Kind.REFRESH:
            body = {"push_key": self.push_key, **body}
        await self._refresh_frontends(timeout)
        outgoing = self._encode(kind, body, request_id)
        tried: set[int] = set()
        while (frontend := self._route(kind)).id not in tried:
            tried.add(frontend.id)
            answer, outgoing = await self._exchange(outgoing, frontend, timeout, attempts)
            if answer is not None:
                return answer
            if not self.anonymous_only and frontend.id == self.frontends.home().id:
                if not await self._move_home(frontend, timeout):
                    break
            else:
                self.frontends.silent(frontend)
        where = f" on each of {len(tried)} of its frontends" if len(tried) > 1 else ""
        raise NodeSilent(
            f"the node did not answer {attempts} attempts of {timeout:.0f} s{where}: "
            "check that it runs, that your nym-client is connected, and the "
            "node contact string"
        )

    def _encode(
        self, kind: Kind, body: dict[str, Any], request_id: bytes | None = None
    ) -> _Outgoing:
        now = int(self.clock() * 1000)
        if kind.is_anonymous:
            data, request_id = wire.encode_anonymous_request(kind, body, now, request_id)
        else:
            data, request_id = wire.encode_request(
                self.identity, self.contact.key, kind, body, now, request_id
            )
        return _Outgoing(kind, body, data, request_id, now)

    def _route(self, kind: Kind) -> Frontend:
        """Our home for signed requests and the descriptor (public); the anonymous
        frontend for anonymous ones, or home when there is none (told once a run). An
        anonymous-only link has no home: everything goes to its anonymous frontend, or,
        every one of them burned, to the first in our order."""
        if self.anonymous_only and not kind.is_anonymous:
            raise NymchatError(
                f"a {kind.name.lower()} request is signed: never made at another person's node"
            )
        if kind.is_anonymous and (kind is not Kind.FRONTENDS or self.anonymous_only):
            anonymous = self.frontends.anonymous()
            if anonymous is not None:
                return anonymous
            if not self._told_not_sealed:
                self._told_not_sealed = True
                self.tell(NotSealed(len(self.frontends.listed)))
            if self.anonymous_only:
                return self.frontends.order()[0]
        return self.frontends.home()

    async def _exchange(
        self, outgoing: _Outgoing, frontend: Frontend, timeout: float, attempts: int
    ) -> tuple[wire.Answer | None, _Outgoing]:
        """Up to `attempts` sends to `frontend`; the answer (None if none came) and the
        request as last sent (made anew once older than `RESEND_MS`)."""
        to = self.frontends.address(frontend)
        for _ in range(attempts):
            if int(self.clock() * 1000) - outgoing.made > RESEND_MS:
                outgoing = self._encode(outgoing.kind, outgoing.body)
            try:
                answer = await self.request_raw(
                    outgoing.data,
                    outgoing.request_id,
                    timeout,
                    to=to,
                    anonymous=outgoing.kind.is_anonymous,
                )
                return answer, outgoing
            except TimeoutError:
                continue
        return None, outgoing

    async def _move_home(self, silent: Frontend, timeout: float) -> bool:
        """Our home `silent` did not answer: the next frontend in our order where the node
        answers becomes home (asked with an anonymous descriptor request, which links
        nothing to us): a node that is down altogether must not burn every frontend it
        has. False when there is nowhere to go."""
        async with self._choosing:
            if self.frontends.home().id != silent.id:
                return True  # another request moved it meanwhile
            for candidate in self.frontends.next_homes():
                try:
                    probe = self._encode(Kind.FRONTENDS, {})
                    answer, _ = await self._exchange(probe, candidate, timeout, 1)
                    if answer is None:
                        continue  # gone too (with the same node process, maybe)
                    self._take(answer)
                except NodeRefused:
                    pass  # it answers, with no descriptor to give yet
                home = self.frontends.move_home(candidate)
                self.tell(HomeMoved(silent.id, home.id, silent=True))
                return True
            return False

    async def _refresh_frontends(self, timeout: float) -> None:
        """Fetches the node's descriptor through home (an anonymous-only link: its
        anonymous frontend) when it is due (one attempt: a node
        that does not answer is the request's to find out)."""
        async with self._choosing:
            now = int(self.clock() * 1000)
            if not self.frontends.due(now):
                return
            to = self._route(Kind.FRONTENDS)
            try:
                answer, _ = await self._exchange(self._encode(Kind.FRONTENDS, {}), to, timeout, 1)
            except NodeRefused as e:  # a node from before frontends, or none signed yet
                log.debug("no frontend descriptor from the node: %s", e)
                answer = None
            if answer is None:
                self.frontends.failed(now)
            else:
                self._take(answer)

    def _take(self, answer: wire.Answer) -> None:
        now = int(self.clock() * 1000)
        home = None if self.anonymous_only else self.frontends.home().id
        try:
            if answer.kind is not Kind.FRONTENDS_ARE:
                raise wire.WireError(f"{answer.kind.name.lower()} is not a frontend descriptor")
            self.frontends.take(answer.body["descriptor"], self.node_key, now)
        except wire.WireError as e:
            self.frontends.failed(now)
            self.tell(DescriptorRefused(str(e)))
            return
        if home is not None and self.frontends.home().id != home:
            self.tell(HomeMoved(home, self.frontends.home().id, silent=False))

    async def request_raw(
        self,
        data: bytes,
        request_id: bytes,
        timeout: float,
        to: Address | None = None,
        anonymous: bool = False,
    ) -> wire.Answer:
        """Sends encoded request bytes (to our home unless `to`) and waits for the answer
        to `request_id` (signed for nobody if the request is `anonymous`)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[wire.Answer] = loop.create_future()
        requester = wire.ANONYMOUS if anonymous else self.identity.signing_public
        self._pending[request_id] = waiter, requester
        frame_id = wire.answer_frame_id(request_id)
        self._answer_frames.add(frame_id)
        started = loop.time()
        try:
            await self.send_raw(data, to)
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
