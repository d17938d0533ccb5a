"""``nymchat send NAME TEXT``: send one end-to-end encrypted message."""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the recipient's username")
    parser.add_argument("text", help="the message, or - to read it from standard input")
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--no-wait", action="store_true",
                        help="store the message in your outbox and return at once; the next "
                             "nymchat command that connects sends it")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import delegate, open_engine
    from nymchat.errors import UsageError

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise UsageError("the message is empty")

    async def main() -> dict:
        async with open_engine(args) as engine:
            slow = asyncio.get_running_loop().call_later(1.0, waiting)
            try:
                message_id = await engine.send(args.name, text)
            finally:
                slow.cancel()
            return {"sent": message_id.hex(), "status": engine.store.message(message_id)["status"]}

    def waiting() -> None:
        if sys.stderr.isatty() and not args.quiet:
            print("waiting for the node to accept the message (or, in direct mode, for the "
                  "receipt)...", file=sys.stderr, flush=True)

    if args.no_wait:
        from nymchat.client.connect import unlock
        from nymchat.client.engine import Engine

        profile = unlock(args)
        try:
            message_id = Engine(profile, link=None).queue(args.name, text)
        finally:
            profile.store.close()
        status = "queued"
    else:
        served = delegate(args, {"op": "send", "to": args.name, "text": text}) or \
            asyncio.run(main())
        message_id, status = bytes.fromhex(served["sent"]), served["status"]
    if args.json:
        print(json.dumps({"sent": message_id.hex(), "to": args.name.lower(),
                          "status": status}))
    elif not args.quiet:
        print({"accepted": f"accepted by the node for {args.name.lower()}",
               "delivered": f"delivered to {args.name.lower()} (direct mode)"}.get(
            status, f"queued for {args.name.lower()}; it leaves with the next nymchat command "
                    "that connects"))
    return 0
