"""A profile's messages that cannot leave, its control socket as the one way in while a
chat runs, blocking, and giving the name back: the built file, on real mixnet and node
processes."""

import signal
import subprocess

import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

from nymchat.client.messages import MAX_BODY

pytestmark = pytest.mark.cli


def _users(mixnet, node, shiv_root, tmp_path, *names):
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in names]
    for user in users:
        user.register()
    return users


@pytest.fixture
def people(net, shiv_root, tmp_path):
    return lambda *names: _users(*net, shiv_root, tmp_path, *names)


def _follow(user) -> subprocess.Popen:
    """`inbox --follow` serving the user's profile on its control socket."""
    follower = subprocess.Popen(
        [str(DIST), "--home", str(user.home), "inbox", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    wait_until_serving(user.home, follower)
    return follower


def _stop(follower: subprocess.Popen) -> None:
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=15)


def _store_outgoing(user, to: str, text: str, status: str, waiting: bool = True) -> str:
    """Stores a message to `to`, in the outbox if `waiting`, as an older nymchat could (no
    size check, status `sent`); returns its id."""
    import os

    from nymchat import keystore
    from nymchat.client.messages import now_ms
    from nymchat.client.profile import Profile

    profile = Profile(user.home, keystore.unlock(user.home, PASSPHRASE))
    message_id = os.urandom(16)
    with profile.store.transaction():
        profile.store.add_message(
            to,
            message_id,
            {
                "direction": "out",
                "to": to,
                "text": text,
                "time": now_ms(),
                "status": status,
                "id": message_id.hex(),
            },
        )
        if waiting:
            profile.store.put("outbox", [*profile.store.get("outbox", []), message_id.hex()])
    profile.store.close()
    return message_id.hex()


# --- what cannot be sent, and what the node refuses ------------------------------------


def test_a_message_over_the_limit_is_refused_before_it_is_queued(people):
    alice, bob = people("alice", "bob")
    huge = "x" * (1 << 20)
    out = alice("send", "bob", "-", input=huge, check=False)
    assert out.returncode == 1
    assert f"at most {MAX_BODY:,} bytes" in out.stderr and "nothing was queued" in out.stderr
    out = alice("send", "bob", "y" * (MAX_BODY + 1), "--no-wait", check=False)
    assert out.returncode == 1 and f"this one has {MAX_BODY + 1:,}" in out.stderr
    follower = _follow(alice)  # nor through the control socket
    try:
        out = alice("send", "bob", "-", input="z" * (MAX_BODY + 1), check=False)
        assert out.returncode == 1 and f"at most {MAX_BODY:,} bytes" in out.stderr
        assert alice.json("outbox") == [[]]
        assert alice("send", "bob", "-", input="w" * MAX_BODY).returncode == 0
    finally:
        _stop(follower)
    later = alice("contacts", "show", "bob")  # the profile is whole
    assert later.stderr == "" and later.stdout.count("[accepted by node]") == 1
    assert [len(m["text"]) for m in bob.json("inbox")] == [MAX_BODY]


def test_an_oversize_message_an_older_version_queued_fails_once_and_is_never_retried(people):
    alice, bob = people("alice", "bob")
    alice("lookup", "bob")
    _store_outgoing(alice, "bob", "x" * 1_346_670, "sent")
    first = alice("send", "bob", "after it")  # flushes the outbox first
    assert (
        f"a message to bob failed: a message holds at most {MAX_BODY:,} bytes of text "
        "(UTF-8); this one has 1,346,670; it will not be sent" in first.stderr
    )
    for command in (("inbox",), ("contacts", "list"), ("send", "bob", "and again")):
        assert alice(*command).stderr == ""  # told once, never again
    shown = alice("contacts", "show", "bob").stdout.splitlines()
    assert shown[0].endswith(
        f"[FAILED: a message holds at most {MAX_BODY:,} bytes of text "
        "(UTF-8); this one has 1,346,670]"
    )
    assert [m["text"] for m in bob.json("inbox")] == ["after it", "and again"]
    alice("contacts", "remove", "bob")  # and the profile stays whole
    assert alice("contacts", "list").stdout.strip() == "no contacts yet"


def test_a_message_the_node_refuses_for_good_fails_with_its_reason(
    start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    node = start_node(mixnet, "--max-payload", "4000")
    alice, bob = _users(mixnet, node, shiv_root, tmp_path, "alice", "bob")
    out = alice("send", "bob", "x" * 5000, check=False)  # over the node's own limit
    assert out.returncode == 7
    assert (
        "a message to bob failed: messages are at most 4000 bytes; it will not be sent"
        in out.stderr
    )
    assert alice.json("outbox") == [[]]
    assert alice.json("contacts", "show", "bob")[0][0]["status"] == "failed"
    assert "[FAILED: messages are at most 4000 bytes]" in alice("contacts", "show", "bob").stdout
    # a name that does not exist: refused before anything is queued
    out = alice("send", "nobody", "hello?", check=False)
    assert out.returncode == 4 and "no user 'nobody' here" in out.stderr
    # queued without the node, to a name that turns out not to exist: failed, told once
    alice("send", "nobody", "hello?", "--no-wait")
    out = alice("send", "bob", "short")
    assert "a message to nobody failed: no user 'nobody' here; it will not be sent" in out.stderr
    assert alice("send", "bob", "short again").stderr == ""
    assert alice.json("outbox") == [[]]
    assert [m["text"] for m in bob.json("inbox")] == ["short", "short again"]


def test_a_full_queue_keeps_the_message_waiting_until_there_is_room(
    start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet = start_mixnet()
    node = start_node(mixnet, "--queue-max-messages", "1")
    alice, bob = _users(mixnet, node, shiv_root, tmp_path, "alice", "bob")
    alice("send", "bob", "first")
    out = alice("send", "bob", "second", check=False)
    assert out.returncode == 7
    assert "not sent yet: the node refused: bob's queue is full" in out.stderr
    assert "it waits in your outbox" in out.stderr
    waiting = alice.json("outbox")[0]
    assert [(m["to"], m["preview"], m["status"]) for m in waiting] == [("bob", "second", "queued")]
    assert "[queued]" in alice("contacts", "show", "bob").stdout
    assert [m["text"] for m in bob.json("inbox")] == ["first"]
    assert "sent 1 queued message(s)" in alice("inbox").stderr
    assert [m["text"] for m in bob.json("inbox")] == ["second"]


def test_outbox_lists_what_waits_and_drop_takes_one_out_by_a_unique_prefix(people):
    alice, bob = people("alice", "bob")
    alice("lookup", "bob")
    old = _store_outgoing(alice, "bob", "queued by an older version", "sent")
    offline = ("--nym", "ws://127.0.0.1:9")
    ids = [old] + [
        alice.json("send", "bob", f"later {n}\x1b[2J", "--no-wait", *offline)[0]["sent"]
        for n in range(12)
    ]
    listed = alice.json("outbox")[0]
    assert [m["id"] for m in listed] == ids
    assert listed[0]["status"] == "queued"  # an older version's `sent`
    assert (listed[1]["preview"], listed[1]["bytes"]) == ("later 0\x1b[2J", 11)
    text = alice("outbox").stdout.splitlines()
    assert text[1].startswith(f"{ids[1][:8]}  to bob") and "later 0\\x1b[2J" in text[1]
    assert "\x1b" not in alice("outbox").stdout
    assert text[-1].startswith("13 waiting")
    # a prefix shared by two or more is refused; a unique one is enough
    shared = next(
        p for p in (format(n, "x") for n in range(16)) if sum(i.startswith(p) for i in ids) > 1
    )
    out = alice("outbox", "drop", shared, check=False)
    assert out.returncode == 2 and "give more of it" in out.stderr
    unique = next(
        ids[2][:k] for k in range(1, 33) if sum(i.startswith(ids[2][:k]) for i in ids) == 1
    )
    out = alice("outbox", "drop", unique)
    assert out.stdout.strip() == f"dropped message {ids[2][:8]} to bob: it will not be sent"
    out = alice("outbox", "drop", ids[2], check=False)
    assert out.returncode == 4 and "no waiting message has an id starting with" in out.stderr
    assert [m["id"] for m in alice.json("outbox")[0]] == ids[:2] + ids[3:]
    dropped = [m for m in alice.json("contacts", "show", "bob")[0] if m["id"] == ids[2]]
    assert dropped[0]["status"] == "failed" and dropped[0]["reason"] == "dropped by you"
    assert alice("inbox").stderr.strip() == "nymchat: sent 12 queued message(s)"
    assert "later 1" not in [m["text"] for m in bob.json("inbox")]


# --- the control socket: the same rules for every command ------------------------------


def test_keys_show_needs_no_passphrase(people):
    (alice,) = people("alice")
    shown = alice.json("keys", "show")
    checked = alice.json("keys", "show", "--check")
    assert shown == checked
    out = subprocess.run(
        [str(DIST), "--home", str(alice.home), "keys", "show"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=clean_env(alice.shiv_root),
    )  # no passphrase to be had
    assert (
        out.returncode == 0 and f"fingerprint              {shown[0]['fingerprint']}" in out.stdout
    )
    out = alice("keys", "show", "--check", passphrase="wrong passphrase", check=False)
    assert out.returncode == 3 and "wrong passphrase" in out.stderr


def test_while_a_chat_serves_the_profile_every_command_goes_through_it(people):
    alice, bob = people("alice", "bob")
    bob("send", "alice", "hello alice")
    alice("inbox")
    for n in range(30):  # a conversation longer than a request may be
        _store_outgoing(alice, "bob", f"{n:02}" + "x" * (MAX_BODY - 2), "accepted", False)
    nope = "not the passphrase"
    out = alice("contacts", "list", passphrase=nope, check=False)
    assert out.returncode == 3 and "wrong passphrase" in out.stderr  # nobody serves: asked
    follower = _follow(alice)
    try:
        assert alice.json("contacts", "list")[0][0]["username"] == "bob"
        for command in (
            ("contacts", "list"),
            ("contacts", "show", "bob"),
            ("contacts", "verify", "bob"),
            ("contacts", "verify", "bob", "--mark"),
            ("outbox",),
            ("contacts", "block", "carol"),
            ("contacts", "unblock", "carol"),
            ("send", "bob", "through it"),
            ("send", "bob", "sent soon by it", "--no-wait"),
        ):
            out = alice(*command, passphrase=nope, check=False)
            assert out.returncode == 0, (command, out.stderr)
        listed = alice.json("contacts", "list")[0]
        assert [(c["username"], c["verified"]) for c in listed] == [("bob", True)]
        shown = alice.json("contacts", "show", "bob", "-n", "33")[0]
        assert [m["text"][:2] for m in shown] == ["he", *(f"{n:02}" for n in range(30)), "th", "se"]
        out = alice("unregister", "--yes", passphrase=nope, check=False)
        assert out.returncode == 8 and "quit it first, then unregister" in out.stderr
    finally:
        _stop(follower)
    assert sorted(m["text"] for m in bob.json("inbox")) == ["sent soon by it", "through it"]


# --- blocking --------------------------------------------------------------------------


def test_a_blocked_name_is_dropped_unread_without_receipts_and_its_invitations_ignored(people):
    alice, bob = people("alice", "bob")
    out = bob("contacts", "block", "Alice")  # not a contact yet: nothing pinned
    assert out.stdout.startswith("blocked alice: their messages are dropped unread")
    assert bob.json("contacts", "list")[0] == [
        {
            "username": "alice",
            "id": "alice",
            "verified": False,
            "key_changed": False,
            "direct": None,
            "blocked": True,
            "contact": False,
        }
    ]
    assert bob("contacts", "list").stdout.split() == ["alice", "blocked", "(not", "a", "contact)"]
    alice("send", "bob", "you will not see this")
    alice("contacts", "direct", "bob")
    out = bob("inbox", "--json")
    assert out.stdout == "" and out.stderr == ""  # no message, no invitation
    assert bob.json("inbox") == []  # acknowledged: the node does not push them again
    assert not bob.json("contacts", "list")[0][0]["contact"]
    alice("inbox")  # no receipt came back
    assert "[accepted by node]" in alice("contacts", "show", "bob").stdout
    out = bob("send", "alice", "hi", check=False)
    assert out.returncode == 2 and "you blocked alice" in out.stderr
    out = bob("contacts", "unblock", "alice")
    assert out.stdout.startswith("unblocked alice")
    assert bob.json("contacts", "list")[0] == []  # still nothing pinned, nothing invited
    alice("send", "bob", "now you do")
    assert [m["text"] for m in bob.json("inbox")] == ["now you do"]
    alice("inbox")
    assert alice("contacts", "show", "bob").stdout.splitlines()[-1].endswith("[delivered]")
    # a contact blocked: listed as such, and what waited for them fails
    bob("send", "alice", "waiting", "--no-wait")
    bob("contacts", "block", "alice")
    assert bob.json("contacts", "list")[0][0]["blocked"] is True
    assert "BLOCKED" in bob("contacts", "list").stdout
    assert bob.json("outbox") == [[]]
    assert bob.json("contacts", "show", "alice")[0][-1]["reason"] == "you blocked alice"
    out = bob("contacts", "unblock", "carol", check=False)
    assert out.returncode == 4 and "carol is not blocked" in out.stderr
    out = bob("contacts", "block", "al!ce", check=False)
    assert out.returncode == 2 and "'al!ce': a username uses only a-z" in out.stderr


# --- unregister ------------------------------------------------------------------------


def test_unregister_frees_the_name_and_keeps_the_profile(people, net, shiv_root, tmp_path):
    alice, bob = people("alice", "bob")
    alice("send", "bob", "before")
    out = alice("unregister", check=False)  # no terminal to confirm in
    assert out.returncode == 2 and "give --yes" in out.stderr
    assert bob.json("lookup", "alice")[0]["username"] == "alice"
    out = alice("unregister", "--yes")
    assert out.stdout.startswith("unregistered alice: the node has forgotten the name")
    out = bob("lookup", "alice", check=False)
    assert out.returncode == 4 and "no user 'alice' here" in out.stderr
    out = alice("send", "bob", "after", check=False)
    assert out.returncode == 4 and "no username on a node" in out.stderr
    out = alice("unregister", "--yes", check=False)
    assert out.returncode == 4 and "not registered on a node: nothing to unregister" in out.stderr
    assert "you: before  [accepted by node]" in alice("contacts", "show", "bob").stdout
    newcomer = User("alice", tmp_path / "newcomer", shiv_root, *net)
    newcomer.nym = f"{net[0].url}/newcomer"
    newcomer("keys", "new")
    newcomer("register", "alice", "--node", newcomer.contact, "--nym", newcomer.nym)
    assert bob.json("lookup", "alice")[0]["key_changed"] is True  # bob pinned the old one
    again = User("alice", tmp_path / "alice", shiv_root, *net)
    out = again("register", "alice2", "--node", again.contact, "--nym", again.nym)
    assert out.stdout.strip() == "registered as alice2"  # the same identity, a new name


def test_unregister_asks_for_the_name_in_a_terminal(people):
    import pexpect

    (alice,) = people("alice")
    environ = clean_env(alice.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE)
    for answer, code, said in (
        ("bob", 1, "not confirmed: nothing was unregistered"),
        ("alice", 0, "unregistered alice: the node has forgotten"),
    ):
        child = pexpect.spawn(
            str(DIST),
            ["--home", str(alice.home), "unregister"],
            env=environ,
            encoding="utf-8",
            timeout=60,
        )
        child.expect("Type alice to unregister it: ")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == code and said in child.before
