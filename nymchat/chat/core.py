"""What chat does, whatever draws it: parsing what the user types, the current
conversation and unread counts, and turning engine activity into events. Faces (the
terminal screen, the line-by-line script mode) only read input and draw events."""

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from nymchat.client.directmode import DONE
from nymchat.client.engine import Engine, Received
from nymchat.commands.safety import describe
from nymchat.errors import NymchatError
from nymchat.protocol import names

log = logging.getLogger(__name__)

COMMANDS = {
    "/msg": "/msg NAME [text]   switch to (or start) a conversation, and say something",
    "/contacts": "/contacts         your contacts and unread messages",
    "/verify": "/verify NAME [mark]  the safety number to compare; 'mark' when it matched",
    "/trust": "/trust NAME NUMBER  accept NAME's changed key: NUMBER is its safety number "
              "(at least 4 groups), as /verify shows it",
    "/history": "/history [N]      the last N messages of this conversation",
    "/direct": "/direct NAME [accept|decline|off]  invite NAME to talk without the node; "
               "answer an invitation; end it",
    "/help": "/help             this list",
    "/quit": "/quit             leave (Ctrl-D too)",
}


@dataclass(frozen=True)
class Event:
    """Something to show: `kind` is message, sent, delivered, notice, error, contacts or
    info; `data` carries the fields (all JSON-friendly)."""

    kind: str
    data: dict = field(default_factory=dict)


def clock(ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(ms / 1000))


class ChatSession:
    def __init__(self, engine: Engine, emit):
        self.engine, self.emit = engine, emit
        self.current: str | None = None
        self.unread: Counter[str] = Counter()
        self.connected = True
        self._tasks: set[asyncio.Task] = set()
        self._sent: dict[bytes, tuple[str, str]] = {}
        engine.on_status = self._status
        engine.on_notice = lambda text: self.emit(Event("notice", {"text": text}))

    # --- input ----------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Acts on one line the user typed; False when they asked to leave."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            if self.current is None:
                self.emit(Event("error", {"text": "no conversation yet: /msg NAME to start "
                                                  "one"}))
            else:
                self._send(self.current, line)
            return True
        command, _, rest = line.partition(" ")
        args = rest.split()
        try:
            if command == "/quit":
                return False
            if command == "/help":
                self.emit(Event("info", {"text": "\n".join(COMMANDS.values())}))
            elif command == "/msg" and args:
                await self._switch(args[0])
                text = rest.split(None, 1)[1] if len(args) > 1 else ""
                if text:
                    self._send(self.current, text)
            elif command == "/contacts":
                self.emit(Event("contacts", {"contacts": [
                    {"username": c["username"], "verified": c["verified"],
                     "key_changed": c["changed"], "unread": self.unread[c["username"]],
                     "direct": self.engine.direct_state(c["username"])}
                    for c in self.engine.store.contacts()]}))
            elif command == "/verify" and args:
                contact = self.engine.known(args[0])
                if args[1:] == ["mark"]:
                    contact = self.engine.mark_verified(args[0])
                self.emit(Event("info", {"text": describe(
                    contact["username"], self.engine.safety_number(contact),
                    self.engine.new_safety_number(contact), contact["verified"], "/trust")
                    + ("" if contact["verified"] or contact["changed"] else
                       f", then /verify {contact['username']} mark")}))
            elif command == "/trust" and len(args) >= 2:
                contact = self.engine.trust(args[0], " ".join(args[1:]))
                self.emit(Event("notice", {"text": f"now trusting {contact['username']}'s new "
                                                   "key; safety number "
                                                   f"{self.engine.safety_number(contact)}"}))
            elif command == "/history":
                self._history(int(args[0]) if args else 20)
            elif command == "/direct" and args and args[1:] in ([], ["accept"], ["decline"],
                                                                ["off"]):
                await self._direct(args[0], args[1] if args[1:] else "invite")
            else:
                self.emit(Event("error", {"text": f"{command}: unknown or incomplete command "
                                                  "(/help lists them)"}))
        except (NymchatError, names.InvalidName, ValueError) as e:
            self.emit(Event("error", {"text": str(e)}))
        return True

    async def _direct(self, name: str, action: str) -> None:
        action = "end" if action == "off" else action
        username = await self.engine.direct_action(action, name)
        self.emit(Event("notice", {"text": DONE[action].format(username),
                                   "direct": self.engine.direct_state(username),
                                   "with": username}))

    async def _switch(self, name: str) -> None:
        username = names.normalize(name)
        if self.engine.store.contact(username) is None:
            contact = await self.engine.lookup(username)
            self.emit(Event("notice", {"text": f"{username} looked up; safety number "
                                               f"{self.engine.safety_number(contact)}"}))
        self.current = username
        self.unread.pop(username, None)
        self.emit(Event("info", {"text": f"talking to {username}"}))
        self._history(5)

    def _history(self, count: int) -> None:
        if self.current is None:
            return
        for m in self.engine.store.history(self.current, count):
            if m["direction"] in ("in", "out"):
                self.emit(Event("history", {"from": self.current if m["direction"] == "in"
                                            else "you", "time": clock(m["time"]),
                                            "text": m["text"], "status": m.get("status")}))

    def _send(self, to: str, text: str) -> None:
        task = asyncio.create_task(self._deliver(to, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, to: str, text: str) -> None:
        try:
            message_id = self.engine.queue(to, text)
            self._sent[message_id] = (to, text)
            self.emit(Event("sent", {"to": to, "text": text, "time": clock(time.time() * 1000),
                                     "status": "sent", "id": message_id.hex()}))
            await self.engine.deliver(to, message_id, text)
        except NymchatError as e:
            self.emit(Event("error", {"text": f"to {to}: {e}"}))

    def _status(self, message_id: bytes, status: str) -> None:
        to, text = self._sent.get(message_id, ("?", ""))
        self.emit(Event("delivered" if status == "delivered" else "sent",
                        {"to": to, "text": text, "status": status, "id": message_id.hex(),
                         "time": clock(time.time() * 1000)}))

    async def drain(self) -> None:
        """Waits for messages being sent (before leaving)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=60)

    # --- arriving -------------------------------------------------------------------

    async def listen(self, wake: asyncio.Event) -> None:
        async for message in self.engine.follow(wake=wake):
            self._arrived(message)
            self.engine.shown(message)

    def _arrived(self, message: Received) -> None:
        if self.current is None:
            self.current = message.sender
        if message.sender != self.current:
            self.unread[message.sender] += 1
            self.emit(Event("notice", {"text": f"new message from {message.sender} "
                                               f"({self.unread[message.sender]} unread): "
                                               f"/msg {message.sender}"}))
            return
        self.emit(Event("message", {"from": message.sender, "text": message.text,
                                    "time": clock(message.sent), "verified": message.verified,
                                    "key_changed": message.key_changed}))

    def connection(self, event: str) -> None:
        self.connected = event != "disconnected"
        self.emit(Event("notice", {"text": {"disconnected": "lost the nym-client; typing goes "
                                                             "to the outbox, reconnecting...",
                                            "reconnected": "reconnected",
                                            "address-changed": "reconnected (new address)"}
                                   .get(event, event)}))
        if self.connected:
            task = asyncio.create_task(self.engine.flush_outbox())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
