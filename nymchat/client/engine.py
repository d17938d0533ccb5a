"""The client engine: registration, key lookup and pinning, end-to-end sessions, sending
and receiving through a node. One engine; the commands and the chat screen are faces."""

import asyncio
import logging
import os
import time
from pathlib import Path

from nymchat import _native
from nymchat.client import direct_packets as direct
from nymchat.client import messages
from nymchat.client.directmode import DirectMode
from nymchat.client.events import EventBus, ReceiptReceived, Status, StatusChanged
from nymchat.client.messages import Received, now_ms
from nymchat.client.nodelink import NodeLink, NodeRefused
from nymchat.client.store import ClientStore, derive_keys
from nymchat.errors import (
    BadSignature,
    KeyChanged,
    MessageFailed,
    NotRegistered,
    NymchatError,
    StillQueued,
    TooLong,
    UsageError,
)
from nymchat.protocol import names, pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

log = logging.getLogger(__name__)
ONE_TIME_KEYS = 50
FALLBACK_ROTATION_MS = 7 * 86_400_000  # a new fallback key weekly (the last one is kept)
SESSIONS_KEPT = 4  # per contact: late messages of a replaced session still open
RETRY_OFFLINE = 5.0  # seconds between attempts to reach a node that does not answer
INBOX_CURSOR = "inbox-reported"  # the last stored message an `inbox` reported
INBOX_LIMIT = 30.0  # seconds `inbox` takes messages in, at most
TRUST_DIGITS = 20  # of the safety number, to trust a changed key: 66 bits, not ground out
# An outgoing message moves on through these; or it fails: refused by the node for good
# (`FINAL_REFUSALS`, with its detail as the reason) or dropped by the user. Refusals that
# may pass later (queue_full, busy, rate_limited...) leave it waiting in the outbox.
STATUSES = ("queued", "accepted", "delivered")  # failed ranks with queued
FINAL_REFUSALS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.TOO_LARGE,
    ErrorCode.INVALID_NAME,
    ErrorCode.BAD_REQUEST,
}
DROPPED = "dropped by you"


def status_of(record: dict) -> str:
    """An outgoing message's status; older versions said `sent` for queued."""
    return "queued" if record["status"] == "sent" else record["status"]


def _too_long(text: str) -> str | None:
    size = len(text.encode())
    if size <= messages.MAX_BODY:
        return None
    return (
        f"a message holds at most {messages.MAX_BODY:,} bytes of text (UTF-8); this one "
        f"has {size:,}"
    )


def _sender_name(name: str) -> str:
    """A sender's name from the node, normalised exactly as a name the user types, so that
    `Alice` is alice (her pinned key, her sessions) and never a contact of its own; an
    invalid one (escape codes, say) is refused and the message dropped."""
    try:
        return names.normalize(name)
    except names.InvalidName as e:
        raise NymchatError(f"the sender's name is not valid: {e}") from None


def _is_receipt(plaintext: bytes) -> bool:
    try:
        return messages.decode_inner(plaintext).kind == messages.RECEIPT
    except (NymchatError, wire.WireError):
        return False


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


def _one_time_key(identity, key_id: int, key: bytes, fallback: bool = False) -> wire.OneTimeKey:
    label = "fallback-key" if fallback else "one-time-key"
    return wire.OneTimeKey(key_id, key, identity.sign(label, key_id.to_bytes(8, "big") + key))


class Engine(DirectMode):
    """What a profile does on the network; direct mode comes from `DirectMode`."""

    def __init__(self, profile: Profile, link: NodeLink | None):
        self.profile, self.link = profile, link
        self.store, self.identity = profile.store, profile.identity
        self.events = EventBus()
        self.notices: list[str] = []  # things the user should be told
        self.on_status = None  # called with (message id, status) as a sent message moves on
        self.on_notice = None  # called with each notice as it happens (else they wait)
        self._keys_low = False
        self._offline = False
        self._init_direct()

    # --- registration ---------------------------------------------------------------

    async def register(self, name: str, on_work=None) -> str:
        username = names.normalize(name)
        account = self.profile.account() or _native.Account()
        keys = account.generate_one_time_keys(ONE_TIME_KEYS - len(account.one_time_keys()))
        fallback = account.fallback_key() or account.generate_fallback_key()
        bundle = wire.Bundle(
            self.identity.agreement_public,
            account.curve25519_key,
            self.identity.sign("account-key", account.curve25519_key),
            tuple(_one_time_key(self.identity, i, k) for i, k in keys),
            _one_time_key(self.identity, *fallback, fallback=True),
        )
        with self.store.transaction():
            self.profile.save_account(account)
        answer = await self.link.request(Kind.REGISTER_BEGIN, username=username, bundle=bundle)
        if answer.kind is Kind.CHALLENGE:  # the node keeps nothing: all of it goes back
            challenge, difficulty = answer.body["challenge"], answer.body["difficulty"]
            if on_work is not None and 16 <= difficulty <= pow.MAX_DIFFICULTY:
                on_work(difficulty)  # (over the maximum, `solve` refuses at once)
            solution = await asyncio.to_thread(
                pow.solve, challenge, username, self.identity.signing_public, difficulty
            )
            await self.link.request(
                Kind.REGISTER_FINISH,
                username=username,
                bundle=bundle,
                challenge=challenge,
                difficulty=difficulty,
                expires=answer.body["expires"],
                proof_of_work=solution,
            )
        account.mark_keys_as_published()
        with self.store.transaction():
            self.profile.save_account(account)
            self.store.put("username", username)
            self.store.put("node", str(self.link.contact))
            self.store.put("fallback_published", now_ms())
        return username

    async def unregister(self) -> str:
        """Frees this profile's name at its node (which deletes its keys and queue); the
        profile keeps its identity, contacts and history, and is no longer registered."""
        me = self.profile.username
        if me is None:
            raise NotRegistered("this profile is not registered on a node: nothing to unregister")
        try:
            await self.link.request(Kind.UNREGISTER, username=me)
        except NodeRefused as e:
            if e.code is not ErrorCode.NOT_REGISTERED:  # else the node forgot us already
                raise
        with self.store.transaction():
            self.store.put("username", None)
        return me

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
        if body["username"] != username:
            raise NymchatError(
                f"the node answered a lookup of {username} with the keys of "
                "another name; nothing was pinned"
            )
        identity, bundle = body["identity"], body["bundle"]
        one_time = bundle.one_time_keys[0] if bundle.one_time_keys else bundle.fallback
        try:
            messages.check_account_key(identity, bundle.account_key, bundle.account_signature)
            messages.check_one_time_key(identity, one_time, fallback=not bundle.one_time_keys)
        except BadSignature:
            raise BadSignature(
                f"the node gave keys for {username} that {username}'s identity "
                "key did not sign (tampered with on the way or by the node); "
                "nothing was pinned or sent"
            ) from None
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
            contact = {
                "username": username,
                "identity": identity.hex(),
                "account_key": account_key.hex(),
                "pinned": now_ms(),
                "verified": False,
                "changed": False,
            }
        elif contact["identity"] != identity.hex():
            log.warning("the key of %s changed", username)
            contact.update(
                changed=True, new_identity=identity.hex(), new_account_key=account_key.hex()
            )
        elif contact["account_key"] != account_key.hex():
            contact["account_key"] = account_key.hex()  # same person, new device keys
        self.store.put_contact(contact)
        return contact

    def trust(self, username: str, number: str) -> dict:
        """Accepts a contact's changed key: exactly the key whose safety number (all of it,
        or at least its first `TRUST_DIGITS` digits) the user gives, so a key that changed
        again after the user compared numbers is never the one pinned. Sending works
        again, with a new session; the contact is no longer marked verified."""
        contact = self.known(username)
        if not contact["changed"]:
            raise NymchatError(f"{contact['username']}'s key has not changed; nothing to trust")
        given = "".join(number.replace("-", " ").split())
        if not given.isdigit() or len(given) < TRUST_DIGITS:
            raise UsageError(
                f"give the safety number of {contact['username']}'s new key (at "
                f"least its first {TRUST_DIGITS // 5} groups) as `nymchat contacts "
                f"verify {contact['username']}` shows it"
            )
        if not self.new_safety_number(contact).replace(" ", "").startswith(given):
            raise KeyChanged(
                f"that is not the safety number of {contact['username']}'s new "
                f"key (did it change again?); nothing was trusted: run `nymchat "
                f"contacts verify {contact['username']}` and compare again"
            )
        contact.update(
            identity=contact.pop("new_identity"),
            account_key=contact.pop("new_account_key"),
            changed=False,
            verified=False,
            pinned=now_ms(),
        )
        with self.store.transaction():
            self.store.put_contact(contact)
            self.store.drop_sessions(contact["username"])
        return contact

    def mark_verified(self, username: str) -> dict:
        contact = self.known(username)
        if contact["changed"]:
            raise KeyChanged(f"{username}'s key changed: trust the new key first")
        contact["verified"] = True
        with self.store.transaction():
            self.store.put_contact(contact)
        return contact

    def blocked(self) -> set[str]:
        """The names whose messages are taken in, acknowledged and dropped unread."""
        return set(self.store.get("blocked", []))

    def block(self, name: str) -> str:
        """Blocks a name (a contact or not: nothing is pinned). Local only: the node and
        they are told nothing. Direct mode with them is forgotten without a word (their
        direct packets are then a stranger's), and what waits for them fails."""
        username = names.normalize(name)
        with self.store.transaction():
            self.store.put("blocked", sorted(self.blocked() | {username}))
            if (self.store.contact(username) or {}).get("direct"):
                self._put_direct(username, None)
            for record in self.outbox():
                if record["to"] == username:
                    self._fail(bytes.fromhex(record["id"]), f"you blocked {username}")
        return username

    def unblock(self, name: str) -> str:
        username = names.normalize(name)
        if username not in self.blocked():
            raise NymchatError(f"{username} is not blocked")
        with self.store.transaction():
            self.store.put("blocked", sorted(self.blocked() - {username}))
        return username

    def remove(self, username: str) -> None:
        """Forgets a contact with their sessions and the conversation (what waited for
        them with it); a block stays."""
        with self.store.transaction():
            self.store.remove_contact(username)
            self.store.put("outbox", [record["id"] for record in self.outbox()])

    def known(self, username: str) -> dict:
        """The pinned contact named `username`, or an error saying how to get one. A name
        stored exactly so comes first: a look-alike an older version pinned (`Alice` next
        to `alice`) is named, and removed, on its own."""
        contact = self.store.contact(username) or self.store.contact(names.normalize(username))
        if contact is None:
            raise NymchatError(f"no contact '{username}': `nymchat lookup {username}` first")
        return contact

    def safety_number(self, contact: dict) -> str:
        """The safety number with the contact's pinned key."""
        return messages.safety_number(
            self._me(),
            self.identity.signing_public,
            contact["username"],
            bytes.fromhex(contact["identity"]),
        )

    def new_safety_number(self, contact: dict) -> str | None:
        """While the contact's key has changed: the number with the new key, the one
        `trust` would pin. None otherwise."""
        if not contact["changed"]:
            return None
        return messages.safety_number(
            self._me(),
            self.identity.signing_public,
            contact["username"],
            bytes.fromhex(contact["new_identity"]),
        )

    def _save_session(self, username: str, session, newest: bool = True) -> None:
        self.store.put_session(
            username,
            session.id,
            session.pickle(self.store.pickle_key),
            time.time_ns() if newest else None,
        )

    def _sessions(self, username: str) -> list:
        return [
            _native.Session.from_pickle(p, self.store.pickle_key)
            for p in self.store.sessions(username)[:SESSIONS_KEPT]
        ]

    # --- sending ----------------------------------------------------------------------

    async def send(self, name: str, text: str) -> bytes:
        """Encrypts and relays a message; returns its id once the node has accepted it.
        The recipient is looked up first: a name the node does not know, or a changed key,
        is refused with nothing queued. Once queued, a refusal for good marks the message
        failed (`MessageFailed`); any other error leaves it in the outbox (`StillQueued`)."""
        self._me()
        username = names.normalize(name)
        self._check_sendable(username, text)
        await self._ready(username)
        message_id = self.queue(username, text)
        try:
            await self.deliver(username, message_id, text)
        except MessageFailed:
            raise
        except NymchatError as e:
            raise StillQueued(message_id, e) from None
        return message_id

    def _check_sendable(self, username: str, text: str) -> None:
        if (why := _too_long(text)) is not None:
            raise TooLong(f"{why}: nothing was queued or sent")
        if username in self.blocked():
            raise NymchatError(
                f"you blocked {username}: `nymchat contacts unblock {username}` "
                "first; nothing was queued or sent"
            )

    def queue(self, name: str, text: str) -> bytes:
        """Stores a message as `queued` in the outbox, without touching the network; it
        leaves with `send` or `flush_outbox`. What cannot be sent is refused here."""
        self._me()
        username = names.normalize(name)
        self._check_sendable(username, text)
        message_id = os.urandom(16)
        with self.store.transaction():
            self.store.add_message(
                username,
                message_id,
                {
                    "direction": "out",
                    "to": username,
                    "text": text,
                    "time": now_ms(),
                    "status": "queued",
                    "id": message_id.hex(),
                },
            )
            self.store.put("outbox", [*self.store.get("outbox", []), message_id.hex()])
        return message_id

    def outbox(self) -> list[dict]:
        """The messages waiting to leave, oldest first (records with `id`, `to`, `text`,
        `time`). A message whose contact was removed went with the conversation."""
        return [
            record
            for hex_id in self.store.get("outbox", [])
            if (record := self.store.message(bytes.fromhex(hex_id))) is not None
        ]

    def drop(self, prefix: str) -> dict:
        """Takes the waiting message whose id starts with `prefix` out of the outbox,
        marked failed ("dropped by you"); returns its record."""
        prefix = prefix.strip().lower()
        found = [r for r in self.outbox() if r["id"].startswith(prefix)] if prefix else []
        if len(found) != 1:
            raise NymchatError(
                f"no waiting message has an id starting with '{prefix}' "
                "(`nymchat outbox` lists them)"
                if not found
                else f"{len(found)} waiting messages have an id starting with "
                f"'{prefix}': give more of it"
            )
        message_id = bytes.fromhex(found[0]["id"])
        with self.store.transaction():
            self._fail(message_id, DROPPED)
        return self.store.message(message_id)

    def flush_soon(self) -> None:
        """Starts sending what waits, in the background (a serving process, on request)."""
        self._soon(self.flush_outbox())

    async def flush_outbox(self) -> int:
        """Sends what `queue` stored; returns how many the node accepted. A message the
        node refuses for good fails (the user told once); others wait for the next time."""
        sent, waiting = 0, self.outbox()
        if len(waiting) < len(self.store.get("outbox", [])):  # some went with their contact
            with self.store.transaction():
                self.store.put("outbox", [record["id"] for record in waiting])
        for record in waiting:
            try:
                await self.deliver(record["to"], bytes.fromhex(record["id"]), record["text"])
                sent += 1
            except MessageFailed as e:
                self._notice(str(e))
            except NymchatError as e:
                self._notice(
                    f"a queued message to {record['to']} is still waiting: {e} "
                    "(`nymchat outbox` lists what waits)"
                )
        return sent

    async def deliver(self, username: str, message_id: bytes, text: str) -> None:
        """Encrypts and sends a message stored by `queue`: directly to a direct-mode peer
        (falling back to the node when no receipt comes in time), else through the node.
        It leaves the outbox once delivered directly or accepted by the node, or when the
        node refuses it for good (`FINAL_REFUSALS`: then it is failed, `MessageFailed`).
        Older versions queued texts too long to send: they fail here."""
        reason = _too_long(text)
        try:
            if reason is None:
                await self._ready(username)
                route = self._direct_route(username)
                if route is not None and await self._deliver_direct(
                    username, route, message_id, text
                ):
                    return
                await self._relay(username, messages.TEXT, message_id, text.encode())
        except NodeRefused as e:
            if e.code not in FINAL_REFUSALS:
                raise
            reason = e.detail
        if reason is not None:
            with self.store.transaction():
                self._fail(message_id, reason)
            raise MessageFailed(f"a message to {username} failed: {reason}; it will not be sent")
        with self.store.transaction():
            self._set_status(message_id, "accepted")
            self._leave_outbox(message_id)

    def _fail(self, message_id: bytes, reason: str) -> None:
        """A waiting message will never be sent: it leaves the outbox, marked failed with
        `reason`. Call within a transaction."""
        self._leave_outbox(message_id)
        record = self.store.message(message_id)
        if record is not None and status_of(record) == "queued":
            record.update(status="failed", reason=reason)
            self.store.update_message(message_id, record)
            self.events.emit(StatusChanged(message_id, record["to"], Status.FAILED, reason))
            if self.on_status is not None:
                self.on_status(message_id, "failed")

    def _leave_outbox(self, message_id: bytes) -> None:
        self.store.put("outbox", [i for i in self.store.get("outbox", []) if i != message_id.hex()])

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
            raise KeyChanged(
                f"{username}'s key changed since you pinned it: compare the new "
                f"key's safety number (`nymchat contacts verify {username}`) "
                f"with theirs, then `nymchat contacts trust {username} NUMBER`; "
                "nothing was sent"
            )
        return contact

    async def _relay(self, username: str, kind: int, message_id: bytes, body: bytes) -> None:
        """Encrypts a message for `username` and has the node accept it."""
        payload = self._encrypt(self._me(), username, kind, message_id, body)
        await self.link.request(
            Kind.SEND, recipient=username, message_id=message_id, payload=payload
        )

    def _encrypt(self, me: str, username: str, kind: int, message_id: bytes, body: bytes) -> bytes:
        session = self._sessions(username)[0]
        inner = messages.Inner(
            kind, me, username, self.link.contact.key, message_id, now_ms(), body
        )
        sealed = session.encrypt(messages.encode_inner(inner))
        with self.store.transaction():  # the ratchet state is saved before anything leaves
            self._save_session(username, session)
        keys = None
        if sealed[0] == 0:  # a session-opening message carries who opens it
            account = self.profile.account()
            keys = messages.SenderKeys(
                self.identity.signing_public,
                account.curve25519_key,
                self.identity.sign("account-key", account.curve25519_key),
            )
        return messages.encode_payload(sealed, keys)

    def _set_status(self, message_id: bytes, status: str) -> None:
        """Moves a sent message on: queued → accepted (by the node) → delivered (to the
        recipient's device), never back. A message dropped while on its way may still
        arrive: then it says so. Call within a transaction."""
        record = self.store.message(message_id)
        if (
            record
            and record.get("direction") == "out"
            and STATUSES.index(status)
            > STATUSES.index(status_of(record).replace("failed", "queued"))
        ):
            record["status"] = status
            record.pop("reason", None)
            self.store.update_message(message_id, record)
            self.events.emit(StatusChanged(message_id, record["to"], Status(status)))
            if self.on_status is not None:
                self.on_status(message_id, status)
        waiter = self._receipts.get(message_id)
        if status == "delivered" and waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- receiving --------------------------------------------------------------------

    async def inbox(self, quiet: float = 1.5, limit: float = INBOX_LIMIT) -> list[Received]:
        """Asks the node for what is queued, takes it in, acknowledges it; with it, what
        came directly and anything stored but never shown. Returns once nothing came for
        `quiet` seconds, or after `limit` seconds whatever keeps arriving (what was not
        taken in by then stays queued at the node for the next time)."""
        me = self._me()
        received = self._never_shown()
        taken = {m.message_id for m in received}
        await self.link.request(Kind.REFRESH)
        ids: list[bytes] = []
        relayed: list[Received] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while (left := deadline - loop.time()) > 0:
            if (item := await self._next(min(quiet, left))) is None:
                break
            relayed_now = isinstance(item, wire.Answer)
            message = self._handle_push(me, item, ids) if relayed_now else item
            if message is not None and message.message_id not in taken:
                taken.add(message.message_id)
                received.append(message)
                if relayed_now:
                    relayed.append(message)
        if loop.time() >= deadline:  # not quiet: cut short
            self._notice(
                f"stopped taking messages in after {limit:g} s, as more kept "
                "arriving (the rest waits at the node: run inbox again)"
            )
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
                record = self.store.message(item.message_id)
                if record is not None and not record.get("shown", True):
                    yield item  # (unless it came out already, with the never-shown ones)
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
        waiters = {
            asyncio.ensure_future(self.link.pushes.get()): "push",
            asyncio.ensure_future(self.arrivals.get()): "direct",
        }
        if wake is not None:
            waiters[asyncio.ensure_future(wake.wait())] = "wake"
        done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
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
        return [
            message
            for record in self.store.unshown()
            if (message := self._unshown(record["from"], record)) is not None
        ]

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
        await self._keep_keys()
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
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), wire.MAX_LIST):  # one request holds so many
            try:
                await self.link.request(
                    Kind.ACK, message_ids=tuple(ids[start : start + wire.MAX_LIST])
                )
            except NymchatError as e:  # the node pushes them again; copies are dropped
                log.info("acknowledgement not taken (%s); the node will push again", e)
        for message in received:  # end-to-end receipts: delivered to this device
            await self._send_receipt(me, message.sender, message.message_id)
        await self._keep_keys()

    def _unreadable(self, sender: str, error: Exception) -> None:
        """A message that does not open: if the session is at fault, the next message to
        the sender starts a new one."""
        log.info("a message from %s could not be read: %s", sender, error)
        self._notice(f"a message from {sender} could not be read ({error})")
        contact = self.store.contact(sender)
        if contact is not None and "session" in str(error):
            contact["session_broken"] = True
            with self.store.transaction():
                self.store.put_contact(contact)

    async def _keep_keys(self) -> None:
        """Publishes fresh one-time keys if the node said they run low, and a new fallback
        key once the published one is `FALLBACK_ROTATION_MS` old."""
        published = self.store.get("fallback_published")
        rotate = published is None or now_ms() - published >= FALLBACK_ROTATION_MS
        if not (self._keys_low or rotate):
            return
        one_time, self._keys_low = self._keys_low, False
        try:
            await self.replenish(one_time=one_time, fallback=rotate)
        except NymchatError as e:
            self._notice(f"could not publish fresh keys: {e}")

    async def replenish(self, one_time: bool = True, fallback: bool = False) -> int:
        """Publishes fresh one-time keys, and with `fallback` a new fallback key. The
        account keeps the previous fallback key, so that session-opening messages made
        with it before the change still open."""
        account = self.profile.account()
        new_fallback = None
        if fallback:  # saved before it leaves: the node may take it even if its answer is lost
            key_id, key = account.fallback_key() or account.generate_fallback_key()
            new_fallback = _one_time_key(self.identity, key_id, key, fallback=True)
            with self.store.transaction():
                self.profile.save_account(account)
        keys = account.generate_one_time_keys(ONE_TIME_KEYS) if one_time else []
        answer = await self.link.request(
            Kind.PUBLISH_KEYS,
            one_time_keys=tuple(
                _one_time_key(self.identity, i, k) for i, k in keys[:ONE_TIME_KEYS]
            ),
            fallback=new_fallback,
        )
        account.mark_keys_as_published()
        with self.store.transaction():
            self.profile.save_account(account)
            if fallback:
                self.store.put("fallback_published", now_ms())
        return answer.body["one_time_keys_left"]

    async def _send_receipt(self, me: str, sender: str, message_id: bytes) -> None:
        """Tells the sender the message reached this device: directly to a direct peer
        (a lost receipt makes the sender fall back to the node), else relayed. Never to a
        changed key not trusted yet: its session may be the node's."""
        if self.store.contact(sender)["changed"]:
            return
        receipt_id = os.urandom(16)
        try:
            route = self._direct_route(sender)
            if route is None:
                await self._relay(sender, messages.RECEIPT, receipt_id, message_id)
                return
            payload = self._encrypt(me, sender, messages.RECEIPT, receipt_id, message_id)
            await self._send_direct(route, direct.MESSAGE, receipt_id, payload)
        except NymchatError as e:
            log.info("no receipt to %s: %s", sender, e)

    def _take(self, me: str, deliver: dict) -> Received | None:
        sender = _sender_name(deliver["sender"])
        if sender in self.blocked():  # dropped unread: no receipt, no key pinned, no session
            log.info("dropped a message from %s (blocked)", sender)
            return None
        stored = self.store.message(deliver["message_id"])
        if stored is not None:  # a copy of a message already taken: delivery is at least once
            return self._unshown(sender, stored)
        keys, sealed = messages.decode_payload(deliver["payload"])
        with self.store.transaction():
            contact = self.store.contact(sender)
            if keys is not None:
                messages.check_account_key(keys.identity, keys.account_key, keys.account_signature)
                contact = self._pin(sender, keys.identity, keys.account_key)
            if contact is None:
                raise NymchatError(f"a message from unknown {sender} does not open a session")
            plaintext = self._decrypt(sender, contact, sealed)
            inner = messages.decode_inner(plaintext)
            if (inner.sender, inner.recipient, inner.node, inner.message_id) != (
                sender,
                me,
                self.link.contact.key,
                deliver["message_id"],
            ):
                raise NymchatError(
                    f"a message from {sender} is bound to another sender, "
                    "recipient, node or id; ignored"
                )
            if inner.kind == messages.RECEIPT:
                receipted = self.store.message(inner.body) if len(inner.body) == 16 else None
                if receipted is not None and receipted.get("to") == sender:  # theirs only
                    self._set_status(inner.body, "delivered")
                    self.events.emit(ReceiptReceived(sender, inner.body))
                self.store.add_message(
                    sender, inner.message_id, {"direction": "receipt", "for": inner.body.hex()}
                )
                return None
            if inner.kind != messages.TEXT:
                self.store.add_message(sender, inner.message_id, {"direction": "control"})
                self._direct_handshake(sender, contact, inner)
                return None
            text = inner.body.decode("utf-8", "replace")
            self.store.add_message(
                sender,
                inner.message_id,
                {
                    "direction": "in",
                    "from": sender,
                    "text": text,
                    "time": inner.sent,
                    "id": inner.message_id.hex(),
                    "status": "delivered",
                    "shown": False,
                },
            )
            self.store.set_shown(inner.message_id, False)
        received = Received(
            sender, inner.message_id, inner.sent, text, contact["verified"], contact["changed"]
        )
        self.events.emit(received)
        return received

    def _unshown(self, sender: str, record: dict) -> Received | None:
        """A stored message the user has not seen yet (a crash came between storing and
        showing it) comes out again; anything else is a duplicate."""
        if record.get("direction") != "in" or record.get("shown", True):
            return None
        contact = self.store.contact(sender) or {"verified": False, "changed": False}
        return Received(
            sender,
            bytes.fromhex(record["id"]),
            record["time"],
            record["text"],
            contact["verified"],
            contact["changed"],
        )

    def since_last_inbox(self) -> list[Received]:
        """What was received since the last `inbox` asked (whoever took it in: a running
        chat shows it too), each message once: `inbox` through a serving process."""
        with self.store.transaction():
            records, last = self.store.incoming_since(self.store.get(INBOX_CURSOR, 0))
            self.store.put(INBOX_CURSOR, last)
        out = []
        for record in records:
            contact = self.store.contact(record["from"]) or {"verified": False, "changed": False}
            out.append(
                Received(
                    record["from"],
                    bytes.fromhex(record["id"]),
                    record["time"],
                    record["text"],
                    contact["verified"],
                    contact["changed"],
                )
            )
        return out

    def inbox_done(self) -> None:
        """What a one-shot `inbox` took in was reported: `since_last_inbox` starts after."""
        with self.store.transaction():
            self.store.put(INBOX_CURSOR, self.store.last_seq())

    def shown(self, message: Received) -> None:
        """The user has seen `message`: copies of it are duplicates from now on."""
        with self.store.transaction():
            record = self.store.message(message.message_id)
            if record is not None and not record.get("shown", True):
                record["shown"] = True
                self.store.update_message(message.message_id, record)
            self.store.set_shown(message.message_id, True)

    def _decrypt(self, sender: str, contact: dict, sealed: bytes) -> bytes:
        for place, session in enumerate(self._sessions(sender)):
            if sealed[0] != 0 or session.matches(sealed):
                try:
                    plaintext = session.decrypt(sealed)
                except NymchatError:
                    continue
                # A late receipt on an older session (from the copy of a profile that was
                # restored elsewhere since) does not make that session ours again; anything
                # else does, so that two sessions opened at once converge on one.
                self._save_session(sender, session, newest=place == 0 or not _is_receipt(plaintext))
                return plaintext
        if sealed[0] != 0:
            raise NymchatError(f"no session with {sender} opens this message")
        account = self.profile.account()
        account_key = bytes.fromhex(contact.get("new_account_key") or contact["account_key"])
        session, plaintext = account.inbound(account_key, sealed)
        self.profile.save_account(account)  # the one-time key is gone for good
        self._save_session(sender, session)
        return plaintext
