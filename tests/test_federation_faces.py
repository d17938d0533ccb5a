"""How people at other nodes are shown, through dist/nymchat with alice at node A and bob
at node B: `alice@<8 characters of A's key>` until bob names A, then `alice@PETNAME`, which
he can type back; JSON gives that and the contact's stable id; people at one's own node
keep bare names (tests/test_cli.py and the others, unchanged)."""

import pytest
from test_cards_cli import two  # noqa: F401 (the fixture: alice at A, bob at B)

from nymchat.nym import base58
from nymchat.protocol.contact import NodeContact

pytestmark = pytest.mark.cli


def test_bob_sees_alice_by_a_short_key_until_he_names_her_node_then_by_its_petname(two):  # noqa: F811
    alice, bob, node_a, node_b = two
    short, full = base58.encode(node_a.key)[:8], f"alice@{base58.encode(node_a.key)}"
    alice("nodes", "add", "bobs", str(node_b), "--yes")
    sent = alice.json("send", "bob@bobs", "hello from A")[0]
    assert sent["to"] == "bob@bobs"

    assert f"alice@{short} (not verified): hello from A" in bob("inbox").stdout
    listed = bob.json("contacts", "list")[0]
    assert [(c["username"], c["id"]) for c in listed] == [(f"alice@{short}", full)]
    typed = bob("contacts", "show", f"alice@{short}", check=False)
    assert typed.returncode != 0 and "is named first, with `nymchat nodes add" in typed.stderr

    bob("nodes", "add", "work", str(node_a), "--yes")
    alice("send", "bob@bobs", "named now?")
    got = bob.json("inbox")
    assert [(m["sender"], m["text"]) for m in got] == [("alice@work", "named now?")]
    assert "] alice@work: named now?" in bob("contacts", "show", "alice@work").stdout
    listed = bob.json("contacts", "list")[0]
    assert [(c["username"], c["id"]) for c in listed] == [("alice@work", full)]
    history = bob.json("contacts", "show", "alice@work")[0]
    assert {m.get("from") for m in history} == {"alice@work"}
    shown = bob.json("contacts", "verify", "alice@work")[0]
    assert (shown["username"], shown["id"]) == ("alice@work", full)

    assert bob("send", "alice@work", "hi from B").stdout == "accepted by the node for alice@work\n"
    assert "bob@bobs (not verified): hi from B" in alice("inbox").stdout
    found = alice.json("lookup", "bob@bobs")[0]
    assert (found["username"], found["id"]) == ("bob@bobs", f"bob@{base58.encode(node_b.key)}")


def test_alice_moves_to_bobs_node_with_one_command_and_bob_follows(two):  # noqa: F811
    alice, bob, node_a, node_b = two
    alice("nodes", "add", "bobs", str(node_b), "--yes")
    alice("send", "bob@bobs", "hello from A")
    bob("inbox")
    bob("send", f"alice@{base58.encode(node_a.key)}", "waits at A")

    again = alice("register", "alice", "--node", str(node_b), check=False)
    assert again.returncode != 0 and "add --move to move there" in again.stderr

    moved = alice("register", "alice", "--node", str(node_b), "--move")
    assert moved.stdout == (
        "moved alice to node bobs (from old-home); told 1 of 1 contacts, whose clients follow\n"
        "1 message(s) not read yet: `nymchat inbox` shows them\n"
    )
    assert "] bob (not verified): waits at A" in alice("inbox").stdout  # bob's node is hers
    nodes = {n["petname"]: n for n in alice.json("nodes", "list")[0]}
    assert sorted(nodes) == ["bobs", "old-home"]
    assert NodeContact.parse(nodes["bobs"]["contact"]).key == node_b.key

    told = bob("inbox")
    assert "moved to another node (their own signed word)" in told.stderr
    assert [c["username"] for c in bob.json("contacts", "list")[0]] == ["alice"]
    bob("send", "alice", "welcome to B")
    assert "] bob (not verified): welcome to B" in alice("inbox").stdout

    rerun = alice("register", "alice", "--node", str(node_b), "--move", check=False)
    assert rerun.returncode == 2 and "registered at that node already" in rerun.stderr


def test_a_group_with_a_member_at_another_node_through_the_cli(two):  # noqa: F811
    alice, bob, node_a, node_b = two
    short = base58.encode(node_a.key)[:8]
    alice("nodes", "add", "bobs", str(node_b), "--yes")
    created = alice("group", "create", "pair", "bob@bobs").stdout
    assert created.splitlines()[0] == "created #pair"
    assert "bob@bobs" in created
    alice("send", "#pair", "hello from A")
    alice("inbox")  # alice takes A's copies: A keeps the log for bob all the same

    got = bob.json("inbox")  # the invite (end to end, at B), then the log watched at A
    assert [(m["sender"], m["text"], m["group"]) for m in got] == [
        (f"alice@{short}", "hello from A", "pair")
    ]
    members = bob.json("group", "show", "pair")[0]["group"]["members"]
    assert sorted(m["name"] for m in members) == [f"alice@{short}", "bob"]
    bob("send", "#pair", "hi from B")
    assert "bob@bobs: hi from B" in alice("inbox").stdout
