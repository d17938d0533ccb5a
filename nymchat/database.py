"""SQLite as the node and the client use it: WAL, explicit transactions, and versioned
schemas (numbered `.sql` files in a package's `schema/` folder, each applied once, in
order, in its own transaction; `PRAGMA user_version` records the last)."""

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from nymchat.errors import NymchatError


def open_database(
    path: Path | str,
    package: str,
    *,
    synchronous: str,
    functions: dict[str, Callable] | None = None,
) -> sqlite3.Connection:
    """Opens (creating, mode 0600) and migrates the database of `package`; `functions`
    (one argument each) are callable from SQL, the schema files included."""
    if str(path) != ":memory:" and not Path(path).exists():
        Path(path).touch(mode=0o600)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")  # another process may be writing
    for name, function in (functions or {}).items():
        db.create_function(name, 1, function, deterministic=True)
    migrate(db, package)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(sql: str) -> list[str]:
    """The statements of a schema file (comments dropped: they may hold semicolons)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _schema_files(package: str) -> list[tuple[int, Traversable]]:
    files = resources.files(package).joinpath("schema")
    return sorted(
        (int(f.name.split("_", 1)[0]), f) for f in files.iterdir() if f.name.endswith(".sql")
    )


def newest_schema(package: str) -> int:
    """The schema version this nymchat brings `package`'s databases to (its last file)."""
    return _schema_files(package)[-1][0]


def migrate(db: sqlite3.Connection, package: str) -> int:
    """Brings `db` (opened with isolation_level=None) up to date; returns its version.
    Refuses a database of a newer schema: an older nymchat must not write what it cannot
    read."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    steps = _schema_files(package)
    if version > steps[-1][0]:
        raise NymchatError(
            f"the database is of schema {version}, newer than this nymchat reads "
            f"({steps[-1][0]}): run a newer nymchat"
        )
    for number, f in steps:
        if number <= version:
            continue
        with transaction(db):
            for statement in _statements(f.read_text()):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        version = number
    return version
