"""The client's data at rest: SQLite (WAL) with every sensitive value sealed.

Why not SQLCipher: it is not in the standard library, and the one-file build must not need
a C library at run time. Instead each value is sealed with XChaCha20-Poly1305 under a key
derived from the unlocked identity, with its table and row bound in as associated data (a
sealed value moved to another row does not open), and rows are found by blind indexes
(HMAC-SHA256 under a second key), so the file shows neither contact names nor content.
What it does show: how many contacts, sessions and messages there are, and when sessions
changed. See docs/SECURITY.md.
"""

import hashlib
import hmac
import json
import logging
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.utils

from nymchat.database import open_database, transaction
from nymchat.errors import KeystoreError

STORE_INFO = b"nymchat-client-store-v1"
ROSTER = "pinned-contacts"
log = logging.getLogger(__name__)


def _removed(usernames: list[str]) -> KeystoreError:
    return KeystoreError(
        f"the profile's record of {', '.join(usernames)} was removed from "
        "the file (altered without the passphrase?): restore the profile "
        "from a backup, or `nymchat contacts remove` the name to pin it anew"
    )


def derive_keys(identity_secret: bytes) -> dict[str, bytes]:
    """The storage keys of a profile, from its identity secret (HKDF-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    okm = HKDF(hashes.SHA256(), 96, salt=None, info=STORE_INFO).derive(identity_secret)
    return {"seal": okm[:32], "blind": okm[32:64], "pickle": okm[64:]}


def snapshot(path: Path) -> bytes:
    """A consistent copy of the database at `path`, as the bytes of a database file: SQLite's
    online backup, so a process writing meanwhile is neither blocked nor seen half-way."""
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.execute("PRAGMA busy_timeout = 10000")
        source.backup(copy)
        image = bytearray(copy.serialize())
    finally:
        copy.close()
        source.close()
    # The header's file format versions (bytes 18 and 19) still say WAL, which a database
    # in memory cannot use: 1 is rollback journal, as `PRAGMA journal_mode = DELETE` would
    # write: the bytes make a database file as they are, and opening it turns WAL back on.
    image[18:20] = b"\x01\x01"
    return bytes(image)


class ClientStore:
    def __init__(self, path: Path, keys: dict[str, bytes]):
        self.seal_key, self.blind_key, self.pickle_key = keys["seal"], keys["blind"], keys["pickle"]
        # FULL: a message the user was told is sent survives even a power loss.
        self.db = open_database(path, "nymchat.client", synchronous="FULL")

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()

    # --- sealing ------------------------------------------------------------------

    def blind(self, kind: str, value: str | bytes) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self.blind_key, kind.encode() + b"\0" + data, hashlib.sha256).digest()[:16]

    def seal(self, table: str, row: bytes, value: object) -> bytes:
        nonce = nacl.utils.random(24)
        data = json.dumps(value, separators=(",", ":")).encode()
        return nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            data, table.encode() + row, nonce, self.seal_key
        )

    def open(self, table: str, row: bytes, sealed: bytes) -> Any:
        """The JSON value sealed in `sealed` (its shape is the one its writer sealed)."""
        try:
            data = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[24:], table.encode() + row, sealed[:24], self.seal_key
            )
        except Exception:
            raise KeystoreError(
                f"a sealed value in the profile's {table} does not open: the "
                "file was altered or belongs to another identity"
            ) from None
        return json.loads(data)

    # --- settings -----------------------------------------------------------------

    def get(self, name: str, default: Any = None) -> Any:
        row = self.blind("kv", name)
        found = self.db.execute("SELECT sealed FROM kv WHERE name = ?", (row,)).fetchone()
        return self.open("kv", row, found[0]) if found else default

    def put(self, name: str, value: object) -> None:
        row = self.blind("kv", name)
        self.db.execute(
            "INSERT OR REPLACE INTO kv (name, sealed) VALUES (?, ?)",
            (row, self.seal("kv", row, value)),
        )

    # --- contacts -----------------------------------------------------------------
    # Every pinned name is also in one sealed list (`ROSTER`), written with the contact:
    # a contact row deleted from the file (no passphrase needed for that) must not
    # silently reopen trust on first use for that name.

    def contact(self, username: str) -> dict[str, Any] | None:
        row = self.blind("contact", username)
        found = self.db.execute("SELECT sealed FROM contacts WHERE id = ?", (row,)).fetchone()
        if found is None:
            if username in self._roster():
                raise _removed([username])
            return None
        record: dict[str, Any] = self.open("contacts", row, found[0])
        return record

    def put_contact(self, contact: dict[str, Any]) -> None:
        row = self.blind("contact", contact["username"])
        self.db.execute(
            "INSERT OR REPLACE INTO contacts (id, sealed) VALUES (?, ?)",
            (row, self.seal("contacts", row, contact)),
        )
        roster = self._roster()
        if contact["username"] not in roster:
            self.put(ROSTER, sorted(roster | {contact["username"]}))

    def remove_contact(self, username: str) -> None:
        """Forgets a contact with their sessions and the conversation."""
        row = self.blind("contact", username)
        self.db.execute(
            "DELETE FROM unshown WHERE message_id IN (SELECT message_id FROM "
            "messages WHERE contact = ?)",
            (row,),
        )
        for table, column in (("contacts", "id"), ("sessions", "contact"), ("messages", "contact")):
            self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (row,))
        self.put(ROSTER, sorted(self._roster() - {username}))

    def contacts(self) -> list[dict[str, Any]]:
        found = sorted(
            (
                self.open("contacts", row, sealed)
                for row, sealed in self.db.execute("SELECT id, sealed FROM contacts")
            ),
            key=lambda c: c["username"],
        )
        missing = self._roster() - {c["username"] for c in found}
        if missing:
            raise _removed(sorted(missing))
        return found

    def pinned_names(self) -> set[str]:
        """Every pinned name, whether or not its record is still in the file."""
        return self._roster()

    def _roster(self) -> set[str]:
        roster = self.get(ROSTER)
        if roster is None:  # a new profile, or one made before the list existed
            names = [
                self.open("contacts", row, sealed)["username"]
                for row, sealed in self.db.execute("SELECT id, sealed FROM contacts")
            ]
            if names:
                log.warning(
                    "this profile had no sealed list of pinned contacts (made by an "
                    "older nymchat, or the file was altered); it now lists the %d "
                    "contacts found",
                    len(names),
                )
            self.put(ROSTER, sorted(names))
            return set(names)
        return set(roster)

    def drop_all_sessions(self) -> int:
        """Forgets every session (a restored profile's are stale); returns how many."""
        return self.db.execute("DELETE FROM sessions").rowcount

    def drop_all_groups(self) -> None:
        """Forgets every group (their messages stay): a restored profile's are stale."""
        self.db.execute("DELETE FROM groups")
        self.db.execute("DELETE FROM group_waiting")

    def drop_sessions(self, username: str) -> None:
        self.db.execute(
            "DELETE FROM sessions WHERE contact = ?", (self.blind("contact", username),)
        )

    # --- sessions -----------------------------------------------------------------

    def sessions(self, username: str) -> list[str]:
        """The contact's session pickles, newest first."""
        contact = self.blind("contact", username)
        rows = self.db.execute(
            "SELECT session_id, sealed FROM sessions WHERE contact = ? ORDER BY updated DESC",
            (contact,),
        ).fetchall()
        return [self.open("sessions", contact + sid, sealed) for sid, sealed in rows]

    def put_session(self, username: str, session_id: str, pickle: str, now: int | None) -> None:
        """Stores a session's state; it becomes the newest unless `now` is None (an existing
        session keeps its place)."""
        contact, sid = self.blind("contact", username), self.blind("session", session_id)
        sealed = self.seal("sessions", contact + sid, pickle)
        if now is None:
            self.db.execute(
                "UPDATE sessions SET sealed = ? WHERE contact = ? AND session_id = ?",
                (sealed, contact, sid),
            )
            return
        self.db.execute(
            "INSERT OR REPLACE INTO sessions (contact, session_id, updated, sealed)"
            " VALUES (?, ?, ?, ?)",
            (contact, sid, now, sealed),
        )

    # --- messages -----------------------------------------------------------------

    def add_message(self, username: str, message_id: bytes, record: dict[str, Any]) -> bool:
        """Stores a message; False if one with this id is already stored (a duplicate)."""
        contact, mid = self.blind("contact", username), self.blind("message", message_id)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO messages (contact, message_id, sealed) VALUES (?, ?, ?)",
            (contact, mid, self.seal("messages", mid, record)),
        )
        return cursor.rowcount == 1

    def update_message(self, message_id: bytes, record: dict[str, Any]) -> None:
        mid = self.blind("message", message_id)
        self.db.execute(
            "UPDATE messages SET sealed = ? WHERE message_id = ?",
            (self.seal("messages", mid, record), mid),
        )

    def message(self, message_id: bytes) -> dict[str, Any] | None:
        mid = self.blind("message", message_id)
        found = self.db.execute(
            "SELECT sealed FROM messages WHERE message_id = ?", (mid,)
        ).fetchone()
        return self.open("messages", mid, found[0]) if found else None

    def set_shown(self, message_id: bytes, shown: bool) -> None:
        mid = self.blind("message", message_id)
        self.db.execute(
            "DELETE FROM unshown WHERE message_id = ?"
            if shown
            else "INSERT OR IGNORE INTO unshown (message_id) VALUES (?)",
            (mid,),
        )

    def unshown(self) -> list[dict[str, Any]]:
        """Messages taken in but not shown yet, oldest first."""
        rows = self.db.execute(
            "SELECT message_id, m.sealed FROM unshown JOIN messages m "
            "USING (message_id) ORDER BY m.seq"
        ).fetchall()
        return [self.open("messages", mid, sealed) for mid, sealed in rows]

    def unshown_count(self, username: str) -> int:
        """How many messages of the conversation with `username` are not shown yet."""
        count: int = self.db.execute(
            "SELECT count(*) FROM unshown JOIN messages m USING (message_id) WHERE m.contact = ?",
            (self.blind("contact", username),),
        ).fetchone()[0]
        return count

    def incoming_since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        """Messages received after position `seq`, oldest first, and the last position."""
        rows = self.db.execute(
            "SELECT seq, message_id, sealed FROM messages WHERE seq > ? ORDER BY seq", (seq,)
        ).fetchall()
        found = [
            record
            for _, mid, sealed in rows
            if (record := self.open("messages", mid, sealed)).get("direction") == "in"
        ]
        return found, rows[-1][0] if rows else seq

    def last_seq(self) -> int:
        """The position of the newest stored message (0 when there is none)."""
        seq: int = self.db.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
        return seq

    def history(self, username: str, limit: int = 100) -> list[dict[str, Any]]:
        contact = self.blind("contact", username)
        rows = self.db.execute(
            "SELECT message_id, sealed FROM messages WHERE contact = ? ORDER BY seq DESC LIMIT ?",
            (contact, limit),
        ).fetchall()
        return [self.open("messages", mid, sealed) for mid, sealed in reversed(rows)]
