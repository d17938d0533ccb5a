"""How people at other nodes are shown, through dist/nymchat with alice at node A and bob
at node B: `alice@<8 characters of A's key>` until bob names A, then `alice@PETNAME`, which
he can type back; JSON gives that and the contact's stable id; people at one's own node
keep bare names (tests/test_cli.py and the others, unchanged)."""

import pytest
from test_cards_cli import two  # noqa: F401 (the fixture: alice at A, bob at B)

from nymchat.nym import base58

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
