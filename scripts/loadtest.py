#!/usr/bin/env python3
"""Load and fault test: N users on the real client engine, each with its own virtual
nym-client, register, look each other up and exchange M messages in random pairs, through
`dist/nymchat node` on `dist/nymchat mixnet` (started here, loopback only). Faults: mixnet
--loss/--duplicate and --kill-node-every (SIGKILL and restart the node during the run).

At the end every message a sender was told was accepted is checked: it must have been
delivered exactly once (after the client's de-duplication). Prints one summary line (or
--json); exits 1 if anything accepted was lost or shown twice.

    scripts/loadtest.py --users 20 --messages 20 --loss 0.05 --duplicate 0.05 --kill-node-every 5
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from procs import MixnetProcess, NodeProcess  # noqa: E402

from nymchat import keystore  # noqa: E402
from nymchat.client.connect import connect  # noqa: E402
from nymchat.client.engine import Engine  # noqa: E402
from nymchat.client.profile import Profile  # noqa: E402
from nymchat.errors import NymchatError  # noqa: E402
from nymchat.protocol.contact import NodeContact  # noqa: E402

UNLIMITED = [
    "--requests-per-s",
    "1e9",
    "--request-burst",
    "1e9",
    "--lookups-per-min",
    "1e9",
    "--pow-difficulty",
    "0",
]


async def user(stack: AsyncExitStack, home: Path, url: str, contact: str, name: str) -> Engine:
    home.mkdir(mode=0o700)
    profile = Profile(home, keystore.create(home, "load test passphrase"))
    stack.callback(profile.close)
    engine = await stack.enter_async_context(
        connect(profile, f"{url}/{name}", NodeContact.parse(contact))
    )
    await engine.register(name)
    return engine


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    rng = random.Random(args.seed)
    mixnet_args = [
        "--loss",
        str(args.loss),
        "--duplicate",
        str(args.duplicate),
        "--ack-timeout",
        "0.2",
        "--seed",
        str(args.seed),
    ]
    mixnet = MixnetProcess(tmp / "mixnet", tmp / "shiv", *mixnet_args, delay=args.delay)
    node = NodeProcess(tmp / "node", tmp / "shiv", f"{mixnet.url}/node", *UNLIMITED)
    contact, kills = node.contact, 0
    names = [f"user{n:04d}" for n in range(args.users)]
    accepted: dict[str, tuple[str, float]] = {}  # text → (recipient, sent at)
    delivered: dict[str, list[float]] = {}
    try:
        async with AsyncExitStack() as stack:
            engines = {
                name: await user(stack, tmp / name, mixnet.url, contact, name) for name in names
            }

            async def listen(name: str) -> None:
                async for message in engines[name].follow(refresh_every=5):
                    delivered.setdefault(message.text, []).append(time.perf_counter())
                    engines[name].shown(message)

            listeners = [asyncio.create_task(listen(name)) for name in names]

            async def killer() -> None:
                nonlocal node, kills
                while args.kill_node_every and (args.kills is None or kills < args.kills):
                    await asyncio.sleep(args.kill_node_every)
                    node.stop(signal.SIGKILL)
                    node = await asyncio.to_thread(
                        NodeProcess, tmp / "node", tmp / "shiv", f"{mixnet.url}/node", *UNLIMITED
                    )
                    kills += 1

            kill_task = asyncio.create_task(killer())

            async def talk(name: str) -> None:
                for n in range(args.messages):
                    to = rng.choice([other for other in names if other != name])
                    text = f"{name}->{to}#{n}:{os.urandom(4).hex()}"
                    try:
                        await engines[name].send(to, text)
                        accepted[text] = (to, time.perf_counter())
                    except NymchatError:
                        pass  # not accepted: the sender knows; not counted as lost

            started = time.perf_counter()
            await asyncio.gather(*(talk(name) for name in names))
            sending = time.perf_counter() - started
            kill_task.cancel()
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and not all(t in delivered for t in accepted):
                await asyncio.sleep(0.5)
            for task in listeners:
                task.cancel()
    finally:
        node.stop()
        mixnet.stop()
    sent = args.users * args.messages
    latencies = sorted(
        (delivered[t][0] - at) * 1000 for t, (_, at) in accepted.items() if t in delivered
    )
    lost = sum(1 for t in accepted if t not in delivered)
    duplicated = sum(1 for times in delivered.values() if len(times) > 1)

    def percentile(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1)
            if latencies
            else float("nan")
        )

    return {
        "users": args.users,
        "sent": sent,
        "accepted": len(accepted),
        "delivered": len(accepted) - lost,
        "lost": lost,
        "duplicated": duplicated,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
        "msgs_per_s": round(len(accepted) / sending, 1),
        "node_kills": kills,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20, help="messages per user")
    parser.add_argument("--delay", default="zero", help="mixnet delay profile")
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument(
        "--kill-node-every",
        type=float,
        default=0,
        metavar="SEC",
        help="SIGKILL and restart the node every SEC seconds",
    )
    parser.add_argument("--kills", type=int, metavar="N", help="stop after N node kills")
    parser.add_argument(
        "--settle",
        type=float,
        default=60,
        help="seconds to wait for deliveries after the last send",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nymchat-load-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    print(
        json.dumps(result)
        if args.json
        else " ".join(f"{key}={value}" for key, value in result.items())
    )
    return 1 if result["lost"] or result["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main())
