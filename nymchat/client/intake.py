"""Taking in one end-to-end message, from the node or a direct peer: its sealed layer
opened (the sender's name is only in there: the node does not know it), the name
checked against the node's certificate it carries (before any session is touched),
blocked senders dropped, copies recognised (delivery is at least once), opened with the
sender's session, bound to sender, recipient, node and id, and stored before it is
shown. A receipt moves our message on; a direct-mode handshake goes to its handler; the
sender's access key is kept. Also what the user has and has not seen."""

import logging
from collections.abc import Callable
from typing import Any

from nymchat import _native
from nymchat.client import messages
from nymchat.client.contacts import Contacts
from nymchat.client.events import (
    ContactMoved,
    EventBus,
    MessageReceived,
    MessageUnreadable,
    ReceiptReceived,
)
from nymchat.client.messages import now_ms
from nymchat.client.profile import Profile
from nymchat.client.records import Contact, Direction, Message, name_of
from nymchat.client.sessions import Sessions
from nymchat.errors import BadSignature, NymchatError, SessionBroken
from nymchat.protocol import names, wire
from nymchat.protocol.address import Address

log = logging.getLogger(__name__)
INBOX_CURSOR = "inbox-reported"  # the last stored message an `inbox` reported
# Called with (sender, contact, inner message) for a direct-mode handshake message.
Handshake = Callable[[str, Contact, messages.Inner], None]
# Called with a group invite taken in, after the transaction that took it.
Invited = Callable[[messages.Invite], None]


def sender_name(name: str) -> str:
    """A sender's name from the sealed layer, normalised exactly as a name the user types, so that
    `Alice` is alice (her pinned key, her sessions) and never a contact of its own; an
    invalid one (escape codes, say) is refused and the message dropped."""
    try:
        return names.normalize(name)
    except names.InvalidName as e:
        raise NymchatError(f"the sender's name is not valid: {e}") from None


class Intake:
    def __init__(
        self,
        profile: Profile,
        contacts: Contacts,
        sessions: Sessions,
        events: EventBus,
        node_key: bytes | None,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.sessions = contacts, sessions
        self.events, self.node_key = events, node_key
        self.invited: Invited = lambda invite: None  # set by whoever joins groups

    def take(
        self,
        message_id: bytes,
        payload: bytes,
        handshake: Handshake,
        peer: str | None = None,
        received: int | None = None,
    ) -> MessageReceived | None:
        """A text message taken in (stored, not yet shown), or None: a receipt, a
        handshake, a group invite (the group joined), a copy already shown, a blocked
        sender, or what does not open (told as `MessageUnreadable` once its sender is
        known). From a direct `peer`, the sealed
        sender must be them. `received`: when the node took it (ms), which its sender's
        certificate must have been valid at (else now)."""
        try:
            sealed = messages.open_payload(self.profile.identity, message_id, payload)
        except (NymchatError, wire.WireError) as e:  # anyone may send us bytes: not told
            log.info("a message not sealed to us, or malformed, was dropped: %s", e)
            return None
        sender = sealed.sender
        try:
            name = sender_name(sender)
            # Version 3 (before federation) named no node: the sender's was ours.
            node = sealed.node or self.node_key
            if node is None:
                raise NymchatError("no node to check the sender's certificate with")
            address = Address(name, node)
            sender = self.contacts.ids.id_of(address)  # whom it claims to be, to tell of it
            received = received or now_ms()
            certificate = wire.decode_certificate(
                sealed.certificate, _native.PublicKey(node), received
            )
            sender = self.contacts.ids.sender_id(address, certificate.identity, sender)
            if peer is not None and sender != peer:
                raise NymchatError(f"a direct message from {peer} is sealed as {sender}'s")
            return self._take(sender, node, message_id, sealed, certificate, handshake)
        except (NymchatError, wire.WireError) as e:
            self.unreadable(peer or sender, e)
            return None

    def _take(
        self,
        sender: str,
        node: bytes,
        message_id: bytes,
        sealed: messages.Sealed,
        certificate: wire.Certificate,
        handshake: Handshake,
    ) -> MessageReceived | None:
        """`sender`: the contact id of the sealed name at `node`, their home node, whose
        `certificate` the message carries (its signature checked)."""
        me = self.profile.me()
        if sender in self.contacts.blocked():  # dropped unread: no receipt, no key, no session
            log.info("dropped a message from %s (blocked)", sender)
            return None
        self._check_certificate(sender, certificate, sealed, self.contacts.ids.get(sender))
        stored = self.store.message(message_id)
        if stored is not None:
            return self._unshown(stored)
        invite, message = None, None
        with self.store.transaction():
            contact = self.contacts.ids.get(sender)
            if sealed.keys is not None:
                contact = self._pin(sender, contact, sealed, node)
            assert contact is not None  # `_check_certificate` refused a stranger without keys
            olm = sealed.session_message
            inner = messages.decode_inner(self.sessions.decrypt(sender, contact, olm))
            if (inner.sender, inner.recipient, inner.node, inner.message_id) != (
                name_of(sender),
                me,
                node,
                message_id,
            ):
                raise NymchatError(
                    f"a message from {sender} is bound to another sender, "
                    "recipient, node or id; ignored"
                )
            access_key = inner.body if inner.kind == messages.ACCESS else inner.access_key
            if len(access_key) != 32:
                raise wire.WireError("an access key of the wrong size")
            self.contacts.heard_access(contact, access_key, inner.sent)
            if inner.kind == messages.RECEIPT:
                self._receipt(sender, inner)
                return None
            if inner.kind != messages.TEXT:
                self.store.add_message(sender, message_id, {"direction": Direction.CONTROL})
                if inner.kind == messages.MOVED:
                    self._moved(contact, node, inner.body)
                elif inner.kind == messages.GROUP_INVITE:
                    invite = messages.decode_invite(inner.body)
                elif inner.kind != messages.ACCESS:
                    handshake(sender, contact, inner)
            else:
                text = inner.body.decode("utf-8", "replace")
                message = Message(message_id, sender, Direction.IN, inner.sent, text, shown=False)
                self.store.add_message(sender, message_id, message.to_record())
                self.store.set_shown(message_id, False)
        if invite is not None:  # joined in transactions of its own
            self.invited(invite)
        if message is None:
            return None
        received = self._received(message, contact)
        self.events.emit(received)
        return received

    def _check_certificate(
        self,
        sender: str,
        certificate: wire.Certificate,
        sealed: messages.Sealed,
        contact: Contact | None,
    ) -> None:
        """The name inside is only claimed; the certificate of the sender's home node
        it carries says whose it is: it must name the sender, and the identity the
        message uses (the keys of a session-opening message, else the contact's pinned
        one). Checked before any session is touched."""
        if sender_name(certificate.name) != name_of(sender):
            raise NymchatError(f"a message sealed as {sender}'s is certified as another's")
        if sealed.keys is not None:
            uses: tuple[bytes | None, ...] = (sealed.keys.identity,)
        elif contact is not None:
            uses = (contact.identity, contact.new_identity)
        else:
            raise NymchatError(f"a message from unknown {sender} does not open a session")
        if certificate.identity not in uses:
            raise NymchatError(f"a message sealed as {sender}'s is certified for another key")

    def _pin(
        self, sender: str, contact: Contact | None, sealed: messages.Sealed, node: bytes
    ) -> Contact:
        """The keys a session-opening message carries, checked and pinned (within a
        transaction), with the sender's node and how to reach it. The node's certificate
        said they are the sender's: other keys than a contact's pinned ones are a key
        change (told, and blocking sends until trusted)."""
        keys = sealed.keys
        assert keys is not None
        messages.check_account_key(keys.identity, keys.account_key, keys.account_signature)
        messages.check_agreement_key(keys.identity, keys.agreement, keys.agreement_signature)
        return self.contacts.pin(
            sender, keys.identity, keys.account_key, keys.agreement, node, sealed.node_contact
        )

    def _moved(self, contact: Contact, node: bytes, body: bytes) -> None:
        """A contact says their home is `node` now (within the transaction that took the
        message in): signed by their pinned identity, their record follows."""
        try:
            node_contact = messages.open_moved(body, contact.name, contact.identity, node)
        except (wire.WireError, BadSignature) as e:
            raise NymchatError(f"a move that does not hold ({e}); ignored") from None
        if self.contacts.moved(contact, node, node_contact):
            self.events.emit(ContactMoved(contact.username))

    def _receipt(self, sender: str, inner: messages.Inner) -> None:
        """A receipt for one of our messages to `sender` (theirs only): the outbox, a
        subscriber, moves it on within this transaction."""
        ours = self.store.message(inner.body) if len(inner.body) == 16 else None
        if ours is not None and ours.get("direction") == Direction.OUT and ours.get("to") == sender:
            self.events.emit(ReceiptReceived(sender, inner.body))
        self.store.add_message(
            sender, inner.message_id, {"direction": Direction.RECEIPT, "for": inner.body.hex()}
        )

    def was_taken(self, message_id: bytes) -> bool:
        """Whether a text message with this id was taken in already."""
        record = self.store.message(message_id)
        return record is not None and record.get("direction") == Direction.IN

    def unreadable(self, sender: str, error: Exception) -> None:
        """A message that does not open: if the session is at fault, the next message to
        the sender starts a new one."""
        log.info("a message from %s could not be read: %s", sender, error)
        self.events.emit(MessageUnreadable(sender, str(error)))
        if isinstance(error, SessionBroken):
            self.contacts.session_broke(sender)

    def _received(self, message: Message, contact: Contact | None) -> MessageReceived:
        if message.author is not None:  # a group's (its trust is told when it arrives)
            return MessageReceived(
                message.author,
                message.id,
                message.time,
                message.text,
                False,
                False,
                message.peer.removeprefix("#"),
            )
        return MessageReceived(
            message.peer,
            message.id,
            message.time,
            message.text,
            bool(contact and contact.verified),
            bool(contact and contact.changed),
        )

    def _unshown(self, record: dict[str, Any]) -> MessageReceived | None:
        """A stored message the user has not seen yet (a crash came between storing and
        showing it) comes out again; anything else is a duplicate."""
        if record.get("direction") != Direction.IN or record.get("shown", True):
            return None
        message = Message.from_record(record)
        return self._received(message, self.contacts.ids.get(message.peer))

    def never_shown(self) -> list[MessageReceived]:
        """Messages stored but not shown when the last process stopped (it died between
        taking a message and showing it)."""
        return [m for record in self.store.unshown() if (m := self._unshown(record)) is not None]

    def still_unshown(self, message_id: bytes) -> bool:
        record = self.store.message(message_id)
        return record is not None and not record.get("shown", True)

    def shown(self, message: MessageReceived) -> None:
        """The user has seen `message`: copies of it are duplicates from now on."""
        with self.store.transaction():
            record = self.store.message(message.message_id)
            if record is not None and not record.get("shown", True):
                record["shown"] = True
                self.store.update_message(message.message_id, record)
            self.store.set_shown(message.message_id, True)

    def since_last_inbox(self) -> list[MessageReceived]:
        """What was received since the last `inbox` asked (whoever took it in: a running
        chat shows it too), each message once: `inbox` through a serving process."""
        with self.store.transaction():
            records, last = self.store.incoming_since(self.store.get(INBOX_CURSOR, 0))
            self.store.put(INBOX_CURSOR, last)
        return [
            self._received(m, self.contacts.ids.get(m.peer))
            for m in map(Message.from_record, records)
        ]

    def inbox_done(self) -> None:
        """What a one-shot `inbox` took in was reported: `since_last_inbox` starts after."""
        with self.store.transaction():
            self.store.put(INBOX_CURSOR, self.store.last_seq())

    def history(self, username: str, last: int) -> list[Message]:
        """The conversation with `username`, its last `last` messages, oldest first (the
        store also keeps receipts and handshakes: they are not counted)."""
        limit = max(last, 1)
        while True:
            records = self.store.history(username, limit)
            said = [r for r in records if r.get("direction") in (Direction.IN, Direction.OUT)]
            if len(said) >= last or len(records) < limit:
                return [Message.from_record(r) for r in said[len(said) - last :]] if last else []
            limit *= 2
