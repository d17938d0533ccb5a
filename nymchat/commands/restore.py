"""``nymchat restore FILE``: a profile from `nymchat backup` into a new home."""

import argparse
from pathlib import Path

DATA_FILES = ("client.db", "client.db-wal", "client.db-shm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the backup to restore")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the profile in --home (its identity and data are lost)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from nymchat import keystore
    from nymchat.client import backup
    from nymchat.client.connect import home_of
    from nymchat.client.profile import Profile
    from nymchat.errors import IdentityExists, NymchatError
    from nymchat.files import write_atomic
    from nymchat.home import ensure_home
    from nymchat.passphrase import get_passphrase

    home = home_of(args)
    if keystore.path_in(home).exists() and not args.force:
        raise IdentityExists(
            f"{home} already holds an identity; restore into a new --home, "
            "or replace that profile with --force"
        )
    source = Path(args.file).expanduser()
    try:
        data = source.read_bytes()
    except OSError as e:
        raise NymchatError(f"cannot read {source}: {e.strerror}") from None
    passphrase = get_passphrase(
        Path(args.passphrase_file).expanduser() if args.passphrase_file else None
    )
    manifest, database = backup.open_backup(data, passphrase)
    identity = keystore.unlock(home, passphrase, manifest["keystore"])
    ensure_home(home)
    keystore.path_in(home).unlink(missing_ok=True)
    for name in DATA_FILES:  # without their identity they open no more
        (home / name).unlink(missing_ok=True)
    write_atomic(home / "client.db", database)
    profile = Profile(home, identity)
    try:
        dropped = profile.restored()
        username, contacts = profile.username, profile.contact_count()
    finally:
        profile.close()
    # Last: a restore cut short leaves no identity beside the data, and is simply redone.
    write_atomic(
        keystore.path_in(home), (json.dumps(manifest["keystore"], indent=2) + "\n").encode()
    )
    if not args.quiet:
        print(
            f"restored {username or 'an unregistered profile'} ({contacts} contact(s)) into {home}"
        )
        if dropped:
            print("each conversation starts a new session with your next message")
    return 0
