"""The node's database, as its store sees it: SQL statements run through one interface
over two backends, SQLite (`nymchat.node.sqlite`: one file, one process, the default) and
PostgreSQL (`nymchat.node.postgres`: several node processes on one server). The store
writes each statement once, in the SQL both speak: `?` placeholders, `ON CONFLICT`,
`RETURNING`, sums cast to BIGINT, no blob literals; `skip_locked` and `for_update` are the
clauses that differ.

A transaction is one per process at a time (the backend serialises them); a savepoint
inside it is rolled back, and its exception re-raised, when its block raises. Statements
run outside any transaction are single reads, on PostgreSQL from a connection of their own.
"""

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from nymchat.errors import NymchatError

CHANNEL = "nymchat"  # the one PostgreSQL notification channel of a node's processes


class StoreError(NymchatError):
    message = "the node's database failed"


class StoreUnavailable(StoreError):
    """The database cannot be reached (or went away): the node waits and tries again."""

    message = "the node's database cannot be reached"


class StoreConflict(StoreError):
    """Another node process's transaction stood in the way (a deadlock or a serialisation
    failure): nothing was committed, and the whole transaction may be run again."""

    message = "a concurrent transaction conflicted; try again"


class Database(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    # appended to a subquery that picks a row to take: on PostgreSQL " FOR UPDATE SKIP
    # LOCKED" (concurrent takers get different rows, none waits for another); "" on SQLite
    skip_locked: str
    # appended to a read of rows to hold until the transaction ends, against another
    # process's change: " FOR UPDATE" on PostgreSQL; "" on SQLite (one writer at a time)
    for_update: str

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; returns the rows it changed."""
        ...

    async def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Runs a statement whose outcome nobody waits for: on PostgreSQL, inside a
        transaction, it goes out with the next statement that is waited for, and its
        error is raised there (a key another transaction took: `StoreConflict`)."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def insert_rows(self, insert: str, rows: Sequence[Sequence[Any]]) -> None:
        """`insert` ("INSERT INTO table (columns)") of `rows` (not none; bytes and ints,
        no None), in their order, as one statement whose outcome nobody waits for (`write`)."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    async def fetch_each(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
        """The rows of each of `reads` (sql, params): on PostgreSQL, inside a transaction,
        sent together and answered in one round trip."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Commits on leaving, rolls back on an exception (`StoreConflict` when another
        process's transaction was in the way)."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]: ...

    async def notify(self, payload: str) -> None:
        """Tells the other node processes `payload` on `CHANNEL` when the current
        transaction commits (nothing on SQLite: one process)."""
        ...

    def notifications(self) -> AsyncIterator[str]:
        """The payloads other processes `notify` (never any on SQLite)."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...
