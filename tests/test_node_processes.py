"""Several node processes as one node (docs/OPERATIONS.md, "Several node processes"): the
frontend ids each takes (`--first-frontend`), the one node key they share (`--key-file`),
their frontends claimed and heartbeaten in the store, the descriptor of every live one,
pushes across processes, shared limits, and a process killed mid-traffic."""

import argparse
import asyncio
import os
import signal
import time

import pytest
from nodeclient import Anonymous, Client
from procs import NodeProcess

from nymchat import _native
from nymchat.node.settings import add_arguments, frontends, resolve
from nymchat.node.store import open_sqlite
from nymchat.protocol.contact import NodeContact

# --- settings --------------------------------------------------------------------------


def plan(tmp_path, *argv: str, env: dict | None = None) -> list[tuple[int, str, str | None]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        values, _ = resolve(parser.parse_args(["--data", str(tmp_path), *argv]), tmp_path)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return [(f.id, f.url, f.nym_id) for f in frontends(values)]


def test_first_frontend_numbers_this_process_frontends_from_it(tmp_path):
    two = ("--nym", "ws://127.0.0.1:1/a", "--nym", "ws://127.0.0.1:2/b")
    assert plan(tmp_path, *two) == [
        (1, "ws://127.0.0.1:1/a", None),
        (2, "ws://127.0.0.1:2/b", None),
    ]
    assert plan(tmp_path, *two, "--first-frontend", "3") == [
        (3, "ws://127.0.0.1:1/a", None),
        (4, "ws://127.0.0.1:2/b", None),
    ]
    assert plan(tmp_path, env={"NYMCHAT_NODE_FIRST_FRONTEND": "5"})[0][0] == 5
    (tmp_path / "node.toml").write_text("first_frontend = 7\n")
    assert plan(tmp_path)[0][0] == 7
    # supervised nym-clients keep this process's own ports and --id names
    supervised = ("--nym-client-bin", "/bin/true", "--nym-id", "me", "--first-frontend", "3")
    assert plan(tmp_path, *supervised) == [
        (3, "ws://127.0.0.1:1977", "me"),
        (4, "ws://127.0.0.1:1978", "me-2"),
    ]


@pytest.mark.parametrize("first", ["0", "65535"])
def test_frontend_ids_beyond_a_route_are_refused(tmp_path, first):
    from nymchat.node.settings import SettingsError

    two = ("--nym", "ws://127.0.0.1:1/a", "--nym", "ws://127.0.0.1:2/b")
    with pytest.raises(SettingsError, match="frontend ids are 1 to 65535"):
        plan(tmp_path, *two, "--first-frontend", first)


# --- the frontends' registry in the store -----------------------------------------------


def claims(store, process, addresses, now, live_after):
    async def claim():
        async with store.transaction():
            return await store.claim_frontends(process, addresses, now, live_after)

    return asyncio.run(claim())


def registry_contract(store) -> None:
    """What every backend's store does with the frontends of the node's processes."""
    assert claims(store, "a", {1: "addr-1", 2: "addr-2"}, 1_000, 0) == []
    # another live process may not take an id with another address (the others it
    # claims are its; a caller refused rolls back)...
    assert claims(store, "b", {2: "addr-x", 3: "addr-3"}, 2_000, 1_000) == [2]
    # ...but may take it back with the same address (a process started again)
    assert claims(store, "b", {2: "addr-2"}, 3_000, 1_000) == []
    assert claims(store, "a", {1: "addr-1"}, 4_000, 1_000) == []  # a's heartbeat
    live = asyncio.run(store.live_frontends(1_500))
    assert live == [(1, "addr-1"), (2, "addr-2"), (3, "addr-3")]
    assert asyncio.run(store.live_frontends(3_500)) == [(1, "addr-1")]
    # once a's heartbeat is old, its ids are free
    assert claims(store, "b", {1: "addr-y"}, 40_000, 10_000) == []
    assert asyncio.run(store.live_frontends(40_000)) == [(1, "addr-y")]


def test_a_frontend_id_is_one_live_process_s_and_the_live_ones_are_listed():
    registry_contract(open_sqlite(":memory:", os.urandom(32)))


def test_a_frontend_id_is_one_live_process_s_on_postgresql(pg_url):
    from nymchat.node.store import open_store

    async def opened():
        return await open_store(pg_url, os.urandom(32))

    store = asyncio.run(opened())
    try:
        registry_contract(store)
    finally:
        asyncio.run(store.close())


# --- node processes ------------------------------------------------------------------------


def node(start_node, mixnet, data, name, *args):
    return start_node(mixnet, *args, data=data, name=name)


def test_a_key_file_elsewhere_is_made_once_then_only_read(start_mixnet, start_node, tmp_path):
    """The first process makes the key in --key-file; a second one, on a read-only copy
    of it and a data directory of its own, is the same node (the same key)."""
    mixnet = start_mixnet()
    key_dir = tmp_path / "key"
    key_dir.mkdir()
    key = key_dir / "node-key.json"
    one = node(start_node, mixnet, tmp_path / "one", "one", "--key-file", str(key))
    assert key.exists() and not (one.data / "identity.json").exists()
    assert key.stat().st_mode & 0o777 == 0o600
    written = key.read_bytes(), key.stat().st_mtime_ns
    one.stop()
    key.chmod(0o400)
    key_dir.chmod(0o500)  # nothing may be written beside it either
    try:
        two = node(start_node, mixnet, tmp_path / "two", "two", "--key-file", str(key))
        assert NodeContact.parse(two.contact).key == NodeContact.parse(one.contact).key
        assert not (two.data / "identity.json").exists()
        two.stop()
    finally:
        key_dir.chmod(0o700)
    assert (key.read_bytes(), key.stat().st_mtime_ns) == written
