"""The threat model's malicious node (docs/SECURITY.md), played for real: the operator
stops the node, rewrites its database, and starts it again. Clients must show nothing
forged and must not send to a substituted key."""

import os
import sqlite3
import time

import pytest
from procs import PASSPHRASE, NodeProcess, User

from nymchat import _native, keystore
from nymchat.client import messages
from nymchat.client.profile import Profile
from nymchat.node.registration import name_key
from nymchat.node.store import NameHashes
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact

pytestmark = pytest.mark.cli


@pytest.fixture
def setting(start_mixnet, start_node, shiv_root, tmp_path):
    mixnet = start_mixnet("--max-held", "1")  # what is pushed to an offline client is
    # lost but the last, so the node pushes its queue, as the operator left it, again
    data = tmp_path / "node-data"
    node = start_node(mixnet, data=data)
    users = {
        n: User(n, tmp_path / n, shiv_root, mixnet, node)
        for n in ("alice", "bob", "carol", "mallory")
    }
    for user in users.values():
        user.register()
    return mixnet, node, data, users


def tamper(node, data, start_node, mixnet, *statements: tuple[str, tuple]) -> None:
    node.stop()
    db = sqlite3.connect(data / "node.db")
    with db:
        for sql, params in statements:
            db.execute(sql, params)
    db.close()
    start_node(mixnet, data=data)


def hashes(data) -> NameHashes:
    """The names' keyed hashes, as the operator, who has the node's password, makes them
    (the database alone names nobody)."""
    return NameHashes(name_key(keystore.unlock(data, NodeProcess.PASSWORD).secret_bytes()))


def substitute(node, data, start_node, mixnet, victim: str, impostor: str) -> None:
    """The operator hands out `impostor`'s keys as `victim`'s (both registered)."""
    h = hashes(data)
    victim_, impostor_ = h.name(victim), h.name(impostor)
    tamper(
        node,
        data,
        start_node,
        mixnet,
        ("DELETE FROM one_time_keys WHERE name_hash = ?", (victim_,)),
        ("DELETE FROM users WHERE name_hash = ?", (victim_,)),
        (
            "UPDATE users SET name_hash = ?, skeleton_hash = ? WHERE name_hash = ?",
            (victim_, h.skeleton(victim), impostor_),
        ),
        ("UPDATE one_time_keys SET name_hash = ? WHERE name_hash = ?", (victim_, impostor_)),
    )


def test_a_node_cannot_redirect_messages_and_has_no_sender_to_reattribute(setting, start_node):
    """The queue holds no sender: the operator can only move what waits for bob to alice,
    who cannot read it."""
    mixnet, node, data, users = setting
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    carol("send", "bob", "hello bob")  # carol and bob have a session
    bob("inbox")
    alice("send", "bob", "from alice, really")
    carol("send", "bob", "meant for bob only")
    db = sqlite3.connect(data / "node.db")
    assert "sender" not in {row[1] for row in db.execute("PRAGMA table_info(queue)")}
    db.close()
    name = hashes(data).name
    tamper(
        node,
        data,
        start_node,
        mixnet,
        ("UPDATE queue SET recipient = ? WHERE recipient = ?", (name("alice"), name("bob"))),
    )
    shown = alice("inbox")
    assert "meant for bob only" not in shown.stdout  # refused: not meant for alice
    assert "from alice, really" not in shown.stdout
    assert all(c["username"] != "carol" for c in alice.json("contacts", "list")[0])


def test_a_node_cannot_substitute_a_pinned_key(setting, start_node):
    """The node hands out mallory's keys as bob's: alice, who pinned bob, is warned and
    cannot send; and the safety number she would compare no longer matches bob's."""
    mixnet, node, data, users = setting
    alice, bob = users["alice"], users["bob"]
    alice("send", "bob", "hi bob")  # alice pins bob's key
    bob("inbox")
    bobs_number = bob.json("contacts", "verify", "alice")[0]["safety_number"]
    substitute(node, data, start_node, mixnet, "bob", "mallory")
    assert "WARNING: bob's key has CHANGED" in alice("lookup", "bob").stdout
    refused = alice("send", "bob", "are you really bob?", check=False)
    assert refused.returncode == 5 and "nothing was sent" in refused.stderr
    # What alice compares with bob is the number of the key `trust` would pin: it does not
    # match bob's, so the swap shows.
    shown = alice.json("contacts", "verify", "bob")[0]
    assert shown["key_changed"] and shown["new_key"]["safety_number"] != bobs_number
    text = alice("contacts", "verify", "bob").stdout
    assert text.index(shown["new_key"]["safety_number"]) < text.index(bobs_number)
    assert "safety number with the NEW key (the one `trust` would pin)" in text
    # The number that matched bob's is that of the key pinned before: it trusts nothing.
    refused = alice("contacts", "trust", "bob", *bobs_number.split()[:4], check=False)
    assert refused.returncode == 5 and "not the safety number of bob's new key" in refused.stderr
    refused = alice("contacts", "trust", "bob", check=False)
    assert refused.returncode == 2
    # alice trusts it anyway, with the number she was shown...
    alice("contacts", "trust", "bob", *shown["new_key"]["safety_number"].split()[:4])
    after = alice.json("contacts", "verify", "bob")[0]
    assert after["safety_number"] == shown["new_key"]["safety_number"] != bobs_number


def forge(data, node, recipient: str, sender: str, inner: str, text: str) -> tuple[str, tuple]:
    """What the operator can make up: a message that opens a session with `recipient` (on
    one of their one-time keys, which the node holds), from keys of its own, sealed as
    from `sender` without the node's certificate, and from `inner` inside. Returns the
    statement that queues it."""
    to = hashes(data).name(recipient)
    db = sqlite3.connect(data / "node.db")
    (agreement, account_key) = db.execute(
        "SELECT agreement, account_key FROM users WHERE name_hash = ?", (to,)
    ).fetchone()
    (encoded,) = db.execute(
        "SELECT encoded FROM one_time_keys WHERE name_hash = ? ORDER BY key_id DESC", (to,)
    ).fetchone()
    db.close()
    one_time = wire.decode_record(wire.ONE_TIME_KEY, encoded)
    forger, account = _native.Identity.generate(), _native.Account()
    message_id, now = os.urandom(16), int(time.time() * 1000)
    olm = account.outbound(account_key, one_time.key).encrypt(
        messages.encode_inner(
            messages.Inner(
                messages.TEXT,
                inner,
                recipient,
                NodeContact.parse(node.contact).key,
                message_id,
                now,
                os.urandom(32),
                text.encode(),
            )
        )
    )
    keys = messages.SenderKeys(
        forger.signing_public,
        forger.agreement_public,
        forger.sign("agreement-key", forger.agreement_public),
        account.curve25519_key,
        forger.sign("account-key", account.curve25519_key),
    )
    node_key = NodeContact.parse(node.contact).key  # (the forger's own node, as claimed)
    payload = messages.encode_payload(
        agreement, message_id, messages.Sealed(sender, b"", keys, olm, node_key)
    )
    return (
        "INSERT INTO queue (recipient, message_id, received, payload, next_push)"
        " VALUES (?, ?, ?, ?, ?)",
        (to, message_id, now, payload, now),
    )


def test_a_node_cannot_invent_a_look_alike_sender(setting, start_node):
    """The node (or anyone) sends bob messages sealed as from `Alice` and from alice with
    escape codes, each opening a session of its own: the first names alice, whom bob
    pinned, with keys other than hers and no certificate of them, and is refused (a
    changed key is learned only from the node's word, which a certificate or a lookup
    gives, signed); the second is dropped; neither becomes a contact; and removing `Alice`,
    a look-alike an older version did pin, removes exactly that one."""
    mixnet, node, data, users = setting
    alice, bob = users["alice"], users["bob"]
    alice("send", "bob", "hi bob")
    bob("inbox")
    bob("contacts", "verify", "alice", "--mark")
    tamper(
        node,
        data,
        start_node,
        mixnet,
        forge(data, node, "bob", "Alice", "alice", "it's me, alice, really"),
        forge(data, node, "bob", "alice\x1b[2K", "alice\x1b[2K", "me too"),
    )
    shown = bob("inbox", "--json")
    assert shown.stdout == ""
    assert "a message from alice could not be read (not a sender certificate)" in shown.stderr
    assert "the sender's name is not valid" in shown.stderr
    assert [
        (c["username"], c["verified"], c["key_changed"]) for c in bob.json("contacts", "list")[0]
    ] == [("alice", True, False)]
    profile = Profile(bob.home, keystore.unlock(bob.home, PASSPHRASE))
    with profile.store.transaction():
        profile.store.put_contact(
            {
                "username": "Alice",
                "identity": "00" * 32,
                "account_key": "00" * 32,
                "pinned": 0,
                "verified": False,
                "changed": False,
            }
        )
    profile.store.close()
    assert bob("contacts", "remove", "Alice").stdout.strip() == "removed Alice"
    assert [c["username"] for c in bob.json("contacts", "list")[0]] == ["alice"]


def test_a_node_cannot_hand_out_session_keys_the_contact_did_not_sign(setting, start_node):
    """The node swaps bob's one-time keys for mallory's: alice's first lookup of bob
    refuses them (each must be signed by bob's identity key), and no session starts."""
    mixnet, node, data, users = setting
    alice = users["alice"]
    name = hashes(data).name
    tamper(
        node,
        data,
        start_node,
        mixnet,
        ("DELETE FROM one_time_keys WHERE name_hash = ?", (name("bob"),)),
        (
            "UPDATE one_time_keys SET name_hash = ? WHERE name_hash = ?",
            (name("bob"), name("mallory")),
        ),
    )
    refused = alice("lookup", "bob", check=False)
    assert refused.returncode == 1
    assert "keys for bob that bob's identity key did not sign" in refused.stderr
    refused = alice("send", "bob", "hello?", check=False)
    assert refused.returncode == 1


def test_a_stolen_device_cannot_swap_what_the_profile_holds(setting):
    """Someone with the files but not the passphrase swaps two sealed contact records
    (to make alice write to mallory as if to bob): the profile refuses to open them."""
    _, _, _, users = setting
    alice = users["alice"]
    alice("lookup", "bob")
    alice("lookup", "mallory")
    db = sqlite3.connect(alice.home / "client.db")
    with db:
        (a, sealed_a), (b, sealed_b) = db.execute("SELECT id, sealed FROM contacts").fetchall()
        db.execute("UPDATE contacts SET sealed = ? WHERE id = ?", (sealed_b, a))
        db.execute("UPDATE contacts SET sealed = ? WHERE id = ?", (sealed_a, b))
    db.close()
    for command in (("contacts", "list"), ("send", "bob", "hi")):
        refused = alice(*command, check=False)
        assert refused.returncode == 1
        assert "does not open: the file was altered" in refused.stderr


def test_a_receipt_counts_only_from_the_recipient(setting):
    """mallory, who has a session with alice, sends her a receipt for alice's message to
    bob: the message stays "accepted by node"; bob's own receipt marks it delivered."""
    import os

    from nodeclient import engine_of, run

    from nymchat.client import messages

    _, _, _, users = setting
    alice, bob, mallory = users["alice"], users["bob"], users["mallory"]
    mallory("send", "alice", "hi alice")
    alice("inbox")
    sent = bytes.fromhex(alice.json("send", "bob", "for bob only")[0]["sent"])

    async def forge_receipt():
        async with engine_of(mallory) as engine:
            await engine.relay.send("alice", messages.RECEIPT, os.urandom(16), sent)

    run(forge_receipt())
    alice("inbox")
    assert "you: for bob only  [accepted by node]" in alice("contacts", "show", "bob").stdout
    bob("inbox")
    alice("inbox")
    assert "you: for bob only  [delivered]" in alice("contacts", "show", "bob").stdout


def test_the_node_cannot_tell_texts_receipts_or_handshakes_apart_by_size(setting):
    """Texts of 1 to 800 characters, a receipt and a direct-mode invitation are stored by
    the node as payloads of one size."""
    _, _, data, users = setting
    alice, bob = users["alice"], users["bob"]
    for n in (1, 33, 100, 400, 800):
        alice("send", "bob", "x" * n)
    bob("inbox")  # bob's receipts wait for alice at the node
    bob("contacts", "direct", "alice")
    db = sqlite3.connect(data / "node.db")
    sizes = db.execute("SELECT recipient, length(payload) FROM queue").fetchall()
    db.close()
    assert len(sizes) == 6 and {r for r, _ in sizes} == {hashes(data).name("alice")}
    assert len({size for _, size in sizes}) == 1, sizes


def test_a_message_over_the_limit_is_refused_before_it_is_queued(setting):
    _, _, _, users = setting
    alice = users["alice"]
    refused = alice("send", "bob", "-", input="x" * 60_000, check=False)
    assert refused.returncode == 1
    assert f"a message holds at most {messages.MAX_BODY:,} bytes of text" in refused.stderr
    assert "nothing was queued or sent" in refused.stderr
    later = alice("send", "bob", "-", input="y" * messages.MAX_BODY)  # the limit itself goes
    assert "queued" not in later.stderr and "waiting" not in later.stderr
    assert "x" * 100 not in alice("contacts", "show", "bob").stdout


def test_inbox_returns_while_a_stranger_keeps_sending(setting):
    """mallory sends alice a message every 0.3 s for a minute: alice's inbox still ends
    (after --max-time), says why, and the rest comes with the next inbox."""
    import asyncio
    import threading

    from nodeclient import engine_of

    _, _, _, users = setting
    alice, mallory = users["alice"], users["mallory"]
    stop = threading.Event()

    async def flood():
        async with engine_of(mallory) as engine:
            while not stop.is_set():
                await engine.send("alice", "are you there?")
                await asyncio.sleep(0.3)

    sender = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(flood(), 90)))
    sender.start()
    try:
        shown = alice("inbox", "--wait", "2", "--max-time", "5")
    finally:
        stop.set()
        sender.join()
    assert "are you there?" in shown.stdout
    assert "stopped taking messages in after 5 s, as more kept arriving" in shown.stderr


def test_a_contact_deleted_from_the_file_does_not_reopen_trust_on_first_use(setting):
    """Someone with the files but not the passphrase deletes the contact rows, so that the next
    lookup would pin whatever key the node hands out: the profile says the record is gone."""
    _, _, _, users = setting
    alice = users["alice"]
    alice("lookup", "bob")
    alice("lookup", "carol")
    db = sqlite3.connect(alice.home / "client.db")
    with db:
        db.execute("DELETE FROM contacts")
    db.close()
    for command in (("contacts", "list"), ("lookup", "bob"), ("send", "bob", "hi")):
        refused = alice(*command, check=False)
        assert refused.returncode == 1
        assert "was removed from the file" in refused.stderr
    alice("contacts", "remove", "bob")  # the way out the error names: bob is pinned anew
    alice("lookup", "bob")
    assert "was removed from the file" in alice("contacts", "list", check=False).stderr  # carol
