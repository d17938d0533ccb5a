import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

HERE = Path(__file__).resolve().parent

# Puts tests/ on sys.path so that tests can import reference_crypto and procs.
sys.path.insert(0, str(HERE))

# `python -m pytest` puts the working directory first on sys.path; from the repository root
# its nymchat/ (Python only, no built _native) would shadow the installed package: drop it.
if not any((HERE.parent / "nymchat").glob("_native*")):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]

from browser import Chromium, chromium_path  # noqa: E402
from procs import DIST, MixnetProcess, NodeProcess  # noqa: E402


@pytest.fixture(scope="session")
def shiv_root(tmp_path_factory):
    """Where dist/nymchat unpacks itself: one per test session."""
    if not DIST.exists():
        pytest.fail(f"{DIST} is missing: run ./build.sh first")
    return tmp_path_factory.mktemp("shiv")


@pytest.fixture
def start_mixnet(shiv_root, tmp_path):
    """Starts `dist/nymchat mixnet` (extra arguments as given); stops them all after."""
    started = []

    def start(*args: str, delay: str = "zero", state: Path | None = None) -> MixnetProcess:
        mixnet = MixnetProcess(
            state or tmp_path / f"mixnet-state-{len(started)}", shiv_root, *args, delay=delay
        )
        started.append(mixnet)
        return mixnet

    yield start
    for mixnet in started:
        mixnet.stop()


@pytest.fixture
def start_node(shiv_root, tmp_path):
    """Starts `dist/nymchat node` on a mixnet (extra arguments as given)."""
    started = []

    def start(
        mixnet: MixnetProcess, *args: str, data: Path | None = None, name: str = "node"
    ) -> NodeProcess:
        node = NodeProcess(
            data or tmp_path / f"node-{len(started)}",
            shiv_root,
            f"{mixnet.url}/{name}",
            "--pow-difficulty",
            "4",
            *args,
        )
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def net(start_mixnet, start_node):
    """A zero-delay mixnet with a node on it."""
    mixnet = start_mixnet()
    return mixnet, start_node(mixnet)


PG_CLUSTER = HERE.parent / "scripts" / "pg_cluster.py"


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The test PostgreSQL server's URL: $NYMCHAT_TEST_POSTGRES (./build.sh test starts one),
    else a throwaway cluster started here with scripts/pg_cluster.py and stopped after."""
    given = os.environ.get("NYMCHAT_TEST_POSTGRES")
    if given:
        yield given
        return
    # Not under pytest's basetemp: that is private to root, and as root the server runs as
    # nobody, who must reach its directory.
    directory = Path(tempfile.mkdtemp(prefix="nymchat-pg-"))
    cluster = [sys.executable, str(PG_CLUSTER)]
    out = subprocess.run([*cluster, "start", str(directory)], capture_output=True, text=True)
    try:
        if out.returncode != 0:
            pytest.fail(f"no test PostgreSQL: {out.stderr.strip()}", pytrace=False)
        yield out.stdout.strip()
    finally:
        subprocess.run([*cluster, "stop", str(directory)], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on the server (its URL), dropped after even if still in use."""
    import psycopg

    parts = urlsplit(server)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("the test PostgreSQL must be given as a postgresql:// URL")
    name = f"t_{secrets.token_hex(8)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:  # a new connection: the test may have restarted the server
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A fresh database for this test (a postgresql:// URL), dropped after it."""
    with fresh_database(postgres) as url:
        yield url


@pytest.fixture
def browser(tmp_path) -> Iterator[Chromium]:
    """A headless Chromium driven over the DevTools protocol (tests/browser.py), stopped
    however the test ends; no chromium is a failure, never a skip."""
    try:
        executable = chromium_path()
    except AssertionError as missing:
        pytest.fail(str(missing), pytrace=False)
    chromium = Chromium(tmp_path / "chromium", executable)
    try:
        yield chromium
    finally:
        chromium.stop()
