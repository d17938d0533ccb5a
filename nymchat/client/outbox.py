"""Outgoing messages: stored (queued) before anything leaves, sent directly to a
direct-mode peer or through the node, and moved on queued → accepted → delivered, never
back; or failed, when the node refuses one for good or the user drops it. What the node
did not take (it was silent, busy, over a quota) waits in the outbox for the next try.
So do the notices of our new access key to the contacts that remain after a removal, of
our new home node after a move, and the Welcomes of groups to members homed elsewhere than
the group's log (GROUP_INVITE)."""

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from nymchat.client import messages
from nymchat.client.contacts import Contacts
from nymchat.client.directpaths import DirectPaths
from nymchat.client.events import (
    Event,
    EventBus,
    OutboxNotSent,
    ReceiptReceived,
    Status,
    StatusChanged,
)
from nymchat.client.groups import Groups
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import NodeRefused
from nymchat.client.profile import Profile
from nymchat.client.records import Direction, Message
from nymchat.client.relay import Relay
from nymchat.errors import (
    MessageFailed,
    NotFound,
    NotSealable,
    NymchatError,
    StillQueued,
    TooLong,
    UsageError,
)
from nymchat.protocol.address import Address
from nymchat.protocol.wire import ErrorCode

log = logging.getLogger(__name__)
OUTBOX = "outbox"  # the store's list of waiting message ids, oldest first
NOTICES = "access_notices"  # the contacts still to be told our new access key
MOVE_NOTICES = "move_notices"  # the contacts still to be told our new home node
MOVED_BODY = "moved"  # what they are told (a MOVED message's body, hex)
INVITES = "group_invites"  # [contact id, GROUP_INVITE body hex] still to be sent
# Refusals for good: the message fails with the node's detail as the reason. Others
# (queue_full, busy, rate_limited...) may pass later: the message waits.
FINAL_REFUSALS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.TOO_LARGE,
    ErrorCode.INVALID_NAME,
    ErrorCode.BAD_REQUEST,
    ErrorCode.FORBIDDEN,
}
DROPPED = "dropped by you"
RANK = {Status.QUEUED: 0, Status.FAILED: 0, Status.ACCEPTED: 1, Status.DELIVERED: 2}


def too_long(text: str) -> str | None:
    size = len(text.encode())
    if size <= messages.MAX_BODY:
        return None
    return (
        f"a message holds at most {messages.MAX_BODY:,} bytes of text (UTF-8); this one "
        f"has {size:,}"
    )


class Outbox:
    def __init__(
        self,
        profile: Profile,
        contacts: Contacts,
        relay: Relay,
        direct: DirectPaths,
        groups: Groups,
        events: EventBus,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.relay, self.direct, self.events = contacts, relay, direct, events
        self.groups = groups
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ReceiptReceived):  # within the transaction that took it in
            self.set_status(event.message_id, Status.DELIVERED)

    async def send(self, name: str | Address, text: str) -> bytes:
        """Stores and sends a message; returns its id once the node (or the direct peer)
        has it. The recipient is looked up first: a name the node does not know, or a
        changed key, is refused with nothing queued. Once queued, a refusal for good
        marks it failed (`MessageFailed`); any other error leaves it waiting
        (`StillQueued`)."""
        if isinstance(name, str) and name.startswith("#"):
            await self.groups.joined(name)
        username = self._sendable(name, text)
        if not username.startswith("#"):
            await self.contacts.ready(name)
        message_id = self.queue(username, text)
        try:
            await self.deliver(username, message_id, text)
        except MessageFailed:
            raise
        except NymchatError as e:
            raise StillQueued(message_id, e) from None
        return message_id

    def queue(self, name: str | Address, text: str) -> bytes:
        """Stores a message as queued, without touching the network; it leaves with
        `send` or `flush`. What cannot be sent is refused here."""
        username = self._sendable(name, text)
        message = Message(os.urandom(16), username, Direction.OUT, now_ms(), text, Status.QUEUED)
        with self.store.transaction():
            self.store.add_message(username, message.id, message.to_record())
            self.store.put(OUTBOX, [*self.store.get(OUTBOX, []), message.id.hex()])
        self.events.emit(StatusChanged(message.id, username, Status.QUEUED))
        return message.id

    def _sendable(self, name: str | Address, text: str) -> str:
        """The conversation's name: a contact's id, or "#group" for a group of ours."""
        self.profile.me()
        if (why := too_long(text)) is not None:
            raise TooLong(f"{why}: nothing was queued or sent")
        if isinstance(name, str) and name.startswith("#"):
            return "#" + self.groups.check_sendable(name)
        username = self.contacts.ids.resolve(name)
        if username in self.contacts.blocked():
            raise UsageError(
                f"you blocked {username}: `nymchat contacts unblock {username}` "
                "first; nothing was queued or sent"
            )
        return username

    def waiting(self) -> list[Message]:
        """The messages waiting to leave, oldest first. A message whose contact was
        removed went with the conversation."""
        return [
            Message.from_record(record)
            for hex_id in self.store.get(OUTBOX, [])
            if (record := self.store.message(bytes.fromhex(hex_id))) is not None
        ]

    def message(self, message_id: bytes) -> Message | None:
        record = self.store.message(message_id)
        if record is None or record.get("direction") not in (Direction.IN, Direction.OUT):
            return None
        return Message.from_record(record)

    def drop(self, prefix: str) -> Message:
        """Takes the waiting message whose id starts with `prefix` out of the outbox,
        marked failed ("dropped by you")."""
        prefix = prefix.strip().lower()
        found = [m for m in self.waiting() if m.id.hex().startswith(prefix)] if prefix else []
        if not found:
            raise NotFound(
                f"no waiting message has an id starting with '{prefix}' "
                "(`nymchat outbox` lists them)"
            )
        if len(found) > 1:
            raise UsageError(
                f"{len(found)} waiting messages have an id starting with '{prefix}': "
                "give more of it"
            )
        with self.store.transaction():
            self.fail(found[0].id, DROPPED)
        found[0].status, found[0].reason = Status.FAILED, DROPPED
        return found[0]

    def fail_all_to(self, username: str, reason: str) -> None:
        """Within a transaction."""
        for message in self.waiting():
            if message.peer == username:
                self.fail(message.id, reason)

    def prune(self) -> None:
        """Forgets waiting ids whose messages went with their contact."""
        with self.store.transaction():
            self.store.put(OUTBOX, [m.id.hex() for m in self.waiting()])

    def tell_access(self, usernames: list[str]) -> None:
        """Queues a notice of our new access key to each of `usernames` (within a
        transaction): `flush` sends them, whenever the node answers."""
        self.store.put(NOTICES, sorted(set(self.store.get(NOTICES, [])) | set(usernames)))

    def tell_moved(self, body: bytes, usernames: list[str]) -> None:
        """Queues the notice of our new home node (`body`, a MOVED message's) to each of
        `usernames` (within a transaction): `flush` sends them, like the access notices."""
        self.store.put(MOVED_BODY, body.hex())
        self.store.put(MOVE_NOTICES, sorted(set(usernames)))

    def moves_waiting(self) -> list[str]:
        """The contacts not yet told our new home node."""
        waiting: list[str] = self.store.get(MOVE_NOTICES, [])
        return waiting

    async def invite(self, usernames: list[str], body: bytes) -> None:
        """Queues a group's Welcome (`body`, a GROUP_INVITE message's) to each of
        `usernames`, then sends what waits: what cannot go now goes with the next
        `flush`."""
        with self.store.transaction():
            queued = self.store.get(INVITES, [])
            self.store.put(INVITES, queued + [[username, body.hex()] for username in usernames])
        await self._notices()

    async def _tell_moved(self, username: str) -> None:
        if self.contacts.ids.get(username) is not None:
            await self.contacts.ready(username)
            body = bytes.fromhex(self.store.get(MOVED_BODY))
            await self.relay.send(username, messages.MOVED, os.urandom(16), body)

    async def _tell_access(self, username: str) -> None:
        if self.contacts.ids.get(username) is not None:
            await self.contacts.ready(username)
            await self.relay.tell_access(username)

    async def _tell_invite(self, invite: list[str]) -> None:
        """(They may be no contact yet: their key package was all the group needed.)"""
        username, body = invite
        await self.contacts.ready(username)
        await self.relay.send(username, messages.GROUP_INVITE, os.urandom(16), bytes.fromhex(body))

    async def _notices(self) -> None:
        """Tells the contacts queued by `tell_moved` our new home node, those queued by
        `tell_access` our access key, and sends the group Welcomes queued by `invite`; a
        notice that cannot go for good (the contact is gone, or cannot be sealed to) is
        dropped."""
        tellers: tuple[tuple[str, Callable[[Any], Awaitable[None]]], ...] = (
            (MOVE_NOTICES, self._tell_moved),
            (NOTICES, self._tell_access),
            (INVITES, self._tell_invite),
        )
        for key, tell in tellers:
            for item in self.store.get(key, []):
                try:
                    await tell(item)
                except NotSealable as e:
                    log.info("no %s for %s: %s", key, item, e)
                except NodeRefused as e:
                    if e.code not in FINAL_REFUSALS:
                        continue
                except NymchatError as e:  # the node is away, the key changed: next time
                    log.info("%s not told to %s yet: %s", key, item, e)
                    continue
                with self.store.transaction():
                    self.store.put(key, [i for i in self.store.get(key, []) if i != item])

    async def flush(self) -> int:
        """Sends what waits (first any notices of our access key); returns how many
        messages left. A message refused for good fails and others wait for the next
        time (an `OutboxNotSent` says which, and why)."""
        await self._notices()
        sent, waiting = 0, self.waiting()
        if len(waiting) < len(self.store.get(OUTBOX, [])):
            self.prune()
        for message in waiting:
            try:
                await self.deliver(message.peer, message.id, message.text)
                sent += 1
            except MessageFailed as e:
                self.events.emit(OutboxNotSent(message.id, message.peer, e.reason, True))
            except NymchatError as e:
                self.events.emit(OutboxNotSent(message.id, message.peer, str(e)))
        return sent

    async def deliver(self, username: str, message_id: bytes, text: str) -> None:
        """Encrypts and sends a stored message: directly to a direct-mode peer (falling
        back to the node when no receipt comes in time), else through the node. It leaves
        the outbox once delivered directly or accepted by the node, or when the node
        refuses it for good (then it fails: `MessageFailed`). Older versions queued texts
        too long to send: they fail here."""
        reason = too_long(text)
        delivered = False
        try:
            if reason is None and username.startswith("#"):
                sent = self.message(message_id)
                await self.groups.send(username, message_id, sent.time if sent else now_ms(), text)
            elif reason is None:
                await self.contacts.ready(username)
                delivered = await self.direct.deliver(username, message_id, text)
                if not delivered:
                    await self.relay.send(username, messages.TEXT, message_id, text.encode())
        except NodeRefused as e:
            if e.code not in FINAL_REFUSALS:
                raise
            reason = e.detail
        except NotFound as e:
            if not username.startswith("#"):
                raise
            reason = str(e)  # a group we are no longer in
        if reason is not None:
            with self.store.transaction():
                self.fail(message_id, reason)
            raise MessageFailed(username, reason)
        with self.store.transaction():
            if not delivered:
                self.set_status(message_id, Status.ACCEPTED)
            self._leave(message_id)

    def fail(self, message_id: bytes, reason: str) -> None:
        """A waiting message will never be sent: it leaves the outbox, marked failed with
        `reason`. Within a transaction."""
        self._leave(message_id)
        message = self.message(message_id)
        if message is not None and message.status is Status.QUEUED:
            message.status, message.reason = Status.FAILED, reason
            self.store.update_message(message_id, message.to_record())
            self.events.emit(StatusChanged(message_id, message.peer, Status.FAILED, reason))

    def set_status(self, message_id: bytes, status: Status) -> None:
        """Moves a sent message on, never back. A message dropped while on its way may
        still arrive: then it says so. Within a transaction."""
        message = self.message(message_id)
        if message is None or message.direction is not Direction.OUT:
            return
        if RANK[status] > RANK[message.status]:
            message.status, message.reason = status, None
            self.store.update_message(message_id, message.to_record())
            self.events.emit(StatusChanged(message_id, message.peer, status))

    def _leave(self, message_id: bytes) -> None:
        self.store.put(OUTBOX, [i for i in self.store.get(OUTBOX, []) if i != message_id.hex()])
