"""``nymchat --version``: what runs, and proof that it can run here. Some dependencies are
built for each CPython version (dist/nymchat carries several builds side by side), so every
compiled part is loaded now: a Python the file has no build for is named here, not later."""

import importlib
import platform
import sys
from importlib import metadata

from nymchat import __version__
from nymchat.errors import NymchatError

# Each distribution and the modules that load its compiled parts (and what nymchat uses).
DEPENDENCIES = [
    ("PyNaCl", ["nacl.bindings", "nacl.pwhash", "nacl.public", "nacl.signing"]),
    (
        "cryptography",
        ["cryptography.hazmat.bindings._rust", "cryptography.hazmat.primitives.kdf.hkdf"],
    ),
    (
        "websockets",
        ["websockets.speedups", "websockets.asyncio.client", "websockets.asyncio.server"],
    ),
    ("prompt_toolkit", ["prompt_toolkit", "wcwidth"]),
    # and its own libpq build, which psycopg would silently replace with the system's
    ("psycopg", ["psycopg", "psycopg_binary.pq", "psycopg_binary._psycopg"]),
    ("segno", ["segno"]),  # pure Python: loaded to prove it is packed
]


def _load(what: str, modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise NymchatError(
                f"{what} does not load on Python {platform.python_version()} ({sys.executable}): "
                f"{error}; this build of nymchat does not carry it for this Python"
            ) from error


def load_all() -> None:
    """Raises NymchatError naming the first compiled part that does not load here."""
    _load("the native core", ["nymchat._native"])
    for distribution, modules in DEPENDENCIES:
        _load(distribution, modules)


def report() -> int:
    """Prints the versions once everything has loaded; raises NymchatError naming what
    does not load."""
    load_all()
    from nymchat import _native

    ok = _native.self_test()
    print(f"nymchat {__version__}")
    print(
        f"native core {_native.__version__} (Rust, {'self-test ok' if ok else 'SELF-TEST FAILED'})"
    )
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
    )
    print(
        "dependencies (all load): "
        + ", ".join(f"{name} {metadata.version(name)}" for name, _ in DEPENDENCIES)
    )
    return 0 if ok else 1
