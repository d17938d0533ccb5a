"""The engine's direct mode: carries out what the machine of `direct.py` decides (stores
the state, sends through the node or directly, announces), takes direct packets in, and
falls back to the node. A mixin of `Engine` (it uses the engine's sessions, store and link);
the packets and handshake bodies are in `direct_packets.py`, sans-I/O."""

import asyncio
import logging
import os

from nymchat import _native
from nymchat.client import direct, messages
from nymchat.client import direct_packets as packets
from nymchat.client.direct import DirectPhase, DirectRole, DirectState, Refusal
from nymchat.client.events import DirectChange, DirectChanged
from nymchat.client.messages import Received, now_ms
from nymchat.errors import NymchatError
from nymchat.nym.address import Address
from nymchat.protocol import names, wire

log = logging.getLogger(__name__)
DIRECT_TIMEOUT = 20.0  # seconds a direct message waits for its receipt before the node
DIRECT_SURBS = 5  # SURBs with each direct packet to a listener (20 with a hello)
DIRECT_BACKLOG = 1000, 16 << 20  # packets, bytes waiting to be checked; more are dropped
# What the person is told once an action of `DirectMode.direct_action` is done ({0}: the contact).
DONE = {
    "invite": "invited {0} to direct mode; it starts when they accept (your address is not "
    "disclosed)",
    "accept": "accepted: your nym address went to {0} only, inside your end-to-end session; "
    "direct mode is on once {0}'s client answers",
    "decline": "declined {0}'s invitation; nothing changes",
    "end": "direct mode with {0} ended; messages go through the node",
}
# What the person is told of a change they did not ask for ({0}: the contact, {1}: why).
NOTICES = {
    (DirectChange.INVITED, True): "{0} invites you to direct mode: your messages would no "
    "longer pass through the node, and accepting shows your nym address to {0} only. "
    "`nymchat contacts accept-direct {0}` (/direct {0} accept) accepts; ignoring it "
    "changes nothing",
    (DirectChange.ACCEPTED, True): "{0} accepted direct mode; checking the direct path",
    (DirectChange.ON, False): "direct mode with {0} is on: your messages no longer pass "
    "through the node",
    (DirectChange.ENDED, True): "{0} ended direct mode; messages go through the node again",
    (DirectChange.DECLINED, True): "{0} declined direct mode",
    (DirectChange.FAILED, True): "the direct path with {0} failed on their side; messages "
    "go through the node again (`nymchat contacts direct {0}` tries again)",
    (DirectChange.FAILED, False): "the direct path to {0} failed ({1}); back to the node. "
    "`nymchat contacts direct {0}` (/direct {0}) tries again",
}
# Why an action of the person's own is refused ({0}: the contact).
REFUSED = {
    Refusal.ALREADY_ON: "direct mode with {0} is already on "
    "(`nymchat contacts end-direct {0}` ends it)",
    Refusal.INVITED_YOU: "{0} already invited you: `nymchat contacts accept-direct {0}`",
    Refusal.NOT_INVITED: "{0} has not invited you to direct mode",
    Refusal.NOT_ON: "direct mode with {0} is not on",
}


class DirectMode:
    def _init_direct(self) -> None:
        self.direct_timeout = float(os.environ.get("NYMCHAT_DIRECT_TIMEOUT") or DIRECT_TIMEOUT)
        self.direct_rejected = 0  # direct packets dropped: strangers, bad MACs, garbage
        self.arrivals: asyncio.Queue[Received] = asyncio.Queue()  # taken directly
        self._direct_in: asyncio.Queue[tuple[bytes, bytes | None]] = asyncio.Queue(
            DIRECT_BACKLOG[0]
        )
        self._direct_in_bytes = 0
        self._direct_task: asyncio.Task | None = None
        self._channels: dict[bytes, tuple[str, packets.Keys]] | None = None  # by channel id
        self._receipts: dict[bytes, asyncio.Future] = {}  # direct messages awaiting one
        self._tasks: set[asyncio.Task] = set()
        if self.link is not None:
            self.link.on_direct = self._direct_arrived

    async def aclose(self, grace: float = 2.0) -> None:
        """Lets what was started finish (a hello to a peer who just accepted), briefly;
        then stops the direct loop."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in [self._direct_task, *self._tasks]:
            if task is not None:
                task.cancel()

    def direct_state(self, username: str) -> str | None:
        """How direct mode stands with a contact, in words; None when it is off."""
        state = self._direct(username)
        if state is None:
            return None
        if state.phase == DirectPhase.INVITING:
            return "direct: invitation sent"
        if state.phase == DirectPhase.INVITED:
            return "direct: invited you"
        return "direct" if state.confirmed else "direct (path not confirmed yet)"

    async def direct_action(self, action: str, name: str) -> str:
        """Does one of `DONE`'s actions with contact `name`; returns their username."""
        if action not in DONE:
            raise NymchatError(f"no direct-mode action {action!r}: {', '.join(DONE)}")
        return await getattr(self, f"{action}_direct")(name)

    async def invite_direct(self, name: str) -> str:
        """Invites a contact, through the node, to talk directly; nothing is disclosed."""
        username = names.normalize(name)
        await self._ready(username)
        await self._run(username, direct.Invite(os.urandom(16)))
        return username

    async def accept_direct(self, name: str) -> str:
        """Accepts an invitation: discloses this client's nym address to the inviter
        (only), with a fresh secret that authenticates every direct packet."""
        username = names.normalize(name)
        await self._ready(username)
        address = self.link.transport.address.to_bytes()
        await self._run(username, direct.Accept(os.urandom(32), address))
        return username

    async def decline_direct(self, name: str) -> str:
        username = names.normalize(name)
        self.known(username)
        await self._run(username, direct.Decline())
        return username

    async def end_direct(self, name: str) -> str:
        """Ends direct mode (or withdraws an invitation) on both sides."""
        username = names.normalize(name)
        self.known(username)
        await self._run(username, direct.End())
        return username

    # --- carrying out the machine's actions ---------------------------------------

    def _direct(self, username: str) -> DirectState | None:
        record = (self.store.contact(username) or {}).get("direct")
        return None if record is None else DirectState.from_record(record)

    def _put_direct(self, username: str, state: DirectState | None) -> None:
        """Stores direct-mode state in the contact's sealed record (within a transaction)."""
        contact = self.store.contact(username)
        if state is None:
            contact.pop("direct", None)
        else:
            contact["direct"] = state.to_record()
        self.store.put_contact(contact)
        self._channels = None

    async def _run(self, username: str, event: direct.Event) -> bool:
        """Steps the machine with `username` and carries out its actions, the new state
        stored first (an acceptance may come back fast). A send through the node that
        fails puts the old state back. False when the machine refused the event."""
        old = self._direct(username)
        new, actions = direct.step(old, event, now_ms())
        if new != old:
            with self.store.transaction():
                self._put_direct(username, new)
        try:
            for action in actions:
                await self._carry_out(username, action)
        except NymchatError:
            if new != old:
                with self.store.transaction():
                    self._put_direct(username, old)
            raise
        return not any(isinstance(action, direct.Refuse) for action in actions)

    async def _carry_out(self, username: str, action: direct.Action) -> None:
        match action:
            case direct.SendInvite(invite):
                await self._relay(username, messages.DIRECT_INVITE, os.urandom(16), invite)
            case direct.SendAccept(accept):
                body = packets.encode_accept(accept)
                await self._relay(username, messages.DIRECT_ACCEPT, os.urandom(16), body)
            case direct.SendEnd(reason):
                try:
                    await self._relay(
                        username, messages.DIRECT_END, os.urandom(16), bytes([reason])
                    )
                except NymchatError as e:
                    self._notice(
                        f"could not tell {username} that direct mode "
                        f"{packets.END_REASONS[reason]}: {e}"
                    )
            case direct.SendHello():
                await self._hello(username)
            case _:
                self._react(username, action)

    def _react(self, username: str, action: direct.Emit | direct.Refuse) -> None:
        """Announces a change, or deals with a refusal: the person's own action is an
        error, a packet is dropped and counted, an acceptance is ignored or bad."""
        match action:
            case direct.Emit(change, by_peer, reason):
                self.events.emit(DirectChanged(username, change, by_peer, reason))
                notice = NOTICES.get((change, by_peer))
                if notice is not None:
                    self._notice(notice.format(username, reason))
            case direct.Refuse(why) if why in REFUSED:
                raise NymchatError(REFUSED[why].format(username))
            case direct.Refuse(Refusal.NO_SUCH_INVITATION):
                log.info("ignored an acceptance of direct mode that answers no invitation")
            case direct.Refuse(Refusal.BAD_ADDRESS):
                raise wire.WireError("an acceptance of direct mode with a bad address")
            case direct.Refuse(why):  # a packet: ended meanwhile, or the wrong direction
                if why == Refusal.STALE:  # by another process: our channels are out of date
                    self._channels = None
                self._rejected(why.value)

    def _direct_handshake(self, sender: str, contact: dict, inner: messages.Inner) -> None:
        """An invitation, acceptance or end from `sender` (within a transaction)."""
        if inner.kind == messages.DIRECT_INVITE:
            event = direct.InviteReceived(packets.decode_invite(inner.body))
        elif inner.kind == messages.DIRECT_ACCEPT:
            event = direct.AcceptReceived(packets.decode_accept(inner.body))
        else:
            event = direct.EndReceived(packets.decode_end(inner.body))
        record = contact.get("direct")
        old = None if record is None else DirectState.from_record(record)
        new, actions = direct.step(old, event, now_ms())
        if new != old:
            self._put_direct(sender, new)
        for action in actions:
            if isinstance(action, direct.SendHello):
                self._soon(self._hello(sender))
            else:
                self._react(sender, action)

    def _soon(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- direct paths ---------------------------------------------------------------

    def _direct_route(self, username: str) -> DirectState | None:
        """Direct-mode state to send with, if direct mode is on and usable."""
        state = self._direct(username)
        return state if state is not None and state.usable else None

    async def _send_direct(
        self, route: DirectState, kind: int, message_id: bytes, payload: bytes = b""
    ) -> None:
        """A dialer sends to the listener's address with SURBs; a listener replies on
        the dialer's SURBs, never learning the dialer's address."""
        dialer = route.role == DirectRole.DIALER
        packet = packets.encode_packet(
            packets.keys(route.secret),
            kind,
            packets.FROM_DIALER if dialer else packets.FROM_LISTENER,
            message_id,
            payload,
        )
        transport = self.link.transport
        for n, frame in enumerate(_native.encode_frames(packet, os.urandom(16))):
            if not dialer:
                await transport.reply(route.tag, frame)
                continue
            surbs = 0 if n else 4 * DIRECT_SURBS if kind == packets.HELLO else DIRECT_SURBS
            await transport.send_anonymous(Address.from_bytes(route.address), frame, surbs)

    async def _deliver_direct(
        self, username: str, route: DirectState, message_id: bytes, text: str
    ) -> bool:
        """Sends a message directly and waits for its receipt; False (direct mode ended,
        both sides told) when none comes in time."""
        waiter = asyncio.get_running_loop().create_future()
        self._receipts[message_id] = waiter
        try:
            payload = self._encrypt(self._me(), username, messages.TEXT, message_id, text.encode())
            await self._send_direct(route, packets.MESSAGE, message_id, payload)
            await asyncio.wait_for(waiter, self.direct_timeout)
        except TimeoutError:
            why = f"no receipt within {self.direct_timeout:g} s"
            await self._run(username, direct.ReceiptMissing(why))
            return False
        finally:
            self._receipts.pop(message_id, None)
        with self.store.transaction():
            self._leave_outbox(message_id)
        return True

    async def _hello(self, username: str) -> None:
        route = self._direct_route(username)
        if route is not None:
            try:
                await self._send_direct(route, packets.HELLO, os.urandom(16))
            except NymchatError as e:
                log.info("no hello to %s: %s", username, e)

    async def _keep_direct_paths(self) -> None:
        """Dialers greet their listeners (fresh SURBs, and the current sender tag after
        a nym-client restart); a listener whose own address changed ends direct mode."""
        address = self.link.transport.address
        own = None if address is None else address.to_bytes()
        for contact in self.store.contacts():
            if contact.get("direct"):
                await self._run(contact["username"], direct.Refresh(own))

    def _direct_channels(self) -> dict[bytes, tuple[str, packets.Keys]]:
        if self._channels is None:
            self._channels = {}
            for contact in self.store.contacts():
                record = contact.get("direct")
                if record is not None and record["state"] == DirectPhase.ON:
                    keys = packets.keys(DirectState.from_record(record).secret)
                    self._channels[keys.channel] = (contact["username"], keys)
        return self._channels

    def _direct_arrived(self, data: bytes, tag: bytes | None) -> None:
        """From the link: a message that is not a node answer. Checked in order, later."""
        if self._direct_in_bytes + len(data) > DIRECT_BACKLOG[1]:
            self._rejected("too much waiting")
            return
        try:
            self._direct_in.put_nowait((data, tag))
        except asyncio.QueueFull:
            self._rejected("too many waiting")
            return
        self._direct_in_bytes += len(data)
        if self._direct_task is None or self._direct_task.done():
            self._direct_task = asyncio.create_task(self._direct_loop())

    async def _direct_loop(self) -> None:
        while True:
            data, tag = await self._direct_in.get()
            self._direct_in_bytes -= len(data)
            try:
                await self._direct_packet(data, tag)
            except (NymchatError, wire.WireError, ValueError) as e:
                log.warning("a direct message could not be handled: %s", e)

    def _rejected(self, why: str) -> None:
        """Counts a dropped direct packet; logs the 1st, 2nd, 4th, 8th... so that a
        flood cannot fill the log."""
        self.direct_rejected += 1
        n = self.direct_rejected
        if n & (n - 1) == 0:
            log.warning(
                "ignored %d message(s) sent to this address by strangers (last: %s)", n, why
            )

    async def _direct_packet(self, data: bytes, tag: bytes | None) -> None:
        try:
            packet = packets.decode_packet(data)
        except packets.BadPacket as e:
            return self._rejected(str(e))
        peer = self._direct_channels().get(packet.channel)
        if peer is None or not packets.authentic(packet, peer[1]):
            return self._rejected("unknown channel or bad MAC")
        username = peer[0]
        event = direct.PacketAuthentic(packet.kind, packet.direction, tag)
        if not await self._run(username, event) or packet.kind == packets.HELLO:
            return
        me = self._me()
        stored = self.store.message(packet.message_id)
        if stored is not None:  # a copy: the receipt may have been lost, say it again
            if stored.get("direction") == "in":
                await self._send_receipt(me, username, packet.message_id)
            return
        try:
            received = self._take(
                me, {"sender": username, "message_id": packet.message_id, "payload": packet.payload}
            )
        except (NymchatError, wire.WireError) as e:
            self._unreadable(username, e)
            return
        if received is not None:
            self.arrivals.put_nowait(received)
            await self._send_receipt(me, username, received.message_id)
