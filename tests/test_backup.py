"""`nymchat backup` and `nymchat restore`: the whole profile in one sealed file, carried
on elsewhere, on real mixnet and node processes."""

import contextlib
import json
import os
import sqlite3
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from procs import DIST, PASSPHRASE, User, clean_env

pytestmark = pytest.mark.cli


@pytest.fixture
def pair(net, shiv_root, tmp_path):
    mixnet, node = net
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob")]
    for user in users:
        user.register()
    return users


def nymchat(shiv_root, home, *args, passphrase=PASSPHRASE, check=True):
    """A command on `home` that needs no network."""
    out = subprocess.run(
        [str(DIST), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=clean_env(shiv_root, NYMCHAT_PASSPHRASE=passphrase),
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def texts(user, *args) -> list[str]:
    return [m["text"] for m in user.json("inbox", *args)]


def test_a_restored_profile_carries_on_both_ways_and_its_contact_sees_no_key_change(
    pair, net, shiv_root, tmp_path
):
    alice, bob = pair
    alice("send", "bob", "one")
    assert texts(bob) == ["one"]
    bob("send", "alice", "two")
    assert texts(alice) == ["two"]
    alice("contacts", "verify", "bob", "--mark")
    backup = tmp_path / "alice.backup"
    made = alice("backup", str(backup))
    assert made.stdout.startswith("backed up alice (1 contact(s)")
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    # they talk on: the ratchets move past what the backup holds
    alice("send", "bob", "three")
    assert texts(bob) == ["three"]
    bob("send", "alice", "four")
    assert texts(alice) == ["four"]

    mixnet, _ = net  # alice carries on elsewhere: a new home, a nym-client of its own
    restored = User("alice", tmp_path / "alice-restored", shiv_root, mixnet, net[1])
    nym = ("--nym", f"{mixnet.url}/alice-elsewhere")
    assert restored("restore", str(backup)).stdout.startswith("restored alice (1 contact(s)) into")
    contacts = restored.json("contacts", "list")[0]
    assert [(c["username"], c["verified"], c["key_changed"]) for c in contacts] == [
        ("bob", True, False)
    ]  # trust and history came along
    assert [
        m["text"] for m in json.loads(restored("contacts", "show", "bob", "--json").stdout)
    ] == ["one", "two"]

    # bob writes first, on a session the restore dropped (sending on it again could reuse
    # its message keys): that message is lost, and alice is told (docs/SECURITY.md)
    bob("send", "alice", "into the gap")
    gap = restored("inbox", "--json", *nym)
    assert gap.stdout == "" and "could not be read" in gap.stderr
    # alice writes: a new session, and bob reads it with her pinned key, unchanged
    restored("send", "bob", "five", *nym)
    got = bob.json("inbox")
    assert [(m["text"], m["key_changed"], m["verified"]) for m in got] == [("five", False, False)]
    shown = bob.json("contacts", "list")[0]
    assert [(c["username"], c["key_changed"]) for c in shown] == [("alice", False)]
    bob("send", "alice", "six")
    assert texts(restored, *nym) == ["six"]
    restored("send", "bob", "seven", *nym)
    assert texts(bob) == ["seven"]


def newest_session(user, contact: str) -> str:
    from nymchat import _native, keystore
    from nymchat.client.profile import Profile

    profile = Profile(user.home, keystore.unlock(user.home, PASSPHRASE))
    try:
        pickle = profile.store.sessions(contact)[0]
        return _native.Session.from_pickle(pickle, profile.store.pickle_key).id
    finally:
        profile.store.close()


def test_two_sessions_opened_at_once_still_converge_on_one(pair):
    """A late receipt on an older session does not make it current again (above), but a
    text does: both sides end up sending on one session, so its ratchet turns."""
    alice, bob = pair
    alice("lookup", "bob")
    bob("lookup", "alice")
    alice("send", "bob", "a1")  # each opens a session of their own
    bob("send", "alice", "b1")
    assert texts(alice) == ["b1"]
    assert texts(bob) == ["a1"]
    assert newest_session(alice, "bob") != newest_session(bob, "alice")  # crossed
    alice("send", "bob", "a2")
    assert texts(bob) == ["a2"]
    bob("send", "alice", "b2")
    assert texts(alice) == ["b2"]
    assert newest_session(alice, "bob") == newest_session(bob, "alice")


def test_backup_refuses_to_overwrite_and_restore_refuses_a_home_with_an_identity(
    shiv_root, tmp_path
):
    home, new, backup = tmp_path / "alice", tmp_path / "new", tmp_path / "alice.backup"
    nymchat(shiv_root, home, "keys", "new")
    nymchat(shiv_root, home, "backup", str(backup))
    again = nymchat(shiv_root, home, "backup", str(backup), check=False)
    assert again.returncode == 1 and "without --force" in again.stderr
    nymchat(shiv_root, home, "backup", str(backup), "--force")
    refused = nymchat(shiv_root, home, "restore", str(backup), check=False)
    assert refused.returncode == 1 and "already holds an identity" in refused.stderr
    wrong = nymchat(
        shiv_root, new, "restore", str(backup), passphrase="not the passphrase", check=False
    )
    assert wrong.returncode == 3 and "does not open with this passphrase" in wrong.stderr
    assert not (new / "identity.json").exists()
    altered = bytearray(backup.read_bytes())
    altered[-100] ^= 1
    backup.write_bytes(bytes(altered))
    tampered = nymchat(shiv_root, new, "restore", str(backup), check=False)
    assert tampered.returncode == 3 and "or it was altered" in tampered.stderr


def test_a_backup_is_consistent_while_another_process_writes(shiv_root, tmp_path):
    """The snapshot is SQLite's online backup: taken while a writer commits, the restored
    database holds a whole state, not a torn one."""
    home = tmp_path / "alice"
    nymchat(shiv_root, home, "keys", "new")
    nymchat(shiv_root, home, "contacts", "list")  # creates client.db
    stop = threading.Event()

    def write():
        db = sqlite3.connect(home / "client.db", isolation_level=None)
        n = 0
        while not stop.is_set():
            n += 1
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO unshown VALUES (?)", (os.urandom(16),))
                db.execute("INSERT INTO unshown VALUES (?)", (os.urandom(16),))
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for n in range(3):
            nymchat(shiv_root, home, "backup", str(tmp_path / f"b{n}"))
    finally:
        stop.set()
        writer.join()
    for n in range(3):
        restored = tmp_path / f"r{n}"
        nymchat(shiv_root, restored, "restore", str(tmp_path / f"b{n}"))
        rows = sqlite3.connect(restored / "client.db").execute("SELECT count(*) FROM unshown")
        count = rows.fetchone()[0]
        assert count > 0 and count % 2 == 0  # what the writer committed, whole


# --- the file format, sans I/O ---------------------------------------------------------


def test_a_backup_round_trips_and_binds_its_header():
    from nymchat.client import backup

    sealed = backup.seal({"format": "nymchat-keystore"}, b"database bytes", PASSPHRASE, 1, "x")
    manifest, database = backup.open_backup(sealed, PASSPHRASE)
    assert (manifest["keystore"], database) == ({"format": "nymchat-keystore"}, b"database bytes")
    header, rest = sealed.split(b"\n", 1)
    other = header.replace(b'"version":1', b'"version":1 ')  # the same header, other bytes
    with pytest.raises(backup.WrongPassphrase):
        backup.open_backup(other + b"\n" + rest, PASSPHRASE)


def test_a_backup_asking_for_a_costly_key_derivation_is_refused_before_deriving():
    from nymchat.client import backup

    sealed = backup.seal({}, b"", PASSPHRASE, 1, "x")
    for field, value in (("memlimit", 1 << 42), ("opslimit", 10**6)):
        header, rest = sealed.split(b"\n", 1)
        document = json.loads(header)
        document["kdf"][field] = value
        with pytest.raises(backup.BadBackup, match="out of range"):
            backup.open_backup(json.dumps(document).encode() + b"\n" + rest, PASSPHRASE)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=6000)
    | st.builds(lambda b: b'{"format":"nymchat-backup","version":1' + b, st.binary())
)
def test_hostile_bytes_only_raise_a_clear_error(data):
    from nymchat.client import backup

    with contextlib.suppress(backup.BadBackup, backup.WrongPassphrase):
        backup.open_backup(data, PASSPHRASE)
