"""``nymchat send NAME TEXT``: send one end-to-end encrypted message."""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the recipient's username, or a group as '#NAME'")
    parser.add_argument("text", help="the message, or - to read it from standard input")
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="store the message in your outbox and return at once; the next "
        "nymchat command that connects sends it",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _read_stdin() -> str:
    """Standard input, read no further than a message can hold."""
    from nymchat.client.messages import MAX_BODY
    from nymchat.errors import TooLong, UsageError

    data = sys.stdin.buffer.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise TooLong(
            f"a message holds at most {MAX_BODY:,} bytes of text (UTF-8); standard "
            "input has more: nothing was queued or sent"
        )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError("standard input is not UTF-8 text: nothing was queued or sent") from None


def run(args: argparse.Namespace) -> int:
    from nymchat.client.ops import conversation, perform
    from nymchat.errors import UsageError
    from nymchat.protocol import names

    text = _read_stdin() if args.text == "-" else args.text
    if not text.strip():
        raise UsageError("the message is empty")
    try:
        username = conversation(args.name)
    except names.InvalidName as e:
        raise UsageError(f"'{args.name}': {e}") from None

    def waiting() -> None:
        if sys.stderr.isatty() and not args.quiet:
            print(
                "waiting for the node to accept the message (or, in direct mode, for the "
                "receipt)...",
                file=sys.stderr,
                flush=True,
            )

    answer = perform(
        args,
        "send",
        {"to": username, "text": text, "wait": not args.no_wait},
        slow=waiting,
    )
    if args.json:
        print(json.dumps({**answer, "sent": answer["message_id"]}))  # `sent`: the older name
    elif not args.quiet:
        username = answer["to"]  # as the person is shown it (`bob@petname`)
        print(
            {
                "accepted": f"accepted by the node for {username}",
                "delivered": f"delivered to {username} (direct mode)",
            }.get(
                answer["status"],
                f"queued for {username}; it leaves with the next nymchat command that connects",
            )
        )
    return 0
