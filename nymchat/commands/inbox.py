"""``nymchat inbox``: fetch, decrypt and show new messages."""

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.add_argument("--wait", type=float, default=1.5, metavar="SEC",
                        help="how long to wait for more once messages stop (default 1.5)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import open_engine

    async def main():
        async with open_engine(args) as engine:
            return await engine.inbox(quiet=args.wait)

    for message in asyncio.run(main()):
        if args.json:
            print(json.dumps({"from": message.sender, "id": message.message_id.hex(),
                              "sent": message.sent, "text": message.text,
                              "verified": message.verified,
                              "key_changed": message.key_changed}), flush=True)
        else:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(message.sent / 1000))
            mark = "verified" if message.verified else "not verified"
            if message.key_changed:
                mark = "KEY CHANGED"
            print(f"[{when}] {message.sender} ({mark}): {message.text}", flush=True)
    return 0
