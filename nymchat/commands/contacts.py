"""``nymchat contacts``: list, show, verify, trust and remove contacts."""

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="contacts_command", metavar="ACTION")
    listing = actions.add_parser("list", help="your contacts and whether they are verified")
    listing.add_argument("--json", action="store_true", help="print as JSON")
    for name, summary in (("show", "the conversation with a contact, with delivery marks"),
                          ("verify", "show the safety number to compare; --mark when it "
                                     "matches"),
                          ("trust", "accept a contact's changed key after checking it"),
                          ("remove", "forget a contact, their sessions and the conversation")):
        sub = actions.add_parser(name, help=summary, description=summary[0].upper()
                                 + summary[1:] + ".")
        sub.add_argument("name", help="the contact's username")
        sub.add_argument("--json", action="store_true", help="print as JSON")
        if name == "verify":
            sub.add_argument("--mark", action="store_true",
                             help="mark the contact verified (the numbers matched)")
        if name == "show":
            sub.add_argument("-n", "--last", type=int, default=50, metavar="N",
                             help="how many messages (default 50)")


MARKS = {"sent": "sent", "accepted": "accepted by node", "delivered": "delivered"}


def _emit(args, data, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def run(args: argparse.Namespace) -> int:
    from nymchat.client.connect import unlock
    from nymchat.client.engine import Engine
    from nymchat.identity import fingerprint
    from nymchat.protocol import names

    profile = unlock(args)
    engine = Engine(profile, link=None)
    command = args.contacts_command or "list"
    try:
        if command == "list":
            contacts = profile.store.contacts()
            _emit(args, [{"username": c["username"], "verified": c["verified"],
                          "key_changed": c["changed"]} for c in contacts],
                  "\n".join(f"{c['username']:<32} "
                            f"{'KEY CHANGED' if c['changed'] else 'verified' if c['verified'] else 'not verified'}"  # noqa: E501
                            for c in contacts) or "no contacts yet")
            return 0
        username = names.normalize(args.name)
        if command == "remove":
            engine.known(username)
            with profile.store.transaction():
                profile.store.remove_contact(username)
            _emit(args, {"removed": username}, f"removed {username}")
            return 0
        if command == "trust":
            contact = engine.trust(username)
            _emit(args, {"trusted": username},
                  f"trusting {username}'s new key; safety number now "
                  f"{engine.safety_number(contact)}")
            return 0
        contact = engine.known(username)
        if command == "verify":
            if args.mark:
                contact = engine.mark_verified(username)
            identity = bytes.fromhex(contact.get("new_identity") or contact["identity"])
            safety = engine.safety_number(contact)
            _emit(args, {"username": username, "safety_number": safety,
                         "fingerprint": fingerprint(identity,
                                                    bytes.fromhex(contact["account_key"])),
                         "verified": contact["verified"], "key_changed": contact["changed"]},
                  f"safety number with {username}:\n  {safety}\n"
                  + ("marked verified" if contact["verified"] else
                     "compare it with theirs (in person or by a channel you trust), then "
                     f"`nymchat contacts verify {username} --mark`"))
            return 0
        history = [m for m in profile.store.history(username, args.last)
                   if m["direction"] in ("in", "out")]
        if args.json:
            print(json.dumps(history))
            return 0
        for m in history:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["time"] / 1000))
            who = "you" if m["direction"] == "out" else username
            mark = f"  [{MARKS[m['status']]}]" if m["direction"] == "out" else ""
            print(f"[{when}] {who}: {m['text']}{mark}")
        return 0
    finally:
        profile.store.close()
