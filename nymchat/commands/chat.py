"""``nymchat chat``: the interactive conversation screen."""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument(
        "--json", action="store_true", help="when stdin is not a terminal: one JSON event per line"
    )
    parser.add_argument(
        "--nym-client-bin",
        metavar="PATH",
        help="start this nym-client binary (with --nym-id), listening at --nym "
        "(default ws://127.0.0.1:1977), and stop it on exit",
    )
    parser.add_argument(
        "--nym-id",
        metavar="ID",
        help="the --id of the nym-client started (initialised on first use)",
    )


def _with_own_nym_client(args: argparse.Namespace) -> int:
    """`run` with a nym-client of the user's own: started (and initialised once) first,
    supervised while the chat runs, stopped after (also when the chat is told to stop by a
    signal)."""
    import signal

    from nymchat.client.connect import home_of
    from nymchat.errors import UsageError
    from nymchat.home import ensure_home
    from nymchat.nym.supervisor import supervised
    from nymchat.nym.transport import DEFAULT_URL

    if not (args.nym_client_bin and args.nym_id):
        raise UsageError("--nym-client-bin and --nym-id go together")
    url = args.nym or DEFAULT_URL
    if not args.quiet:
        print(
            f"nymchat: starting your nym-client ({args.nym_id}); waiting until it answers at {url}",
            file=sys.stderr,
        )
    for sig in (signal.SIGTERM, signal.SIGHUP):  # leave through `supervised`, which stops it
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, lambda number, _frame: sys.exit(128 + number))
    with supervised(args.nym_client_bin, args.nym_id, url, ensure_home(home_of(args))):
        return run(
            argparse.Namespace(**{**vars(args), "nym": url, "nym_client_bin": None, "nym_id": None})
        )


def run(args: argparse.Namespace) -> int:
    import asyncio

    if args.nym_client_bin or args.nym_id:
        return _with_own_nym_client(args)

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
        from nymchat.stopping import on_stop_signals

        # Not asyncio's own Ctrl-C handling: it is not installed when the parent ignored
        # SIGINT (a shell's background job), which left such a chat deaf to Ctrl-C.
        task = asyncio.current_task()
        assert task is not None  # (in asyncio.run)
        on_stop_signals(asyncio.get_running_loop(), task.cancel)
        async with open_engine(args, profile=profile, flush=False, tell=False) as engine:
            face: TerminalFace | ScriptFace
            if interactive:  # registered: `first_run` saw to it
                node = engine.profile.node
                assert node is not None  # `open_engine` connects only a profile with a node
                face = TerminalFace(engine.profile.me(), "node " + base58.encode(node.key)[:8])
            else:
                face = ScriptFace(args.json)
            session = ChatSession(engine, face.emit)
            async with control.serving(engine, "chat"):
                listener = asyncio.create_task(session.listen())
                try:
                    await face.run(session)
                    await session.drain()
                finally:
                    listener.cancel()

    import contextlib

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())  # Ctrl-C or SIGTERM ends it cleanly (exit status 130 or 0)
    return 0
