"""Groups (MLS, issue 16) between engines on the in-process node and mixnet
(tests/inprocess.py): the real node service as delivery service, the real MLS binding;
asserted on the engines' typed events and what they store."""

import asyncio

import pytest
from inprocess import event, following, network, record, run, take_in, until

from nymchat.client.events import (
    GroupChanged,
    GroupJoined,
    GroupRemoved,
    GroupSplit,
    Status,
    StatusChanged,
)
from nymchat.client.groupcommits import Change
from nymchat.client.nodelink import NodeSilent
from nymchat.client.records import MemberTrust
from nymchat.errors import KeyChanged, MlsError, NotFound, UsageError
from nymchat.protocol.wire import GroupPost, Kind


def texts(taken) -> list[tuple[str | None, str, str]]:
    return [(m.group, m.sender, m.text) for m in taken]


def posts(engine) -> list[dict]:
    """Every group post the engine makes from now on (its request body)."""
    made: list[dict] = []
    request = engine.link.request

    async def recording(kind, *args, **body):
        if kind is Kind.GROUP_POST:
            made.append(body)
        return await request(kind, *args, **body)

    engine.link.request = recording
    return made


def live(engine, name: str):
    """The engine's MLS group of `name`."""
    return engine.group_ops.records.named(name, engine.key_packages.member())[1]


async def team(net, *names: str, **options):
    """Engines registered as `names`; the first creates #team with the others, who join."""
    engines = [await net.engine(n, **options) for n in names]
    await engines[0].group_create("team", list(names[1:]))
    for engine in engines[1:]:
        events = record(engine)
        await take_in(engine)
        await event(events, GroupJoined, group="team", by=names[0])
    return engines


def test_three_members_each_read_what_the_others_send(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob, carol = await team(net, "alice", "bob", "carol")
            group = alice.group("#team")
            assert {m.name for m in group.members} == {"alice", "bob", "carol"}
            assert bob.group("team").epoch == group.epoch == carol.group("team").epoch
            a_events = record(alice)
            message_id = await alice.send("#team", "hello team")
            assert a_events == [
                StatusChanged(message_id, "#team", Status.QUEUED),
                StatusChanged(message_id, "#team", Status.ACCEPTED),
            ]
            await bob.send("#team", "hi from bob")
            await carol.send("#team", "hi from carol")
            assert len(await alice.inbox(quiet=0.2)) == 2  # taken in, not shown yet
            assert alice.group("team").unread == 2
            assert texts(await take_in(alice)) == [
                ("team", "bob", "hi from bob"),
                ("team", "carol", "hi from carol"),
            ]
            assert texts(await take_in(bob)) == [
                ("team", "alice", "hello team"),
                ("team", "carol", "hi from carol"),
            ]
            assert [(m.author, m.text) for m in alice.history("#team")] == [
                (None, "hello team"),
                ("bob", "hi from bob"),
                ("carol", "hi from carol"),
            ]
            # names only the group gave: unconfirmed; ours: you
            trust = {m.name: m.trust for m in bob.group("team").members}
            assert trust == {
                "alice": MemberTrust.UNCONFIRMED,
                "bob": MemberTrust.YOU,
                "carol": MemberTrust.UNCONFIRMED,
            }

    run(main())


def test_an_added_member_reads_what_follows_and_not_what_came_before(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            carol = await net.engine("carol")
            made = posts(alice)
            await alice.send("#team", "before carol")
            before = made[-1]["payload"]
            b_events, c_events = record(bob), record(carol)
            group = await alice.group_add("#team", ["carol"])
            assert {m.name for m in group.members} == {"alice", "bob", "carol"}
            await take_in(carol)
            await event(c_events, GroupJoined, group="team")
            await alice.send("#team", "after carol")
            assert texts(await take_in(carol)) == [("team", "alice", "after carol")]
            with pytest.raises(MlsError):
                live(carol, "team").process(before)
            assert [m.text for m in await take_in(bob)] == ["before carol", "after carol"]
            changed = await event(b_events, GroupChanged, group="team")
            assert (changed.added, changed.removed, changed.by) == (("carol",), (), "alice")

    run(main())


def test_a_removed_member_is_told_and_cannot_read_what_follows(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob, carol = await team(net, "alice", "bob", "carol")
            carols = carol.key_packages.member().load_group(live(carol, "team").state())
            c_events = record(carol)
            with pytest.raises(NotFound, match="not members of #team: dave"):
                await alice.group_remove("#team", ["carol", "dave"])
            group = await alice.group_remove("#team", ["carol"])
            assert {m.name for m in group.members} == {"alice", "bob"}
            made = posts(alice)
            await alice.send("#team", "without carol")
            assert await take_in(carol) == []
            await event(c_events, GroupRemoved, group="team")
            assert carol.groups() == []
            with pytest.raises(NotFound):
                carol.group("team")
            with pytest.raises(MlsError):
                carols.process(made[-1]["payload"])
            assert [m.text for m in await take_in(bob)] == ["without carol"]

    run(main())


def test_a_member_who_leaves_is_committed_out_by_another(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob, carol = await team(net, "alice", "bob", "carol")
            epoch = alice.group("team").epoch
            a_events = record(alice)
            await bob.group_leave("#team")
            assert bob.groups() == []
            await take_in(alice)  # the proposal: alice (lowest leaf) commits it
            changed = await event(a_events, GroupChanged, group="team", removed=("bob",))
            assert changed.epoch == epoch + 1
            await take_in(carol)
            assert {m.name for m in carol.group("team").members} == {"alice", "carol"}
            await carol.send("#team", "bob left")
            assert texts(await take_in(alice)) == [("team", "carol", "bob left")]
            assert await take_in(bob) == []

    run(main())


def test_a_key_update_comes_after_n_messages(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob", group_update_after=2)
            epoch = alice.group("team").epoch
            for n in range(3):
                await alice.send("#team", f"message {n}")
            assert alice.group("team").epoch == epoch + 1  # before the third
            b_events = record(bob)
            assert [m.text for m in await take_in(bob)] == [f"message {n}" for n in range(3)]
            update = await event(b_events, GroupChanged, group="team")
            assert (update.added, update.removed, update.by) == ((), (), "alice")
            assert bob.group("team").epoch == epoch + 1

    run(main())


def test_two_members_commit_at_once_and_the_loser_retries_alone(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            await net.engine("carol")
            await net.engine("dave")
            a_posts, b_posts = posts(alice), posts(bob)
            await asyncio.gather(
                alice.group_add("#team", ["carol"]), bob.group_add("#team", ["dave"])
            )
            commits = {p["message_id"] for p in a_posts + b_posts if p["post"] == GroupPost.COMMIT}
            assert len(commits) == 3  # one lost its epoch and was made again
            await take_in(alice)
            await take_in(bob)
            for engine in (alice, bob):
                group = engine.group("team")
                assert {m.name for m in group.members} == {"alice", "bob", "carol", "dave"}
            assert alice.group("team").epoch == bob.group("team").epoch

    run(main())


def test_a_message_of_a_prior_epoch_still_opens(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            await bob.send("#team", "sent in the old epoch")
            await alice.group_commits.commit(
                *alice.group_ops.records.named("team", alice.key_packages.member()),
                Change(update=True),  # a key update: the group moves on
            )
            assert texts(await take_in(alice)) == [("team", "bob", "sent in the old epoch")]

    run(main())


def test_a_copy_of_a_group_message_is_dropped(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            delivered: list[dict] = []
            take = bob.group_intake.take
            bob.group_intake.take = lambda body, node=None: (
                delivered.append(body) or take(body, node)
            )
            await alice.send("#team", "once")
            assert [m.text for m in await take_in(bob)] == ["once"]
            b_events = record(bob)
            assert bob.group_intake.take(delivered[-1]) == []
            assert b_events == []  # dropped by its id, not tried (MLS would refuse it)
            assert [m.text for m in bob.history("#team")] == ["once"]

    run(main())


def test_a_member_offline_across_several_epochs_catches_up(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, _bob, carol = await team(net, "alice", "bob", "carol")
            profile = carol.profile
            await net.close(carol)
            await net.engine("dave")
            await alice.send("#team", "one")
            await alice.group_add("#team", ["dave"])
            await alice.send("#team", "two")
            await alice.group_remove("#team", ["bob"])
            await alice.send("#team", "three")
            carol = await net.engine("carol", profile)
            assert [m.text for m in await take_in(carol)] == ["one", "two", "three"]
            group = carol.group("team")
            assert group.epoch == alice.group("team").epoch
            assert {m.name for m in group.members} == {"alice", "carol", "dave"}

    run(main())


def test_a_commit_that_cannot_be_applied_is_reported(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            _alice, bob = await team(net, "alice", "bob")
            b_events = record(bob)
            group = bob.group("team")
            entry = {
                "message_id": bytes(16),
                "group_id": group.group_id,
                "epoch": group.epoch,
                "post": GroupPost.COMMIT,
                "sent": 0,
                "payload": b"\x00\x01not a commit",
            }
            assert bob.group_intake.take(entry) == []
            await event(b_events, GroupSplit, group="team")
            assert bob.group("team").epoch == group.epoch

    run(main())


def test_a_restored_profile_forgets_its_groups_whose_keys_may_have_moved_on(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            _alice, bob = await team(net, "alice", "bob")
            profile = bob.profile
            await net.close(bob)
            profile.restored()
            bob = await net.engine("bob", profile)
            assert bob.groups() == []

    run(main())


def test_key_packages_running_low_are_published_anew(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await net.engine("alice"), await net.engine("bob")
            requests: list[Kind] = []
            request = bob.link.request

            async def recording(kind, *args, **body):
                requests.append(kind)
                return await request(kind, *args, **body)

            bob.link.request = recording
            claimed = {
                (await alice.group_ops.node.claim(alice.contact_ids.nodes.address("bob")))[1]
                for _ in range(11)
            }
            assert len(claimed) == 11  # each handed out once
            await take_in(bob)  # the node's push: 9 left
            assert Kind.PUBLISH_KEY_PACKAGES in requests

    run(main())


def test_adding_a_contact_whose_key_changed_is_refused(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await net.engine("alice"), await net.engine("bob")
            await alice.lookup("bob")
            await bob.unregister()
            await net.engine("bob")  # a new identity takes the name, and publishes its keys
            with pytest.raises(KeyChanged, match="key of bob changed"):
                await alice.group_create("team", ["bob"])
            assert alice.groups() == []

    run(main())


def test_a_member_named_as_a_contact_with_another_key_blocks_sending(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            await net.engine("carol")
            mallory = await net.engine("mallory")
            await alice.lookup("carol")  # the real carol, pinned
            # bob adds mallory under carol's name (a member may write any roster)
            identity, package = await bob.group_ops.node.claim(
                bob.contact_ids.nodes.address("mallory")
            )
            record, group = bob.group_ops.records.named("team", bob.key_packages.member())
            carol = bob.contact_ids.nodes.address("carol")
            claimed = {carol: (identity, package)}
            await bob.group_commits._commit_once(record, group, False, [carol], {}, claimed)
            await take_in(alice)
            trust = {m.identity: (m.name, m.trust) for m in alice.group("team").members}
            assert trust[mallory.profile.identity.signing_public] == ("carol", MemberTrust.MISMATCH)
            with pytest.raises(KeyChanged, match="not the carol you know"):
                await alice.send("#team", "to whom?")
            assert alice.history("#team") == []  # nothing was queued

    run(main())


def test_an_entry_of_a_later_epoch_waits_for_the_commit_that_leads_there(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob", group_update_after=1)
            held: list[dict] = []
            take = bob.group_intake.take
            bob.group_intake.take = lambda body, node=None: held.append(body) or []
            await alice.send("#team", "one")
            await alice.send("#team", "two")  # after a key update: the next epoch
            await take_in(bob)
            bob.group_intake.take = take
            one, commit, two = {b["message_id"]: b for b in held}.values()  # (pushed again)
            assert (commit["post"], two["epoch"]) == (GroupPost.COMMIT, commit["epoch"] + 1)
            assert take(two) == []  # it waits, sealed in the store
            assert [m.text for m in take(commit)] == ["two"]
            assert [m.text for m in take(one)] == ["one"]  # of the epoch before: still opens
            assert [m.text for m in bob.history("#team")] == ["two", "one"]

    run(main())


def test_a_message_that_comes_before_its_groups_welcome_waits_for_it(tmp_path):
    """The mixnet keeps no order: a member's first message may overtake the Welcome."""

    async def main():
        async with network(tmp_path) as net:
            alice, bob = [await net.engine(n) for n in ("alice", "bob")]
            held: list[dict] = []
            take = bob.group_intake.take
            bob.group_intake.take = lambda body, node=None: held.append(body) or []
            await alice.group_create("team", ["bob"])
            await alice.send("#team", "first")
            await take_in(bob)
            bob.group_intake.take = take
            welcome, first = {b["message_id"]: b for b in held}.values()  # (pushed again)
            assert (welcome["post"], first["post"]) == (GroupPost.WELCOME, GroupPost.APPLICATION)
            assert take(first) == []  # no such group yet: it waits, sealed in the store
            assert [m.text for m in take(welcome)] == ["first"]
            assert [(m.author, m.text) for m in bob.history("#team")] == [("alice", "first")]

    run(main())


def test_a_message_to_a_group_just_joined_takes_its_welcome_in_first(tmp_path):
    """`send '#team'` right after being added, before any `inbox`: the Welcome that waits
    at the node is taken in first."""

    async def main():
        async with network(tmp_path) as net:
            alice, bob = [await net.engine(n) for n in ("alice", "bob")]
            await alice.group_create("team", ["bob"])
            await bob.send("#team", "here already")
            assert texts(await take_in(alice)) == [("team", "bob", "here already")]
            with pytest.raises(NotFound, match="no group '#nosuch'"):
                await bob.send("#nosuch", "hello?")

    run(main())


def test_adding_someone_already_in_the_group_says_so(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, _bob = await team(net, "alice", "bob")
            epoch = alice.group("team").epoch
            with pytest.raises(UsageError, match="already in #team: bob"):
                await alice.group_add("team", ["bob"])
            assert alice.group("team").epoch == epoch

    run(main())


def test_a_conflict_is_resolved_while_the_losers_inbox_follows_the_node(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            await net.engine("carol")
            await net.engine("dave")
            async with following(alice), following(bob):  # they take the winner's commit in
                await asyncio.gather(
                    alice.group_add("#team", ["carol"]), bob.group_add("#team", ["dave"])
                )
                await until(lambda: alice.group("team").epoch == bob.group("team").epoch)
            for engine in (alice, bob):
                group = engine.group("team")
                assert {m.name for m in group.members} == {"alice", "bob", "carol", "dave"}

    run(main())


def lose_commit_answers(engine, taken: bool):
    """The engine's commits get no answer: the node takes them (`taken`) or never sees them."""
    request = engine.link.request

    async def answer_lost(kind, *args, **body):
        if kind is Kind.GROUP_POST and body["post"] == GroupPost.COMMIT:
            if taken:
                await request(kind, *args, **body)
            raise NodeSilent("the answer was lost")
        return await request(kind, *args, **body)

    engine.link.request = answer_lost
    return request


async def update(engine) -> None:
    await engine.group_commits.commit(
        *engine.group_ops.records.named("team", engine.key_packages.member()),
        Change(update=True),
    )


def test_a_commit_the_node_took_but_whose_answer_was_lost_is_applied_when_its_copy_comes(
    tmp_path,
):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            epoch = alice.group("team").epoch
            request = lose_commit_answers(alice, taken=True)
            with pytest.raises(NodeSilent):
                await update(alice)
            assert alice.group("team").epoch == epoch  # not known to be taken yet
            alice.link.request = request
            a_events = record(alice)
            await take_in(alice)  # the node's copy of it: ours won the epoch
            await event(a_events, GroupChanged, group="team", by="alice", epoch=epoch + 1)
            assert not [e for e in a_events if isinstance(e, GroupSplit)]
            await take_in(bob)
            await alice.send("#team", "after")
            assert texts(await take_in(bob)) == [("team", "alice", "after")]

    run(main())


def test_a_commit_whose_answer_was_lost_and_the_node_never_took_is_dropped_before_the_next(
    tmp_path,
):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await team(net, "alice", "bob")
            epoch = alice.group("team").epoch
            request = lose_commit_answers(alice, taken=False)
            with pytest.raises(NodeSilent):
                await update(alice)
            alice.link.request = request
            await update(alice)  # settles the first (no copy comes), then commits anew
            assert alice.group("team").epoch == epoch + 1
            await take_in(bob)
            assert bob.group("team").epoch == epoch + 1
            await alice.send("#team", "after")
            assert texts(await take_in(bob)) == [("team", "alice", "after")]

    run(main())
