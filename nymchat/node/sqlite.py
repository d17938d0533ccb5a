"""The node's database on SQLite (`Database`): one file, one node process. WAL,
synchronous NORMAL, secure_delete, foreign keys and the migrations of `schema/` as
`nymchat.database` opens them. The async methods call sqlite3 directly: nothing suspends
inside a transaction, so no other task of the process runs in the middle of one."""

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from nymchat.database import open_database
from nymchat.node.database import LazySavepoints, only_reads

HASHED_SCHEMA = 6  # the first schema version with names only as keyed hashes


def _schema_version(path: Path | str) -> int:
    if str(path) == ":memory:" or not Path(path).exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


class SqliteDatabase:
    dialect = "sqlite"
    skip_locked = ""
    for_update = ""

    def __init__(self, path: Path | str, functions: Mapping[str, Callable]):
        """Opens (creating, mode 0600) and migrates the node's database at `path`;
        `functions` are the SQL functions the migrations need."""
        self.path = path
        before = _schema_version(path)
        # NORMAL in WAL mode: a commit survives the process being killed; only a power
        # loss may take the last ones back. FULL would fsync every batch.
        self.connection = open_database(
            path, "nymchat.node", synchronous="NORMAL", functions=dict(functions)
        )
        # What is deleted is overwritten, so no freed page keeps a payload or a route.
        self.connection.execute("PRAGMA secure_delete = ON")
        if 0 < before < HASHED_SCHEMA:
            # The migration freed pages that held names and senders in clear.
            self.connection.execute("VACUUM")
            self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._savepoints = LazySavepoints()

    def _run(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        if not only_reads(sql):
            for statement in self._savepoints.before_write():
                self.connection.execute(statement)
        return self.connection.execute(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(sql, params).rowcount

    async def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params)

    def _run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for statement in self._savepoints.before_write():
            self.connection.execute(statement)
        self.connection.executemany(sql, rows)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._run_many(sql, rows)

    async def insert_rows(self, insert: str, rows: Sequence[Sequence[Any]]) -> None:
        self._run_many(f"{insert} VALUES ({', '.join('?' * len(rows[0]))})", rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self._run(sql, params).fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._run(sql, params).fetchall()

    async def fetch_each(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
        return [self._run(sql, params).fetchall() for sql, params in reads]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Lazy (`LazySavepoints`): a scope that only read sends no statement."""
        name = self._savepoints.open()
        try:
            yield
        except BaseException:
            if self._savepoints.close():
                self.connection.execute(f"ROLLBACK TO {name}")
                self.connection.execute(f"RELEASE {name}")
            raise
        if self._savepoints.close():
            self.connection.execute(f"RELEASE {name}")

    async def notify(self, payload: str) -> None:
        """Nothing: one process holds the file, and it knows."""

    async def notifications(self) -> AsyncIterator[str]:
        return
        yield

    async def schema_version(self) -> int:
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    async def close(self) -> None:
        self.connection.close()
