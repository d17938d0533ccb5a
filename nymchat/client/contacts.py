"""The people a profile knows: their keys pinned on first use, a changed key recorded and
blocking until the user trusts it (bound to the safety number they compared), marked
verified, blocked, removed; the access keys they gave us; and the lookups that fetch and
check their keys (anonymous, with proof of work when the node asks for it)."""

import asyncio
import logging
import os

from nymchat.client import messages
from nymchat.client.events import EventBus, KeyChangedEvent, SessionReset
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import Link
from nymchat.client.profile import Profile
from nymchat.client.records import Contact
from nymchat.client.sessions import Sessions
from nymchat.errors import (
    BadSignature,
    KeyChanged,
    NotFound,
    NotSealable,
    NymchatError,
    UsageError,
)
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
TRUST_DIGITS = 20  # of the safety number, to trust a changed key: 66 bits, not ground out
WORK_ROUNDS = 3  # proofs of work a lookup or claim makes at most (the pool may run lower)
NO_SIGNATURE = bytes(64)  # the node's agreement signature for an account registered before


async def requested_by_name(link: Link, kind: Kind, username: str, what: str) -> wire.Answer:
    """The node's answer to an anonymous request for one of `username`'s keys (`LOOKUP`,
    `CLAIM_KEY_PACKAGE`): free first, then with the proof of work it asks for (bound to
    the request's id, so each proof buys one key)."""
    answer = await link.request(kind, username=username, proof_of_work=0)
    for _ in range(WORK_ROUNDS):
        if answer.kind is not Kind.POW_REQUIRED or link.contact is None:
            break
        request_id = os.urandom(16)
        nonce = await asyncio.to_thread(
            pow.solve,
            pow.lookup(link.contact.key, request_id, username),
            answer.body["difficulty"],
            what,
        )
        answer = await link.request(
            kind, request_id=request_id, username=username, proof_of_work=nonce
        )
    return answer


class Contacts:
    def __init__(self, profile: Profile, sessions: Sessions, link: Link, events: EventBus):
        self.profile, self.store = profile, profile.store
        self.sessions, self.link, self.events = sessions, link, events

    def get(self, username: str) -> Contact | None:
        record = self.store.contact(username)
        return Contact.from_record(record) if record is not None else None

    def all(self) -> list[Contact]:
        return [Contact.from_record(record) for record in self.store.contacts()]

    def put(self, contact: Contact) -> None:
        """Stores a contact (within a transaction)."""
        self.store.put_contact(contact.to_record())

    def known(self, username: str) -> Contact:
        """The pinned contact named `username`, or an error saying how to get one. A name
        stored exactly so comes first: a look-alike an older version pinned (`Alice` next
        to `alice`) is named, and removed, on its own."""
        contact = self.get(username) or self.get(names.normalize(username))
        if contact is None:
            raise NotFound(f"no contact '{username}': `nymchat lookup {username}` first")
        return contact

    # --- keys -----------------------------------------------------------------------

    async def lookup(self, name: str) -> Contact:
        """Fetches NAME's keys, checks the signature chain and pins them on first use.
        A different key than the pinned one is recorded and blocks sending."""
        username = names.normalize(name)
        body = (await self._bundle(username)).body
        if body["username"] != username:
            raise NymchatError(
                f"the node answered a lookup of {username} with the keys of "
                "another name; nothing was pinned"
            )
        identity, bundle = body["identity"], body["bundle"]
        one_time = bundle.one_time_keys[0] if bundle.one_time_keys else bundle.fallback
        agreement = None  # an account registered before sealed sending signed none
        try:
            messages.check_account_key(identity, bundle.account_key, bundle.account_signature)
            messages.check_one_time_key(identity, one_time, fallback=not bundle.one_time_keys)
            if bundle.agreement_signature != NO_SIGNATURE:
                messages.check_agreement_key(
                    identity, bundle.identity_agreement, bundle.agreement_signature
                )
                agreement = bundle.identity_agreement
        except BadSignature:
            raise BadSignature(
                f"the node gave keys for {username} that {username}'s identity "
                "key did not sign (tampered with on the way or by the node); "
                "nothing was pinned or sent"
            ) from None
        with self.store.transaction():
            contact = self.pin(username, identity, bundle.account_key, agreement)
            if not contact.changed and not self.sessions.has(username):
                self.sessions.open_outbound(username, bundle.account_key, one_time.key)
        return contact

    async def _bundle(self, username: str) -> wire.Answer:
        """The node's answer to an anonymous lookup (see `requested_by_name`)."""
        answer = await requested_by_name(self.link, Kind.LOOKUP, username, "a lookup proof of work")
        if answer.kind is not Kind.BUNDLE:
            raise NymchatError(f"the node answered a lookup of {username} with no keys")
        return answer

    def pin(
        self, username: str, identity: bytes, account_key: bytes, agreement: bytes | None = None
    ) -> Contact:
        """Pins keys seen for `username` (within a transaction): the first ones are
        trusted; other identity keys are recorded as a change. `agreement`, the
        agreement key the identity signed, goes with its identity."""
        contact = self.get(username)
        if contact is None:
            contact = Contact(username, identity, account_key, now_ms(), agreement=agreement)
        elif contact.identity != identity:
            log.warning("the key of %s changed", username)
            if contact.new_identity != identity:
                self.events.emit(KeyChangedEvent(username))
            contact.new_identity, contact.new_account_key = identity, account_key
            contact.new_agreement = agreement
        else:
            contact.account_key = account_key  # same person, maybe new device keys
            contact.agreement = agreement or contact.agreement
        self.put(contact)
        return contact

    def heard_access(self, contact: Contact, access_key: bytes, sent: int) -> None:
        """The access key a message from `contact` carries, kept if it is the latest
        (messages may arrive out of order). Within a transaction."""
        if sent > contact.access_sent and access_key != contact.access_key:
            contact.access_key, contact.access_sent = access_key, sent
            self.put(contact)

    async def agreement(self, username: str) -> bytes:
        """The key messages to `username` are sealed to: pinned with their identity, or
        (a contact pinned before sealed sending) brought by a lookup. `NotSealable` if
        their nymchat predates it."""
        contact = self.get(username)
        if contact is None or contact.agreement is None:
            contact = await self.lookup(username)
        if contact.agreement is None:
            raise NotSealable(
                f"{username}'s nymchat must be updated before messages to them can be "
                "sealed (it does not publish the key they are sealed to)"
            )
        return contact.agreement

    async def ready(self, username: str) -> Contact:
        """The contact, with a usable session (looked up if needed); raises `KeyChanged`
        while their key change is not trusted."""
        contact = self.get(username)
        if contact is not None and contact.session_broken:
            with self.store.transaction():
                self.sessions.drop(username)
                contact.session_broken = False
                self.put(contact)
            self.events.emit(SessionReset(username))
        if contact is None or not self.sessions.has(username):
            contact = await self.lookup(username)
        if contact.changed:
            raise KeyChanged(
                f"{username}'s key changed since you pinned it: compare the new "
                f"key's safety number (`nymchat contacts verify {username}`) "
                f"with theirs, then `nymchat contacts trust {username} NUMBER`; "
                "nothing was sent"
            )
        return contact

    def session_broke(self, username: str) -> None:
        """The next message to `username` starts a new session."""
        contact = self.get(username)
        if contact is not None:
            contact.session_broken = True
            with self.store.transaction():
                self.put(contact)

    # --- trust ----------------------------------------------------------------------

    def safety_number(self, contact: Contact) -> str:
        """The safety number with the contact's pinned key."""
        return self._number(contact, contact.identity)

    def new_safety_number(self, contact: Contact) -> str | None:
        """While the contact's key has changed: the number with the new key, the one
        `trust` would pin. None otherwise."""
        return self._number(contact, contact.new_identity) if contact.new_identity else None

    def _number(self, contact: Contact, identity: bytes) -> str:
        me = self.profile.me()
        return messages.safety_number(
            me, self.profile.identity.signing_public, contact.username, identity
        )

    def trust(self, username: str, number: str) -> Contact:
        """Accepts a contact's changed key: exactly the key whose safety number (all of it,
        or at least its first `TRUST_DIGITS` digits) the user gives, so a key that changed
        again after the user compared numbers is never the one pinned. Sending works
        again, with a new session; the contact is no longer marked verified."""
        contact = self.known(username)
        name = contact.username
        new_number = self.new_safety_number(contact)
        new_identity, new_account_key = contact.new_identity, contact.new_account_key
        if new_number is None or new_identity is None or new_account_key is None:
            raise UsageError(f"{name}'s key has not changed; nothing to trust")
        given = "".join(number.replace("-", " ").split())
        if not given.isdigit() or len(given) < TRUST_DIGITS:
            raise UsageError(
                f"give the safety number of {name}'s new key (at least its first "
                f"{TRUST_DIGITS // 5} groups) as `nymchat contacts verify {name}` shows it"
            )
        if not new_number.replace(" ", "").startswith(given):
            raise KeyChanged(
                f"that is not the safety number of {name}'s new key (did it change "
                f"again?); nothing was trusted: run `nymchat contacts verify {name}` and "
                "compare again"
            )
        contact.identity, contact.account_key = new_identity, new_account_key
        contact.agreement, contact.access_key = contact.new_agreement, None
        contact.new_identity = contact.new_account_key = contact.new_agreement = None
        contact.verified, contact.pinned = False, now_ms()
        with self.store.transaction():
            self.put(contact)
            self.sessions.drop(name)
        return contact

    def mark_verified(self, username: str) -> Contact:
        contact = self.known(username)
        if contact.changed:
            raise KeyChanged(f"{contact.username}'s key changed: trust the new key first")
        contact.verified = True
        with self.store.transaction():
            self.put(contact)
        return contact

    # --- blocking and removal -------------------------------------------------------

    def blocked(self) -> set[str]:
        """The names whose messages are taken in, acknowledged and dropped unread."""
        return set(self.store.get("blocked", []))

    def set_blocked(self, username: str, blocked: bool) -> None:
        """Within a transaction."""
        names_ = self.blocked() | {username} if blocked else self.blocked() - {username}
        self.store.put("blocked", sorted(names_))

    def remove(self, username: str) -> None:
        """Forgets a contact with their sessions and the conversation (within a
        transaction); a block stays."""
        self.store.remove_contact(username)
