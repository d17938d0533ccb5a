"""How chat looks: a terminal screen (prompt_toolkit: messages appear above the prompt
while you type, a status line, history, completion) or, when stdin is not a terminal,
lines in and events out (one JSON object a line with --json) for scripts and tests."""

import asyncio
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nymchat.chat.core import COMMANDS, ChatSession, Event
from nymchat.commands.group import TRUST
from nymchat.terminal import block, line

MARKS = {"queued": "queued", "accepted": "accepted by node", "delivered": "delivered"}
APP_ROWS = 8  # under the messages at most, when the terminal does not say where the cursor is


def mark(d: dict) -> str:
    """An outgoing message's status as shown; a failure quotes the node."""
    if d["status"] == "failed":
        return f"[FAILED: {line(d.get('reason') or 'refused by the node')}]"
    return f"[{MARKS.get(d['status'], line(d['status']))}]"


def outgoing(d: dict) -> str:
    """An outgoing message without its mark."""
    return f"[{d['time']}] you -> {line(d['to'])}: {block(d['text'])}"


def render(event: Event) -> str:
    """An event as terminal text: what came from the network (names, message text, notices
    and errors quoting it) goes through `nymchat.terminal`."""
    d = event.data
    if event.kind in ("message", "history") and d["from"] != "you":
        shown = (
            "KEY CHANGED"
            if d.get("key_changed")
            else ("verified" if d.get("verified") else "unverified")
        )
        where = f"#{line(d['group'])} " if d.get("group") else ""
        return f"[{d['time']}] {where}{line(d['from'])}: {block(d['text'])}" + (
            f"  ({shown})" if event.kind == "message" else ""
        )
    if event.kind in ("history", "sent", "delivered"):
        return f"{outgoing(d)}  {mark(d)}"
    if event.kind == "contacts":
        rows = [
            f"  {line(c['username']):<24} "
            f"{'KEY CHANGED' if c['key_changed'] else 'verified' if c['verified'] else 'not verified'}"  # noqa: E501
            + (f"  {c['unread']} unread" if c["unread"] else "")
            + (f"  [{c['direct']}]" if c.get("direct") else "")
            for c in d["contacts"]
        ]
        rows += [
            f"  {line(g['name']):<24} {g['members']} members"
            + (f"  {g['unread']} unread" if g["unread"] else "")
            for g in d.get("groups", [])
        ]
        return "\n".join(rows) or "  no contacts yet: /msg NAME"
    if event.kind == "members":
        return f"#{line(d['name'])}, epoch {d['epoch']}:\n" + "\n".join(
            f"  {line(m['name'] or '(no name)'):<24} {TRUST[m['trust']]}" for m in d["members"]
        )
    if event.kind == "info":  # this program's own lines (help), with contact names in them
        return "\n".join(line(part) for part in d["text"].split("\n"))
    return {"error": "! ", "notice": "* "}[event.kind] + line(d["text"])


class ScriptFace:
    """Lines from stdin, events to stdout (each status of a sent message as it comes)."""

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
            if not line or not session.handle(line):
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


def width(text: str) -> int:
    """Terminal columns `text` takes (wide characters take two)."""
    from prompt_toolkit.utils import get_cwidth

    return get_cwidth(text)


def rows(text: str, columns: int) -> int:
    """How many terminal rows `text` takes, lines wrapping at `columns`."""
    return sum(max(1, -(-width(part) // columns)) for part in text.split("\n"))


@dataclass
class Shown:
    """Where an outgoing message's mark is on the screen: its row (counted from the first
    row this face printed), column, width, and the terminal width then."""

    row: int
    column: int
    width: int
    columns: int


class Screen:
    """What the terminal face printed above the prompt, so that an outgoing message's
    mark is rewritten where it stands (cursor up, write, cursor back down) instead of the
    message being printed again; a message scrolled out of sight is printed anew."""

    def __init__(self, room: Callable[[], tuple[int, int]]):
        self.room = room  # () -> (rows visible above the prompt, columns)
        self.printed = 0  # rows, all told
        self.marks: dict[str, Shown] = {}

    def show(self, event: Event) -> str:
        """What to write for `event` (text ending with a newline, or a cursor dance)."""
        above, columns = self.room()
        d = event.data
        if event.kind in ("sent", "delivered") and d["id"] in self.marks:
            at, new = self.marks[d["id"]], mark(d)
            up = self.printed - at.row
            if (
                at.columns == columns
                and up <= above
                and at.column + max(at.width, width(new)) <= columns
            ):
                at.width = width(new)
                return f"\x1b[{up}A\x1b[{at.column + 1}G{new}\x1b[K\x1b[{up}B\r"
        text = render(event)
        if event.kind in ("sent", "delivered") or (event.kind == "history" and d["from"] == "you"):
            *lines, last = (outgoing(d) + "  ").split("\n")
            at = (
                self.printed
                + (rows("\n".join(lines), columns) if lines else 0)
                + width(last) // columns
            )
            self.marks[d["id"]] = Shown(at, width(last) % columns, width(mark(d)), columns)
        self.printed += rows(text, columns)
        return text + "\n"


@contextlib.contextmanager
def logs_off_screen(path: Path) -> Iterator[bool]:
    """Log lines would tear through the prompt: under the terminal face they go to a file
    (0600) when asked for (-v), else nowhere; nymchat's own notices say what matters."""
    logger, root = logging.getLogger("nymchat"), logging.getLogger()
    saved = logger.handlers[:], root.handlers[:]
    handler: logging.Handler = logging.NullHandler()
    if logger.getEffectiveLevel() < logging.WARNING:
        path.touch(mode=0o600)
        path.chmod(0o600)
        handler = logging.FileHandler(path)
        handler.setFormatter(saved[0][0].formatter if saved[0] else None)
    logger.handlers[:] = root.handlers[:] = [handler]
    try:
        yield isinstance(handler, logging.FileHandler)
    finally:
        handler.close()
        logger.handlers[:], root.handlers[:] = saved


class TerminalFace:
    def __init__(self, me: str, node: str):
        self.me, self.node = me, node
        self.screen: Screen | None = None

    def emit(self, event: Event) -> None:
        if self.screen is None:
            print(render(event), flush=True)
            return
        sys.stdout.write(self.screen.show(event))  # above the prompt (patch_stdout)
        sys.stdout.flush()

    async def run(self, session: ChatSession) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout
        from prompt_toolkit.renderer import HeightIsUnknownError

        # Names anywhere on the line, read from the store at each Tab (new contacts too);
        # what was typed is recalled with the arrow keys, and kept in memory only.
        completer = WordCompleter(
            lambda: [*COMMANDS, *session.contact_names()], WORD=True, ignore_case=True
        )
        prompt: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            completer=completer,
            complete_while_typing=False,
            reserve_space_for_menu=4,
            bottom_toolbar=session.status,
            erase_when_done=True,
            refresh_interval=1.0,
        )

        def room() -> tuple[int, int]:
            size = prompt.app.output.get_size()
            try:
                above = prompt.app.renderer.rows_above_layout
            except HeightIsUnknownError:
                above = size.rows - APP_ROWS
            return above, size.columns

        log_file = session.engine.profile.home / "chat.log"
        with logs_off_screen(log_file) as logging_to_file:
            self.emit(
                Event(
                    "info",
                    {
                        "text": f"nymchat: {self.me} on {self.node}, end-to-end "
                        "encrypted over the mixnet. /msg NAME to talk, "
                        "/help for more, Ctrl-D to leave."
                        + (f"\nlog lines go to {log_file}" if logging_to_file else "")
                    },
                )
            )
            self.screen = Screen(room)
            try:
                with patch_stdout(raw=True):
                    await self._read(prompt, session)
            finally:
                self.screen = None

    async def _read(self, prompt, session: ChatSession) -> None:
        while True:
            try:
                text = await prompt.prompt_async(lambda: f"{session.talking_to() or ''}> ")
            except KeyboardInterrupt:  # Ctrl-C: the line is cleared, the chat goes on
                continue
            except EOFError:  # Ctrl-D
                return
            if not session.handle(text):
                return
