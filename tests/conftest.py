import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# Puts tests/ on sys.path so that tests can import reference_crypto and procs.
sys.path.insert(0, str(HERE))

# `python -m pytest` puts the working directory first on sys.path; from the repository root
# its nymchat/ (Python only, no built _native) would shadow the installed package: drop it.
if not any((HERE.parent / "nymchat").glob("_native*")):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]

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
