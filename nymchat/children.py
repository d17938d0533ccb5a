"""The environment of every process nymchat starts: only what a program needs to run,
never what the caller's environment may hold besides (the node password in
`NYMCHAT_NODE_PASSWORD`, a passphrase, anyone's tokens)."""

import os

BASE = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


def child_env(*keep: str, **extra: str) -> dict[str, str]:
    """`BASE` and the variables named in `keep` (where set), then `extra`."""
    env = {name: os.environ[name] for name in (*BASE, *keep) if name in os.environ}
    env.update(extra)
    return env
