"""What the engine tells its faces: typed events, never sentences. The chat, `inbox`, the
control socket and the JSON-RPC API each render them in their own way.

An `EventBus` hands every event to any number of subscribers. A request served through
the control socket runs inside `bus.scope()`: what it causes (a status change of the
message it sent, a notice that its send still waits) is collected for that request only,
so two requests served at once never take each other's events. Events with no request
behind them (a message arriving, the node going silent) reach the plain subscribers.
"""

import contextlib
import enum
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass


class Status(enum.StrEnum):
    """Where an outgoing message stands: queued → accepted (by the node) → delivered (to
    the recipient's device), never back; or failed (refused for good, or dropped)."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class MessageReceived:
    sender: str
    message_id: bytes
    sent: int  # the sender's clock, epoch milliseconds
    text: str
    verified: bool
    key_changed: bool
    group: str | None = None  # a group message: the group's name, `sender` its member


@dataclass(frozen=True)
class GroupChanged:
    """A commit moved `group` to `epoch`: members `added` and `removed` (names, as the
    roster gives them), `by` the committer; none of either is a key update."""

    group: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    by: str | None
    epoch: int


@dataclass(frozen=True)
class GroupJoined:
    """We were added to `group` by `by` (the roster's name of the committer, if any)."""

    group: str
    by: str | None


@dataclass(frozen=True)
class GroupRemoved:
    """A commit removed us from `group`: it is gone from the profile."""

    group: str


@dataclass(frozen=True)
class GroupSplit:
    """A commit or proposal in `group` could not be applied: the other members may have
    moved to an epoch we are not in (a malicious member or node)."""

    group: str
    reason: str


@dataclass(frozen=True)
class StatusChanged:
    message_id: bytes
    peer: str
    status: Status
    reason: str | None = None  # why it failed


@dataclass(frozen=True)
class ReceiptReceived:
    """`peer`'s device took in our message `message_id`."""

    peer: str
    message_id: bytes


@dataclass(frozen=True)
class KeyChangedEvent:
    """A contact's key is not the pinned one any more: sending to them stops until the user
    trusts the new key."""

    username: str


@dataclass(frozen=True)
class ContactMoved:
    """A contact moved to another home node, by their own signed word: messages to them
    go there from now on."""

    username: str


@dataclass(frozen=True)
class MessageUnreadable:
    sender: str
    reason: str


@dataclass(frozen=True)
class SessionReset:
    """The session with `username` broke; the next message starts a new one."""

    username: str


class DirectChange(enum.StrEnum):
    INVITED = "invited"  # they invite us
    INVITING = "inviting"  # we invited them
    ACCEPTED = "accepted"  # one side accepted the other's; the path is being checked
    ON = "on"  # the direct path works
    ENDED = "ended"  # by them or by us
    DECLINED = "declined"
    FAILED = "failed"  # no receipt in time, or our address changed


@dataclass(frozen=True)
class DirectChanged:
    username: str
    change: DirectChange
    by_peer: bool = False  # their doing, not ours
    reason: str | None = None  # what failed


@dataclass(frozen=True)
class NodeUnreachable:
    reason: str


@dataclass(frozen=True)
class NodeReachable:
    pass


@dataclass(frozen=True)
class NymClientLost:
    pass


@dataclass(frozen=True)
class NymClientBack:
    pass


@dataclass(frozen=True)
class AddressChanged:
    address: str


@dataclass(frozen=True)
class KeysLow:
    """The node said our one-time keys (or MLS key packages) run low; fresh ones are
    being published."""


@dataclass(frozen=True)
class KeysNotPublished:
    reason: str


@dataclass(frozen=True)
class OutboxNotSent:
    """A queued message did not leave when the outbox was flushed: it waits for the next
    time, or (`for_good`, the node refused it for good) it failed."""

    message_id: bytes
    peer: str
    reason: str
    for_good: bool = False


@dataclass(frozen=True)
class InboxCutShort:
    """`inbox` stopped taking messages in after `limit` seconds; the rest waits at the node."""

    limit: float


@dataclass(frozen=True)
class NotSealed:
    """Our sealed sends and lookups go through our home frontend, where the node can link
    them to our account: the node has one frontend (`frontends`), or each of its
    frontends has been our home."""

    frontends: int


@dataclass(frozen=True)
class HomeMoved:
    """Our signed requests go through the node's frontend `home` from now on: `previous`
    did not answer (`silent`), or the node no longer lists it."""

    previous: int
    home: int
    silent: bool


@dataclass(frozen=True)
class DescriptorRefused:
    """The node's signed list of frontends did not pass the checks; the one held is kept."""

    reason: str


Event = (
    MessageReceived
    | GroupChanged
    | GroupJoined
    | GroupRemoved
    | GroupSplit
    | StatusChanged
    | ReceiptReceived
    | KeyChangedEvent
    | ContactMoved
    | MessageUnreadable
    | SessionReset
    | DirectChanged
    | NodeUnreachable
    | NodeReachable
    | NymClientLost
    | NymClientBack
    | AddressChanged
    | KeysLow
    | KeysNotPublished
    | OutboxNotSent
    | InboxCutShort
    | NotSealed
    | HomeMoved
    | DescriptorRefused
)
Subscriber = Callable[[Event], None]

_scope: ContextVar[list[Event] | None] = ContextVar("nymchat_event_scope", default=None)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Calls `subscriber` with every event outside any scope; returns the way out."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    @contextlib.contextmanager
    def scope(self) -> Iterator[list[Event]]:
        """Collects the events caused within this context (and the tasks it starts) into
        the list it yields; they reach the plain subscribers too."""
        collected: list[Event] = []
        token = _scope.set(collected)
        try:
            yield collected
        finally:
            _scope.reset(token)

    def emit(self, event: Event) -> None:
        collected = _scope.get()
        if collected is not None:
            collected.append(event)
        for subscriber in list(self._subscribers):
            subscriber(event)
