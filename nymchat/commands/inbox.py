"""``nymchat inbox``: fetch, decrypt and show new messages."""

import argparse
import json
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    parser.add_argument(
        "--wait",
        type=float,
        default=1.5,
        metavar="SEC",
        help="how long to wait for more once messages stop (default 1.5)",
    )
    parser.add_argument(
        "--max-time",
        type=float,
        default=30.0,
        metavar="SEC",
        help="stop taking messages in after this long, even if more keep "
        "coming; the rest waits at the node (default 30)",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="keep listening and print messages as they come (Ctrl-C ends); "
        "meanwhile `send`, `lookup` and `inbox` (what came since the "
        "last inbox) in other terminals go through this process",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import delegate, open_engine, refuse_if_served
    from nymchat.client.events import MessageReceived
    from nymchat.terminal import block, line

    async def main():
        from nymchat.stopping import on_stop_signals

        on_stop_signals(asyncio.get_running_loop(), asyncio.current_task().cancel)
        async with open_engine(args, tell=not args.follow) as engine:
            if not args.follow:
                for message in await engine.inbox(quiet=args.wait, limit=args.max_time):
                    show(message)
                    engine.shown(message)
                engine.inbox_done()
                return
            from nymchat.client import control
            from nymchat.sentences import sentence

            def tell(event) -> None:
                if (text := sentence(event)) is not None:
                    print(f"nymchat: {line(text)}", file=sys.stderr, flush=True)

            engine.events.subscribe(tell)
            server = await control.serve(engine, engine.profile.home, "inbox --follow")
            try:
                async for message in engine.follow():
                    show(message)
                    engine.shown(message)
            finally:
                server.close()
                control.socket_path(engine.profile.home).unlink(missing_ok=True)

    def show(message) -> None:
        if args.json:
            print(
                json.dumps(
                    {
                        "from": message.sender,
                        "id": message.message_id.hex(),
                        "sent": message.sent,
                        "text": message.text,
                        "verified": message.verified,
                        "key_changed": message.key_changed,
                    }
                ),
                flush=True,
            )
        else:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(message.sent / 1000))
            mark = "verified" if message.verified else "not verified"
            if message.key_changed:
                mark = "KEY CHANGED"
            print(f"[{when}] {line(message.sender)} ({mark}): {block(message.text)}", flush=True)

    if args.follow:
        refuse_if_served(args, "inbox --follow")
    else:  # a chat or `inbox --follow` takes the messages in: it tells what came since
        served = delegate(args, {"op": "inbox"})
        if served is not None:
            for message in served["messages"]:
                show(
                    MessageReceived(
                        **{**message, "message_id": bytes.fromhex(message["message_id"])}
                    )
                )
            return 0

    import contextlib

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())  # Ctrl-C or SIGTERM ends --follow cleanly
    return 0
