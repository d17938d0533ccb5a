"""``nymchat register NAME --node CONTACT [--move]``: claim a username on a node, or move
the account there (every contact told)."""

import argparse
import json
import sys
from collections.abc import Callable


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
    parser.add_argument(
        "--move",
        action="store_true",
        help="move this profile's account to that node under the same name: every contact "
        "is told (their clients follow), and the name is freed at the old node",
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

    if args.move:
        return _move(args, working)

    async def main() -> str:
        async with open_engine(args, node=args.node, flush=False) as engine:
            here, new, me = engine.profile.node, engine.link.contact, engine.username
            if me is not None and here is not None and new is not None and new.key != here.key:
                raise UsageError(
                    f"this profile is registered as {me} at another node: add --move to "
                    "move there (your contacts follow), or `nymchat unregister` first"
                )
            return await engine.register(args.name, on_work=working)

    username = asyncio.run(main())
    if args.json:
        print(json.dumps({"registered": username, "node": args.node}))
    elif not args.quiet:
        print(f"registered as {username}")
    return 0


def _move(args: argparse.Namespace, working: Callable[[int], None]) -> int:
    import asyncio

    from nymchat.client.connect import open_engine
    from nymchat.client.moving import Moved
    from nymchat.protocol.contact import NodeContact
    from nymchat.terminal import line

    async def main() -> tuple[Moved, str, str, list[str], list[str]]:
        async with open_engine(args, node=args.node, flush=False) as engine:
            moved = await engine.move(args.name, on_work=working)
            old = engine.node_name(NodeContact.parse(moved.old_node).key)
            new = engine.node_name(NodeContact.parse(args.node).key)
            waiting = [engine.display(w) for w in moved.waiting]
            return moved, old, new, waiting, [f"#{g.name}" for g in engine.groups()]

    moved, old, new, waiting, groups = asyncio.run(main())
    if groups:  # their logs stay where they are: those at the old node are watched there
        print(
            f"nymchat: your groups keep their logs where they are (those at node {old} "
            f"followed from now on without an account there): {', '.join(groups)}",
            file=sys.stderr,
        )
    if args.json:
        print(
            json.dumps(
                {
                    "registered": moved.name,
                    "node": args.node,
                    "moved_from": moved.old_node,
                    "contacts": moved.contacts,
                    "not_told_yet": waiting,
                    "unread": moved.unread,
                    "old_node_freed": moved.freed is None,
                    "reason": moved.freed,
                }
            )
        )
        return 0 if moved.freed is None else 1
    if not args.quiet:
        told = moved.contacts - len(waiting)
        print(
            f"moved {moved.name} to node {new} (from {old}); told {told} of "
            f"{moved.contacts} contacts, whose clients follow"
        )
        if waiting:
            print(
                f"not told yet (their node did not answer): {', '.join(waiting)}; "
                "they are told at the next connection"
            )
        if moved.unread:
            print(f"{moved.unread} message(s) not read yet: `nymchat inbox` shows them")
    if moved.freed is not None:
        print(
            f"nymchat: the old node did not free your name ({line(moved.freed)}): run the same "
            "command again to finish the move",
            file=sys.stderr,
        )
        return 1
    return 0
