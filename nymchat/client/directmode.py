"""The engine's direct mode: the handshake, direct paths, and falling back to the node.
A mixin of `Engine` (it uses the engine's sessions, store and link); the packets and
handshake bodies are in `direct.py`, sans-I/O."""

import asyncio
import logging
import os

from nymchat import _native
from nymchat.client import direct, messages
from nymchat.client.messages import Received, now_ms
from nymchat.errors import NymchatError
from nymchat.nym.address import Address, AddressError
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
        self._channels: dict[bytes, tuple[str, direct.Keys]] | None = None  # by channel id
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
        state = (self.store.contact(username) or {}).get("direct")
        if state is None:
            return None
        if state["state"] != "on":
            return {"inviting": "direct: invitation sent", "invited": "direct: invited you"}[
                state["state"]
            ]
        return "direct" if state.get("confirmed") else "direct (path not confirmed yet)"

    async def direct_action(self, action: str, name: str) -> str:
        """Does one of `DONE`'s actions with contact `name`; returns their username."""
        if action not in DONE:
            raise NymchatError(f"no direct-mode action {action!r}: {', '.join(DONE)}")
        return await getattr(self, f"{action}_direct")(name)

    async def invite_direct(self, name: str) -> str:
        """Invites a contact, through the node, to talk directly; nothing is disclosed."""
        username = names.normalize(name)
        contact = await self._ready(username)
        state = contact.get("direct") or {}
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
            self._put_direct(
                username, {"state": "inviting", "invite": invite.hex(), "since": now_ms()}
            )
        try:
            await self._relay(username, messages.DIRECT_INVITE, os.urandom(16), invite)
        except NymchatError:
            with self.store.transaction():
                self._put_direct(username, contact.get("direct"))
            raise
        return username

    async def accept_direct(self, name: str) -> str:
        """Accepts an invitation: discloses this client's nym address to the inviter
        (only), with a fresh secret that authenticates every direct packet."""
        username = names.normalize(name)
        contact = await self._ready(username)
        state = contact.get("direct") or {}
        if state.get("state") != "invited":
            raise NymchatError(f"{username} has not invited you to direct mode")
        address, secret = self.link.transport.address.to_bytes(), os.urandom(32)
        with self.store.transaction():
            self._put_direct(
                username,
                {
                    "state": "on",
                    "role": "listener",
                    "secret": secret.hex(),
                    "address": address.hex(),
                    "tag": None,
                    "confirmed": False,
                    "since": now_ms(),
                },
            )
        try:
            await self._relay(
                username,
                messages.DIRECT_ACCEPT,
                os.urandom(16),
                direct.encode_accept(
                    direct.Accept(bytes.fromhex(state["invite"]), secret, address)
                ),
            )
        except NymchatError:
            with self.store.transaction():
                self._put_direct(username, state)
            raise
        return username

    async def decline_direct(self, name: str) -> str:
        username = names.normalize(name)
        if (self.known(username).get("direct") or {}).get("state") != "invited":
            raise NymchatError(f"{username} has not invited you to direct mode")
        await self._end_direct(username, direct.DECLINED)
        return username

    async def end_direct(self, name: str) -> str:
        """Ends direct mode (or withdraws an invitation) on both sides."""
        username = names.normalize(name)
        if not self.known(username).get("direct"):
            raise NymchatError(f"direct mode with {username} is not on")
        await self._end_direct(username, direct.ENDED)
        return username

    async def _end_direct(self, username: str, reason: int) -> None:
        """Forgets direct mode with `username` and tells them, through the node."""
        with self.store.transaction():
            self._put_direct(username, None)
        try:
            await self._relay(username, messages.DIRECT_END, os.urandom(16), bytes([reason]))
        except NymchatError as e:
            self._notice(
                f"could not tell {username} that direct mode {direct.END_REASONS[reason]}: {e}"
            )

    def _put_direct(self, username: str, state: dict | None) -> None:
        """Stores direct-mode state in the contact's sealed record (within a transaction)."""
        contact = self.store.contact(username)
        if state is None:
            contact.pop("direct", None)
        else:
            contact["direct"] = state
        self.store.put_contact(contact)
        self._channels = None

    def _direct_handshake(self, sender: str, contact: dict, inner: messages.Inner) -> None:
        """An invitation, acceptance or end from `sender` (within a transaction)."""
        state = contact.get("direct") or {}
        if inner.kind == messages.DIRECT_INVITE:
            invite = direct.decode_invite(inner.body)
            if state.get("state") == "inviting" and bytes.fromhex(state["invite"]) < invite:
                return  # both invited at once: the lower id stands, on both sides
            self._put_direct(
                sender, {"state": "invited", "invite": invite.hex(), "since": now_ms()}
            )
            self._notice(
                f"{sender} invites you to direct mode: your messages would no longer "
                f"pass through the node, and accepting shows your nym address to "
                f"{sender} only. `nymchat contacts accept-direct {sender}` (/direct "
                f"{sender} accept) accepts; ignoring it changes nothing"
            )
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
            self._put_direct(
                sender,
                {
                    "state": "on",
                    "role": "dialer",
                    "secret": accept.secret.hex(),
                    "address": accept.address.hex(),
                    "confirmed": False,
                    "since": now_ms(),
                },
            )
            self._notice(f"{sender} accepted direct mode; checking the direct path")
            self._soon(self._hello(sender))
        elif state:
            reason = direct.decode_end(inner.body)
            self._put_direct(sender, None)
            self._notice(
                {
                    direct.ENDED: f"{sender} ended direct mode; messages go through the node again",
                    direct.DECLINED: f"{sender} declined direct mode",
                    direct.FAILED: f"the direct path with {sender} failed on their "
                    f"side; messages go through the node again "
                    f"(`nymchat contacts direct {sender}` tries again)",
                }[reason]
            )

    def _soon(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _direct_route(self, username: str) -> dict | None:
        """Direct-mode state to send with, if direct mode is on and usable."""
        state = (self.store.contact(username) or {}).get("direct")
        if state and state["state"] == "on" and (state["role"] == "dialer" or state["tag"]):
            return state
        return None

    async def _send_direct(
        self, route: dict, kind: int, message_id: bytes, payload: bytes = b""
    ) -> None:
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
            await transport.send_anonymous(
                Address.from_bytes(bytes.fromhex(route["address"])), frame, surbs
            )

    async def _deliver_direct(
        self, username: str, route: dict, message_id: bytes, text: str
    ) -> bool:
        """Sends a message directly and waits for its receipt; False (direct mode ended,
        both sides told) when none comes in time."""
        waiter = asyncio.get_running_loop().create_future()
        self._receipts[message_id] = waiter
        try:
            payload = self._encrypt(self._me(), username, messages.TEXT, message_id, text.encode())
            await self._send_direct(route, direct.MESSAGE, message_id, payload)
            await asyncio.wait_for(waiter, self.direct_timeout)
        except TimeoutError:
            await self._direct_failed(username, f"no receipt within {self.direct_timeout:g} s")
            return False
        finally:
            self._receipts.pop(message_id, None)
        with self.store.transaction():
            self._leave_outbox(message_id)
        return True

    async def _direct_failed(self, username: str, why: str) -> None:
        if not (self.store.contact(username) or {}).get("direct"):
            return  # another message found out first
        self._notice(
            f"the direct path to {username} failed ({why}); back to the node. "
            f"`nymchat contacts direct {username}` (/direct {username}) tries again"
        )
        await self._end_direct(username, direct.FAILED)

    async def _hello(self, username: str) -> None:
        route = self._direct_route(username)
        if route is not None and route["role"] == "dialer":
            try:
                await self._send_direct(route, direct.HELLO, os.urandom(16))
            except NymchatError as e:
                log.info("no hello to %s: %s", username, e)

    async def _keep_direct_paths(self) -> None:
        """Dialers greet their listeners (fresh SURBs, and the current sender tag after
        a nym-client restart); a listener whose own address changed ends direct mode."""
        address = self.link.transport.address
        for contact in self.store.contacts():
            state = contact.get("direct") or {}
            if state.get("state") != "on":
                continue
            if state["role"] == "dialer":
                await self._hello(contact["username"])
            elif address is not None and state["address"] != address.to_bytes().hex():
                await self._direct_failed(contact["username"], "your nym address changed")

    def _direct_channels(self) -> dict[bytes, tuple[str, direct.Keys]]:
        if self._channels is None:
            self._channels = {}
            for contact in self.store.contacts():
                state = contact.get("direct") or {}
                if state.get("state") == "on":
                    keys = direct.keys(bytes.fromhex(state["secret"]))
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
            packet = direct.decode_packet(data)
        except direct.BadPacket as e:
            return self._rejected(str(e))
        peer = self._direct_channels().get(packet.channel)
        if peer is None or not direct.authentic(packet, peer[1]):
            return self._rejected("unknown channel or bad MAC")
        username = peer[0]
        state = (self.store.contact(username) or {}).get("direct") or {}
        if state.get("state") != "on":  # ended or removed meanwhile (by another process)
            self._channels = None
            return self._rejected("direct mode no longer on")
        dialer = state["role"] == "dialer"
        if (
            packet.direction != (direct.FROM_LISTENER if dialer else direct.FROM_DIALER)
            or (tag is None) != dialer
        ):
            return self._rejected("wrong direction")
        changes = {} if state["confirmed"] else {"confirmed": True}
        if not dialer and state["tag"] != tag.hex():
            changes["tag"] = tag.hex()  # the dialer's nym-client (re)started: reply there
        if changes:
            state = {**state, **changes}
            with self.store.transaction():
                self._put_direct(username, state)
            if "confirmed" in changes:
                self._notice(
                    f"direct mode with {username} is on: your messages no longer "
                    "pass through the node"
                )
        if packet.kind == direct.HELLO:
            if not dialer:
                await self._send_direct(state, direct.HELLO, os.urandom(16))
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
