"""Group operations (MLS, RFC 9420): create, add, remove, leave, send; a key update
before a send once `update_after` messages or a week went by since our last key update.
Each change is committed to the group's log by `GroupCommits` (retried there when
another member's commit wins the epoch).

Group posts are anonymous requests: the node learns the group, the epoch and sizes, not
who posts (docs/SECURITY.md)."""

import os

from nymchat import _native
from nymchat.client import groupmessages, roster
from nymchat.client.contactids import ContactIds
from nymchat.client.groupcommits import CatchUp, Change, GroupCommits, own_address
from nymchat.client.groupintake import GroupIntake
from nymchat.client.groupnode import GroupNode
from nymchat.client.grouprecords import GroupRecord, GroupRecords, new_group_id
from nymchat.client.keypackages import KeyPackages
from nymchat.client.messages import now_ms
from nymchat.client.profile import Profile
from nymchat.client.records import Group, MemberTrust
from nymchat.errors import KeyChanged, NotFound, UsageError
from nymchat.protocol import names
from nymchat.protocol.address import Address
from nymchat.protocol.wire import GroupPost, Kind

UPDATE_AFTER = 50  # messages we send between our key updates, at most
UPDATE_EVERY_MS = 7 * 86_400_000  # and the longest time between them
JOIN_WAIT = 3.0  # seconds to wait for the Welcome of a group named but not held


def group_name(name: str) -> str:
    """A group's name as typed (`#team` or `team`), normalised as usernames are."""
    return names.normalize(name.removeprefix("#"))


class Groups:
    def __init__(
        self,
        profile: Profile,
        contacts: ContactIds,
        key_packages: KeyPackages,
        records: GroupRecords,
        intake: GroupIntake,
        node: GroupNode,
        commits: GroupCommits,
        catch_up: CatchUp,
        update_after: int = UPDATE_AFTER,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.key_packages = contacts, key_packages
        self.records, self.intake, self.node, self.commits = records, intake, node, commits
        self.catch_up, self.update_after = catch_up, update_after

    # --- what the faces show ----------------------------------------------------------

    def all(self) -> list[Group]:
        member = self.key_packages.member()
        found = [self.records.get(i, member) for i in self.records.ids()]
        return sorted((self.view(*live) for live in found if live), key=lambda g: g.name)

    def get(self, name: str) -> Group:
        return self.view(*self.records.named(group_name(name), self.key_packages.member()))

    def view(self, record: GroupRecord, group: "_native.MlsGroup") -> Group:
        members = self.intake.members(record, group)
        unread = self.store.unshown_count(f"#{record.name}")
        return Group(record.name, record.group_id, group.epoch, tuple(members), unread)

    # --- changing a group -------------------------------------------------------------

    def _addresses(self, members: list[str]) -> tuple[Address, ...]:
        """The addresses of the people typed (`bob`, `bob@petname`, a contact's id), each
        once, in order."""
        found = []
        for typed in members:
            _, name, node = self.contacts.target(typed)
            if node is None:
                raise NotFound("this profile has no home node yet: register first")
            found.append(Address(name, node))
        return tuple(dict.fromkeys(found))

    def _shown(self, addresses: tuple[Address, ...] | list[Address]) -> str:
        return ", ".join(self.contacts.nodes.display(a) for a in addresses)

    async def create(self, name: str, members: list[str]) -> Group:
        me = own_address(self.profile, self.contacts)
        name = group_name(name)
        if self.records.group_id(name) is not None:
            raise UsageError(f"you have a group '#{name}' already")
        mine = self.profile.identity.signing_public
        first = roster.Roster(name, (roster.Entry(mine, me.name, me.node),))
        group = self.key_packages.member().create_group(new_group_id(), roster.encode(first))
        record = GroupRecord(group.group_id, name, {mine: str(me)}, updated=now_ms(), node=me.node)
        wanted = tuple(a for a in self._addresses(members) if a != me)
        await self.commits.commit(record, group, Change(add=wanted), creating=True)
        return self.get(name)

    async def add(self, name: str, members: list[str]) -> Group:
        wanted = self._addresses(members)
        present = self.commits.present(
            *self.records.named(group_name(name), self.key_packages.member())
        )
        if all(a in present for a in wanted):
            raise UsageError(f"already in #{group_name(name)}: {self._shown(wanted)}")
        await self._change(group_name(name), Change(add=wanted))
        return self.get(name)

    async def joined(self, name: str) -> None:
        """A group we may have just been added to: its Welcome may wait at the node, and a
        one-shot command takes nothing in before it acts. Takes in what the node pushes
        for `JOIN_WAIT` seconds at most, until we hold the group."""
        name = group_name(name)
        if self.records.group_id(name) is None and self.contacts.links.home.online:
            await self.catch_up(lambda: self.records.group_id(name) is not None, JOIN_WAIT)

    async def remove(self, name: str, members: list[str]) -> Group:
        gone = self._addresses(members)
        if own_address(self.profile, self.contacts) in gone:
            raise UsageError("to leave a group, `nymchat group leave` it")
        present = self.commits.present(
            *self.records.named(group_name(name), self.key_packages.member())
        )
        if absent := [a for a in gone if a not in present]:
            raise NotFound(f"not members of #{group_name(name)}: {self._shown(absent)}")
        await self._change(group_name(name), Change(remove=gone))
        return self.get(name)

    async def leave(self, name: str) -> None:
        """Proposes our removal (another member commits it), tells the log node to stop
        fanning out to us when it is our home (elsewhere we only stop watching), and
        forgets the group."""
        name = group_name(name)
        record, group = self.records.named(name, self.key_packages.member())
        link = self.commits.log_link(record)
        async with self.commits.lock(record.group_id):
            if len(group.members()) > 1:
                proposal = group.propose_leave()
                await self.node.post(link, group, GroupPost.PROPOSAL, os.urandom(16), proposal)
            if link is self.contacts.links.home:
                await link.request(Kind.LEAVE_GROUP, group_id=record.group_id)
            with self.store.transaction():
                self.records.delete(record.group_id)

    async def _change(self, name: str, change: Change) -> None:
        group_id = self.records.named(name, self.key_packages.member())[0].group_id
        async with self.commits.lock(group_id):
            # what it holds now: an earlier change may have run
            await self.commits.commit(*self.records.named(name, self.key_packages.member()), change)

    # --- sending ----------------------------------------------------------------------

    def check_sendable(self, name: str) -> str:
        """The group's name if we may send to it: a member whose name is a contact's with
        another identity blocks it, as a changed key does."""
        record, group = self.records.named(group_name(name), self.key_packages.member())
        for member in self.view(record, group).members:
            if member.trust is MemberTrust.MISMATCH:
                raise KeyChanged(
                    f"in #{record.name}, the member named {member.name} is not the "
                    f"{member.name} you know (another key): nothing was sent"
                )
        return record.name

    async def send(self, name: str, message_id: bytes, sent: int, text: str) -> None:
        """Encrypts and posts a stored message to the group (a key update first, or a
        commit of pending proposals, when due)."""
        name = self.check_sendable(name)
        record, group = self.records.named(name, self.key_packages.member())
        async with self.commits.lock(record.group_id):
            due = (
                record.sent_since_update >= self.update_after
                or now_ms() - record.updated >= UPDATE_EVERY_MS
            )
            if due or group.pending_proposals():
                await self.commits.commit(record, group, Change(update=True))
                record, group = self.records.named(name, self.key_packages.member())
            inner = groupmessages.GroupInner(groupmessages.TEXT, message_id, sent, text)
            payload = group.encrypt(groupmessages.encode(inner))
            record.sent_since_update += 1
            with self.store.transaction():
                self.records.put(record, group)
            await self.node.post(
                self.commits.log_link(record), group, GroupPost.APPLICATION, message_id, payload
            )
