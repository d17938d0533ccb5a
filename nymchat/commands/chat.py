"""``nymchat chat``: the interactive conversation screen."""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true",
                        help="when stdin is not a terminal: one JSON event per line")


def _first_run(args: argparse.Namespace):
    """Unlocks the profile; without an identity or a username, a person at a terminal is
    walked through `keys new` and `register` first. Returns the unlocked profile."""
    import asyncio
    from pathlib import Path

    from nymchat import keystore
    from nymchat.client.connect import home_of, open_engine
    from nymchat.client.engine import Profile
    from nymchat.errors import NoIdentity
    from nymchat.home import ensure_home
    from nymchat.passphrase import get_passphrase

    home = home_of(args)
    passphrase_file = args.passphrase_file and Path(args.passphrase_file).expanduser()
    try:
        keystore.read_sealed(home)
        identity = keystore.unlock(home, get_passphrase(passphrase_file))
    except NoIdentity:
        print("No identity here yet: let's make one (keys sealed with a passphrase).")
        identity = keystore.create(ensure_home(home), get_passphrase(None, new=True))
        print("Identity created.")
    profile = Profile(ensure_home(home), identity)
    if profile.username:
        return profile
    print("Not registered on a node yet.")
    name = input("username to claim: ").strip()
    node = input("node contact string (nymchat-node:...): ").strip()
    if not args.nym:
        args.nym = input("your nym-client [ws://127.0.0.1:1977]: ").strip() or None

    async def register() -> str:
        async with open_engine(args, node=node, profile=profile) as engine:
            return await engine.register(name)

    print(f"registered as {asyncio.run(register())}")
    return profile


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.chat.core import ChatSession
    from nymchat.chat.faces import ScriptFace, TerminalFace
    from nymchat.client import control
    from nymchat.client.connect import open_engine
    from nymchat.nym import base58

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    profile = _first_run(args) if interactive else None

    async def main() -> None:
        async with open_engine(args, profile=profile) as engine:
            me = engine.profile.username
            node = "node " + base58.encode(engine.link.contact.key)[:8]
            face = TerminalFace(me, node) \
                if interactive else ScriptFace(args.json)
            session = ChatSession(engine, face.emit)
            wake = asyncio.Event()

            def changed(event: str) -> None:
                session.connection(event)
                wake.set()

            engine.link.transport.on_change = changed
            server = await control.serve(engine, engine.profile.home)
            listener = asyncio.create_task(session.listen(wake))
            try:
                await face.run(session)
                await session.drain()
            finally:
                listener.cancel()
                server.close()
                control.socket_path(engine.profile.home).unlink(missing_ok=True)

    asyncio.run(main())  # Ctrl-C (SIGINT) ends it through the CLI's exit status 130
    return 0
