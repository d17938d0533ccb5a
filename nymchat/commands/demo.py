"""``nymchat demo``: a local mixnet, a node (two with --federated) and two people talking,
in one command."""

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
    parser.add_argument(
        "--federated",
        action="store_true",
        help="two nodes instead of one: alice at home on A, bob on B, and what each node "
        "knows afterwards",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.demo import Demo

    demo = Demo(args.delay, keep=args.keep)
    try:
        asyncio.run(demo.run_federated() if args.federated else demo.run())
    finally:
        demo.stop()
    return 0
