"""``nymchat lookup NAME``: fetch and pin a user's keys."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", help="the username to look up (NAME@PETNAME: at a node you know by that name)"
    )
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from nymchat.client.contactids import checked
    from nymchat.client.ops import perform
    from nymchat.commands.safety import describe
    from nymchat.identity import fingerprint

    checked(args.name)  # a name that cannot be: before any passphrase or nym-client

    answer = perform(args, "lookup", {"name": args.name})
    contact, safety, new_safety = (
        answer["contact"],
        answer["safety_number"],
        answer["new_safety_number"],
    )
    info = {
        "username": contact["username"],
        "id": contact["id"],
        "identity": contact["identity"],
        "fingerprint": fingerprint(
            bytes.fromhex(contact["identity"]), bytes.fromhex(contact["account_key"])
        ),
        "safety_number": safety,
        "verified": contact["verified"],
        "key_changed": contact["changed"],
        "new_key": None,
    }
    if contact["changed"]:  # the key `trust` would pin
        info["new_key"] = {
            "identity": contact["new_identity"],
            "safety_number": new_safety,
            "fingerprint": fingerprint(
                bytes.fromhex(contact["new_identity"]), bytes.fromhex(contact["new_account_key"])
            ),
        }
    if args.json:
        print(json.dumps(info))
        return 0
    if contact["changed"]:
        print(f"{info['username']}  fingerprint of the NEW key {info['new_key']['fingerprint']}")
        print(describe(contact["username"], safety, new_safety, False, "nymchat contacts trust"))
    else:
        print(f"{info['username']}  fingerprint {info['fingerprint']}")
        print(
            f"safety number  {safety}"
            f"{'  (verified)' if contact['verified'] else '  (not verified)'}"
        )
    return 0
