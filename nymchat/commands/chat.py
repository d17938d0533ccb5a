"""``nymchat chat``: the interactive conversation screen."""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true",
                        help="when stdin is not a terminal: one JSON event per line")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from nymchat.chat.core import ChatSession
    from nymchat.chat.faces import ScriptFace, TerminalFace
    from nymchat.client import control
    from nymchat.client.connect import open_engine, refuse_if_served
    from nymchat.commands import first_run
    from nymchat.nym import base58

    refuse_if_served(args, "chat")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    profile = first_run.run(args) if interactive else None

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

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
