"""The faces of groups without processes: the `group` command's parsing and output (text
and --json), the API's group methods and `send`/`history` to '#NAME' against a stand-in
engine, and the words for the group events."""

import asyncio
import json

import pytest

from nymchat import cli
from nymchat.client import ops, rpc, vocabulary
from nymchat.client.events import (
    EventBus,
    GroupChanged,
    GroupJoined,
    GroupRemoved,
    GroupSplit,
    MessageReceived,
    Status,
)
from nymchat.client.records import Group, GroupMember, MemberTrust
from nymchat.errors import NotFound, UsageError
from nymchat.sentences import sentence, speaker

HOSTILE = "eve\r\x1b[2Kalice"


def member(name, trust, n=1):
    return GroupMember(name, bytes([n]) * 32, MemberTrust(trust))


TEAM = Group(
    "team",
    b"\x0a" * 32,
    3,
    (member("alice", "you"), member("bob", "verified", 2), member(None, "unconfirmed", 3)),
    2,
)


class Engine:
    """What the API's group methods ask of an engine: it records what it was asked."""

    def __init__(self):
        self.events = EventBus()
        self.asked: list[tuple] = []
        self.profile = type("Profile", (), {"username": "alice"})()

    def groups(self):
        return [TEAM]

    def display(self, contact_id):
        return contact_id

    def group(self, name):
        if name != "team":
            raise NotFound(f"no group #{name}")
        return TEAM

    async def group_create(self, name, members):
        self.asked.append(("create", name, members))
        return TEAM

    async def group_add(self, name, members):
        self.asked.append(("add", name, members))
        return TEAM

    async def group_remove(self, name, members):
        self.asked.append(("remove", name, members))
        return TEAM

    async def group_leave(self, name):
        self.asked.append(("leave", name))

    async def send(self, to, text):
        self.asked.append(("send", to, text))
        return b"\x01" * 16

    def message(self, message_id):
        return type("Message", (), {"status": Status.ACCEPTED})()

    def history(self, name, last):
        self.asked.append(("history", name, last))
        return []


def call(engine, method, params):
    line = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
    service = rpc.Service(engine, "test")
    return asyncio.run(service.connect(lambda message: None).answer(line.encode() + b"\n"))


SHOWN = {
    "name": "team",
    "group_id": "0a" * 32,
    "epoch": 3,
    "unread": 2,
    "members": [
        {"name": "alice", "identity": "01" * 32, "trust": "you"},
        {"name": "bob", "identity": "02" * 32, "trust": "verified"},
        {"name": None, "identity": "03" * 32, "trust": "unconfirmed"},
    ],
}


def test_the_group_methods_take_names_with_or_without_the_hash_normalised():
    engine = Engine()
    said = call(engine, "group.create", {"name": "#Team", "members": ["Bob", "carol"]})
    assert said["result"]["group"] == SHOWN
    call(engine, "group.add", {"name": "team", "members": ["dave"]})
    call(engine, "group.remove", {"name": "#team", "members": ["BOB"]})
    assert call(engine, "group.leave", {"name": "#TEAM"})["result"]["left"] == "team"
    assert engine.asked == [
        ("create", "team", ["bob", "carol"]),
        ("add", "team", ["dave"]),
        ("remove", "team", ["bob"]),
        ("leave", "team"),
    ]
    assert call(engine, "group.list", {})["result"]["groups"] == [SHOWN]
    assert call(engine, "group.show", {"name": "#team"})["result"]["group"] == SHOWN


@pytest.mark.parametrize(
    "method, params, code",
    [
        ("group.create", {"name": "team", "members": "bob"}, rpc.INVALID_PARAMS),
        ("group.create", {"name": "team", "members": ["bob", 7]}, rpc.INVALID_PARAMS),
        ("group.add", {"name": "team"}, rpc.INVALID_PARAMS),
        ("group.remove", {"name": "team", "members": [], "why": "x"}, rpc.INVALID_PARAMS),
        ("group.list", {"name": "team"}, rpc.INVALID_PARAMS),
        ("group.show", {"name": "#nope"}, rpc.APPLICATION_ERROR),
        ("group.add", {"name": "team", "members": ["bob", "x"]}, rpc.APPLICATION_ERROR),
    ],
)
def test_a_bad_group_call_is_refused_before_the_engine_is_asked(method, params, code):
    engine = Engine()
    said = call(engine, method, params)
    assert said["error"]["code"] == code and engine.asked == []


def test_an_invalid_member_is_named_in_the_error():
    said = call(Engine(), "group.add", {"name": "team", "members": ["bob", "x"]})
    assert said["error"]["message"] == "'x': a username has 3-32 characters"
    assert said["error"]["data"]["code"] == UsageError.kind


def test_send_and_history_to_a_group_go_to_its_hash_name():
    engine = Engine()
    said = call(engine, "send", {"to": "#Team", "text": "hi all"})
    assert said["result"]["to"] == "#team" and said["result"]["status"] == "accepted"
    assert call(engine, "history", {"name": "#team"})["result"]["username"] == "#team"
    assert engine.asked == [("send", "#team", "hi all"), ("history", "#team", 50)]
    assert call(engine, "history", {"name": "#nope"})["error"]["message"] == "no group #nope"


def test_group_events_are_notifications_with_their_fields():
    assert vocabulary.event(GroupChanged("team", ("carol",), (), "bob", 4)) == {
        "type": "group_changed",
        "group": "team",
        "added": ["carol"],
        "removed": [],
        "by": "bob",
        "epoch": 4,
    }
    assert [
        vocabulary.event(e)["type"]
        for e in (
            GroupJoined("team", "bob"),
            GroupRemoved("team"),
            GroupSplit("team", "no such epoch"),
        )
    ] == ["group_joined", "group_removed", "group_split"]
    received = MessageReceived("bob", b"\x01" * 16, 0, "hi", True, False, "team")
    assert vocabulary.event(received)["group"] == "team"


def test_the_group_events_in_words():
    assert sentence(GroupChanged("team", ("carol", "dave"), (), "bob", 4)) == (
        "#team: bob added carol, dave"
    )
    assert sentence(GroupChanged("team", (), ("eve",), None, 5)) == "#team: a member removed eve"
    assert sentence(GroupChanged("team", (), (), "bob", 6)) is None  # a key update alone
    assert sentence(GroupChanged("team", ("carol",), (), "bob", 7), "bob") is None  # ours
    assert sentence(GroupJoined("team", "bob")).startswith(
        "bob added you to #team: `nymchat group show team`"
    )
    assert sentence(GroupJoined("team", None)).startswith("you were added to #team: ")
    assert sentence(GroupRemoved("team")) == (
        "you were removed from #team: what is said there no longer reaches you"
    )
    assert sentence(GroupSplit("team", "no such epoch")) == (
        "a commit in #team could not be applied (no such epoch): the group may have split"
    )
    assert speaker(MessageReceived("bob", b"", 0, "", True, False, "team")) == "#team bob"
    assert speaker(MessageReceived("bob", b"", 0, "", True, False)) == "bob"


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def asked(monkeypatch):
    """`perform` answered as the engine above would, what it was asked kept."""
    calls = []

    def perform(args, method, params, slow=None):
        calls.append((method, params))
        return asyncio.run(ops.call(Engine(), method, params))

    monkeypatch.setattr(ops, "perform", perform)
    return calls


def test_group_create_prints_the_members_with_their_trust(asked, capsys):
    assert cli.main(["group", "create", "#Team", "bob", "carol"]) == 0
    assert asked == [("group.create", {"name": "#Team", "members": ["bob", "carol"]})]
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["created #team", "#team  epoch 3  (3 members)"]
    assert [row.split(None, 1) for row in out[2:]] == [
        ["alice", "you"],
        ["bob", "verified"],
        ["(no", "name)                        named by the group only (not a contact)"],
    ]


def test_group_show_and_list_json_are_the_apis_answers(asked, capsys):
    cli.main(["group", "show", "team", "--json"])
    assert json.loads(capsys.readouterr().out) == {"group": SHOWN}
    cli.main(["group", "list", "--json"])
    assert json.loads(capsys.readouterr().out) == {"groups": [SHOWN]}
    cli.main(["group", "list"])
    assert capsys.readouterr().out.split() == ["#team", "3", "members,", "2", "unread"]
    cli.main(["group", "leave", "#team"])
    assert capsys.readouterr().out.startswith("left #team:")


@pytest.mark.parametrize(
    "argv",
    [
        ["group"],
        ["group", "add", "team"],
        ["group", "remove", "team"],
        ["group", "leave"],
        ["group", "leave", "team", "bob"],
        ["group", "list", "team"],
        ["group", "show", "team", "--nym", "ws://127.0.0.1:1/x"],
    ],
)
def test_a_bad_group_command_line_is_a_usage_error(asked, argv, capsys):
    assert cli.main(argv) == UsageError.exit_code and asked == []


def test_a_group_message_is_one_line_in_inbox_neutralised(monkeypatch, capsys):
    """`inbox` as the serving chat answers it: `#name member: text`."""
    from nymchat.client import connect

    received = MessageReceived(HOSTILE, b"\x01" * 16, 0, "hi\x1b[2J", True, False, "team")
    monkeypatch.setattr(
        connect, "delegate", lambda args, method, params: {"messages": [vocabulary.event(received)]}
    )
    assert cli.main(["inbox"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("] #team eve\\r\\x1b[2Kalice: hi\\x1b[2J\n") and "\x1b" not in out
    assert cli.main(["inbox", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["group"], shown["sender"], shown["text"]) == ("team", HOSTILE, "hi\x1b[2J")


def test_a_groups_conversation_names_the_author_of_each_message(monkeypatch, capsys):
    said = {"direction": "in", "from": "#team", "author": HOSTILE, "text": "hi", "time_ms": 0}
    answer = {"username": "#team", "messages": [said]}
    monkeypatch.setattr(ops, "perform", lambda args, method, params, slow=None: answer)
    assert cli.main(["contacts", "show", "#team"]) == 0
    assert capsys.readouterr().out.endswith("] eve\\r\\x1b[2Kalice: hi\n")
