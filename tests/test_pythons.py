"""dist/nymchat on every Python the machine has: each CPython >= 3.11 runs it (it carries
each version's build of the dependencies that are not abi3), older ones are refused in one
line before anything else runs."""

import glob
import os
import subprocess
from pathlib import Path

import pytest
from procs import DIST, User, clean_env

pytestmark = pytest.mark.cli

# Runs on any Python, 2.7 included.
ASK = (
    "import os, sys, platform; print('%s %d.%d %s' % ((platform.python_implementation(),) + "
    "tuple(sys.version_info[:2]) + (os.path.realpath(sys.executable),)))"
)


def _candidates() -> list[str]:
    """Every python executable on PATH, in /usr/bin and in pyenv's versions."""
    found = []
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        found += glob.glob(os.path.join(directory, "python[23]*"))
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found += glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python"))
    return [path for path in found if not path.endswith("-config")]


def _interpreters() -> dict[str, tuple[str, tuple[int, int]]]:
    """Each distinct interpreter found (by its real executable, so that shims and links
    count once) -> (implementation, (major, minor))."""
    seen = {}
    for path in _candidates():
        try:
            out = subprocess.run([path, "-c", ASK], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0:
            implementation, version, executable = out.stdout.split(maxsplit=2)
            seen[executable.strip()] = (implementation, tuple(int(n) for n in version.split(".")))
    return seen


FOUND = _interpreters()
SUPPORTED = sorted(
    (p for p, (i, v) in FOUND.items() if i == "CPython" and v >= (3, 11)), key=FOUND.get
)
OLD = sorted((p for p, (_, v) in FOUND.items() if v < (3, 11)), key=FOUND.get)


def _ids(paths):
    return [f"{'.'.join(map(str, FOUND[p][1]))}:{p}" for p in paths]


def _params(paths, what):
    return paths or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {what} here"))]


@pytest.mark.parametrize(
    "python", _params(SUPPORTED, "CPython >= 3.11"), ids=_ids(SUPPORTED) or None
)
def test_version_proves_every_dependency_loads_on_each_cpython(python, shiv_root):
    out = subprocess.run(
        [python, str(DIST), "--version"],
        capture_output=True,
        text=True,
        env=clean_env(shiv_root),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    major, minor = FOUND[python][1]
    assert f"Python {major}.{minor}." in out.stdout
    assert "self-test ok" in out.stdout
    assert "dependencies (all load): PyNaCl" in out.stdout
    assert ", psycopg 3." in out.stdout


# Run by the file's own interpreter (SHIV_INTERPRETER): its site-packages, not .venv's.
TALK_TO_POSTGRESQL = (
    "import sys, psycopg; db = psycopg.connect(sys.argv[1]); "
    "print(psycopg.pq.__impl__, db.execute('SELECT 1').fetchone()[0])"
)


@pytest.mark.parametrize(
    "python", _params(SUPPORTED, "CPython >= 3.11"), ids=_ids(SUPPORTED) or None
)
def test_the_file_talks_to_postgresql_with_its_own_libpq_on_each_cpython(
    python, postgres, shiv_root
):
    out = subprocess.run(
        [python, str(DIST), "-c", TALK_TO_POSTGRESQL, postgres],
        capture_output=True,
        text=True,
        env=clean_env(shiv_root, SHIV_INTERPRETER="1"),
        timeout=120,
    )
    assert (out.stdout, out.returncode) == ("binary 1\n", 0), out.stderr


@pytest.mark.parametrize(
    "python", _params(SUPPORTED, "CPython >= 3.11"), ids=_ids(SUPPORTED) or None
)
def test_register_send_and_receive_on_each_cpython(python, net, shiv_root, tmp_path):
    mixnet, node = net  # the mixnet and the node run on the default python3
    alice, bob = (
        User(n, tmp_path / n, shiv_root, mixnet, node, python=python) for n in ("alice", "bob")
    )
    for user in (alice, bob):
        assert user.register().stdout.strip() == f"registered as {user.name}"
    assert alice("send", "bob", "hello").stdout.strip() == "accepted by the node for bob"
    assert [m["text"] for m in bob.json("inbox")] == ["hello"]


@pytest.mark.parametrize("python", _params(OLD, "Python older than 3.11"), ids=_ids(OLD) or None)
def test_an_older_python_is_refused_in_one_line(python, tmp_path):
    shiv_root = tmp_path / "shiv"
    out = subprocess.run(
        [python, str(DIST), "--version"],
        capture_output=True,
        text=True,
        env=clean_env(shiv_root),
        timeout=60,
    )
    major, minor = FOUND[python][1]
    assert out.returncode == 1
    assert out.stderr == f"nymchat needs Python >= 3.11; this is {major}.{minor} ({python})\n"
    assert out.stdout == ""
    assert not shiv_root.exists()  # refused before shiv unpacked anything


def test_the_file_carries_each_cpython_build_of_the_extension_modules():
    import tomllib
    import zipfile

    root = Path(__file__).resolve().parent.parent
    pythons = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["nymchat"]["zipapp"]
    names = zipfile.ZipFile(DIST).namelist()
    for version in pythons["pythons"]:
        tag = "cpython-" + version.replace(".", "")
        assert any(n.startswith(f"site-packages/_cffi_backend.{tag}-") for n in names), version
        assert any(n.startswith(f"site-packages/websockets/speedups.{tag}-") for n in names)
        assert any(n.startswith(f"site-packages/psycopg_binary/_psycopg.{tag}-") for n in names)


@pytest.fixture
def without_cffi_backend(tmp_path) -> str:
    """A PYTHONPATH on which PyNaCl fails as it does on a Python the file has no build of
    cffi's backend for."""
    nacl = tmp_path / "broken" / "nacl"
    nacl.mkdir(parents=True)
    (nacl / "__init__.py").write_text("raise ImportError(\"No module named '_cffi_backend'\")\n")
    return str(nacl.parent)


def test_version_names_a_dependency_that_does_not_load(shiv_root, without_cffi_backend):
    out = subprocess.run(
        [str(DIST), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(shiv_root, PYTHONPATH=without_cffi_backend),
    )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith("nymchat: error: PyNaCl does not load on Python 3.")
    assert "No module named '_cffi_backend'" in out.stderr


def test_a_command_names_a_dependency_that_does_not_load(shiv_root, without_cffi_backend, tmp_path):
    out = subprocess.run(
        [str(DIST), "--home", str(tmp_path / "home"), "keys", "new"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            shiv_root, PYTHONPATH=without_cffi_backend, NYMCHAT_PASSPHRASE="correct horse battery"
        ),
    )
    assert out.returncode == 1
    assert out.stderr.startswith("nymchat: error: PyNaCl does not load on Python 3.")
    assert "internal error" not in out.stderr
