"""PostgresDatabase against a real PostgreSQL cluster (the `pg_url` fixture: a fresh
database per test): placeholders, transactions and savepoints, conflicts, notifications,
reads beside an open transaction, an unreachable server, migrations, and a schema with
the tables, columns, keys and indexes of SQLite's."""

import asyncio
import subprocess
import sys

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.node.database import StoreConflict, StoreError, StoreUnavailable
from nymchat.node.postgres import (
    MIGRATION_LOCK,
    PostgresDatabase,
    migrate,
    migrations,
    placeholders,
)
from nymchat.node.store import open_sqlite

TABLE = (
    "CREATE TABLE IF NOT EXISTS t"
    " (k INTEGER PRIMARY KEY, v BYTEA, n BIGINT, x DOUBLE PRECISION, s TEXT)"
)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def opened(url: str) -> PostgresDatabase:
    db = await PostgresDatabase.connect(url)
    await db.execute(TABLE)
    return db


# --- placeholders -----------------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="%")))
def test_question_marks_become_psycopg_placeholders_and_nothing_else_changes(sql):
    rewritten = placeholders(sql)
    assert rewritten.count("%s") == sql.count("?")
    assert rewritten.replace("%s", "?") == sql


def test_a_percent_sign_in_the_stores_sql_is_refused():
    with pytest.raises(ValueError, match="'%'"):
        placeholders("SELECT 1 WHERE s LIKE 'a%'")


def test_values_of_every_kind_the_store_uses_go_in_and_come_back(pg_url):
    async def go():
        db = await opened(pg_url)
        row = (1, b"\x00\xffbytes", 2**62, 0.25, "text")
        assert await db.execute("INSERT INTO t (k, v, n, x, s) VALUES (?, ?, ?, ?, ?)", row) == 1
        await db.execute("INSERT INTO t (k, v) VALUES (?, ?)", (2, b""))
        assert await db.fetchone("SELECT k, v, n, x, s FROM t WHERE k = ?", (1,)) == row
        assert await db.fetchone("SELECT v, n FROM t WHERE k = ?", (2,)) == (b"", None)
        assert await db.fetchone("SELECT k FROM t WHERE k = ?", (3,)) is None
        await db.executemany("INSERT INTO t (k, n) VALUES (?, ?)", [(10, 1), (11, 2), (12, 3)])
        total = "SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM t WHERE k >= ?"
        assert await db.fetchone(total, (10,)) == (6,)
        assert await db.fetchall("SELECT k FROM t WHERE k IN (?, ?) ORDER BY k", (11, 12)) == [
            (11,),
            (12,),
        ]
        assert await db.execute("UPDATE t SET n = n + 1 WHERE k >= ?", (10,)) == 3
        await db.close()

    run(go())


# --- transactions -----------------------------------------------------------------------


def test_a_transaction_commits_on_leaving_and_rolls_back_on_an_exception(pg_url):
    async def go():
        db = await opened(pg_url)
        async with db.transaction():
            await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
        with pytest.raises(KeyError):
            async with db.transaction():
                await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
                raise KeyError("no")
        assert await db.fetchall("SELECT k FROM t") == [(1,)]
        await db.close()

    run(go())


def test_a_savepoint_rolled_back_keeps_the_rest_of_the_transaction(pg_url):
    async def go():
        db = await opened(pg_url)
        async with db.transaction():
            await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
            with pytest.raises(KeyError):
                async with db.savepoint():
                    await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
                    raise KeyError("no")
            async with db.savepoint():
                await db.execute("INSERT INTO t (k) VALUES (?)", (3,))
        assert await db.fetchall("SELECT k FROM t ORDER BY k") == [(1,), (3,)]
        with pytest.raises(RuntimeError):
            async with db.savepoint():
                pass
        await db.close()

    run(go())


def test_a_statement_failing_in_a_savepoint_goes_back_with_it_and_the_rest_commits(pg_url):
    """In the pipelined transaction too: the error is the failing statement's, raised in
    its savepoint, and the statements after that savepoint run and commit."""

    async def go():
        db = await opened(pg_url)
        async with db.transaction():
            await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
            for fails in (
                lambda: db.fetchone("SELECT k / 0 FROM t"),
                lambda: db.execute("UPDATE t SET n = k / 0"),
            ):
                with pytest.raises(psycopg.errors.DivisionByZero):
                    async with db.savepoint():
                        await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
                        await fails()
            async with db.savepoint():
                await db.execute("INSERT INTO t (k) VALUES (?)", (3,))
            assert await db.fetchall("SELECT k FROM t ORDER BY k") == [(1,), (3,)]
        assert await db.fetchall("SELECT k FROM t ORDER BY k") == [(1,), (3,)]
        await db.close()

    run(go())


def test_a_transaction_a_statement_failed_in_outside_a_savepoint_does_not_commit(pg_url):
    """PostgreSQL ends such a transaction in a rollback at COMMIT, without an error: the
    store says so (StoreError), so nothing of it is taken for committed."""

    async def go():
        db = await opened(pg_url)
        for fails in ("SELECT k / 0 FROM t", "UPDATE t SET n = k / 0"):
            with pytest.raises(StoreError, match="nothing of it was committed"):
                async with db.transaction():
                    await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
                    with pytest.raises(psycopg.errors.DivisionByZero):
                        await db.fetchall(fails) if fails.startswith(
                            "SELECT"
                        ) else await db.execute(fails)
            assert await db.fetchall("SELECT k FROM t") == []
        async with db.transaction():  # and the connection serves the next one
            await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
        assert await db.fetchall("SELECT k FROM t") == [(2,)]
        await db.close()

    run(go())


def test_what_a_batch_read_ahead_as_absent_and_another_store_wrote_meanwhile_conflicts(pg_url):
    """A request id or a message the batch read ahead as absent is written without
    waiting: if another process wrote it meanwhile, the batch is a conflict (run again,
    it finds the other's), never a second answer or a second copy."""
    from nodeclient import bundle

    from nymchat import _native
    from nymchat.node.store import open_store

    async def go():
        a, b = await open_store(pg_url, bytes(32)), await open_store(pg_url, bytes(32))
        someone = _native.Identity.generate()
        bob = await a.add_user("bob", someone.signing_public, bundle(someone), None, 0)
        with pytest.raises(StoreConflict):
            async with a.transaction():
                await a.preload([b"id"], [], [bob], [(bob, b"m" * 16)])
                async with b.transaction():
                    assert await b.remember(b"id", b"d", b"b's answer", 100)
                    assert await b.enqueue(bob, b"m" * 16, b"b", 0, stranger=False)
                assert await a.enqueue(bob, b"m" * 16, b"a!", 0, stranger=False)
                assert await a.remember(b"id", b"d", b"a's answer", 100)
        assert (await a.seen(b"id")) == (b"d", b"b's answer")
        assert await a.queue_size(bob) == (1, 1) and await a.queued_bytes() == 1
        await a.close()
        await b.close()

    run(go())


def test_reads_outside_a_transaction_do_not_see_its_uncommitted_rows(pg_url):
    async def go():
        db = await opened(pg_url)
        inserted, seen_outside, done = asyncio.Event(), asyncio.Event(), []

        async def writer():
            async with db.transaction():
                await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
                assert await db.fetchall("SELECT k FROM t") == [(1,)]  # its own row
                inserted.set()
                await seen_outside.wait()

        async def reader():
            await inserted.wait()
            done.append(await db.fetchall("SELECT k FROM t"))  # not waiting for the lock
            seen_outside.set()

        await asyncio.gather(writer(), reader())
        assert done == [[]]
        assert await db.fetchall("SELECT k FROM t") == [(1,)]
        await db.close()

    run(go())


async def _deadlock(first: PostgresDatabase, second: PostgresDatabase, swallow: bool):
    """Two transactions updating rows 1 and 2 in opposite orders; with `swallow`, each
    second update is in a savepoint whose conflict the caller catches."""
    holding = [asyncio.Event(), asyncio.Event()]

    async def take(db, index, mine, theirs):
        async with db.transaction():
            await db.execute("UPDATE t SET n = ? WHERE k = ?", (index, mine))
            holding[index].set()
            await holding[1 - index].wait()
            if swallow:
                try:
                    async with db.savepoint():
                        await db.execute("UPDATE t SET n = ? WHERE k = ?", (index, theirs))
                except StoreConflict:
                    pass
            else:
                await db.execute("UPDATE t SET n = ? WHERE k = ?", (index, theirs))

    return await asyncio.gather(take(first, 0, 1, 2), take(second, 1, 2, 1), return_exceptions=True)


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "caught-in-savepoint"])
def test_a_deadlock_between_two_stores_is_a_conflict_for_one_and_nothing_of_it_commits(
    pg_url, swallow
):
    async def go():
        first, second = await opened(pg_url), await opened(pg_url)
        await first.executemany("INSERT INTO t (k, n) VALUES (?, ?)", [(1, -1), (2, -1)])
        results = await _deadlock(first, second, swallow)
        conflicts = [r for r in results if isinstance(r, StoreConflict)]
        assert len(conflicts) == 1 and results.count(None) == 1
        winner = results.index(None)
        # the winner's two updates and nothing of the loser's
        assert await first.fetchall("SELECT n FROM t ORDER BY k") == [(winner,), (winner,)]
        async with first.transaction():  # the loser's connection is usable again
            await first.execute("UPDATE t SET n = ?", (7,))
        async with second.transaction():
            await second.execute("UPDATE t SET n = n + ?", (1,))
        assert await second.fetchall("SELECT n FROM t") == [(8,), (8,)]
        await first.close()
        await second.close()

    run(go())


# --- notifications ----------------------------------------------------------------------


async def _listening(db: PostgresDatabase, url: str) -> None:
    """Until `db`'s notifications() LISTENs (its first step opens the connection)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        while True:
            row = await (
                await admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
                    " AND state = 'idle'"
                )
            ).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)


def test_a_notification_reaches_another_database_when_its_transaction_commits(pg_url):
    async def go():
        listener, sender, other = [await opened(pg_url) for _ in range(3)]
        heard = listener.notifications()
        first = asyncio.ensure_future(anext(heard))
        await _listening(listener, pg_url)

        await listener.notify("own")  # its own: not for it
        async with sender.transaction():
            await sender.notify("push 1")
            await other.notify("push 2")  # outside a transaction: at once
        with pytest.raises(KeyError):
            async with sender.transaction():
                await sender.notify("push 3")  # rolled back: never
                raise KeyError("no")
        async with sender.transaction():
            await sender.notify("push 4")

        got = [await first, await anext(heard), await anext(heard)]
        assert got == ["push 2", "push 1", "push 4"]
        waiting = asyncio.ensure_future(anext(heard))
        await listener.close()
        with pytest.raises(StopAsyncIteration):  # closed: they end
            await waiting
        for db in (sender, other):
            await db.close()

    run(go())


# --- the server unreachable or gone -------------------------------------------------------


def test_an_unreachable_server_is_store_unavailable_naming_the_socket_and_no_password(
    tmp_path,
):
    url = f"postgresql://node:s3cret-pw@/nodedb?host={tmp_path}"
    with pytest.raises(StoreUnavailable) as raised:
        run(PostgresDatabase.connect(url))
    message = str(raised.value)
    assert f"socket {tmp_path}/.s.PGSQL.5432" in message
    assert "No such file or directory" in message and "nodedb" in message
    assert "s3cret" not in message and "\n" not in message


def test_a_url_libpq_cannot_read_is_a_store_error_without_echoing_it():
    with pytest.raises(StoreError) as raised:
        PostgresDatabase("postgresql://node:s3cret@/db?nonsense=1")
    assert "s3cret" not in str(raised.value)


def test_a_lost_connection_is_store_unavailable_then_opened_again(pg_url):
    async def go():
        db = await opened(pg_url)
        await db.execute("INSERT INTO t (k) VALUES (?)", (1,))
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'nymchat-node' AND datname = current_database()"
            )
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            await db.fetchall("SELECT k FROM t")
        assert await db.fetchall("SELECT k FROM t") == [(1,)]
        with pytest.raises(StoreUnavailable):
            async with db.transaction():
                await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
        async with db.transaction():
            await db.execute("INSERT INTO t (k) VALUES (?)", (2,))
        assert await db.fetchall("SELECT k FROM t ORDER BY k") == [(1,), (2,)]
        await db.close()

    run(go())


# --- migrations ---------------------------------------------------------------------------


def test_a_database_of_schema_1_migrates_to_the_groups_schema_keeping_its_rows(pg_url):
    async def go():
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            assert await migrate(conn, migrations()[:1]) == 1
            await conn.execute(
                "INSERT INTO users (name_hash, skeleton_hash, identity, agreement, account_key,"
                " account_signature, fallback, created) VALUES"
                " ('\\x01', '\\x02', '\\x03', '', '', '', '', 0)"
            )
        db = await PostgresDatabase.connect(pg_url)
        assert await db.schema_version() == len(migrations()) == 3
        assert await db.fetchone("SELECT count(*) FROM users") == (1,)
        await db.execute(
            "INSERT INTO key_packages (name_hash, key_package) VALUES (?, ?)", (b"\x01", b"kp")
        )
        await db.execute("DELETE FROM users WHERE name_hash = ?", (b"\x01",))
        assert await db.fetchone("SELECT count(*) FROM key_packages") == (0,)  # cascade
        await db.close()

    run(go())


def test_a_database_of_a_newer_schema_is_refused(pg_url):
    async def go():
        db = await PostgresDatabase.connect(pg_url)
        await db.execute("UPDATE schema_version SET version = ?", (99,))
        await db.close()
        with pytest.raises(StoreError, match="schema 99, newer"):
            await PostgresDatabase.connect(pg_url)

    run(go())


MIGRATE = """
import asyncio, sys
from nymchat.node.postgres import PostgresDatabase
async def main():
    db = await PostgresDatabase.connect(sys.argv[1])
    print(await db.schema_version())
    await db.close()
asyncio.run(main())
"""


def test_processes_starting_at_once_wait_for_one_another_and_migrate_once(pg_url, tmp_path):
    """The test holds the migration lock until all of them wait for it: without the lock
    they would not wait (and would race to create the same tables)."""

    async def go():
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", MIGRATE, pg_url],
                    cwd=tmp_path,  # the installed nymchat, not the checkout's
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(3)
            ]
            while True:
                row = await (
                    await admin.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND NOT granted AND database = (SELECT oid FROM pg_database"
                        " WHERE datname = current_database())"
                    )
                ).fetchone()
                assert all(p.poll() is None for p in processes), "one did not wait"
                if row and row[0] == len(processes):
                    break
                await asyncio.sleep(0.05)
            await admin.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        return [(*p.communicate(timeout=60), p.returncode) for p in processes]

    for out, err, code in run(go()):
        assert (out.strip(), code) == (str(len(migrations())), 0), err


# --- the same schema as SQLite's --------------------------------------------------------

SQLITE_TYPES = {
    "BLOB": {"bytea"},
    "INTEGER": {"integer", "bigint"},
    "REAL": {"double precision"},
    "TEXT": {"text"},
}


def _sqlite_schema(db) -> dict:
    schema: dict = {"columns": {}, "keys": set(), "indexes": set(), "references": set()}
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        for _, column, kind, notnull, _, pk in info:
            schema["columns"][table, column] = (kind, bool(notnull or pk))
        primary = tuple(c for _, c, *_, pk in sorted(info, key=lambda r: r[5]) if pk)
        schema["keys"].add((table, primary))
        for _, index, unique, *_ in db.execute(f"PRAGMA index_list({table})"):
            columns = tuple(c for *_, c in db.execute(f"PRAGMA index_info({index})"))
            if unique:
                schema["keys"].add((table, columns))
            else:
                schema["indexes"].add((table, index, columns))
        for row in db.execute(f"PRAGMA foreign_key_list({table})"):
            schema["references"].add((table, row[3], row[2], row[4], row[6]))
    return schema


async def _postgres_schema(db: PostgresDatabase) -> dict:
    schema: dict = {"columns": {}, "keys": set(), "indexes": set(), "references": set()}
    for table, column, kind, nullable in await db.fetchall(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name <> 'schema_version'"
    ):
        schema["columns"][table, column] = (kind, nullable == "NO")
    columns = (
        "SELECT array_agg(a.attname ORDER BY k.o) FROM unnest({}) WITH ORDINALITY k(n, o)"
        " JOIN pg_attribute a ON a.attrelid = {} AND a.attnum = k.n"
    )
    for table, index, unique, names in await db.fetchall(
        "SELECT t.relname, i.relname, x.indisunique, ("
        + columns.format("x.indkey", "t.oid")
        + ") FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace"
        " WHERE s.nspname = 'public' AND t.relname <> 'schema_version'"
    ):
        schema["keys" if unique else "indexes"].add(
            (table, tuple(names)) if unique else (table, index, tuple(names))
        )
    for table, source, target, destination, action in await db.fetchall(
        "SELECT t.relname, ("
        + columns.format("c.conkey", "c.conrelid")
        + "), r.relname, ("
        + columns.format("c.confkey", "c.confrelid")
        + "), c.confdeltype FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
        " JOIN pg_class r ON r.oid = c.confrelid WHERE c.contype = 'f'"
    ):
        for one, other in zip(source, destination, strict=True):
            schema["references"].add(
                (table, one, target, other, {"c": "CASCADE"}.get(action, action))
            )
    return schema


def test_the_postgresql_schema_has_the_tables_columns_keys_and_indexes_of_sqlites(pg_url, tmp_path):
    async def go():
        sqlite = open_sqlite(tmp_path / "node.db", b"k" * 32)
        lite = _sqlite_schema(sqlite.db.connection)
        await sqlite.close()
        db = await PostgresDatabase.connect(pg_url)
        pg = await _postgres_schema(db)
        await db.close()
        return lite, pg

    lite, pg = run(go())
    assert lite["columns"].keys() == pg["columns"].keys()
    for column, (kind, notnull) in lite["columns"].items():
        assert pg["columns"][column][0] in SQLITE_TYPES[kind], column
        assert pg["columns"][column][1] == notnull, column
    assert lite["keys"] == pg["keys"]
    assert lite["indexes"] == pg["indexes"]
    assert lite["references"] == pg["references"]
