"""The tests' PostgreSQL: scripts/pg_cluster.py (a throwaway cluster, socket only) and the
fixtures on it (`postgres`, `pg_url`)."""

import importlib.util
import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from conftest import PG_CLUSTER, fresh_database


def _cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PG_CLUSTER), *args], capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def cluster_dir():
    """A directory for a cluster (under /tmp: as root the server runs as nobody, who cannot
    reach pytest's private tmp_path); its server stopped and the directory removed after."""
    directory = Path(tempfile.mkdtemp(prefix="nymchat-pg-test-"))
    yield directory
    _cluster("stop", str(directory))
    subprocess.run(["rm", "-rf", str(directory)], check=True)


def test_a_database_from_pg_url_answers(pg_url):
    with psycopg.connect(pg_url) as db:
        name, one = db.execute("SELECT current_database(), 1").fetchone()
    assert (name.startswith("t_"), one) == (True, 1)


def test_a_fresh_database_is_dropped_after_even_while_a_connection_holds_it(postgres):
    with fresh_database(postgres) as url:
        held = psycopg.connect(url)
        name = held.execute("SELECT current_database()").fetchone()[0]
    with psycopg.connect(postgres) as server:
        left = server.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        assert left.fetchone()[0] == 0
    with pytest.raises(psycopg.OperationalError):  # FORCE ended the session holding it
        held.execute("SELECT 1")
    held.close()


def test_the_test_server_listens_on_no_tcp_port_and_keeps_fsync_on(postgres):
    with psycopg.connect(postgres) as db:
        assert db.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert db.execute("SHOW fsync").fetchone()[0] == "on"
        assert int(db.execute("SHOW max_connections").fetchone()[0]) >= 200


def test_a_cluster_starts_answers_on_its_socket_and_stops(cluster_dir):
    started = _cluster("start", str(cluster_dir))
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url == f"postgresql://nymchat@/postgres?host={cluster_dir.resolve()}"
    assert _cluster("url", str(cluster_dir)).stdout.strip() == url
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE kept (n INTEGER)")
        db.execute("INSERT INTO kept VALUES (7)")
        db.commit()
        if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as nobody
            backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
            status = Path(f"/proc/{backend}/status").read_text()
            uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
            assert int(uid) == pwd.getpwnam("nobody").pw_uid
    again = _cluster("start", str(cluster_dir))
    assert again.returncode == 1
    assert "a server already runs here" in again.stderr

    assert _cluster("stop", str(cluster_dir)).returncode == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
    # started again on the same directory: the data is still there
    assert _cluster("start", str(cluster_dir)).returncode == 0
    with psycopg.connect(url) as db:
        assert db.execute("SELECT n FROM kept").fetchall() == [(7,)]


def _script():
    spec = importlib.util.spec_from_file_location("pg_cluster", PG_CLUSTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_server_binaries_are_named_with_how_to_install_them(tmp_path, capsys):
    script = _script()
    script.SERVERS = tmp_path  # no postgresql/*/bin here
    assert script.main(["start", str(tmp_path / "cluster")]) == 1
    assert capsys.readouterr().err == (
        f"pg_cluster: no PostgreSQL server binaries in {tmp_path}/*/bin: install Debian's "
        "postgresql (apt-get install postgresql)\n"
    )


def test_stop_and_url_say_when_a_directory_holds_no_cluster(tmp_path):
    for command in ("stop", "url"):
        out = _cluster(command, str(tmp_path))
        assert (out.returncode, out.stderr) == (1, f"pg_cluster: {tmp_path}: no cluster here\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to nobody")
def test_as_root_a_directory_nobody_cannot_reach_is_refused(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    out = _cluster("start", str(private / "cluster"))
    assert out.returncode == 1
    assert "nobody cannot reach it" in out.stderr
