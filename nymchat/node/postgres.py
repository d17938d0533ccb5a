"""The node's database on PostgreSQL (psycopg 3, async), for several node processes on one
server. Each `PostgresDatabase` holds up to three connections: one for transactions (one
at a time, an `asyncio.Lock`; savepoints are nested transactions), one in autocommit for
the single reads run outside a transaction (a context variable tells the two apart), and
one, opened at the first `notifications()`, that LISTENs on `CHANNEL`. A connection that
went away is opened again when next needed. The schema is `schema_pg/NNN_*.sql`, applied
in order under an advisory lock (processes starting at once migrate once), its version in
the one-row table `schema_version`."""

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from nymchat.node.database import (
    CHANNEL,
    LazySavepoints,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    only_reads,
)

MIGRATION_LOCK = 0x6E796D63_68617400  # pg_advisory_lock key ("nymchat\0") of migrations
CONNECT_TIMEOUT = 10  # s, unless the URL says otherwise
FAILED = "a statement of the node's transaction failed; nothing of it was committed"

# the databases whose transaction the running task is inside
_inside: contextvars.ContextVar[frozenset["PostgresDatabase"]] = contextvars.ContextVar(
    "nymchat_pg_transactions", default=frozenset()
)


@functools.lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """The store's portable SQL with psycopg's placeholders: `?` becomes `%s`. A `%` would
    be psycopg's, so none may be written in the store's SQL."""
    if "%" in sql:
        raise ValueError(f"'%' in the store's SQL (write none): {sql!r}")
    return sql.replace("?", "%s")


def migrations() -> list[tuple[int, str]]:
    """(number, SQL) of each schema file, in order."""
    files = resources.files("nymchat.node").joinpath("schema_pg")
    return sorted(
        (int(f.name.split("_", 1)[0]), f.read_text())
        for f in files.iterdir()
        if f.name.endswith(".sql")
    )


async def migrate(conn: psycopg.AsyncConnection, steps: Sequence[tuple[int, str]]) -> int:
    """Applies the `steps` newer than the database's schema, each in its own transaction,
    while holding the migration lock (`conn` in autocommit); returns the version."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        if row is None:
            await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        version = row[0] if row else 0
        newest = max((number for number, _ in steps), default=0)
        if version > newest:
            raise StoreError(
                f"the node's database has schema {version}, newer than this nymchat reads"
                f" ({newest}): run a newer nymchat"
            )
        for number, sql in steps:
            if number > version:
                async with conn.transaction():
                    await conn.execute(sql)  # no parameters: the file's statements at once
                    await conn.execute("UPDATE schema_version SET version = %s", (number,))
                version = number
        return version
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


class PostgresDatabase:
    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"

    def __init__(self, url: str):
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            # libpq's reason may quote the URL, password and all
            raise StoreError("the node's store is not a valid PostgreSQL URL") from None
        self._password = str(params.get("password") or "")
        self._where = _describe(params)
        self._options: dict[str, Any] = {"autocommit": True, "application_name": "nymchat-node"}
        if "connect_timeout" not in params:
            self._options["connect_timeout"] = CONNECT_TIMEOUT
        self._url = url
        self._writer: psycopg.AsyncConnection | None = None
        self._reader: psycopg.AsyncConnection | None = None
        self._listener: psycopg.AsyncConnection | None = None
        self._transactions = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._conflicted = False  # a savepoint in the open transaction hit a conflict
        self._pipeline: psycopg.AsyncPipeline | None = None  # the open transaction's
        self._savepoints = LazySavepoints()  # the open transaction's
        self._closed = False

    @classmethod
    async def connect(cls, url: str) -> "PostgresDatabase":
        """Connects to the database at `url` and brings its schema up to date."""
        db = cls(url)
        try:
            conn = await db._open("_writer")
            with db._errors():
                await migrate(conn, migrations())
        except BaseException:
            await db.close()
            raise
        return db

    # --- statements ---------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._run(sql, params, writes=True)
        await self._settle()
        return cursor.rowcount

    async def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._run(sql, params, writes=True)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn = await self._connection()
        await self._mark_savepoints()
        with self._errors():
            async with conn.cursor() as cursor:
                await cursor.executemany(placeholders(sql), rows)
        await self._settle()

    async def insert_rows(self, insert: str, rows: Sequence[Sequence[Any]]) -> None:
        """One array a column, unnested: a short statement of few parameters, whose
        conversion psycopg caches (it parses anew each one of over 50 parameters)."""
        arrays = [list(column) for column in zip(*rows, strict=True)]
        types = [_ARRAY_TYPES[type(column[0])] for column in arrays]
        names = [f"c{n}" for n in range(len(arrays))]
        unnest = ", ".join(f"?::{kind}" for kind in types)
        await self._run(
            f"{insert} SELECT {', '.join(names)} FROM unnest({unnest})"
            f" WITH ORDINALITY AS r({', '.join(names)}, n) ORDER BY n",
            arrays,
            writes=True,
        )

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        cursor = await self._run(sql, params, writes=not only_reads(sql))
        with self._errors():
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cursor = await self._run(sql, params, writes=not only_reads(sql))
        with self._errors():
            return await cursor.fetchall()

    async def fetch_each(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
        cursors = [
            await self._run(sql, params, writes=not only_reads(sql)) for sql, params in reads
        ]
        with self._errors():
            return [await cursor.fetchall() for cursor in cursors]

    async def _run(self, sql: str, params: Sequence[Any], writes: bool) -> psycopg.AsyncCursor:
        conn = await self._connection()
        if writes:
            await self._mark_savepoints()
        with self._errors():
            return await conn.execute(placeholders(sql), params)

    async def _settle(self) -> None:
        """In the pipelined transaction, waits for what was sent so far (so a statement's
        count is known, and its error is raised by the statement that caused it)."""
        if self._pipeline is not None and self in _inside.get():
            with self._errors():
                await self._pipeline.sync()

    async def _command(self, sql: str) -> None:
        """A command of the transaction's connection whose answer nobody waits for: in the
        pipeline, it goes out with the next statement that is waited for."""
        assert self._writer is not None
        with self._errors():
            await self._writer.execute(sql, prepare=False)

    async def _connection(self) -> psycopg.AsyncConnection:
        """The transaction's connection inside one, else the one for single reads."""
        if self in _inside.get():
            assert self._writer is not None
            return self._writer
        return await self._open("_reader")

    # --- transactions -------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self in _inside.get():
            raise RuntimeError("a transaction inside a transaction of the same database")
        async with self._transactions:
            conn = await self._open("_writer")
            self._conflicted = False
            token = _inside.set(_inside.get() | {self})
            try:
                with self._errors():
                    # Pipeline mode: BEGIN, savepoints and their release go out with the
                    # next statement whose answer is waited for, not each on its own.
                    async with conn.pipeline() as self._pipeline, conn.transaction():
                        yield
                        if self._conflicted:  # caught inside, but the rest may not commit
                            raise StoreConflict()
                        await self._check_committable(conn)
            except psycopg.Error as e:  # an error none of the statements was told of
                raise StoreError(FAILED) from e
            finally:
                self._pipeline = None
                _inside.reset(token)

    async def _check_committable(self, conn: psycopg.AsyncConnection) -> None:
        """Raises unless the transaction may commit: every statement answered (what was
        not waited for raises here), and none failed outside a savepoint rolled back (a
        COMMIT would roll it all back, without an error)."""
        assert self._pipeline is not None
        with contextlib.suppress(psycopg.errors.PipelineAborted):  # (a statement was told)
            await self._pipeline.sync()
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            raise StoreError(FAILED)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """SAVEPOINT, RELEASE and ROLLBACK TO of our own (not psycopg's nested
        transactions: those forget every prepared statement at each rollback), and lazy
        (`LazySavepoints`). A read that fails in a scope that sent no SAVEPOINT fails the
        transaction (nothing to roll back to: it is refused at its end)."""
        if self not in _inside.get():
            raise RuntimeError("a savepoint outside a transaction")
        name = self._savepoints.open()
        try:
            try:
                yield
            except BaseException as e:
                if self._savepoints.close():
                    if isinstance(e, psycopg.Error | StoreError) and self._pipeline is not None:
                        # a failed statement stops the pipeline until it is synced
                        with contextlib.suppress(psycopg.Error):
                            await self._pipeline.sync()
                    await self._command(f"ROLLBACK TO SAVEPOINT {name}")
                    await self._command(f"RELEASE SAVEPOINT {name}")
                raise
            if self._savepoints.close():
                await self._command(f"RELEASE SAVEPOINT {name}")
        except StoreConflict:
            self._conflicted = True
            raise

    async def _mark_savepoints(self) -> None:
        """Before a write: the SAVEPOINTs its scopes have not sent yet."""
        if self in _inside.get():
            for statement in self._savepoints.before_write():
                await self._command(statement)

    # --- notifications ------------------------------------------------------------

    async def notify(self, payload: str) -> None:
        # nothing to wait for; a write (a savepoint rolled back takes it back)
        await self._run("SELECT pg_notify(?, ?)", (CHANNEL, payload), writes=True)

    async def notifications(self) -> AsyncIterator[str]:
        """Ends when the database is closed."""
        conn = await self._open("_listener")
        try:
            with self._errors():
                await conn.execute(f'LISTEN "{CHANNEL}"')
                async for notice in conn.notifies():
                    own = {c.info.backend_pid for c in (self._writer, self._reader) if c}
                    if notice.pid not in own:
                        yield notice.payload
        except StoreUnavailable:
            if not self._closed:
                raise

    # --- the rest -----------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT version FROM schema_version")
        return row[0] if row else 0

    async def close(self) -> None:
        self._closed = True
        for name in ("_writer", "_reader", "_listener"):
            conn = getattr(self, name)
            setattr(self, name, None)
            if conn is not None:
                await conn.close()

    async def _open(self, name: str) -> psycopg.AsyncConnection:
        """The connection `name` (an attribute), connected again if it is not."""
        async with self._opening:
            if self._closed:
                raise StoreError("the node's database is closed")
            conn = getattr(self, name)
            if conn is None or conn.closed:
                with self._errors():
                    conn = await psycopg.AsyncConnection.connect(self._url, **self._options)
                setattr(self, name, conn)
            return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as the store's: a deadlock, a serialisation failure or a key
        another transaction took first (two processes checked, then both added: an
        integrity error) is a conflict; a connection refused, lost or cancelled makes the
        store unavailable."""
        try:
            yield
        except (
            psycopg.errors.DeadlockDetected,
            psycopg.errors.SerializationFailure,
            psycopg.IntegrityError,
        ) as e:
            raise StoreConflict() from e
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            raise StoreUnavailable(
                f"the node's database ({self._where}) cannot be reached: {self._reason(e)}"
            ) from e

    def _reason(self, error: Exception) -> str:
        """libpq's last words, on one line, without the password should they hold it."""
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[0].rsplit(" failed: ", 1)[-1] if lines else type(error).__name__
        return reason.replace(self._password, "***") if self._password else reason


_ARRAY_TYPES = {bytes: "bytea[]", int: "bigint[]"}  # a column's values as `insert_rows` takes


def _describe(params: dict[str, Any]) -> str:
    """Where the database is, as libpq will look: a Unix socket or host:port."""
    host = str(params.get("host") or params.get("hostaddr") or "")
    port = str(params.get("port") or "5432")
    where = (
        ", ".join(
            f"socket {h}/.s.PGSQL.{port}" if h.startswith("/") else f"{h}:{port}"
            for h in host.split(",")
        )
        if host
        else "the default socket"
    )
    return f"{where}, database {params['dbname']}" if params.get("dbname") else where
