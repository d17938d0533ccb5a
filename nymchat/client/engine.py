"""The client engine: what a profile does, built from small components that each do one
job, wired here and nowhere else. Faces (the commands, the chat, the control socket and
JSON-RPC API, the demo, the benchmarks) use this class's public methods and its `events`
only; they render the typed events (nymchat/client/events.py) in their own words.

    Sessions      end-to-end sessions (Olm): open, seal, open messages, keep the ratchets
    ContactIds    who is who: the contacts kept by id, the id of an address, how shown
    Contacts      keys pinned on first use, lookups, changes, trust, verified, blocked
    Access        our access key and policy for strangers (who reaches us without work)
    Certificates  the node's certificate of our name, carried by every sealed message
    Relay         a sealed message handed to the recipient's node, sender unknown to it
    Links         the link home and anonymous-only links to contacts' nodes
    Intake        one message taken in: checked, opened, deduplicated, stored
    DirectPaths   direct mode: the handshake and the paths that bypass the node
    DirectIntake  direct packets coming in, checked before any session is touched
    Outbox        queued → accepted → delivered, or failed; retries
    Inbox         fetching and following what the node pushes; acks and receipts
    Registration  the name at the node and the published keys
    HomeMove      the account moved to another node, every contact told
    KeyPackages   the MLS member and its key packages at the node
    GroupRecords  the groups we are in, sealed, with their live MLS state
    GroupIntake   a group's log entries taken in: joins, commits, messages
    Groups        creating and changing groups, sending to them
    GroupCommits  a change committed to a group's log; conflicts retried
    GroupNode     key packages claimed and group posts made at the node (for the two above)
    GroupWatch    the logs of groups kept at other nodes, watched anonymously

An engine is opened online (with a `NodeLink`) or offline (`Engine.offline`, an
`OfflineLink` that refuses every request): commands that only read or change the profile
never touch the network.
"""

from collections.abc import AsyncGenerator, Callable

from nymchat.client.access import Access
from nymchat.client.certificate import Certificates
from nymchat.client.contactids import ContactIds
from nymchat.client.contacts import Contacts
from nymchat.client.direct import DirectPhase
from nymchat.client.directintake import DirectIntake
from nymchat.client.directpaths import DirectPaths
from nymchat.client.events import (
    AddressChanged,
    EventBus,
    MessageReceived,
    NymClientBack,
    NymClientLost,
)
from nymchat.client.groupcommits import GroupCommits
from nymchat.client.groupintake import GroupIntake
from nymchat.client.groupnode import GroupNode
from nymchat.client.grouprecords import GroupRecords
from nymchat.client.groups import UPDATE_AFTER, Groups, group_name
from nymchat.client.groupwatch import GroupWatch
from nymchat.client.inbox import INBOX_LIMIT, Inbox
from nymchat.client.intake import Intake
from nymchat.client.keypackages import KeyPackages
from nymchat.client.links import Links
from nymchat.client.moving import HomeMove, Moved
from nymchat.client.nodelink import Link, NodeLink, OfflineLink
from nymchat.client.outbox import Outbox
from nymchat.client.profile import Profile
from nymchat.client.records import Contact, DirectStatus, Group, Message
from nymchat.client.registration import Registration
from nymchat.client.relay import Relay
from nymchat.client.sessions import Sessions
from nymchat.errors import NotFound, StillQueued, Unreachable
from nymchat.protocol.address import Address, short_key


class Engine:
    def __init__(self, profile: Profile, link: Link, group_update_after: int = UPDATE_AFTER):
        """`group_update_after`: messages we send to a group between our key updates."""
        self.profile, self.link, self.events = profile, link, EventBus()
        self.links = Links(link, profile.store, self.events.emit)
        self.sessions = Sessions(profile)
        self.contact_ids = ContactIds(profile, self.links)
        self.contacts = Contacts(profile, self.contact_ids, self.sessions, self.events)
        self.access = Access(profile.store)
        self.certificates = Certificates(profile, link)
        self.relay = relay = Relay(
            self.links, self.sessions, self.contacts, self.access, self.certificates
        )
        node_key = link.contact.key if link.contact is not None else None
        self.intake = Intake(profile, self.contacts, self.sessions, self.events, node_key)
        self.direct = DirectPaths(profile, self.contacts, relay, link, self.events)
        self.direct_intake = DirectIntake(self.direct, self.intake, link)
        self.key_packages = KeyPackages(profile, link, self.events)
        records = GroupRecords(profile.store)
        self.group_intake = GroupIntake(
            profile,
            self.contact_ids,
            self.key_packages,
            records,
            self.events,
            lambda group_id: self.group_commits.commit_soon(group_id),
        )
        self.intake.invited = self.group_intake.invited
        group_node = GroupNode(self.contact_ids, relay)
        self.group_commits = GroupCommits(
            profile,
            self.contact_ids,
            self.access,
            self.key_packages,
            records,
            self.group_intake,
            group_node,
            lambda done, limit: self.incoming.catch_up(done, limit),
            lambda usernames, body: self.outbox.invite(usernames, body),
        )
        self.group_ops = Groups(
            profile,
            self.contact_ids,
            self.key_packages,
            records,
            self.group_intake,
            group_node,
            self.group_commits,
            lambda done, limit: self.incoming.catch_up(done, limit),
            group_update_after,
        )
        self.outbox = Outbox(
            profile, self.contacts, relay, self.direct, self.group_ops, self.events
        )
        self.registration = Registration(
            profile, link, self.events, self.access, self.certificates, self.key_packages
        )
        self.incoming = Inbox(
            link,
            self.intake,
            self.direct,
            self.direct_intake,
            self.outbox,
            self.registration,
            self.events,
            self.group_intake,
            self.key_packages,
            GroupWatch(
                self.group_commits, self.group_intake, records, self.key_packages, self.events
            ),
        )
        self.home_move = HomeMove(
            profile, self.links, self.contacts, self.registration, self.outbox, self.incoming
        )

        if isinstance(link, NodeLink):
            link.transport.on_change = self._nym_client_changed
            link.attach(profile.store, self.events.emit)  # its frontends, kept in the profile

    def _nym_client_changed(self, change: str) -> None:
        if change == "disconnected":
            self.events.emit(NymClientLost())
            return
        address = self.link.transport.address if isinstance(self.link, NodeLink) else None
        if change == "address-changed" and address is not None:
            self.events.emit(AddressChanged(str(address)))
        self.events.emit(NymClientBack())
        self.incoming.wake.set()  # hand the node (and direct peers) fresh SURBs

    @classmethod
    def offline(cls, profile: Profile) -> "Engine":
        return cls(profile, OfflineLink(profile.node))

    @property
    def online(self) -> bool:
        return self.link.online

    @property
    def latency(self) -> float | None:
        """Seconds from request to answer of the last request to the node."""
        return self.link.latency

    @property
    def username(self) -> str | None:
        return self.profile.username

    async def aclose(self) -> None:
        await self.incoming.watch.aclose()
        await self.group_commits.aclose()
        await self.direct.aclose()
        self.direct_intake.close()
        self.links.close()

    # --- the account ----------------------------------------------------------------

    async def register(self, name: str, on_work: Callable[[int], None] | None = None) -> str:
        return await self.registration.register(name, on_work)

    async def move(self, name: str, on_work: Callable[[int], None] | None = None) -> Moved:
        """Moves the account to this engine's node (`HomeMove`)."""
        return await self.home_move.move(name, on_work)

    async def unregister(self) -> str:
        return await self.registration.unregister()

    async def replenish(self, one_time: bool = True, fallback: bool = False) -> int:
        return await self.registration.replenish(one_time, fallback)

    # --- contacts -------------------------------------------------------------------

    async def lookup(self, name: str | Address, identity: bytes | None = None) -> Contact:
        """A person's keys, fetched at their node: `name` typed (`bob`, `bob@petname`),
        a contact's id, or an `Address`; refused unless of `identity`, if given."""
        return await self.contacts.lookup(name, identity)

    def known(self, name: str) -> Contact:
        return self.contacts.known(name)

    def contact(self, name: str) -> Contact | None:
        return self.contact_ids.get(self.contact_ids.resolve(name))

    def display(self, contact_id: str) -> str:
        """A contact's id as the person is shown it (see `ContactIds.display`)."""
        return self.contact_ids.display(contact_id)

    def node_name(self, node: bytes) -> str:
        """How a node is shown: the petname the person gave it, else the start of its key."""
        known = self.contact_ids.nodes.by_key(node)
        return known.petname if known is not None else short_key(node)

    def contact_list(self) -> list[Contact]:
        return self.contact_ids.all()

    def safety_number(self, contact: Contact) -> str:
        return self.contacts.safety_number(contact)

    def new_safety_number(self, contact: Contact) -> str | None:
        return self.contacts.new_safety_number(contact)

    def trust(self, name: str, number: str) -> Contact:
        return self.contacts.trust(name, number)

    def mark_verified(self, name: str) -> Contact:
        return self.contacts.mark_verified(name)

    def blocked(self) -> set[str]:
        return self.contacts.blocked()

    def block(self, name: str) -> str:
        """Blocks a name (a contact or not: nothing is pinned). Local only: the node and
        they are told nothing. Direct mode with them is forgotten without a word (their
        direct packets are then a stranger's), and what waits for them fails."""
        username = self.contact_ids.resolve(name)
        with self.profile.store.transaction():
            self.contacts.set_blocked(username, True)
            self.direct.forget(username)
            self.outbox.fail_all_to(username, f"you blocked {username}")
        return username

    def unblock(self, name: str) -> str:
        username = self.contact_ids.resolve(name)
        if username not in self.contacts.blocked():
            raise NotFound(f"{username} is not blocked")
        with self.profile.store.transaction():
            self.contacts.set_blocked(username, False)
        return username

    def remove(self, username: str) -> None:
        """Forgets a contact with their sessions and the conversation (what waited for
        them with it); a block stays. Our access key changes, so that they need proof of
        work again: the node and the remaining contacts are told at the next connection
        (`flush_outbox`)."""
        with self.profile.store.transaction():
            self.contacts.remove(username)
            self.access.rotate()
            self.outbox.tell_access(sorted(self.profile.store.pinned_names()))
        self.outbox.prune()

    def strangers(self) -> int:
        """What strangers' first messages need (`access.words` says it)."""
        return self.access.strangers

    async def set_strangers(self, strangers: int) -> None:
        """Sets the policy for strangers and, online, tells the node (else the next
        connection does)."""
        self.access.set_strangers(strangers)
        if self.online:
            await self.registration.settle()

    # --- messages -------------------------------------------------------------------

    async def send(self, name: str | Address, text: str) -> bytes:
        """See `lookup` for whom `name` may be. A message left queued because the node did
        not answer has `follow` try the node now (and say so when it still does not),
        rather than at its next refresh."""
        try:
            return await self.outbox.send(name, text)
        except StillQueued as e:
            if e.kind == Unreachable.kind:
                self.retry_node()
            raise

    def queue(self, name: str, text: str) -> bytes:
        return self.outbox.queue(name, text)

    def waiting(self) -> list[Message]:
        return self.outbox.waiting()

    def drop(self, prefix: str) -> Message:
        return self.outbox.drop(prefix)

    async def deliver(self, username: str, message_id: bytes, text: str) -> None:
        """Sends a message `queue` stored (see `Outbox.deliver`)."""
        await self.outbox.deliver(username, message_id, text)

    async def flush_outbox(self) -> int:
        """Tells the node what it lacks of the account (`Registration.settle`), then
        sends what waits."""
        await self.registration.settle()
        return await self.outbox.flush()

    def flush_soon(self) -> None:
        """Starts sending what waits, in the background (a serving process, on request).
        What is left waiting has `follow` try the node now (and say so when it still does
        not answer), rather than at its next refresh."""

        async def flush() -> None:
            await self.outbox.flush()
            if self.outbox.waiting():
                self.retry_node()

        self.direct.soon(flush())

    def message(self, message_id: bytes) -> Message | None:
        return self.outbox.message(message_id)

    def history(self, name: str, last: int = 100) -> list[Message]:
        """A contact's conversation, or a group's ("#name")."""
        if name.startswith("#"):
            name = "#" + group_name(name)
        return self.intake.history(name, last)

    async def inbox(self, quiet: float = 1.5, limit: float = INBOX_LIMIT) -> list[MessageReceived]:
        self.profile.me()
        return await self.incoming.inbox(quiet, limit)

    def follow(self, refresh_every: float = 60.0) -> AsyncGenerator[MessageReceived]:
        """Messages as they arrive, for as long as it runs (see `Inbox.follow`)."""
        self.profile.me()
        return self.incoming.follow(refresh_every)

    def retry_node(self) -> None:
        """`follow` tries the node again now instead of at its next retry."""
        self.incoming.wake.set()

    @property
    def node_answers(self) -> bool:
        """False while `follow` cannot reach the node."""
        return self.incoming.node_answers

    def shown(self, message: MessageReceived) -> None:
        self.intake.shown(message)

    def since_last_inbox(self) -> list[MessageReceived]:
        return self.intake.since_last_inbox()

    def inbox_done(self) -> None:
        self.intake.inbox_done()

    # --- groups ---------------------------------------------------------------------
    # A group is named as usernames are, written "#name"; its conversation is "#name"
    # (`send`, `queue`, `history`).

    async def group_create(self, name: str, members: list[str]) -> Group:
        return await self.group_ops.create(name, members)

    async def group_add(self, name: str, members: list[str]) -> Group:
        return await self.group_ops.add(name, members)

    async def group_remove(self, name: str, members: list[str]) -> Group:
        return await self.group_ops.remove(name, members)

    async def group_leave(self, name: str) -> None:
        await self.group_ops.leave(name)

    def groups(self) -> list[Group]:
        return self.group_ops.all()

    def group(self, name: str) -> Group:
        """`NotFound` for a group we are not in."""
        return self.group_ops.get(name)

    # --- direct mode ----------------------------------------------------------------

    async def direct_action(self, action: str, name: str) -> str:
        return await self.direct.act(action, name)

    def direct_status(self, username: str) -> DirectStatus | None:
        """How direct mode stands with a contact; None when it is off."""
        state = self.direct.state(username)
        if state is None:
            return None
        if state.phase is not DirectPhase.ON:
            return DirectStatus(state.phase.value)
        return DirectStatus.ON if state.confirmed else DirectStatus.CONFIRMING
