"""``nymchat lookup NAME``: fetch and pin a user's keys."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the username to look up")
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from nymchat.client.connect import delegate, open_engine
    from nymchat.identity import fingerprint

    async def main():
        async with open_engine(args) as engine:
            contact = await engine.lookup(args.name)
            return contact, engine.safety_number(contact)

    served = delegate(args, {"op": "lookup", "name": args.name})
    contact, safety = (served["contact"], served["safety_number"]) if served \
        else asyncio.run(main())
    identity = bytes.fromhex(contact.get("new_identity") or contact["identity"])
    info = {"username": contact["username"], "identity": identity.hex(),
            "fingerprint": fingerprint(identity, bytes.fromhex(contact["account_key"])),
            "safety_number": safety, "verified": contact["verified"],
            "key_changed": contact["changed"]}
    if args.json:
        print(json.dumps(info))
        return 0
    if contact["changed"]:
        print(f"WARNING: {contact['username']}'s key has CHANGED since you pinned it. Sending "
              f"is blocked until you compare safety numbers and run "
              f"`nymchat contacts trust {contact['username']}`.")
    print(f"{info['username']}  fingerprint {info['fingerprint']}")
    print(f"safety number  {safety}"
          f"{'  (verified)' if contact['verified'] else '  (not verified)'}")
    return 0
