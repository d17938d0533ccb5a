"""The network model, sans-I/O: virtual clients, sender tags, SURB accounting, packet
timing and faults. The server feeds it requests and the time and hands its deliveries
to websockets; nothing here touches a socket or reads a clock.

What is modelled, after the real client (docs/NYM-CLIENT-API.md):
- a message becomes packets of ~1604 B (SURBs attached by `sendAnonymous` add to it);
  packets leave the sender as a Poisson stream and cross `hops` mix layers with
  exponential delays, each packet independently, so messages reorder; a message is
  delivered when its last packet arrives;
- a lost packet is sent again after the ack timeout, so loss delays a message;
- `sendAnonymous` gives the recipient a sender tag (random, one per sender→recipient,
  new after the sender restarts) and `replySurbs` SURBs for it (at most 500); a reply
  spends one SURB per packet and keeps a reserve; below it, the replier spends one SURB to
  ask the sender's client for more (answered only while that client is online) and holds
  the reply until they come or it times out; with no SURB at all the reply is silently
  lost;
- messages for a client with no websocket are held (bounded) and flushed on reconnect.
"""

import heapq
import itertools
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field

from nymchat.mixnet.config import PROFILES, Delays, Faults, Limits
from nymchat.nym import api
from nymchat.nym.address import Address

# Fragment payload of one regular Sphinx packet (2413 B on the wire, 7 B fragment header).
PACKET_DATA = 1604
# Bytes one reply SURB takes inside a repliable message (3 mix hops + gateway, legacy
# format, the real client's default).
SURB_SIZE = 1164
# The replying client's SURB policy (client-core defaults): the last 10 SURBs of a tag
# are kept to ask for more; a top-up asks for 10-50.
SURB_RESERVE = 10
SURB_TOPUP_MIN = 10
SURB_TOPUP_MAX = 50
# The most SURBs attached to one message, so that one request costs bounded work. The real
# client has no cap on its own application's `replySurbs` (client-core's
# `generate_reply_surbs` builds every one asked for, 2^32 - 1 included); what it caps is
# what it builds at once for another client's request: 500
# (`maximum_allowed_reply_surb_request_size`, client-core config-types), lowering a larger
# amount with a warning (replies/reply_controller/sender_controller.rs). Same here.
MAX_REPLY_SURBS = 500


def packets_for(
    data_len: int, *, reply: bool = False, surbs: int = 0, repliable: bool = False
) -> int:
    """Sphinx packets a message of `data_len` bytes takes."""
    size = 1 + data_len + 1  # message type, data, padding marker
    if reply:
        size += 1  # reply content tag
    if repliable:
        size += api.SENDER_TAG_LEN + 1 + 4 + surbs * SURB_SIZE  # tag, content tag, count
    return math.ceil(size / PACKET_DATA)


@dataclass
class _PendingReply:
    tag: bytes
    message: bytes
    deadline: float


@dataclass
class Client:
    name: str
    address: Address
    online: bool = False
    tags_to: dict[str, bytes] = field(default_factory=dict)  # recipient name → our tag
    surbs: dict[bytes, int] = field(default_factory=dict)  # tag → SURBs we hold for it
    topup_pending: set[bytes] = field(default_factory=set)
    pending_replies: deque[_PendingReply] = field(default_factory=deque)
    held: deque[tuple[float, "_Event"]] = field(default_factory=deque)  # (arrived, event)
    held_bytes: int = 0
    lane_free_at: float = 0.0
    lanes: dict[int, deque[float]] = field(default_factory=dict)  # conn id → departures


# Internal events travelling the network besides application messages.
@dataclass(frozen=True)
class _Message:
    received: api.Received
    surbs: int = 0  # credited to the recipient for received.sender_tag


@dataclass(frozen=True)
class _SurbRequest:
    tag: bytes
    replier: str
    amount: int


@dataclass(frozen=True)
class _SurbTopUp:
    tag: bytes
    amount: int


@dataclass(frozen=True)
class _ReplyDeadline:
    """Time to drop the replies a client has held too long for SURBs."""


_Event = _Message | _SurbRequest | _SurbTopUp  # what reaches a client, or waits for it


def _size(event: _Event) -> int:
    return len(event.received.message) if isinstance(event, _Message) else 0


class Mixnet:
    def __init__(
        self,
        delays: Delays | None = None,
        faults: Faults | None = None,
        limits: Limits | None = None,
        rng: random.Random | None = None,
    ):
        self.delays = delays or PROFILES["zero"]
        self.faults = faults or Faults()
        self.limits = limits or Limits()
        self.rng = rng or random.Random()
        self.clients: dict[str, Client] = {}
        self._by_identity: dict[bytes, str] = {}
        self._tag_owner: dict[bytes, str] = {}  # tag → the client that sends with it
        self._queue: list[tuple[float, int, str, _Event | _ReplyDeadline]] = []
        self._serial = itertools.count()
        self._deliveries: list[tuple[str, api.Received]] = []
        self.stats: Counter[str] = Counter()

    # --- clients ------------------------------------------------------------------

    def add_client(self, name: str, address: Address) -> Client:
        if len(self.clients) >= self.limits.max_clients:
            raise OverflowError(f"this mixnet hosts at most {self.limits.max_clients} clients")
        client = Client(name, address)
        self.clients[name] = client
        self._by_identity[address.identity] = name
        return client

    def connect(self, name: str, now: float) -> list[api.Received]:
        """A websocket opened: returns what was held for the client, oldest first."""
        client = self.clients[name]
        client.online = True
        held, client.held, client.held_bytes = client.held, deque(), 0
        out: list[tuple[str, api.Received]] = []
        for arrived, event in held:
            if now - arrived > self.limits.retention:
                self.stats["dropped_retention"] += 1
            else:
                self._process(client, event, now, out)
        return [received for _, received in out]

    def disconnect(self, name: str) -> None:
        self.clients[name].online = False

    def restart(self, name: str) -> None:
        """The client's nym-client restarted: it uses new sender tags and ignores SURB
        requests for the old ones, but still decrypts replies to them (reply keys are
        kept on disk)."""
        self.clients[name].tags_to.clear()

    # --- requests -----------------------------------------------------------------

    def handle(self, name: str, request: api.Request, now: float) -> list[api.Response]:
        """One request from client `name`; returns its immediate responses."""
        client = self.clients[name]
        match request:
            case api.SelfAddress():
                return [api.SelfAddressIs(client.address)]
            case api.Send(recipient, message, conn):
                self._send_message(
                    client,
                    recipient,
                    _Message(api.Received(message)),
                    len(message),
                    conn,
                    now,
                    packets_for(len(message)),
                )
            case api.SendAnonymous(recipient, message, surbs, conn):
                if surbs > MAX_REPLY_SURBS:
                    self.stats["surbs_capped"] += 1
                    surbs = MAX_REPLY_SURBS
                to = self._by_identity.get(recipient.identity)
                tag = None
                if to is not None:
                    tag = client.tags_to.get(to)
                    if tag is None:
                        tag = client.tags_to[to] = self.rng.randbytes(api.SENDER_TAG_LEN)
                        self._tag_owner[tag] = name
                packets = packets_for(len(message), repliable=True, surbs=surbs)
                self._send_message(
                    client,
                    recipient,
                    _Message(api.Received(message, tag), surbs),
                    len(message),
                    conn,
                    now,
                    packets,
                )
            case api.Reply(tag, message, conn):
                self.stats["messages"] += 1
                self._reply(client, tag, message, conn, now)
            case api.ClosedConnection(conn):
                client.lanes.pop(conn, None)
                return []
            case api.GetLaneQueueLength(conn):
                return [api.LaneQueueLength(conn, self._lane_length(client, conn, now))]
        conn = getattr(request, "connection_id", None)
        if conn is not None:
            return [api.LaneQueueLength(conn, self._lane_length(client, conn, now))]
        return []

    def _send_message(
        self,
        client: Client,
        recipient: Address,
        item: _Message,
        size: int,
        conn: int | None,
        now: float,
        packets: int,
    ) -> None:
        self.stats["messages"] += 1
        to = self._by_identity.get(recipient.identity)
        arrival = self._transmit(client, packets, conn, now)
        if to is None or self.clients[to].address != recipient:
            self.stats["dropped_unknown_recipient"] += 1
            return
        self._schedule(arrival, to, item)
        if self.faults.duplicate and self.rng.random() < self.faults.duplicate:
            self.stats["duplicated"] += 1
            self._schedule(arrival + self._path_delay(), to, _Message(item.received))

    def _reply(
        self, client: Client, tag: bytes, message: bytes, conn: int | None, now: float
    ) -> None:
        if tag not in client.surbs:
            self.stats["dropped_unknown_tag"] += 1
            return
        needed = packets_for(len(message), reply=True)
        if any(p.tag == tag for p in client.pending_replies):
            self._hold_reply(client, tag, message, now)  # keep replies in order
            return
        if client.surbs[tag] >= needed + SURB_RESERVE:
            self._send_reply(client, tag, message, needed, conn, now)
            return
        if not self._request_surbs(client, tag, needed, now):
            self.stats["dropped_no_surbs"] += 1
            return
        self._hold_reply(client, tag, message, now)

    def _hold_reply(self, client: Client, tag: bytes, message: bytes, now: float) -> None:
        deadline = now + self.limits.reply_timeout
        client.pending_replies.append(_PendingReply(tag, message, deadline))
        self._schedule(deadline, client.name, _ReplyDeadline())

    def _send_reply(
        self, client: Client, tag: bytes, message: bytes, packets: int, conn: int | None, now: float
    ) -> None:
        client.surbs[tag] -= packets
        self.stats["surbs_spent"] += packets
        arrival = self._transmit(client, packets, conn, now)
        if self.faults.drop_replies and self.rng.random() < self.faults.drop_replies:
            self.stats["dropped_replies_fault"] += 1
            return
        self._schedule(arrival, self._tag_owner[tag], _Message(api.Received(message)))

    def _request_surbs(self, client: Client, tag: bytes, needed: int, now: float) -> bool:
        """Spends one SURB to ask the tag's owner for more; False if none is left."""
        if tag in client.topup_pending:
            return True
        if client.surbs[tag] < 1:
            return False
        client.surbs[tag] -= 1
        self.stats["surbs_spent"] += 1
        self.stats["surb_requests"] += 1
        client.topup_pending.add(tag)
        queued = needed + sum(
            packets_for(len(p.message), reply=True) for p in client.pending_replies if p.tag == tag
        )
        amount = min(SURB_TOPUP_MAX, max(SURB_TOPUP_MIN, queued))
        arrival = self._transmit(client, 1, None, now)
        self._schedule(arrival, self._tag_owner[tag], _SurbRequest(tag, client.name, amount))
        return True

    def _answer_surb_request(self, owner: str, request: _SurbRequest, now: float) -> None:
        if self.clients[owner].tags_to.get(request.replier) != request.tag:
            self.stats["surb_requests_ignored"] += 1  # the owner restarted since
            return
        packets = packets_for(0, repliable=True, surbs=request.amount)
        arrival = self._transmit(self.clients[owner], packets, None, now)
        self._schedule(arrival, request.replier, _SurbTopUp(request.tag, request.amount))

    def _retry_replies(self, client: Client, now: float) -> None:
        waiting, client.pending_replies = client.pending_replies, deque()
        for pending in waiting:
            if now >= pending.deadline:
                self.stats["dropped_reply_timeout"] += 1
                continue
            needed = packets_for(len(pending.message), reply=True)
            if (
                pending.tag not in client.topup_pending
                and client.surbs.get(pending.tag, 0) >= needed + SURB_RESERVE
            ):
                self._send_reply(client, pending.tag, pending.message, needed, None, now)
            elif pending.tag in client.topup_pending or self._request_surbs(
                client, pending.tag, needed, now
            ):
                client.pending_replies.append(pending)
            else:
                self.stats["dropped_no_surbs"] += 1

    # --- timing -------------------------------------------------------------------

    def _path_delay(self) -> float:
        mean = self.delays.hop_mean
        if not mean:
            return 0.0
        return sum(self.rng.expovariate(1 / mean) for _ in range(self.delays.hops))

    def _ack_timeout(self) -> float:
        if self.faults.ack_timeout is not None:
            return self.faults.ack_timeout
        return 1.5 * self.delays.expected_path + 1.5

    def _transmit(self, client: Client, packets: int, conn: int | None, now: float) -> float:
        """Sends `packets` packets from `client`; returns when the last one arrives."""
        self.stats["packets"] += packets
        send_mean = self.delays.send_mean
        lane = client.lanes.setdefault(conn, deque()) if conn is not None else None
        last = now
        for _ in range(packets):
            if send_mean:
                client.lane_free_at = max(now, client.lane_free_at) + self.rng.expovariate(
                    1 / send_mean
                )
                departure = client.lane_free_at
            else:
                departure = now
            if lane is not None:
                lane.append(departure)
            arrival = departure + self._path_delay()
            while self.faults.loss and self.rng.random() < self.faults.loss:
                self.stats["packets_lost"] += 1
                arrival += self._ack_timeout() + self._path_delay()
            last = max(last, arrival)
        return last

    def _lane_length(self, client: Client, conn: int, now: float) -> int:
        lane = client.lanes.get(conn)
        if not lane:
            return 0
        while lane and lane[0] <= now:
            lane.popleft()
        return len(lane)

    def _schedule(self, when: float, to: str, item: _Event | _ReplyDeadline) -> None:
        heapq.heappush(self._queue, (when, next(self._serial), to, item))

    def next_due(self) -> float | None:
        """When `due` next has something to do."""
        return self._queue[0][0] if self._queue else None

    def due(self, now: float) -> list[tuple[str, api.Received]]:
        """What has arrived by `now` for clients that are online, as (name, message)."""
        out: list[tuple[str, api.Received]] = []
        while self._queue and self._queue[0][0] <= now:
            _, _, to, event = heapq.heappop(self._queue)
            client = self.clients[to]
            if isinstance(event, _ReplyDeadline):
                self._retry_replies(client, now)
            elif client.online:
                self._process(client, event, now, out)
            else:
                self._hold(client, event, now)
        return out

    def _process(
        self, client: Client, event: _Event, now: float, out: list[tuple[str, api.Received]]
    ) -> None:
        """An event reaches a running client."""
        if isinstance(event, _SurbRequest):
            self._answer_surb_request(client.name, event, now)
            return
        if isinstance(event, _SurbTopUp):
            client.surbs[event.tag] = client.surbs.get(event.tag, 0) + event.amount
            client.topup_pending.discard(event.tag)
            self._retry_replies(client, now)
            return
        tag = event.received.sender_tag
        if tag is not None:  # repliable, even with no SURBs: the tag becomes known
            client.surbs[tag] = client.surbs.get(tag, 0) + event.surbs
            if event.surbs and client.pending_replies:
                self._retry_replies(client, now)
        self.stats["delivered"] += 1
        out.append((client.name, event.received))

    def _hold(self, client: Client, event: _Event, now: float) -> None:
        """Keeps an event for a client that is offline, dropping the oldest past the cap."""
        size = _size(event)
        while client.held and (
            len(client.held) >= self.limits.max_held_messages
            or client.held_bytes + size > self.limits.max_held_bytes
        ):
            _, old = client.held.popleft()
            client.held_bytes -= _size(old)
            self.stats["dropped_held_overflow"] += 1
        client.held.append((now, event))
        client.held_bytes += size
        self.stats["held"] += 1
