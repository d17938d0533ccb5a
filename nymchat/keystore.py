"""The encrypted identity keystore: one JSON file holding the secret keys sealed with
XChaCha20-Poly1305 under a key derived from the passphrase by Argon2id (libsodium, via
PyNaCl). The public keys and KDF parameters are in the clear and bound to the
ciphertext as associated data, so any change to the file fails to unlock."""

import base64
import json
import logging
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.utils

from nymchat import _native
from nymchat.errors import IdentityExists, KeystoreError, NoIdentity, WrongPassphrase
from nymchat.files import write_atomic

FILENAME = "identity.json"
FORMAT = "nymchat-keystore"
VERSION = 1
# libsodium's interactive ops limit with 64 MiB: ~0.1 s to unlock on a laptop, so each
# one-shot command stays quick, while a guess costs an attacker the same.
OPSLIMIT = 3
MEMLIMIT = 64 * 1024 * 1024
# What a sealed file may ask of the key derivation, checked before it runs: an altered
# file must not make an unlock take minutes or gigabytes.
MAX_OPSLIMIT, MAX_MEMLIMIT = 16, 1 << 30
log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _derive_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
        passphrase.encode("utf-8"),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def new_kdf() -> dict:
    """The key derivation of a new sealed file: Argon2id, our limits, a fresh salt."""
    return {
        "name": "argon2id",
        "opslimit": OPSLIMIT,
        "memlimit": MEMLIMIT,
        "salt": _b64(nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)),
    }


def key_from(kdf: dict, passphrase: str) -> bytes:
    """The sealing key a file's `kdf` entry and the passphrase give; `ValueError` (or
    `KeyError`, `TypeError`) for an entry that cannot be used."""
    if kdf["name"] != "argon2id":
        raise ValueError(f"unknown key derivation {kdf['name']!r}")
    opslimit, memlimit = int(kdf["opslimit"]), int(kdf["memlimit"])
    if not (0 < opslimit <= MAX_OPSLIMIT and 0 < memlimit <= MAX_MEMLIMIT):
        raise ValueError(f"key derivation limits out of range ({opslimit}, {memlimit})")
    return _derive_key(passphrase, _unb64(kdf["salt"]), opslimit, memlimit)


def _associated_data(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def path_in(home: Path) -> Path:
    return home / FILENAME


def check_absent(home: Path, file: Path | None = None) -> None:
    """Raises `IdentityExists` if ``home`` (or ``file``) already holds an identity."""
    path = file or path_in(home)
    if path.exists():
        raise IdentityExists(
            f"an identity already exists at {path}; nymchat never overwrites one "
            "(use another --home for a second identity)"
        )


def create(home: Path, passphrase: str, file: Path | None = None) -> "_native.Identity":
    """Generates an identity and writes it, sealed, to ``home`` (or to ``file``); refuses
    to overwrite."""
    check_absent(home, file)
    path = file or path_in(home)
    identity = _native.Identity.generate()
    kdf = new_kdf()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": kdf,
        "cipher": "xchacha20poly1305-ietf",
        "signing_public": _b64(identity.signing_public),
        "agreement_public": _b64(identity.agreement_public),
    }
    log.info("deriving the keystore key with Argon2id (%d MiB)", MEMLIMIT >> 20)
    key = key_from(kdf, passphrase)
    nonce = nacl.utils.random(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        identity.secret_bytes(), _associated_data(header), nonce, key
    )
    document = {**header, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    log.info("wrote %s", path)
    return identity


def read_sealed(home: Path, file: Path | None = None) -> dict:
    """Reads and checks the keystore file (``home``'s, or ``file``) without unlocking it."""
    path = file or path_in(home)
    try:
        document = _native.json_loads(path.read_bytes())  # bounded: read before any check
    except FileNotFoundError:
        raise NoIdentity(f"no identity in {home}: create one with `nymchat keys new`") from None
    except OSError as e:
        raise KeystoreError(f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise KeystoreError(f"{path} is not a nymchat keystore (not JSON)") from e
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreError(f"{path} is not a nymchat keystore")
    if document.get("version") != VERSION:
        raise KeystoreError(
            f"{path} has keystore version {document.get('version')!r}, "
            f"this nymchat reads version {VERSION}"
        )
    return document


def public_keys(home: Path, document: dict) -> tuple[bytes, bytes]:
    """The public keys (signing, agreement) as the file states them, without unlocking:
    only unlocking proves they belong to the sealed secret keys."""
    try:
        keys = _unb64(document["signing_public"]), _unb64(document["agreement_public"])
    except (KeyError, TypeError, ValueError) as e:
        raise KeystoreError(f"{path_in(home)} is damaged ({e.__class__.__name__}: {e})") from e
    if any(len(key) != 32 for key in keys):
        raise KeystoreError(f"{path_in(home)} is damaged (a public key is not 32 bytes)")
    return keys


def unlock(
    home: Path, passphrase: str, document: dict | None = None, file: Path | None = None
) -> "_native.Identity":
    """Decrypts the identity (from ``document`` if already read; of ``file``, if given,
    instead of ``home``'s); a wrong passphrase or an altered file is `WrongPassphrase`."""
    document = document if document is not None else read_sealed(home, file)
    path = file or path_in(home)
    try:
        header = {k: v for k, v in document.items() if k not in ("nonce", "ciphertext")}
        log.info("unlocking %s", path)
        key = key_from(document["kdf"], passphrase)
        nonce, ciphertext = _unb64(document["nonce"]), _unb64(document["ciphertext"])
        public = (_unb64(document["signing_public"]), _unb64(document["agreement_public"]))
    except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError) as e:
        raise KeystoreError(f"{path} is damaged ({e.__class__.__name__}: {e})") from e
    try:
        secret = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _associated_data(header), nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(f"wrong passphrase for {path} (or the file was altered)") from None
    identity = _native.Identity.from_secret_bytes(secret)
    if (identity.signing_public, identity.agreement_public) != public:
        raise KeystoreError(f"{path}: public keys do not match the secret keys")
    return identity
