"""``nymchat send NAME TEXT``: send one end-to-end encrypted message."""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the recipient's username")
    parser.add_argument("text", help="the message, or - to read it from standard input")
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import delegate, open_engine
    from nymchat.errors import UsageError

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise UsageError("the message is empty")

    async def main() -> bytes:
        async with open_engine(args) as engine:
            return await engine.send(args.name, text)

    served = delegate(args, {"op": "send", "to": args.name, "text": text})
    message_id = bytes.fromhex(served["sent"]) if served else asyncio.run(main())
    if args.json:
        print(json.dumps({"sent": message_id.hex(), "to": args.name.lower(),
                          "status": "accepted"}))
    elif not args.quiet:
        print(f"accepted by the node for {args.name.lower()}")
    return 0
