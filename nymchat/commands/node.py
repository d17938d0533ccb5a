"""``nymchat node``: run a discovery node."""

import argparse
import json
import logging
from pathlib import Path

from nymchat.commands.node_backup import add_actions
from nymchat.node.settings import (
    PASSWORD_ENV,
    SETTINGS,
    FrontendPlan,
    SettingsError,
    frontends,
    resolve,
    without_password,
)
from nymchat.node.settings import add_arguments as add_settings

__all__ = ["add_arguments", "run"]
log = logging.getLogger("nymchat.node")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The node's settings, and its actions (backup, restore)."""
    add_settings(parser)
    add_actions(parser)


def _home(args: argparse.Namespace) -> Path:
    from nymchat.home import default_home

    return Path(args.home).expanduser() if args.home else default_home()


def _new_password(settings: dict) -> str:
    from nymchat.passphrase import get_passphrase

    file = settings["password_file"]
    return get_passphrase(
        Path(file).expanduser() if file else None,
        new=True,
        env_var=PASSWORD_ENV,
        noun="node password",
    )


def _node_identity(data: Path, settings: dict):
    """The node key, from its file (`key_file`, else DATA's), made there at the first start.
    An existing file is only read: the processes of one node may share a read-only one."""
    from nymchat import keystore

    key_file = Path(settings["key_file"] or keystore.path_in(data)).expanduser()
    if key_file.exists():
        from nymchat.passphrase import unlock_with

        sealed = keystore.read_sealed(data, key_file)
        file = settings["password_file"]
        return unlock_with(
            Path(file).expanduser() if file else None,
            lambda password: keystore.unlock(data, password, sealed, key_file),
            env_var=PASSWORD_ENV,
            noun="node password",
        )
    if not key_file.parent.is_dir():
        from nymchat.errors import NotFound

        raise NotFound(f"cannot make the node key {key_file}: no directory {key_file.parent}")
    log.info("first run: creating the node key in %s", key_file)
    return keystore.create(data, _new_password(settings), key_file)


def _print_config(values: dict, origin: dict) -> int:
    """The effective settings as a TOML file `--config` loads; unset ones commented out."""
    for s in SETTINGS:
        value = values[s.name]
        if s.name == "store" and value is not None:
            value = without_password(value)
        if value is None:
            print(f"# {s.name} =  # unset ({origin[s.name]})")
        else:
            print(f"{s.name} = {json.dumps(value)}  # {origin[s.name]}")
    return 0


async def _connect(transport, supervisor, supervised, stop) -> bool:
    """Connects; a nym-client the node has just started gets a minute to come up. False
    when told to stop meanwhile; the supervisor's failure, or its client's exit before it
    ever listened, is an error at once."""
    import asyncio

    from nymchat.nym.supervisor import NymClientFailed
    from nymchat.nym.transport import NOT_CONNECTED

    attempts = 0
    while True:
        try:
            await transport.start()
            return True
        except NOT_CONNECTED:
            attempts += 1
            if supervisor is None or attempts == 60:
                raise
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([supervised, stopped], timeout=1, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if supervised.done():
            supervised.result()  # raises what stopped the supervisor
        if stop.is_set():
            return False
        if supervisor.restarts:
            raise NymClientFailed(
                f"the nym-client {supervisor.binary} (--id {supervisor.nym_id}) "
                "exited before it accepted a connection; run it by hand to see "
                "why"
            )


async def _serve(settings: dict, plan: list[FrontendPlan], identity, listed) -> None:
    import asyncio
    import os

    from nymchat.errors import NymchatError
    from nymchat.node.metrics import serve as serve_metrics
    from nymchat.node.registration import name_key
    from nymchat.node.runner import NodeRunner, now_ms
    from nymchat.node.service import NodeConfig, NodeService
    from nymchat.node.store import open_store
    from nymchat.nym.transport import NymClient
    from nymchat.protocol.contact import NodeContact
    from nymchat.stopping import on_stop_signals

    data = Path(settings["data"])
    store = await open_store(
        settings["store"] or str(data / "node.db"), name_key(identity.secret_bytes())
    )
    config = NodeConfig(
        pow_difficulty=settings["pow_difficulty"],
        freshness_ms=settings["freshness"] * 1000,
        retention_ms=settings["retention_days"] * 86_400_000,
        queue_max_messages=settings["queue_max_messages"],
        queue_max_bytes=settings["queue_max_bytes"],
        max_payload=settings["max_payload"],
        queue_stranger_share=settings["queue_stranger_share"],
        node_queue_max_bytes=settings["node_queue_max_bytes"],
        requests_per_s=settings["requests_per_s"],
        request_burst=settings["request_burst"],
        lookups_per_min=settings["lookups_per_min"],
        sealed_sends_per_min=settings["sealed_sends_per_min"],
    )
    service = NodeService(identity, store, config, frozenset(f.id for f in plan))
    if listed is not None:
        from nymchat.node.directory import NodeDirectory

        service.directory = NodeDirectory(identity, listed)
    transports = [NymClient(frontend.url) for frontend in plan]
    runner = NodeRunner(
        service, transports, lambda frontends: _publish(data, identity, frontends), plan[0].id
    )
    metrics = None
    if settings["metrics"]:
        try:
            metrics = await serve_metrics(settings["metrics"], runner, settings["metrics_public"])
        except OSError as e:
            await store.close()
            reason = os.strerror(e.errno) if e.errno else str(e)
            raise NymchatError(
                f"cannot serve metrics on {settings['metrics']}: {reason.lower()}"
            ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_stop_signals(loop, stop.set)
    supervisors: list = [None] * len(plan)
    supervised: list = [None] * len(plan)
    if settings["nym_client_bin"]:
        from nymchat.nym.supervisor import NymClientSupervisor

        for n, frontend in enumerate(plan):
            assert frontend.nym_id is not None  # planned with the binary
            supervisors[n] = NymClientSupervisor(
                settings["nym_client_bin"], frontend.nym_id, frontend.port, data
            )
            supervisors[n].check()
        supervised = [asyncio.create_task(s.supervise(stop)) for s in supervisors]
    try:
        connected = True
        for each in zip(transports, supervisors, supervised, strict=True):
            # in order: frontend 1's failure is the one told (the nym-clients start together)
            connected = connected and await _connect(*each, stop)
        if connected:
            # every address is known: ours are claimed, contact.txt is written
            await runner.claim(now_ms())
            await runner.describe(now_ms())
            assert runner.published is not None
            if len(runner.published) == 1:
                log.warning(
                    "one frontend: this node's users cannot seal their messages (the node "
                    "learns who writes to whom); run a second nym-client and add --nym URL, "
                    "or --frontends 2 with --nym-client-bin"
                )
            contact = NodeContact.of(identity.signing_public, runner.published)
            print(f"node contact: {contact}", flush=True)
            log.info(
                "serving %d users with %d queued messages on %d frontends",
                await store.count_users(),
                await store.count_queued(),
                len(plan),
            )
            await runner.run(stop)
    finally:
        stop.set()
        for transport in transports:
            await transport.close()
        if metrics is not None:
            metrics.close()
        # (a supervisor's failure was raised by `_connect`; another's would only repeat it)
        await asyncio.gather(*(t for t in supervised if t is not None), return_exceptions=True)
        await store.close()
    log.info("stopped")


def _publish(data: Path, identity, frontends) -> None:
    """contact.txt and nym_address.txt for the live frontends' addresses (of every process
    of the node; `frontends`: id to address), in id order."""
    from nymchat.files import write_atomic
    from nymchat.protocol.contact import NodeContact

    contact = NodeContact.of(identity.signing_public, frontends)
    write_atomic(data / "contact.txt", f"{contact}\n".encode(), mode=0o644)
    lines = "".join(f"{address}\n" for address in contact.addresses)
    write_atomic(data / "nym_address.txt", lines.encode(), mode=0o644)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.errors import UsageError

    try:
        settings, origin = resolve(args, _home(args))
    except SettingsError as e:
        raise UsageError(str(e)) from None
    if args.print_config:
        return _print_config(settings, origin)
    if settings["metrics"]:
        from nymchat.node.metrics import parse_listen

        try:
            parse_listen(settings["metrics"], settings["metrics_public"])
        except ValueError as e:
            raise UsageError(str(e)) from None
    if not 0 < settings["queue_stranger_share"] <= 1:
        raise UsageError("queue-stranger-share is a fraction of the queue: more than 0, at most 1")
    if bool(settings["nym_client_bin"]) != bool(settings["nym_id"]):
        raise UsageError("--nym-client-bin and --nym-id go together")
    try:
        plan = frontends(settings)
    except SettingsError as e:
        raise UsageError(str(e)) from None
    listed = None
    if settings["directory"]:
        from nymchat.node.directory import DirectoryError, load

        try:
            listed = load(Path(settings["directory"]).expanduser())
        except DirectoryError as e:
            raise UsageError(str(e)) from None
    from nymchat.home import ensure_home, lock

    data = ensure_home(Path(settings["data"]))
    held = lock(data, "node")  # a second node would overwrite contact.txt with its address
    try:
        identity = _node_identity(data, settings)
        asyncio.run(_serve(settings, plan, identity, listed))
    finally:
        held.close()
    return 0
