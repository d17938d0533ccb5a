"""`nymchat chat` from the built file: in a real pseudo-terminal, and scripted."""

import json
import os
import subprocess

import pexpect
import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

pytestmark = pytest.mark.cli


@pytest.fixture
def trio(net, shiv_root, tmp_path):
    mixnet, node = net
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "carol")]
    for user in users:
        user.register()
    return users


def terminal(user) -> pexpect.spawn:
    env = clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE, TERM="xterm")
    child = pexpect.spawn(str(DIST), ["--home", str(user.home), "chat"], env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 140))
    return ready(child)


def ready(child: pexpect.spawn) -> pexpect.spawn:
    """Waits until the prompt reads keys (a Ctrl-D sent earlier would be eaten by the
    terminal's line discipline; a typed line is kept)."""
    child.expect("Ctrl-D to leave")
    child.sendline("/help")
    child.expect("this list")
    return child


def test_two_people_type_to_each_other_in_terminals(trio, net, start_node):
    alice, bob, carol = trio
    a, b = terminal(alice), terminal(bob)
    try:
        a.sendline("/msg bob hello from alice's terminal")
        a.expect(r"you -> bob: hello from alice's terminal  \[delivered\]")
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
        a.expect(r"you -> bob: after the node restarted  \[delivered\]", timeout=60)
        b.expect("alice: after the node restarted")
        a.sendline("/quit")
        a.expect(pexpect.EOF)
        b.sendcontrol("d")
        b.expect(pexpect.EOF)
    finally:
        for child in (a, b):
            child.close(force=True)
    assert a.exitstatus == 0 and b.exitstatus == 0
    assert not (alice.home / "control.sock").exists()


def test_scripted_chat_reads_lines_and_writes_json_events(trio):
    alice, bob, _ = trio
    env = clean_env(bob.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE)
    bob_chat = subprocess.Popen([str(DIST), "--home", str(bob.home), "chat", "--json"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env)
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
    child = pexpect.spawn(str(DIST), ["--home", str(tmp_path / "new"), "chat"], env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 140))
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
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert os.path.exists(tmp_path / "new" / "client.db")
