"""How chat looks: a terminal screen (prompt_toolkit: messages appear above the prompt
while you type, a status line, history, completion) or, when stdin is not a terminal,
lines in and events out (one JSON object a line with --json) for scripts and tests."""

import asyncio
import contextlib
import json
import sys
import threading

from nymchat.chat.core import COMMANDS, ChatSession, Event
from nymchat.terminal import block, line

MARKS = {"sent": "sent", "accepted": "accepted by node", "delivered": "delivered"}


def render(event: Event) -> str:
    """An event as terminal text: what came from the network (names, message text, notices
    and errors quoting it) goes through `nymchat.terminal`."""
    d = event.data
    if event.kind in ("message", "history") and d["from"] != "you":
        mark = "KEY CHANGED" if d.get("key_changed") else \
            ("verified" if d.get("verified") else "unverified")
        return f"[{d['time']}] {line(d['from'])}: {block(d['text'])}" + \
            (f"  ({mark})" if event.kind == "message" else "")
    if event.kind == "history":
        return f"[{d['time']}] you: {block(d['text'])}  [{MARKS.get(d.get('status'), '')}]"
    if event.kind in ("sent", "delivered"):
        return f"[{d['time']}] you -> {line(d['to'])}: {block(d['text'])}  " \
            f"[{MARKS[d['status']]}]"
    if event.kind == "contacts":
        rows = [f"  {line(c['username']):<24} "
                f"{'KEY CHANGED' if c['key_changed'] else 'verified' if c['verified'] else 'not verified'}"  # noqa: E501
                + (f"  {c['unread']} unread" if c["unread"] else "")
                + (f"  [{c['direct']}]" if c.get("direct") else "") for c in d["contacts"]]
        return "\n".join(rows) or "  no contacts yet: /msg NAME"
    if event.kind == "info":  # this program's own lines (help), with contact names in them
        return "\n".join(line(part) for part in d["text"].split("\n"))
    return {"error": "! ", "notice": "* "}[event.kind] + line(d["text"])


class ScriptFace:
    """Lines from stdin, events to stdout."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def emit(self, event: Event) -> None:
        if self.as_json:
            print(json.dumps({"event": event.kind, **event.data}), flush=True)
        else:
            print(render(event), flush=True)

    async def run(self, session: ChatSession) -> None:
        while True:
            line = await _read_line()
            if not line or not await session.handle(line):
                return


async def _read_line() -> str:
    """A line of stdin ("" at its end), read by a daemon thread: a read still waiting must
    not keep the process alive once Ctrl-C has ended it (exit 130, stdin left open)."""
    loop = asyncio.get_running_loop()
    result = loop.create_future()

    def deliver(text: str) -> None:
        if not result.done():
            result.set_result(text)

    def read() -> None:
        text = sys.stdin.readline()
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(deliver, text)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return await result


class TerminalFace:
    def __init__(self, me: str, node: str):
        self.me, self.node = me, node
        self.session: ChatSession | None = None

    def emit(self, event: Event) -> None:
        print(render(event), flush=True)  # above the prompt (patch_stdout)

    def _toolbar(self) -> str:
        s = self.session
        state = "connected" if s.connected else "RECONNECTING to the nym-client"
        if s.connected and not s.engine.node_answers:
            state = "node not answering (typing goes to the outbox)"
        latency = s.engine.link.latency
        if s.connected and s.engine.node_answers and latency is not None:
            state += f", {latency * 1000:.0f} ms to the node"
        unread = ", ".join(f"{name} {n}" for name, n in s.unread.items() if n)
        direct = s.current and s.engine.direct_state(s.current)
        return (f" {self.me} @ {self.node} | {state} | talking to {s.current or '-'}"
                + (f" ({direct})" if direct else "")
                + (f" | unread: {unread}" if unread else "") + " | /help ")

    async def run(self, session: ChatSession) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        self.session = session
        words = list(COMMANDS) + [c["username"] for c in session.engine.store.contacts()]
        prompt = PromptSession(history=InMemoryHistory(), bottom_toolbar=self._toolbar,
                               completer=WordCompleter(words, sentence=True),
                               refresh_interval=1.0)
        self.emit(Event("info", {"text": "nymchat: end-to-end encrypted over the mixnet. "
                                         "/msg NAME to talk, /help for more, Ctrl-D to leave."}))
        with patch_stdout(raw=True):
            while True:
                try:
                    line = await prompt.prompt_async(lambda: f"{session.current or ''}> ")
                except (EOFError, KeyboardInterrupt):
                    return
                if not await session.handle(line):
                    return
