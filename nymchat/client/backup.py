"""The backup file: a whole profile (the sealed keystore and a snapshot of client.db) in
one file sealed under the profile's passphrase. Sans-I/O: bytes in, bytes out.

Layout (docs/SECURITY.md, "Backups"): a header line of JSON (format, version, Argon2id
parameters with a fresh salt, cipher, nonce), then XChaCha20-Poly1305 of the contents
with the header line as associated data. The contents: a line of JSON (the keystore
document as `identity.json` holds it, what made the backup, when), then the database
file's bytes."""

import base64
import json
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.utils

from nymchat import _native, keystore
from nymchat.errors import KeystoreError, WrongPassphrase

FORMAT = "nymchat-backup"
VERSION = 1
CIPHER = "xchacha20poly1305-ietf"
MAX_HEADER = 4096  # bytes of the header line, read before anything else is done
MAX_MANIFEST = 64 << 10


class BadBackup(KeystoreError):
    message = "not a nymchat backup, or a damaged one"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal(
    keystore_document: dict[str, Any],
    database: bytes,
    passphrase: str,
    created_ms: int,
    version: str,
) -> bytes:
    """The backup file's bytes."""
    nonce = nacl.utils.random(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    kdf = keystore.new_kdf()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": kdf,
        "cipher": CIPHER,
        "nonce": _b64(nonce),
    }
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    manifest = {"keystore": keystore_document, "created": created_ms, "nymchat": version}
    contents = json.dumps(manifest, separators=(",", ":")).encode() + b"\n" + database
    key = keystore.key_from(kdf, passphrase)
    return line + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        contents, line, nonce, key
    )


def _line(data: bytes, limit: int, what: str) -> tuple[dict[str, Any], bytes]:
    """The JSON object on the first line of `data` (at most `limit` bytes), and the rest."""
    end = data.find(b"\n", 0, limit)
    if end < 0:
        raise BadBackup(f"not a nymchat backup (no {what} in its first {limit} bytes)")
    try:
        value = _native.json_loads(data[:end])
    except ValueError:
        raise BadBackup(f"not a nymchat backup (its {what} is not JSON)") from None
    if not isinstance(value, dict):
        raise BadBackup(f"not a nymchat backup (its {what} is not an object)")
    return value, data[end + 1 :]


def open_backup(data: bytes, passphrase: str) -> tuple[dict[str, Any], bytes]:
    """The manifest (with the keystore document) and the database bytes of a backup;
    `WrongPassphrase` when it does not open."""
    header, ciphertext = _line(data, MAX_HEADER, "header")
    if header.get("format") != FORMAT:
        raise BadBackup("not a nymchat backup")
    if header.get("version") != VERSION:
        raise BadBackup(
            f"a nymchat backup of version {header.get('version')!r}; this "
            f"nymchat reads version {VERSION}"
        )
    try:
        if header["cipher"] != CIPHER:
            raise ValueError(f"unknown cipher {header['cipher']!r}")
        nonce = base64.b64decode(header["nonce"], validate=True)
        key = keystore.key_from(header["kdf"], passphrase)
    except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError) as e:
        raise BadBackup(f"a damaged nymchat backup ({e.__class__.__name__}: {e})") from None
    try:
        contents = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, data[: len(data) - len(ciphertext)], nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(
            "the backup does not open with this passphrase (the one the "
            "profile had when it was backed up), or it was altered"
        ) from None
    manifest, database = _line(contents, MAX_MANIFEST, "contents")
    if not isinstance(manifest.get("keystore"), dict):
        raise BadBackup("a nymchat backup without an identity")
    return manifest, database
