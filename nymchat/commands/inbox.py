"""``nymchat inbox``: fetch, decrypt and show new messages."""

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per message, as the API's message_received event (docs/API.md; "
        "a group's message has `group`)",
    )
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

    from nymchat.client import vocabulary
    from nymchat.client.connect import delegate, open_engine, refuse_if_served
    from nymchat.sentences import shown, teller
    from nymchat.terminal import block, line

    async def main():
        from nymchat.stopping import on_stop_signals

        on_stop_signals(asyncio.get_running_loop(), asyncio.current_task().cancel)
        async with open_engine(args, tell=not args.follow) as engine:
            if not args.follow:
                for message in await engine.inbox(quiet=args.wait, limit=args.max_time):
                    show(vocabulary.event(shown(message, engine.display)))
                    engine.shown(message)
                engine.inbox_done()
                return
            from nymchat.client import control

            engine.events.subscribe(teller(engine.display))
            async with control.serving(engine, "inbox --follow"):
                async for message in engine.follow():
                    show(vocabulary.event(shown(message, engine.display)))
                    engine.shown(message)

    def show(message: dict) -> None:
        """A message_received event; `from` and `id` are what older versions said."""
        if args.json:
            print(
                json.dumps({**message, "from": message["sender"], "id": message["message_id"]}),
                flush=True,
            )
        else:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(message["sent_ms"] / 1000))
            if message.get("group") is not None:  # `group show` says how far each is trusted
                who = f"#{line(message['group'])} {line(message['sender'])}"
                print(f"[{when}] {who}: {block(message['text'])}", flush=True)
                return
            mark = "verified" if message["verified"] else "not verified"
            if message["key_changed"]:
                mark = "KEY CHANGED"
            print(
                f"[{when}] {line(message['sender'])} ({mark}): {block(message['text'])}",
                flush=True,
            )

    if args.follow:
        refuse_if_served(args, "inbox --follow")
    else:  # a chat or `inbox --follow` takes the messages in: it tells what came since
        served = delegate(args, "inbox", {})
        if served is not None:
            for message in served["messages"]:
                show(message)
            return 0

    import contextlib

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())  # Ctrl-C or SIGTERM ends --follow cleanly
    return 0
