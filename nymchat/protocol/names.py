"""Usernames: what is allowed, and when two names are one."""

import re

MIN_LEN, MAX_LEN = 3, 32
_VALID = re.compile(r"[a-z0-9_-]{3,32}")
RESERVED = frozenset({
    "admin", "administrator", "all", "everyone", "help", "mod", "moderator", "node",
    "nym", "nymchat", "nymtech", "operator", "postmaster", "root", "security", "server",
    "staff", "support", "system", "sysop", "webmaster",
})
_SKELETON = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "_": "-"})


class InvalidName(ValueError):
    """A username that is not allowed."""


def normalize(name: str) -> str:
    """The canonical form of a username (case-folded), or `InvalidName` saying why."""
    folded = name.strip().lower()
    if not _VALID.fullmatch(folded):
        if not MIN_LEN <= len(folded) <= MAX_LEN:
            raise InvalidName(f"a username has {MIN_LEN}-{MAX_LEN} characters")
        raise InvalidName("a username uses only a-z, 0-9, '_' and '-'")
    if skeleton(folded) in _RESERVED_SKELETONS:
        raise InvalidName(f"'{folded}' is reserved")
    return folded


def skeleton(name: str) -> str:
    """What a name looks like: names with one skeleton cannot both be registered."""
    return name.translate(_SKELETON)


_RESERVED_SKELETONS = frozenset(skeleton(n) for n in RESERVED)
