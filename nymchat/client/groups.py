"""Group operations (MLS, RFC 9420): create, add, remove, leave, send; a key update
before a send once `update_after` messages or a week went by since our last key update.

A commit is posted to the node, which takes exactly one per epoch (compare and set).
Until the node accepts it, nothing changes here; accepted, it is applied and stored. When
another member's commit won the epoch (`EPOCH_CONFLICT`), ours is dropped, the winner's
is taken in (`catch_up`: it comes through the inbox), what is still to do is worked out
again (names not members yet, members still there, proposals still pending) and
committed anew: up to `ROUNDS` times, without the user.

Group posts are anonymous requests: the node learns the group, the epoch and sizes, not
who posts (docs/SECURITY.md).

Members may be homed at other nodes than the group's log (ours, when we create it):
their key packages are claimed at their node, a commit names to the log node only the
members registered there, and the Welcome goes to the others end to end (`invite`:
GROUP_INVITE messages, queued and sent by the outbox); they watch the log (`GroupWatch`)."""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nymchat import _native
from nymchat.client import groupmessages, messages, roster
from nymchat.client.access import Access
from nymchat.client.contactids import ContactIds
from nymchat.client.events import EventBus
from nymchat.client.groupintake import GroupIntake
from nymchat.client.groupnode import GroupNode
from nymchat.client.grouprecords import GroupRecord, GroupRecords, new_group_id
from nymchat.client.keypackages import KeyPackages
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import Link, NodeRefused, NodeSilent
from nymchat.client.profile import Profile
from nymchat.client.records import Group, MemberTrust
from nymchat.client.relay import Relay
from nymchat.errors import KeyChanged, NotFound, NymchatError, Refused, TooLong, UsageError
from nymchat.protocol import names, wire
from nymchat.protocol.address import Address
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

log = logging.getLogger(__name__)
ROUNDS = 3  # commits tried when other members' commits keep winning the epoch
UPDATE_AFTER = 50  # messages we send between our key updates, at most
UPDATE_EVERY_MS = 7 * 86_400_000  # and the longest time between them
CATCH_UP = 30.0  # seconds to wait for the commit that won an epoch
SETTLE = 5.0  # seconds to wait for the copy of our commit whose answer never came
JOIN_WAIT = 3.0  # seconds to wait for the Welcome of a group named but not held
LOG_END = 2**63 - 1  # a log position after any (the largest a node's database holds)
# Waits until the given test holds (the inbox taking in what the node pushes), or gives up.
CatchUp = Callable[[Callable[[], bool], float], Awaitable[None]]
# Queues a Welcome (a GROUP_INVITE body) to the given contacts and sends what it can now.
Invite = Callable[[list[str], bytes], Awaitable[None]]


def group_name(name: str) -> str:
    """A group's name as typed (`#team` or `team`), normalised as usernames are."""
    return names.normalize(name.removeprefix("#"))


@dataclass(frozen=True)
class Change:
    add: tuple[Address, ...] = ()
    remove: tuple[Address, ...] = ()
    update: bool = False  # commit even if nothing else is to do: a key update


class Groups:
    def __init__(
        self,
        profile: Profile,
        contacts: ContactIds,
        relay: Relay,
        access: Access,
        key_packages: KeyPackages,
        records: GroupRecords,
        intake: GroupIntake,
        events: EventBus,
        catch_up: CatchUp,
        invite: Invite,
        update_after: int = UPDATE_AFTER,
    ):
        self.profile, self.store = profile, profile.store
        self.node = GroupNode(contacts, relay)
        self.contacts, self.access, self.key_packages = contacts, access, key_packages
        self.records, self.intake, self.events = records, intake, events
        self.catch_up, self.invite, self.update_after = catch_up, invite, update_after
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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

    def _me(self) -> Address:
        """Our address: our name at our home node."""
        home = self.contacts.nodes.home_key()
        if home is None:
            raise NotFound("this profile has no home node yet: register first")
        return Address(self.profile.me(), home)

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
        me = self._me()
        name = group_name(name)
        if self.records.group_id(name) is not None:
            raise UsageError(f"you have a group '#{name}' already")
        mine = self.profile.identity.signing_public
        first = roster.Roster(name, (roster.Entry(mine, me.name, me.node),))
        group = self.key_packages.member().create_group(new_group_id(), roster.encode(first))
        record = GroupRecord(group.group_id, name, {mine: str(me)}, updated=now_ms(), node=me.node)
        wanted = tuple(a for a in self._addresses(members) if a != me)
        await self._commit(record, group, Change(add=wanted), creating=True)
        return self.get(name)

    async def add(self, name: str, members: list[str]) -> Group:
        wanted = self._addresses(members)
        present = self._present(*self.records.named(group_name(name), self.key_packages.member()))
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
        if self._me() in gone:
            raise UsageError("to leave a group, `nymchat group leave` it")
        present = self._present(*self.records.named(group_name(name), self.key_packages.member()))
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
        link = self.log_link(record)
        async with self._lock(record.group_id):
            if len(group.members()) > 1:
                proposal = group.propose_leave()
                await self.node.post(link, group, GroupPost.PROPOSAL, os.urandom(16), proposal)
            if link is self.contacts.links.home:
                await link.request(Kind.LEAVE_GROUP, group_id=record.group_id)
            with self.store.transaction():
                self.records.delete(record.group_id)

    async def _change(self, name: str, change: Change) -> None:
        group_id = self.records.named(name, self.key_packages.member())[0].group_id
        async with self._lock(group_id):  # what it holds now: an earlier change may have run
            await self._commit(*self.records.named(name, self.key_packages.member()), change)

    def commit_soon(self, group_id: bytes) -> None:
        """Commits a group's pending proposals in the background (a member left and we
        are the one to commit it)."""

        async def commit() -> None:
            live = self.records.get(group_id, self.key_packages.member())
            if live is None:
                return
            async with self._lock(group_id):
                try:
                    await self._commit(*live, Change())
                except NymchatError as e:  # the next send commits them
                    log.info("pending proposals of #%s not committed: %s", live[0].name, e)

        task = asyncio.get_running_loop().create_task(commit())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stops the commits `commit_soon` started (the next send makes them)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def _lock(self, group_id: bytes) -> asyncio.Lock:
        return self._locks.setdefault(group_id, asyncio.Lock())

    def log_link(self, record: GroupRecord) -> Link:
        """The link to the group's log node: home, or anonymous-only elsewhere."""
        node = self.intake.log_node(record)
        return self.contacts.link_to(node, node_contact=record.node_contact)

    async def _commit(
        self,
        record: GroupRecord,
        group: "_native.MlsGroup",
        change: Change,
        creating: bool = False,
    ) -> None:
        if not creating:
            await self._settle(record.group_id)
            record, group = self.records.named(record.name, self.key_packages.member())
        claimed: dict[Address, tuple[bytes, bytes]] = {}  # → (identity, key package)
        for _ in range(ROUNDS):
            present = self._present(record, group)
            adds = [a for a in change.add if a not in present]
            removes = {a: present[a] for a in change.remove if a in present}
            if not (creating or adds or removes or change.update or group.pending_proposals()):
                return
            for address in adds:
                if address not in claimed:
                    claimed[address] = await self.node.claim(address)
            if await self._commit_once(record, group, creating, adds, removes, claimed):
                return
            live = self.records.get(record.group_id, self.key_packages.member())
            if live is None:
                raise NotFound(f"you are no longer a member of #{record.name}")
            record, group = live
        raise Refused(
            f"other members' changes to #{record.name} won {ROUNDS} times in a row; try again"
        )

    def _present(
        self, record: GroupRecord, group: "_native.MlsGroup"
    ) -> dict[Address, tuple[int, bytes]]:
        """The members by the roster's address: (leaf, identity)."""
        named = self.intake.addresses(record, group)
        return {named[i]: (leaf, i) for leaf, i in group.members() if i in named}

    async def _commit_once(
        self,
        record: GroupRecord,
        group: "_native.MlsGroup",
        creating: bool,
        adds: list[Address],
        removes: dict[Address, tuple[int, bytes]],
        claimed: dict[Address, tuple[bytes, bytes]],
    ) -> bool:
        """One commit posted: True once the node took it (applied and stored), False when
        another won the epoch (then we have caught up with it). The members it adds at
        other nodes than the log's are sent its Welcome once it is taken."""
        me, log_node = self._me(), self.intake.log_node(record)
        current = roster.decode(group.roster(), log_node) if group.roster() else None
        gone = {identity for _, identity in removes.values()}
        keep = {identity for _, identity in group.members()} - gone
        new = {claimed[n][0]: n for n in adds}
        assert current is not None, "every group of ours carries a roster"
        next_roster = current.with_members(keep, new)
        message_id, epoch = os.urandom(16), group.epoch
        record.saw(message_id)  # its copy, when the node fans it out to us, is ours
        with self.store.transaction():
            if not creating:
                self.records.put(record, group)
        access_key = group.access_key()
        commit, welcome, next_key = group.commit(
            [claimed[n][1] for n in adds],
            [leaf for leaf, _ in removes.values()],
            roster.encode(next_roster) if adds or removes else None,
        )
        here = [a for a in adds if a.node == log_node]  # the log node knows these names only
        members = [wire.NewMember(me.name, self.access.key(), 0)] if creating else []
        members += [wire.NewMember(a.name, self.node.access_key(a), 0) for a in here]
        elsewhere = [a for a in adds if a.node != log_node]  # sent the Welcome end to end
        invite = self._invite(record, group, welcome) if elsewhere and welcome else None
        link = self.log_link(record)
        self.records.in_flight.add(message_id)
        try:
            await self.node.post(
                link,
                group,
                GroupPost.COMMIT,
                message_id,
                commit,
                access_key=access_key,
                next_verifier=wire.access_verifier(next_key),
                add=members,
                remove=[a.name for a in removes if a.node == log_node],
                welcome=welcome if members else None,
            )
        except NodeRefused as e:
            group.clear_pending()
            if e.code is not ErrorCode.EPOCH_CONFLICT:
                raise
            log.info("#%s: another commit won epoch %d; catching up", record.name, epoch)
            await self.catch_up(lambda: self._moved_on(record.group_id, epoch), CATCH_UP)
            return False
        except NodeSilent:
            if creating:  # a group the node may not know: the user creates it again
                group.clear_pending()
            else:  # it may have been taken: kept pending until we know (`_settle`)
                record.unanswered = message_id
                with self.store.transaction():
                    self.records.put(record, group)
            raise
        except BaseException:
            group.clear_pending()
            raise
        finally:
            self.records.in_flight.discard(message_id)
        for identity, address in new.items():
            record.first_names.setdefault(identity, str(address))
        self.intake.apply_own(record, group)
        if invite is not None:
            await self._keep_log(record, group)
            await self.invite([self.contacts.id_of(a) for a in elsewhere], invite)
        return True

    async def _keep_log(self, record: GroupRecord, group: "_native.MlsGroup") -> None:
        """Has the log node keep the group's entries for the retention, as it does for a
        watched group, until the members just added elsewhere watch it themselves (their
        Welcome takes a while, and the members here may take every entry meanwhile): a
        watch after the log's end, which brings nothing back."""
        try:
            await self.log_link(record).request(
                Kind.GROUP_WATCH,
                group_id=record.group_id,
                epoch=group.epoch,
                access_key=group.access_key(),
                after=LOG_END,
                hold=0,
            )
        except NymchatError as e:  # their first watches will (what is posted before may go)
            log.info("#%s: the log node was not asked to keep the log: %s", record.name, e)

    def _invite(self, record: GroupRecord, group: "_native.MlsGroup", welcome: bytes) -> bytes:
        """The GROUP_INVITE body that takes `welcome` to the members elsewhere; `TooLong`
        (the commit dropped) when it is more than a message carries: the Welcome holds
        the group's tree, which grows with its members."""
        link = self.log_link(record)
        if link.contact is None:
            group.clear_pending()
            raise NotFound(f"no way to reach the node of #{record.name}'s log")
        body = messages.encode_invite(group.group_id, str(link.contact), welcome)
        if len(body) > messages.MAX_BODY:
            group.clear_pending()
            raise TooLong(
                f"#{record.name} is too large to add members at other nodes: its Welcome "
                f"({len(body):,} bytes) is more than a message carries "
                f"({messages.MAX_BODY:,}); nobody was added"
            )
        return body

    async def _settle(self, group_id: bytes) -> None:
        """Settles our commit whose answer never came, before the next: taken in if its
        copy comes (the node took it), else dropped once the node answers without it."""
        live = self.records.get(group_id, self.key_packages.member())
        if live is None or live[0].unanswered is None:
            return
        await self.catch_up(lambda: self._answered(group_id), SETTLE)
        live = self.records.get(group_id, self.key_packages.member())
        if live is not None and live[0].unanswered is not None:
            record, group = live
            group.clear_pending()
            record.unanswered = None
            with self.store.transaction():
                self.records.put(record, group)

    def _answered(self, group_id: bytes) -> bool:
        live = self.records.get(group_id, self.key_packages.member())
        return live is None or live[0].unanswered is None

    def _moved_on(self, group_id: bytes, epoch: int) -> bool:
        live = self.records.get(group_id, self.key_packages.member())
        return live is None or live[1].epoch > epoch

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
        async with self._lock(record.group_id):
            due = (
                record.sent_since_update >= self.update_after
                or now_ms() - record.updated >= UPDATE_EVERY_MS
            )
            if due or group.pending_proposals():
                await self._commit(record, group, Change(update=True))
                record, group = self.records.named(name, self.key_packages.member())
            inner = groupmessages.GroupInner(groupmessages.TEXT, message_id, sent, text)
            payload = group.encrypt(groupmessages.encode(inner))
            record.sent_since_update += 1
            with self.store.transaction():
                self.records.put(record, group)
            await self.node.post(
                self.log_link(record), group, GroupPost.APPLICATION, message_id, payload
            )
