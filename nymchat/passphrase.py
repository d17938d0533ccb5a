"""Where the passphrase comes from: ``--passphrase-file``, else ``$NYMCHAT_PASSPHRASE``,
else a prompt on the terminal."""

import getpass
import logging
import os
import stat
import sys
from pathlib import Path

from nymchat.errors import PassphraseError

ENV_VAR = "NYMCHAT_PASSPHRASE"
MIN_NEW_LENGTH = 8
log = logging.getLogger(__name__)


def _from_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PassphraseError(f"cannot read passphrase file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise PassphraseError(f"passphrase file {path} is not UTF-8") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("passphrase file %s can be read by other users; chmod 600 it", path)
    return text.splitlines()[0] if text else ""


def get_passphrase(passphrase_file: Path | None, *, new: bool = False,
                   env_var: str = ENV_VAR) -> str:
    """Returns the passphrase; for a ``new`` keystore a prompt asks twice and a short
    passphrase is refused."""
    if passphrase_file is not None:
        passphrase = _from_file(passphrase_file)
    elif env_var in os.environ:
        passphrase = os.environ[env_var]
    elif sys.stdin.isatty():
        passphrase = getpass.getpass("New passphrase: " if new else "Passphrase: ")
        if new and getpass.getpass("Repeat passphrase: ") != passphrase:
            raise PassphraseError("the two passphrases differ")
    else:
        raise PassphraseError(
            f"no passphrase: set {env_var}, use a passphrase or password file, or run in a "
            "terminal")
    if not passphrase:
        raise PassphraseError("the passphrase is empty")
    if new and len(passphrase) < MIN_NEW_LENGTH:
        raise PassphraseError(f"choose a passphrase of at least {MIN_NEW_LENGTH} characters")
    return passphrase
