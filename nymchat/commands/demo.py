"""``nymchat demo``: a local mixnet, a node and two people talking, in one command."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delay",
        default="zero",
        metavar="PROFILE",
        help="mixnet delays: zero (default), fast, or nym (the real network's latency)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the mixnet and node running afterwards, to try by hand",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.demo import Demo

    demo = Demo(args.delay, keep=args.keep)
    try:
        asyncio.run(demo.run())
    finally:
        demo.stop()
    return 0
