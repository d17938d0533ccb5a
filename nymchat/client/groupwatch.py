"""Keeping up with the logs of the groups kept at another node than our home: that node
cannot push to us (we have no account there, and never sign there), so we watch each log
anonymously. A `group_watch` (with the group's access key of our epoch) asks for the
entries after the position we took in up to; the node answers at once when there are
some, else holds the request until one is posted (`HOLD` seconds at most). Each entry is
taken in as a pushed one would be; the position is kept with the group's record after
each answer. One-shot (`catch_up`): passes that are not held, while entries come.
Following (`follow`): a held watch per group, again and again, for as long as it runs."""

import asyncio
import contextlib
import logging
from typing import Any

from nymchat.client.events import Event, EventBus, GroupJoined, GroupSplit, MessageReceived
from nymchat.client.groupcommits import GroupCommits
from nymchat.client.groupintake import GroupIntake
from nymchat.client.grouprecords import GroupRecord, GroupRecords
from nymchat.client.keypackages import KeyPackages
from nymchat.client.nodelink import TIMEOUT
from nymchat.errors import NymchatError
from nymchat.protocol import wire
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
HOLD = wire.MAX_WATCH_HOLD_S  # seconds a following watch may be held at the node
PASSES = 32  # answers a one-shot catch-up takes per group at most (each is bounded)
RETRY_S, RETRY_MAX_S = 1.0, 60.0  # a following watch that failed is tried again so
RESCAN_S = 60.0  # how often following looks for groups to watch (and on each join)


class GroupWatch:
    def __init__(
        self,
        commits: GroupCommits,
        intake: GroupIntake,
        records: GroupRecords,
        key_packages: KeyPackages,
        events: EventBus,
    ):
        self.commits, self.intake, self.records = commits, intake, records
        self.key_packages, self.events = key_packages, events
        self.joined = asyncio.Event()  # set: a group was joined (following watches it)
        self._following: asyncio.Task[None] | None = None
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, GroupJoined):
            self.joined.set()

    def watched(self) -> list[bytes]:
        """The ids of our groups whose log is at another node than our home."""
        member = self.key_packages.member()
        return [
            group_id
            for group_id in self.records.ids()
            if (live := self.records.get(group_id, member)) is not None and self._elsewhere(live[0])
        ]

    def _elsewhere(self, record: GroupRecord) -> bool:
        return self.intake.log_node(record) != self.intake.contacts.nodes.home_key()

    async def once(self, group_id: bytes, hold: int = 0) -> tuple[list[MessageReceived], bool]:
        """One watch of a group's log: the messages it brought, and whether it brought
        entries (there may be more)."""
        live = self.records.get(group_id, self.key_packages.member())
        if live is None:
            return [], False
        record, group = live
        link = self.commits.log_link(record)
        answer = await link.request(
            Kind.GROUP_WATCH,
            timeout=hold + TIMEOUT if hold else None,
            group_id=group_id,
            epoch=group.epoch,
            access_key=group.access_key(),
            after=record.after,
            hold=hold,
        )
        if answer.kind is not Kind.GROUP_ENTRIES:
            raise NymchatError(f"the node answered a watch of #{record.name} with no entries")
        return self.take(group_id, answer.body), bool(answer.body["entries"])

    def take(self, group_id: bytes, body: dict[str, Any]) -> list[MessageReceived]:
        """A `group_entries` answer taken in: each entry of an epoch we are in as a pushed
        one (those before we joined are not ours), the position after it kept. Entries
        that left the log before we took them in are told (`GroupSplit`)."""
        member = self.key_packages.member()
        live = self.records.get(group_id, member)
        if live is None:
            return []
        record = live[0]
        if record.after and body["oldest"] > record.after + 1:
            self.events.emit(
                GroupSplit(record.name, "entries of its log were dropped before we took them in")
            )
        received: list[MessageReceived] = []
        last = record.after
        for entry in body["entries"]:
            if entry.position <= last:
                continue  # (a node must answer in position order: what is behind is not news)
            last = entry.position
            if entry.epoch < record.joined_epoch:
                continue
            if self.records.get(group_id, member) is None:
                return received  # an entry removed us: the rest is not ours
            received += self.intake.take(
                {
                    "message_id": entry.message_id,
                    "group_id": group_id,
                    "epoch": entry.epoch,
                    "post": entry.post,
                    "sent": entry.sent,
                    "payload": entry.payload,
                }
            )
        live = self.records.get(group_id, member)
        if live is not None and last > live[0].after:
            live[0].after = last
            with self.intake.store.transaction():
                self.records.put(*live)
        return received

    async def catch_up(self) -> list[MessageReceived]:
        """What every watched log holds for us, taken in (not held: a one-shot pass); a
        log whose node does not answer is left for the next time."""
        received: list[MessageReceived] = []
        for group_id in self.watched():
            try:
                for _ in range(PASSES):
                    messages, more = await self.once(group_id)
                    received += messages
                    if not more:
                        break
            except NymchatError as e:
                log.info("a group's log was not watched: %s", e)
        return received

    def start(self, sink: "asyncio.Queue[MessageReceived]") -> None:
        """Follows the watched logs in the background (`follow`) until `aclose`."""
        if self._following is None or self._following.done():
            self._following = asyncio.create_task(self.follow(sink))

    async def aclose(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.wait([self._following])
            self._following = None

    async def follow(self, sink: "asyncio.Queue[MessageReceived]") -> None:
        """Watches each watched log, held, again and again, putting what it brings on
        `sink`; a group joined meanwhile is watched too. Runs until cancelled."""
        tasks: dict[bytes, asyncio.Task[None]] = {}
        try:
            while True:
                self.joined.clear()
                for group_id in self.watched():
                    if group_id not in tasks or tasks[group_id].done():
                        tasks[group_id] = asyncio.create_task(self._follow(group_id, sink))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESCAN_S):
                        await self.joined.wait()
        finally:
            for task in tasks.values():
                task.cancel()
            if tasks:
                await asyncio.wait(list(tasks.values()))

    async def _follow(self, group_id: bytes, sink: "asyncio.Queue[MessageReceived]") -> None:
        wait = RETRY_S
        while (live := self.records.get(group_id, self.key_packages.member())) is not None:
            if not self._elsewhere(live[0]):
                return
            try:
                messages, _ = await self.once(group_id, HOLD)
            except NymchatError as e:
                log.info("watching #%s: %s; again in %.0f s", live[0].name, e, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_S)
                continue
            wait = RETRY_S
            for message in messages:
                sink.put_nowait(message)
