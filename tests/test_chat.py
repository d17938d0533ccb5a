"""`nymchat chat` from the built file: in a real pseudo-terminal, and scripted."""

import io
import json
import os
import re
import subprocess
import time

import pexpect
import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

pytestmark = pytest.mark.cli
ROWS = 40
CURSOR = f"\x1b[{ROWS};1R"  # a terminal's answer to "where is the cursor?": on the last row


@pytest.fixture
def trio(net, shiv_root, tmp_path):
    mixnet, node = net
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "carol")]
    for user in users:
        user.register()
    return users


def terminal(user) -> pexpect.spawn:
    env = clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE, TERM="xterm")
    child = pexpect.spawn(
        str(DIST),
        ["--home", str(user.home), "chat"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(ROWS, 140),
    )
    return ready(child)


def ready(child: pexpect.spawn) -> pexpect.spawn:
    """Waits until the prompt reads keys (a Ctrl-D sent earlier would be eaten by the
    terminal's line discipline; a typed line is kept)."""
    child.expect("Ctrl-D to leave")
    child.expect(r"\x1b\[6n")  # where is the cursor? (the answer lets it draw the status line)
    child.send(CURSOR)
    child.sendline("/help")
    child.expect("this list")
    return child


def leave(child: pexpect.spawn) -> None:
    """Ctrl-D until the chat ends: one that arrives while text is being printed above the
    prompt (the terminal briefly out of raw mode) is eaten by the line discipline, as a
    second key press would show a person."""
    for _ in range(5):
        child.sendcontrol("d")
        if child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=5) == 0:
            return
    raise AssertionError("the chat did not end on Ctrl-D")


def status(child: pexpect.spawn, pattern: str, timeout: float = 30) -> None:
    """Waits for the status line to read `pattern`, answering each "where is the
    cursor?" (prompt_toolkit draws the status line once that is known)."""
    deadline = time.monotonic() + timeout
    while child.expect([pattern, r"\x1b\[6n", pexpect.TIMEOUT], timeout=1) != 0:
        assert time.monotonic() < deadline, f"the status line never read {pattern!r}"
        child.send(CURSOR)


def marked(child: pexpect.spawn, mark: str, **kwargs) -> None:
    """Waits for a sent message's mark to be rewritten in place (cursor up, write, back)."""
    child.expect(r"\x1b\[\d+A\x1b\[\d+G\[" + re.escape(mark) + r"\]\x1b\[K", **kwargs)


def test_two_people_type_to_each_other_in_terminals(trio, net, start_node):
    alice, bob, carol = trio
    a, b = terminal(alice), terminal(bob)
    try:
        a.sendline("/msg bob hello from alice's terminal")
        a.expect(r"you -> bob: hello from alice's terminal  \[queued\]")
        marked(a, "delivered")
        b.expect("alice: hello from alice's terminal")
        b.sendline("and hello from bob's")  # bob's current conversation: alice
        a.expect("bob: and hello from bob's")
        # a message from someone else raises an unread count, /msg switches
        carol("send", "alice", "psst, carol here")
        a.expect(r"new message from carol \(1 unread\): /msg carol")
        a.sendline("/contacts")
        a.expect(r"carol +not verified  1 unread")
        a.sendline("/msg carol")
        a.expect("talking to carol")
        a.expect("carol: psst, carol here")
        a.sendline("/verify bob")
        a.expect(r"safety number with bob:\s+((\d{5} ){11}\d{5})")
        ours = a.match.group(1)
        b.sendline("/verify alice")
        b.expect(r"safety number with alice:\s+((\d{5} ){11}\d{5})")
        assert b.match.group(1) == ours
        a.sendline("/verify bob mark")
        a.expect(r"\(verified\)")
        # the node restarts: conversations go on
        mixnet, node = net
        node.stop()
        start_node(mixnet, data=node.data)
        a.sendline("/msg bob after the node restarted")
        a.expect(r"you -> bob: after the node restarted  \[queued\]")
        marked(a, "delivered", timeout=60)
        b.expect("alice: after the node restarted")
        a.sendline("/quit")
        a.expect(pexpect.EOF)
        leave(b)
    finally:
        for child in (a, b):
            child.close(force=True)
    assert a.exitstatus == 0 and b.exitstatus == 0
    assert not (alice.home / "control.sock").exists()


def test_a_sent_message_is_shown_once_and_its_mark_changes_where_it_stands(trio, net):
    alice, bob, carol = trio
    a = terminal(alice)
    a.logfile_read = seen = io.StringIO()
    try:
        a.sendline("/MSG bob one line")  # commands are case-insensitive
        a.expect(r"\[\d\d:\d\d\] you -> bob: one line  \[queued\]")
        marked(a, "accepted by node")
        bob("inbox")  # bob takes it in: his receipt comes back
        marked(a, "delivered")
        # a send through the control socket, from another terminal, names its recipient
        alice("send", "bob", "from another terminal")
        a.expect(r"you -> bob: from another terminal  \[accepted by node\]")
        a.sendline("/msg alice")
        a.expect("alice is you: /msg someone else")
        # Ctrl-C clears the line; the chat goes on
        a.send("never sent")
        a.sendcontrol("c")
        a.sendline("/contacts")
        a.expect(r"bob +not verified")
        # names complete anywhere on the line, new contacts too; typed lines come back
        a.send("and to b\t")
        a.sendline("")
        a.expect(r"you -> bob: and to bob  \[queued\]")
        carol("send", "alice", "hello alice")
        a.expect(r"new message from carol \(1 unread\)")
        a.send("/msg car\t")
        a.sendline("")
        a.expect("talking to carol")
        a.expect("carol: hello alice")
        a.send("\x1b[A")  # up: the last line typed, /msg carol
        a.sendline("")
        a.expect("talking to carol")
        # log lines never reach the screen: the nym-client goes away
        mixnet, _ = net
        mixnet.stop()
        a.expect(r"\* lost the nym-client; typing goes to the outbox")
        status(a, "nym-client lost, reconnecting")
        leave(a)
    finally:
        a.close(force=True)
    shown = seen.getvalue()
    assert shown.count("you -> bob: one line") == 1
    assert "you -> bob: never sent" not in shown
    assert "WARNING" not in shown and "nymchat.nym.transport" not in shown
    assert not [p.name for p in alice.home.iterdir() if "hist" in p.name]


def test_with_the_node_silent_the_prompt_stays_live_and_a_message_waits_queued(
    trio, net, start_node
):
    alice, _, _ = trio
    mixnet, node = net
    a = terminal(alice)
    try:
        a.sendline("/msg bob before")
        marked(a, "accepted by node")
        node.stop()
        a.sendline("/msg carol are you there")  # not a contact: a lookup, which goes unanswered
        a.expect("looking carol up...")
        a.sendline("/help")
        a.expect("this list", timeout=5)  # not after the lookup's 30 s
        a.sendline("/msg bob while the node is down")
        a.expect(r"you -> bob: while the node is down  \[queued\]", timeout=5)
        status(a, r"node unreachable, retrying \| \d queued", timeout=60)
        start_node(mixnet, data=node.data)
        marked(a, "accepted by node", timeout=90)
        status(a, r"\| connected \d+ ms", timeout=30)
        leave(a)
    finally:
        a.close(force=True)


def test_scripted_chat_reads_lines_and_writes_json_events(trio):
    alice, bob, _ = trio
    env = clean_env(bob.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE)
    bob_chat = subprocess.Popen(
        [str(DIST), "--home", str(bob.home), "chat", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_until_serving(bob.home, bob_chat)
        alice("send", "bob", "hi bob")
        event = json.loads(bob_chat.stdout.readline())
        assert (event["event"], event["from"], event["text"]) == ("message", "alice", "hi bob")
        bob_chat.stdin.write("hi alice\n/nonsense\n")
        bob_chat.stdin.flush()
        events = [json.loads(bob_chat.stdout.readline()) for _ in range(3)]  # alice is away:
        # sent, accepted, and the error; no receipt yet
        kinds = [(e["event"], e.get("status")) for e in events]
        assert ("error", None) in kinds and ("sent", "accepted") in kinds
        bob_chat.stdin.write("/quit\n")
        bob_chat.stdin.flush()
        assert bob_chat.wait(timeout=30) == 0
    finally:
        bob_chat.kill()
    assert [m["text"] for m in alice.json("inbox")] == ["hi alice"]


def test_first_run_walks_through_identity_and_registration(net, shiv_root, tmp_path):
    mixnet, node = net
    env = clean_env(shiv_root, TERM="xterm")
    child = pexpect.spawn(
        str(DIST),
        ["--home", str(tmp_path / "new"), "chat"],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(ROWS, 140),
    )
    child.expect("No identity here yet")
    child.expect("New passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("username to claim: ")
    child.sendline("newcomer")
    child.expect(r"node contact string \(nymchat-node:..., or the path of its contact.txt\): ")
    child.sendline(node.contact)
    child.expect(r"your nym-client \[ws://127.0.0.1:1977/newcomer\]: ")
    child.sendline(f"{mixnet.url}/newcomer")
    child.expect("registered as newcomer")  # one passphrase prompt was enough
    ready(child)
    leave(child)
    child.close()
    assert child.exitstatus == 0
    assert os.path.exists(tmp_path / "new" / "client.db")
