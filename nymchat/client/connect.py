"""Opening a profile and connecting it to its node: what every messaging command does
first (unlock, open the sealed store, reach the nym-client, talk to the node)."""

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from nymchat import keystore
from nymchat.client.engine import Engine
from nymchat.client.nodelink import TIMEOUT, NodeLink
from nymchat.client.profile import Profile
from nymchat.client.vocabulary import JsonObject
from nymchat.errors import Busy, NotRegistered, NymchatError, UsageError, from_json
from nymchat.home import default_home, ensure_home
from nymchat.nym.transport import DEFAULT_URL, NymClient, NymClientBusy
from nymchat.passphrase import unlock_with
from nymchat.protocol.contact import NodeContact
from nymchat.terminal import line


def home_of(args: argparse.Namespace) -> Path:
    return Path(args.home).expanduser() if args.home else default_home()


def delegate(args: argparse.Namespace, method: str, params: JsonObject) -> JsonObject | None:
    """Hands a one-shot request to the process that holds this profile's connection, if
    one runs; returns its result, raises its error (with its exit code), or None when no
    process serves. What the user was told meanwhile is printed, as if done here."""
    import asyncio

    from nymchat.client import control

    answer = asyncio.run(control.call(home_of(args), method, params))
    if answer is None:
        return None
    failed = answer.get("error")
    outcome = (failed.get("data") or {}) if isinstance(failed, dict) else answer.get("result")
    if not isinstance(outcome, dict):
        raise NymchatError("the process serving this profile answered nothing")
    for notice in outcome.pop("notices", []):
        print(f"nymchat: {line(notice)}", file=sys.stderr)
    outcome.pop("events", None)  # the person is told the notices, made of them
    if failed is not None:
        raise from_json({**outcome, "message": failed.get("message")})
    return outcome


async def serving(home: Path) -> str | None:
    """What serves the profile in `home` on its control socket ("`chat` (pid 123)"), if
    anything does."""
    from nymchat.client import control

    try:
        answer = await control.call(home, "status", timeout=5)
    except (OSError, TimeoutError, ValueError, NymchatError):
        return None
    if answer is None:
        return None
    status = answer.get("result")
    if not isinstance(status, dict):  # a nymchat from before the API
        return "another nymchat process"
    pid = status.get("pid")
    return f"`{line(str(status.get('serving')))}`" + (f" (pid {pid})" if type(pid) is int else "")


def refuse_if_served(args: argparse.Namespace, command: str) -> None:
    """A process that holds this profile (a chat, `inbox --follow`) receives its messages:
    a second one would only fight it for the nym-client, so `command` says so instead."""
    import asyncio

    holder = asyncio.run(serving(home_of(args)))
    if holder is not None:
        raise Busy(
            f"{holder} already runs for this profile and receives its messages;"
            f" `{command}` cannot run beside it: use that one, or end it first"
        )


def unlock(args: argparse.Namespace) -> Profile:
    home = home_of(args)
    sealed = keystore.read_sealed(home)  # before asking: is there an identity at all?
    passphrase_file = Path(args.passphrase_file).expanduser() if args.passphrase_file else None
    identity = unlock_with(
        passphrase_file, lambda passphrase: keystore.unlock(home, passphrase, sealed)
    )
    return Profile(ensure_home(home), identity)


def node_timeout() -> float:
    """Seconds each attempt of a request waits for the node: `$NYMCHAT_NODE_TIMEOUT`, else
    10 (a slow mixnet may want more; the tests of a silent node want less)."""
    text = os.environ.get("NYMCHAT_NODE_TIMEOUT")
    if not text:
        return TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 600:
        raise UsageError(f"NYMCHAT_NODE_TIMEOUT is seconds, above 0 and at most 600, not {text!r}")
    return seconds


@asynccontextmanager
async def connect(
    profile: Profile, url: str, node: NodeContact | None = None
) -> AsyncIterator[Engine]:
    """The one way to bring a profile online: an engine on a link to its node (or `node`)
    through the nym-client at `url`, for commands, the demo, the benchmarks and the load
    tests alike. The URL is remembered once the engine has been used: one nym-client per
    profile, which reaches each of the node's frontends (the link picks which)."""
    contact = node or profile.node
    if contact is None:
        raise NotRegistered()
    transport = NymClient(url)
    try:
        await transport.start()
    except NymClientBusy:
        holder = await serving(profile.home)
        if holder is None:
            raise
        raise NymClientBusy(url, f"{holder} serves this profile") from None
    try:
        async with NodeLink(transport, contact, profile.identity, timeout=node_timeout()) as link:
            engine = Engine(profile, link)
            try:
                yield engine
            finally:
                await engine.aclose()
        with profile.store.transaction():
            profile.store.put("nym", url)
    finally:
        await transport.close()


@asynccontextmanager
async def open_engine(
    args: argparse.Namespace,
    node: str | None = None,
    profile: Profile | None = None,
    flush: bool = True,
    tell: bool = True,
) -> AsyncIterator[Engine]:
    """An engine for the profile in --home (unlocked here unless given), connected to its
    node (or `node`); what waits in the outbox is sent first unless `flush` is False (the
    chat sends it from its own loop, so that a silent node does not hold its prompt). What
    the engine has to tell the person is printed on stderr, even when the command fails,
    unless `tell` is False (a face that shows the engine's events itself)."""
    from nymchat.sentences import sentence, shown

    owned = profile is None
    profile = profile or unlock(args)
    try:
        contact = None
        if node is not None:
            contact = NodeContact.parse(node)
        url = getattr(args, "nym", None) or profile.store.get("nym") or DEFAULT_URL
        told: list[str] = []
        async with connect(profile, url, contact) as engine:
            engine.relay.delay = getattr(args, "sealed_delay", None) or 0.0
            if tell:
                engine.events.subscribe(
                    lambda event: told.append(
                        sentence(shown(event, engine.display), engine.username) or ""
                    )
                )
            try:
                if flush and profile.username:
                    sent = await engine.flush_outbox()
                    if sent:
                        told.append(f"sent {sent} queued message(s)")
                yield engine
            finally:
                for notice in filter(None, told):
                    print(f"nymchat: {line(notice)}", file=sys.stderr)
    finally:
        if owned:
            profile.close()
