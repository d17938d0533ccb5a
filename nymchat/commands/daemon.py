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

    from nymchat.client import control, rpc
    from nymchat.client.connect import open_engine, refuse_if_served
    from nymchat.stopping import on_stop_signals
    from nymchat.terminal import line

    refuse_if_served(args, "daemon")

    async def take_in(engine, wake: asyncio.Event) -> None:
        """Subscribers see each message as a message_received event; `inbox` still
        gives what came since it last asked."""
        async for message in engine.follow(wake=wake):
            engine.shown(message)

    async def main() -> None:
        on_stop_signals(asyncio.get_running_loop(), asyncio.current_task().cancel)
        async with open_engine(args) as engine:
            wake = asyncio.Event()
            engine.link.transport.on_change = lambda event: wake.set()
            engine.on_notice = lambda text: print(
                f"nymchat: {line(text)}", file=sys.stderr, flush=True
            )
            service = rpc.Service(engine, "daemon")
            server = await control.serve(service, engine.profile.home)
            taking_in = asyncio.create_task(take_in(engine, wake))
            try:
                await (_stdio(service) if args.stdio else taking_in)
            finally:
                taking_in.cancel()
                server.close()
                control.socket_path(engine.profile.home).unlink(missing_ok=True)

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

    def push(message: dict) -> None:
        out.write(control.line_of(message))
        out.flush()

    await rpc.serve(service.connect(push), reader.readline)
