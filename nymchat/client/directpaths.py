"""Direct mode, the component: the handshake inside end-to-end sessions, direct paths
over the mixnet (the dialer sends to the listener's address with SURBs; the listener
replies on them), and falling back to the node when a path fails. Packets and handshake
bodies are in `direct.py`, sans-I/O."""

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any

from nymchat import _native
from nymchat.client import direct, messages
from nymchat.client import direct_packets as packets
from nymchat.client.contacts import Contacts
from nymchat.client.direct import DirectRole, DirectState, Refusal
from nymchat.client.events import (
    DirectChanged,
    Event,
    EventBus,
    ReceiptReceived,
)
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import Link, NodeLink, Offline
from nymchat.client.profile import Profile
from nymchat.client.records import Contact
from nymchat.client.relay import Relay
from nymchat.errors import NotFound, NymchatError, Unreachable, UsageError
from nymchat.nym.address import Address
from nymchat.nym.transport import NymClient
from nymchat.protocol import wire

log = logging.getLogger(__name__)
DIRECT_TIMEOUT = 20.0  # seconds a direct message waits for its receipt before the node
DIRECT_SURBS = 5  # SURBs with each direct packet to a listener (20 with a hello)
ACTIONS = ("invite", "accept", "decline", "end")
# Why an action of the person's own is refused ({0}: the contact).
REFUSED = {
    Refusal.ALREADY_ON: (
        UsageError,
        "direct mode with {0} is already on (`nymchat contacts end-direct {0}` ends it)",
    ),
    Refusal.INVITED_YOU: (
        UsageError,
        "{0} already invited you: `nymchat contacts accept-direct {0}`",
    ),
    Refusal.NOT_INVITED: (NotFound, "{0} has not invited you to direct mode"),
    Refusal.NOT_ON: (NotFound, "direct mode with {0} is not on"),
}


class DirectPaths:
    def __init__(
        self,
        profile: Profile,
        contacts: Contacts,
        relay: Relay,
        link: Link,
        events: EventBus,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.relay = contacts, relay
        self.link, self.events = link, events
        self.timeout = float(os.environ.get("NYMCHAT_DIRECT_TIMEOUT") or DIRECT_TIMEOUT)
        self._channels: dict[bytes, tuple[str, packets.Keys]] | None = None  # by channel id
        self._receipts: dict[bytes, asyncio.Future[None]] = {}  # direct messages awaiting one
        self._tasks: set[asyncio.Future[object]] = set()
        events.subscribe(self._on_event)

    async def aclose(self, grace: float = 2.0) -> None:
        """Lets what was started finish (a hello to a peer who just accepted, a receipt
        that waits out the sealed delay), briefly."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace + self.relay.delay)
        for task in self._tasks:
            task.cancel()

    def soon(self, coroutine: Coroutine[Any, Any, object]) -> None:
        """Runs `coroutine` in the background, awaited (briefly) by `aclose`."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def _transport(self) -> NymClient:
        if not isinstance(self.link, NodeLink):
            raise Offline()
        return self.link.transport

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ReceiptReceived):
            waiter = self._receipts.get(event.message_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    # --- the person's actions and the handshake -------------------------------------

    def state(self, username: str) -> DirectState | None:
        """Direct mode with a contact; None when it is off."""
        contact = self.contacts.ids.get(username)
        if contact is None or contact.direct is None:
            return None
        return DirectState.from_record(contact.direct)

    async def act(self, action: str, name: str) -> str:
        """Does one of `ACTIONS` with contact `name`; returns their username."""
        if action not in ACTIONS:
            raise UsageError(f"no direct-mode action {action!r}: {', '.join(ACTIONS)}")
        username = self.contacts.ids.resolve(name)
        if action in ("invite", "accept"):
            await self.contacts.ready(username)
        else:
            self.contacts.known(username)
        if action == "invite":
            event: direct.Event = direct.Invite(os.urandom(16))
        elif action == "accept":
            address = self._transport.address
            if address is None:
                raise Unreachable("this client's nym address is not known yet")
            event = direct.Accept(os.urandom(32), address.to_bytes())
        elif action == "decline":
            event = direct.Decline()
        else:
            event = direct.End()
        await self.run(username, event)
        return username

    def forget(self, username: str) -> None:
        """Drops direct mode with `username` without a word (within a transaction)."""
        if self.state(username) is not None:
            self._put(username, None)

    def _put(self, username: str, state: DirectState | None) -> None:
        """Stores direct-mode state in the contact's sealed record (within a transaction)."""
        contact = self.contacts.ids.get(username)
        if contact is None:
            return
        contact.direct = None if state is None else state.to_record()
        self.contacts.put(contact)
        self._channels = None

    async def run(self, username: str, event: direct.Event) -> Refusal | None:
        """Steps the machine with `username` and carries out its actions, the new state
        stored first (an acceptance may come back fast). A send through the node that
        fails puts the old state back. Returns why the machine refused the event, if it
        did."""
        old = self.state(username)
        new, actions = direct.step(old, event, now_ms())
        if new != old:
            with self.store.transaction():
                self._put(username, new)
        try:
            for action in actions:
                await self._carry_out(username, action)
        except NymchatError:
            if new != old:
                with self.store.transaction():
                    self._put(username, old)
            raise
        return next((a.why for a in actions if isinstance(a, direct.Refuse)), None)

    async def _carry_out(self, username: str, action: direct.Action) -> None:
        match action:
            case direct.SendInvite(invite):
                await self.relay.send(username, messages.DIRECT_INVITE, os.urandom(16), invite)
            case direct.SendAccept(accept):
                body = packets.encode_accept(accept)
                await self.relay.send(username, messages.DIRECT_ACCEPT, os.urandom(16), body)
            case direct.SendEnd(reason):
                try:
                    await self.relay.send(
                        username, messages.DIRECT_END, os.urandom(16), bytes([reason])
                    )
                except NymchatError as e:
                    log.info("could not tell %s that direct mode ended: %s", username, e)
            case direct.SendHello():
                await self._hello(username)
            case direct.Emit() | direct.Refuse() as reaction:
                self._react(username, reaction)

    def _react(self, username: str, action: direct.Emit | direct.Refuse) -> None:
        """Announces a change, or deals with a refusal: the person's own action is an
        error, a packet is dropped and counted, an acceptance is ignored or bad."""
        match action:
            case direct.Emit(change, by_peer, reason):
                self.events.emit(DirectChanged(username, change, by_peer, reason))
            case direct.Refuse(why) if why in REFUSED:
                error, text = REFUSED[why]
                raise error(text.format(username))
            case direct.Refuse(Refusal.NO_SUCH_INVITATION):
                log.info("ignored an acceptance of direct mode that answers no invitation")
            case direct.Refuse(Refusal.BAD_ADDRESS):
                raise wire.WireError("an acceptance of direct mode with a bad address")
            case direct.Refuse(Refusal.STALE):  # ended by another process: channels are stale
                self._channels = None

    def handshake(self, sender: str, contact: Contact, inner: messages.Inner) -> None:
        """An invitation, acceptance or end from `sender` (within a transaction)."""
        if inner.kind == messages.DIRECT_INVITE:
            event: direct.Event = direct.InviteReceived(packets.decode_invite(inner.body))
        elif inner.kind == messages.DIRECT_ACCEPT:
            event = direct.AcceptReceived(packets.decode_accept(inner.body))
        else:
            event = direct.EndReceived(packets.decode_end(inner.body))
        old = None if contact.direct is None else DirectState.from_record(contact.direct)
        new, actions = direct.step(old, event, now_ms())
        if new != old:
            self._put(sender, new)
        for action in actions:
            if isinstance(action, direct.SendHello):
                self.soon(self._hello(sender))
            elif isinstance(action, direct.Emit | direct.Refuse):  # (nothing else answers them)
                self._react(sender, action)

    # --- direct paths ---------------------------------------------------------------

    def route(self, username: str) -> DirectState | None:
        """Direct-mode state to send with, if direct mode is on and usable."""
        state = self.state(username)
        return state if state is not None and state.usable else None

    async def send(self, username: str, kind: int, message_id: bytes, body: bytes) -> bool:
        """Sends an end-to-end message directly, if direct mode is on; False if not."""
        route = self.route(username)
        if route is None:
            return False
        payload = await self.relay.seal(username, kind, message_id, body)
        await self._send_packet(route, packets.MESSAGE, message_id, payload)
        return True

    async def deliver(self, username: str, message_id: bytes, text: str) -> bool:
        """Sends a message directly and waits for its receipt; False when direct mode is
        off, or (then it ends, both sides told) when no receipt comes in time."""
        if self.route(username) is None:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._receipts[message_id] = waiter
        try:
            await self.send(username, messages.TEXT, message_id, text.encode())
            async with asyncio.timeout(self.timeout):  # (not `wait_for`: see NodeLink)
                await waiter
        except TimeoutError:
            await self.run(username, direct.ReceiptMissing(f"no receipt within {self.timeout:g} s"))
            return False
        finally:
            self._receipts.pop(message_id, None)
        return True

    async def _send_packet(
        self, route: DirectState, kind: int, message_id: bytes, payload: bytes = b""
    ) -> None:
        """A dialer sends to the listener's address with SURBs; a listener replies on
        the dialer's SURBs, never learning the dialer's address."""
        dialer = route.role == DirectRole.DIALER
        packet = packets.encode_packet(
            packets.keys(route.shared_secret),
            kind,
            packets.FROM_DIALER if dialer else packets.FROM_LISTENER,
            message_id,
            payload,
        )
        transport = self._transport
        for n, frame in enumerate(_native.encode_frames(packet, os.urandom(16))):
            if not dialer:
                await transport.reply(route.tag or b"", frame)  # (usable: a tag)
                continue
            surbs = 0 if n else 4 * DIRECT_SURBS if kind == packets.HELLO else DIRECT_SURBS
            address = Address.from_bytes(route.listener_address)
            await transport.send_anonymous(address, frame, surbs)

    async def _hello(self, username: str) -> None:
        route = self.route(username)
        if route is not None:
            try:
                await self._send_packet(route, packets.HELLO, os.urandom(16))
            except NymchatError as e:
                log.info("no hello to %s: %s", username, e)

    async def keep(self) -> None:
        """Dialers greet their listeners (fresh SURBs, and the current sender tag after
        a nym-client restart); a listener whose own address changed ends direct mode."""
        address = self._transport.address
        own = None if address is None else address.to_bytes()
        for contact in self.contacts.ids.all():
            if contact.direct:
                await self.run(contact.username, direct.Refresh(own))

    def channels(self) -> dict[bytes, tuple[str, packets.Keys]]:
        """The contacts with direct mode on, by the channel id of their packets."""
        if self._channels is None:
            self._channels = {}
            for contact in self.contacts.ids.all():
                state = DirectState.from_record(contact.direct) if contact.direct else None
                if state is not None and state.phase == direct.DirectPhase.ON:
                    keys = packets.keys(state.shared_secret)
                    self._channels[keys.channel] = (contact.username, keys)
        return self._channels

    async def receipt(self, sender: str, message_id: bytes) -> None:
        """Tells the sender the message reached this device: directly to a direct peer
        (a lost receipt makes the sender fall back to the node), else relayed. Never to a
        changed key not trusted yet: its session may be the node's."""
        contact = self.contacts.ids.get(sender)
        if contact is None or contact.changed:
            return
        receipt_id = os.urandom(16)
        try:
            if await self.send(sender, messages.RECEIPT, receipt_id, message_id):
                return
        except NymchatError as e:
            log.info("no receipt to %s: %s", sender, e)
            return
        relayed = self._relay_receipt(sender, receipt_id, message_id)
        if self.relay.delay > 0:
            self.soon(relayed)  # it waits out the sealed delay: the inbox goes on meanwhile
        else:
            await relayed

    async def _relay_receipt(self, sender: str, receipt_id: bytes, message_id: bytes) -> None:
        try:
            await self.relay.send(sender, messages.RECEIPT, receipt_id, message_id)
        except NymchatError as e:
            log.info("no receipt to %s: %s", sender, e)
