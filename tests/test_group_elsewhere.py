"""Groups whose log is at another node, sans-I/O: the GROUP_INVITE body (a Welcome end to
end, with where the log is) and the watch loop's cursor (client/groupwatch.py) against a
stand-in link, records and intake."""

import asyncio
import contextlib
import os
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat import _native
from nymchat.client import groupwatch, messages
from nymchat.client.events import EventBus, GroupSplit
from nymchat.client.grouprecords import GroupRecord
from nymchat.client.groupwatch import GroupWatch
from nymchat.client.nodelink import TIMEOUT
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import GroupEntry, GroupPost, Kind

LOG_NODE = _native.Identity.generate().signing_public
HOME = bytes([7]) * 32
GROUP = bytes([9]) * 32


def contact(count: int) -> NodeContact:
    return NodeContact(
        LOG_NODE,
        tuple(
            NymAddress(_native.Identity.generate().signing_public, os.urandom(32), bytes(32))
            for _ in range(count)
        ),
    )


def test_an_invite_round_trips_with_the_first_frontends_of_the_log_node():
    many = contact(5)
    invite = messages.decode_invite(messages.encode_invite(GROUP, str(many), b"welcome"))
    assert (invite.group_id, invite.node, invite.welcome) == (GROUP, LOG_NODE, b"welcome")
    assert invite.node_contact == messages.carried(str(many))
    assert len(NodeContact.parse(invite.node_contact).addresses) == messages.CARRIED_ADDRESSES


def test_an_invite_with_more_frontends_than_carried_or_bytes_after_its_welcome_is_refused():
    body = bytearray(messages.encode_invite(GROUP, str(contact(2)), b"welcome"))
    with pytest.raises(wire.WireError, match="trailing"):
        messages.decode_invite(bytes(body) + b"\x00")
    body[64] = messages.CARRIED_ADDRESSES + 1
    with pytest.raises(wire.WireError, match="at most"):
        messages.decode_invite(bytes(body))


def test_an_invite_is_a_message_kind_the_inner_layer_takes():
    inner = messages.Inner(
        messages.GROUP_INVITE, "alice", "bob", LOG_NODE, bytes(16), 1, bytes(32), b"x"
    )
    assert messages.decode_inner(messages.encode_inner(inner)) == inner


@given(st.binary(max_size=800))
def test_hostile_bytes_only_raise_wire_error_as_an_invite(data):
    with contextlib.suppress(wire.WireError):
        messages.decode_invite(data)


# --- the watch loop -------------------------------------------------------------------


@dataclass
class Group:
    epoch: int = 1

    def access_key(self) -> bytes:
        return bytes([self.epoch]) * 32


@dataclass
class Link:
    answers: list[dict]
    asked: list[dict] = field(default_factory=list)

    async def request(self, kind: Kind, timeout: float | None = None, **body) -> wire.Answer:
        assert kind is Kind.GROUP_WATCH
        self.asked.append({"timeout": timeout, **body})
        if not self.answers:  # held, and no entry is ever posted
            await asyncio.Event().wait()
        return wire.Answer(Kind.GROUP_ENTRIES, None, 0, self.answers.pop(0))


class Records:
    def __init__(self, record: GroupRecord, group: Group):
        self.live: tuple[GroupRecord, Group] | None = (record, group)
        self.stored: list[int] = []

    def get(self, group_id: bytes, member: object):
        return self.live if group_id == GROUP else None

    def ids(self) -> list[bytes]:
        return [GROUP] if self.live else []

    def put(self, record: GroupRecord, group: Group) -> None:
        self.stored.append(record.after)


class Intake:
    """Takes each entry as `GroupIntake.take` would: one message per application entry;
    a commit in `removing` removes us."""

    def __init__(self, records: Records, removing: bytes | None = None):
        self.records, self.removing, self.taken = records, removing, []
        self.contacts = self
        self.nodes = self
        self.store = self

    def home_key(self) -> bytes:
        return HOME

    def log_node(self, record: GroupRecord) -> bytes:
        return record.node

    def transaction(self):
        return contextlib.nullcontext()

    def take(self, body: dict) -> list:
        self.taken.append(body["message_id"])
        if body["message_id"] == self.removing:
            self.records.live = None
        return [body["message_id"]] if body["post"] == GroupPost.APPLICATION else []


def entry(position: int, epoch: int = 1, post: GroupPost = GroupPost.APPLICATION) -> GroupEntry:
    return GroupEntry(position, position.to_bytes(16, "big"), epoch, post, 0, b"payload")


def answer(*entries: GroupEntry, oldest: int = 1) -> dict:
    last = entries[-1].position if entries else 0
    return {"entries": entries, "last": last, "oldest": oldest}


def watcher(answers: list[dict], after: int = 0, joined_epoch: int = 1, removing=None):
    record = GroupRecord(GROUP, "trio", node=LOG_NODE, after=after, joined_epoch=joined_epoch)
    records = Records(record, Group())
    intake = Intake(records, removing)
    link = Link(answers)
    commits = type("GroupCommits", (), {"log_link": lambda self, r: link})()
    events = EventBus()
    told: list = []
    events.subscribe(told.append)
    key_packages = type("KeyPackages", (), {"member": lambda self: None})()
    watch = GroupWatch(commits, intake, records, key_packages, events)
    return watch, record, records, intake, link, told


def test_a_watch_asks_after_the_kept_position_and_keeps_the_last_it_took():
    watch, record, records, _, link, _ = watcher([answer(entry(3), entry(4))], after=2)
    messages_, more = asyncio.run(watch.once(GROUP))
    assert more and messages_ == [entry(3).message_id, entry(4).message_id]
    asked = link.asked[0]
    assert (asked["after"], asked["epoch"], asked["access_key"]) == (2, 1, bytes([1]) * 32)
    assert (asked["hold"], asked["timeout"]) == (0, None)
    assert record.after == 4 and records.stored == [4]


def test_entries_of_epochs_before_we_joined_are_passed_over_but_counted():
    commit = entry(1, epoch=1, post=GroupPost.COMMIT)
    watch, record, _, intake, _, _ = watcher([answer(commit, entry(2, epoch=2))], joined_epoch=2)
    asyncio.run(watch.once(GROUP))
    assert intake.taken == [entry(2).message_id] and record.after == 2


def test_a_held_watch_waits_longer_than_its_hold():
    watch, _, _, _, link, _ = watcher([answer()])
    assert asyncio.run(watch.once(GROUP, groupwatch.HOLD)) == ([], False)
    assert (link.asked[0]["hold"], link.asked[0]["timeout"]) == (55, 55 + TIMEOUT)


def test_an_empty_answer_keeps_the_position():
    watch, record, records, _, _, _ = watcher([answer()], after=5)
    asyncio.run(watch.once(GROUP))
    assert record.after == 5 and records.stored == []


def test_entries_dropped_from_the_log_before_we_took_them_are_told():
    watch, _, _, _, _, told = watcher([answer(entry(9), oldest=8)], after=5)
    asyncio.run(watch.once(GROUP))
    assert [type(e) for e in told] == [GroupSplit]


def test_a_first_watch_from_the_start_of_the_log_tells_nothing_missed():
    watch, _, _, _, _, told = watcher([answer(entry(9), oldest=8)], after=0)
    asyncio.run(watch.once(GROUP))
    assert told == []


def test_an_entry_that_removes_us_ends_the_batch_and_keeps_no_position():
    removing = entry(2, post=GroupPost.COMMIT)
    watch, _, records, intake, _, _ = watcher(
        [answer(entry(1), removing, entry(3))], removing=removing.message_id
    )
    asyncio.run(watch.once(GROUP))
    assert records.stored == [] and intake.taken[:2] == [entry(1).message_id, removing.message_id]


def test_a_one_shot_catch_up_asks_again_while_entries_come():
    watch, record, _, _, link, _ = watcher([answer(entry(1)), answer(entry(2)), answer()])
    assert asyncio.run(watch.catch_up()) == [entry(1).message_id, entry(2).message_id]
    assert [a["after"] for a in link.asked] == [0, 1, 2] and record.after == 2


def test_a_group_logged_at_home_is_not_watched():
    watch, record, _, _, _, _ = watcher([])
    assert watch.watched() == [GROUP]
    record.node = HOME
    assert watch.watched() == []


def test_following_holds_a_watch_per_group_and_stops_when_closed():
    async def main():
        watch, _, _, _, link, _ = watcher([answer(entry(1))])
        sink: asyncio.Queue = asyncio.Queue()
        watch.start(sink)
        assert await asyncio.wait_for(sink.get(), 5) == entry(1).message_id
        while len(link.asked) < 2:  # the next watch, held
            await asyncio.sleep(0.01)
        assert [(a["after"], a["hold"]) for a in link.asked] == [(0, 55), (1, 55)]
        await watch.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
