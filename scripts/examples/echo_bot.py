#!/usr/bin/env python3
"""An echo bot on nymchat's JSON-RPC API (docs/API.md), with nothing of nymchat imported:
plain asyncio and JSON over the profile's control socket, served by a running
`nymchat daemon` (or chat). It answers every message it gets with the same text, and
prints one JSON line per thing it did or saw (an echo sent, a receipt for one).

    nymchat --home ~/.local/share/nymchat daemon &
    python3 echo_bot.py ~/.local/share/nymchat/control.sock
"""

import asyncio
import itertools
import json
import sys


class Api:
    """Requests answered by id; everything else the daemon says (event notifications) is
    handed to `on_event`."""

    def __init__(self, reader, writer, on_event):
        self.reader, self.writer, self.on_event = reader, writer, on_event
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future] = {}

    async def call(self, method: str, **params):
        id = next(self.ids)
        self.waiting[id] = answered = asyncio.get_running_loop().create_future()
        request = {"jsonrpc": "2.0", "id": id, "method": method, "params": params}
        self.writer.write(json.dumps(request).encode() + b"\n")
        await self.writer.drain()
        try:
            answer = await answered
        finally:
            del self.waiting[id]
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']['message']}")
        return answer["result"]

    async def read(self) -> None:
        while line := await self.reader.readline():
            message = json.loads(line)
            if message.get("id") in self.waiting:
                self.waiting[message["id"]].set_result(message)
            elif message.get("method") == "event":
                self.on_event(message["params"])


def say(**what) -> None:
    print(json.dumps(what), flush=True)


async def main(path: str) -> None:
    reader, writer = await asyncio.open_unix_connection(path, limit=64 << 20)
    echoes: dict[str, str] = {}  # id of an echo sent: to whom
    pending: set[asyncio.Task] = set()

    async def echo(event: dict) -> None:
        sent = await api.call("send", to=event["sender"], text=event["text"])
        echoes[sent["message_id"]] = event["sender"]
        say(echoed=event["text"], to=sent["to"], id=sent["message_id"], status=sent["status"])

    def on_event(event: dict) -> None:
        if event["type"] == "message_received":
            task = asyncio.create_task(echo(event))
            pending.add(task)
            task.add_done_callback(pending.discard)
        elif event["type"] == "receipt_received" and event["message_id"] in echoes:
            say(receipt=event["message_id"], peer=event["peer"])

    api = Api(reader, writer, on_event)
    reading = asyncio.create_task(api.read())
    status = await api.call("status")
    await api.call("subscribe")
    say(ready=status["username"])
    await reading  # until the daemon ends


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: echo_bot.py PATH/TO/control.sock")
    asyncio.run(main(sys.argv[1]))
