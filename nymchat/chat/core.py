"""What chat does, whatever draws it: parsing what the user types, the current
conversation and unread counts, and turning engine activity into events. Faces (the
terminal screen, the line-by-line script mode) only read input and draw events.

Nothing the user types waits for the network: what needs the node (a lookup, a send,
direct mode) runs as a task of its own, so the prompt stays live while the node is silent,
and a message is stored (queued) before anything leaves."""

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from nymchat.client import access, ops, vocabulary
from nymchat.client import events as ev
from nymchat.client.contactids import checked
from nymchat.client.engine import Engine
from nymchat.client.events import MessageReceived
from nymchat.client.groups import group_name
from nymchat.client.nodelink import NodeSilent
from nymchat.client.records import Direction, Message
from nymchat.commands.safety import describe
from nymchat.errors import NymchatError
from nymchat.protocol import names
from nymchat.sentences import DIRECT_DONE, direct_words, sentence, shown, speaker

log = logging.getLogger(__name__)

COMMANDS = {  # command: (usage, what it does)
    "/msg": (
        "/msg NAME|#GROUP [text]",
        "switch to (or start) a conversation, with a contact or a group, and say something",
    ),
    "/contacts": ("/contacts", "your contacts, your groups and unread messages"),
    "/group": (
        "/group create|add|remove|leave #GROUP [NAME...]",
        "create a group with members, add or remove members, leave it",
    ),
    "/members": ("/members [#GROUP]", "a group's members and how far each is trusted"),
    "/verify": ("/verify NAME [mark]", "the safety number to compare; 'mark' when it matched"),
    "/trust": (
        "/trust NAME NUMBER",
        "accept NAME's changed key: NUMBER is its safety number "
        "(at least 4 groups), as /verify shows it",
    ),
    "/history": ("/history [N]", "the last N messages of this conversation (default 20)"),
    "/direct": (
        "/direct NAME [accept|decline|off]",
        "invite NAME to talk without the node; answer an invitation; end it",
    ),
    "/strangers": (
        "/strangers [allow|pow [BITS]|deny]",
        "what messages from people who are not your contacts need",
    ),
    "/help": ("/help", "this list"),
    "/quit": ("/quit", "leave (Ctrl-D too; Ctrl-C clears the line)"),
}
HELP = "\n".join(
    f"{usage:<{max(len(u) for u, _ in COMMANDS.values())}}  {what}"
    for usage, what in COMMANDS.values()
)
GROUP_ACTIONS = {"create": "created", "add": "added to", "remove": "removed from"}
HISTORY_DEFAULT, HISTORY_MAX = 20, 1000
SHOWN_ON_SWITCH = 5  # messages shown on switching to a conversation, or every unread one
BEFORE_UNREAD = 3  # and so many before the first unread one
STATUS_WIDTH = 60


@dataclass(frozen=True)
class Event:
    """Something to show: `kind` is message, history, sent, delivered, notice, error,
    contacts, members (a group's, as `group.show` gives it) or info; `data` carries the
    fields (all JSON-friendly). An outgoing message (sent, delivered, history from "you")
    carries its `id` and `status` (queued, accepted, delivered, failed, with `reason`)
    and comes again each time its status moves on.
    Messages carry the API's fields too (`nymchat.client.vocabulary`: an arriving one is
    its message_received event, a stored one has `message_id` and `time_ms`); `time` is
    the clock shown ("12:00"), not ISO 8601 as in the API."""

    kind: str
    data: dict = field(default_factory=dict)


def clock(ms: int, now_ms: int) -> str:
    """A message's time: the hour today, the date and hour any other day."""
    when, now = time.localtime(ms / 1000), time.localtime(now_ms / 1000)
    same_day = (when.tm_year, when.tm_yday) == (now.tm_year, now.tm_yday)
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", when)


def status_line(
    me: str,
    current: str | None,
    state: str,
    queued: int,
    unread: dict[str, int],
    direct: str | None,
    width: int = STATUS_WIDTH,
) -> str:
    """The line under the prompt, most important first, cut to `width` columns."""
    parts = [f"{me} > {current or '-'}" + (f" ({direct})" if direct else ""), state]
    if queued:
        parts.append(f"{queued} queued")
    waiting = " ".join(f"{name} {n}" for name, n in unread.items() if n)
    if waiting:
        parts.append(f"unread: {waiting}")
    text = " " + " | ".join(parts) + " "
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_count(args: list[str]) -> int:
    """The N of `/history [N]`."""
    if not args:
        return HISTORY_DEFAULT
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= HISTORY_MAX:
        raise NymchatError(f"/history N: N is how many messages to show, 1 to {HISTORY_MAX}")
    return int(args[0])


class ChatSession:
    def __init__(self, engine: Engine, emit, now=time.time):
        self.engine, self.emit, self.now = engine, emit, now
        self.current: str | None = None
        self.unread: Counter[str] = Counter()
        self.connected = True  # to the nym-client
        self.node_silent = False  # a request of ours went unanswered, none answered since
        self._engine_saw_silence = False
        self._tasks: set[asyncio.Task] = set()
        engine.events.subscribe(self._event)

    def _event(self, event: ev.Event) -> None:
        """What the engine tells: a status mark moves, the nym-client comes and goes,
        anything else worth a sentence is a notice."""
        if isinstance(event, ev.StatusChanged):
            if event.status is not ev.Status.QUEUED:  # (what is typed here shows at once)
                self._status(event)
        elif isinstance(event, ev.NymClientLost):
            self.connection("disconnected")
        elif isinstance(event, ev.AddressChanged):
            self.connection("address-changed")
        elif isinstance(event, ev.NymClientBack):
            if not self.connected:
                self.connection("reconnected")
        elif (
            text := sentence(
                event := shown(event, self.engine.display), self.engine.profile.username
            )
        ) is not None:  # with the API's event (`type`...)
            self.emit(Event("notice", {"text": text, **vocabulary.event(event)}))

    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    # --- input ----------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Acts on one line the user typed; False when they asked to leave. Never waits
        for the network."""
        line = line.strip()
        try:
            if line.startswith("/"):
                return self._command(line)
            if line:
                if self.current is None:
                    raise NymchatError("no conversation yet: /msg NAME to start one")
                self._send(self.current, line)
        except (NymchatError, names.InvalidName) as e:
            self.emit(Event("error", {"text": str(e)}))
        return True

    def _command(self, line: str) -> bool:
        command, _, rest = line.partition(" ")
        command, args = command.lower(), rest.split()
        if command == "/quit":
            return False
        if command == "/help":
            self.emit(Event("info", {"text": HELP}))
        elif command == "/msg" and args:
            self._msg(args[0], rest.split(None, 1)[1] if len(args) > 1 else "")
        elif command == "/contacts":
            self.emit(
                Event(
                    "contacts",
                    {
                        "contacts": [
                            {
                                **ops.described(self.engine, c.username),
                                "verified": c.verified,
                                "key_changed": c.changed,
                                "unread": self.unread[c.username],
                                "direct": direct_words(self.engine.direct_status(c.username)),
                            }
                            for c in self.engine.contact_list()
                        ],
                        "groups": [
                            {
                                "name": f"#{g.name}",
                                "members": len(g.members),
                                "unread": self.unread[f"#{g.name}"],
                            }
                            for g in self.engine.groups()
                        ],
                    },
                )
            )
        elif command == "/group" and args and args[0] in (*GROUP_ACTIONS, "leave"):
            self._group(args[0], args[1:])
        elif command == "/members" and len(args) <= 1:
            self._members(args[0] if args else self.current)
        elif command == "/verify" and args:
            contact = self.engine.known(args[0])
            if args[1:] == ["mark"]:
                contact = self.engine.mark_verified(args[0])
            self.emit(
                Event(
                    "info",
                    {
                        "text": describe(
                            self.engine.display(contact.username),
                            self.engine.safety_number(contact),
                            self.engine.new_safety_number(contact),
                            contact.verified,
                            "/trust",
                        )
                        + (
                            ""
                            if contact.verified or contact.changed
                            else f", then /verify {self.engine.display(contact.username)} mark"
                        )
                    },
                )
            )
        elif command == "/trust" and len(args) >= 2:
            contact = self.engine.trust(args[0], " ".join(args[1:]))
            self.emit(
                Event(
                    "notice",
                    {
                        "text": f"now trusting {self.engine.display(contact.username)}'s new "
                        "key; safety number "
                        f"{self.engine.safety_number(contact)}"
                    },
                )
            )
        elif command == "/history":
            self._history(parse_count(args))
        elif command == "/direct" and args and args[1:] in ([], ["accept"], ["decline"], ["off"]):
            self._spawn(
                self._direct(args[0], args[1] if args[1:] else "invite"), f"/direct {args[0]}"
            )
        elif command == "/strangers" and len(args) <= 2:
            if args[1:] and not args[1].isdigit():
                raise NymchatError("/strangers pow BITS: BITS is a number of bits, 1 to 24")
            strangers = self.engine.strangers()
            if args:
                strangers = access.policy(args[0], int(args[1]) if args[1:] else None)
                self._spawn(self.engine.set_strangers(strangers), "/strangers")
            self.emit(Event("info", {"text": f"strangers: {access.words(strangers)}"}))
        else:
            raise NymchatError(f"{command}: unknown or incomplete command (/help lists them)")
        return True

    def _group(self, action: str, args: list[str]) -> None:
        """`/group ACTION #GROUP [NAME...]`: checked here, done off the input path."""
        if not args or (action in ("add", "remove") and len(args) < 2):
            raise NymchatError(f"{COMMANDS['/group'][0]}: which group, and who?")
        if action == "leave" and len(args) > 1:
            raise NymchatError("/group leave #GROUP: leave one group at a time")
        name, members = group_name(args[0]), [checked(m) for m in args[1:]]
        self._spawn(self._group_change(action, name, members), f"/group {action} #{name}")

    async def _group_change(self, action: str, name: str, members: list[str]) -> None:
        if action == "leave":
            await self.engine.group_leave(name)
            self._node_answered()
            self.unread.pop(f"#{name}", None)
            if self.current == f"#{name}":
                self.current = None
            self.emit(Event("notice", {"text": f"left #{name}", "group": name}))
            return
        group = await getattr(self.engine, f"group_{action}")(name, members)
        self._node_answered()
        who = f"{', '.join(members)} " if members and action != "create" else ""
        self.emit(Event("notice", {"text": f"{who}{GROUP_ACTIONS[action]} #{group.name}"}))
        self._members(f"#{group.name}")
        if action == "create":
            self._switch(f"#{group.name}")

    def _members(self, name: str | None) -> None:
        if name is None or not name.startswith("#"):
            raise NymchatError("/members #GROUP: which group (or /msg #GROUP first)")
        self.emit(Event("members", ops.group(self.engine.group(group_name(name)))))

    def _spawn(self, work, about: str = "") -> None:
        task = asyncio.create_task(self._guarded(work, about))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work, about: str) -> None:
        """Runs network work off the input path; what goes wrong is shown, and a silent
        node is noted (for the status line) and retried by the engine."""
        try:
            await work
        except (NymchatError, names.InvalidName) as e:
            if isinstance(e, NodeSilent):
                self._node_went_silent()
            self.emit(Event("error", {"text": f"{about}: {e}" if about else str(e)}))

    async def _direct(self, name: str, action: str) -> None:
        action = "end" if action == "off" else action
        username = await self.engine.direct_action(action, name)
        self._node_answered()
        who = self.engine.display(username)
        self.emit(
            Event(
                "notice",
                {
                    "text": DIRECT_DONE[action].format(who),
                    "direct": direct_words(self.engine.direct_status(username)),
                    "with": who,
                },
            )
        )

    def _msg(self, name: str, text: str) -> None:
        if name.startswith("#"):
            group = self.engine.group(group_name(name))  # NotFound: said as an error
            self._switch(f"#{group.name}")
            if text:
                self._send(f"#{group.name}", text)
            return
        typed = checked(name)
        if typed == self.engine.profile.username:
            raise NymchatError(f"{typed} is you: /msg someone else")
        contact = self.engine.contact(typed)
        if contact is not None:
            self._switch(contact.username)
            if text:
                self._send(contact.username, text)
            return
        self.emit(Event("info", {"text": f"looking {typed} up..."}))
        self._spawn(self._look_up_and_switch(typed, text), f"looking {typed} up")

    async def _look_up_and_switch(self, typed: str, text: str) -> None:
        contact = await self.engine.lookup(typed)
        self._node_answered()
        self.emit(
            Event(
                "notice",
                {
                    "text": f"{self.engine.display(contact.username)} looked up; safety "
                    f"number {self.engine.safety_number(contact)}"
                },
            )
        )
        self._switch(contact.username)
        if text:
            self._send(contact.username, text)

    def _switch(self, username: str) -> None:
        """`username`: a contact's id, or a group's `#name`."""
        self.current = username
        unread = self.unread.pop(username, 0)
        who = self.engine.display(username)
        where = f"in {who}" if username.startswith("#") else f"to {who}"
        self.emit(Event("info", {"text": f"talking {where}"}))
        self._history(max(SHOWN_ON_SWITCH, unread + BEFORE_UNREAD))

    def _history(self, count: int) -> None:
        if self.current is None:
            self.emit(Event("error", {"text": "no conversation yet: /msg NAME to start one"}))
            return
        said = self.engine.history(self.current, count)
        group = {"group": self.current[1:]} if self.current.startswith("#") else {}
        if not said:
            who = self.engine.display(self.current)
            self.emit(Event("info", {"text": f"no messages with {who} yet"}))
        for m in said:
            if m.direction is Direction.IN:
                self.emit(
                    Event(
                        "history",
                        {
                            "from": m.author or self.engine.display(self.current),
                            **group,
                            "text": m.text,
                            "message_id": m.id.hex(),
                            "time_ms": m.time,
                            "time": clock(m.time, self._now_ms()),
                        },
                    )
                )
            else:
                self.emit(Event("history", {"from": "you", **self._outgoing(m)}))

    def _outgoing(self, message: Message) -> dict:
        failed = message.status is ev.Status.FAILED
        return {
            "to": self.engine.display(message.peer),
            "text": message.text,
            "id": message.id.hex(),
            "message_id": message.id.hex(),
            "time_ms": message.time,
            "time": clock(message.time, self._now_ms()),
            "status": message.status.value,
            **({"reason": message.reason or ""} if failed else {}),
        }

    def _send(self, to: str, text: str) -> None:
        """Stores the message (shown as queued), then hands it to the node off the input
        path; while the node is silent it waits in the outbox for the engine's retry."""
        message_id = self.engine.queue(to, text)
        message = self.engine.message(message_id)
        assert message is not None  # just stored
        self.emit(Event("sent", self._outgoing(message)))
        if self.node_silent or not self.connected:
            self._retry_soon()
            return
        self._spawn(self._deliver(to, message_id, text))

    async def _deliver(self, to: str, message_id: bytes, text: str) -> None:
        try:
            await self.engine.deliver(to, message_id, text)
        except NodeSilent:
            self._node_went_silent()
            self.emit(
                Event(
                    "notice",
                    {
                        "text": "the node does not answer: messages wait in "
                        "the outbox (queued) and leave when it does"
                    },
                )
            )
        except NymchatError as e:
            message = self.engine.message(message_id)
            if message is None or message.status is not ev.Status.FAILED:  # (shown already)
                self.emit(Event("error", {"text": f"to {self.engine.display(to)}: {e}"}))

    def _status(self, changed: ev.StatusChanged) -> None:
        """The engine moved a message on (ours, or one sent through the control socket
        from another terminal: the record says to whom); the line carries the API's
        status_changed event too (a receipt is its `delivered`)."""
        message = self.engine.message(changed.message_id)
        if message is None or message.direction is not Direction.OUT:
            return
        if changed.status in (ev.Status.ACCEPTED, ev.Status.DELIVERED):
            self._node_answered()
        kind = "delivered" if changed.status is ev.Status.DELIVERED else "sent"
        changed = shown(changed, self.engine.display)
        self.emit(Event(kind, {**vocabulary.event(changed), **self._outgoing(message)}))

    async def drain(self, timeout: float = 30) -> None:
        """Before leaving: waits for messages being handed to the node, unless it is
        silent; what did not leave stays in the outbox for the next command."""
        if self._tasks and not self.node_silent:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        waiting = len(self.engine.waiting())
        if waiting:
            self.emit(
                Event(
                    "notice",
                    {
                        "text": f"{waiting} message(s) wait in the outbox: "
                        "they leave with the next nymchat command that "
                        "reaches the node"
                    },
                )
            )

    # --- the node and the nym-client --------------------------------------------------

    def _node_went_silent(self) -> None:
        self.node_silent, self._engine_saw_silence = True, False
        self._retry_soon()

    def _node_answered(self) -> None:
        self.node_silent = False

    def _retry_soon(self) -> None:
        self.engine.retry_node()

    def state(self) -> str:
        """What is true of the connection, in a few words."""
        if not self.connected:
            return "nym-client lost, reconnecting"
        if not self.engine.node_answers:
            self._engine_saw_silence = True
        elif self._engine_saw_silence:  # the engine's retry got through since
            self.node_silent = self._engine_saw_silence = False
        if self.node_silent or not self.engine.node_answers:
            return "node unreachable, retrying"
        latency = self.engine.latency
        return "connected" + (f" {latency * 1000:.0f} ms" if latency is not None else "")

    def status(self, width: int = STATUS_WIDTH) -> str:
        direct = self.current and direct_words(self.engine.direct_status(self.current))
        return status_line(
            self.engine.profile.username or "-",
            self.talking_to(),
            self.state(),
            len(self.engine.waiting()),
            self.unread,
            direct,
            width,
        )

    def talking_to(self) -> str | None:
        """The conversation as shown: a contact as the person types it, or `#group`."""
        return self.current and self.engine.display(self.current)

    def contact_names(self) -> list[str]:
        """What completes at the prompt: contacts, and groups as `#name`."""
        return [self.engine.display(c.username) for c in self.engine.contact_list()] + [
            f"#{g.name}" for g in self.engine.groups()
        ]

    # --- arriving -------------------------------------------------------------------

    async def listen(self) -> None:
        async for message in self.engine.follow():
            self._node_answered()
            self._arrived(message)
            self.engine.shown(message)

    def _arrived(self, message: MessageReceived) -> None:
        """A message shows in its conversation (a contact's, or a group's `#name`), else
        counts as unread there."""
        where = message.sender if message.group is None else f"#{message.group}"
        if self.current is None:
            self.current = where
        message = shown(message, self.engine.display)
        if where != self.current:
            self.unread[where] += 1
            self.emit(
                Event(
                    "notice",
                    {
                        "text": f"new message from {speaker(message)} "
                        f"({self.unread[where]} unread): /msg {self.engine.display(where)}"
                    },
                )
            )
            return
        self.emit(
            Event(
                "message",
                {
                    **vocabulary.event(message),
                    "from": message.sender,
                    "time": clock(message.sent, self._now_ms()),
                },
            )
        )

    def connection(self, event: str) -> None:
        self.connected = event != "disconnected"
        self.emit(
            Event(
                "notice",
                {
                    "text": {
                        "disconnected": "lost the nym-client; typing goes "
                        "to the outbox, reconnecting...",
                        "reconnected": "reconnected",
                        "address-changed": "reconnected (new address)",
                    }.get(event, event)
                },
            )
        )
        if self.connected:
            self._spawn(self.engine.flush_outbox())
