"""What chat does (nymchat/chat/core.py), whatever draws it: with an engine that keeps its
records in memory and a node that answers, refuses or stays silent as told."""

import asyncio
import functools
import logging
import time
from types import SimpleNamespace

import pytest

from nymchat.chat import core
from nymchat.chat.core import ChatSession, Event, clock, status_line
from nymchat.chat.faces import Screen, logs_off_screen, render
from nymchat.client.events import (
    DirectChange,
    DirectChanged,
    EventBus,
    GroupChanged,
    GroupJoined,
    GroupSplit,
    MessageReceived,
    Status,
    StatusChanged,
)
from nymchat.client.nodelink import NodeSilent
from nymchat.client.records import Contact, Group, GroupMember, MemberTrust, Message
from nymchat.errors import NotFound, NymchatError

NOW = 1_790_000_000.0  # seconds


def person(name):
    return {"username": name, "identity": "00" * 32, "account_key": "00" * 32}


class Store:
    def __init__(self):
        self.records: list[tuple[str, dict]] = []  # (contact, record), oldest first
        self.kv = {"outbox": []}
        self.people = {"bob": person("bob")}

    def history(self, username, count):
        said = [r for c, r in self.records if c == username and r["direction"] in ("in", "out")]
        return [Message.from_record(r) for r in said[len(said) - count :]]

    def message(self, message_id):
        return next((r for _, r in self.records if r.get("id") == message_id.hex()), None)

    def contact(self, username):
        return self.people.get(username)

    def contacts(self):
        return [Contact.from_record(c) for c in self.people.values()]

    def get(self, name, default=None):
        return self.kv.get(name, default)


class Engine:
    """The engine's surface that chat uses; `node` says what the node does with a request:
    "answers", "silent" (NodeSilent after the engine's attempts) or "refuses"."""

    def __init__(self):
        self.store = Store()
        self.profile = SimpleNamespace(username="alice", home=None)
        self.latency = 0.12
        self.node_answers = True
        self.node = "answers"
        self.events = EventBus()
        self.retried = False  # the engine was asked to retry the node now
        self.requests: list[str] = []
        self.delivered: list[str] = []  # to whom `deliver` sent
        self.teams: dict[str, Group] = {}
        self.addresses: dict[str, str] = {}  # contact id -> as shown (at another node)

    def display(self, contact_id):
        return self.addresses.get(contact_id, contact_id)

    def retry_node(self):
        self.retried = True

    def strangers(self):
        return self.store.kv.get("strangers", 16)

    async def set_strangers(self, strangers):
        self.store.kv["strangers"] = strangers
        await self._node("set_access")

    def history(self, username, count):
        return self.store.history(username, count)

    def message(self, message_id):
        record = self.store.message(message_id)
        return Message.from_record(record) if record is not None else None

    def waiting(self):
        return self.store.kv["outbox"]

    def contact(self, name):
        name = next((i for i, shown in self.addresses.items() if shown == name), name)
        return self.store.contact(name) and Contact.from_record(self.store.contact(name))

    def contact_list(self):
        return self.store.contacts()

    def queue(self, to, text):
        message_id = bytes([len(self.store.records)]) * 16
        self.store.records.append(
            (
                to,
                {
                    "direction": "out",
                    "to": to,
                    "text": text,
                    "time": NOW * 1000,
                    "status": "queued",
                    "id": message_id.hex(),
                },
            )
        )
        self.store.kv["outbox"].append(message_id.hex())
        return message_id

    async def _node(self, what):
        self.requests.append(what)
        await asyncio.sleep(0)
        if self.node == "silent":
            raise NodeSilent("the node did not answer 3 attempts of 10 s")
        if self.node == "refuses":
            raise NymchatError("the node refused: no such user (not_found)")

    async def deliver(self, to, message_id, text):
        await self._node("send")
        self.delivered.append(to)
        self.status(message_id, "accepted")

    def status(self, message_id, status, reason=None):
        record = self.store.message(message_id)
        record["status"] = status
        if reason:
            record["reason"] = reason
        self.store.kv["outbox"].remove(message_id.hex())
        self.events.emit(StatusChanged(message_id, "bob", Status(status), reason))

    async def lookup(self, name):
        await self._node("lookup")
        self.store.people[name] = person(name)
        return Contact.from_record(self.store.people[name])

    def safety_number(self, contact):
        return "12345 " * 12

    def direct_status(self, username):
        return None

    def groups(self):
        return list(self.teams.values())

    def group(self, name):
        if name not in self.teams:
            raise NotFound(f"no group #{name}")
        return self.teams[name]

    def _members(self, names, trust=MemberTrust.PINNED):
        return tuple(GroupMember(n, bytes(32), trust) for n in names)

    async def group_create(self, name, members):
        await self._node("group_create")
        you = GroupMember("alice", bytes(32), MemberTrust.YOU)
        self.teams[name] = Group(name, bytes(32), 1, (you, *self._members(members)), 0)
        return self.teams[name]

    async def group_add(self, name, members):
        await self._node("group_add")
        group = self.group(name)
        group = Group(
            name, group.group_id, group.epoch + 1, group.members + self._members(members), 0
        )
        self.teams[name] = group
        return group

    async def group_leave(self, name):
        await self._node("group_leave")
        del self.teams[name]


def said(store, contact, direction, text, when=NOW):
    n = len(store.records)
    store.records.append(
        (
            contact,
            {
                "direction": direction,
                "to" if direction == "out" else "from": contact,
                "text": text,
                "time": when * 1000,
                "status": "delivered",
                "id": (bytes([n]) * 16).hex(),
            },
        )
    )


@pytest.fixture
def chat():
    engine, events = Engine(), []
    session = ChatSession(engine, events.append, now=lambda: NOW)
    return session, engine, events


def in_loop(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


def shown(events, kind=None):
    return [e for e in events if kind is None or e.kind == kind]


def test_switching_shows_every_unread_message_and_a_few_before(chat):
    session, engine, events = chat
    for n in range(4):
        said(engine.store, "bob", "in", f"old {n}")
    for n in range(9):
        said(engine.store, "bob", "in", f"unread {n}")
    session.unread["bob"] = 9
    session.handle("/msg bob")
    texts = [e.data["text"] for e in shown(events, "history")]
    assert texts == ["old 1", "old 2", "old 3"] + [f"unread {n}" for n in range(9)]
    assert session.unread["bob"] == 0


def test_history_counts_messages_not_receipts(chat):
    session, engine, events = chat
    for n in range(6):
        said(engine.store, "bob", "out", f"mine {n}")
        engine.store.records.append(("bob", {"direction": "receipt"}))
        engine.store.records.append(("bob", {"direction": "control"}))
    session.current = "bob"
    session.handle("/history 4")
    assert [e.data["text"] for e in shown(events, "history")] == [f"mine {n}" for n in range(2, 6)]


@pytest.mark.parametrize(
    "typed",
    [
        "/history abc",
        "/history 0",
        "/history -3",
        f"/history {core.HISTORY_MAX + 1}",
        "/history 2 3",
    ],
)
def test_a_bad_history_count_is_one_clear_line(chat, typed):
    session, _, events = chat
    session.current = "bob"
    assert session.handle(typed)
    assert [e.kind for e in events] == ["error"]
    assert (
        events[0].data["text"] == f"/history N: N is how many messages to show, 1 to "
        f"{core.HISTORY_MAX}"
    )


def test_commands_are_case_insensitive_and_msg_to_yourself_is_refused(chat):
    session, _, events = chat
    session.handle("/HELP")
    assert events[-1].kind == "info" and "/history [N]" in events[-1].data["text"]
    session.handle("/Msg ALICE hi me")
    assert (
        events[-1].kind == "error" and events[-1].data["text"] == "alice is you: /msg someone else"
    )
    assert session.current is None
    assert session.handle("/QUIT") is False


@in_loop
async def test_strangers_shows_and_sets_the_policy_without_holding_the_prompt(chat):
    session, engine, events = chat
    session.handle("/strangers")
    assert events[-1].data["text"] == "strangers: pow 16"
    session.handle("/strangers pow 20")
    assert events[-1].data["text"] == "strangers: pow 20"
    await asyncio.sleep(0.01)
    assert engine.requests == ["set_access"] and engine.strangers() == 20
    for typed in ("/strangers pow x", "/strangers pow 25", "/strangers maybe"):
        session.handle(typed)
        assert events[-1].kind == "error"
    session.handle("/strangers deny")
    await asyncio.sleep(0.01)
    assert events[-1].data["text"] == "strangers: deny" and engine.strangers() == 255


def test_help_is_aligned(chat):
    session, _, events = chat
    session.handle("/help")
    lines = events[-1].data["text"].split("\n")
    assert len(lines) == len(core.COMMANDS)
    assert (
        len({row.index(what) for row, (_, what) in zip(lines, core.COMMANDS.values(), strict=True)})
        == 1
    )


@in_loop
async def test_a_message_typed_while_the_node_is_silent_is_queued_and_the_prompt_is_free(chat):
    session, engine, events = chat
    engine.node = "silent"
    session.current = "bob"
    session.handle("first")  # returns at once: the send is a task of its own
    assert [(e.kind, e.data["status"]) for e in events] == [("sent", "queued")]
    assert session.state().startswith("connected")
    await asyncio.sleep(0.01)
    assert session.state() == "node unreachable, retrying" and engine.retried
    assert events[-1].kind == "notice" and "wait in the outbox" in events[-1].data["text"]
    session.handle("second")  # known silent: stored, not sent; the engine retries
    await asyncio.sleep(0.01)
    assert engine.requests == ["send"] and events[-1].data["status"] == "queued"
    assert "2 queued" in session.status()
    # the engine's retry got through: the status line says so
    engine.node_answers = False
    assert session.state() == "node unreachable, retrying"
    engine.node_answers = True
    assert session.state() == "connected 120 ms"


@in_loop
async def test_looking_someone_up_does_not_hold_the_prompt(chat):
    session, engine, events = chat
    engine.node = "silent"
    session.handle("/msg carol hello")
    assert session.current is None and events[-1].data["text"] == "looking carol up..."
    await asyncio.sleep(0.01)
    assert events[-1].kind == "error" and session.state() == "node unreachable, retrying"
    assert events[-1].data["text"].startswith("looking carol up: the node did not answer")
    engine.node = "answers"
    session.handle("/msg carol hello")
    await asyncio.sleep(0.01)
    assert session.current == "carol"
    assert [e.data["status"] for e in events if e.kind == "sent"] == ["queued", "accepted"]


@in_loop
async def test_a_failed_message_shows_the_nodes_reason_once(chat):
    session, engine, events = chat
    session.current = "bob"

    async def refused(to, message_id, text):
        engine.status(message_id, "failed", reason="no such user")
        raise NymchatError("the node refused: no such user (not_found)")

    engine.deliver = refused
    session.handle("hi")
    await asyncio.sleep(0.01)
    assert [(e.kind, e.data.get("status")) for e in events] == [
        ("sent", "queued"),
        ("sent", "failed"),
    ]
    assert render(events[-1]).endswith("hi  [FAILED: no such user]")


def test_a_send_from_another_terminal_shows_its_recipient(chat):
    _, engine, events = chat
    message_id = engine.queue("bob", "through the control socket")  # not typed here
    engine.status(message_id, "accepted")
    assert render(events[-1]).endswith("you -> bob: through the control socket  [accepted by node]")


def test_in_chat_json_receipts_and_invitations_carry_the_apis_events(chat):
    _, engine, events = chat
    message_id = engine.queue("bob", "hi")
    engine.status(message_id, "delivered")  # bob's receipt came back
    assert events[-1].kind == "delivered"
    assert events[-1].data["type"] == "status_changed" and events[-1].data["peer"] == "bob"
    assert events[-1].data["message_id"] == message_id.hex()
    engine.events.emit(DirectChanged("bob", DirectChange.INVITED, by_peer=True))
    assert events[-1].kind == "notice" and "bob invites you" in events[-1].data["text"]
    assert events[-1].data["type"] == "direct_changed" and events[-1].data["change"] == "invited"


@in_loop
async def test_a_contact_at_another_node_is_shown_and_typed_back_as_its_address(chat):
    session, engine, events = chat
    bob_b = "bob@" + "B" * 44  # his contact id: his name at his node's key
    engine.store.people[bob_b] = person(bob_b)  # (a record holds its id)
    engine.addresses[bob_b] = "bob@work"
    session.current = "bob"
    session._arrived(MessageReceived(bob_b, b"\x07" * 16, int(NOW * 1000), "hi", True, False))
    assert events[-1].data["text"] == "new message from bob@work (1 unread): /msg bob@work"
    session.handle("/msg bob@work hello")
    assert session.current == bob_b and session.unread[bob_b] == 0
    assert "talking to bob@work" in [e.data.get("text") for e in events]
    assert "bob@work" in session.status() and session.talking_to() == "bob@work"
    assert render(shown(events, "sent")[0]).endswith("you -> bob@work: hello  [queued]")
    await session.drain()
    assert engine.delivered == [bob_b]
    session._arrived(MessageReceived(bob_b, b"\x08" * 16, int(NOW * 1000), "hi", True, False))
    assert events[-1].data["type"] == "message_received"
    assert events[-1].data["sender"] == events[-1].data["from"] == "bob@work"
    session.handle("/contacts")
    listed = events[-1].data["contacts"]
    assert [(c["username"], c["id"]) for c in listed] == [("bob", "bob"), ("bob@work", bob_b)]
    assert "bob@work" in session.contact_names()
    engine.events.emit(DirectChanged(bob_b, DirectChange.INVITED, by_peer=True))
    assert events[-1].data["text"].startswith("bob@work invites you")
    assert events[-1].data["username"] == "bob@work"


def test_older_records_saying_sent_are_shown_as_queued(chat):
    session, engine, events = chat
    said(engine.store, "bob", "out", "from an older version")
    engine.store.records[-1][1]["status"] = "sent"
    session.current = "bob"
    session.handle("/history")
    assert render(events[-1]).endswith("[queued]")


@in_loop
async def test_leaving_does_not_wait_for_a_silent_node(chat):
    session, _, events = chat
    session.current = "bob"
    session.node_silent = True
    session.handle("waits")
    started = time.monotonic()
    await session.drain(timeout=60)
    assert time.monotonic() - started < 30
    assert "1 message(s) wait in the outbox" in events[-1].data["text"]


def test_messages_not_from_today_show_their_date():
    assert clock(NOW * 1000, NOW * 1000) == time.strftime("%H:%M", time.localtime(NOW))
    yesterday = NOW - 86_400
    assert clock(yesterday * 1000, NOW * 1000) == time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(yesterday)
    )


def test_the_status_line_fits_sixty_columns():
    line = status_line(
        "a-rather-long-name-01",
        "another-long-name-02",
        "node unreachable, retrying",
        12,
        {"carol": 3, "dave": 1},
        "direct",
    )
    assert len(line) == core.STATUS_WIDTH and line.endswith("…")
    assert (
        status_line("alice", "bob", "connected 80 ms", 0, {}, None)
        == " alice > bob | connected 80 ms "
    )


def test_a_mark_is_rewritten_where_it_stands_and_printed_anew_once_out_of_sight():
    screen = Screen(lambda: (16, 40))
    sent = {"to": "bob", "text": "hello", "time": "12:00", "id": "01", "status": "queued"}
    first = screen.show(Event("sent", sent))
    assert first == "[12:00] you -> bob: hello  [queued]\n"
    screen.show(Event("info", {"text": "x\n" * 3 + "a" * 50}))  # 3 + 2 rows
    update = screen.show(Event("delivered", {**sent, "status": "delivered"}))
    assert update == "\x1b[6A\x1b[28G[delivered]\x1b[K\x1b[6B\r"
    for _ in range(20):
        screen.show(Event("info", {"text": "scrolling"}))
    again = screen.show(Event("delivered", {**sent, "status": "delivered"}))
    assert again == "[12:00] you -> bob: hello  [delivered]\n"


@pytest.mark.parametrize("level", [logging.WARNING, logging.INFO])
def test_under_the_terminal_face_log_lines_go_to_a_private_file_or_nowhere(tmp_path, capsys, level):
    logger = logging.getLogger("nymchat")
    saved = logger.handlers[:], logger.level
    logger.handlers[:] = [logging.StreamHandler()]
    logger.setLevel(level)
    try:
        with logs_off_screen(tmp_path / "chat.log") as to_file:
            logging.getLogger("nymchat.nym.transport").warning("lost the nym-client")
            logging.getLogger("asyncio").error("Task exception was never retrieved")
    finally:
        logger.handlers[:], logger.level = saved
    assert capsys.readouterr().err == ""
    assert to_file == (level == logging.INFO)
    if to_file:
        assert (tmp_path / "chat.log").stat().st_mode & 0o777 == 0o600
        assert "lost the nym-client" in (tmp_path / "chat.log").read_text()
    else:
        assert not (tmp_path / "chat.log").exists()


# --- groups ------------------------------------------------------------------------------


def team(engine, *members):
    you = GroupMember("alice", bytes(32), MemberTrust.YOU)
    engine.teams["team"] = Group("team", bytes(32), 3, (you, *members), 0)


@in_loop
async def test_a_group_created_in_chat_shows_its_members_and_becomes_the_conversation(chat):
    session, engine, events = chat
    session.handle("/group create #Team bob carol")  # the prompt is not held
    assert engine.requests == [] and session.current is None
    await asyncio.sleep(0.01)
    assert engine.requests == ["group_create"]
    assert [e.kind for e in events[:2]] == ["notice", "members"]
    assert events[0].data["text"] == "created #team"
    assert [m["name"] for m in events[1].data["members"]] == ["alice", "bob", "carol"]
    assert session.current == "#team"
    session.handle("/group add #team dave")
    await asyncio.sleep(0.01)
    assert any(e.data.get("text") == "dave added to #team" for e in events)
    assert [m["name"] for m in events[-1].data["members"]][-1] == "dave"


@in_loop
async def test_what_is_typed_in_a_group_goes_to_its_hash_name(chat):
    session, engine, events = chat
    team(engine)
    session.handle("/msg #TEAM hello all")
    await asyncio.sleep(0.01)
    assert session.current == "#team" and engine.delivered == ["#team"]
    assert render(events[-1]).endswith("you -> #team: hello all  [accepted by node]")


def test_a_group_message_elsewhere_is_unread_in_the_group_and_shown_on_switching(chat):
    session, engine, events = chat
    team(engine, GroupMember("carol", bytes(32), MemberTrust.VERIFIED))
    session.current = "bob"
    session._arrived(
        MessageReceived("carol", b"\x07" * 16, int(NOW * 1000), "hi", True, False, "team")
    )
    assert events[-1].data["text"] == "new message from #team carol (1 unread): /msg #team"
    assert "unread: #team 1" in session.status()
    session.handle("/contacts")
    assert render(events[-1]).splitlines()[-1].split() == ["#team", "2", "members", "1", "unread"]
    engine.store.records.append(
        (
            "#team",
            {
                "direction": "in",
                "from": "#team",
                "text": "hi",
                "time": NOW * 1000,
                "id": "07" * 16,
            },
        )
    )
    engine.history = lambda name, count: [
        Message(**{**vars(m), "author": "carol"}) for m in engine.store.history(name, count)
    ]
    session.handle("/msg #team")
    assert session.unread["#team"] == 0
    assert events[-2].data["text"] == "talking in #team"
    assert render(events[-1]) == f"[{clock(NOW * 1000, NOW * 1000)}] #team carol: hi"


def test_a_group_message_in_the_current_group_shows_group_and_author(chat):
    session, _, events = chat
    session.current = "#team"
    session._arrived(
        MessageReceived("carol", b"\x07" * 16, int(NOW * 1000), "yo", True, False, "team")
    )
    assert events[-1].kind == "message" and events[-1].data["group"] == "team"
    assert render(events[-1]).endswith("] #team carol: yo  (verified)")


def test_members_say_how_far_each_is_trusted(chat):
    session, engine, events = chat
    team(
        engine,
        GroupMember("bob", bytes(32), MemberTrust.MISMATCH),
        GroupMember(None, bytes(32), MemberTrust.UNCONFIRMED),
    )
    session.handle("/members #team")
    rows = render(events[-1]).splitlines()
    assert rows[0] == "#team, epoch 3:"
    assert rows[1].split() == ["alice", "you"]
    assert rows[2].split()[:2] == ["bob", "MISMATCH:"]
    assert rows[3].startswith("  (no name)") and "named by the group only" in rows[3]
    session.current = "#team"
    session.handle("/members")
    assert render(events[-1]).splitlines()[0] == "#team, epoch 3:"


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/msg #nope", "no group #nope"),
        ("/members #nope", "no group #nope"),
        ("/members", "/members #GROUP: which group (or /msg #GROUP first)"),
        (
            "/group add #team",
            "/group create|add|remove|leave #GROUP [NAME...]: which group, and who?",
        ),
        ("/group leave #team #other", "/group leave #GROUP: leave one group at a time"),
        ("/group rename #team", "/group: unknown or incomplete command (/help lists them)"),
        ("/group create #x", "a username has 3-32 characters"),
    ],
)
def test_a_bad_group_command_is_one_clear_line(chat, typed, said):
    session, _, events = chat
    assert session.handle(typed)
    assert [(e.kind, e.data["text"]) for e in events] == [("error", said)]


@in_loop
async def test_leaving_a_group_ends_its_conversation(chat):
    session, engine, events = chat
    team(engine)
    session.handle("/msg #team")
    session.handle("/group leave team")
    await asyncio.sleep(0.01)
    assert engine.requests == ["group_leave"] and session.current is None
    assert events[-1].data["text"] == "left #team"


def test_group_changes_are_told_in_the_chat_with_the_apis_event(chat):
    _, engine, events = chat
    engine.events.emit(GroupJoined("team", "bob"))
    assert events[-1].kind == "notice" and events[-1].data["type"] == "group_joined"
    assert events[-1].data["text"].startswith("bob added you to #team")
    engine.events.emit(GroupChanged("team", ("carol",), ("dave",), "bob", 4))
    assert events[-1].data["text"] == "#team: bob added carol and removed dave"
    engine.events.emit(GroupChanged("team", ("erin",), (), "alice", 5))  # ours: said already
    assert events[-1].data["epoch"] == 4
    engine.events.emit(GroupSplit("team", "no such epoch"))
    assert events[-1].data["text"] == (
        "a commit in #team could not be applied (no such epoch): the group may have split"
    )
