"""`nymchat node backup DEST` and `nymchat node restore SRC`: online copies of a node's
SQLite database and their restore, with the real dist/nymchat."""

import asyncio
import json
import sqlite3
import stat

import pytest
from nodeclient import Anonymous, Client, run
from test_first_steps import nymchat

from nymchat import _native
from nymchat.database import newest_schema
from nymchat.protocol.wire import ErrorCode, Kind

pytestmark = pytest.mark.cli

NEWEST = newest_schema("nymchat.node")


def users(database) -> int:
    db = sqlite3.connect(database)
    try:
        return db.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def backed_up(start_mixnet, start_node, shiv_root, tmp_path):
    """A stopped node (alice registered) and a backup of its database."""
    mixnet, data = start_mixnet(), tmp_path / "node"
    node = start_node(mixnet, data=data)

    async def register():
        async with Client(f"{mixnet.url}/alice", node.contact) as alice:
            assert (await alice.register("alice")).kind is Kind.REGISTERED

    run(register())
    node.stop()
    dest = tmp_path / "node.backup"
    out = nymchat(shiv_root, "node", "backup", str(dest), "--data", str(data))
    assert out.returncode == 0, out.stderr
    return data, dest


def test_a_backup_taken_while_the_node_serves_restores_its_users_and_queue(
    start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet, data, dest = start_mixnet(), tmp_path / "node", tmp_path / "backups" / "node.db"
    dest.parent.mkdir()
    node = start_node(mixnet, data=data)
    alice_identity = _native.Identity.generate()
    accepted = []

    async def before_and_during():
        async with (
            Client(f"{mixnet.url}/alice", node.contact, alice_identity) as alice,
            Anonymous(f"{mixnet.url}/someone", node.contact) as someone,
        ):
            assert (await alice.register("alice")).kind is Kind.REGISTERED
            assert (await someone.seal("alice", b"before", work=16)).kind is Kind.ACCEPTED

            async def traffic():
                while True:
                    sent = await someone.seal("alice", b"during", work=16)
                    accepted.append(sent.kind is Kind.ACCEPTED)

            sending = asyncio.create_task(traffic())
            out = await asyncio.to_thread(
                nymchat, shiv_root, "node", "backup", str(dest), "--data", str(data), "--json"
            )
            sending.cancel()
            async with Client(f"{mixnet.url}/carol", node.contact) as carol:
                assert (await carol.register("carol")).kind is Kind.REGISTERED
            return out

    out = run(before_and_during())
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["users"] == 1  # alice; carol came after
    assert 1 <= summary["queued_messages"] <= 1 + len(accepted)
    assert summary["schema_version"] == NEWEST
    assert summary["key_file"] == str(data / "identity.json")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert all(accepted)  # the node answered throughout
    node.stop()

    out = nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert "1 user(s)" in out.stdout and "node.db.before-restore" in out.stdout
    assert users(data / "node.db.before-restore") == 2  # what it replaced: alice and carol
    assert stat.S_IMODE((data / "node.db").stat().st_mode) == 0o600

    node = start_node(mixnet, data=data)

    async def after():
        async with (
            Client(f"{mixnet.url}/alice", node.contact, alice_identity) as alice,
            Anonymous(f"{mixnet.url}/someone", node.contact) as someone,
        ):
            assert (await someone.lookup("alice")).kind is Kind.BUNDLE
            assert (await someone.lookup("carol")).body["code"] == ErrorCode.NOT_FOUND
            fetched = await alice.request(Kind.FETCH, max=100)
            assert fetched.body["queued"] == summary["queued_messages"]
            payloads = set()
            while len(payloads) < 1 or b"before" not in payloads:
                push = await alice.push()
                if push.kind is Kind.DELIVER:
                    payloads.add(push.body["payload"])
            assert payloads <= {b"before", b"during"}

    run(after())


def test_restore_is_refused_while_the_node_runs(start_mixnet, start_node, shiv_root, backed_up):
    data, dest = backed_up
    node = start_node(start_mixnet(), data=data)
    before = (data / "node.db").stat().st_ino  # a restore renames a new file over it
    out = nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data))
    assert out.returncode == 8, out.stderr  # busy
    assert f"a node is running on {data}" in out.stderr
    assert not (data / "node.db.before-restore").exists()
    assert (data / "node.db").stat().st_ino == before
    node.stop()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda path: path.write_text("not a database\n"), "is not a nymchat node database"),
        (
            lambda path: sqlite3.connect(path).execute("CREATE TABLE notes (x)"),
            "it lacks the node's tables",
        ),
    ],
    ids=["text", "other-sqlite"],
)
def test_restore_refuses_a_file_that_is_not_a_node_database(
    shiv_root, backed_up, tmp_path, make, said
):
    data, _ = backed_up
    source = tmp_path / "other"
    make(source)
    before = (data / "node.db").read_bytes()
    out = nymchat(shiv_root, "node", "restore", str(source), "--data", str(data))
    assert out.returncode == 1 and said in out.stderr
    assert (data / "node.db").read_bytes() == before
    assert not (data / "node.db.before-restore").exists()
    assert [p.name for p in data.iterdir() if p.name.endswith(".tmp")] == []


def test_restore_refuses_a_backup_of_a_newer_schema(shiv_root, backed_up):
    data, dest = backed_up
    db = sqlite3.connect(dest)
    db.execute(f"PRAGMA user_version = {NEWEST + 1}")
    db.close()
    out = nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data))
    assert out.returncode == 1
    assert f"node schema {NEWEST + 1}, newer than this nymchat knows" in out.stderr
    assert not (data / "node.db.before-restore").exists()


def test_restore_refuses_a_damaged_backup(shiv_root, backed_up):
    data, dest = backed_up
    db = sqlite3.connect(dest)
    size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'one_time_keys'").fetchone()[
        0
    ]
    db.close()
    with dest.open("r+b") as f:  # a page the counts do not read, scribbled over
        f.seek((root - 1) * size)
        f.write(b"\xff" * size)
    out = nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data))
    assert out.returncode == 1
    assert f"{dest} is damaged" in out.stderr, out.stderr
    assert not (data / "node.db.before-restore").exists()


def test_a_backup_never_overwrites_a_file_without_force(shiv_root, backed_up):
    data, dest = backed_up
    dest.write_bytes(b"precious")
    out = nymchat(shiv_root, "node", "backup", str(dest), "--data", str(data))
    assert out.returncode == 1 and f"{dest} exists" in out.stderr
    assert dest.read_bytes() == b"precious"
    out = nymchat(shiv_root, "node", "backup", str(dest), "--data", str(data), "--force")
    assert out.returncode == 0, out.stderr
    assert users(dest) == 1
    assert "keep" in out.stdout and str(data / "identity.json") in out.stdout


def test_a_second_restore_keeps_the_first_replaced_file(shiv_root, backed_up):
    data, dest = backed_up
    assert nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data)).returncode == 0
    out = nymchat(shiv_root, "node", "restore", str(dest), "--data", str(data))
    assert out.returncode == 1 and "node.db.before-restore exists" in out.stderr


def test_the_data_directory_comes_from_home_as_for_the_node(shiv_root, backed_up, tmp_path):
    _, dest = backed_up
    home = tmp_path / "home"
    out = nymchat(shiv_root, "--home", str(home), "node", "restore", str(dest))
    assert out.returncode == 0, out.stderr
    assert users(home / "node" / "node.db") == 1
    assert "holds no node key" in out.stderr  # the key file is not in a backup
    out = nymchat(shiv_root, "node", "backup", str(tmp_path / "again"), NYMCHAT_HOME=str(home))
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("given", ["flag", "environment"])
def test_a_postgresql_store_is_refused_with_a_pointer_to_its_own_tools(shiv_root, tmp_path, given):
    url = "postgresql://nymchat:secret@/nymchat?host=/run/postgresql"
    flag = ["--store", url] if given == "flag" else []
    env = {"NYMCHAT_NODE_STORE": url} if given == "environment" else {}
    for action in ("backup", "restore"):
        out = nymchat(
            shiv_root, "node", action, str(tmp_path / "file"), "--data", str(tmp_path), *flag, **env
        )
        assert out.returncode == 2
        assert "back it up with pg_dump, restore it with pg_restore" in out.stderr
        assert "secret" not in out.stderr
    assert not (tmp_path / "file").exists()


def test_a_store_path_of_its_own_is_the_file_restored_and_backed_up(shiv_root, backed_up, tmp_path):
    data, dest = backed_up
    elsewhere = tmp_path / "elsewhere.db"
    out = nymchat(
        shiv_root, "node", "restore", str(dest), "--data", str(data), "--store", str(elsewhere)
    )
    assert out.returncode == 0, out.stderr
    assert users(elsewhere) == 1
    assert not (data / "node.db.before-restore").exists()  # DATA/node.db is not the store
    copy = tmp_path / "copy"
    out = nymchat(shiv_root, "node", "backup", str(copy), "--store", str(elsewhere))
    assert out.returncode == 0, out.stderr
    assert users(copy) == 1
