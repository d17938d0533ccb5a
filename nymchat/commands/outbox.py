"""``nymchat outbox``: the messages waiting to leave; ``outbox drop ID`` takes one out."""

import argparse
import json
import time

PREVIEW = 40  # characters of a message shown in the list (of the 80 `ops` gives)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")
    actions = parser.add_subparsers(dest="outbox_command", metavar="ACTION")
    drop = actions.add_parser(
        "drop",
        help="take a waiting message out: it is never sent",
        description="Take a waiting message out of the outbox: it is "
        "marked failed (dropped by you) and never sent.",
    )
    drop.add_argument(
        "id",
        metavar="ID",
        help="the message's id, or enough of its start to tell it from the others",
    )
    drop.add_argument("--json", action="store_true", help="print as JSON")


def _age(ms: int, now: float) -> str:
    seconds = max(0, int(now - ms / 1000))
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _preview(text: str) -> str:
    from nymchat.terminal import line

    flat = " ".join(text.split())
    return line(flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…")


def run(args: argparse.Namespace) -> int:
    """Through the chat (or `inbox --follow`) serving the profile if one runs."""
    from nymchat.client.ops import perform

    if args.outbox_command == "drop":
        answer = perform(args, "outbox.drop", {"id": args.id})
        print(
            json.dumps(answer)
            if args.json
            else f"dropped message {answer['dropped'][:8]} to {answer['to']}: it will not be sent"
        )
        return 0
    waiting = perform(args, "outbox.list", {})["outbox"]
    if args.json:
        print(json.dumps(waiting))
        return 0
    if not waiting:
        print("the outbox is empty: nothing waits to be sent")
        return 0
    now = time.time()
    for m in waiting:
        print(
            f"{m['id'][:8]}  to {m['to']:<20} {_age(m['time_ms'], now) + ' ago':<12} "
            f"{_preview(m['preview'])}"
        )
    print(
        f"{len(waiting)} waiting; they leave with the next nymchat command that connects "
        "(`nymchat outbox drop ID` takes one out)"
    )
    return 0
