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


def only_reads(sql: str) -> bool:
    """Whether a statement of the store only reads (needs no savepoint before it)."""
    return sql.startswith("SELECT")


class LazySavepoints:
    """The savepoints of a transaction, sent only when needed: a scope's SAVEPOINT goes
    out before the first write inside it (with those of the scopes around it, outermost
    first: rolling back an outer scope takes the inner's writes too), so a scope that only
    read sends none of SAVEPOINT, RELEASE and ROLLBACK TO. The backends send what it says."""

    def __init__(self) -> None:
        self._sent: list[bool] = []  # per open scope, outermost first: SAVEPOINT sent?

    def open(self) -> str:
        """Opens a scope: its savepoint's name."""
        self._sent.append(False)
        return f"s{len(self._sent)}"

    def before_write(self) -> list[str]:
        """The SAVEPOINT statements to send before a write (then taken as sent)."""
        statements = [f"SAVEPOINT s{n}" for n, sent in enumerate(self._sent, 1) if not sent]
        self._sent = [True] * len(self._sent)
        return statements

    def close(self) -> bool:
        """Closes the innermost scope: whether its SAVEPOINT was sent (and so needs its
        RELEASE, or ROLLBACK TO and RELEASE)."""
        return self._sent.pop()


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
