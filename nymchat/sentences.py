"""The engine's events in words, for the faces that speak to a person (the chat, the
commands' notices on stderr, a delegated command's notices). Events that a face shows in
its own way (a received message, a status mark) have no sentence here."""

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from nymchat.client import events as ev
from nymchat.client.records import DirectStatus
from nymchat.terminal import line

# How direct mode stands, in the words `--json` outputs have always used.
DIRECT_WORDS = {
    DirectStatus.INVITING: "direct: invitation sent",
    DirectStatus.INVITED: "direct: invited you",
    DirectStatus.CONFIRMING: "direct (path not confirmed yet)",
    DirectStatus.ON: "direct",
}

# What the person is told once they did a direct-mode action ({0}: the contact).
DIRECT_DONE = {
    "invite": "invited {0} to direct mode; it starts when they accept (your address is not "
    "disclosed)",
    "accept": "accepted: your nym address went to {0} only, inside your end-to-end session; "
    "direct mode is on once {0}'s client answers",
    "decline": "declined {0}'s invitation; nothing changes",
    "end": "direct mode with {0} ended; messages go through the node",
}


# The fields of events that hold a contact's id (a group message's `sender` is a member).
CONTACT_FIELDS = ("sender", "peer", "username")


E = TypeVar("E", bound=ev.Event)


def shown(event: E, display: Callable[[str], str]) -> E:
    """`event` with each contact as the person sees and types it (`Engine.display`: `bob`,
    `bob@petname`, `bob@<8 key characters>`) instead of the contact's id."""
    if isinstance(event, ev.MessageReceived) and event.group is not None:
        return event
    changes: dict[str, Any] = {
        name: display(value)
        for name in CONTACT_FIELDS
        if isinstance(value := getattr(event, name, None), str)
    }
    return dataclasses.replace(event, **changes) if changes else event


def direct_words(status: DirectStatus | None) -> str | None:
    return DIRECT_WORDS[status] if status is not None else None


def _direct(event: ev.DirectChanged) -> str | None:
    who, change = event.username, event.change
    if change is ev.DirectChange.INVITED:
        return (
            f"{who} invites you to direct mode: your messages would no longer pass through "
            f"the node, and accepting shows your nym address to {who} only. `nymchat "
            f"contacts accept-direct {who}` (/direct {who} accept) accepts; ignoring it "
            "changes nothing"
        )
    if change is ev.DirectChange.ACCEPTED:
        return f"{who} accepted direct mode; checking the direct path"
    if change is ev.DirectChange.ON:
        return f"direct mode with {who} is on: your messages no longer pass through the node"
    if change is ev.DirectChange.DECLINED and event.by_peer:
        return f"{who} declined direct mode"
    if change is ev.DirectChange.ENDED and event.by_peer:
        return f"{who} ended direct mode; messages go through the node again"
    if change is ev.DirectChange.FAILED:
        if event.by_peer:
            return (
                f"the direct path with {who} failed on their side; messages go through the "
                f"node again (`nymchat contacts direct {who}` tries again)"
            )
        return (
            f"the direct path to {who} failed ({event.reason}); back to the node. "
            f"`nymchat contacts direct {who}` (/direct {who}) tries again"
        )
    return None  # our own doing: the command that did it says so


def speaker(message: ev.MessageReceived) -> str:
    """Who said a received message: "bob", or "#team bob" in a group."""
    return message.sender if message.group is None else f"#{message.group} {message.sender}"


def _group_changed(event: ev.GroupChanged, me: str | None) -> str | None:
    """A change of members by someone else (ours: the command that made it says so); a key
    update alone is not worth a line."""
    done = [
        f"{verb} {', '.join(who)}"
        for verb, who in (("added", event.added), ("removed", event.removed))
        if who
    ]
    if not done or (me is not None and event.by == me):
        return None
    return f"#{event.group}: {event.by or 'a member'} {' and '.join(done)}"


def sentence(event: ev.Event, me: str | None = None) -> str | None:
    """What to tell the person about `event`, or None; `me`: our username, when known."""
    match event:
        case ev.DirectChanged():
            return _direct(event)
        case ev.GroupChanged():
            return _group_changed(event, me)
        case ev.GroupJoined(group=group, by=by):
            return (
                f"{f'{by} added you' if by else 'you were added'} to #{group}: `nymchat "
                f"group show {group}` (/members #{group}) lists who is in it, /msg #{group} "
                "writes to it"
            )
        case ev.GroupRemoved(group=group):
            return f"you were removed from #{group}: what is said there no longer reaches you"
        case ev.GroupSplit(group=group, reason=reason):
            return f"a commit in #{group} could not be applied ({reason}): the group may have split"
        case ev.OutboxNotSent(peer=peer, reason=reason, for_good=True):
            return f"a message to {peer} failed: {reason}; it will not be sent"
        case ev.OutboxNotSent(peer=peer, reason=reason):
            return (
                f"a queued message to {peer} is still waiting: {reason} "
                "(`nymchat outbox` lists what waits)"
            )
        case ev.MessageUnreadable(sender=sender, reason=reason):
            return f"a message from {sender} could not be read ({reason})"
        case ev.ContactMoved(username=username):
            return (
                f"{username} moved to another node (their own signed word): your messages "
                "to them go there from now on"
            )
        case ev.SessionReset(username=username):
            return f"the session with {username} was broken; starting a new one"
        case ev.KeysNotPublished(reason=reason):
            return f"could not publish fresh keys: {reason}"
        case ev.NodeUnreachable(reason=reason):
            return f"the node is not answering ({reason}); retrying"
        case ev.NotSealed(frontends=1):
            return (
                "your messages and lookups to this node are not sealed: it has one frontend, "
                "so they reach it where it knows your account, and it can tell they are yours"
            )
        case ev.NotSealed(frontends=frontends):
            return (
                "your messages and lookups to this node are not sealed: each of its "
                f"{frontends} frontends has carried your account's requests, so it can tell "
                "they are yours"
            )
        case ev.HomeMoved(previous=previous, home=home, silent=silent):
            why = "did not answer" if silent else "is no longer listed by the node"
            return (
                f"the node's frontend {previous} {why}: your account's requests go through "
                f"frontend {home} now (which will not carry your sealed messages)"
            )
        case ev.DescriptorRefused(reason=reason):
            return (
                f"refused the node's list of frontends ({reason}); keeping the one known "
                "(the node may be misconfigured)"
            )
        case ev.InboxCutShort(limit=limit):
            return (
                f"stopped taking messages in after {limit:g} s, as more kept arriving "
                "(the rest waits at the node: run inbox again)"
            )
    return None


def teller(display: Callable[[str], str]) -> Callable[[ev.Event], None]:
    """For a process that serves a profile without a screen (`inbox --follow`, `daemon`):
    what the person should know, as it happens, on stderr."""

    def tell(event: ev.Event) -> None:
        if (text := sentence(shown(event, display))) is not None:
            print(f"nymchat: {line(text)}", file=sys.stderr, flush=True)

    return tell
