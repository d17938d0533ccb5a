"""The node's directory (`--directory FILE`): the other nodes its operator lists, one a
line as `petname contact-string` (`#` starts a comment), read once at start: a line that
is not one refuses the start, with its number. Served signed to anonymous `directory`
requests; signed again when the copy held is an hour old, valid for a day."""

from pathlib import Path

from nymchat import _native
from nymchat.protocol import wire
from nymchat.protocol.address import normalize_petname
from nymchat.protocol.contact import NodeContact

MAX_FILE_BYTES = wire.MAX_DIRECTORY * (wire.MAX_DIRECTORY_CONTACT + 128)
RESIGN_MS = 3_600_000
VALID_MS = 86_400_000


class DirectoryError(ValueError):
    """A directory file that cannot be served: the message names the line."""


def parse(text: str, where: str = "directory") -> tuple[wire.DirectoryEntry, ...]:
    """The entries of a directory file's text; `DirectoryError` naming the first bad line."""
    entries: dict[str, wire.DirectoryEntry] = {}
    keys: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise ValueError("a line is `petname contact-string`")
            petname, contact = normalize_petname(fields[0]), NodeContact.parse(fields[1])
            if len(fields[1]) > wire.MAX_DIRECTORY_CONTACT:
                raise ValueError(f"a contact string of at most {wire.MAX_DIRECTORY_CONTACT} bytes")
            if petname in entries or contact.key in keys:
                raise ValueError("this petname or node is listed already")
            if len(entries) == wire.MAX_DIRECTORY:
                raise ValueError(f"a directory lists at most {wire.MAX_DIRECTORY} nodes")
        except ValueError as e:
            raise DirectoryError(f"{where}, line {number}: {e}") from None
        entries[petname] = wire.DirectoryEntry(petname, fields[1])
        keys.add(contact.key)
    return tuple(entries.values())


def load(path: Path) -> tuple[wire.DirectoryEntry, ...]:
    """The entries of the directory file at `path` (bounded in size)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise DirectoryError(f"cannot read the directory {path}: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DirectoryError(f"the directory {path} is over {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise DirectoryError(f"the directory {path} is not ASCII text") from None
    return parse(text, str(path))


class NodeDirectory:
    """The entries, and the signed copy served (made again when an hour old)."""

    def __init__(self, identity: "_native.Identity", entries: tuple[wire.DirectoryEntry, ...]):
        self.identity, self.entries = identity, entries
        self._signed: tuple[int, bytes] | None = None  # (issued, bytes)

    def signed(self, now: int) -> bytes:
        if self._signed is None or now - self._signed[0] >= RESIGN_MS:
            record = wire.Directory(self.identity.signing_public, now, now + VALID_MS, self.entries)
            self._signed = (now, wire.encode_directory(self.identity, record))
        return self._signed[1]
