"""Where nymchat keeps its files: ``--home``, else ``$NYMCHAT_HOME``, else the platform's
per-user data directory."""

import logging
import os
import sys
from pathlib import Path

from nymchat.errors import NymchatError

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
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = home.stat()
    mode = st.st_mode & 0o777
    if os.name != "posix" or not mode & 0o077:
        return home
    if st.st_uid != os.geteuid():
        raise NymchatError(f"{home} is open to other users (mode {mode:04o}) and belongs to "
                           "another user; use a directory of your own")
    home.chmod(0o700)
    log.warning("%s was open to other users (mode %04o); it is private now (0700)", home, mode)
    return home
