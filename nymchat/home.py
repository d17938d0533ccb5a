"""Where nymchat keeps its files: ``--home``, else ``$NYMCHAT_HOME``, else the platform's
per-user data directory."""

import logging
import os
import sys
from pathlib import Path

from nymchat.errors import Busy, NymchatError

log = logging.getLogger(__name__)


def default_home() -> Path:
    if env := os.environ.get("NYMCHAT_HOME"):
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "nymchat"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "nymchat"
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "nymchat"


def ensure_home(home: Path) -> Path:
    """Creates the home directory (or a node's data directory), readable by its owner
    only. One that others may read or enter is made private if it is ours, else refused."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise NymchatError(f"{home} exists and is not a directory: give a directory") from None
    except OSError as e:
        raise NymchatError(f"cannot create the directory {home}: {e.strerror}") from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise NymchatError(f"cannot write in {home}: give a directory of your own")
    st = home.stat()
    mode = st.st_mode & 0o777
    if os.name != "posix" or not mode & 0o077:
        return home
    if st.st_uid != os.geteuid():
        raise NymchatError(
            f"{home} is open to other users (mode {mode:04o}) and belongs to "
            "another user; use a directory of your own"
        )
    home.chmod(0o700)
    log.warning("%s was open to other users (mode %04o); it is private now (0700)", home, mode)
    return home


def lock(directory: Path, what: str):
    """Holds an exclusive lock on `directory` (a `.lock` file in it) for as long as the
    returned file stays open; another process holding it is named in the error."""
    import fcntl

    path = directory / ".lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the caller's whole life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise Busy(
            f"another {what} already uses {directory}"
            f"{f' (pid {holder})' if holder.isdigit() else ''}: stop it first, "
            "or give another directory"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
