"""Groups from the command line, on real processes (dist/nymchat as mixnet, node and three
people): alice creates a group with bob (her contact) and carol (not), writes to it; the
others' `inbox` shows it as `#team alice: ...`; `group show` gives each member's trust."""

import json

import pytest
from procs import User

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
    created = json.loads(alice("group", "create", "Team", "bob", "carol", "--json").stdout)
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
