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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="nodes_command", metavar="ACTION")
    listing = actions.add_parser("list", help="the nodes you know, your home node first")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    add = actions.add_parser(
        "add",
        help="pin a node under a petname, from its contact string",
        description="Pin a node under a petname, once you confirm its key. " + NOTE,
    )
    add.add_argument("petname", help="your name for the node (3-32 of a-z, 0-9, '_', '-')")
    add.add_argument("contact", metavar="CONTACT", help="the node's contact string")
    add.add_argument("--yes", action="store_true", help="pin without asking (scripts)")
    add.add_argument("--json", action="store_true", help="print as JSON")
    rename = actions.add_parser("rename", help="give a known node another petname")
    rename.add_argument("petname", help="its petname now")
    rename.add_argument("new", metavar="NEW", help="its new petname")
    rename.add_argument("--json", action="store_true", help="print as JSON")
    remove = actions.add_parser("remove", help="forget a node (never your home node)")
    remove.add_argument("petname", help="its petname")
    remove.add_argument("--json", action="store_true", help="print as JSON")


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


def _entry(node) -> dict:
    from nymchat.nym import base58

    return {
        "petname": node.petname,
        "key": base58.encode(node.key),
        "contact": node.contact,
        "added": node.added,
        "learned": node.learned,
    }


def run(args: argparse.Namespace) -> int:
    from nymchat.client.connect import unlock
    from nymchat.client.messages import now_ms
    from nymchat.client.nodes import KnownNodes
    from nymchat.protocol.address import normalize_petname
    from nymchat.protocol.contact import NodeContact
    from nymchat.terminal import line

    command = args.nodes_command or "list"
    if command == "add":  # checked before the passphrase is asked
        petname, contact = normalize_petname(args.petname), NodeContact.parse(args.contact)
    profile = unlock(args)
    try:
        nodes = KnownNodes(profile.store)
        if command == "list":
            known = [_entry(node) for node in nodes.list()]
            text = "\n".join(f"{n['petname']:<16} {n['key']}  {n['learned']}" for n in known)
            print(json.dumps(known) if args.json else line(text) if text else "no nodes known")
            return 0
        if command == "add":
            if nodes.by_key(contact.key) is None:  # (a known node: only its contact renewed)
                nodes.check_free(petname)  # before asking
                confirm(contact, petname, args.yes)
            with profile.store.transaction():
                node = nodes.add(petname, contact, "manual", now_ms())
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
