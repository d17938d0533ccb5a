"""Contact cards and known nodes through dist/nymchat, with two nodes on one mixnet: a
card gives its owner's name, identity and home node; taking one for an unknown node asks
before the node is pinned (refused without a terminal and without --yes); a forged card is
refused; `nodes` lists, adds, renames and removes petnames."""

import json
from types import SimpleNamespace

import pexpect
import pytest
from procs import PASSPHRASE, User, clean_env

from nymchat.nym import base58
from nymchat.protocol import card
from nymchat.protocol.contact import NodeContact

pytestmark = pytest.mark.cli


@pytest.fixture
def two(net, start_node, shiv_root, tmp_path):
    """alice registered at node A, bob at node B, one mixnet."""
    mixnet, node_a = net
    node_b = start_node(mixnet, name="node-b")
    alice = User("alice", tmp_path / "alice", shiv_root, mixnet, node_a)
    bob = User("bob", tmp_path / "bob", shiv_root, mixnet, node_b)
    alice.register()
    bob.register()
    return alice, bob, NodeContact.parse(node_a.contact), NodeContact.parse(node_b.contact)


def spawn(user: User, *args: str) -> pexpect.spawn:
    """`user` running dist/nymchat on a terminal."""
    environ = clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE)
    return pexpect.spawn(
        user.command[-1],
        ["--home", str(user.home), *args],
        env=environ,
        encoding="utf-8",
        timeout=60,
    )


def test_a_card_gives_the_name_its_identity_and_the_home_node_and_bob_pins_the_node(two):
    alice, bob, node_a, node_b = two
    given = json.loads(alice("contacts", "card", "--json").stdout)
    taken = card.decode(given["card"])
    assert (given["name"], taken.name, taken.node.key) == ("alice", "alice", node_a.key)
    assert NodeContact.parse(given["node"]).key == node_a.key
    keys = json.loads(alice("keys", "show", "--json").stdout)
    assert taken.identity.hex() == keys["signing_public"]
    assert given["fingerprint"] == keys["fingerprint"]
    assert alice("contacts", "card").stdout == given["card"] + "\n"  # no QR: not a terminal

    refused = bob("contacts", "add", given["card"], check=False)
    assert refused.returncode == 2 and "without a terminal give --yes" in refused.stderr
    assert [n["petname"] for n in bob.json("nodes", "list")[0]] == ["home"]

    added = bob.json("contacts", "add", given["card"], "--yes")[0]
    safety = added.pop("safety_number")
    assert added == {
        "address": "alice@alice-node",
        "name": "alice",
        "identity": taken.identity.hex(),
        "node": "alice-node",
        "node_pinned": True,
        "key_changed": False,
    }
    bob("send", "alice@alice-node", "hello from a card")
    assert "hello from a card" in alice("inbox").stdout
    assert bob.json("lookup", "alice@alice-node")[0]["safety_number"] == safety
    known = bob.json("nodes", "list")[0]
    assert [(n["petname"], n["key"], n["learned"]) for n in known] == [
        ("home", base58.encode(node_b.key), "home"),
        ("alice-node", base58.encode(node_a.key), "card"),
    ]
    again = bob.json("contacts", "add", given["card"])[0]  # a known node: nothing to ask
    assert again["node_pinned"] is False and again["address"] == "alice@alice-node"


def test_a_card_whose_name_the_node_now_gives_another_identity_pins_no_one(two, tmp_path):
    """The card's name was freed and taken by someone else at the node: the keys the node
    gives are not the card's identity, so nobody is pinned under the card's address."""
    alice, bob, _, _ = two
    text = json.loads(alice("contacts", "card", "--json").stdout)["card"]
    alice("unregister", "--yes")
    mixnet = SimpleNamespace(url=alice.nym.rsplit("/", 1)[0])
    node_a = SimpleNamespace(contact=alice.contact)
    mallory = User("mallory", tmp_path / "mallory", alice.shiv_root, mixnet, node_a)
    mallory("keys", "new")
    mallory("register", "alice", "--node", mallory.contact, "--nym", mallory.nym)
    refused = bob("contacts", "add", text, "--yes", check=False)
    assert refused.returncode != 0
    assert "another identity than the card's" in refused.stderr
    assert bob.json("contacts", "list")[0] == []


def test_a_card_whose_node_signature_is_forged_is_refused(two):
    alice, bob, _, _ = two
    text = json.loads(alice("contacts", "card", "--json").stdout)["card"]
    data = bytearray(base58.decode(text.removeprefix(card.PREFIX)))
    certificate_end = 3 + int.from_bytes(data[1:3], "big")
    data[certificate_end - 1] ^= 1  # the node's signature of the certificate
    forged = bob("contacts", "add", card.PREFIX + base58.encode(bytes(data)), "--yes", check=False)
    assert forged.returncode == 2
    assert "the card is forged: its node did not certify this name" in forged.stderr
    assert [n["petname"] for n in bob.json("nodes", "list")[0]] == ["home"]


def test_a_card_for_an_unknown_node_asks_on_a_terminal_and_pins_only_on_yes(two):
    alice, bob, node_a, _ = two
    text = json.loads(alice("contacts", "card", "--json").stdout)["card"]
    child = spawn(alice, "contacts", "card")
    child.expect(pexpect.EOF)
    assert text in child.before and "█" in child.before  # the QR code, on a terminal

    child = spawn(bob, "contacts", "add", text, "--node-name", "Work")
    child.expect(f"node key {base58.encode(node_a.key)} \\(2 addresses\\)")
    child.expect(r"Pin this node as 'work'\? \[y/N\] ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "not confirmed: no node was pinned" in child.before
    assert [n["petname"] for n in bob.json("nodes", "list")[0]] == ["home"]

    child = spawn(bob, "contacts", "add", text, "--node-name", "work")
    child.expect(r"\[y/N\] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "added alice@work" in child.before
    assert bob.json("nodes", "list")[0][1]["petname"] == "work"


def test_nodes_are_added_renamed_and_removed_by_petname_and_home_stays(two):
    _, bob, node_a, _ = two
    refused = bob("nodes", "add", "work", str(node_a), check=False)
    assert refused.returncode == 2 and "without a terminal give --yes" in refused.stderr
    added = bob.json("nodes", "add", "work", str(node_a), "--yes")[0]["added"]
    assert (added["petname"], added["key"], added["learned"]) == (
        "work",
        base58.encode(node_a.key),
        "manual",
    )
    twice = bob("nodes", "add", "office", str(node_a), "--yes", check=False)
    assert twice.returncode == 2 and "already known as 'work'" in twice.stderr
    other = NodeContact(bytes(range(32)), node_a.addresses)
    look_alike = bob("nodes", "add", "vvork", str(other), "--yes", check=False)
    assert look_alike.returncode == 2 and "already called" in look_alike.stderr
    assert bob("nodes", "rename", "work", "office").stdout == "renamed 'work' to 'office'\n"
    listed = bob("nodes", "list").stdout.splitlines()  # one node a line
    assert [row.split() for row in listed][1] == ["office", base58.encode(node_a.key), "manual"]
    assert listed[0].split()[0] == "home" and len(listed) == 2
    home = bob("nodes", "remove", "home", check=False)
    assert home.returncode == 2 and "your home node" in home.stderr
    assert bob.json("nodes", "remove", "office")[0]["removed"]["petname"] == "office"
    unknown = bob("nodes", "remove", "office", check=False)
    assert unknown.returncode == 4 and "no node is called 'office'" in unknown.stderr
    assert [n["petname"] for n in bob.json("nodes", "list")[0]] == ["home"]


def test_a_nodes_directory_is_asked_anonymously_and_a_node_pinned_from_it(
    start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    node_b = start_node(mixnet, name="node-b")
    listed = tmp_path / "nodes.txt"
    listed.write_text(f"# the nodes we know\nbee {node_b.contact}\n")
    node_a = start_node(mixnet, "--directory", str(listed))
    alice = User("alice", tmp_path / "alice", shiv_root, mixnet, node_a)
    alice.register()
    key_b = base58.encode(NodeContact.parse(node_b.contact).key)

    directory = alice.json("nodes", "directory")[0]
    assert directory == [{"petname": "bee", "key": key_b, "contact": node_b.contact, "known": None}]
    refused = alice("nodes", "add", "bee", check=False)
    assert refused.returncode == 2 and "without a terminal give --yes" in refused.stderr
    added = alice.json("nodes", "add", "bee", "--yes")[0]["added"]
    assert (added["petname"], added["key"], added["learned"]) == ("bee", key_b, "directory")
    assert alice.json("nodes", "directory")[0][0]["known"] == "bee"
    missing = alice("nodes", "add", "wasp", "--yes", check=False)
    assert missing.returncode == 4 and "the directory lists no node 'wasp'" in missing.stderr

    # B is asked through an anonymous-only link: it serves no directory
    none = alice("nodes", "directory", "bee", check=False)
    assert none.returncode == 4 and "this node lists no other nodes" in none.stderr


def test_a_node_with_a_bad_directory_line_does_not_start(shiv_root, tmp_path):
    import subprocess

    from procs import DIST

    listed = tmp_path / "nodes.txt"
    listed.write_text("# fine\nbee nymchat-node:nope:\n")
    out = subprocess.run(
        [str(DIST), "node", "--data", str(tmp_path / "node"), "--directory", str(listed)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD="operator password"),
    )
    assert out.returncode == 2 and f"{listed}, line 2: " in out.stderr
