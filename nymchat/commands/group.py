"""``nymchat group``: create a group conversation (MLS), add and remove members, leave it,
list the groups and show one's members with their trust."""

import argparse
import json

TRUST = {  # how `group show` words a member's trust (`--json`: the key)
    "you": "you",
    "verified": "verified",
    "pinned": "contact, not verified",
    "unconfirmed": "named by the group only (not a contact)",
    "mismatch": "MISMATCH: a contact of that name has another key; sending is blocked",
}


NODE_ACTIONS = ("create", "add", "remove", "leave")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    for action, summary, members in (
        ("create", "create a group, with the members named", "*"),
        ("add", "add members (their group keys are claimed from their nodes)", "+"),
        ("remove", "remove members: they cannot read what is said after", "+"),
        ("leave", "leave a group: what is said there no longer reaches you", None),
        ("list", "your groups, with their size and unread messages", ""),
        ("show", "a group's members with their trust, and its epoch", None),
    ):
        sub = actions.add_parser(
            action, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        if members != "":
            sub.add_argument("group", metavar="NAME", help="the group's name (with or without #)")
        if members:
            sub.add_argument(
                "members",
                nargs=members,
                metavar="MEMBER",
                help="a person: NAME, or NAME@NODE at another node (a contact's key must "
                "match the one you pinned)",
            )
        if action in NODE_ACTIONS:
            sub.add_argument(
                "--nym", metavar="URL", help="your nym-client (default: the last used)"
            )
        sub.add_argument("--json", action="store_true", help="print as JSON")


def _members(group: dict) -> str:
    count = len(group["members"])
    return f"{count} member{'s' if count != 1 else ''}"


def _show(group: dict) -> str:
    from nymchat.terminal import line

    rows = [f"#{line(group['name'])}  epoch {group['epoch']}  ({_members(group)})"]
    for member in group["members"]:
        name = line(member["name"]) if member["name"] is not None else "(no name)"
        rows.append(f"  {name:<32} {TRUST.get(member['trust'], line(member['trust']))}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Every action goes through `nymchat.client.ops` (a running chat or daemon answers
    if one serves the profile)."""
    from nymchat.client.ops import perform
    from nymchat.terminal import line

    action = args.group_command
    params: dict = {} if action == "list" else {"name": args.group}
    members = getattr(args, "members", None)
    if members is not None:
        params["members"] = members
    answer = perform(args, f"group.{action}", params)
    if args.json:
        print(json.dumps(answer))
    elif args.quiet:
        pass
    elif action == "list":
        print(
            "\n".join(
                f"#{line(g['name']):<32} {_members(g)}"
                + (f", {g['unread']} unread" if g["unread"] else "")
                for g in answer["groups"]
            )
            or "no groups yet: `nymchat group create NAME MEMBER...`"
        )
    elif action == "leave":
        print(f"left #{line(answer['left'])}: what is said there no longer reaches you")
    else:
        name, who = line(answer["group"]["name"]), line(", ".join(members or []))
        done = {
            "create": f"created #{name}",
            "add": f"added {who} to #{name}",
            "remove": f"removed {who} from #{name}",
        }
        if action in done:
            print(done[action])
        print(_show(answer["group"]))
    return 0
