"""The profile's control socket: a process that holds the profile's nym-client
connection (`chat`, `inbox --follow`, `daemon`) serves the JSON-RPC API (docs/API.md,
`nymchat.client.rpc`) over a Unix socket in the home directory (mode 0600), since a
nym-client takes one websocket. The one-shot commands in other terminals go through it.

One JSON object per line each way, several requests per connection (answered as each
is done: match them by `id`), connections served at once. Lines are read within the
bounds of the native JSON reader (nesting, number sizes) and of `MAX_REQUEST`; a line
beyond them gets an error answer like any other bad request. A client that does not read
what it subscribed to is cut off once `MAX_BACKLOG` waits for it.

Whoever can open the socket (any process of this user: it is 0600 in a 0700 home) acts
for the profile without its passphrase, as with ssh-agent. There is no method to
unregister: it would end what the serving process does.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from nymchat import _native
from nymchat.client import rpc
from nymchat.client.engine import Engine
from nymchat.client.vocabulary import JsonObject
from nymchat.errors import NymchatError

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
MAX_REQUEST = 1 << 20
MAX_ANSWER = 64 << 20  # a conversation of many long messages (`history`)
MAX_BACKLOG = 64 << 20  # bytes written to a client and not read yet
_ids = itertools.count(1)


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


def line_of(message: JsonObject | list[JsonObject]) -> bytes:
    return json.dumps(message).encode() + b"\n"


async def serve(service: rpc.Service, home: Path) -> asyncio.AbstractServer:
    """Serves `service` on the socket of the profile in `home`."""
    path = socket_path(home)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a process that died; `call` found nobody behind it

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def push(message: rpc.Answer) -> None:
            if writer.is_closing():
                return
            writer.write(line_of(message))
            if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
                log.info("a control client does not read what it asked for: cut off")
                writer.transport.abort()

        try:
            await rpc.serve(service.connect(push), reader.readline)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # The process is ending with this client connected: the handler ends as a
            # finished task, not a cancelled one, whose end asyncio's stream callback
            # (Python 3.11) reports as an "Exception in callback" traceback.
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o177)  # the socket is born 0600
    try:
        server = await asyncio.start_unix_server(handle, path, limit=MAX_REQUEST)
    finally:
        os.umask(old_umask)
    return server


@contextlib.asynccontextmanager
async def serving(
    engine: Engine, role: str, methods: Mapping[str, rpc.Method] | None = None
) -> AsyncIterator[rpc.Service]:
    """The API of `engine` (and `methods`) on its profile's socket for as long as the
    block runs; `role` names this process to the one-shot commands ("chat", "daemon")."""
    service = rpc.Service(engine, role, methods)
    server = await serve(service, engine.profile.home)
    try:
        yield service
    finally:
        server.close()
        socket_path(engine.profile.home).unlink(missing_ok=True)


async def call(
    home: Path, method: str, params: JsonObject | None = None, timeout: float = 120
) -> JsonObject | None:
    """The JSON-RPC answer of the process serving this profile to one request (a dict with
    `result` or `error`); None when no process serves it."""
    path = socket_path(home)
    if not path.exists():
        return None
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_ANSWER)
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # a socket left behind by a process that is gone
    id = next(_ids)
    request = {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}
    try:
        writer.write(line_of(request))
        await writer.drain()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    raise NymchatError(
                        f"the answer of the process serving this profile is over "
                        f"{MAX_ANSWER >> 20} MiB: ask for less"
                    ) from None
                if not line:
                    return None
                answer = _native.json_loads(line)
                if isinstance(answer, dict) and answer.get("id") == id:
                    return answer
    finally:
        writer.close()
