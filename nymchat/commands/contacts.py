"""``nymchat contacts``: list, show, verify, trust, remove, block and unblock contacts;
invite them to, accept, decline and end direct mode; say what strangers' first messages
need; give one's contact card and take another's (commands.contacts_card)."""

import argparse
import json
import sys
import time

from nymchat.commands import contacts_card


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="contacts_command", metavar="ACTION")
    listing = actions.add_parser(
        "list", help="your contacts, whether they are verified, and whom you blocked"
    )
    listing.add_argument("--json", action="store_true", help="print as JSON")
    for name, summary in (
        ("show", "the conversation with a contact (or a group: '#NAME'), with delivery marks"),
        ("verify", "show the safety number to compare; --mark when it matches"),
        ("trust", "accept a contact's changed key after checking it"),
        ("remove", "forget a contact, their sessions and the conversation"),
        (
            "block",
            "drop their messages unread, send them no receipts, "
            "ignore their invitations (local: nobody is told)",
        ),
        ("unblock", "show their messages again"),
    ):
        sub = actions.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        sub.add_argument("name", help="the contact's username")
        sub.add_argument("--json", action="store_true", help="print as JSON")
        if name == "verify":
            sub.add_argument(
                "--mark",
                action="store_true",
                help="mark the contact verified (the numbers matched)",
            )
        if name == "trust":
            sub.add_argument(
                "number",
                nargs="+",
                metavar="NUMBER",
                help="the new key's safety number as `contacts verify` shows "
                "it (all of it, or at least its first 4 groups): only that "
                "key is trusted",
            )
        if name == "show":
            sub.add_argument(
                "-n",
                "--last",
                type=int,
                default=50,
                metavar="N",
                help="how many messages (default 50)",
            )
    strangers = actions.add_parser(
        "strangers",
        help="whether people who are not your contacts may write to you: "
        "allow, pow [BITS] (default), deny",
        description=STRANGERS_NOTE,
    )
    strangers.add_argument(
        "policy",
        nargs="?",
        choices=("allow", "pow", "deny"),
        help="allow: free; pow: a proof of work of BITS (default 16) bits for each of "
        "their messages; deny: refused. Without it: the setting now",
    )
    strangers.add_argument(
        "bits", nargs="?", type=int, metavar="BITS", help="with pow: 1 to 24 (default 16)"
    )
    strangers.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
    strangers.add_argument("--json", action="store_true", help="print as JSON")
    contacts_card.add_arguments(actions)
    for name, summary in DIRECT_COMMANDS.items():
        sub = actions.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + ". " + DIRECT_NOTE
        )
        sub.add_argument("name", help="the contact's username")
        sub.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")
        sub.add_argument("--json", action="store_true", help="print as JSON")


DIRECT_COMMANDS = {
    "direct": "invite a contact to direct mode (talking without the node); nothing is "
    "disclosed until they accept",
    "accept-direct": "accept a contact's invitation to direct mode: your nym address goes "
    "to them only",
    "decline-direct": "decline a contact's invitation to direct mode",
    "end-direct": "end direct mode with a contact (or withdraw an invitation)",
}
DIRECT_NOTE = (
    "In direct mode messages go from client to client through the mixnet: the "
    "node no longer sees that you exchange them. The one who accepts discloses "
    "their nym address to the one who invited; the inviter's address stays "
    "hidden (they are answered through SURBs). If the direct path fails, messages "
    "go through the node again. docs/SECURITY.md says what each side learns."
)


STRANGERS_NOTE = (
    "Your node does not learn who sends you a message. Your contacts reach you with an "
    "access key your messages give them (removing a contact changes it); anyone else is "
    "a stranger, whose messages (until you write back) are free (allow), need a proof of "
    "work of BITS bits each (pow, the default, 16 bits: a fraction of a second), or are "
    "refused (deny). The setting is kept in your profile and given to the node."
)


def _mark(message: dict) -> str:
    """An outgoing message's status as every face words it (the reason came from the node:
    neutralised)."""
    from nymchat.terminal import line

    if message["status"] == "failed":
        return f"FAILED: {line(message.get('reason', ''))}"
    return {"queued": "queued", "accepted": "accepted by node"}.get(
        message["status"], message["status"]
    )


def _emit(args, data, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _describe(contact: dict) -> str:
    from nymchat.client.records import DirectStatus
    from nymchat.sentences import direct_words

    if not contact["contact"]:
        return "blocked (not a contact)"
    state = (
        "KEY CHANGED"
        if contact["key_changed"]
        else "verified"
        if contact["verified"]
        else "not verified"
    )
    return (
        state
        + (f"  {direct_words(DirectStatus(contact['direct']))}" if contact["direct"] else "")
        + ("  BLOCKED" if contact["blocked"] else "")
    )


def run(args: argparse.Namespace) -> int:
    """Every action goes through `nymchat.client.ops`: to the chat (or `inbox --follow`)
    serving the profile if one runs, without asking for the passphrase, else here."""
    from nymchat.client.ops import perform
    from nymchat.commands.safety import describe
    from nymchat.sentences import DIRECT_DONE
    from nymchat.terminal import block, line

    command = args.contacts_command or "list"
    if command in ("card", "add"):
        return contacts_card.card(args) if command == "card" else contacts_card.add(args)
    if command in DIRECT_COMMANDS:
        action = {
            "direct": "invite",
            "accept-direct": "accept",
            "decline-direct": "decline",
            "end-direct": "end",
        }[command]
        answer = perform(args, f"direct.{action}", {"name": args.name})
        _emit(
            args,
            {"username": answer["username"], "action": action, "direct": answer["direct"]},
            DIRECT_DONE[action].format(answer["username"]),
        )
        return 0
    if command == "strangers":
        params: dict = {} if args.policy is None else {"policy": args.policy}
        if args.bits is not None:
            params["bits"] = args.bits
        answer = perform(args, "contacts.strangers", params)
        told = "" if answer["node_told"] else " (your node is told at the next connection)"
        _emit(args, answer, f"strangers: {answer['strangers']}{told}")
        return 0
    if command == "list":
        contacts = perform(args, "contacts.list", {})["contacts"]
        _emit(
            args,
            contacts,
            "\n".join(f"{line(c['username']):<32} {_describe(c)}" for c in contacts)
            or "no contacts yet",
        )
        return 0
    if command == "remove":
        answer = perform(args, "contacts.remove", {"name": args.name})
        shown = line(answer["removed"])
        if answer["was_direct"]:
            print(
                f"nymchat: direct mode with {shown} ended here without telling them; "
                f"their client goes back to the node once a direct message goes "
                f"unanswered (`nymchat contacts end-direct {shown}` before removing "
                "tells them)",
                file=sys.stderr,
            )
        _emit(args, {"removed": answer["removed"]}, f"removed {shown}")
        return 0
    if command in ("block", "unblock"):
        answer = perform(args, f"contacts.{command}", {"name": args.name})
        username = answer[f"{command}ed"]
        _emit(
            args,
            answer,
            f"blocked {username}: their messages are dropped unread, no "
            "receipts go to them, their invitations are ignored (they and "
            "the node are told nothing)"
            if command == "block"
            else f"unblocked {username}: their new messages are shown again",
        )
        return 0
    if command == "trust":
        answer = perform(
            args, "contacts.trust", {"name": args.name, "number": " ".join(args.number)}
        )
        _emit(
            args,
            answer,
            f"trusting {answer['trusted']}'s new key; safety number now {answer['safety_number']}",
        )
        return 0
    if command == "verify":
        method = "contacts.verify" if args.mark else "contacts.show"
        contact = perform(args, method, {"name": args.name})["contact"]
        username = contact["username"]
        _emit(
            args,
            contact,
            describe(
                username,
                contact["safety_number"],
                (contact["new_key"] or {}).get("safety_number"),
                contact["verified"],
                "nymchat contacts trust",
            )
            + (
                ""
                if contact["verified"] or contact["key_changed"]
                else f", then `nymchat contacts verify {username} --mark`"
            ),
        )
        return 0
    answer = perform(args, "history", {"name": args.name, "last": args.last})
    if args.json:
        print(json.dumps(answer["messages"]))
        return 0
    for m in answer["messages"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["time_ms"] / 1000))
        who = "you" if m["direction"] == "out" else m.get("author", answer["username"])
        status = f"  [{_mark(m)}]" if m["direction"] == "out" else ""
        print(f"[{when}] {line(who)}: {block(m['text'])}{status}")
    return 0
