"""Where nymchat keeps its files: ``--home``, else ``$NYMCHAT_HOME``, else the platform's
per-user data directory."""

import os
import sys
from pathlib import Path


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
    """Creates the home directory, readable by its owner only."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home
