"""The people a profile knows: their keys pinned on first use, a changed key recorded and
blocking until the user trusts it (bound to the safety number they compared), marked
verified, blocked, removed; the access keys they gave us; and the lookups that fetch and
check their keys (anonymous, with proof of work when the node asks for it). Who is who,
by id, is `ContactIds`'s."""

import asyncio
import logging
import os

from nymchat.client import messages
from nymchat.client.contactids import ContactIds
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
from nymchat.protocol import pow, wire
from nymchat.protocol.address import Address
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
    def __init__(self, profile: Profile, ids: ContactIds, sessions: Sessions, events: EventBus):
        self.profile, self.store, self.ids = profile, profile.store, ids
        self.sessions, self.events = sessions, events

    def put(self, contact: Contact) -> None:
        """Stores a contact (within a transaction)."""
        self.store.put_contact(contact.to_record())

    def known(self, username: str) -> Contact:
        """The pinned contact named `username`, or an error saying how to get one. A name
        stored exactly so comes first: a look-alike an older version pinned (`Alice` next
        to `alice`) is named, and removed, on its own."""
        contact = self.ids.get(username) or self.ids.get(self.ids.resolve(username))
        if contact is None:
            raise NotFound(f"no contact '{username}': `nymchat lookup {username}` first")
        return contact

    # --- keys -----------------------------------------------------------------------

    async def lookup(self, given: str | Address, identity: bytes | None = None) -> Contact:
        """Fetches a person's keys at their node (anonymously, through our link to it),
        checks the signature chain and pins them on first use. A different key than the
        pinned one is recorded and blocks sending. `identity`: the one expected (from a
        contact card): keys of another are refused before anything is pinned."""
        contact_id, username, node = self.ids.target(given)
        link = self.ids.link_to(node, self.ids.get(contact_id))
        body = (await self._bundle(link, username)).body
        if body["username"] != username:
            raise NymchatError(
                f"the node answered a lookup of {username} with the keys of "
                "another name; nothing was pinned"
            )
        if identity is not None and body["identity"] != identity:
            raise NymchatError(
                f"the node gave keys for {username} of another identity than the card's "
                "(the card is old, or the node lies); nothing was pinned"
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
            contact = self.pin(contact_id, identity, bundle.account_key, agreement, node)
            if not contact.changed and not self.sessions.has(contact_id):
                self.sessions.open_outbound(contact_id, bundle.account_key, one_time.key)
        return contact

    async def _bundle(self, link: Link, username: str) -> wire.Answer:
        """The node's answer to an anonymous lookup (see `requested_by_name`)."""
        answer = await requested_by_name(link, Kind.LOOKUP, username, "a lookup proof of work")
        if answer.kind is not Kind.BUNDLE:
            raise NymchatError(f"the node answered a lookup of {username} with no keys")
        return answer

    def pin(
        self,
        username: str,
        identity: bytes,
        account_key: bytes,
        agreement: bytes | None = None,
        node: bytes | None = None,
        node_contact: str | None = None,
    ) -> Contact:
        """Pins keys seen for contact id `username` (within a transaction): the first
        ones are trusted; other identity keys are recorded as a change. `agreement`, the
        agreement key the identity signed, goes with its identity. A new contact is
        pinned at `node` (reached through `node_contact` when it is given)."""
        contact = self.ids.get(username)
        if contact is None:
            contact = Contact(
                username,
                identity,
                account_key,
                now_ms(),
                agreement=agreement,
                node=node,
                node_contact=node_contact,
            )
        elif contact.identity != identity:
            log.warning("the key of %s changed", username)
            if contact.new_identity != identity:
                self.events.emit(KeyChangedEvent(username))
            contact.new_identity, contact.new_account_key = identity, account_key
            contact.new_agreement = agreement
        else:
            contact.account_key = account_key  # same person, maybe new device keys
            contact.agreement = agreement or contact.agreement
            contact.node_contact = node_contact or contact.node_contact
        self.put(contact)
        return contact

    def heard_access(self, contact: Contact, access_key: bytes, sent: int) -> None:
        """The access key a message from `contact` carries, kept if it is the latest
        (messages may arrive out of order). Within a transaction."""
        if sent > contact.access_sent and access_key != contact.access_key:
            contact.access_key, contact.access_sent = access_key, sent
            self.put(contact)

    def moved(self, contact: Contact, node: bytes, node_contact: str) -> bool:
        """A contact's own word (checked by the caller) that their home is now `node`,
        reached through `node_contact`: their record follows, and their address there
        names them from now on (within a transaction). False if they were there already."""
        self.ids.moved(contact.username, Address(contact.name, node))
        moving = self.ids.node_of(contact) != node
        contact.node, contact.node_contact = node, node_contact
        self.put(contact)
        return moving

    async def agreement(self, username: str) -> bytes:
        """The key messages to `username` are sealed to: pinned with their identity, or
        (a contact pinned before sealed sending) brought by a lookup. `NotSealable` if
        their nymchat predates it."""
        contact = self.ids.get(username)
        if contact is None or contact.agreement is None:
            contact = await self.lookup(username)
        if contact.agreement is None:
            raise NotSealable(
                f"{username}'s nymchat must be updated before messages to them can be "
                "sealed (it does not publish the key they are sealed to)"
            )
        return contact.agreement

    async def ready(self, given: str | Address) -> Contact:
        """The contact, with a usable session (looked up if needed); raises `KeyChanged`
        while their key change is not trusted."""
        username = self.ids.resolve(given)
        contact = self.ids.get(username)
        if contact is not None and contact.session_broken:
            with self.store.transaction():
                self.sessions.drop(username)
                contact.session_broken = False
                self.put(contact)
            self.events.emit(SessionReset(username))
        if contact is None or not self.sessions.has(username):
            contact = await self.lookup(given)
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
        contact = self.ids.get(username)
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
            me, self.profile.identity.signing_public, contact.name, identity
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
