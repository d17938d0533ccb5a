"""The profile's control socket: a process that holds the profile's nym-client
connection (`inbox --follow`, `chat`) serves one-shot commands from other terminals over
a Unix socket in the home directory (mode 0600), since a nym-client takes one websocket.

One JSON object per line each way: `{"op": "send", "to": NAME, "text": TEXT}` or
`{"op": "lookup", "name": NAME}` or `{"op": "direct", "action": "invite" | "accept" |
"decline" | "end", "name": NAME}` or `{"op": "status"}` (what serves: `"serving"`, e.g.
"chat", and `"pid"`, so that other commands can name it) or `{"op": "names"}` (the
contacts' names, for shell completion); answers `{"ok": true, ...}` or `{"ok": false,
"error": TEXT, "exit": CODE}`; both with `"notices"`, what the user was told meanwhile.
Lines are read within the bounds of the native JSON reader (nesting, number sizes); a line
beyond them gets an error answer like any other bad request.
"""

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from nymchat import _native
from nymchat.errors import NymchatError

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
MAX_REQUEST = 1 << 20


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


async def serve(engine, home: Path, role: str = "chat") -> asyncio.AbstractServer:
    """Serves the profile in `home`; `role` names this process to others ("chat")."""
    path = socket_path(home)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a process that died; `call` found nobody behind it

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await _answer(engine, role, line)
        except (ValueError, asyncio.LimitOverrunError) as e:
            answer = {"ok": False, "error": f"bad control request: {e}", "exit": 2}
        writer.write(json.dumps(answer).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    old_umask = os.umask(0o177)  # the socket is born 0600
    try:
        server = await asyncio.start_unix_server(handle, path, limit=MAX_REQUEST)
    finally:
        os.umask(old_umask)
    return server


async def _answer(engine, role: str, line: bytes) -> dict:
    """The answer to one request, with what the user was told meanwhile (`notices`: the
    person who typed the command sees them too, not only the serving terminal)."""
    told: list[str] = []
    serving = engine.on_notice

    def notice(text: str) -> None:
        told.append(text)
        if serving is not None:
            serving(text)
        else:
            engine.notices.append(text)

    engine.on_notice = notice
    try:
        return {**await _handle(engine, role, _native.json_loads(line)), "notices": told}
    finally:
        engine.on_notice = serving


async def _handle(engine, role: str, request) -> dict:
    if not isinstance(request, dict):
        return {"ok": False, "error": "bad control request: not a JSON object", "exit": 2}
    if request.get("op") == "status":
        return {"ok": True, "serving": role, "pid": os.getpid()}
    try:
        if request.get("op") == "send":
            message_id = await engine.send(str(request["to"]), str(request["text"]))
            return {"ok": True, "sent": message_id.hex(),
                    "status": engine.store.message(message_id)["status"]}
        if request.get("op") == "direct":
            username = await engine.direct_action(str(request["action"]), str(request["name"]))
            return {"ok": True, "username": username, "direct": engine.direct_state(username)}
        if request.get("op") == "names":
            return {"ok": True, "names": [c["username"] for c in engine.store.contacts()]}
        if request.get("op") == "lookup":
            contact = await engine.lookup(str(request["name"]))
            return {"ok": True, "contact": contact,
                    "safety_number": engine.safety_number(contact),
                    "new_safety_number": engine.new_safety_number(contact)}
        return {"ok": False, "error": f"unknown operation {request.get('op')!r}", "exit": 2}
    except NymchatError as e:
        return {"ok": False, "error": str(e), "exit": e.exit_code}
    except (KeyError, TypeError) as e:
        return {"ok": False, "error": f"bad control request: {e}", "exit": 2}


async def call(home: Path, request: dict, timeout: float = 120) -> dict | None:
    """Asks the process serving this profile; None when no process serves it."""
    path = socket_path(home)
    if not path.exists():
        return None
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_REQUEST)
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # a socket left behind by a process that is gone
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), timeout)
    writer.close()
    return _native.json_loads(line) if line else None
