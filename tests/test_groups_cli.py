"""Groups from the command line, on real processes (dist/nymchat as mixnet, node and three
people): alice creates a group with bob (her contact) and carol (not), writes to it; the
others' `inbox` shows it as `#team alice: ...`; `group show` gives each member's trust;
while bob's chat runs, the group's messages appear in it and `send '#team'` goes through
it; carol removed is told so and reads nothing after; bob leaves."""

import json
import subprocess

import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

from nymchat.errors import NotFound

pytestmark = pytest.mark.cli


def trust(group: dict) -> dict[str, str]:
    return {m["name"]: m["trust"] for m in group["members"]}


def test_three_people_talk_in_a_group_from_the_command_line(net, shiv_root, tmp_path):
    mixnet, node = net
    alice, bob, carol = (
        User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "carol")
    )
    for user in (alice, bob, carol):
        user.register()
    alice("lookup", "bob")
    out = alice("group", "create", "Team", "bob", "carol")
    assert out.stdout.startswith("created #team") and out.stderr == ""  # told once
    created = json.loads(alice("group", "show", "team", "--json").stdout)
    assert created["group"]["name"] == "team"
    assert trust(created["group"]) == {"alice": "you", "bob": "pinned", "carol": "unconfirmed"}

    sent = json.loads(alice("send", "#team", "hello team", "--json").stdout)
    assert (sent["to"], sent["status"]) == ("#team", "accepted")
    for user in (bob, carol):
        received = [(m["group"], m["sender"], m["text"]) for m in user.json("inbox")]
        assert received == [("team", "alice", "hello team")], user.name

    bob("send", "#team", "hi all")
    assert "] #team bob: hi all" in alice("inbox").stdout

    shown = json.loads(carol("group", "show", "#team", "--json").stdout)["group"]
    assert trust(shown) == {"alice": "unconfirmed", "bob": "unconfirmed", "carol": "you"}
    assert shown["group_id"] == created["group"]["group_id"]
    assert bob("group", "list").stdout.split()[:3] == ["#team", "3", "members"]

    missing = carol("group", "show", "nope", "--json", check=False)
    assert missing.returncode == NotFound.exit_code
    assert json.loads(missing.stdout)["error"]["code"] == NotFound.kind

    chat = subprocess.Popen(
        [str(DIST), "--home", str(bob.home), "chat", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(bob.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    try:
        wait_until_serving(bob.home, chat)
        alice("send", "#team", "in the chat?")
        said = next_event(chat, "message")
        assert (said["group"], said["from"], said["text"]) == ("team", "alice", "in the chat?")
        bob("send", "#team", "through the chat", passphrase="")  # the chat sends it
        assert next_event(chat, "sent")["to"] == "#team"
        chat.stdin.write("/members #team\n")
        chat.stdin.flush()
        assert trust(next_event(chat, "members"))["bob"] == "you"
        chat.stdin.write("/quit\n")
        chat.stdin.flush()
        assert chat.wait(timeout=30) == 0
    finally:
        chat.kill()
    texts = [m["text"] for m in carol.json("inbox")]
    assert texts == ["hi all", "in the chat?", "through the chat"]

    assert alice("group", "remove", "#team", "carol").stdout.startswith("removed carol from #team")
    alice("send", "#team", "carol is gone")
    told = carol("inbox")
    assert "you were removed from #team" in told.stderr and "carol is gone" not in told.stdout
    assert carol("group", "list").stdout.startswith("no groups yet")
    assert bob("group", "leave", "team").stdout.startswith("left #team")
    assert json.loads(bob("group", "list", "--json").stdout)["groups"] == []


def next_event(chat: subprocess.Popen, kind: str) -> dict:
    """The chat's next `--json` line of that kind (notices and the like skipped)."""
    for _ in range(20):
        event = json.loads(chat.stdout.readline())
        if event["event"] == kind:
            return event
    raise AssertionError(f"no {kind} event")
