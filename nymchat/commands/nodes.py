"""``nymchat nodes``: the nodes this profile knows, each pinned by its key under a petname
of the user's (like SSH's known hosts); `name@petname` addresses a person there."""

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nymchat.protocol.contact import NodeContact

NOTE = (
    "A node is known by its signing key, pinned the first time, and by a petname you keep "
    "for it: `name@petname` is a person homed there (your home node is `home`). Compare "
    "a new node's key with what its operator published before you pin it."
)


FROM_HELP = "the known node whose directory to ask (default: your home node)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="nodes_command", metavar="ACTION")
    listing = actions.add_parser("list", help="the nodes you know, your home node first")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    add = actions.add_parser(
        "add",
        help="pin a node under a petname, from its contact string or a node's directory",
        description="Pin a node under a petname, once you confirm its key: the node given "
        "by CONTACT, else the one listed under PETNAME in your home node's directory (or "
        "in the directory of --from). " + NOTE,
    )
    add.add_argument("petname", help="your name for the node (3-32 of a-z, 0-9, '_', '-')")
    add.add_argument("contact", metavar="CONTACT", nargs="?", help="the node's contact string")
    add.add_argument("--from", dest="source", metavar="PETNAME", help=FROM_HELP)
    add.add_argument("--yes", action="store_true", help="pin without asking (scripts)")
    add.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    add.add_argument("--json", action="store_true", help="print as JSON")
    rename = actions.add_parser("rename", help="give a known node another petname")
    rename.add_argument("petname", help="its petname now")
    rename.add_argument("new", metavar="NEW", help="its new petname")
    rename.add_argument("--json", action="store_true", help="print as JSON")
    remove = actions.add_parser("remove", help="forget a node (never your home node)")
    remove.add_argument("petname", help="its petname")
    remove.add_argument("--json", action="store_true", help="print as JSON")
    directory = actions.add_parser(
        "directory",
        help="the nodes a node you know lists (default: your home node's directory)",
        description="Ask a node you know (anonymously: it learns no account) for the "
        "signed directory of the other nodes it lists; `nodes add PETNAME` pins one.",
    )
    directory.add_argument("source", metavar="PETNAME", nargs="?", help=FROM_HELP)
    directory.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    directory.add_argument("--json", action="store_true", help="print as JSON")


def describe(contact: "NodeContact") -> str:
    """A node as the user checks it before pinning: its whole key, as its contact string
    writes it, and how many addresses it lists."""
    from nymchat.nym import base58

    count = len(contact.addresses)
    return f"node key {base58.encode(contact.key)} ({count} address{'es' * (count != 1)})"


def confirm(contact: "NodeContact", petname: str, yes: bool) -> None:
    """Asks before a node is pinned, unless `yes`: refused without a terminal."""
    from nymchat.errors import NymchatError, UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "pinning a node asks you to confirm its key; without a terminal give --yes"
        )
    print(describe(contact), file=sys.stderr)
    print("Compare it with what the node's operator published.", file=sys.stderr)
    try:
        answer = input(f"Pin this node as '{petname}'? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise NymchatError("not confirmed: no node was pinned")


def _from_directory(args: argparse.Namespace, profile, petname: str) -> "NodeContact":
    from nymchat.errors import NotFound
    from nymchat.protocol.contact import NodeContact

    for entry in _directory(args, profile, args.source).entries:
        if entry.petname == petname:
            return NodeContact.parse(entry.contact)
    raise NotFound(
        f"the directory lists no node '{petname}' (see `nymchat nodes directory`); "
        "give its contact string to add it"
    )


def _listed(nodes, entry) -> dict:
    """A directory's entry, with the petname of the node here if it is known."""
    from nymchat.nym import base58
    from nymchat.protocol.contact import NodeContact

    contact = NodeContact.parse(entry.contact)
    known = nodes.by_key(contact.key)
    return {
        "petname": entry.petname,
        "key": base58.encode(contact.key),
        "contact": entry.contact,
        "known": known.petname if known else None,
    }


def _entry(node) -> dict:
    from nymchat.nym import base58

    return {
        "petname": node.petname,
        "key": base58.encode(node.key),
        "contact": node.contact,
        "added": node.added,
        "learned": node.learned,
    }


def _directory(args: argparse.Namespace, profile, source: str | None):
    """The directory of the known node `source` (None: home), asked anonymously."""
    import asyncio

    from nymchat import _native
    from nymchat.client.connect import open_engine
    from nymchat.client.messages import now_ms
    from nymchat.client.nodes import KnownNodes
    from nymchat.errors import NotRegistered
    from nymchat.protocol import wire
    from nymchat.protocol.contact import NodeContact

    nodes = KnownNodes(profile.store)
    key = nodes.resolve(source) if source else nodes.home_key()
    if key is None:
        raise NotRegistered()
    known = nodes.by_key(key)
    asked = NodeContact.parse(known.contact) if known else None

    async def ask() -> bytes:
        async with open_engine(args, profile=profile, flush=False) as engine:
            answer = await engine.links.to(key, asked).request(wire.Kind.DIRECTORY)
            return bytes(answer.body["directory"])

    return wire.decode_directory(asyncio.run(ask()), _native.PublicKey(key), now_ms())


def run(args: argparse.Namespace) -> int:
    from nymchat.client.connect import unlock
    from nymchat.client.messages import now_ms
    from nymchat.client.nodes import KnownNodes
    from nymchat.protocol.address import normalize_petname
    from nymchat.protocol.contact import NodeContact
    from nymchat.terminal import line

    command = args.nodes_command or "list"
    if command == "add":  # checked before the passphrase is asked
        petname = normalize_petname(args.petname)
        contact = NodeContact.parse(args.contact) if args.contact else None
    profile = unlock(args)
    try:
        nodes = KnownNodes(profile.store)
        if command == "directory":
            listed = [
                _listed(nodes, entry) for entry in _directory(args, profile, args.source).entries
            ]
            text = "\n".join(
                line(
                    f"{n['petname']:<16} {n['key']}  "
                    + (f"known as '{n['known']}'" if n["known"] else "not known")
                )
                for n in listed
            )
            print(json.dumps(listed) if args.json else text or "no nodes listed")
            return 0
        if command == "list":
            known = [_entry(node) for node in nodes.list()]
            text = "\n".join(line(f"{n['petname']:<16} {n['key']}  {n['learned']}") for n in known)
            print(json.dumps(known) if args.json else text or "no nodes known")
            return 0
        if command == "add":
            learned = "manual"
            if contact is None:
                contact, learned = _from_directory(args, profile, petname), "directory"
            if nodes.by_key(contact.key) is None:  # (a known node: only its contact renewed)
                nodes.check_free(petname)  # before asking
                confirm(contact, petname, args.yes)
            with profile.store.transaction():
                node = nodes.add(petname, contact, learned, now_ms())
            done = f"pinned {describe(contact)} as '{node.petname}'"
        elif command == "rename":
            with profile.store.transaction():
                node = nodes.rename(args.petname, args.new)
            done = f"renamed '{normalize_petname(args.petname)}' to '{node.petname}'"
        else:
            with profile.store.transaction():
                node = nodes.remove(args.petname)
            done = f"forgot the node '{node.petname}'"
    finally:
        profile.close()
    done_key = {"add": "added", "rename": "renamed", "remove": "removed"}[command]
    print(json.dumps({done_key: _entry(node)}) if args.json else line(done))
    return 0
