"""``nymchat contacts``: list, show, verify, trust and remove contacts; invite them to,
accept, decline and end direct mode."""

import argparse
import json
import sys
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
        if name == "trust":
            sub.add_argument("number", nargs="+", metavar="NUMBER",
                             help="the new key's safety number as `contacts verify` shows "
                                  "it (all of it, or at least its first 4 groups): only that "
                                  "key is trusted")
        if name == "show":
            sub.add_argument("-n", "--last", type=int, default=50, metavar="N",
                             help="how many messages (default 50)")
    for name, summary in DIRECT_COMMANDS.items():
        sub = actions.add_parser(name, help=summary, description=summary[0].upper()
                                 + summary[1:] + ". " + DIRECT_NOTE)
        sub.add_argument("name", help="the contact's username")
        sub.add_argument("--nym", metavar="URL",
                         help="your nym-client (default: the last used)")
        sub.add_argument("--json", action="store_true", help="print as JSON")


DIRECT_COMMANDS = {
    "direct": "invite a contact to direct mode (talking without the node); nothing is "
              "disclosed until they accept",
    "accept-direct": "accept a contact's invitation to direct mode: your nym address goes "
                     "to them only",
    "decline-direct": "decline a contact's invitation to direct mode",
    "end-direct": "end direct mode with a contact (or withdraw an invitation)",
}
DIRECT_NOTE = ("In direct mode messages go from client to client through the mixnet: the "
               "node no longer sees that you exchange them. The one who accepts discloses "
               "their nym address to the one who invited; the inviter's address stays "
               "hidden (they are answered through SURBs). If the direct path fails, messages "
               "go through the node again. docs/SECURITY.md says what each side learns.")


MARKS = {"sent": "sent", "accepted": "accepted by node", "delivered": "delivered"}


def _safety_json(engine, contact: dict) -> dict:
    """The safety numbers and fingerprints of a contact, as `verify` and `lookup` give them
    to scripts: `new_key` is the key `trust` would pin, while a change waits."""
    from nymchat.identity import fingerprint

    new = None
    if contact["changed"]:
        new = {"safety_number": engine.new_safety_number(contact),
               "fingerprint": fingerprint(bytes.fromhex(contact["new_identity"]),
                                          bytes.fromhex(contact["new_account_key"]))}
    return {"username": contact["username"], "safety_number": engine.safety_number(contact),
            "fingerprint": fingerprint(bytes.fromhex(contact["identity"]),
                                       bytes.fromhex(contact["account_key"])),
            "verified": contact["verified"], "key_changed": contact["changed"], "new_key": new}


def _emit(args, data, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _direct(args: argparse.Namespace, command: str) -> int:
    """Invites, accepts, declines or ends: through the process holding the profile's
    connection if one runs (`chat`, `inbox --follow`), else over a connection of its own."""
    import asyncio

    from nymchat.client.connect import delegate, open_engine, unlock
    from nymchat.client.directmode import DONE
    from nymchat.protocol import names

    username = names.normalize(args.name)

    action = {"direct": "invite", "accept-direct": "accept", "decline-direct": "decline",
              "end-direct": "end"}[command]

    async def main(profile) -> dict:
        async with open_engine(args, profile=profile) as engine:
            await engine.direct_action(action, username)
            return {"username": username, "direct": engine.direct_state(username)}

    answer = delegate(args, {"op": "direct", "action": action, "name": username})
    if answer is None:
        profile = unlock(args)
        try:
            answer = asyncio.run(main(profile))
        finally:
            profile.store.close()
    _emit(args, {"username": username, "action": action, "direct": answer["direct"]},
          DONE[action].format(username))
    return 0


def run(args: argparse.Namespace) -> int:
    from nymchat.client.connect import unlock
    from nymchat.client.engine import Engine
    from nymchat.commands.safety import describe
    from nymchat.errors import KeystoreError
    from nymchat.protocol import names
    from nymchat.terminal import block, line

    command = args.contacts_command or "list"
    if command in DIRECT_COMMANDS:
        return _direct(args, command)
    profile = unlock(args)
    engine = Engine(profile, link=None)
    try:
        if command == "list":
            contacts = profile.store.contacts()
            states = {c["username"]: engine.direct_state(c["username"]) for c in contacts}
            _emit(args, [{"username": c["username"], "verified": c["verified"],
                          "key_changed": c["changed"], "direct": states[c["username"]]}
                         for c in contacts],
                  "\n".join(f"{line(c['username']):<32} "
                            f"{'KEY CHANGED' if c['changed'] else 'verified' if c['verified'] else 'not verified'}"  # noqa: E501
                            + (f"  {states[c['username']]}" if states[c["username"]] else "")
                            for c in contacts) or "no contacts yet")
            return 0
        if command == "remove":  # exactly the contact named: see `Engine.known`
            try:
                contact = engine.known(args.name)
            except KeystoreError:  # a record removed or altered in the file: forget it too
                contact = {"username": names.normalize(args.name)}
            username, shown = contact["username"], line(contact["username"])
            if contact.get("direct"):
                print(f"nymchat: direct mode with {shown} ends here without telling them; "
                      f"their client goes back to the node once a direct message goes "
                      f"unanswered (`nymchat contacts end-direct {shown}` first tells "
                      "them)", file=sys.stderr)
            with profile.store.transaction():
                profile.store.remove_contact(username)
            _emit(args, {"removed": username}, f"removed {shown}")
            return 0
        username = names.normalize(args.name)
        if command == "trust":
            contact = engine.trust(username, " ".join(args.number))
            _emit(args, {"trusted": username, "safety_number": engine.safety_number(contact)},
                  f"trusting {username}'s new key; safety number now "
                  f"{engine.safety_number(contact)}")
            return 0
        contact = engine.known(username)
        if command == "verify":
            if args.mark:
                contact = engine.mark_verified(username)
            _emit(args, _safety_json(engine, contact),
                  describe(username, engine.safety_number(contact),
                           engine.new_safety_number(contact), contact["verified"],
                           "nymchat contacts trust")
                  + ("" if contact["verified"] or contact["changed"] else
                     f", then `nymchat contacts verify {username} --mark`"))
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
            print(f"[{when}] {who}: {block(m['text'])}{mark}")
        return 0
    finally:
        profile.store.close()
