"""Versioned SQLite schemas: numbered `.sql` files in a package's `schema/` folder, each
applied once, in order, in its own transaction; `PRAGMA user_version` records the last."""

import sqlite3
from importlib import resources


def _statements(sql: str) -> list[str]:
    """The statements of a schema file (comments dropped: they may hold semicolons)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrate(db: sqlite3.Connection, package: str) -> int:
    """Brings `db` (opened with isolation_level=None) up to date; returns its version."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    files = resources.files(package).joinpath("schema")
    for number, f in sorted((int(f.name.split("_", 1)[0]), f) for f in files.iterdir()
                            if f.name.endswith(".sql")):
        if number <= version:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(f.read_text()):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        version = number
    return version
