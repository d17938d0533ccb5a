"""Direct mode, the component: the handshake inside end-to-end sessions, direct paths
over the mixnet (the dialer sends to the listener's address with SURBs; the listener
replies on them), and falling back to the node when a path fails. Packets and handshake
bodies are in `direct.py`, sans-I/O."""

import asyncio
import logging
import os

from nymchat import _native
from nymchat.client import direct, messages
from nymchat.client.contacts import Contacts
from nymchat.client.events import DirectChange, DirectChanged, EventBus, ReceiptReceived
from nymchat.client.intake import Intake
from nymchat.client.messages import Received, now_ms
from nymchat.client.nodelink import Link
from nymchat.client.profile import Profile
from nymchat.client.records import Contact
from nymchat.client.relay import Relay
from nymchat.errors import NotFound, NymchatError, UsageError
from nymchat.nym.address import Address, AddressError
from nymchat.protocol import names, wire

log = logging.getLogger(__name__)
DIRECT_TIMEOUT = 20.0  # seconds a direct message waits for its receipt before the node
DIRECT_SURBS = 5  # SURBs with each direct packet to a listener (20 with a hello)
DIRECT_BACKLOG = 1000, 16 << 20  # packets, bytes waiting to be checked; more are dropped
ACTIONS = ("invite", "accept", "decline", "end")
END_CHANGES = {
    direct.ENDED: DirectChange.ENDED,
    direct.DECLINED: DirectChange.DECLINED,
    direct.FAILED: DirectChange.FAILED,
}


class DirectPaths:
    def __init__(
        self,
        profile: Profile,
        contacts: Contacts,
        relay: Relay,
        intake: Intake,
        link: Link,
        events: EventBus,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.relay, self.intake = contacts, relay, intake
        self.link, self.events = link, events
        self.timeout = float(os.environ.get("NYMCHAT_DIRECT_TIMEOUT") or DIRECT_TIMEOUT)
        self.rejected = 0  # direct packets dropped: strangers, bad MACs, garbage
        self.arrivals: asyncio.Queue[Received] = asyncio.Queue()  # taken directly
        self._in: asyncio.Queue[tuple[bytes, bytes | None]] = asyncio.Queue(DIRECT_BACKLOG[0])
        self._in_bytes = 0
        self._loop_task: asyncio.Task | None = None
        self._channels: dict[bytes, tuple[str, direct.Keys]] | None = None  # by channel id
        self._receipts: dict[bytes, asyncio.Future] = {}  # direct messages awaiting one
        self._tasks: set[asyncio.Task] = set()
        events.subscribe(self._on_event)
        if link.online:
            link.on_direct = self._arrived

    async def aclose(self, grace: float = 2.0) -> None:
        """Lets what was started finish (a hello to a peer who just accepted), briefly;
        then stops the direct loop."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in [self._loop_task, *self._tasks]:
            if task is not None:
                task.cancel()

    def soon(self, coroutine) -> None:
        """Runs `coroutine` in the background, awaited (briefly) by `aclose`."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_event(self, event) -> None:
        if isinstance(event, ReceiptReceived):
            waiter = self._receipts.get(event.message_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    # --- the handshake --------------------------------------------------------------

    def state(self, username: str) -> dict | None:
        """Direct mode's record with a contact; None when it is off."""
        contact = self.contacts.get(username)
        return contact.direct if contact is not None else None

    async def act(self, action: str, name: str) -> str:
        """Does one of `ACTIONS` with contact `name`; returns their username."""
        if action not in ACTIONS:
            raise UsageError(f"no direct-mode action {action!r}: {', '.join(ACTIONS)}")
        username = names.normalize(name)
        steps = {"invite": self._invite, "accept": self._accept, "decline": self._decline}
        await steps.get(action, self._end_on_request)(username)
        return username

    async def _invite(self, username: str) -> None:
        """Invites a contact, through the node, to talk directly; nothing is disclosed."""
        contact = await self.contacts.ready(username)
        state = contact.direct or {}
        if state.get("state") == "on":
            raise NymchatError(
                f"direct mode with {username} is already on "
                f"(`nymchat contacts end-direct {username}` ends it)"
            )
        if state.get("state") == "invited":
            raise NymchatError(
                f"{username} already invited you: `nymchat contacts accept-direct {username}`"
            )
        invite = os.urandom(16)
        with self.store.transaction():  # stored first: the acceptance may come back fast
            self._put(username, {"state": "inviting", "invite": invite.hex(), "since": now_ms()})
        try:
            await self.relay.send(username, messages.DIRECT_INVITE, os.urandom(16), invite)
        except NymchatError:
            with self.store.transaction():
                self._put(username, contact.direct)
            raise
        self.events.emit(DirectChanged(username, DirectChange.INVITING))

    async def _accept(self, username: str) -> None:
        """Accepts an invitation: discloses this client's nym address to the inviter
        (only), with a fresh secret that authenticates every direct packet."""
        contact = await self.contacts.ready(username)
        state = contact.direct or {}
        if state.get("state") != "invited":
            raise NymchatError(f"{username} has not invited you to direct mode")
        address, secret = self.link.transport.address.to_bytes(), os.urandom(32)
        on = {"state": "on", "role": "listener", "secret": secret.hex(), "address": address.hex()}
        with self.store.transaction():
            self._put(username, {**on, "tag": None, "confirmed": False, "since": now_ms()})
        accept = direct.Accept(bytes.fromhex(state["invite"]), secret, address)
        try:
            await self.relay.send(
                username, messages.DIRECT_ACCEPT, os.urandom(16), direct.encode_accept(accept)
            )
        except NymchatError:
            with self.store.transaction():
                self._put(username, state)
            raise

    async def _decline(self, username: str) -> None:
        if (self.contacts.known(username).direct or {}).get("state") != "invited":
            raise NymchatError(f"{username} has not invited you to direct mode")
        await self._end(username, direct.DECLINED)

    async def _end_on_request(self, username: str) -> None:
        if not self.contacts.known(username).direct:
            raise NotFound(f"direct mode with {username} is not on")
        await self._end(username, direct.ENDED)

    async def _end(self, username: str, reason: int, why: str | None = None) -> None:
        """Forgets direct mode with `username` and tells them, through the node."""
        with self.store.transaction():
            self._put(username, None)
        self.events.emit(DirectChanged(username, END_CHANGES[reason], reason=why))
        try:
            await self.relay.send(username, messages.DIRECT_END, os.urandom(16), bytes([reason]))
        except NymchatError as e:
            log.info("could not tell %s that direct mode ended: %s", username, e)

    def forget(self, username: str) -> None:
        """Drops direct mode with `username` without a word (within a transaction)."""
        if self.state(username):
            self._put(username, None)

    def _put(self, username: str, state: dict | None) -> None:
        """Stores direct-mode state in the contact's sealed record (within a transaction)."""
        contact = self.contacts.get(username)
        if contact is None:
            return
        contact.direct = state
        self.contacts.put(contact)
        self._channels = None

    def handshake(self, sender: str, contact: Contact, inner: messages.Inner) -> None:
        """An invitation, acceptance or end from `sender` (within a transaction)."""
        state = contact.direct or {}
        if inner.kind == messages.DIRECT_INVITE:
            invite = direct.decode_invite(inner.body)
            if state.get("state") == "inviting" and bytes.fromhex(state["invite"]) < invite:
                return  # both invited at once: the lower id stands, on both sides
            self._put(sender, {"state": "invited", "invite": invite.hex(), "since": now_ms()})
            self.events.emit(DirectChanged(sender, DirectChange.INVITED, by_peer=True))
        elif inner.kind == messages.DIRECT_ACCEPT:
            accept = direct.decode_accept(inner.body)
            if state.get("state") != "inviting" or state["invite"] != accept.invite.hex():
                log.info("ignored an acceptance of direct mode that answers no invitation")
                return
            try:
                Address.from_bytes(accept.address)
            except AddressError as e:
                raise wire.WireError(
                    f"an acceptance of direct mode with a bad address: {e}"
                ) from None
            on = {"state": "on", "role": "dialer", "secret": accept.secret.hex()}
            on.update(address=accept.address.hex(), confirmed=False, since=now_ms())
            self._put(sender, on)
            self.events.emit(DirectChanged(sender, DirectChange.ACCEPTED, by_peer=True))
            self.soon(self._hello(sender))
        elif state:
            reason = direct.decode_end(inner.body)
            self._put(sender, None)
            self.events.emit(DirectChanged(sender, END_CHANGES[reason], by_peer=True))

    # --- direct paths ---------------------------------------------------------------

    def route(self, username: str) -> dict | None:
        """Direct-mode state to send with, if direct mode is on and usable."""
        state = self.state(username)
        if state and state["state"] == "on" and (state["role"] == "dialer" or state["tag"]):
            return state
        return None

    async def send(self, username: str, kind: int, message_id: bytes, body: bytes) -> bool:
        """Sends an end-to-end message directly, if direct mode is on; False if not."""
        route = self.route(username)
        if route is None:
            return False
        payload = self.relay.seal(username, kind, message_id, body)
        await self._send_packet(route, direct.MESSAGE, message_id, payload)
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
            await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError:
            await self._failed(username, f"no receipt within {self.timeout:g} s")
            return False
        finally:
            self._receipts.pop(message_id, None)
        return True

    async def _send_packet(self, route: dict, kind: int, message_id: bytes, payload=b"") -> None:
        """A dialer sends to the listener's address with SURBs; a listener replies on
        the dialer's SURBs, never learning the dialer's address."""
        dialer = route["role"] == "dialer"
        packet = direct.encode_packet(
            direct.keys(bytes.fromhex(route["secret"])),
            kind,
            direct.FROM_DIALER if dialer else direct.FROM_LISTENER,
            message_id,
            payload,
        )
        transport = self.link.transport
        for n, frame in enumerate(_native.encode_frames(packet, os.urandom(16))):
            if not dialer:
                await transport.reply(bytes.fromhex(route["tag"]), frame)
                continue
            surbs = 0 if n else 4 * DIRECT_SURBS if kind == direct.HELLO else DIRECT_SURBS
            address = Address.from_bytes(bytes.fromhex(route["address"]))
            await transport.send_anonymous(address, frame, surbs)

    async def _failed(self, username: str, why: str) -> None:
        if not self.state(username):
            return  # another message found out first
        await self._end(username, direct.FAILED, why)

    async def _hello(self, username: str) -> None:
        route = self.route(username)
        if route is not None and route["role"] == "dialer":
            try:
                await self._send_packet(route, direct.HELLO, os.urandom(16))
            except NymchatError as e:
                log.info("no hello to %s: %s", username, e)

    async def keep(self) -> None:
        """Dialers greet their listeners (fresh SURBs, and the current sender tag after
        a nym-client restart); a listener whose own address changed ends direct mode."""
        address = self.link.transport.address
        for contact in self.contacts.all():
            state = contact.direct or {}
            if state.get("state") != "on":
                continue
            if state["role"] == "dialer":
                await self._hello(contact.username)
            elif address is not None and state["address"] != address.to_bytes().hex():
                await self._failed(contact.username, "your nym address changed")

    def _known_channels(self) -> dict[bytes, tuple[str, direct.Keys]]:
        if self._channels is None:
            self._channels = {}
            for contact in self.contacts.all():
                state = contact.direct or {}
                if state.get("state") == "on":
                    keys = direct.keys(bytes.fromhex(state["secret"]))
                    self._channels[keys.channel] = (contact.username, keys)
        return self._channels

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
            packet = direct.decode_packet(data)
        except direct.BadPacket as e:
            return self._reject(str(e))
        peer = self._known_channels().get(packet.channel)
        if peer is None or not direct.authentic(packet, peer[1]):
            return self._reject("unknown channel or bad MAC")
        username = peer[0]
        state = self.state(username) or {}
        if state.get("state") != "on":  # ended or removed meanwhile (by another process)
            self._channels = None
            return self._reject("direct mode no longer on")
        dialer = state["role"] == "dialer"
        if (
            packet.direction != (direct.FROM_LISTENER if dialer else direct.FROM_DIALER)
            or (tag is None) != dialer
        ):
            return self._reject("wrong direction")
        changes = {} if state["confirmed"] else {"confirmed": True}
        if not dialer and state["tag"] != tag.hex():
            changes["tag"] = tag.hex()  # the dialer's nym-client (re)started: reply there
        if changes:
            state = {**state, **changes}
            with self.store.transaction():
                self._put(username, state)
            if "confirmed" in changes:
                self.events.emit(DirectChanged(username, DirectChange.ON))
        if packet.kind == direct.HELLO:
            if not dialer:
                await self._send_packet(state, direct.HELLO, os.urandom(16))
            return
        await self._message(username, packet)

    async def _message(self, username: str, packet: direct.Packet) -> None:
        if self.intake.was_taken(packet.message_id):  # a copy: the receipt may have been lost
            await self.receipt(username, packet.message_id)
            return
        try:
            received = self.intake.take(username, packet.message_id, packet.payload, self.handshake)
        except (NymchatError, wire.WireError) as e:
            self.intake.unreadable(username, e)
            return
        if received is not None:
            self.arrivals.put_nowait(received)
            await self.receipt(username, received.message_id)

    async def receipt(self, sender: str, message_id: bytes) -> None:
        """Tells the sender the message reached this device: directly to a direct peer
        (a lost receipt makes the sender fall back to the node), else relayed. Never to a
        changed key not trusted yet: its session may be the node's."""
        contact = self.contacts.get(sender)
        if contact is None or contact.changed:
            return
        receipt_id = os.urandom(16)
        try:
            if not await self.send(sender, messages.RECEIPT, receipt_id, message_id):
                await self.relay.send(sender, messages.RECEIPT, receipt_id, message_id)
        except NymchatError as e:
            log.info("no receipt to %s: %s", sender, e)
