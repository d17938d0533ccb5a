"""Backups of the node's SQLite database, and their restore.

A backup is an online copy: the sqlite3 backup API copies the database in steps, all from
one read snapshot held across them (in WAL mode it blocks no writer, and the node's writes
meanwhile do not restart the copy). A restore goes into a stopped node's data directory
(the caller holds the node's lock), keeping the file it replaces.

The node key is not in the database, and its names are hashed under it: a backup is of use
only with the node's key file and its password."""

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from nymchat.database import newest_schema
from nymchat.errors import NymchatError

STEP_PAGES = 1024  # pages copied per step of the backup API
NODE_TABLES = frozenset({"users", "one_time_keys", "queue"})  # in every schema version
KEPT_SUFFIX = ".before-restore"


@dataclass(frozen=True)
class Summary:
    size: int  # bytes
    users: int
    queued: int  # messages
    schema_version: int


def backup(source: Path, dest: Path, *, force: bool) -> Summary:
    """Copies the node database `source` to `dest` (mode 0600), which must not exist
    unless `force`."""
    if not source.is_file():
        raise NymchatError(f"no node database at {source}: the node creates it when it starts")
    if dest.exists() and not force:
        raise NymchatError(f"{dest} exists; nymchat does not overwrite it without --force")
    if not dest.parent.is_dir():
        raise NymchatError(f"cannot write {dest}: {dest.parent} is not a directory")
    return _install(source, dest, check=False, replace=force)


def restore(source: Path, target: Path) -> Summary:
    """Replaces the node database `target` (the node stopped) with the backup `source`,
    once checked; the file replaced is kept beside it (`kept(target)`)."""
    if kept(target).exists():
        raise NymchatError(f"{kept(target)} exists, from an earlier restore: move it away first")
    if not source.is_file():
        raise NymchatError(f"cannot read {source}: no such file")
    return _install(source, target, check=True, replace=True)


def kept(target: Path) -> Path:
    return target.with_name(target.name + KEPT_SUFFIX)


def _install(source: Path, target: Path, *, check: bool, replace: bool) -> Summary:
    """Copies `source` to a new file beside `target`, checks the copy and renames it over
    `target` (a restore keeps the old one), or links it there if `not replace`."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _copy(source, tmp)
        summary = _inspect(tmp, source, check=check)
        if replace:
            if check:
                _keep(target)
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # unlike a rename, never replaces a file made meanwhile
            except FileExistsError:
                raise NymchatError(
                    f"{target} exists; nymchat does not overwrite it without --force"
                ) from None
        _sync(target.parent)
    except sqlite3.OperationalError as e:  # locked, unreadable
        raise NymchatError(f"cannot read {source}: {e}") from None
    except sqlite3.DatabaseError as e:  # not a database, malformed
        raise NymchatError(f"{source} is not a nymchat node database: {e}") from None
    except OSError as e:
        raise NymchatError(f"cannot write {target}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return summary


def _copy(source: Path, path: Path) -> None:
    """Copies the database `source`, as of one snapshot, into the new file `path` (0600):
    one file, in rollback-journal mode, synced."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        dst = sqlite3.connect(path, isolation_level=None)
        try:
            src.execute("BEGIN")
            try:
                src.execute("SELECT count(*) FROM sqlite_master")  # the snapshot starts here
                src.backup(dst, pages=STEP_PAGES)
            finally:
                src.execute("ROLLBACK")
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    _sync(path)


def _inspect(path: Path, name: Path, *, check: bool) -> Summary:
    """What the copy at `path` (of `name`) holds; with `check`, refuses one damaged or of a
    schema newer than this nymchat's."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not tables >= NODE_TABLES:
            raise NymchatError(f"{name} is not a nymchat node database: it lacks the node's tables")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if check:
            if version > (known := newest_schema("nymchat.node")):
                raise NymchatError(
                    f"{name} is of node schema {version}, newer than this nymchat knows "
                    f"({known}): restore it with the nymchat that made it"
                )
            problem = db.execute("PRAGMA integrity_check(1)").fetchone()[0]
            if problem != "ok":
                raise NymchatError(f"{name} is damaged: {problem}")
        return Summary(
            size=path.stat().st_size,
            users=db.execute("SELECT count(*) FROM users").fetchone()[0],
            queued=db.execute("SELECT count(*) FROM queue").fetchone()[0],
            schema_version=version,
        )
    finally:
        db.close()


def _keep(target: Path) -> None:
    """Links the node database `target`, its WAL folded in, to `kept(target)`."""
    if not target.exists():
        return
    try:
        db = sqlite3.connect(target, isolation_level=None)
        try:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        raise NymchatError(f"cannot read {target}: {e}; move it away, then restore") from None
    if busy:
        raise NymchatError(f"{target} is in use: stop what reads it, then restore")
    for sidecar in ("-wal", "-shm"):  # the WAL is empty now: the restored file starts anew
        target.with_name(target.name + sidecar).unlink(missing_ok=True)
    os.link(target, kept(target))


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
