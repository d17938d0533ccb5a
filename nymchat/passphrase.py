"""Where the passphrase comes from: ``--passphrase-file``, else ``$NYMCHAT_PASSPHRASE``,
else a prompt on the terminal."""

import getpass
import logging
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nymchat.errors import Cancelled, PassphraseError, WrongPassphrase

ENV_VAR = "NYMCHAT_PASSPHRASE"
MIN_NEW_LENGTH = 8
TRIES = 3
T = TypeVar("T")
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


def _prompt(label: str) -> str:
    try:
        return getpass.getpass(label)
    except EOFError:  # Ctrl-D: the user gave up
        print(file=sys.stderr)
        raise Cancelled() from None


def weakness(passphrase: str, new: bool, noun: str) -> str | None:
    if not passphrase:
        return f"the {noun} is empty"
    if new and len(passphrase) < MIN_NEW_LENGTH:
        return f"choose a {noun} of at least {MIN_NEW_LENGTH} characters"
    return None


def _ask_new(noun: str) -> str:
    passphrase = _prompt(f"New {noun}: ")
    if problem := weakness(passphrase, True, noun):  # at once, not after the repetition
        raise PassphraseError(problem)
    if _prompt(f"Repeat {noun}: ") != passphrase:
        raise PassphraseError(f"the two {noun}s differ")
    return passphrase


def _prompt_new(noun: str) -> str:
    """A new passphrase from the terminal; a mistake asks again, up to `TRIES` times."""
    for _ in range(TRIES - 1):
        try:
            return _ask_new(noun)
        except PassphraseError as e:
            print(f"{e}; try again", file=sys.stderr)
    return _ask_new(noun)


def get_passphrase(
    passphrase_file: Path | None,
    *,
    new: bool = False,
    env_var: str = ENV_VAR,
    noun: str = "passphrase",
) -> str:
    """Returns the passphrase (the `noun` prompts name: "node password"); for a ``new``
    keystore a prompt asks twice and a short passphrase is refused."""
    if passphrase_file is not None:
        passphrase = _from_file(passphrase_file)
    elif env_var in os.environ:
        passphrase = os.environ[env_var]
    elif sys.stdin.isatty():
        passphrase = _prompt_new(noun) if new else _prompt(f"{noun.capitalize()}: ")
    else:
        raise PassphraseError(
            f"no passphrase: set {env_var}, use a passphrase or password file, or run in a terminal"
        )
    if problem := weakness(passphrase, new, noun):
        raise PassphraseError(problem)
    return passphrase


def unlock_with(
    passphrase_file: Path | None,
    unlock: Callable[[str], T],
    *,
    env_var: str = ENV_VAR,
    noun: str = "passphrase",
) -> T:
    """`unlock(passphrase)`; a wrong passphrase typed at the prompt is asked for again, up
    to `TRIES` times (one from a file or the environment is not)."""
    if passphrase_file is None and env_var not in os.environ and sys.stdin.isatty():
        for _ in range(TRIES - 1):
            try:
                return unlock(get_passphrase(None, env_var=env_var, noun=noun))
            except WrongPassphrase:
                print(f"wrong {noun}; try again", file=sys.stderr)
    return unlock(get_passphrase(passphrase_file, env_var=env_var, noun=noun))
