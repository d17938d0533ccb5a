"""``nymchat node backup DEST`` and ``nymchat node restore SRC``: the SQLite store's
backups (nymchat/node/backup.py). A PostgreSQL store has its own tools."""

import argparse
import json
import logging
from pathlib import Path

from nymchat.node.settings import SETTINGS

WHERE = ("data", "store")  # the settings that say where the database is


def add_actions(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="node_action", metavar="ACTION")
    backup = actions.add_parser(
        "backup",
        help="copy the node's database to DEST, while it runs or not",
        description="Copy the node's SQLite database to DEST (mode 0600), consistently, "
        "while the node runs or not. The node key is not in it: keep the key file "
        "(DATA/identity.json) and its password too. A PostgreSQL store is backed up "
        "with pg_dump.",
    )
    backup.add_argument("dest", metavar="DEST", help="the file to write")
    backup.add_argument("--force", action="store_true", help="replace DEST if it exists")
    backup.add_argument("--json", action="store_true", help="print the result as JSON")
    backup.set_defaults(handler="nymchat.commands.node_backup:backup")
    restore = actions.add_parser(
        "restore",
        help="replace the stopped node's database with a backup",
        description="Replace the node's SQLite database with SRC, a `node backup`, once "
        "checked: the node must be stopped; the replaced file is kept as "
        "node.db.before-restore. The backup opens only with the node key it was made "
        "with.",
    )
    restore.add_argument("src", metavar="SRC", help="the backup to restore")
    restore.set_defaults(handler="nymchat.commands.node_backup:restore")
    for action in (backup, restore):  # also after the action: `node backup DEST --data DIR`
        action.add_argument(
            "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML file of settings"
        )
        for s in SETTINGS:
            if s.name in WHERE:
                action.add_argument(
                    f"--{s.name}",
                    dest=f"node_{s.name}",
                    metavar=s.metavar,
                    default=argparse.SUPPRESS,
                    help=s.help,
                )


def _database(args: argparse.Namespace) -> tuple[Path, Path]:
    """The node's data directory and its SQLite database, from the node's settings."""
    from nymchat.commands.node import _home
    from nymchat.errors import UsageError
    from nymchat.node.settings import SettingsError, resolve
    from nymchat.node.store import POSTGRES_URLS

    try:
        settings, _ = resolve(args, _home(args))
    except SettingsError as e:
        raise UsageError(str(e)) from None
    data, store = Path(settings["data"]), settings["store"]
    if store and store.startswith(POSTGRES_URLS):
        raise UsageError(
            f"`nymchat node {args.node_action}` is for a SQLite store; this node's is "
            "PostgreSQL: back it up with pg_dump, restore it with pg_restore"
        )
    return data, Path(store or data / "node.db")  # as the node opens it


def backup(args: argparse.Namespace) -> int:
    from nymchat import keystore
    from nymchat.node.backup import backup

    data, database = _database(args)
    dest = Path(args.dest).expanduser()
    summary = backup(database, dest, force=args.force)
    key = keystore.path_in(data)
    if args.json:
        print(
            json.dumps(
                {
                    "backup": str(dest),
                    "bytes": summary.size,
                    "users": summary.users,
                    "queued_messages": summary.queued,
                    "schema_version": summary.schema_version,
                    "key_file": str(key),
                }
            )
        )
    elif not args.quiet:
        print(
            f"backed up {database} to {dest} ({-(-summary.size // 1024)} KiB): "
            f"{summary.users} user(s), {summary.queued} queued message(s), "
            f"schema version {summary.schema_version}"
        )
        print(
            f"the node key is not in it: keep {key} and its password too "
            "(the database opens only with that key)"
        )
    return 0


def restore(args: argparse.Namespace) -> int:
    from nymchat import keystore
    from nymchat.database import newest_schema
    from nymchat.errors import Busy
    from nymchat.home import ensure_home, lock
    from nymchat.node.backup import kept, restore

    data, database = _database(args)
    source = Path(args.src).expanduser()
    ensure_home(data)
    try:
        held = lock(data, "node")  # the lock a running node holds
    except Busy:
        raise Busy(f"a node is running on {data}: stop it, then restore") from None
    try:
        replaced = database.exists()
        summary = restore(source, database)
    finally:
        held.close()
    if not args.quiet:
        later = (
            f" (the node brings it to version {newest_schema('nymchat.node')} when it starts)"
            if summary.schema_version < newest_schema("nymchat.node")
            else ""
        )
        print(
            f"restored {source} into {database}: {summary.users} user(s), "
            f"{summary.queued} queued message(s), schema version "
            f"{summary.schema_version}{later}"
        )
        if replaced:
            print(f"the database it replaced is kept as {kept(database)}")
    if not keystore.path_in(data).exists():
        logging.getLogger("nymchat.node").warning(
            "%s holds no node key: copy there the key file (%s) the backup was made with "
            "before the node starts, or it makes a new key and finds no one in the database",
            data,
            keystore.FILENAME,
        )
    return 0
