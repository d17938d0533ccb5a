"""Federation with real processes: nodes A and B on one local mixnet; people registered at
one of them reach people at the other directly through the mixnet, anonymously (never
through their own node, never signing at the other)."""

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
from inprocess import event, record, until
from nodeclient import Client, run

from nymchat import _native
from nymchat.client import messages, ops
from nymchat.client.connect import connect
from nymchat.client.events import (
    ContactMoved,
    GroupJoined,
    GroupRemoved,
    Status,
    StatusChanged,
)
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import NodeLink
from nymchat.client.nodes import KnownNodes
from nymchat.client.profile import Profile
from nymchat.client.records import DirectStatus
from nymchat.demo import every_value
from nymchat.errors import NotFound, TooLong, UsageError
from nymchat.nym import base58
from nymchat.protocol import pow
from nymchat.protocol.address import Address
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Kind


def test_one_nym_client_signs_at_home_and_looks_up_anonymously_at_a_foreign_node(
    start_mixnet, start_node
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")

    async def main():
        async with Client(f"{mixnet.url}/bob", b.contact) as bob:
            assert (await bob.register("bob")).kind is Kind.REGISTERED
            async with Client(f"{mixnet.url}/alice", a.contact) as alice:
                assert (await alice.register("alice")).kind is Kind.REGISTERED
                foreign = NodeLink(
                    alice.transport,
                    NodeContact.parse(b.contact),
                    alice.identity,
                    reader=alice.link.reader,
                    anonymous_only=True,
                )
                async with foreign:
                    found = await foreign.request(
                        Kind.LOOKUP, timeout=5, username="bob", proof_of_work=0
                    )
                    while found.kind is Kind.POW_REQUIRED:
                        request_id = os.urandom(16)
                        nonce = pow.solve(
                            pow.lookup(foreign.contact.key, request_id, "bob"),
                            found.body["difficulty"],
                        )
                        found = await foreign.request(
                            Kind.LOOKUP,
                            timeout=5,
                            request_id=request_id,
                            username="bob",
                            proof_of_work=nonce,
                        )
                    assert found.kind is Kind.BUNDLE
                    assert found.body["identity"] == bob.identity.signing_public
                    # Signed requests still go home, answered on the same nym-client.
                    refreshed = await alice.request(Kind.REFRESH)
                    assert refreshed.kind is Kind.REFRESHED
                    assert foreign.frontends.record()["home"] is None
                    assert foreign.frontends.descriptor is not None  # fetched anonymously

    run(main(), timeout=120)


def new_profile(home: Path) -> Profile:
    home.mkdir()
    return Profile(home, _native.Identity.generate())


async def online(stack, profile: Profile, url: str, node: str | None = None):
    """An engine of `profile` on its own virtual nym-client (its node: `node`, else the
    profile's), closed with `stack`; what it takes in while following goes to `got`."""
    engine = await stack.enter_async_context(
        connect(profile, url, NodeContact.parse(node) if node else None)
    )
    engine.got, engine.told = [], record(engine)
    return engine


async def follow(engine) -> asyncio.Task:
    async def run_() -> None:
        async for message in engine.follow(refresh_every=2):
            engine.shown(message)
            engine.got.append(message)

    return asyncio.create_task(run_())


def node_rows(data: Path) -> list[bytes]:
    """Every value of every row of a node's database, as bytes."""
    db = sqlite3.connect(f"file:{data / 'node.db'}?mode=ro", uri=True)
    try:
        return every_value(db)
    finally:
        db.close()


def naming(rows: list[bytes], name: str, identity) -> list[bytes]:
    marks = (name.encode(), identity.signing_public, identity.agreement_public)
    return [row for row in rows if any(mark in row for mark in marks)]


def test_alice_at_a_and_bob_at_b_talk_with_receipts_queueing_and_without_a(
    start_mixnet, start_node, tmp_path
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")
    key_a, key_b = NodeContact.parse(a.contact).key, NodeContact.parse(b.contact).key

    alice_p, bob_p, carol_p = (new_profile(tmp_path / n) for n in ("alice", "bob", "carol"))

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            bob = await online(stack, bob_p, f"{mixnet.url}/bob", b.contact)
            await alice.register("alice")
            await bob.register("bob")
            KnownNodes(alice_p.store).add(
                "node-b", NodeContact.parse(b.contact), "manual", now_ms()
            )
            following = [await follow(alice), await follow(bob)]

            # alice looks bob up at B (anonymously, never at A) and writes to him there.
            contact = await alice.lookup("bob@node-b")
            assert (contact.username, contact.node) == (f"bob@{base58.encode(key_b)}", key_b)
            sent = await alice.send("bob@node-b", "hello bob, from A")
            got = await until(lambda: bob.got)
            alice_at_a = f"alice@{base58.encode(key_a)}"
            assert (got[0].sender, got[0].text) == (alice_at_a, "hello bob, from A")
            assert bob.contact(alice_at_a).node == key_a
            await event(alice.told, StatusChanged, message_id=sent, status=Status.DELIVERED)

            # bob answers at A, where he has no account: the message said how to reach it.
            answer = await bob.send(got[0].sender, "hello alice, from B")
            got = await until(lambda: alice.got)
            assert (got[0].sender, got[0].text) == (contact.username, "hello alice, from B")
            await event(bob.told, StatusChanged, message_id=answer, status=Status.DELIVERED)

            # Direct mode across nodes: asked for through B and A, then off both.
            bob_at_b = contact.username
            await alice.direct_action("invite", bob_at_b)
            await until(lambda: bob.direct_status(alice_at_a) is DirectStatus.INVITED)
            await bob.direct_action("accept", alice_at_a)
            await until(lambda: alice.direct_status(bob_at_b) is DirectStatus.ON)
            direct = await alice.send(bob_at_b, "just between us")
            await until(lambda: any(m.message_id == direct for m in bob.got))
            assert alice.message(direct).status is Status.DELIVERED  # bob's receipt, direct
            await alice.direct_action("end", bob_at_b)

            # bob goes away: B queues alice's next message; he takes it when back.
            for task in following:
                task.cancel()
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice")
            queued = await alice.send(f"bob@{base58.encode(key_b)}", "while you were away")
            assert alice.message(queued).status is Status.ACCEPTED
        async with contextlib.AsyncExitStack() as stack:
            bob = await online(stack, bob_p, f"{mixnet.url}/bob")
            later = await bob.inbox(quiet=1)
            assert [m.text for m in later] == ["while you were away"]
            for message in later:
                bob.shown(message)

            # Node A stops: bob and carol, both on B, talk on.
            a.stop()
            carol = await online(stack, carol_p, f"{mixnet.url}/carol", b.contact)
            await carol.register("carol")
            bob_follows = await follow(bob)
            await carol.send("bob", "A is gone, B is not")
            got = await until(lambda: bob.got)
            assert (got[0].sender, got[0].text) == ("carol", "A is gone, B is not")
            bob_follows.cancel()

    run(main(), timeout=180)
    b.stop()
    # What each node learnt: B nothing naming alice, A nothing naming bob.
    assert naming(node_rows(b.data), "alice", alice_p.identity) == []
    assert naming(node_rows(a.data), "bob", bob_p.identity) == []
    assert naming(node_rows(b.data), "bob", bob_p.identity) != []  # (what it does look like)
    for p in (alice_p, bob_p, carol_p):
        p.close()


def test_alice_moves_from_a_to_b_and_her_contacts_follow_without_asking(
    start_mixnet, start_node, tmp_path
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")
    key_a, key_b = NodeContact.parse(a.contact).key, NodeContact.parse(b.contact).key
    alice_at_a = f"alice@{base58.encode(key_a)}"

    alice_p, bob_p, carol_p = (new_profile(tmp_path / n) for n in ("alice", "bob", "carol"))

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            carol = await online(stack, carol_p, f"{mixnet.url}/carol", a.contact)
            bob = await online(stack, bob_p, f"{mixnet.url}/bob", b.contact)
            for engine, name in ((alice, "alice"), (carol, "carol"), (bob, "bob")):
                await engine.register(name)
            KnownNodes(alice_p.store).add(
                "node-b", NodeContact.parse(b.contact), "manual", now_ms()
            )
            following = [await follow(bob), await follow(carol)]
            # alice knows bob (at B) and carol (at A, her node): sessions both ways.
            await alice.send("bob@node-b", "hi bob")
            await alice.send("carol", "hi carol")
            await until(lambda: len(bob.got) == 1 and len(carol.got) == 1)
            await bob.send(alice_at_a, "hi alice")
            await carol.send("alice", "this one waits at A for alice")
            for task in following:
                task.cancel()
        async with contextlib.AsyncExitStack() as stack:
            # alice moves to B: registered there, contacts told, A drained and freed.
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", b.contact)
            moved = await alice.move("alice")
            assert (moved.contacts, moved.waiting, moved.freed) == (2, [], None)
            assert moved.unread == 2  # bob's and carol's, taken in from A before it freed her
            assert alice.profile.node.key == key_b
            assert KnownNodes(alice_p.store).home_key() == key_b
            assert alice.display("carol") == "carol@old-home"  # carol stays at A
            bob = await online(stack, bob_p, f"{mixnet.url}/bob")
            carol = await online(stack, carol_p, f"{mixnet.url}/carol")
            following = [await follow(alice), await follow(bob), await follow(carol)]

            # bob's and carol's clients follow her, without asking anyone.
            await event(bob.told, ContactMoved, username=alice_at_a)
            await event(carol.told, ContactMoved, username="alice")
            assert bob.contact(alice_at_a).node == key_b
            assert bob.display(alice_at_a) == "alice"  # his own node's now
            assert carol.contact("alice").node == key_b
            assert carol.display("alice") == f"alice@{base58.encode(key_b)[:8]}"

            # They write to her at B, and she answers carol at A, anonymously.
            to_alice = await bob.send("alice", "welcome to B")
            await carol.send("alice", "you moved!")
            await until(lambda: len(alice.got) == 4)  # with the two taken in from A
            assert sorted((m.sender, m.text) for m in alice.got) == [
                (f"bob@{base58.encode(key_b)}", "hi alice"),
                (f"bob@{base58.encode(key_b)}", "welcome to B"),
                ("carol", "this one waits at A for alice"),
                ("carol", "you moved!"),
            ]
            await event(bob.told, StatusChanged, message_id=to_alice, status=Status.DELIVERED)
            back = await alice.send("carol", "yes, to B")
            await until(lambda: any(m.text == "yes, to B" for m in carol.got))
            assert [m.sender for m in carol.got if m.text == "yes, to B"] == ["alice"]
            await event(alice.told, StatusChanged, message_id=back, status=Status.DELIVERED)

            # A freed the name: a lookup of alice there finds nobody.
            with pytest.raises(NotFound, match="no user 'alice' here"):
                await carol.lookup(Address("alice", key_a))
            for task in following:
                task.cancel()

    run(main(), timeout=240)
    for p in (alice_p, bob_p, carol_p):
        p.close()


def test_a_move_away_from_a_node_that_is_down_is_finished_when_it_is_back(
    start_mixnet, start_node, tmp_path, monkeypatch
):
    monkeypatch.setenv("NYMCHAT_NODE_TIMEOUT", "2")
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")
    key_a, key_b = NodeContact.parse(a.contact).key, NodeContact.parse(b.contact).key
    alice_at_a = f"alice@{base58.encode(key_a)}"
    alice_p, bob_p = (new_profile(tmp_path / n) for n in ("alice", "bob"))

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            bob = await online(stack, bob_p, f"{mixnet.url}/bob", b.contact)
            await alice.register("alice")
            await bob.register("bob")
            KnownNodes(alice_p.store).add("node-b", NodeContact.parse(b.contact), "manual", 0)
            KnownNodes(bob_p.store).add("node-a", NodeContact.parse(a.contact), "manual", 0)
            await alice.send("bob@node-b", "hi bob")
            bob_follows = await follow(bob)
            await until(lambda: bob.got)
            bob_follows.cancel()
        a.stop()
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", b.contact)
            moved = await alice.move("alice")
            assert (moved.contacts, moved.waiting) == (1, [])  # bob's node answers
            assert moved.freed is not None  # A's does not: the move is not finished
            assert alice.profile.node.key == key_b
            bob = await online(stack, bob_p, f"{mixnet.url}/bob")
            bob_follows = await follow(bob)
            await event(bob.told, ContactMoved, username=alice_at_a)
            bob_follows.cancel()
        start_node(mixnet, data=a.data, name="node-a")  # A is back (same key, addresses)
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", b.contact)
            again = await alice.move("alice")
            assert (again.contacts, again.waiting, again.freed) == (1, [], None)
            with pytest.raises(UsageError, match="registered at that node already"):
                await alice.move("alice")
            bob = await online(stack, bob_p, f"{mixnet.url}/bob")
            with pytest.raises(NotFound, match="no user 'alice' here"):  # A freed the name
                await bob.lookup("alice@node-a")

    run(main(), timeout=240)
    for p in (alice_p, bob_p):
        p.close()


def test_a_group_across_three_nodes_members_elsewhere_watch_its_log(
    start_mixnet, start_node, tmp_path
):
    mixnet = start_mixnet()
    a, b, c = (start_node(mixnet, name=f"node-{n}") for n in "abc")
    key_a, key_c = NodeContact.parse(a.contact).key, NodeContact.parse(c.contact).key

    alice_p, bob_p, carol_p = (new_profile(tmp_path / n) for n in ("alice", "bob", "carol"))
    alice_at_a = f"alice@{base58.encode(key_a)[:8]}"

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            bob = await online(stack, bob_p, f"{mixnet.url}/bob", b.contact)
            carol = await online(stack, carol_p, f"{mixnet.url}/carol", c.contact)
            for engine, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
                await engine.register(name)
            nodes = KnownNodes(alice_p.store)
            nodes.add("node-b", NodeContact.parse(b.contact), "manual", now_ms())
            nodes.add("node-c", NodeContact.parse(c.contact), "manual", now_ms())
            following = [await follow(alice), await follow(bob), await follow(carol)]

            # alice@A creates #trio with bob@B and carol@C: their keys claimed at their
            # nodes, the log at A, the Welcome to each of them end to end.
            # (through the API every face uses: members typed and shown as people are)
            params = {"name": "#trio", "members": ["bob@node-b", "carol@Node-C"]}
            trio = (await ops.call(alice, "group.create", params))["group"]
            assert sorted(m["name"] for m in trio["members"]) == [
                "alice",
                "bob@node-b",
                "carol@node-c",
            ]
            await event(bob.told, GroupJoined, group="trio", by=alice_at_a)
            await event(carol.told, GroupJoined, group="trio", by=alice_at_a)
            assert sorted(m.name for m in bob.group("trio").members) == [
                alice_at_a,
                "bob",
                f"carol@{base58.encode(key_c)[:8]}",
            ]

            # Each says something; everyone gets everything (bob and carol by watching A).
            delays = []
            for engine, text in ((alice, "hi from A"), (bob, "hi from B"), (carol, "hi from C")):
                await engine.send("#trio", text)
                posted = asyncio.get_running_loop().time()
                others = [e for e in (alice, bob, carol) if e is not engine]
                await until(lambda t=text, o=others: all(t in [m.text for m in e.got] for e in o))
                delays.append(f"{(asyncio.get_running_loop().time() - posted) * 1000:.0f}")
            print(f"post -> received by every other member: {', '.join(delays)} ms")
            assert sorted((m.sender, m.text) for m in alice.got) == [
                ("bob@node-b", "hi from B"),
                ("carol@node-c", "hi from C"),
            ]
            assert sorted((m.sender, m.text) for m in bob.got) == [
                (alice_at_a, "hi from A"),
                (f"carol@{base58.encode(key_c)[:8]}", "hi from C"),
            ]
            assert sorted(m.text for m in carol.got) == ["hi from A", "hi from B"]

            # bob leaves (a proposal at A: he has no account there); alice commits it.
            await bob.group_leave("trio")
            assert bob.groups() == []
            await until(lambda: len(alice.group("trio").members) == 2)
            await until(lambda: len(carol.group("trio").members) == 2)

            # carol removes nobody but sends on; alice gets it, bob no longer.
            await carol.send("#trio", "just us two")
            await until(lambda: "just us two" in [m.text for m in alice.got])
            await asyncio.sleep(0.5)
            assert "just us two" not in [m.text for m in bob.got]

            # carol stops following: a one-shot inbox takes what was said meanwhile from A.
            following[2].cancel()
            await asyncio.wait([following[2]])
            await alice.send("#trio", "are you there?")
            assert [m.text for m in await carol.inbox(quiet=1)] == ["are you there?"]

            # alice removes carol (A is not told her name): carol learns it from the log.
            await alice.group_remove("trio", ["carol@node-c"])
            await carol.inbox(quiet=1)
            await event(carol.told, GroupRemoved, group="trio")
            assert carol.groups() == [] and len(alice.group("trio").members) == 1
            for task in following:
                task.cancel()

    run(main(), timeout=240)
    for node in (a, b, c):
        node.stop()
    # A keeps the log, and names neither bob nor carol (their nodes keep their accounts).
    assert naming(node_rows(a.data), "bob", bob_p.identity) == []
    assert naming(node_rows(a.data), "carol", carol_p.identity) == []
    for p in (alice_p, bob_p, carol_p):
        p.close()


def test_after_a_move_a_group_logged_at_the_old_home_is_watched_there(
    start_mixnet, start_node, tmp_path
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")

    alice_p, carol_p = (new_profile(tmp_path / n) for n in ("alice", "carol"))

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            carol = await online(stack, carol_p, f"{mixnet.url}/carol", a.contact)
            await alice.register("alice")
            await carol.register("carol")
            await alice.group_create("pair", ["carol"])  # logged at A, both pushed to
        async with contextlib.AsyncExitStack() as stack:
            carol = await online(stack, carol_p, f"{mixnet.url}/carol")
            await carol.group_create("later", ["alice"])  # its Welcome waits for her at A
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", b.contact)
            await alice.move("alice")  # (taking in what waited at A: a group logged there)
            carol = await online(stack, carol_p, f"{mixnet.url}/carol")
            following = [await follow(alice), await follow(carol)]
            await until(lambda: "pair" in [g.name for g in carol.groups()])
            await carol.send("#pair", "you moved, the group did not")
            got = await until(lambda: alice.got)
            assert (got[0].sender, got[0].text) == (
                "carol@old-home",
                "you moved, the group did not",
            )
            await alice.send("#pair", "and I still follow it")
            await until(lambda: "and I still follow it" in [m.text for m in carol.got])
            await carol.send("#later", "this one too")
            await until(lambda: "this one too" in [m.text for m in alice.got])
            for task in following:
                task.cancel()

    run(main(), timeout=180)
    for p in (alice_p, carol_p):
        p.close()


def test_a_welcome_larger_than_a_message_adds_nobody_elsewhere(
    start_mixnet, start_node, tmp_path, monkeypatch
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")
    alice_p, bob_p = (new_profile(tmp_path / n) for n in ("alice", "bob"))
    # (a Welcome holds the group's tree: past ~180 members it is more than 49,177 bytes)
    monkeypatch.setattr(messages, "MAX_BODY", 1000)

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            alice = await online(stack, alice_p, f"{mixnet.url}/alice", a.contact)
            bob = await online(stack, bob_p, f"{mixnet.url}/bob", b.contact)
            await alice.register("alice")
            await bob.register("bob")
            KnownNodes(alice_p.store).add(
                "node-b", NodeContact.parse(b.contact), "manual", now_ms()
            )
            with pytest.raises(TooLong, match="too large to add members at other nodes"):
                await alice.group_create("big", ["bob@node-b"])
            assert alice.groups() == []
            await alice.group_create("small", [])
            with pytest.raises(TooLong):
                await alice.group_add("small", ["bob@node-b"])
            assert [m.name for m in alice.group("small").members] == ["alice"]

    run(main(), timeout=120)
    for p in (alice_p, bob_p):
        p.close()
