"""Usernames: what is allowed, and when two names are one."""

import re

from nymchat.errors import UsageError

MIN_LEN, MAX_LEN = 3, 32
_VALID = re.compile(r"[A-Za-z0-9_-]{3,32}")
RESERVED = frozenset(
    {
        "admin",
        "administrator",
        "all",
        "everyone",
        "help",
        "mod",
        "moderator",
        "node",
        "nym",
        "nymchat",
        "nymtech",
        "operator",
        "postmaster",
        "root",
        "security",
        "server",
        "staff",
        "support",
        "system",
        "sysop",
        "webmaster",
    }
)

# Look-alikes within the allowed alphabet [a-z0-9_-]. Unicode TR39 confusables.txt (UTS #39
# version 17.0.0, 2025-07-22) has three entries whose source lies in that alphabet: 0 -> O,
# 1 -> l and m -> rn; here folded to lower case (names are shown in lower case), and rn -> m
# written the other way round (the same equivalence). TR39 relates no other two of these
# characters; the rest are this project's, for how names look in terminal fonts: dotted i
# and l, digits read as letters (2 z, 5 s, 9 g), two letters read as one (vv w, cl d), and
# '_' for '-'. Sequences fold after characters, so "c1" is "cl" is "d".
_CHARACTERS = str.maketrans({"0": "o", "1": "l", "i": "l", "2": "z", "5": "s", "9": "g", "_": "-"})
_SEQUENCES = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_SEPARATORS = re.compile("-+")


class InvalidName(UsageError, ValueError):
    message = "a username that is not allowed"


def normalize(name: str) -> str:
    """The canonical form of a username (lower case), or `InvalidName` saying why. Names
    from the network go through here exactly as names the user types."""
    name = name.strip(" \t\r\n")
    if not _VALID.fullmatch(name):
        if not MIN_LEN <= len(name) <= MAX_LEN:
            raise InvalidName(f"a username has {MIN_LEN}-{MAX_LEN} characters")
        raise InvalidName("a username uses only a-z, 0-9, '_' and '-'")
    folded = name.lower()
    if skeleton(folded) in _RESERVED_SKELETONS:
        raise InvalidName(f"'{folded}' is reserved")
    return folded


def skeleton(name: str) -> str:
    """What a normalised name looks like: names with one skeleton cannot both be
    registered. Separators count as one, and not at either end ('bob-' is 'bob')."""
    folded = _SEPARATORS.sub("-", name.translate(_CHARACTERS)).strip("-")
    for sequence, letter in _SEQUENCES:
        folded = folded.replace(sequence, letter)
    return folded


_RESERVED_SKELETONS = frozenset(skeleton(n) for n in RESERVED)
