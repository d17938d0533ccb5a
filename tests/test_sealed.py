"""Sealed sending, played by the operator: after people talk both ways through a node with
two frontends (messages, receipts, lookups, a stranger's first message), nothing the node
holds (its database, its logs, its metrics) links a sender's account to a message or a
lookup."""

import socket
import sqlite3
import urllib.request

import pytest
from procs import User

from nymchat.client.frontends import rendezvous
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Frontend

pytestmark = pytest.mark.cli
NAMES = ("alice", "bob", "carol")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_operator_finds_no_sender_in_the_database_logs_or_metrics(
    start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    port = _free_port()
    node = start_node(mixnet, "--metrics", f"127.0.0.1:{port}", "-v", "--log-format", "json")
    alice, bob, carol = (User(n, tmp_path / n, shiv_root, mixnet, node) for n in NAMES)
    for user in (alice, bob, carol):
        user.register()

    alice("lookup", "bob")
    alice("send", "bob", "first words, as a stranger")
    assert [m["text"] for m in bob.json("inbox")] == ["first words, as a stranger"]
    bob("send", "alice", "an answer, as a contact")
    assert [m["text"] for m in alice.json("inbox")] == ["an answer, as a contact"]
    alice("send", "bob", "and again")
    assert [m["text"] for m in bob.json("inbox")] == ["and again"]
    carol("send", "alice", "a stranger writes")
    assert [(m["from"], m["text"]) for m in alice.json("inbox")] == [("carol", "a stranger writes")]
    alice("inbox")  # bob's receipt for "and again", sealed like any message
    assert carol.json("inbox") == []  # alice's receipt (not a message to show)
    shown = alice("contacts", "show", "bob").stdout
    assert shown.count("[delivered]") == 2, shown

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b'kind="sealed_send",result="ok"' in metrics
    assert node.stop() == 0

    held = b"".join(p.read_bytes() for p in node.data.glob("node.db*"))
    logs = node.log.read_bytes()
    for name in NAMES:
        for where, data in (("database", held), ("logs", logs), ("metrics", metrics)):
            assert name.encode() not in data, f"{name} in the node's {where}"

    db = sqlite3.connect(node.data / "node.db")
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        assert not columns & {"sender", "username", "from"}, (table, columns)

    # Every account's route (frontend ‖ tag) is its home's: a client's anonymous requests,
    # through the other frontend, never became the route of an account.
    contact = NodeContact.parse(node.contact)
    listed = tuple(Frontend(n, str(a)) for n, a in enumerate(contact.addresses, 1))
    routes = db.execute("SELECT identity, sender_tag FROM users").fetchall()
    assert len(routes) == 3 and len({route for _, route in routes}) == 3
    for identity, route in routes:
        home = rendezvous(identity, listed)[0].id
        assert int.from_bytes(route[:2], "big") == home
    queued = db.execute("SELECT count(*) FROM queue").fetchone()[0]
    assert queued == 0  # all delivered and acknowledged
