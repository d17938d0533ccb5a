"""The client engine: registration, key lookup and pinning, end-to-end sessions, sending
and receiving through a node. One engine; the commands and the chat screen are faces."""

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nymchat import _native
from nymchat.client import direct, messages
from nymchat.client.nodelink import NodeLink
from nymchat.client.store import ClientStore, derive_keys
from nymchat.errors import NymchatError
from nymchat.nym.address import Address, AddressError
from nymchat.protocol import names, pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
ONE_TIME_KEYS = 50
SESSIONS_KEPT = 4  # per contact: late messages of a replaced session still open
RETRY_OFFLINE = 5.0  # seconds between attempts to reach a node that does not answer
DIRECT_TIMEOUT = 20.0  # seconds a direct message waits for its receipt before the node
DIRECT_SURBS = 5  # SURBs with each direct packet to a listener (20 with a hello)
DIRECT_BACKLOG = 1000  # direct packets waiting to be checked; more are dropped


class KeyChanged(NymchatError):
    """A contact's key changed."""


class NotRegistered(NymchatError):
    """This profile has no username on a node yet: run `nymchat register NAME --node CONTACT`."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Profile:
    """An unlocked profile: the identity and its sealed store."""

    def __init__(self, home: Path, identity: "_native.Identity"):
        self.home, self.identity = home, identity
        self.store = ClientStore(home / "client.db", derive_keys(identity.secret_bytes()))

    @property
    def username(self) -> str | None:
        return self.store.get("username")

    @property
    def node(self) -> NodeContact | None:
        text = self.store.get("node")
        return NodeContact.parse(text) if text else None

    def account(self) -> "_native.Account | None":
        pickle = self.store.get("account")
        return _native.Account.from_pickle(pickle, self.store.pickle_key) if pickle else None

    def save_account(self, account: "_native.Account") -> None:
        self.store.put("account", account.pickle(self.store.pickle_key))


@dataclass
class Received:
    sender: str
    message_id: bytes
    sent: int
    text: str
    verified: bool
    key_changed: bool


def _one_time_key(identity, key_id: int, key: bytes, fallback: bool = False) -> wire.OneTimeKey:
    label = "fallback-key" if fallback else "one-time-key"
    return wire.OneTimeKey(key_id, key, identity.sign(label, key_id.to_bytes(8, "big") + key))


class Engine:
    def __init__(self, profile: Profile, link: NodeLink | None):
        self.profile, self.link = profile, link
        self.store, self.identity = profile.store, profile.identity
        self.notices: list[str] = []  # things the user should be told
        self.on_status = None  # called with (message id, status) as a sent message moves on
        self.on_notice = None  # called with each notice as it happens (else they wait)
        self._keys_low = False
        self._offline = False
        self.direct_timeout = float(os.environ.get("NYMCHAT_DIRECT_TIMEOUT") or DIRECT_TIMEOUT)
        self.direct_rejected = 0  # direct packets dropped: strangers, bad MACs, garbage
        self.arrivals: asyncio.Queue[Received] = asyncio.Queue()  # taken directly
        self._direct_in: asyncio.Queue[tuple[bytes, bytes | None]] = \
            asyncio.Queue(DIRECT_BACKLOG)
        self._direct_task: asyncio.Task | None = None
        self._channels: dict[bytes, str] | None = None  # channel id → direct peer
        self._receipts: dict[bytes, asyncio.Future] = {}  # direct messages awaiting one
        self._tasks: set[asyncio.Task] = set()
        if link is not None:
            link.on_direct = self._direct_arrived

    def close(self) -> None:
        for task in [self._direct_task, *self._tasks]:
            if task is not None:
                task.cancel()

    # --- registration ---------------------------------------------------------------

    async def register(self, name: str, on_work=None) -> str:
        username = names.normalize(name)
        account = self.profile.account() or _native.Account()
        keys = account.generate_one_time_keys(ONE_TIME_KEYS - len(account.one_time_keys()))
        fallback = account.fallback_key() or account.generate_fallback_key()
        bundle = wire.Bundle(
            self.identity.agreement_public, account.curve25519_key,
            self.identity.sign("account-key", account.curve25519_key),
            tuple(_one_time_key(self.identity, i, k) for i, k in keys),
            _one_time_key(self.identity, *fallback, fallback=True))
        with self.store.transaction():
            self.profile.save_account(account)
        answer = await self.link.request(Kind.REGISTER_BEGIN, username=username, bundle=bundle)
        if answer.kind is Kind.CHALLENGE:
            challenge, difficulty = answer.body["challenge"], answer.body["difficulty"]
            if on_work is not None and difficulty >= 16:
                on_work(difficulty)
            solution = await asyncio.to_thread(pow.solve, challenge, username,
                                               self.identity.signing_public, difficulty)
            await self.link.request(Kind.REGISTER_FINISH, username=username,
                                    challenge=challenge, proof_of_work=solution)
        account.mark_keys_as_published()
        with self.store.transaction():
            self.profile.save_account(account)
            self.store.put("username", username)
            self.store.put("node", str(self.link.contact))
        return username

    def _me(self) -> str:
        username = self.profile.username
        if username is None:
            raise NotRegistered()
        return username

    # --- contacts -------------------------------------------------------------------

    async def lookup(self, name: str) -> dict:
        """Fetches NAME's keys, checks the signature chain and pins them on first use.
        A different key than the pinned one is recorded and blocks sending."""
        username = names.normalize(name)
        body = (await self.link.request(Kind.LOOKUP, username=username)).body
        identity, bundle = body["identity"], body["bundle"]
        messages.check_account_key(identity, bundle.account_key, bundle.account_signature)
        one_time = bundle.one_time_keys[0] if bundle.one_time_keys else bundle.fallback
        messages.check_one_time_key(identity, one_time, fallback=not bundle.one_time_keys)
        with self.store.transaction():
            contact = self._pin(username, identity, bundle.account_key)
            if not contact["changed"] and not self.store.sessions(username):
                account = self.profile.account()
                session = account.outbound(bundle.account_key, one_time.key)
                self._save_session(username, session)
        return contact

    def _pin(self, username: str, identity: bytes, account_key: bytes) -> dict:
        contact = self.store.contact(username)
        if contact is None:
            contact = {"username": username, "identity": identity.hex(),
                       "account_key": account_key.hex(), "pinned": now_ms(), "verified": False,
                       "changed": False}
        elif contact["identity"] != identity.hex():
            log.warning("the key of %s changed", username)
            contact.update(changed=True, new_identity=identity.hex(),
                           new_account_key=account_key.hex())
        elif contact["account_key"] != account_key.hex():
            contact["account_key"] = account_key.hex()  # same person, new device keys
        self.store.put_contact(contact)
        return contact

    def trust(self, username: str) -> dict:
        """Accepts a contact's changed key (after checking it): sending works again, with
        a new session; the contact is no longer marked verified."""
        contact = self.known(username)
        if not contact["changed"]:
            raise NymchatError(f"{username}'s key has not changed; nothing to trust")
        contact.update(identity=contact.pop("new_identity"),
                       account_key=contact.pop("new_account_key"), changed=False,
                       verified=False, pinned=now_ms())
        with self.store.transaction():
            self.store.put_contact(contact)
            self.store.drop_sessions(username)
        return contact

    def mark_verified(self, username: str) -> dict:
        contact = self.known(username)
        if contact["changed"]:
            raise KeyChanged(f"{username}'s key changed: trust the new key first")
        contact["verified"] = True
        with self.store.transaction():
            self.store.put_contact(contact)
        return contact

    def known(self, username: str) -> dict:
        """The pinned contact, or an error saying how to get one."""
        contact = self.store.contact(names.normalize(username))
        if contact is None:
            raise NymchatError(f"no contact '{username}': `nymchat lookup {username}` first")
        return contact

    def safety_number(self, contact: dict) -> str:
        return messages.safety_number(self._me(), self.identity.signing_public,
                                      contact["username"], bytes.fromhex(contact["identity"]))

    def _save_session(self, username: str, session) -> None:
        self.store.put_session(username, session.id, session.pickle(self.store.pickle_key),
                               time.time_ns())

    def _sessions(self, username: str) -> list:
        return [_native.Session.from_pickle(p, self.store.pickle_key)
                for p in self.store.sessions(username)[:SESSIONS_KEPT]]

    # --- sending ----------------------------------------------------------------------

    async def send(self, name: str, text: str) -> bytes:
        """Encrypts and relays a message; returns its id once the node has accepted it."""
        message_id = self.queue(name, text)
        await self.deliver(names.normalize(name), message_id, text)
        return message_id

    def queue(self, name: str, text: str) -> bytes:
        """Stores a message as `sent` in the outbox, without touching the network; it
        leaves with `send` or `flush_outbox`."""
        self._me()
        username = names.normalize(name)
        message_id = os.urandom(16)
        with self.store.transaction():
            self.store.add_message(username, message_id, {
                "direction": "out", "to": username, "text": text, "time": now_ms(),
                "status": "sent", "id": message_id.hex()})
            self.store.put("outbox", [*self.store.get("outbox", []), message_id.hex()])
        return message_id

    async def flush_outbox(self) -> int:
        """Sends what `queue` stored; returns how many the node accepted."""
        sent = 0
        for hex_id in self.store.get("outbox", []):
            record = self.store.message(bytes.fromhex(hex_id))
            try:
                await self.deliver(record["to"], bytes.fromhex(hex_id), record["text"])
                sent += 1
            except NymchatError as e:
                self._notice(f"a queued message to {record['to']} is still waiting: {e}")
        return sent

    async def deliver(self, username: str, message_id: bytes, text: str) -> None:
        """Encrypts and sends a message stored by `queue`: directly to a direct-mode peer
        (falling back to the node when no receipt comes in time), else through the node.
        It leaves the outbox once delivered directly or accepted by the node."""
        await self._ready(username)
        route = self._direct_route(username)
        if route is not None and await self._deliver_direct(username, route, message_id, text):
            return
        await self._relay(username, messages.TEXT, message_id, text.encode())
        with self.store.transaction():
            self._set_status(message_id, "accepted")
            self._leave_outbox(message_id)

    def _leave_outbox(self, message_id: bytes) -> None:
        self.store.put("outbox", [i for i in self.store.get("outbox", [])
                                  if i != message_id.hex()])

    async def _ready(self, username: str) -> dict:
        """The contact, with a usable session (looked up if needed); raises `KeyChanged`
        while their key change is not trusted."""
        contact = self.store.contact(username)
        if contact is not None and contact.get("session_broken"):
            with self.store.transaction():
                self.store.drop_sessions(username)
                contact.pop("session_broken")
                self.store.put_contact(contact)
            self._notice(f"the session with {username} was broken; starting a new one")
        if contact is None or not self.store.sessions(username):
            contact = await self.lookup(username)
        if contact["changed"]:
            raise KeyChanged(f"{username}'s key changed since you pinned it: compare safety "
                             f"numbers (`nymchat contacts verify {username}`), then "
                             f"`nymchat contacts trust {username}`; nothing was sent")
        return contact

    async def _relay(self, username: str, kind: int, message_id: bytes, body: bytes) -> None:
        """Encrypts a message for `username` and has the node accept it."""
        payload = self._encrypt(self._me(), username, kind, message_id, body)
        await self.link.request(Kind.SEND, recipient=username, message_id=message_id,
                                payload=payload)

    def _encrypt(self, me: str, username: str, kind: int, message_id: bytes,
                 body: bytes) -> bytes:
        session = self._sessions(username)[0]
        inner = messages.Inner(kind, me, username, self.link.contact.key, message_id, now_ms(),
                               body)
        sealed = session.encrypt(messages.encode_inner(inner))
        with self.store.transaction():  # the ratchet state is saved before anything leaves
            self._save_session(username, session)
        keys = None
        if sealed[0] == 0:  # a session-opening message carries who opens it
            account = self.profile.account()
            keys = messages.SenderKeys(self.identity.signing_public, account.curve25519_key,
                                       self.identity.sign("account-key",
                                                          account.curve25519_key))
        return messages.encode_payload(sealed, keys)

    def _set_status(self, message_id: bytes, status: str) -> None:
        """Moves a sent message on: sent → accepted (by the node) → delivered (to the
        recipient's device), never back. Call within a transaction."""
        order = ["sent", "accepted", "delivered"]
        record = self.store.message(message_id)
        if record and record.get("direction") == "out" and \
                order.index(status) > order.index(record["status"]):
            record["status"] = status
            self.store.update_message(message_id, record)
            if self.on_status is not None:
                self.on_status(message_id, status)
        waiter = self._receipts.get(message_id)
        if status == "delivered" and waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- receiving --------------------------------------------------------------------

    async def inbox(self, quiet: float = 1.5) -> list[Received]:
        """Asks the node for what is queued, takes it in, acknowledges it; with it, what
        came directly and anything stored but never shown."""
        me = self._me()
        received = self._never_shown()
        taken = {m.message_id for m in received}
        await self.link.request(Kind.REFRESH)
        ids: list[bytes] = []
        relayed: list[Received] = []
        while (item := await self._next(quiet)) is not None:
            relayed_now = isinstance(item, wire.Answer)
            message = self._handle_push(me, item, ids) if relayed_now else item
            if message is not None and message.message_id not in taken:
                taken.add(message.message_id)
                received.append(message)
                if relayed_now:
                    relayed.append(message)
        await self._after(me, ids, relayed)
        received.sort(key=lambda m: m.sent)
        return received

    async def follow(self, refresh_every: float = 60.0, wake: asyncio.Event | None = None):
        """Yields messages as they arrive, for as long as it runs. Keeps the node supplied
        with SURBs (a refresh now and then, and whenever `wake` is set, e.g. after the
        nym-client reconnected), so the node can push promptly; and direct peers too."""
        me = self._me()
        for message in self._never_shown():
            yield message
        wake = wake or asyncio.Event()
        wake.set()
        wait = refresh_every
        while True:
            if wake.is_set():
                wake.clear()
                wait = refresh_every if await self._back_online() else RETRY_OFFLINE
            item = await self._next(wait, wake)
            if item is None:
                wake.set()  # quiet for a while: hand the node fresh SURBs
                continue
            if isinstance(item, Received):
                yield item
                continue
            if not isinstance(item, wire.Answer):
                continue  # woken
            ids: list[bytes] = []
            message = self._handle_push(me, item, ids)
            received = [message] if message is not None else []
            await self._after(me, ids, received)
            for message in received:
                yield message

    async def _next(self, timeout: float, wake: asyncio.Event | None = None):
        """The next node push (`wire.Answer`) or direct message (`Received`); True when
        `wake` was set, None after `timeout` seconds of quiet."""
        waiters = {asyncio.ensure_future(self.link.pushes.get()): "push",
                   asyncio.ensure_future(self.arrivals.get()): "direct"}
        if wake is not None:
            waiters[asyncio.ensure_future(wake.wait())] = "wake"
        done, pending = await asyncio.wait(waiters, timeout=timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        results = {waiters[w]: w.result() for w in done}
        # Both queues may have yielded at once: put back what will not be handled now.
        if "push" in results and "direct" in results:
            self.arrivals.put_nowait(results.pop("direct"))
        for source in ("push", "direct"):
            if source in results:
                return results[source]
        return True if results else None

    def _never_shown(self) -> list[Received]:
        """Messages stored but not shown when the last process stopped (it died between
        taking a message and showing it)."""
        out = []
        for hex_id in self.store.get("unshown", []):
            record = self.store.message(bytes.fromhex(hex_id))
            if record is not None and (message := self._unshown(record["from"], record)):
                out.append(message)
        return out

    @property
    def node_answers(self) -> bool:
        """False while `follow` cannot reach the node."""
        return not self._offline

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)
        else:
            self.notices.append(text)

    async def _back_online(self) -> bool:
        """Hands the node fresh SURBs and sends what waits in the outbox; False (and the
        user told, once) while the node does not answer. Greets direct peers, so they
        hold fresh SURBs too."""
        await self._keep_direct_paths()
        try:
            await self.link.request(Kind.REFRESH)
        except NymchatError as e:
            if not self._offline:
                self._offline = True
                self._notice(f"the node is not answering ({e}); retrying")
            return False
        self._offline = False
        if self.store.get("outbox"):
            await self.flush_outbox()
        return True

    def _handle_push(self, me: str, push: wire.Answer, ids: list[bytes]) -> Received | None:
        if push.kind is Kind.KEYS_LOW:
            self._keys_low = True
        if push.kind is not Kind.DELIVER:
            return None
        ids.append(push.body["message_id"])
        try:
            return self._take(me, push.body)
        except (NymchatError, wire.WireError) as e:
            self._unreadable(push.body["sender"], e)
            return None

    async def _after(self, me: str, ids: list[bytes], received: list[Received]) -> None:
        """Acknowledges what was taken, sends receipts, publishes keys if asked to."""
        if ids:
            try:
                await self.link.request(Kind.ACK, message_ids=tuple(dict.fromkeys(ids)))
            except NymchatError as e:  # the node pushes them again; copies are dropped
                log.info("acknowledgement not taken (%s); the node will push again", e)
        for message in received:  # end-to-end receipts: delivered to this device
            await self._send_receipt(me, message)
        if self._keys_low:
            self._keys_low = False
            try:
                await self.replenish()
            except NymchatError as e:
                self._notice(f"could not publish fresh one-time keys: {e}")

    def _unreadable(self, sender: str, error: Exception) -> None:
        """A message that does not open: if the session is at fault, the next message to
        the sender starts a new one."""
        log.warning("a message from %s could not be read: %s", sender, error)
        self._notice(f"a message from {sender} could not be read ({error})")
        contact = self.store.contact(sender)
        if contact is not None and "session" in str(error):
            contact["session_broken"] = True
            with self.store.transaction():
                self.store.put_contact(contact)

    async def replenish(self) -> int:
        """Publishes fresh one-time keys (the node said they run low)."""
        account = self.profile.account()
        keys = account.generate_one_time_keys(ONE_TIME_KEYS)
        answer = await self.link.request(
            Kind.PUBLISH_KEYS, one_time_keys=tuple(_one_time_key(self.identity, i, k)
                                                   for i, k in keys[:ONE_TIME_KEYS]),
            fallback=None)
        account.mark_keys_as_published()
        with self.store.transaction():
            self.profile.save_account(account)
        return answer.body["one_time_keys_left"]

    async def _send_receipt(self, me: str, message: Received) -> None:
        """Tells the sender the message reached this device: directly to a direct peer
        (a lost receipt makes the sender fall back to the node), else relayed."""
        receipt_id = os.urandom(16)
        try:
            route = self._direct_route(message.sender)
            if route is None:
                await self._relay(message.sender, messages.RECEIPT, receipt_id,
                                  message.message_id)
                return
            payload = self._encrypt(me, message.sender, messages.RECEIPT, receipt_id,
                                    message.message_id)
            await self._send_direct(route, direct.MESSAGE, receipt_id, payload)
        except NymchatError as e:
            log.info("no receipt to %s: %s", message.sender, e)

    def _take(self, me: str, deliver: dict) -> Received | None:
        sender = deliver["sender"]
        stored = self.store.message(deliver["message_id"])
        if stored is not None:  # a copy of a message already taken: delivery is at least once
            return self._unshown(sender, stored)
        keys, sealed = messages.decode_payload(deliver["payload"])
        with self.store.transaction():
            contact = self.store.contact(sender)
            if keys is not None:
                messages.check_account_key(keys.identity, keys.account_key,
                                           keys.account_signature)
                contact = self._pin(sender, keys.identity, keys.account_key)
            if contact is None:
                raise NymchatError(f"a message from unknown {sender} does not open a session")
            plaintext = self._decrypt(sender, contact, sealed)
            inner = messages.decode_inner(plaintext)
            if (inner.sender, inner.recipient, inner.node, inner.message_id) != \
                    (sender, me, self.link.contact.key, deliver["message_id"]):
                raise NymchatError(f"a message from {sender} is bound to another sender, "
                                   "recipient, node or id; ignored")
            if inner.kind == messages.RECEIPT:
                self._set_status(inner.body, "delivered")
                self.store.add_message(sender, inner.message_id, {"direction": "receipt",
                                                                  "for": inner.body.hex()})
                return None
            if inner.kind != messages.TEXT:
                self.store.add_message(sender, inner.message_id, {"direction": "control"})
                self._direct_handshake(sender, contact, inner)
                return None
            text = inner.body.decode("utf-8", "replace")
            self.store.add_message(sender, inner.message_id, {
                "direction": "in", "from": sender, "text": text, "time": inner.sent,
                "id": inner.message_id.hex(), "status": "delivered", "shown": False})
            self.store.put("unshown", [*self.store.get("unshown", []), inner.message_id.hex()])
        return Received(sender, inner.message_id, inner.sent, text, contact["verified"],
                        contact["changed"])

    def _unshown(self, sender: str, record: dict) -> Received | None:
        """A stored message the user has not seen yet (a crash came between storing and
        showing it) comes out again; anything else is a duplicate."""
        if record.get("direction") != "in" or record.get("shown", True):
            return None
        contact = self.store.contact(sender) or {"verified": False, "changed": False}
        return Received(sender, bytes.fromhex(record["id"]), record["time"], record["text"],
                        contact["verified"], contact["changed"])

    def shown(self, message: Received) -> None:
        """The user has seen `message`: copies of it are duplicates from now on."""
        with self.store.transaction():
            record = self.store.message(message.message_id)
            if record is not None and not record.get("shown", True):
                record["shown"] = True
                self.store.update_message(message.message_id, record)
                self.store.put("unshown", [i for i in self.store.get("unshown", [])
                                           if i != message.message_id.hex()])

    def _decrypt(self, sender: str, contact: dict, sealed: bytes) -> bytes:
        for session in self._sessions(sender):
            if sealed[0] != 0 or session.matches(sealed):
                try:
                    plaintext = session.decrypt(sealed)
                except NymchatError:
                    continue
                self._save_session(sender, session)
                return plaintext
        if sealed[0] != 0:
            raise NymchatError(f"no session with {sender} opens this message")
        account = self.profile.account()
        account_key = bytes.fromhex(contact.get("new_account_key") or contact["account_key"])
        session, plaintext = account.inbound(account_key, sealed)
        self.profile.save_account(account)  # the one-time key is gone for good
        self._save_session(sender, session)
        return plaintext

    # --- direct mode (direct.py) ----------------------------------------------------

    def direct_state(self, username: str) -> str | None:
        """How direct mode stands with a contact, in words; None when it is off."""
        state = (self.store.contact(username) or {}).get("direct")
        if state is None:
            return None
        if state["state"] != "on":
            return {"inviting": "direct: invitation sent", "invited": "direct: invited you"}[
                state["state"]]
        return "direct" if state.get("confirmed") else "direct (path not confirmed yet)"

    async def invite_direct(self, name: str) -> str:
        """Invites a contact, through the node, to talk directly; nothing is disclosed."""
        username = names.normalize(name)
        contact = await self._ready(username)
        state = contact.get("direct") or {}
        if state.get("state") == "on":
            raise NymchatError(f"direct mode with {username} is already on "
                               f"(`nymchat contacts end-direct {username}` ends it)")
        if state.get("state") == "invited":
            raise NymchatError(f"{username} already invited you: "
                               f"`nymchat contacts accept-direct {username}`")
        invite = os.urandom(16)
        with self.store.transaction():  # stored first: the acceptance may come back fast
            self._put_direct(username, {"state": "inviting", "invite": invite.hex(),
                                        "since": now_ms()})
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
            self._put_direct(username, {"state": "on", "role": "listener",
                                        "secret": secret.hex(), "address": address.hex(),
                                        "tag": None, "confirmed": False, "since": now_ms()})
        try:
            await self._relay(username, messages.DIRECT_ACCEPT, os.urandom(16),
                              direct.encode_accept(direct.Accept(bytes.fromhex(state["invite"]),
                                                                 secret, address)))
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
            self._notice(f"could not tell {username} that direct mode "
                         f"{direct.END_REASONS[reason]}: {e}")

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
            self._put_direct(sender, {"state": "invited", "invite": invite.hex(),
                                      "since": now_ms()})
            self._notice(f"{sender} invites you to direct mode: your messages would no longer "
                         f"pass through the node, and accepting shows your nym address to "
                         f"{sender} only. `nymchat contacts accept-direct {sender}` (/direct "
                         f"{sender} accept) accepts; ignoring it changes nothing")
        elif inner.kind == messages.DIRECT_ACCEPT:
            accept = direct.decode_accept(inner.body)
            if state.get("state") != "inviting" or state["invite"] != accept.invite.hex():
                log.info("ignored an acceptance of direct mode that answers no invitation")
                return
            try:
                Address.from_bytes(accept.address)
            except AddressError as e:
                raise wire.WireError(f"an acceptance of direct mode with a bad address: {e}") \
                    from None
            self._put_direct(sender, {"state": "on", "role": "dialer",
                                      "secret": accept.secret.hex(),
                                      "address": accept.address.hex(), "confirmed": False,
                                      "since": now_ms()})
            self._notice(f"{sender} accepted direct mode; checking the direct path")
            self._soon(self._hello(sender))
        elif state:
            reason = direct.decode_end(inner.body)
            self._put_direct(sender, None)
            self._notice({direct.ENDED: f"{sender} ended direct mode; messages go through the "
                                        "node again",
                          direct.DECLINED: f"{sender} declined direct mode",
                          direct.FAILED: f"the direct path with {sender} failed on their "
                                         f"side; messages go through the node again "
                                         f"(`nymchat contacts direct {sender}` tries again)"}
                         [reason])

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

    async def _send_direct(self, route: dict, kind: int, message_id: bytes,
                           payload: bytes = b"") -> None:
        """A dialer sends to the listener's address with SURBs; a listener replies on
        the dialer's SURBs, never learning the dialer's address."""
        dialer = route["role"] == "dialer"
        packet = direct.encode_packet(direct.keys(bytes.fromhex(route["secret"])), kind,
                                      direct.FROM_DIALER if dialer else direct.FROM_LISTENER,
                                      message_id, payload)
        transport = self.link.transport
        for n, frame in enumerate(_native.encode_frames(packet, os.urandom(16))):
            if not dialer:
                await transport.reply(bytes.fromhex(route["tag"]), frame)
                continue
            surbs = 0 if n else 4 * DIRECT_SURBS if kind == direct.HELLO else DIRECT_SURBS
            await transport.send_anonymous(Address.from_bytes(bytes.fromhex(route["address"])),
                                           frame, surbs)

    async def _deliver_direct(self, username: str, route: dict, message_id: bytes,
                              text: str) -> bool:
        """Sends a message directly and waits for its receipt; False (direct mode ended,
        both sides told) when none comes in time."""
        waiter = asyncio.get_running_loop().create_future()
        self._receipts[message_id] = waiter
        try:
            payload = self._encrypt(self._me(), username, messages.TEXT, message_id,
                                    text.encode())
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
        self._notice(f"the direct path to {username} failed ({why}); back to the node. "
                     f"`nymchat contacts direct {username}` (/direct {username}) tries again")
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
        try:
            self._direct_in.put_nowait((data, tag))
        except asyncio.QueueFull:
            self._rejected("too many waiting")
            return
        if self._direct_task is None or self._direct_task.done():
            self._direct_task = asyncio.create_task(self._direct_loop())

    async def _direct_loop(self) -> None:
        while True:
            data, tag = await self._direct_in.get()
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
            log.warning("ignored %d message(s) sent to this address by strangers (last: %s)",
                        n, why)

    async def _direct_packet(self, data: bytes, tag: bytes | None) -> None:
        try:
            packet = direct.decode_packet(data)
        except direct.BadPacket as e:
            return self._rejected(str(e))
        peer = self._direct_channels().get(packet.channel)
        if peer is None or not direct.authentic(packet, peer[1]):
            return self._rejected("unknown channel or bad MAC")
        username = peer[0]
        state = self.store.contact(username)["direct"]
        dialer = state["role"] == "dialer"
        if packet.direction != (direct.FROM_LISTENER if dialer else direct.FROM_DIALER) or \
                (tag is None) != dialer:
            return self._rejected("wrong direction")
        changes = {} if state["confirmed"] else {"confirmed": True}
        if not dialer and state["tag"] != tag.hex():
            changes["tag"] = tag.hex()  # the dialer's nym-client (re)started: reply there
        if changes:
            state = {**state, **changes}
            with self.store.transaction():
                self._put_direct(username, state)
            if "confirmed" in changes:
                self._notice(f"direct mode with {username} is on: your messages no longer "
                             "pass through the node")
        if packet.kind == direct.HELLO:
            if not dialer:
                await self._send_direct(state, direct.HELLO, os.urandom(16))
            return
        me = self._me()
        stored = self.store.message(packet.message_id)
        if stored is not None:  # a copy: the receipt may have been lost, say it again
            if stored.get("direction") == "in":
                await self._send_receipt(me, Received(username, packet.message_id,
                                                      stored["time"], stored["text"],
                                                      False, False))
            return
        try:
            received = self._take(me, {"sender": username, "message_id": packet.message_id,
                                       "payload": packet.payload})
        except (NymchatError, wire.WireError) as e:
            self._unreadable(username, e)
            return
        if received is not None:
            self.arrivals.put_nowait(received)
            await self._send_receipt(me, received)
