"""``nymchat unregister``: free this profile's username at its node."""

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", action="store_true", help="do not ask to type the username to confirm"
    )
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _confirm(username: str) -> None:
    from nymchat.errors import NymchatError, UsageError

    if not sys.stdin.isatty():
        raise UsageError(
            "unregister asks you to type your username to confirm; without a terminal give --yes"
        )
    print(
        f"This frees the name {username} at your node: anyone may register it next, and "
        "your contacts' messages to it stop. Your identity, contacts and history stay "
        "here.",
        file=sys.stderr,
    )
    try:
        typed = input(f"Type {username} to unregister it: ")
    except EOFError:
        typed = ""
    if typed.strip().lower() != username:
        raise NymchatError("not confirmed: nothing was unregistered")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import home_of, open_engine, serving, unlock
    from nymchat.errors import Busy, NotRegistered

    holder = asyncio.run(serving(home_of(args)))
    if holder is not None:  # it would go on serving a profile with no name
        raise Busy(f"{holder} serves this profile: quit it first, then unregister")
    profile = unlock(args)
    try:
        username = profile.username
        if username is None:
            raise NotRegistered("this profile is not registered on a node: nothing to unregister")
        if not args.yes:
            _confirm(username)

        async def main() -> str:
            async with open_engine(args, profile=profile) as engine:
                return await engine.unregister()

        asyncio.run(main())
    finally:
        profile.close()
    if args.json:
        print(json.dumps({"unregistered": username}))
    elif not args.quiet:
        print(
            f"unregistered {username}: the node has forgotten the name and its keys. Your "
            "identity, contacts and history stay here; `nymchat register NAME --node "
            "CONTACT` registers again"
        )
    return 0
