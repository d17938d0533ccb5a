"""``nymchat contacts card`` and ``nymchat contacts add CARD``: giving one's address (name,
identity, home node) as a contact card, and taking someone's."""

import argparse
import json
import sys

CARD_HELP = "your contact card: one line to give (and its QR code on a terminal)"
ADD_HELP = "take someone's contact card: pin their node (asking first) and them"


def add_arguments(actions) -> None:
    card = actions.add_parser(
        "card",
        help=CARD_HELP,
        description="Print your contact card: one line of text holding your name, your "
        "identity and your home node's contact string, signed by your identity and "
        "certified by the node; then its QR code when standard output is a terminal. "
        "Whoever takes it (`contacts add CARD`) can reach you from any node.",
    )
    card.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    card.add_argument("--json", action="store_true", help="print {card, name, node, fingerprint}")
    add = actions.add_parser(
        "add",
        help=ADD_HELP,
        description="Check a contact card (its node certified the name, its identity "
        "signed it), pin its node under a petname once you confirm the node's key, then "
        "fetch the person's keys there (anonymously) and pin them: refused if the node "
        "gives another identity than the card's.",
    )
    add.add_argument("card", metavar="CARD", help="the card, as `contacts card` prints it")
    add.add_argument(
        "--node-name",
        metavar="PETNAME",
        help="your petname for their node, if you do not know it yet (default: NAME-node)",
    )
    add.add_argument("--yes", action="store_true", help="pin a new node without asking")
    add.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    add.add_argument("--json", action="store_true", help="print as JSON")


def card(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import open_engine, unlock
    from nymchat.client.engine import Engine
    from nymchat.errors import NotRegistered
    from nymchat.identity import fingerprint
    from nymchat.protocol import card

    profile = unlock(args)
    try:
        name, node = profile.me(), profile.node
        if node is None:
            raise NotRegistered()
        certificate = Engine.offline(profile).certificates.held()

        async def certify() -> bytes:
            async with open_engine(args, profile=profile, flush=False) as engine:
                return await engine.certificates.current()

        if certificate is None:  # (an expired one still makes a card)
            certificate = asyncio.run(certify())
        text = card.encode(profile.identity, certificate, node)
        identity = profile.identity
        shown = fingerprint(identity.signing_public, identity.agreement_public)
    finally:
        profile.close()
    if args.json:
        print(json.dumps({"card": text, "name": name, "node": str(node), "fingerprint": shown}))
        return 0
    print(text)
    if sys.stdout.isatty():
        import segno

        segno.make_qr(text, error="l").terminal(out=sys.stdout, compact=True)
    return 0


def add(args: argparse.Namespace) -> int:
    from nymchat.client.connect import unlock
    from nymchat.client.messages import now_ms
    from nymchat.client.nodes import KnownNodes
    from nymchat.client.ops import perform
    from nymchat.commands.nodes import confirm, describe
    from nymchat.protocol import card
    from nymchat.protocol.address import Address, normalize_petname

    taken = card.decode(args.card)  # before the passphrase is asked
    profile = unlock(args)
    try:
        nodes = KnownNodes(profile.store)
        node = nodes.by_key(taken.node.key)
        pinned = node is None
        if node is None:
            petname = normalize_petname(args.node_name or f"{taken.name[:27]}-node")
            nodes.check_free(petname)
            confirm(taken.node, petname, args.yes)
            with profile.store.transaction():
                node = nodes.add(petname, taken.node, "card", now_ms())
        address = nodes.display(Address(taken.name, node.key))
    finally:
        profile.close()
    if pinned and not args.json:
        print(f"pinned {describe(taken.node)} as '{node.petname}'")
    answer = perform(args, "lookup", {"name": address, "identity": taken.identity.hex()})
    if args.json:
        print(
            json.dumps(
                {
                    "address": address,
                    "name": taken.name,
                    "identity": taken.identity.hex(),
                    "node": node.petname,
                    "node_pinned": pinned,
                    "key_changed": answer["contact"]["changed"],
                    "safety_number": answer["safety_number"],
                }
            )
        )
        return 0
    print(f"added {address}: the card checked, the keys at their node are the card's")
    print(f"safety number  {answer['safety_number']}  (compare it with {taken.name} to verify)")
    return 0
