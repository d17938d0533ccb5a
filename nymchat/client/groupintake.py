"""Taking in a group's log entries, as the node fans them out to its members
(`GROUP_DELIVER`) or as a member elsewhere watches them (`GroupWatch`): a Welcome (from
the node, or an invite end to end) joins a group; copies (by id: delivery is at least
once) and our own posts are dropped; an entry of an epoch not reached yet waits, sealed,
until the commit that leads there is taken in (one of a group whose Welcome has not come
yet, until it comes); application messages of the epochs MLS keeps still open. Each
entry is taken in one transaction with what it changes (the group's state, the message,
what waited). A commit or proposal that does not apply is told (`GroupSplit`): the
others may be in an epoch we cannot reach, and nobody else would say so."""

import logging
from collections.abc import Callable, Mapping
from typing import Any

from nymchat import _native
from nymchat.client import groupmessages, messages, roster
from nymchat.client.contactids import ContactIds
from nymchat.client.events import (
    EventBus,
    GroupChanged,
    GroupJoined,
    GroupRemoved,
    GroupSplit,
    MessageReceived,
    MessageUnreadable,
)
from nymchat.client.grouprecords import GroupRecord, GroupRecords, Waiting
from nymchat.client.keypackages import KeyPackages
from nymchat.client.messages import now_ms
from nymchat.client.profile import Profile
from nymchat.client.records import Direction, GroupMember, MemberTrust, Message
from nymchat.errors import NotFound, NymchatError
from nymchat.protocol import wire
from nymchat.protocol.address import Address
from nymchat.protocol.wire import GroupPost

log = logging.getLogger(__name__)


class GroupIntake:
    def __init__(
        self,
        profile: Profile,
        contacts: ContactIds,
        key_packages: KeyPackages,
        records: GroupRecords,
        events: EventBus,
        on_proposal: Callable[[bytes], None],
    ):
        self.profile, self.store, self.contacts = profile, profile.store, contacts
        self.key_packages, self.records, self.events = key_packages, records, events
        self.on_proposal = on_proposal  # called with the group id: we are to commit it

    def take(self, body: dict[str, Any], node: bytes | None = None) -> list[MessageReceived]:
        """One `GROUP_DELIVER` taken in (pushed by `node`, else our home node): the text
        messages it brings (stored, not yet shown): its own, or those that waited for the
        epoch its commit leads to."""
        try:
            post = GroupPost(body["post"])
        except ValueError:
            log.info("a group entry of unknown kind %d was dropped", body["post"])
            return []
        entry = Waiting(body["message_id"], body["epoch"], post, body["sent"], body["payload"])
        if post is GroupPost.WELCOME:
            return self.join(entry.payload, node or self.contacts.nodes.home_key(), None)
        received = self._entry(body["group_id"], entry)
        return [received] if received is not None else self.drain(body["group_id"])

    # --- joining --------------------------------------------------------------------

    def join(
        self,
        welcome: bytes,
        node: bytes | None,
        node_contact: str | None,
        group_id: bytes | None = None,
    ) -> list[MessageReceived]:
        """A Welcome taken in: we are a member of a group we did not hold, whose log is
        at `node` (reached through `node_contact` when it is not a known node); then what
        waited for it. Nothing for a Welcome not for us (or of another group than
        `group_id`, if given), or for a group held already."""
        member = self.key_packages.member()
        try:
            if node is None:
                raise NotFound("no node to keep the group's log at")
            group = member.join(welcome)
            if group_id is not None and group.group_id != group_id:
                raise NymchatError("an invite to one group with the Welcome of another")
            named = roster.decode(group.roster(), node)  # (one without a roster is not ours)
        except (NymchatError, wire.WireError) as e:  # not for us, or not valid: told nobody
            log.info("a welcome was dropped: %s", e)
            return []
        if self.records.get(group.group_id, member) is not None:
            return []  # held already (a group we created gets its own welcome)
        record = GroupRecord(group.group_id, self.records.free_name(named.name), updated=now_ms())
        record.node, record.node_contact, record.joined_epoch = node, node_contact, group.epoch
        addresses = named.names()
        record.first_names = {i: str(a) for i, a in addresses.items()}
        with self.store.transaction():
            self.records.put(record, group)
            self.key_packages.save()  # the key package it used is gone
        adder = dict(group.members()).get(group.joined_by) if group.joined_by is not None else None
        by = addresses.get(adder) if adder else None
        self.events.emit(GroupJoined(record.name, self.contacts.nodes.display(by) if by else None))
        return self.drain(group.group_id)

    def invited(self, invite: messages.Invite) -> None:
        """A group's Welcome sent to us end to end (a member elsewhere than its log)."""
        self.join(invite.welcome, invite.node, invite.node_contact, invite.group_id)

    # --- who is who -----------------------------------------------------------------

    def log_node(self, record: GroupRecord) -> bytes:
        """The key of the node the group's log is at."""
        node = record.node or self.profile.origin_node
        if node is None:
            raise NotFound(f"#{record.name} names no node its log is at")
        return node

    def addresses(self, record: GroupRecord, group: "_native.MlsGroup") -> Mapping[bytes, Address]:
        """The members' addresses by identity, as the group's roster gives them."""
        return roster.names_of(group.roster(), self.log_node(record))

    def _firsts(self, record: GroupRecord) -> dict[bytes, Address]:
        node = self.log_node(record)
        return {i: roster.first(text, node) for i, text in record.first_names.items()}

    def _saw(self, record: GroupRecord, addresses: Mapping[bytes, Address]) -> None:
        for identity, address in addresses.items():
            record.first_names.setdefault(identity, str(address))

    def shown(self, identity: bytes, address: Address | None) -> str:
        """A member as faces name them: as people are shown (`bob`, `bob@petname`)."""
        return roster.shown(identity, self.contacts.nodes.display(address) if address else None)

    # --- entries of a group we are in -----------------------------------------------

    def _entry(self, group_id: bytes, entry: Waiting) -> MessageReceived | None:
        live = self.records.get(group_id, self.key_packages.member())
        if live is None:  # its Welcome may come later: the mixnet does not keep order
            with self.store.transaction():
                if not self.records.wait(group_id, entry, joined=False):
                    log.info("too many entries wait for groups not joined; dropped")
            return None
        record, group = live
        post = GroupPost(entry.post)
        if entry.message_id in record.seen:
            late = entry.message_id not in self.records.in_flight  # else: applied soon
            if post is GroupPost.COMMIT and entry.epoch == group.epoch and late:
                if entry.message_id == record.unanswered:  # the node took it after all
                    self.apply_own(record, group)
                    return None
                self._failed(record, post, NymchatError("our own commit was not applied"))
            return None
        if post is GroupPost.APPLICATION and self.store.message(entry.message_id) is not None:
            return None  # a copy, or our own
        if entry.epoch > group.epoch:
            with self.store.transaction():
                if not self.records.wait(group_id, entry):
                    log.info("#%s: too many entries wait for later epochs; dropped", record.name)
            return None
        if post is not GroupPost.APPLICATION and entry.epoch < group.epoch:
            return None  # taken in before, or a proposal an epoch has passed
        try:
            with self.store.transaction():
                received = self._apply(record, group, entry)
        except (NymchatError, wire.WireError) as e:
            self.records.forget_live(group_id)  # as stored: the failure may have moved it
            self._failed(record, post, e)
            return None
        if received is not None:
            self.events.emit(received)
        return received

    def _apply(
        self, record: GroupRecord, group: "_native.MlsGroup", entry: Waiting
    ) -> MessageReceived | None:
        """Within a transaction."""
        self.records.unwait(entry.message_id)
        if entry.post == GroupPost.COMMIT:
            group.clear_pending()  # another member's won the epoch: ours is void
            record.unanswered = None
        processed = group.process(entry.payload)
        if processed.kind == "application":
            return self._message(record, group, entry, processed)
        if processed.kind == "proposal":
            record.saw(entry.message_id)
            self.records.put(record, group)
            if self._commits_proposals(group, processed.sender):
                self.on_proposal(record.group_id)
            return None
        self._commit(record, group, processed)
        return None

    def _message(
        self,
        record: GroupRecord,
        group: "_native.MlsGroup",
        entry: Waiting,
        processed: "_native.Processed",
    ) -> MessageReceived:
        inner = groupmessages.decode(processed.plaintext)
        if inner.message_id != entry.message_id:
            raise NymchatError("a group message is bound to another id; ignored")
        author = self.member(record, self.addresses(record, group), processed.sender_identity)
        name = roster.shown(author.identity, author.name)
        peer = f"#{record.name}"
        message = Message(
            inner.message_id,
            peer,
            Direction.IN,
            inner.sent,
            inner.text,
            shown=False,
            author=name,
        )
        self.records.put(record, group)
        self.store.add_message(peer, message.id, message.to_record())
        self.store.set_shown(message.id, False)
        return MessageReceived(
            name,
            message.id,
            message.time,
            message.text,
            author.trust is MemberTrust.VERIFIED,
            author.trust is MemberTrust.MISMATCH,
            record.name,
        )

    def member(
        self, record: GroupRecord, addresses: Mapping[bytes, Address], identity: bytes
    ) -> GroupMember:
        """A member with the address the roster (`addresses`) gives, shown as people
        are, and its trust (by our contact at that address)."""
        return self._member(addresses, identity, self._firsts(record))

    def members(self, record: GroupRecord, group: "_native.MlsGroup") -> list[GroupMember]:
        """Every member, as `member` gives each."""
        addresses, firsts = self.addresses(record, group), self._firsts(record)
        return [self._member(addresses, identity, firsts) for _, identity in group.members()]

    def _member(
        self, addresses: Mapping[bytes, Address], identity: bytes, firsts: dict[bytes, Address]
    ) -> GroupMember:
        address = addresses.get(identity)
        contact = self.contacts.at(address) if address is not None else None
        mine = self.profile.identity.signing_public
        trust = roster.trust(identity, address, mine, contact, firsts)
        shown = self.contacts.nodes.display(address) if address is not None else None
        return GroupMember(shown, identity, trust)

    def _commits_proposals(self, group: "_native.MlsGroup", proposer: int) -> bool:
        """Whether we are the member to commit a proposal: the lowest leaf of the others."""
        others = [leaf for leaf, _ in group.members() if leaf != proposer]
        return bool(others) and min(others) == group.own_index

    def _commit(
        self, record: GroupRecord, group: "_native.MlsGroup", processed: "_native.Processed"
    ) -> None:
        """Within a transaction: another member's commit taken in, with what waited for
        the epoch it leads to."""
        if processed.removed_me:
            self.records.delete(record.group_id)
            self.events.emit(GroupRemoved(record.name))
            return
        addresses = self.addresses(record, group)
        self._saw(record, addresses)
        self.records.put(record, group)
        by = self.member(record, addresses, processed.sender_identity)
        firsts = self._firsts(record)
        self.events.emit(
            GroupChanged(
                record.name,
                tuple(self.shown(i, addresses.get(i)) for _, i in processed.added),
                tuple(self.shown(i, firsts.get(i)) for _, i in processed.removed),
                roster.shown(by.identity, by.name),
                group.epoch,
            )
        )

    def apply_own(self, record: GroupRecord, group: "_native.MlsGroup") -> None:
        """Our pending commit, taken by the node: applied, stored, told (by us), and what
        waited for the epoch it leads to taken in."""
        me = self.profile.me()
        before = {identity for _, identity in group.members()}
        group.apply_pending()
        after = {identity for _, identity in group.members()}
        addresses = self.addresses(record, group)
        self._saw(record, addresses)
        if before - after or not after - before:  # it had a path (RFC 9420 §12.4): ours
            record.sent_since_update, record.updated = 0, now_ms()
        record.unanswered = None
        with self.store.transaction():
            self.records.put(record, group)
        firsts = self._firsts(record)
        added = tuple(sorted(self.shown(i, addresses.get(i)) for i in after - before))
        removed = tuple(sorted(self.shown(i, firsts.get(i)) for i in before - after))
        self.events.emit(GroupChanged(record.name, added, removed, me, group.epoch))
        self.drain(record.group_id)

    def _failed(self, record: GroupRecord, post: GroupPost, error: Exception) -> None:
        if post is GroupPost.APPLICATION:
            self.events.emit(MessageUnreadable(f"#{record.name}", str(error)))
            return
        what = "a commit" if post is GroupPost.COMMIT else "a proposal"
        log.warning("%s in #%s could not be applied: %s", what, record.name, error)
        self.events.emit(GroupSplit(record.name, str(error)))

    def drain(self, group_id: bytes) -> list[MessageReceived]:
        """Takes in what waited for the epochs reached since (a commit leads to the next)."""
        received: list[MessageReceived] = []
        while True:
            live = self.records.get(group_id, self.key_packages.member())
            if live is None:
                return received
            waiting = self.records.waiting(group_id, live[1].epoch)
            if not waiting:
                return received
            for entry in waiting:  # each leaves the store, taken in or not
                if (message := self._entry(group_id, entry)) is not None:
                    received.append(message)
                with self.store.transaction():
                    self.records.unwait(entry.message_id)
