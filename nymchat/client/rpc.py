"""JSON-RPC 2.0 over lines, for the API (docs/API.md): the profile's control socket and
`nymchat daemon --stdio` speak it, one JSON object a line each way.

Reading a line, checking it is a request, calling the method and building the answer
happen here, without I/O: the edges (`control.py`, the daemon's standard input) hand
lines in and write what comes out. The methods are the table of `nymchat.client.ops`,
which the one-shot commands use too, plus `status`, `subscribe` and `unsubscribe`.

Each call runs in its own event scope: the events it causes (its message's status
changes...) come back in its answer, never in another's, even when requests on several
connections are served at once. After `subscribe`, every event arrives as a notification
`{"jsonrpc": "2.0", "method": "event", "params": {...}}` (`nymchat.client.vocabulary`).
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from nymchat import _native
from nymchat.client import ops, vocabulary
from nymchat.client.engine import Engine
from nymchat.client.events import Event
from nymchat.client.vocabulary import JsonObject
from nymchat.errors import NymchatError
from nymchat.sentences import sentence, shown

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
APPLICATION_ERROR = -32000  # a NymchatError: `data` carries its exit code and code
MAX_IN_FLIGHT = 8  # requests of one connection served at once; the next line waits
MAX_BATCH = 32  # requests in one batch (a JSON array), refused whole beyond it
SERVICE_METHODS = ("status", "subscribe", "unsubscribe")

Answer = JsonObject | list[JsonObject]  # one answer, or a batch's
Push = Callable[[Answer], None]
Id = int | str | None  # a request's id, echoed in its answer (None when it has none)


class Invalid(Exception):
    """A line that is not a request we take: answered with `code`, the call not made."""

    def __init__(self, code: int, message: str, id: Id = None):
        super().__init__(message)
        self.code, self.id = code, id


@dataclass(frozen=True)
class Request:
    method: str
    params: JsonObject
    id: Id
    notification: bool  # no `id`: no answer is sent


def result(id: Id, value: JsonObject) -> JsonObject:
    return {"jsonrpc": "2.0", "id": id, "result": value}


def error(id: Id, code: int, message: str, data: JsonObject | None = None) -> JsonObject:
    body: JsonObject = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": id, "error": body}


def notification(method: str, params: JsonObject) -> JsonObject:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def parse(line: bytes) -> Request | list[Request | Invalid]:
    """One request, or a batch of them (each checked on its own), read within the bounds
    of the native JSON reader; raises `Invalid` for a line that is neither."""
    try:
        message = _native.json_loads(line)
    except ValueError as e:
        raise Invalid(PARSE_ERROR, f"bad control request: {e}") from None
    if not isinstance(message, list):
        return request_of(message)
    if not message:
        raise Invalid(INVALID_REQUEST, "bad control request: an empty batch")
    if len(message) > MAX_BATCH:
        raise Invalid(INVALID_REQUEST, f"bad control request: a batch holds {MAX_BATCH} at most")
    batch: list[Request | Invalid] = []
    for one in message:
        try:
            batch.append(request_of(one))
        except Invalid as e:
            batch.append(e)
    return batch


def request_of(message: object) -> Request:
    """A request, once `message` is one; raises `Invalid`."""
    if not isinstance(message, dict):
        raise Invalid(INVALID_REQUEST, "bad control request: not a JSON object (one a line)")
    id = message.get("id")
    if not (id is None or type(id) in (int, str)):
        raise Invalid(INVALID_REQUEST, "bad control request: an id is a string or an integer")
    if message.get("jsonrpc") != "2.0":
        raise Invalid(INVALID_REQUEST, 'bad control request: "jsonrpc" is not "2.0"', id)
    method, params = message.get("method"), message.get("params", {})
    if type(method) is not str:
        raise Invalid(INVALID_REQUEST, "bad control request: no method", id)
    if not isinstance(params, dict):
        raise Invalid(INVALID_PARAMS, "bad control request: params are an object (by name)", id)
    return Request(method, params, id, "id" not in message)


Method = Callable[[JsonObject], Awaitable[JsonObject]]


class Service:
    """The API of one engine, for any number of connections; `methods` are more, of the
    face that serves it (`nymchat web`'s setup.*)."""

    def __init__(self, engine: Engine, role: str, methods: Mapping[str, Method] | None = None):
        self.engine, self.role, self.methods = engine, role, methods or {}

    def status(self) -> JsonObject:
        """What serves the profile (`serving`: "chat", "daemon"...), for the one-shot
        commands to name it, and how it stands."""
        return {
            "serving": self.role,
            "pid": os.getpid(),
            "username": self.engine.profile.username,
            "node_answers": self.engine.node_answers,
            "outbox": len(self.engine.waiting()),
        }

    def connect(self, push: Push) -> "Connection":
        return Connection(self, push)


def _refused(invalid: Invalid) -> JsonObject:
    return error(invalid.id, invalid.code, str(invalid), {"exit": 2, "code": "usage"})


async def answer_line(
    line: bytes, answer: Callable[[Request], Awaitable[JsonObject | None]]
) -> Answer | None:
    """The answer to one line, each request answered by `answer` (None for a
    notification, or a batch of them); a batch's requests run at once."""
    try:
        request = parse(line)
    except Invalid as e:
        return _refused(e)
    if isinstance(request, Request):
        return await answer(request)
    refused = [_refused(r) for r in request if isinstance(r, Invalid)]
    requests = [r for r in request if isinstance(r, Request)]
    answers = await asyncio.gather(*(answer(r) for r in requests))
    return [*refused, *(a for a in answers if a is not None)] or None


async def answer_of(
    request: Request, call: Callable[[Request], Awaitable[JsonObject]]
) -> JsonObject:
    """The answer to `request`: what `call` returns, or its error in the API's shapes
    (a `NymchatError` with its exit code and kind in `data`). Never raises."""
    try:
        value = await call(request)
    except NymchatError as e:
        code = APPLICATION_ERROR
        if isinstance(e, ops.UnknownMethod):
            code = METHOD_NOT_FOUND
        elif isinstance(e, ops.BadParams):
            code = INVALID_PARAMS
        data = {k: v for k, v in e.to_json().items() if k != "message"}
        return error(request.id, code, str(e), data)
    except (KeyError, TypeError, ValueError) as e:
        data = {"exit": 2, "code": "usage"}
        return error(request.id, INVALID_PARAMS, f"bad control request: {e}", data)
    except Exception as e:  # a bug: the others go on being served
        log.exception("%s failed", request.method)
        data = {"exit": 1, "code": "error"}
        return error(request.id, INTERNAL_ERROR, f"internal error: {e}", data)
    return result(request.id, value)


class Connection:
    """One client: answers its requests; `push` writes a notification to it."""

    def __init__(self, service: Service, push: Push):
        self.service, self.push = service, push
        self._unsubscribe: Callable[[], None] | None = None

    async def answer(self, line: bytes) -> Answer | None:
        """The answer to one line (None for a notification, or a batch of them); a
        batch's requests run at once, each in its own scope. Never raises."""
        return await answer_line(line, self._answer)

    async def _answer(self, request: Request) -> JsonObject | None:
        with self.service.engine.events.scope() as caused:
            answer = await answer_of(request, self._call)
            body = answer["result"] if "result" in answer else answer["error"]["data"]
            engine = self.service.engine
            caused = [shown(e, engine.display) for e in caused]
            body["events"] = [vocabulary.event(e) for e in caused]
            # What the person who typed a one-shot command is told, as the chat says it.
            me = engine.profile.username
            body["notices"] = [text for e in caused if (text := sentence(e, me)) is not None]
        return None if request.notification else answer

    async def _call(self, request: Request) -> JsonObject:
        if (method := self.service.methods.get(request.method)) is not None:
            return await method(request.params)
        if request.method not in SERVICE_METHODS:
            return await ops.call(self.service.engine, request.method, request.params)
        if request.params:
            raise ops.BadParams(f"{request.method} takes no parameters")
        if request.method == "status":
            return self.service.status()
        if request.method == "subscribe" and self._unsubscribe is None:
            self._unsubscribe = self.service.engine.events.subscribe(self._event)
        if request.method == "unsubscribe":
            self.close()
        return {"subscribed": self._unsubscribe is not None}

    def _event(self, event: Event) -> None:
        event = shown(event, self.service.engine.display)
        self.push(notification("event", vocabulary.event(event)))

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class Served(Protocol):
    """What `serve` answers: a `Connection`, or another face's (`nymchat web`'s setup)."""

    push: Push

    async def answer(self, line: bytes) -> Answer | None: ...

    def close(self) -> None: ...


async def serve(connection: Served, readline: Callable[[], Awaitable[bytes]]) -> None:
    """Answers `connection`'s lines until it ends, several at once (a send that waits for
    the node holds no other request); `readline` raises ValueError for a line over its
    bound, which is answered and ends the connection (the rest of the line is unread)."""
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()

    async def one(line: bytes) -> None:
        try:
            answer = await connection.answer(line)
            if answer is not None:
                connection.push(answer)
        finally:
            slots.release()

    try:
        while True:
            await slots.acquire()
            try:
                line = await readline()
            except ValueError as e:
                connection.push(
                    error(
                        None,
                        INVALID_REQUEST,
                        f"bad control request: {e}",
                        {"exit": 2, "code": "usage"},
                    )
                )
                break
            if not line.strip():
                slots.release()
                if not line:
                    break
                continue
            task = asyncio.create_task(one(line))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:  # what was asked before the end is still answered
            await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
        connection.close()
