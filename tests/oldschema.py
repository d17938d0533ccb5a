"""SQLite node databases as an older nymchat left them, for the migration tests."""

import sqlite3
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

# the SQL functions the migrations call
FUNCTIONS = ("name_skeleton", "name_hash", "skeleton_hash", "seen_key", "route_frontend")


def sqlite_at_schema(
    path: Path | str, version: int, functions: Mapping[str, Callable] | None = None
) -> sqlite3.Connection:
    """A node database at `path` made by the migrations up to `version`, open to be
    filled (the caller sets `PRAGMA user_version`). The SQL functions the migrations call
    are `functions`' (the others return what they are given)."""
    db = sqlite3.connect(path)
    for name in FUNCTIONS:
        db.create_function(name, 1, (functions or {}).get(name, lambda value: value))
    files = resources.files("nymchat.node").joinpath("schema")
    for schema in sorted(files.iterdir(), key=lambda f: f.name):
        if schema.name.endswith(".sql") and int(schema.name.split("_")[0]) <= version:
            db.executescript(schema.read_text())
    return db
