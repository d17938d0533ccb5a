"""``nymchat mixnet``: run the local test mixnet."""

import argparse
import json
import sys

from nymchat.errors import NymchatError, UsageError
from nymchat.mixnet import config

BANNER = """\
==========================================================================
 nymchat mixnet: a LOCAL TEST NETWORK. It provides NO ANONYMITY: every
 message passes through this one process, in the clear, with no mixing.
 Use it for development, tests and demos, never for real conversations.
=========================================================================="""
STATS_ORDER = [
    "messages",
    "packets",
    "delivered",
    "surbs_spent",
    "surb_requests",
    "held",
    "duplicated",
    "packets_lost",
    "bad_requests",
]


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def _loss(text: str) -> float:
    value = _probability(text)
    if value == 1:
        raise argparse.ArgumentTypeError("a loss of 1 would lose every packet for ever")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=1977,
        help="port to listen on; 0 picks a free one (default 1977)",
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --host that is not loopback"
    )
    parser.add_argument(
        "--state", metavar="DIR", help="where virtual client keys are kept (default: HOME/mixnet)"
    )
    parser.add_argument(
        "--delay",
        default="fast",
        metavar="PROFILE",
        help="zero (tests), fast (default), nym (the real network: 3 hops of "
        "15 ms mean, Poisson sending at 20 ms mean) or "
        "HOP_MS[/SEND_MS[/HOPS]]",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--loss",
        type=_loss,
        default=0.0,
        metavar="P",
        help="lose each packet with probability P; it is retransmitted "
        "after the ack timeout, so messages arrive late",
    )
    faults.add_argument(
        "--duplicate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="deliver a message twice with probability P",
    )
    faults.add_argument(
        "--drop-replies",
        type=_probability,
        default=0.0,
        metavar="P",
        help="silently lose a reply with probability P",
    )
    faults.add_argument(
        "--ack-timeout",
        type=float,
        metavar="SEC",
        help="retransmission delay (default: 1.5 x path delay + 1.5 s)",
    )
    faults.add_argument("--seed", type=int, help="random seed, to replay a faulty run")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-clients", type=int, default=config.Limits.max_clients)
    limits.add_argument(
        "--max-held",
        type=int,
        default=config.Limits.max_held_messages,
        metavar="N",
        help="messages held for one offline client",
    )
    limits.add_argument(
        "--retention",
        type=float,
        default=config.Limits.retention,
        metavar="SEC",
        help="how long held messages are kept",
    )
    limits.add_argument(
        "--reply-timeout",
        type=float,
        default=config.Limits.reply_timeout,
        metavar="SEC",
        help="how long a reply waits for SURBs",
    )
    limits.add_argument(
        "--max-frame",
        type=int,
        default=64 << 20,
        metavar="BYTES",
        help="largest websocket message accepted",
    )
    parser.add_argument(
        "--json", action="store_true", help="print status (and stats) as JSON lines for scripts"
    )
    parser.add_argument(
        "--stats", action="store_true", help="print counters on exit and on SIGUSR1"
    )


def _check_host(host: str, allow_remote: bool) -> None:
    import ipaddress

    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"refusing to listen on {host}: the local mixnet has no anonymity "
            "and no authentication; use a loopback address or --allow-remote"
        )


def _emit(args: argparse.Namespace, text: str, obj: dict) -> None:
    print(json.dumps(obj) if args.json else text, flush=True)


def _print_stats(args: argparse.Namespace, stats) -> None:
    counters = {k: stats.get(k, 0) for k in STATS_ORDER}
    counters.update(sorted((k, v) for k, v in stats.items() if k not in counters))
    _emit(
        args,
        "stats: " + " ".join(f"{k}={v}" for k, v in counters.items()),
        {"event": "stats", **counters},
    )


async def _serve(args: argparse.Namespace) -> None:
    import asyncio
    import random
    import signal
    from pathlib import Path

    from nymchat.home import default_home
    from nymchat.mixnet.identities import IdentityStore
    from nymchat.mixnet.model import Mixnet
    from nymchat.mixnet.server import MixnetServer
    from nymchat.stopping import on_stop_signals

    try:
        delays = config.parse_delays(args.delay)
    except ValueError as e:
        raise UsageError(str(e)) from None
    state = (
        Path(args.state).expanduser()
        if args.state
        else (Path(args.home).expanduser() if args.home else default_home()) / "mixnet"
    )
    mixnet = Mixnet(
        delays,
        config.Faults(args.loss, args.duplicate, args.drop_replies, args.ack_timeout),
        config.Limits(
            max_clients=args.max_clients,
            max_held_messages=args.max_held,
            retention=args.retention,
            reply_timeout=args.reply_timeout,
        ),
        random.Random(args.seed),
    )
    server = MixnetServer(mixnet, IdentityStore(state), max_frame=args.max_frame)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    on_stop_signals(loop, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _print_stats, args, mixnet.stats)
    try:
        async with server.serve(args.host, args.port) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            url = f"ws://{args.host}:{port}"
            if not args.json:
                print(BANNER, file=sys.stderr, flush=True)
            _emit(
                args,
                f"listening on {url}/NAME  (one virtual nym-client per NAME; "
                f"delay {args.delay}; state {state})",
                {
                    "event": "listening",
                    "url": url,
                    "host": args.host,
                    "port": port,
                    "state": str(state),
                    "delay": args.delay,
                    "anonymity": False,
                },
            )
            await stop.wait()
    except OSError as e:
        raise NymchatError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    if args.stats:
        _print_stats(args, mixnet.stats)
    _emit(args, "stopped", {"event": "stopped"})


def run(args: argparse.Namespace) -> int:
    import asyncio

    _check_host(args.host, args.allow_remote)
    asyncio.run(_serve(args))
    return 0
