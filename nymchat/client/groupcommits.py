"""Commits to a group's log (MLS, RFC 9420): one change at a time per group, posted to
the node, which takes exactly one commit per epoch (compare and set).

Until the node accepts a commit, nothing changes here; accepted, it is applied and
stored. When another member's commit won the epoch (`EPOCH_CONFLICT`), ours is dropped,
the winner's is taken in (`catch_up`: it comes through the inbox), what is still to do is
worked out again (names not members yet, members still there, proposals still pending)
and committed anew: up to `ROUNDS` times, without the user.

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
from nymchat.client import messages, roster
from nymchat.client.access import Access
from nymchat.client.contactids import ContactIds
from nymchat.client.groupintake import GroupIntake
from nymchat.client.groupnode import GroupNode
from nymchat.client.grouprecords import GroupRecord, GroupRecords
from nymchat.client.keypackages import KeyPackages
from nymchat.client.nodelink import Link, NodeRefused, NodeSilent
from nymchat.client.profile import Profile
from nymchat.errors import NotFound, NymchatError, Refused, TooLong
from nymchat.protocol import wire
from nymchat.protocol.address import Address
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

log = logging.getLogger(__name__)
ROUNDS = 3  # commits tried when other members' commits keep winning the epoch
CATCH_UP = 30.0  # seconds to wait for the commit that won an epoch
SETTLE = 5.0  # seconds to wait for the copy of our commit whose answer never came
LOG_END = 2**63 - 1  # a log position after any (the largest a node's database holds)
# Waits until the given test holds (the inbox taking in what the node pushes), or gives up.
CatchUp = Callable[[Callable[[], bool], float], Awaitable[None]]
# Queues a Welcome (a GROUP_INVITE body) to the given contacts and sends what it can now.
Invite = Callable[[list[str], bytes], Awaitable[None]]


@dataclass(frozen=True)
class Change:
    add: tuple[Address, ...] = ()
    remove: tuple[Address, ...] = ()
    update: bool = False  # commit even if nothing else is to do: a key update


def own_address(profile: Profile, contacts: ContactIds) -> Address:
    """Our address: our name at our home node."""
    home = contacts.nodes.home_key()
    if home is None:
        raise NotFound("this profile has no home node yet: register first")
    return Address(profile.me(), home)


class GroupCommits:
    def __init__(
        self,
        profile: Profile,
        contacts: ContactIds,
        access: Access,
        key_packages: KeyPackages,
        records: GroupRecords,
        intake: GroupIntake,
        node: GroupNode,
        catch_up: CatchUp,
        invite: Invite,
    ):
        self.profile, self.store = profile, profile.store
        self.contacts, self.access, self.key_packages = contacts, access, key_packages
        self.records, self.intake, self.node = records, intake, node
        self.catch_up, self.invite = catch_up, invite
        self._locks: dict[bytes, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def lock(self, group_id: bytes) -> asyncio.Lock:
        """Held while a group is changed or sent to: one change at a time, each on what
        the one before left."""
        return self._locks.setdefault(group_id, asyncio.Lock())

    def log_link(self, record: GroupRecord) -> Link:
        """The link to the group's log node: home, or anonymous-only elsewhere."""
        node = self.intake.log_node(record)
        return self.contacts.link_to(node, node_contact=record.node_contact)

    def present(
        self, record: GroupRecord, group: "_native.MlsGroup"
    ) -> dict[Address, tuple[int, bytes]]:
        """The members by the roster's address: (leaf, identity)."""
        named = self.intake.addresses(record, group)
        return {named[i]: (leaf, i) for leaf, i in group.members() if i in named}

    def commit_soon(self, group_id: bytes) -> None:
        """Commits a group's pending proposals in the background (a member left and we
        are the one to commit it)."""

        async def commit() -> None:
            live = self.records.get(group_id, self.key_packages.member())
            if live is None:
                return
            async with self.lock(group_id):
                try:
                    await self.commit(*live, Change())
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

    async def commit(
        self,
        record: GroupRecord,
        group: "_native.MlsGroup",
        change: Change,
        creating: bool = False,
    ) -> None:
        """Commits what `change` still asks of the group (with its pending proposals),
        tried anew when another member's commit wins the epoch; the caller holds `lock`
        (but when creating the group)."""
        if not creating:
            await self._settle(record.group_id)
            record, group = self.records.named(record.name, self.key_packages.member())
        claimed: dict[Address, tuple[bytes, bytes]] = {}  # → (identity, key package)
        for _ in range(ROUNDS):
            present = self.present(record, group)
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
        me, log_node = own_address(self.profile, self.contacts), self.intake.log_node(record)
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
