"""``nymchat backup FILE``: the whole profile in one file sealed under its passphrase."""

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="where to write the backup")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    import time

    from nymchat import __version__, keystore
    from nymchat.client import backup
    from nymchat.client.connect import home_of
    from nymchat.client.profile import Profile
    from nymchat.errors import NymchatError
    from nymchat.files import write_atomic
    from nymchat.passphrase import get_passphrase

    target = Path(args.file).expanduser()
    if target.exists() and not args.force:
        raise NymchatError(f"{target} exists; nymchat does not overwrite it without --force")
    if not target.parent.is_dir():
        raise NymchatError(f"cannot write {target}: {target.parent} is not a directory")
    home = home_of(args)
    sealed = keystore.read_sealed(home)  # before asking: is there an identity at all?
    passphrase = get_passphrase(
        Path(args.passphrase_file).expanduser() if args.passphrase_file else None
    )
    # Unlocking proves the passphrase (the backup is sealed under it) and opening the
    # store creates or migrates the database.
    profile = Profile(home, keystore.unlock(home, passphrase, sealed))
    try:
        username, contacts = profile.username, profile.contact_count()
    finally:
        profile.close()
    image = profile.snapshot()  # of the file, once the store is closed
    data = backup.seal(sealed, image, passphrase, int(time.time() * 1000), __version__)
    try:
        write_atomic(target, data)
    except OSError as e:
        raise NymchatError(f"cannot write {target}: {e.strerror}") from None
    if not args.quiet:
        print(
            f"backed up {username or 'an unregistered profile'} ({contacts} contact(s), "
            f"{-(-len(data) // 1024)} KiB) to {target}"
        )
        print(f"it opens with this profile's passphrase: nymchat --home NEW_HOME restore {target}")
    return 0
