"""The JSON-RPC API (docs/API.md): the sans-I/O core against a stand-in engine, then the
built file: `nymchat daemon` on its socket and on stdio, overlapping requests, and the
example echo bot, on real mixnet and node processes."""

import asyncio
import dataclasses
import enum
import json
import os
import socket
import subprocess
import sys
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from procs import DIST, PASSPHRASE, ROOT, User, clean_env, stop, wait_until_serving

from nymchat.chat.core import clock
from nymchat.client import events, ops, rpc, vocabulary
from nymchat.client.events import EventBus, MessageReceived, OutboxNotSent, Status, StatusChanged
from nymchat.errors import NotFound
from nymchat.sentences import sentence
from nymchat.web import setup

# --- the core, in-process --------------------------------------------------------------


class Engine:
    """What the API asks of an engine, for `send`, `contacts.names` and `status`: a send
    says something, lets the other sends start, then says more."""

    def __init__(self, overlapping: int = 1):
        self.events, self.messages = EventBus(), {}
        self.profile = type("Profile", (), {"username": "alice"})()
        self.node_answers = True
        self.started, self.overlapping, self.all_started = 0, overlapping, asyncio.Event()

    def message(self, message_id):
        return self.messages.get(message_id)

    def waiting(self):
        return []

    def display(self, contact_id):
        return contact_id

    def contact_list(self):
        return [type("Contact", (), {"username": "bob"})()]

    async def send(self, to, text):
        if to == "nobody":
            raise NotFound("no such user: nobody")
        message_id = text.encode().ljust(16, b".")[:16]
        self.messages[message_id] = type("Message", (), {"status": Status.ACCEPTED})()
        self.events.emit(StatusChanged(message_id, to, Status.QUEUED))
        self.events.emit(OutboxNotSent(message_id, to, f"{text} is on its way"))
        self.started += 1
        if self.started == self.overlapping:
            self.all_started.set()
        await self.all_started.wait()  # every other send has said its part meanwhile
        self.events.emit(StatusChanged(message_id, to, Status.ACCEPTED))
        return message_id


def waiting(text: str) -> str:
    return sentence(OutboxNotSent(b"", "bob", f"{text} is on its way"))


def request(method, params=None, id=1) -> bytes:
    body = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode() + b"\n"


def answer(line: bytes, engine=None) -> dict | None:
    service = rpc.Service(engine or Engine(), "test")
    return asyncio.run(service.connect(lambda message: None).answer(line))


def test_overlapping_requests_each_get_their_own_events_and_notices():
    async def main():
        engine = Engine(overlapping=2)
        told = []
        engine.events.subscribe(lambda event: told.append(sentence(event)))  # the terminal
        service = rpc.Service(engine, "test")
        one, two = service.connect(print), service.connect(print)
        return told, await asyncio.gather(
            one.answer(request("send", {"to": "bob", "text": "first"}, id="a")),
            two.answer(request("send", {"to": "bob", "text": "second"}, id="b")),
        )

    told, (first, second) = asyncio.run(main())
    for said, text in ((first, "first"), (second, "second")):
        own = text.encode().ljust(16, b".").hex()
        assert said["result"]["message_id"] == own
        assert [(e["type"], e["message_id"]) for e in said["result"]["events"]] == [
            ("status_changed", own),
            ("outbox_not_sent", own),
            ("status_changed", own),
        ]
        assert said["result"]["notices"] == [waiting(text)]
    assert [t for t in told if t] == [waiting("first"), waiting("second")]  # shown there too


def test_a_subscriber_gets_every_event_as_a_notification_until_it_unsubscribes():
    async def main():
        engine = Engine()
        pushed = []
        connection = rpc.Service(engine, "test").connect(pushed.append)
        assert (await connection.answer(request("subscribe")))["result"]["subscribed"] is True
        engine.events.emit(
            MessageReceived("bob", b"\x01" * 16, 1_764_601_941_123, "hi", True, False)
        )
        await connection.answer(request("send", {"to": "bob", "text": "back"}))
        assert (await connection.answer(request("unsubscribe")))["result"]["subscribed"] is False
        engine.events.emit(MessageReceived("bob", b"\x02" * 16, 0, "unseen", True, False))
        return pushed

    pushed = asyncio.run(main())
    assert all(p["jsonrpc"] == "2.0" and p["method"] == "event" for p in pushed)
    assert [p["params"]["type"] for p in pushed] == [
        "message_received",
        "status_changed",
        "outbox_not_sent",
        "status_changed",
    ]
    assert pushed[0]["params"] == {
        "type": "message_received",
        "sender": "bob",
        "message_id": "01" * 16,
        "sent": "2025-12-01T15:12:21.123Z",
        "sent_ms": 1_764_601_941_123,
        "text": "hi",
        "verified": True,
        "key_changed": False,
        "group": None,  # a pair's message (a group's names the group)
    }


def test_a_batch_is_answered_with_an_array_of_its_requests_answers():
    async def main():
        engine = Engine(overlapping=2)
        connection = rpc.Service(engine, "test").connect(lambda message: None)
        batch = [
            json.loads(request("send", {"to": "bob", "text": "first"}, id="a")),
            json.loads(request("send", {"to": "bob", "text": "second"}, id="b")),
            {"jsonrpc": "2.0", "method": "contacts.names"},  # a notification: no answer
            {"method": "status", "id": 9},  # not a request: its own error
        ]
        return await connection.answer(json.dumps(batch).encode() + b"\n")

    answers = {a["id"]: a for a in asyncio.run(main())}
    assert set(answers) == {"a", "b", 9}
    for id, text in (("a", "first"), ("b", "second")):  # each ran in its own scope
        own = text.encode().ljust(16, b".").hex()
        assert {e["message_id"] for e in answers[id]["result"]["events"]} == {own}
    assert answers[9]["error"]["code"] == rpc.INVALID_REQUEST
    only_notifications = json.dumps([{"jsonrpc": "2.0", "method": "contacts.names"}] * 2)
    assert answer(only_notifications.encode() + b"\n") is None


@pytest.mark.parametrize(
    "line, code",
    [
        (b"not json\n", rpc.PARSE_ERROR),
        (b"[" * 100_000 + b"\n", rpc.PARSE_ERROR),  # deeper than the reader goes
        (b"[]\n", rpc.INVALID_REQUEST),  # an empty batch
        (b"[" + b",".join([request("status")[:-1]] * 33) + b"]\n", rpc.INVALID_REQUEST),
        (b'{"method": "status", "id": 1}\n', rpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "id": 1}\n', rpc.INVALID_REQUEST),
        (b'{"jsonrpc": "2.0", "method": "status", "id": [1]}\n', rpc.INVALID_REQUEST),
        (request("no.such.method"), rpc.METHOD_NOT_FOUND),
        (request("send", {"to": "bob"}), rpc.INVALID_PARAMS),
        (request("send", {"to": "bob", "text": 7}), rpc.INVALID_PARAMS),
        (request("send", {"to": "bob", "text": "hi", "wait": 1}), rpc.INVALID_PARAMS),
        (request("send", {"to": "bob", "text": "hi", "cc": "carol"}), rpc.INVALID_PARAMS),
        (request("history", {"name": "bob", "last": True}), rpc.INVALID_PARAMS),
        (
            b'{"jsonrpc": "2.0", "method": "send", "params": ["bob", "hi"], "id": 1}\n',
            rpc.INVALID_PARAMS,
        ),
        (request("status", {"verbose": True}), rpc.INVALID_PARAMS),
    ],
)
def test_a_bad_request_gets_its_standard_error_and_the_usage_exit_code(line, code):
    said = answer(line)
    assert said["jsonrpc"] == "2.0" and said["error"]["code"] == code
    assert said["error"]["data"]["exit"] == 2 and "result" not in said


def test_an_error_of_the_engine_carries_its_exit_code_and_code():
    said = answer(request("send", {"to": "nobody", "text": "hi"}, id="x"))
    assert said["id"] == "x" and said["error"]["code"] == rpc.APPLICATION_ERROR
    assert said["error"]["message"] == "no such user: nobody"
    assert said["error"]["data"]["exit"] == NotFound.exit_code
    assert said["error"]["data"]["code"] == NotFound.kind


def test_a_notification_gets_no_answer_and_a_request_its_id():
    assert answer(b'{"jsonrpc": "2.0", "method": "contacts.names"}\n') is None
    said = answer(request("contacts.names", id=42))
    assert said == {
        "jsonrpc": "2.0",
        "id": 42,
        "result": {"names": ["bob"], "events": [], "notices": []},
    }
    assert answer(request("status"))["result"]["serving"] == "test"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_line_gets_an_answer_and_never_an_exception(line):
    said = answer(line)
    assert said is None or (said["jsonrpc"] == "2.0" and ("result" in said) != ("error" in said))
    json.dumps(said)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(ops.METHODS)),
    st.dictionaries(
        st.sampled_from(["name", "to", "text", "id", "last", "wait", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    ),
)
def test_params_of_any_shape_are_checked_before_a_method_runs(method, params):
    known = ops.METHODS[method]
    try:
        ops.check(method, params)
    except ops.BadParams:
        return
    assert set(known.params) <= set(params) <= set(known.params) | set(known.optional)


def test_every_event_class_renders_to_json_with_the_vocabulary():
    sample = {bytes: b"\xab" * 16, str: "bob", int: 1_764_601_941_123, float: 1.5, bool: True}
    for cls in typing.get_args(events.Event):
        hints = typing.get_type_hints(cls)
        values = {}
        for field in dataclasses.fields(cls):
            kind = (typing.get_args(hints[field.name]) or (hints[field.name],))[0]
            values[field.name] = next(iter(kind)) if issubclass(kind, enum.Enum) else sample[kind]
        rendered = vocabulary.event(cls(**values))
        json.dumps(rendered)
        assert rendered["type"] == vocabulary.kind(cls(**values))
        for name, value in values.items():
            if name in vocabulary.TIMES:
                assert rendered[name] == "2025-12-01T15:12:21.123Z"
                assert rendered[f"{name}_ms"] == value
            elif isinstance(value, bytes):
                assert rendered[name] == value.hex()
    assert vocabulary.kind(events.KeyChangedEvent("bob")) == "key_changed"
    assert vocabulary.iso(0) == "1970-01-01T00:00:00.000Z"


def test_an_arriving_message_in_chat_json_carries_the_api_fields():
    from nymchat.chat.core import ChatSession

    shown = []
    engine = type("Engine", (), {"events": EventBus(), "display": lambda _, id: id})()
    session = ChatSession(engine, shown.append, now=lambda: 1_764_601_941)
    session._arrived(MessageReceived("bob", b"\x01" * 16, 1_764_601_941_123, "hi", True, False))
    (event,) = shown
    assert event.data["from"] == "bob" and event.data["time"] == clock(
        1_764_601_941_123, 1_764_601_941_000
    )
    assert {k: v for k, v in event.data.items() if k not in ("from", "time")} == vocabulary.event(
        MessageReceived("bob", b"\x01" * 16, 1_764_601_941_123, "hi", True, False)
    )


def test_docs_api_shows_every_method_and_every_event():
    text = (ROOT / "docs" / "API.md").read_text()
    documented = {
        name.strip("`")
        for line in text.splitlines()
        if line.startswith("### ")
        for name in line[4:].split(", ")
    }
    assert documented == set(ops.METHODS) | set(rpc.SERVICE_METHODS) | set(setup.METHODS)
    for cls in typing.get_args(events.Event):
        assert f"`{vocabulary.kind(cls.__new__(cls))}`" in text, cls


# --- the built file --------------------------------------------------------------------


def _users(mixnet, node, shiv_root, tmp_path, *names):
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in names]
    for user in users:
        user.register()
    return users


@pytest.fixture
def people(net, shiv_root, tmp_path):
    return lambda *names: _users(*net, shiv_root, tmp_path, *names)


def _daemon(user, *args) -> subprocess.Popen:
    daemon = subprocess.Popen(
        [str(DIST), "--home", str(user.home), "daemon", *args],
        stdin=subprocess.PIPE if "--stdio" in args else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    wait_until_serving(user.home, daemon)
    return daemon


class Client:
    """A plain JSON-RPC client on the control socket."""

    def __init__(self, home):
        self.socket = socket.socket(socket.AF_UNIX)
        self.socket.settimeout(60)
        self.socket.connect(str(home / "control.sock"))
        self.lines = self.socket.makefile()

    def ask(self, method, params=None, id=1):
        self.socket.sendall(request(method, params, id))

    def next(self) -> dict:
        return json.loads(self.lines.readline())

    def answer(self, id=1) -> dict:
        while "id" not in (said := self.next()) or said["id"] != id:
            pass
        return said


@pytest.mark.cli
def test_two_overlapping_requests_to_a_daemon_never_take_each_others_events(people):
    alice, bob = people("alice", "bob")
    alice("lookup", "bob")
    daemon = _daemon(alice)
    try:
        one, two = Client(alice.home), Client(alice.home)
        for round in range(3):  # both in flight at once, on two connections
            one.ask("send", {"to": "bob", "text": f"one {round}"}, id=round)
            two.ask("send", {"to": "bob", "text": f"two {round}"}, id=round)
            for client in (one, two):
                said = client.answer(round)["result"]
                assert said["status"] == "accepted"
                assert said["events"] and all(
                    e["message_id"] == said["message_id"] for e in said["events"]
                ), said
        # several requests on one connection, answered by id
        one.ask("contacts.list", id="list")
        one.ask("history", {"name": "bob", "last": 2}, id="history")
        said = one.answer("list")
        assert [c["username"] for c in said["result"]["contacts"]] == ["bob"]
        history = one.answer("history")["result"]["messages"]
        assert sorted(m["text"] for m in history) == ["one 2", "two 2"]
        assert history[0]["time"].endswith("Z") and type(history[0]["time_ms"]) is int
    finally:
        assert stop(daemon) == 0  # with both clients still connected
    assert "Traceback" not in daemon.stderr.read()  # their handlers end quietly
    assert not (alice.home / "control.sock").exists()
    assert sorted(m["text"] for m in bob.json("inbox")) == sorted(
        f"{who} {n}" for who in ("one", "two") for n in range(3)
    )


@pytest.mark.cli
def test_a_daemon_on_stdio_pushes_messages_to_a_subscriber_and_ends_with_its_input(people):
    alice, bob = people("alice", "bob")
    daemon = _daemon(alice, "--stdio")
    try:
        daemon.stdin.write(request("status", id="s").decode() + request("subscribe").decode())
        daemon.stdin.flush()
        said = {}
        while len(said) < 2:
            answer = json.loads(daemon.stdout.readline())
            said[answer["id"]] = answer["result"]
        assert said["s"]["serving"] == "daemon" and said["s"]["username"] == "alice"
        assert said[1]["subscribed"] is True
        bob("send", "alice", "hello daemon")
        event = json.loads(daemon.stdout.readline())
        assert (event["method"], event["params"]["type"]) == ("event", "message_received")
        assert (event["params"]["sender"], event["params"]["text"]) == ("bob", "hello daemon")
        # a one-shot command goes through it meanwhile, no passphrase asked
        out = alice("send", "bob", "through the daemon", passphrase="not needed")
        assert out.stdout.strip() == "accepted by the node for bob"
        daemon.stdin.close()
        assert daemon.wait(timeout=30) == 0
    finally:
        stop(daemon)
    assert not (alice.home / "control.sock").exists()
    (got,) = bob.json("inbox")  # the same vocabulary, with the older names kept
    assert (got["type"], got["text"], got["sender"], got["from"]) == (
        "message_received",
        "through the daemon",
        "alice",
        "alice",
    )
    assert got["id"] == got["message_id"] and type(got["sent_ms"]) is int
    assert got["sent"] == vocabulary.iso(got["sent_ms"]) and got["sent"].endswith("Z")


@pytest.mark.cli
def test_the_echo_bot_answers_every_message_and_sees_the_receipts(people):
    alice, bob = people("alice", "bob")
    daemon = _daemon(alice)
    bot = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "examples" / "echo_bot.py"),
            str(alice.home / "control.sock"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"]},  # no nymchat on its path: the API only
    )
    try:
        assert json.loads(bot.stdout.readline()) == {"ready": "alice"}
        for text in ("ping", "pong?"):
            bob("send", "alice", text)
            echoed = json.loads(bot.stdout.readline())
            assert (echoed["echoed"], echoed["to"], echoed["status"]) == (text, "bob", "accepted")
            assert [m["text"] for m in bob.json("inbox")] == [text]  # bob's receipt goes back
            assert json.loads(bot.stdout.readline()) == {"receipt": echoed["id"], "peer": "bob"}
    finally:
        stop(bot)
        assert stop(daemon) == 0
    assert bot.stderr.read() == ""
