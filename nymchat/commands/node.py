"""``nymchat node``: run a discovery node."""

import argparse
import json
import logging
from pathlib import Path

from nymchat.node.settings import PASSWORD_ENV, SETTINGS, SettingsError, add_arguments, resolve

__all__ = ["add_arguments", "run"]
log = logging.getLogger("nymchat.node")


def _home(args: argparse.Namespace) -> Path:
    from nymchat.home import default_home

    return Path(args.home).expanduser() if args.home else default_home()


def _password(settings: dict, new: bool) -> str:
    import os

    from nymchat.passphrase import get_passphrase

    file = settings["password_file"]
    if file is None and PASSWORD_ENV in os.environ:
        password = os.environ[PASSWORD_ENV]
        if len(password) < 8 and new:
            from nymchat.errors import PassphraseError

            raise PassphraseError("choose a node password of at least 8 characters")
        return password
    return get_passphrase(Path(file).expanduser() if file else None, new=new,
                          env_var=PASSWORD_ENV)


def _node_identity(data: Path, settings: dict):
    from nymchat import keystore
    from nymchat.home import ensure_home

    ensure_home(data)
    if keystore.path_in(data).exists():
        sealed = keystore.read_sealed(data)
        return keystore.unlock(data, _password(settings, new=False), sealed)
    log.info("first run: creating the node key in %s", data)
    return keystore.create(data, _password(settings, new=True))


def _print_config(values: dict, origin: dict) -> int:
    for s in SETTINGS:
        print(f"{s.name} = {json.dumps(values[s.name])}  # {origin[s.name]}")
    return 0


async def _connect(transport, patient: bool) -> None:
    """Connects; a nym-client the node has just started gets a minute to come up."""
    import asyncio

    from nymchat.nym.transport import NymClientUnavailable

    for _ in range(60 if patient else 1):
        try:
            await transport.start()
            return
        except NymClientUnavailable:
            if not patient:
                raise
            await asyncio.sleep(1)
    await transport.start()


async def _serve(settings: dict, identity) -> None:
    import asyncio

    from nymchat.files import write_atomic
    from nymchat.node.metrics import serve as serve_metrics
    from nymchat.node.runner import NodeRunner
    from nymchat.node.service import NodeConfig, NodeService
    from nymchat.node.store import NodeStore
    from nymchat.nym.transport import NymClient
    from nymchat.protocol.contact import NodeContact
    from nymchat.stopping import on_stop_signals

    data = Path(settings["data"])
    store = NodeStore(data / "node.db")
    config = NodeConfig(
        pow_difficulty=settings["pow_difficulty"], freshness_ms=settings["freshness"] * 1000,
        retention_ms=settings["retention_days"] * 86_400_000,
        queue_max_messages=settings["queue_max_messages"],
        queue_max_bytes=settings["queue_max_bytes"], max_payload=settings["max_payload"],
        queue_sender_share=settings["queue_sender_share"],
        queue_stranger_share=settings["queue_stranger_share"],
        node_queue_max_bytes=settings["node_queue_max_bytes"],
        requests_per_s=settings["requests_per_s"], request_burst=settings["request_burst"],
        lookups_per_min=settings["lookups_per_min"],
        lookups_unregistered_per_min=settings["lookups_unregistered_per_min"])
    service = NodeService(identity, store, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_stop_signals(loop, stop.set)
    supervisor = None
    if settings["nym_client_bin"]:
        from urllib.parse import urlsplit

        from nymchat.node.supervisor import NymClientSupervisor

        supervisor = NymClientSupervisor(settings["nym_client_bin"], settings["nym_id"],
                                         urlsplit(settings["nym"]).port or 1977, data)
        supervised = asyncio.create_task(supervisor.supervise(stop))
    transport = NymClient(settings["nym"])
    await _connect(transport, patient=supervisor is not None)
    try:
        contact = NodeContact(identity.signing_public, transport.address)
        write_atomic(data / "contact.txt", f"{contact}\n".encode(), mode=0o644)
        write_atomic(data / "nym_address.txt", f"{transport.address}\n".encode(), mode=0o644)
        print(f"node contact: {contact}", flush=True)
        log.info("serving %d users with %d queued messages", store.count_users(),
                 store.count_queued())
        runner = NodeRunner(service, transport)
        metrics = await serve_metrics(settings["metrics"], runner) if settings["metrics"] \
            else None
        await runner.run(stop)
        if metrics is not None:
            metrics.close()
    finally:
        await transport.close()
    if supervisor is not None:
        await supervised
    store.close()
    log.info("stopped")


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
            parse_listen(settings["metrics"])
        except ValueError as e:
            raise UsageError(str(e)) from None
    for share in ("queue_sender_share", "queue_stranger_share"):
        if not 0 < settings[share] <= 1:
            raise UsageError(f"{share.replace('_', '-')} is a fraction of the queue: more "
                             "than 0, at most 1")
    if bool(settings["nym_client_bin"]) != bool(settings["nym_id"]):
        raise UsageError("--nym-client-bin and --nym-id go together")
    identity = _node_identity(Path(settings["data"]), settings)
    asyncio.run(_serve(settings, identity))
    return 0
