"""``nymchat daemon``: the profile's engine with no screen, taking messages in as they
come and serving the JSON-RPC API (docs/API.md) on the control socket, and with --stdio
on standard input and output, for bots and scripts."""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument(
        "--stdio",
        action="store_true",
        help="serve the API on standard input and output too, one JSON object a line; "
        "the end of the input ends the daemon",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from nymchat.client import control
    from nymchat.client.connect import open_engine, refuse_if_served
    from nymchat.client.engine import Engine
    from nymchat.sentences import teller
    from nymchat.stopping import on_stop_signals

    refuse_if_served(args, "daemon")

    async def take_in(engine: Engine) -> None:
        """Subscribers see each message as a message_received event; `inbox` still
        gives what came since it last asked."""
        async for message in engine.follow():
            engine.shown(message)

    async def main() -> None:
        task = asyncio.current_task()
        if task is not None:
            on_stop_signals(asyncio.get_running_loop(), task.cancel)
        async with open_engine(args, tell=False) as engine:
            engine.events.subscribe(teller(engine.display))
            async with control.serving(engine, "daemon") as service:
                taking_in = asyncio.create_task(take_in(engine))
                try:
                    await (_stdio(service) if args.stdio else taking_in)
                finally:
                    taking_in.cancel()

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())  # Ctrl-C or SIGTERM ends it cleanly
    return 0


async def _stdio(service) -> None:
    """The API on standard input and output, until the input ends."""
    import asyncio

    from nymchat.client import control, rpc
    from nymchat.errors import UsageError

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=control.MAX_REQUEST)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:
        raise UsageError("--stdio reads a pipe or a terminal, not a file") from None
    out = sys.stdout.buffer

    def push(message: rpc.Answer) -> None:
        out.write(control.line_of(message))
        out.flush()

    await rpc.serve(service.connect(push), reader.readline)
