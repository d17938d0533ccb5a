"""The profile's control socket: a process that holds the profile's nym-client
connection (`inbox --follow`, `chat`) serves one-shot commands from other terminals over
a Unix socket in the home directory (mode 0600), since a nym-client takes one websocket.

One JSON object per line each way: a request of `nymchat.client.ops` (`{"op": "send",
"to": NAME, "text": TEXT}`, `{"op": "contacts"}`, `{"op": "drop", "id": PREFIX}`,
`{"op": "names"}` for shell completion...), or `{"op": "status"}` (what serves:
`"serving"`, e.g. "chat", and `"pid"`, so that other commands can name it); answers
`{"ok": true, ...}` or `{"ok": false, "error": TEXT, "exit": CODE, "code": ...}` (the
error's `to_json`, so that the command raises the same kind of error); both with
`"notices"`, what the user was told meanwhile. Lines are read within the bounds of the
native JSON reader (nesting, number sizes); a line beyond them gets an error answer like
any other bad request.

Whoever can open the socket (any process of this user: it is 0600 in a 0700 home) acts
for the profile without its passphrase, as with ssh-agent. `unregister` is refused: it
would end what the serving process does.
"""

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from nymchat import _native
from nymchat.client import ops
from nymchat.errors import Busy, NymchatError

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
MAX_REQUEST = 1 << 20
MAX_ANSWER = 64 << 20  # a conversation of many long messages (`contacts show -n N`)


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
    person who typed the command sees them too, not only the serving terminal): the
    events this request caused, and no other request's."""
    from nymchat.sentences import sentence

    with engine.events.scope() as caused:
        answer = await _handle(engine, role, _native.json_loads(line))
    return {**answer, "notices": [s for event in caused if (s := sentence(event))]}


async def _handle(engine, role: str, request) -> dict:
    if not isinstance(request, dict):
        return {"ok": False, "error": "bad control request: not a JSON object", "exit": 2}
    if request.get("op") == "status":
        return {"ok": True, "serving": role, "pid": os.getpid()}
    if request.get("op") == "unregister":
        return {
            "ok": False,
            "exit": Busy.exit_code,
            "code": Busy.kind,
            "error": "a chat or `inbox --follow` serves this "
            "profile: quit it first, then unregister",
        }
    try:
        return {"ok": True, **await ops.answer(engine, request)}
    except NymchatError as e:
        return {"ok": False, "error": str(e), **e.to_json()}  # its kind, for `delegate`
    except (KeyError, TypeError, ValueError) as e:
        return {"ok": False, "error": f"bad control request: {e}", "exit": 2}


async def call(home: Path, request: dict, timeout: float = 120) -> dict | None:
    """Asks the process serving this profile; None when no process serves it."""
    path = socket_path(home)
    if not path.exists():
        return None
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_ANSWER)
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # a socket left behind by a process that is gone
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (ValueError, asyncio.LimitOverrunError):
        raise NymchatError(
            f"the answer of the process serving this profile is over "
            f"{MAX_ANSWER >> 20} MiB: ask for less"
        ) from None
    finally:
        writer.close()
    return _native.json_loads(line) if line else None
