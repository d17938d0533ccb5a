"""``nymchat keys new`` and ``nymchat keys show``."""

import argparse
import json
from pathlib import Path

from nymchat import keystore
from nymchat.home import default_home, ensure_home
from nymchat.identity import fingerprint
from nymchat.passphrase import get_passphrase


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home).expanduser() if args.home else default_home()


def _passphrase_file(args: argparse.Namespace) -> Path | None:
    return Path(args.passphrase_file).expanduser() if args.passphrase_file else None


def _report(
    args: argparse.Namespace, public: tuple[bytes, bytes], path: Path, created: bool
) -> int:
    info = {
        "keystore": str(path),
        "signing_public": public[0].hex(),
        "agreement_public": public[1].hex(),
        "fingerprint": fingerprint(*public),
    }
    if args.json:
        print(json.dumps({"created": created, **info} if created else info))
        return 0
    if created and not args.quiet:
        print(f"Created a new identity in {path}")
    print(f"signing key (Ed25519)    {info['signing_public']}")
    print(f"agreement key (X25519)   {info['agreement_public']}")
    print(f"fingerprint              {info['fingerprint']}")
    return 0


def new(args: argparse.Namespace) -> int:
    home = _home(args)
    keystore.check_absent(home)  # before asking for a passphrase
    passphrase = get_passphrase(_passphrase_file(args), new=True)
    identity = keystore.create(ensure_home(home), passphrase)
    return _report(
        args,
        (identity.signing_public, identity.agreement_public),
        keystore.path_in(home),
        created=True,
    )


def show(args: argparse.Namespace) -> int:
    """The public keys as the keystore states them, with no passphrase; `--check` unlocks
    the keystore to prove they are the keys of the sealed identity."""
    home = _home(args)
    sealed = keystore.read_sealed(home)
    public = keystore.public_keys(home, sealed)
    if args.check:
        identity = keystore.unlock(home, get_passphrase(_passphrase_file(args)), sealed)
        public = identity.signing_public, identity.agreement_public
    return _report(args, public, keystore.path_in(home), created=False)
