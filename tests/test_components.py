"""Each engine component alone, its neighbours replaced by dummies that record what they
were told (as magic-wormhole tests its machines): the outbox, contacts, intake and the
event bus. A real profile (sealed store) in a temporary directory; no network."""

import asyncio
import dataclasses
import os
import time

import pytest
from test_client_codecs import version_3

from nymchat import _native
from nymchat.client import messages, ops, registration
from nymchat.client.access import Access
from nymchat.client.access import policy as access_policy
from nymchat.client.access import words as access_words
from nymchat.client.certificate import Certificates
from nymchat.client.contactids import ALIASES, ContactIds, checked
from nymchat.client.contacts import Contacts
from nymchat.client.engine import Engine
from nymchat.client.events import (
    EventBus,
    KeyChangedEvent,
    MessageUnreadable,
    OutboxNotSent,
    ReceiptReceived,
    SessionReset,
    Status,
    StatusChanged,
)
from nymchat.client.intake import Intake
from nymchat.client.keypackages import KeyPackages
from nymchat.client.links import Links
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import NodeRefused, NodeSilent, OfflineLink
from nymchat.client.outbox import DROPPED, FINAL_REFUSALS, Outbox
from nymchat.client.profile import ORIGIN_NODE, Profile
from nymchat.client.records import Direction, Message
from nymchat.client.relay import Relay
from nymchat.client.sessions import Sessions
from nymchat.errors import (
    KeyChanged,
    MessageFailed,
    NotFound,
    NotSealable,
    NymchatError,
    TooLong,
    UsageError,
)
from nymchat.nym import base58
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol import names, pow, wire
from nymchat.protocol.address import Address
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

NODE = _native.Identity.generate()  # the node that certifies every Person's name
NODE_KEY = NODE.signing_public
NODE_CONTACT = NodeContact(
    NODE_KEY,
    (NymAddress(_native.Identity.generate().signing_public, os.urandom(32), NODE_KEY),),
)
DAY = 86_400_000


def certificate(name: str, identity: bytes, node=NODE, expires: int | None = None) -> bytes:
    """A sender certificate from `node` (a week from now unless `expires`)."""
    return wire.encode_certificate(node, name, identity, expires or now_ms() + 7 * DAY)


@pytest.fixture
def homes(tmp_path):
    """Profiles registered under a name, each in a home of its own; closed after."""
    opened: list[Profile] = []

    def make(name: str) -> Profile:
        home = tmp_path / name
        home.mkdir()
        profile = Profile(home, _native.Identity.generate())
        with profile.store.transaction():
            profile.store.put("username", name)
            profile.store.put(ORIGIN_NODE, NODE_KEY.hex())  # registered at NODE
        opened.append(profile)
        return profile

    yield make
    for profile in opened:
        profile.close()


def recorded(bus: EventBus) -> list:
    events: list = []
    bus.subscribe(events.append)
    return events


# --- the outbox -----------------------------------------------------------------------


class RecordingRelay:
    """Hands nothing to any node: records what it was given, or fails with `error`."""

    def __init__(self):
        self.sent: list[tuple[str, int, bytes, bytes]] = []
        self.told: list[str] = []  # of our access key
        self.error: Exception | None = None

    async def send(self, username: str, kind: int, message_id: bytes, body: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((username, kind, message_id, body))

    async def tell_access(self, username: str) -> None:
        if self.error is not None:
            raise self.error
        self.told.append(username)


class DirectStandIn:
    """Direct mode off (or, with `delivers`, on and working): records what it was asked."""

    def __init__(self, delivers: bool = False):
        self.delivers = delivers
        self.asked: list[tuple[str, bytes, str]] = []

    async def deliver(self, username: str, message_id: bytes, text: str) -> bool:
        self.asked.append((username, message_id, text))
        return self.delivers


class ReadyContacts:
    """Every contact is ready to receive; `blocked` names are blocked; `pinned` are the
    contacts there are. Stands in for `Contacts` and its `ids` both."""

    def __init__(self, blocked: set[str] | None = None):
        self.ids = self
        self.readied: list[str] = []
        self._blocked = blocked or set()
        self.pinned: set[str] = set()

    def get(self, username: str):
        return username if username in self.pinned else None

    def resolve(self, name: str) -> str:
        return names.normalize(name)  # everyone at our node

    async def ready(self, username: str) -> None:
        self.readied.append(username)

    def blocked(self) -> set[str]:
        return self._blocked


class OutboxRig:
    def __init__(self, profile: Profile, delivers: bool = False, blocked=None):
        self.bus = EventBus()
        self.events = recorded(self.bus)
        self.relay, self.direct = RecordingRelay(), DirectStandIn(delivers)
        self.contacts = ReadyContacts(blocked)
        self.outbox = Outbox(profile, self.contacts, self.relay, self.direct, None, self.bus)

    def status(self, message_id: bytes) -> Status:
        return self.outbox.message(message_id).status


def test_a_queued_message_waits_and_nothing_leaves(homes):
    rig = OutboxRig(homes("alice"))
    message_id = rig.outbox.queue("Bob", "hello")
    [waiting] = rig.outbox.waiting()
    assert (waiting.id, waiting.peer, waiting.text) == (message_id, "bob", "hello")
    assert waiting.status is Status.QUEUED
    assert rig.events == [StatusChanged(message_id, "bob", Status.QUEUED)]
    assert rig.relay.sent == rig.direct.asked == rig.contacts.readied == []


def test_what_cannot_be_sent_is_never_queued(homes):
    rig = OutboxRig(homes("alice"), blocked={"mallory"})
    with pytest.raises(TooLong):
        rig.outbox.queue("bob", "x" * (messages.MAX_BODY + 1))
    with pytest.raises(NymchatError, match="you blocked mallory"):
        rig.outbox.queue("mallory", "hi")
    assert rig.outbox.waiting() == []


def test_a_delivered_message_is_accepted_and_leaves_the_outbox(homes):
    rig = OutboxRig(homes("alice"))
    message_id = asyncio.run(rig.outbox.send("bob", "hello"))
    assert rig.contacts.readied == ["bob", "bob"]  # before queueing, and before sending
    assert rig.direct.asked == [("bob", message_id, "hello")]  # direct mode first
    assert rig.relay.sent == [("bob", messages.TEXT, message_id, b"hello")]
    assert rig.events == [
        StatusChanged(message_id, "bob", Status.QUEUED),
        StatusChanged(message_id, "bob", Status.ACCEPTED),
    ]
    assert rig.outbox.waiting() == []


def test_a_message_delivered_directly_never_goes_through_the_node(homes):
    rig = OutboxRig(homes("alice"), delivers=True)
    message_id = rig.outbox.queue("bob", "just us")
    asyncio.run(rig.outbox.deliver("bob", message_id, "just us"))
    assert rig.relay.sent == []
    assert rig.outbox.waiting() == []
    assert not any(e.status is Status.ACCEPTED for e in rig.events)  # the node has nothing


@pytest.mark.parametrize("code", sorted(FINAL_REFUSALS))
def test_a_final_refusal_fails_the_message_with_the_nodes_detail(homes, code):
    rig = OutboxRig(homes("alice"))
    message_id = rig.outbox.queue("bob", "hello")
    rig.relay.error = NodeRefused(code, "no way")
    with pytest.raises(MessageFailed) as failed:
        asyncio.run(rig.outbox.deliver("bob", message_id, "hello"))
    assert failed.value.reason == "no way"
    assert rig.events == [
        StatusChanged(message_id, "bob", Status.QUEUED),
        StatusChanged(message_id, "bob", Status.FAILED, "no way"),
    ]
    message = rig.outbox.message(message_id)
    assert (message.status, message.reason) == (Status.FAILED, "no way")
    assert rig.outbox.waiting() == []


@pytest.mark.parametrize(
    "error",
    [NodeRefused(ErrorCode.QUEUE_FULL, "full"), NodeRefused(ErrorCode.BUSY, "busy"), NodeSilent()],
    ids=["queue_full", "busy", "silent"],
)
def test_a_passing_error_leaves_the_message_waiting_until_the_next_flush(homes, error):
    rig = OutboxRig(homes("alice"))
    message_id = rig.outbox.queue("bob", "hello")
    rig.relay.error = error
    assert asyncio.run(rig.outbox.flush()) == 0
    assert rig.events == [
        StatusChanged(message_id, "bob", Status.QUEUED),
        OutboxNotSent(message_id, "bob", str(error), for_good=False),
    ]
    assert [m.id for m in rig.outbox.waiting()] == [message_id]
    assert rig.status(message_id) is Status.QUEUED
    rig.relay.error = None
    assert asyncio.run(rig.outbox.flush()) == 1
    assert rig.events[2:] == [StatusChanged(message_id, "bob", Status.ACCEPTED)]
    assert rig.outbox.waiting() == []


def test_a_final_refusal_on_flush_says_so_for_good(homes):
    rig = OutboxRig(homes("alice"))
    message_id = rig.outbox.queue("nobody", "hello")
    rig.relay.error = NodeRefused(ErrorCode.NOT_FOUND, "no user 'nobody' here")
    assert asyncio.run(rig.outbox.flush()) == 0
    assert rig.events == [
        StatusChanged(message_id, "nobody", Status.QUEUED),
        StatusChanged(message_id, "nobody", Status.FAILED, "no user 'nobody' here"),
        OutboxNotSent(message_id, "nobody", "no user 'nobody' here", for_good=True),
    ]


def test_statuses_move_on_and_never_back(homes):
    rig = OutboxRig(homes("alice"))
    message_id = asyncio.run(rig.outbox.send("bob", "hello"))
    rig.bus.emit(ReceiptReceived("bob", message_id))  # intake's event: the outbox listens
    assert rig.status(message_id) is Status.DELIVERED
    with rig.outbox.store.transaction():
        rig.outbox.set_status(message_id, Status.ACCEPTED)
        rig.outbox.fail(message_id, "too late")
    rig.bus.emit(ReceiptReceived("bob", message_id))  # a copy of the receipt
    assert rig.status(message_id) is Status.DELIVERED
    changes = [e for e in rig.events if isinstance(e, StatusChanged)]
    assert [e.status for e in changes] == [Status.QUEUED, Status.ACCEPTED, Status.DELIVERED]


def test_a_dropped_message_that_arrives_anyway_says_so(homes):
    rig = OutboxRig(homes("alice"))
    message_id = rig.outbox.queue("bob", "hello")
    rig.outbox.drop(message_id.hex())
    rig.bus.emit(ReceiptReceived("bob", message_id))
    assert [(e.status, e.reason) for e in rig.events if isinstance(e, StatusChanged)] == [
        (Status.QUEUED, None),
        (Status.FAILED, DROPPED),
        (Status.DELIVERED, None),
    ]


def test_drop_takes_the_one_waiting_message_its_prefix_names(homes):
    rig = OutboxRig(homes("alice"))
    ids = [rig.outbox.queue("bob", f"message {n}") for n in range(17)]
    first = [i.hex()[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)  # 17 ids, 16 first digits
    with pytest.raises(NymchatError, match=f"waiting messages have an id starting with '{shared}'"):
        rig.outbox.drop(shared)
    with pytest.raises(NotFound):
        rig.outbox.drop("")
    with pytest.raises(NotFound):
        rig.outbox.drop("not hex")
    queued = [StatusChanged(i, "bob", Status.QUEUED) for i in ids]
    assert len(rig.outbox.waiting()) == 17 and rig.events == queued
    dropped = rig.outbox.drop(f"  {ids[3].hex()[:12].upper()} ")
    assert (dropped.id, dropped.status, dropped.reason) == (ids[3], Status.FAILED, DROPPED)
    assert ids[3] not in [m.id for m in rig.outbox.waiting()]
    assert rig.events == [*queued, StatusChanged(ids[3], "bob", Status.FAILED, DROPPED)]
    with pytest.raises(NotFound):
        rig.outbox.drop(ids[3].hex())  # no longer waiting


# --- contacts -------------------------------------------------------------------------


def keys() -> tuple[bytes, bytes]:
    """An identity key and an account key."""
    return _native.Identity.generate().signing_public, os.urandom(32)


class ContactsRig:
    def __init__(self, profile: Profile):
        self.bus = EventBus()
        self.events = recorded(self.bus)
        self.store = profile.store
        links = Links(OfflineLink(None), profile.store, self.bus.emit)
        self.ids = ContactIds(profile, links)
        self.contacts = Contacts(profile, self.ids, Sessions(profile), self.bus)

    def pin(self, username: str, identity: bytes, account_key: bytes):
        with self.store.transaction():
            return self.contacts.pin(username, identity, account_key)


def test_the_first_key_seen_is_pinned_and_new_device_keys_follow(homes):
    rig = ContactsRig(homes("alice"))
    identity, account_key = keys()
    bob = rig.pin("bob", identity, account_key)
    assert (bob.identity, bob.account_key, bob.changed, bob.verified) == (
        identity,
        account_key,
        False,
        False,
    )
    new_device = os.urandom(32)
    bob = rig.pin("bob", identity, new_device)
    assert (bob.account_key, bob.changed) == (new_device, False)
    assert rig.contacts.known("bob").account_key == new_device
    assert rig.events == []


def test_a_changed_key_is_recorded_and_told_once_per_new_key(homes):
    rig = ContactsRig(homes("alice"))
    first, second, third = keys(), keys(), keys()
    rig.pin("bob", *first)
    rig.pin("bob", *second)
    bob = rig.pin("bob", *second)  # seen again: no second event
    assert bob.changed and (bob.identity, bob.new_identity) == (first[0], second[0])
    assert rig.events == [KeyChangedEvent("bob")]
    bob = rig.pin("bob", *third)  # changed again
    assert bob.new_identity == third[0]
    assert rig.events == [KeyChangedEvent("bob")] * 2


def test_trust_pins_exactly_the_key_whose_number_was_compared(homes):
    rig = ContactsRig(homes("alice"))
    first, second, third = keys(), keys(), keys()
    rig.pin("bob", *first)
    with pytest.raises(NymchatError, match="has not changed"):
        rig.contacts.trust("bob", "1" * 60)
    rig.pin("bob", *second)
    bob = rig.contacts.known("bob")
    compared = rig.contacts.new_safety_number(bob)
    assert compared != rig.contacts.safety_number(bob)
    with pytest.raises(KeyChanged):  # the old key's number
        rig.contacts.trust("bob", rig.contacts.safety_number(bob))
    with pytest.raises(UsageError):
        rig.contacts.trust("bob", compared[:10])
    rig.pin("bob", *third)  # it changed again after the numbers were compared
    with pytest.raises(KeyChanged):
        rig.contacts.trust("bob", compared)
    number = rig.contacts.new_safety_number(rig.contacts.known("bob"))
    bob = rig.contacts.trust("bob", number.replace(" ", "-")[:30])  # the first 20 digits do
    assert (bob.identity, bob.account_key, bob.changed) == (*third, False)
    assert rig.contacts.safety_number(bob) == number
    assert rig.contacts.known("bob").identity == third[0]


def test_verified_needs_a_settled_key_and_trust_clears_it(homes):
    rig = ContactsRig(homes("alice"))
    rig.pin("bob", *keys())
    assert rig.contacts.mark_verified("bob").verified
    rig.pin("bob", *keys())
    with pytest.raises(KeyChanged):
        rig.contacts.mark_verified("bob")
    bob = rig.contacts.known("bob")
    bob = rig.contacts.trust("bob", rig.contacts.new_safety_number(bob))
    assert not bob.verified
    assert rig.contacts.mark_verified("bob").verified


def test_blocked_names_are_a_set_of_their_own(homes):
    rig = ContactsRig(homes("alice"))
    with rig.store.transaction():
        rig.contacts.set_blocked("mallory", True)
        rig.contacts.set_blocked("eve", True)
        rig.contacts.set_blocked("mallory", True)
    assert rig.contacts.blocked() == {"mallory", "eve"}
    assert rig.ids.all() == []  # blocking pins nothing
    with rig.store.transaction():
        rig.contacts.set_blocked("eve", False)
    assert rig.contacts.blocked() == {"mallory"}


def test_a_broken_session_is_reset_once_before_the_next_message(homes):
    rig = ContactsRig(homes("alice"))
    rig.pin("bob", *keys())
    rig.contacts.session_broke("bob")
    assert rig.contacts.known("bob").session_broken
    with pytest.raises(NymchatError):  # no session left: a lookup, and this link is offline
        asyncio.run(rig.contacts.ready("bob"))
    assert rig.events == [SessionReset("bob")]
    assert not rig.contacts.known("bob").session_broken


# --- intake ---------------------------------------------------------------------------


class Person:
    """A registered profile with its Olm account, its contacts, sessions and intake."""

    def __init__(self, profile: Profile):
        self.profile, self.name = profile, profile.me()
        account = _native.Account()
        self.one_time_keys = [key for _, key in account.generate_one_time_keys(5)]
        account.mark_keys_as_published()
        with profile.store.transaction():
            profile.save_account(account)
        self.account_key = account.curve25519_key
        self.access_key = os.urandom(32)
        self.bus = EventBus()
        self.events = recorded(self.bus)
        self.sessions = Sessions(profile)
        links = Links(OfflineLink(None), profile.store, self.bus.emit)
        self.ids = ContactIds(profile, links)
        self.contacts = Contacts(profile, self.ids, self.sessions, self.bus)
        self.intake = Intake(profile, self.contacts, self.sessions, self.bus, NODE_KEY)
        self.handshakes: list = []
        # The node's word for the name this profile registered (a later `username`
        # put in its store, to play someone else, does not change it).
        self.certificate = certificate(self.name, profile.identity.signing_public)

    def seal_for(
        self,
        other: "Person",
        text: str = "",
        as_name: str | None = None,
        kind: int = messages.TEXT,
        body: bytes | None = None,
        sealed_as: str | None = None,
        certified: bytes | None = None,
        home: NodeContact = NODE_CONTACT,
        sealed_node: bytes | None = None,
    ):
        """A message to `other` (sealed, as for `as_name` if given, as from `sealed_as`
        if given, with the `certified` certificate if given, from a profile at `home`,
        the sealed layer naming `sealed_node` if given); its id too."""
        name = as_name or other.name
        if not self.sessions.has(name):
            with self.profile.store.transaction():
                self.sessions.open_outbound(name, other.account_key, other.one_time_keys.pop())
        message_id = os.urandom(16)
        body = text.encode() if body is None else body
        sealed = self.sessions.encrypt(
            name,
            kind,
            message_id,
            body,
            home.key,
            self.access_key,
            self.certificate if certified is None else certified,
            str(home),
        )
        if sealed_as is not None:
            sealed = dataclasses.replace(sealed, sender=sealed_as)
        if sealed_node is not None:
            sealed = dataclasses.replace(sealed, node=sealed_node)
        agreement = other.profile.identity.agreement_public
        return message_id, messages.encode_payload(agreement, message_id, sealed)

    def take(self, message_id: bytes, payload: bytes, peer: str | None = None):
        return self.intake.take(message_id, payload, self._handshake, peer)

    def _handshake(self, *args) -> None:
        self.handshakes.append(args)

    def stored(self) -> list[Message]:
        return self.intake.history("alice", 100)


def unreadable(person: Person) -> list[MessageUnreadable]:
    return [e for e in person.events if isinstance(e, MessageUnreadable)]


def test_a_message_is_taken_in_once_and_its_copies_are_not(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    message_id, payload = alice.seal_for(bob, "hello")
    received = bob.take(message_id, payload)
    assert (received.sender, received.message_id, received.text) == ("alice", message_id, "hello")
    assert bob.events == [received]
    pinned = bob.contacts.known("alice")
    assert pinned.identity == alice.profile.identity.signing_public
    assert pinned.agreement == alice.profile.identity.agreement_public  # what to seal to
    assert pinned.access_key == alice.access_key  # how to reach her without work
    # A copy before it was shown comes out again (a crash came between), not stored twice.
    assert bob.take(message_id, payload) == received
    bob.intake.shown(received)
    assert bob.take(message_id, payload) is None
    assert bob.events == [received]
    assert [(m.id, m.text) for m in bob.stored()] == [(message_id, "hello")]


def test_a_blocked_senders_message_is_dropped_unread(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    with bob.profile.store.transaction():
        bob.contacts.set_blocked("alice", True)
    message_id, payload = alice.seal_for(bob, "let me in", sealed_as="Alice")
    assert bob.take(message_id, payload) is None  # her name, however written
    assert bob.events == [] and bob.stored() == []
    assert bob.ids.get("alice") is None  # nothing pinned, no session opened
    assert not bob.sessions.has("alice")


def test_a_message_sealed_for_another_recipient_is_refused(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    message_id, payload = alice.seal_for(bob, "meant for carol", as_name="carol")
    assert bob.take(message_id, payload) is None
    [told] = unreadable(bob)
    assert told.sender == "alice" and "bound to another sender, recipient" in told.reason
    assert bob.stored() == []
    assert bob.ids.get("alice") is None  # nothing of it was kept


def test_a_message_relayed_under_another_id_is_refused(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    _, payload = alice.seal_for(bob, "hello")
    assert bob.take(os.urandom(16), payload) is None  # the sealed layer binds the id
    assert bob.events == [] and bob.ids.get("alice") is None


def test_a_message_sealed_to_someone_else_is_dropped_unread(homes):
    alice, bob, carol = Person(homes("alice")), Person(homes("bob")), Person(homes("carol"))
    message_id, payload = alice.seal_for(carol, "for carol")
    assert bob.take(message_id, payload) is None
    assert bob.events == [] and bob.ids.get("alice") is None


def test_a_direct_packet_sealed_by_another_than_the_channels_peer_is_refused(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    message_id, payload = alice.seal_for(bob, "I am carol")
    assert bob.take(message_id, payload, peer="carol") is None
    [told] = unreadable(bob)
    assert told.sender == "carol" and "sealed as alice's" in told.reason
    assert bob.stored() == [] and bob.ids.get("alice") is None
    received = bob.take(message_id, payload, peer="alice")  # from her own channel: taken
    assert received is not None and received.text == "I am carol"


def test_a_sealed_name_with_another_key_than_the_pinned_one_is_refused(homes):
    """The node vouches for no sender on the way: Mallory can claim to be alice, but
    her certificate names her, so a message with other keys than alice's pinned ones
    changes nothing."""
    alice, bob, mallory = Person(homes("alice")), Person(homes("bob")), Person(homes("mallory"))
    bob.take(*alice.seal_for(bob, "hello"))
    with mallory.profile.store.transaction():
        mallory.profile.store.put("username", "alice")
    message_id, payload = mallory.seal_for(bob, "it is me, alice, on a new phone")
    assert bob.take(message_id, payload) is None
    [told] = unreadable(bob)
    assert told.sender == "alice" and "certified as another's" in told.reason
    contact = bob.contacts.known("alice")
    assert not contact.changed and contact.identity == alice.profile.identity.signing_public
    assert not any(isinstance(e, KeyChangedEvent) for e in bob.events)


def test_a_stranger_claiming_a_name_not_pinned_yet_is_dropped_and_pins_nothing(homes):
    """Mallory, with her own keys and the node's certificate of her own name, claims to
    be carol to bob, who has not met carol: nothing is shown, nothing pinned."""
    bob, mallory = Person(homes("bob")), Person(homes("mallory"))
    with mallory.profile.store.transaction():
        mallory.profile.store.put("username", "carol")
    assert bob.take(*mallory.seal_for(bob, "hi, carol here")) is None
    [told] = unreadable(bob)
    assert told.sender == "carol" and "certified as another's" in told.reason
    assert bob.ids.get("carol") is None and bob.ids.get("mallory") is None
    assert bob.stored() == [] and not bob.sessions.has("carol")


@pytest.mark.parametrize("which", ["another node's", "expired", "none", "for another key"])
def test_a_message_without_a_valid_certificate_of_its_sender_is_dropped(homes, which):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    identity = alice.profile.identity.signing_public
    certified = {
        "another node's": certificate("alice", identity, node=_native.Identity.generate()),
        "expired": certificate(
            "alice", identity, expires=now_ms() - wire.CERTIFICATE_GRACE_MS - 60_000
        ),
        "none": b"",
        "for another key": certificate("alice", os.urandom(32)),
    }[which]
    assert bob.take(*alice.seal_for(bob, "hello", certified=certified)) is None
    [told] = unreadable(bob)
    assert told.sender == "alice"
    assert bob.ids.get("alice") is None and bob.stored() == []
    assert not bob.sessions.has("alice")  # checked before any session was touched


def test_a_certificate_is_checked_on_a_contacts_later_messages_too(homes):
    alice, bob, mallory = Person(homes("alice")), Person(homes("bob")), Person(homes("mallory"))
    bob.take(*alice.seal_for(bob, "hello"))
    identity = alice.profile.identity.signing_public
    for bad in (
        certificate("alice", mallory.profile.identity.signing_public),
        certificate("alice", identity, node=_native.Identity.generate()),
        mallory.certificate,
    ):
        assert bob.take(*alice.seal_for(bob, "again", certified=bad)) is None
    assert len(unreadable(bob)) == 3
    assert bob.take(*alice.seal_for(bob, "and again")).text == "and again"


def test_a_contacts_new_key_attested_by_a_certificate_is_a_key_change(homes):
    """The node certifies alice's name for another key now (she registered again, or
    the node lies): not a silent repin but a change, told, that blocks sending until
    trusted."""
    alice, bob, newalice = Person(homes("alice")), Person(homes("bob")), Person(homes("new"))
    bob.take(*alice.seal_for(bob, "hello"))
    with newalice.profile.store.transaction():
        newalice.profile.store.put("username", "alice")
    new_identity = newalice.profile.identity.signing_public
    newalice.certificate = certificate("alice", new_identity)
    received = bob.take(*newalice.seal_for(bob, "alice, on a new phone"))
    assert received is not None and received.sender == "alice" and received.key_changed
    contact = bob.contacts.known("alice")
    assert contact.changed and contact.new_identity == new_identity
    assert contact.identity == alice.profile.identity.signing_public  # until trusted
    assert KeyChangedEvent("alice") in bob.events
    with pytest.raises(KeyChanged):  # sending to her waits for `trust`
        asyncio.run(bob.contacts.ready("alice"))


def test_the_latest_access_key_of_a_contact_is_kept(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    first = alice.seal_for(bob, "one")
    old_key, alice.access_key = alice.access_key, os.urandom(32)
    time.sleep(0.002)  # (the messages' times tell which is the latest)
    later = alice.seal_for(bob, "two")
    bob.take(*later)
    bob.take(*first)  # late: it carries the key of before
    assert bob.contacts.known("alice").access_key == alice.access_key != old_key
    newest = os.urandom(32)
    time.sleep(0.002)
    assert bob.take(*alice.seal_for(bob, kind=messages.ACCESS, body=newest)) is None
    assert bob.contacts.known("alice").access_key == newest
    assert [m.text for m in bob.stored()] == ["two", "one"]  # the notice is no message


def test_a_receipt_moves_on_only_our_message_to_its_sender(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    bob.take(*alice.seal_for(bob, "hello"))
    ours = Message(os.urandom(16), "alice", Direction.OUT, now_ms(), "hi", Status.ACCEPTED)
    to_carol = Message(os.urandom(16), "carol", Direction.OUT, now_ms(), "hi", Status.ACCEPTED)
    with bob.profile.store.transaction():
        for message in (ours, to_carol):
            bob.profile.store.add_message(message.peer, message.id, message.to_record())
    for acknowledged in (ours.id, to_carol.id):
        receipt = alice.seal_for(bob, kind=messages.RECEIPT, body=acknowledged)
        assert bob.take(*receipt) is None
    assert bob.events[1:] == [ReceiptReceived("alice", ours.id)]


# --- the event bus --------------------------------------------------------------------


def test_two_overlapping_requests_each_collect_only_their_own_events():
    bus = EventBus()
    everything = recorded(bus)
    collected: dict[str, list] = {}

    async def request(name: str, mine: asyncio.Event, theirs: asyncio.Event):
        with bus.scope() as events:
            collected[name] = events
            bus.emit(SessionReset(f"{name}-1"))
            mine.set()
            await theirs.wait()  # the other request emits meanwhile
            await asyncio.create_task(_emit(bus, f"{name}-2"))  # its tasks count as its own
            bus.emit(SessionReset(f"{name}-3"))

    async def main():
        a_went, b_went = asyncio.Event(), asyncio.Event()
        bus.emit(SessionReset("before"))
        await asyncio.gather(request("a", a_went, b_went), request("b", b_went, a_went))
        bus.emit(SessionReset("after"))

    asyncio.run(main())
    for name in ("a", "b"):
        assert collected[name] == [SessionReset(f"{name}-{n}") for n in (1, 2, 3)]
    assert len(everything) == 8  # plain subscribers hear all of it
    assert everything[0] == SessionReset("before") and everything[-1] == SessionReset("after")


async def _emit(bus: EventBus, name: str) -> None:
    await asyncio.sleep(0)
    bus.emit(SessionReset(name))


def test_an_unsubscribed_listener_hears_nothing_more():
    bus = EventBus()
    heard: list = []
    leave = bus.subscribe(heard.append)
    bus.emit(SessionReset("one"))
    leave()
    bus.emit(SessionReset("two"))
    assert heard == [SessionReset("one")]
    with bus.scope() as scoped:
        bus.emit(SessionReset("three"))
    assert scoped == [SessionReset("three")] and heard == [SessionReset("one")]


# --- sealed sends and anonymous lookups -------------------------------------------------


class ScriptedLink:
    """A node that answers each request with what `answer(kind, body)` returns (an
    error code raises as the link does); every request is recorded."""

    online = True

    def __init__(self, answer):
        self.contact = NODE_CONTACT
        self.answer, self.requests = answer, []

    async def request(self, kind: Kind, **body) -> wire.Answer:
        self.requests.append((kind, body))
        reply = self.answer(kind, body)
        if isinstance(reply, ErrorCode):
            raise NodeRefused(reply, "refused")
        kind, answer_body = reply
        return wire.Answer(kind, os.urandom(16), now_ms(), answer_body)


def bundle_answer(person: Person, signed_agreement: bool = True) -> tuple[Kind, dict]:
    """The node's answer to a lookup of `person` (an account from before sealed sending
    has no agreement signature: zeros)."""
    identity = person.profile.identity
    key = registration._signed_key(identity, 7, person.one_time_keys.pop())
    signature = identity.sign("agreement-key", identity.agreement_public)
    bundle = wire.Bundle(
        identity.agreement_public,
        signature if signed_agreement else bytes(64),
        person.account_key,
        identity.sign("account-key", person.account_key),
        (key,),
        key,
    )
    body = {"username": person.name, "identity": identity.signing_public, "bundle": bundle}
    return Kind.BUNDLE, {**body, "strangers": 16}


class Sender:
    """Alice's relay, on a scripted node."""

    def __init__(self, alice: Person, answer):
        self.link = ScriptedLink(answer)
        links = Links(self.link, alice.profile.store, alice.bus.emit)
        ids = ContactIds(alice.profile, links)
        self.contacts = Contacts(alice.profile, ids, alice.sessions, alice.bus)
        self.access = Access(alice.profile.store)
        certificates = Certificates(alice.profile, self.link)
        with alice.profile.store.transaction():
            alice.profile.store.put("certificate", alice.certificate.hex())
        self.relay = Relay(links, alice.sessions, self.contacts, self.access, certificates)

    def sends(self) -> list[dict]:
        return [body for kind, body in self.link.requests if kind is Kind.SEALED_SEND]


def test_a_lookup_pays_the_work_the_node_asks_bound_to_a_new_request(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))

    def node(kind, body):
        if body["proof_of_work"] == 0:
            return Kind.POW_REQUIRED, {"difficulty": 8}
        bound = pow.lookup(NODE_KEY, body["request_id"], body["username"])
        assert pow.check(bound, body["proof_of_work"], 8)
        return bundle_answer(bob)

    sender = Sender(alice, node)
    contact = asyncio.run(sender.contacts.lookup("Bob"))
    assert contact.agreement == bob.profile.identity.agreement_public
    assert [(k, b["username"]) for k, b in sender.link.requests] == [(Kind.LOOKUP, "bob")] * 2
    assert "request_id" not in sender.link.requests[0][1]  # the free one: any id


def test_an_existing_contacts_message_pays_no_work(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    sender = Sender(alice, lambda kind, body: bundle_answer(bob))
    asyncio.run(sender.contacts.lookup("bob"))
    alice.take(*bob.seal_for(alice, "hi alice"))  # bob's message gave alice his access key
    sender.link.answer = lambda kind, body: (Kind.ACCEPTED, {"message_id": body["message_id"]})
    message_id = os.urandom(16)
    asyncio.run(sender.relay.send("bob", messages.TEXT, message_id, b"hello"))
    [send] = sender.sends()
    assert (send["recipient"], send["message_id"]) == ("bob", message_id)
    assert (send["access_key"], send["proof_of_work"]) == (bob.access_key, 0)
    opened = messages.open_payload(bob.profile.identity, message_id, send["payload"])
    assert opened.sender == "alice"  # inside the sealed layer only
    assert b"alice" not in send["payload"]


def test_a_strangers_first_message_pays_the_work_the_recipient_asks(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))

    def node(kind, body):
        if kind is Kind.LOOKUP:
            return bundle_answer(bob)
        if not pow.check(pow.send(NODE_KEY, "bob", body["message_id"]), body["proof_of_work"], 10):
            return Kind.POW_REQUIRED, {"difficulty": 10}
        return Kind.ACCEPTED, {"message_id": body["message_id"]}

    sender = Sender(alice, node)
    # An id whose free nonce 0 does not pass (it would, once in 1024), so work is asked.
    message_id = next(
        m
        for m in iter(lambda: os.urandom(16), None)
        if not pow.check(pow.send(NODE_KEY, "bob", m), 0, 10)
    )
    asyncio.run(sender.relay.send("bob", messages.TEXT, message_id, b"hello stranger"))
    first, second = sender.sends()
    assert (first["access_key"], first["proof_of_work"]) == (None, 0)
    assert second["access_key"] is None and second["payload"] == first["payload"]
    assert pow.check(pow.send(NODE_KEY, "bob", second["message_id"]), second["proof_of_work"], 10)


def test_a_recipient_who_denies_strangers_fails_the_message_with_a_reason(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    sender = Sender(
        alice,
        lambda kind, body: bundle_answer(bob) if kind is Kind.LOOKUP else ErrorCode.FORBIDDEN,
    )
    with pytest.raises(NodeRefused) as refused:
        asyncio.run(sender.relay.send("bob", messages.TEXT, os.urandom(16), b"hi"))
    assert refused.value.code is ErrorCode.FORBIDDEN and refused.value.code in FINAL_REFUSALS
    assert refused.value.detail == "bob takes messages only from people who have written to them"


def test_nothing_is_sealed_to_a_contact_whose_nymchat_predates_sealing(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    sender = Sender(alice, lambda kind, body: bundle_answer(bob, signed_agreement=False))
    contact = asyncio.run(sender.contacts.lookup("bob"))
    assert contact.agreement is None
    with pytest.raises(NotSealable, match="bob's nymchat must be updated"):
        asyncio.run(sender.relay.send("bob", messages.TEXT, os.urandom(16), b"hi"))
    assert sender.sends() == []
    # Pinned before sealed sending (no agreement key): a lookup brings it first.
    with alice.profile.store.transaction():
        alice.profile.store.remove_contact("bob")
        sender.contacts.pin("bob", bob.profile.identity.signing_public, bob.account_key)
    sender.link.answer = lambda kind, body: (
        bundle_answer(bob)
        if kind is Kind.LOOKUP
        else (Kind.ACCEPTED, {"message_id": body["message_id"]})
    )
    asyncio.run(sender.relay.send("bob", messages.TEXT, os.urandom(16), b"hi"))
    kinds = [kind for kind, _ in sender.link.requests]
    assert kinds[-2:] == [Kind.LOOKUP, Kind.SEALED_SEND]
    assert sender.contacts.known("bob").agreement == bob.profile.identity.agreement_public


# --- access keys and the policy for strangers -------------------------------------------


def scripted_node(profile: Profile, expires: int | None = None):
    """A node that certifies `profile`'s name and confirms keys and access."""

    def answer(kind, body):
        if kind is Kind.CERTIFY:
            certified = certificate(
                body["username"], profile.identity.signing_public, NODE, expires
            )
            return Kind.CERTIFIED, {"certificate": certified}
        if kind is Kind.PUBLISH_KEYS:
            return Kind.KEYS_PUBLISHED, {"one_time_keys_left": 1}
        if kind is Kind.PUBLISH_KEY_PACKAGES:
            return Kind.KEY_PACKAGES_PUBLISHED, {"key_packages_left": 20}
        return Kind.ACCESS_SET, {}

    return ScriptedLink(answer)


def test_the_node_is_told_the_access_verifier_and_policy_until_it_confirms(homes):
    profile = homes("alice")
    access = Access(profile.store)
    link = scripted_node(profile)
    account = registration.Registration(
        profile,
        link,
        EventBus(),
        access,
        Certificates(profile, link),
        KeyPackages(profile, link, EventBus()),
    )
    asyncio.run(account.settle())
    (_certify, _), (publish, keys), (set_access, told), (packages, sent) = link.requests
    identity = profile.identity
    assert (publish, keys["one_time_keys"], keys["fallback"]) == (Kind.PUBLISH_KEYS, (), None)
    _native.verify(  # once, for an account registered before sealed sending
        identity.signing_public,
        "agreement-key",
        identity.agreement_public,
        keys["agreement_signature"],
    )
    assert set_access is Kind.SET_ACCESS
    assert told == {"access_verifier": wire.access_verifier(access.key()), "strangers": 16}
    # MLS key packages, once, for an account registered before groups: 20 and a last resort
    assert packages is Kind.PUBLISH_KEY_PACKAGES
    assert (len(sent["key_packages"]), sent["last_resort"] is not None) == (20, True)
    for package in sent["key_packages"]:
        assert _native.mls_key_package_identity(package) == identity.signing_public
    asyncio.run(account.settle())
    assert len(link.requests) == 4  # confirmed: nothing more to tell
    access.set_strangers(access_policy("deny"))
    asyncio.run(account.settle())
    assert link.requests[4:] == [
        (Kind.SET_ACCESS, {"access_verifier": told["access_verifier"], "strangers": 255})
    ]


def test_a_sender_certificate_is_asked_for_when_none_is_held_or_it_expires_within_two_days(
    homes,
):
    profile = homes("alice")
    link = scripted_node(profile, expires=now_ms() + 2 * DAY - 60_000)
    certificates = Certificates(profile, link)
    asyncio.run(certificates.keep())
    asyncio.run(certificates.keep())  # expires within two days: asked for again
    assert [kind for kind, _ in link.requests] == [Kind.CERTIFY] * 2
    link = scripted_node(profile, expires=now_ms() + 2 * DAY + 60_000)
    certificates = Certificates(profile, link)
    asyncio.run(certificates.keep())
    asyncio.run(certificates.keep())
    assert link.requests == [(Kind.CERTIFY, {"username": "alice"})]  # held: not again
    held = wire.decode_certificate(certificates.held(), _native.PublicKey(NODE_KEY), now_ms())
    assert (held.name, held.identity) == ("alice", profile.identity.signing_public)
    assert asyncio.run(certificates.current()) == certificates.held()  # held: used
    expired = certificate("alice", profile.identity.signing_public, expires=now_ms() - 1)
    with profile.store.transaction():
        profile.store.put("certificate", expired.hex())
    renewed = asyncio.run(certificates.current())  # one to seal with: asked for at once
    assert renewed == certificates.held() != expired and len(link.requests) == 2
    link = ScriptedLink(
        lambda kind, body: (
            Kind.CERTIFIED,
            {"certificate": certificate("bob", profile.identity.signing_public)},
        )
    )
    with profile.store.transaction():
        Certificates(profile, link).forget()
    with pytest.raises(wire.WireError):  # the node certified another name: not kept
        asyncio.run(Certificates(profile, link).current())
    assert Certificates(profile, link).held() is None


def test_removing_a_contact_rotates_the_access_key_and_tells_the_others(homes):
    profile = homes("alice")
    engine = Engine.offline(profile)
    with profile.store.transaction():
        for name in ("bob", "carol", "dave"):
            engine.contacts.pin(name, *keys())
    old = engine.access.key()
    engine.access.confirmed(*engine.access.wanted())
    engine.remove("carol")
    new = engine.access.key()
    assert new != old
    assert engine.access.wanted() == (wire.access_verifier(new), 16)  # the node must learn it
    rig = OutboxRig(profile)
    rig.contacts.pinned = {c.username for c in engine.contact_list()}
    rig.relay.error = NodeSilent()
    asyncio.run(rig.outbox.flush())  # the node is away: the notices wait
    assert rig.relay.told == []
    rig.relay.error = None
    asyncio.run(rig.outbox.flush())
    assert rig.relay.told == ["bob", "dave"]
    asyncio.run(rig.outbox.flush())
    assert rig.relay.told == ["bob", "dave"]  # each told once


@pytest.mark.parametrize(
    ("words", "policy"),
    [(("allow",), 0), (("pow",), 16), (("pow", 20), 20), (("pow", 1), 1), (("deny",), 255)],
)
def test_the_policy_for_strangers_in_words(words, policy):
    assert access_policy(*words) == policy
    assert access_words(policy) == ("pow 16" if words == ("pow",) else " ".join(map(str, words)))


@pytest.mark.parametrize("words", [("pow", 0), ("pow", 25), ("allow", 3), ("maybe",)])
def test_a_policy_for_strangers_out_of_bounds_is_refused(words):
    with pytest.raises(UsageError):
        access_policy(*words)


@pytest.mark.parametrize(
    ("argv", "params"),
    [
        ([], {}),
        (["allow"], {"policy": "allow"}),
        (["pow"], {"policy": "pow"}),
        (["pow", "20"], {"policy": "pow", "bits": 20}),
        (["deny", "--json"], {"policy": "deny"}),
    ],
)
def test_contacts_strangers_parses_into_its_api_call(argv, params, monkeypatch):
    from nymchat import cli
    from nymchat.commands import contacts as command

    asked = []
    monkeypatch.setattr(
        "nymchat.client.ops.perform",
        lambda args, method, given: (
            asked.append((method, given)) or {"strangers": "deny", "bits": None, "node_told": True}
        ),
    )
    args = cli.build_parser().parse_args(["contacts", "strangers", *argv])
    assert command.run(args) == 0
    assert asked == [("contacts.strangers", params)]


def test_contacts_strangers_sets_the_policy_the_node_is_told(homes):
    engine = Engine.offline(homes("alice"))
    shown = asyncio.run(ops.call(engine, "contacts.strangers", {}))
    assert shown == {"strangers": "pow 16", "bits": 16, "node_told": False}
    assert not ops.needs_node("contacts.strangers", {})
    assert ops.needs_node("contacts.strangers", {"policy": "deny"})
    denied = asyncio.run(ops.call(engine, "contacts.strangers", {"policy": "deny"}))
    assert denied == {"strangers": "deny", "bits": None, "node_told": False}
    assert engine.access.wanted() == (wire.access_verifier(engine.access.key()), 255)
    with pytest.raises(UsageError):
        asyncio.run(ops.call(engine, "contacts.strangers", {"policy": "pow", "bits": 30}))
    assert engine.strangers() == 255


# --- contact ids across nodes ------------------------------------------------------------


def test_contact_ids_are_bare_names_at_the_origin_node_and_addresses_elsewhere(homes):
    rig = ContactsRig(homes("alice"))
    other = _native.Identity.generate().signing_public
    assert rig.ids.id_of(Address("bob", NODE_KEY)) == "bob"  # as before federation
    elsewhere = rig.ids.id_of(Address("bob", other))
    assert elsewhere == f"bob@{base58.encode(other)}" and rig.ids.resolve(elsewhere) == (elsewhere)
    assert rig.store.get(ALIASES) is None  # nothing to record: the rules give both


def test_a_name_held_by_a_contact_who_moved_gets_a_fresh_alias_id_kept(homes):
    rig = ContactsRig(homes("alice"))
    other = _native.Identity.generate().signing_public
    moved = rig.pin("bob", *keys())  # bob of the origin node...
    with rig.store.transaction():
        moved.node = other  # ...who moved to another node keeps his id
        rig.contacts.put(moved)
    assert rig.ids.id_of(Address("bob", other)) == f"bob@{base58.encode(other)}"
    assert rig.ids.get("bob").node == other
    new_bob = rig.ids.id_of(Address("bob", NODE_KEY))  # another bob, at the origin
    assert new_bob == f"bob@{base58.encode(NODE_KEY)}#2"
    assert rig.ids.id_of(Address("bob", NODE_KEY)) == new_bob  # recorded, stable
    assert rig.store.get(ALIASES) == {str(Address("bob", NODE_KEY)): new_bob}


def test_a_message_from_another_node_is_certified_there_and_kept_under_its_address(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    there = _native.Identity.generate()
    home = NodeContact(there.signing_public, NODE_CONTACT.addresses)
    certified = certificate("alice", alice.profile.identity.signing_public, node=there)
    received = bob.take(*alice.seal_for(bob, "from afar", certified=certified, home=home))
    alice_there = f"alice@{base58.encode(there.signing_public)}"
    assert (received.sender, received.text) == (alice_there, "from afar")
    contact = bob.ids.get(alice_there)
    assert contact.node == there.signing_public and contact.node_contact == str(home)
    assert bob.ids.get("alice") is None  # alice of bob's own node is someone else
    # Certified by bob's node but sealed as from the other: refused, nothing stored.
    assert bob.take(*alice.seal_for(bob, "forged", home=home)) is None
    assert [m.text for m in bob.intake.history(alice_there, 10)] == ["from afar"]


def test_a_message_whose_sealed_node_is_not_the_one_bound_inside_is_dropped(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    there = _native.Identity.generate()
    certified = certificate("alice", alice.profile.identity.signing_public, node=there)
    sealed = alice.seal_for(bob, "moved?", certified=certified, sealed_node=there.signing_public)
    assert bob.take(*sealed) is None  # inside: bound to NODE, not to the certifying node
    assert "bound to another sender, recipient, node or id" in unreadable(bob)[0].reason


def test_a_version_3_message_is_from_the_recipients_own_node(homes):
    alice, bob = Person(homes("alice")), Person(homes("bob"))
    message_id, payload = alice.seal_for(bob, "from before federation")
    sealed = messages.open_payload(bob.profile.identity, message_id, payload)
    old = version_3(bob.profile.identity.agreement_public, message_id, sealed)
    received = bob.take(message_id, old)
    assert (received.sender, received.text) == ("alice", "from before federation")


def test_whom_the_user_types_is_checked_before_anything_is_unlocked():
    key = base58.encode(NODE_KEY)
    assert checked(" Bob ") == "bob" and checked("Bob@Work") == "bob@work"
    assert checked(f"bob@{key}#2") == f"bob@{key}#2"  # a contact's id, given back
    for bad in ("bob@", "bob@w", "b\x1b[2Job", "@work"):
        with pytest.raises(UsageError):
            checked(bad)


def test_a_contact_is_shown_by_the_petname_of_their_node_or_its_key(homes):
    profile = homes("alice")
    with profile.store.transaction():
        profile.store.put("node", str(NODE_CONTACT))  # home: NODE
    rig = ContactsRig(profile)
    named, unnamed = _native.Identity.generate(), _native.Identity.generate()
    rig.ids.nodes.add(
        "work", NodeContact(named.signing_public, NODE_CONTACT.addresses), "manual", 0
    )
    shown = {}
    for node in (NODE_KEY, named.signing_public, unnamed.signing_public):
        contact_id = rig.ids.id_of(Address("bob", node))
        with rig.store.transaction():
            rig.contacts.pin(contact_id, *keys(), node=node)
        shown[node] = rig.ids.display(contact_id)
    assert shown == {
        NODE_KEY: "bob",
        named.signing_public: "bob@work",
        unnamed.signing_public: f"bob@{base58.encode(unnamed.signing_public)[:8]}",
    }
