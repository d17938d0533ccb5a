"""Direct mode on the built file: invitation, acceptance and decline; the node bypassed
(its relay counter stands still while messages flow both ways); fallback to the node when
the listener's nym-client comes back with a new address; strangers who learn the address
cannot inject; the state survives restarts."""

import asyncio
import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

from nymchat import _native
from nymchat.nym.transport import NymClient

pytestmark = pytest.mark.cli
TIMEOUT = 3  # seconds a direct message waits for its receipt, in these tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chat:
    """`nymchat chat --json` in a pipe: lines in, JSON events out."""

    def __init__(self, user: User, *args: str):
        self.user = user
        self.log = user.home.parent / f"{user.name}-chat.log"
        env = clean_env(
            user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE, NYMCHAT_DIRECT_TIMEOUT=str(TIMEOUT)
        )
        self.proc = subprocess.Popen(
            [str(DIST), "--home", str(user.home), "chat", "--json", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        wait_until_serving(user.home, self.proc)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, pattern: str = "", timeout: float = 20) -> dict:
        """The next event of this kind whose text matches; others are skipped."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                e = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(e)
            if e["event"] == event and re.search(pattern, e.get("text", "")):
                return e
        raise AssertionError(f"{self.user.name}: no {event} /{pattern}/ in {seen}")

    def quit(self) -> None:
        self.say("/quit")
        assert self.proc.wait(timeout=30) == 0
        self.proc.stdin.close()


def relayed(metrics_port: int) -> int:
    """How many messages the node has accepted for relaying."""
    page = (
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    found = re.search(r'nymchat_node_requests_total\{kind="sealed_send",result="ok"\} (\d+)', page)
    return int(found.group(1)) if found else 0


@pytest.fixture
def people(start_mixnet, start_node, shiv_root, tmp_path):
    mixnet = start_mixnet()
    port = free_port()
    node = start_node(mixnet, "--metrics", f"127.0.0.1:{port}")
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "carol")]
    for user in users:
        user.register()
    alice, bob, carol = users
    alice("send", "bob", "hello through the node")
    carol("send", "bob", "hi bob, carol here")
    bob("inbox")
    return mixnet, port, alice, bob, carol


def go_direct(alice_chat: Chat, bob_chat: Chat) -> None:
    alice_chat.say("/direct bob")
    alice_chat.expect("notice", "invited bob to direct mode")
    bob_chat.expect("notice", "alice invites you to direct mode")
    bob_chat.say("/direct alice accept")
    bob_chat.expect("notice", "accepted: your nym address went to alice only")
    alice_chat.expect("notice", "direct mode with bob is on")
    bob_chat.expect("notice", "direct mode with alice is on")


def talk(alice_chat: Chat, bob_chat: Chat, n: int) -> None:
    alice_chat.say(f"/msg bob direct {n} from alice")
    bob_chat.expect("message", f"direct {n} from alice")
    alice_chat.expect("delivered", f"direct {n} from alice")
    bob_chat.say(f"/msg alice direct {n} from bob")
    alice_chat.expect("message", f"direct {n} from bob")
    bob_chat.expect("delivered", f"direct {n} from bob")


def test_accepted_direct_mode_bypasses_the_node_and_survives_restarts(people):
    _, port, alice, bob, _ = people
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)
    before = relayed(port)
    talk(alice_chat, bob_chat, 1)
    talk(alice_chat, bob_chat, 2)
    assert relayed(port) == before  # messages and receipts went past the node
    alice_chat.quit()
    bob_chat.quit()

    listed = {
        c["username"]: c["direct"] for c in json.loads(alice("contacts", "list", "--json").stdout)
    }
    assert listed["bob"] == "on"
    alice_chat, bob_chat = Chat(alice), Chat(bob)  # state kept, sealed, in client.db
    talk(alice_chat, bob_chat, 3)
    sent = json.loads(alice("send", "bob", "one-shot, direct", "--json").stdout)
    assert sent["status"] == "delivered"  # through alice's chat, which holds the connection
    bob_chat.expect("message", "one-shot, direct")
    assert relayed(port) == before
    alice_chat.say("/direct bob off")
    alice_chat.expect("notice", "direct mode with bob ended")
    bob_chat.expect("notice", "alice ended direct mode")
    talk_via_node = relayed(port)
    alice_chat.say("/msg bob back through the node")
    bob_chat.expect("message", "back through the node")
    assert relayed(port) > talk_via_node
    alice_chat.quit()
    bob_chat.quit()
    assert b"direct" not in (bob.home / "client.db").read_bytes()  # all of it sealed


def test_declined_or_ignored_invitations_change_nothing(people):
    _, port, alice, bob, carol = people
    out = carol("contacts", "direct", "bob")
    assert "invited bob to direct mode" in out.stdout
    assert "carol invites you to direct mode" in bob("inbox").stderr
    assert json.loads(bob("contacts", "list", "--json").stdout)[1] == {
        "username": "carol",
        "id": "carol",
        "verified": False,
        "key_changed": False,
        "direct": "invited",
        "blocked": False,
        "contact": True,
    }
    bob("contacts", "decline-direct", "carol")
    assert "bob declined direct mode" in carol("inbox").stderr
    for user in (bob, carol):
        assert all(
            c["direct"] is None for c in json.loads(user("contacts", "list", "--json").stdout)
        )
    refused = bob("contacts", "accept-direct", "carol", check=False)
    assert refused.returncode == 4
    assert "carol has not invited you to direct mode" in refused.stderr
    alice("contacts", "direct", "bob")  # bob never answers: alice keeps using the node
    before = relayed(port)
    alice("send", "bob", "still relayed")
    assert relayed(port) == before + 1
    assert [m["text"] for m in bob.json("inbox")] == ["still relayed"]


def test_falls_back_to_the_node_when_the_listener_address_changes(people, start_node):
    mixnet, port, alice, bob, _ = people
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)
    talk(alice_chat, bob_chat, 1)
    bob_chat.quit()  # bob's nym-client comes back as a new client: a new address

    # alice sends from another terminal, through her chat: she is told there, too
    sent = alice("send", "bob", "are you there?")
    assert f"the direct path to bob failed (no receipt within {TIMEOUT} s)" in sent.stderr
    assert sent.stdout.strip() == "accepted by the node for bob"
    alice_chat.expect("notice", rf"the direct path to bob failed \(no receipt within {TIMEOUT}")
    bob_chat = Chat(bob, "--nym", f"{mixnet.url}/bob-new-device")
    # bob's client sees its own address changed (and alice's end of it, through the node)
    bob_chat.expect("notice", r"the direct path to alice failed \(your nym address changed")
    bob_chat.expect("message", "are you there")
    bob_chat.say("/msg alice yes, via the node")
    alice_chat.expect("message", "yes, via the node")
    go_direct(alice_chat, bob_chat)  # and re-established, to the new address
    before = relayed(port)
    talk(alice_chat, bob_chat, 2)
    assert relayed(port) == before
    alice_chat.quit()
    bob_chat.quit()


def test_the_listener_ends_direct_mode_when_its_own_address_changes(people):
    mixnet, _, alice, bob, _ = people
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)
    bob_chat.quit()
    bob_chat = Chat(bob, "--nym", f"{mixnet.url}/bob-elsewhere")
    bob_chat.expect("notice", r"the direct path to alice failed \(your nym address changed")
    alice_chat.expect("notice", "the direct path with bob failed on their side")
    alice_chat.say("/msg bob relayed again")
    bob_chat.expect("message", "relayed again")
    alice_chat.quit()
    bob_chat.quit()


def test_a_stranger_who_learns_the_address_cannot_inject(people):
    mixnet, _, alice, bob, _ = people

    async def address_of(url: str):
        async with NymClient(url) as client:
            return client.address

    bob_address = asyncio.run(address_of(bob.nym))
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)

    async def inject():
        async with NymClient(f"{mixnet.url}/mallory") as mallory:
            forged = [
                os.urandom(100),
                os.urandom(5000),  # not even a packet
                b"\xd1\x01\x01\x01" + os.urandom(16 + 16 + 40 + 32),  # unknown channel
                b"\x01\x45" + os.urandom(300),
            ]  # posing as a node answer
            for data in forged:
                for frame in _native.encode_frames(data, os.urandom(16)):
                    await mallory.send_anonymous(bob_address, frame, 5)
            for frame in _native.encode_frames(os.urandom(50), os.urandom(16)):
                await mallory.send(bob_address, frame)  # untagged: checked as a node answer
            await asyncio.sleep(1)

    asyncio.run(inject())
    talk(alice_chat, bob_chat, 1)  # bob still hears alice, and only alice
    bob_chat.quit()
    alice_chat.quit()
    texts = [e.get("text", "") for e in _drain(bob_chat.events)]
    assert not any("mallory" in t for t in texts)
    assert "ignored 4 message(s) sent to this address by strangers" in bob_chat.log.read_text()
    assert [m["from"] for m in bob.json("inbox")] == []


def _drain(events: queue.Queue) -> list[dict]:
    out = []
    while not events.empty():
        out.append(events.get())
    return out


def test_the_node_never_holds_an_address(people, tmp_path):
    """The acceptance crossed the node inside the end-to-end session: the node's files hold
    no nym address of either side."""
    _, _, alice, bob, _ = people

    async def address_of(url: str):
        async with NymClient(url) as client:
            return client.address

    addresses = [asyncio.run(address_of(u.nym)) for u in (alice, bob)]
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)
    alice_chat.quit()
    bob_chat.quit()
    node_files = b"".join(f.read_bytes() for f in (tmp_path / "node-0").rglob("*") if f.is_file())
    for address in addresses:
        for form in (address.to_bytes(), str(address).encode(), address.identity):
            assert form not in node_files


def test_the_listener_follows_the_dialer_after_its_nym_client_restarts(people):
    """The dialer's nym-client restarts (new sender tags): its hello gives the listener the
    new tag and fresh SURBs, and direct mode goes on without the node."""
    mixnet, port, alice, bob, _ = people
    alice_chat, bob_chat = Chat(alice), Chat(bob)
    go_direct(alice_chat, bob_chat)
    alice_chat.quit()
    before = relayed(port)
    alice_chat = Chat(alice, "--nym", f"{mixnet.url}/alice?restart")
    talk(alice_chat, bob_chat, 1)
    assert relayed(port) == before
    bob_chat.say("/direct alice off")  # the listener may end it too
    bob_chat.expect("notice", "direct mode with alice ended")
    alice_chat.expect("notice", "bob ended direct mode")
    alice_chat.quit()
    bob_chat.quit()


def test_two_invitations_at_once_leave_one(people):
    """alice and bob invite each other before either sees the other's invitation: the
    same invitation stands on both sides, so one of them is asked to accept."""
    _, _, alice, bob, _ = people
    alice("contacts", "direct", "bob")
    bob("contacts", "direct", "alice")
    alice("inbox")
    bob("inbox")
    states = {
        json.loads(alice("contacts", "list", "--json").stdout)[0]["direct"],
        json.loads(bob("contacts", "list", "--json").stdout)[0]["direct"],
    }
    assert states == {"inviting", "invited"}
