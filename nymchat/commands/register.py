"""``nymchat register NAME --node CONTACT``: claim a username on a node."""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the username to claim: 3-32 of a-z, 0-9, _ and -")
    parser.add_argument(
        "--node",
        required=True,
        metavar="CONTACT",
        help="the node's contact string (nymchat-node:<key>:<address>)",
    )
    parser.add_argument(
        "--nym",
        metavar="URL",
        help="your nym-client (default: the last one used, else ws://127.0.0.1:1977)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import open_engine
    from nymchat.errors import UsageError
    from nymchat.protocol import names

    try:
        names.normalize(args.name)
    except names.InvalidName as e:
        raise UsageError(f"'{args.name}': {e}") from None

    def working(bits: int) -> None:
        if not args.quiet:
            print(
                f"the node asks for a proof of work ({bits} bits); working...",
                file=sys.stderr,
                flush=True,
            )

    async def main() -> str:
        async with open_engine(args, node=args.node) as engine:
            return await engine.register(args.name, on_work=working)

    username = asyncio.run(main())
    if args.json:
        print(json.dumps({"registered": username, "node": args.node}))
    elif not args.quiet:
        print(f"registered as {username}")
    return 0
