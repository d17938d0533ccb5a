"""What a command asks of a profile, answered as JSON-able data: by the process serving
the profile (`chat`, `inbox --follow`, `daemon`), through its control socket with no
passphrase asked, or, when none runs, by the command itself on an engine of its own. One
table of methods for both, and for the JSON-RPC API (`nymchat.client.rpc`, docs/API.md),
so every command follows the same rule (docs/SECURITY.md, "The control socket")."""

import argparse
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nymchat.client import access, vocabulary
from nymchat.client.contactids import checked
from nymchat.client.directpaths import ACTIONS
from nymchat.client.engine import Engine
from nymchat.client.groups import group_name
from nymchat.client.records import Contact, Group
from nymchat.client.vocabulary import JsonObject
from nymchat.errors import KeystoreError, UsageError
from nymchat.identity import fingerprint
from nymchat.protocol import names
from nymchat.sentences import shown

PREVIEW = 80  # characters of a waiting message's text in `outbox`
_TYPES = {str: "a string", int: "an integer", bool: "true or false", list: "a list of names"}


class UnknownMethod(UsageError):
    message = "no such method"


class BadParams(UsageError):
    message = "a parameter is missing, unknown or of the wrong type"


def safety(engine: Engine, contact: Contact) -> JsonObject:
    """The safety numbers and fingerprints of a contact, as `verify` gives them to
    scripts: `new_key` is the key `trust` would pin, while a change waits."""
    new = None
    if contact.new_identity is not None and contact.new_account_key is not None:
        new = {
            "safety_number": engine.new_safety_number(contact),
            "fingerprint": fingerprint(contact.new_identity, contact.new_account_key),
        }
    return {
        **described(engine, contact.username),
        "safety_number": engine.safety_number(contact),
        "fingerprint": fingerprint(contact.identity, contact.account_key),
        "verified": contact.verified,
        "key_changed": contact.changed,
        "new_key": new,
    }


def described(engine: Engine, contact_id: str) -> JsonObject:
    """A contact as results describe one: `username` as the person sees and types it
    (`Engine.display`), `id` the stable contact id."""
    return {"username": engine.display(contact_id), "id": contact_id}


def conversation(name: str) -> str:
    """A conversation as the user names it: a person (`name`, `name@petname`, a contact's
    id), or a group as `#name`."""
    return "#" + group_name(name) if name.startswith("#") else checked(name)


def group(g: Group) -> JsonObject:
    """A group as `group.show` gives it: members with their trust (`you`, `verified`,
    `pinned`, `unconfirmed`, `mismatch`; `name` null when the group named none)."""
    return {
        "name": g.name,
        "group_id": g.group_id.hex(),
        "epoch": g.epoch,
        "unread": g.unread,
        "members": [
            {"name": m.name, "identity": m.identity.hex(), "trust": m.trust.value}
            for m in g.members
        ],
    }


def _members(params: JsonObject) -> list[str]:
    return [checked(name) for name in params.get("members", [])]


def _group_change(action: str) -> Callable[[Engine, JsonObject], Awaitable[JsonObject]]:
    """`group.create`, `group.add`, `group.remove`: the group as it is after."""

    async def run(engine: Engine, params: JsonObject) -> JsonObject:
        change = getattr(engine, f"group_{action}")
        return {"group": group(await change(group_name(params["name"]), _members(params)))}

    return run


async def _group_leave(engine: Engine, params: JsonObject) -> JsonObject:
    name = group_name(params["name"])
    await engine.group_leave(name)
    return {"left": name}


async def _group_list(engine: Engine, params: JsonObject) -> JsonObject:
    return {"groups": [group(g) for g in engine.groups()]}


async def _group_show(engine: Engine, params: JsonObject) -> JsonObject:
    return {"group": group(engine.group(group_name(params["name"])))}


async def _send(engine: Engine, params: JsonObject) -> JsonObject:
    to = conversation(params["to"])
    if params.get("wait", True):
        message_id = await engine.send(to, params["text"])
    else:  # stored; a serving process sends it at once, else the next command that connects
        message_id = engine.queue(to, params["text"])
        if engine.online:
            engine.flush_soon()
    message = engine.message(message_id)
    status = message.status.value if message is not None else "queued"
    return {"message_id": message_id.hex(), "to": engine.display(to), "status": status}


async def _lookup(engine: Engine, params: JsonObject) -> JsonObject:
    identity = params.get("identity")  # hex, from a contact card
    if identity is not None and not re.fullmatch("[0-9a-f]{64}", identity):
        raise BadParams("lookup: 'identity' is not 64 hexadecimal digits")
    contact = await engine.lookup(params["name"], bytes.fromhex(identity) if identity else None)
    return {
        "contact": {**contact.to_record(), **described(engine, contact.username)},
        "safety_number": engine.safety_number(contact),
        "new_safety_number": engine.new_safety_number(contact),
    }


def _direct_state(engine: Engine, username: str) -> str | None:
    """Direct mode with `username` as the API names it (`DirectStatus`'s value), or None."""
    status = engine.direct_status(username)
    return None if status is None else status.value


def _direct(action: str) -> Callable[[Engine, JsonObject], Awaitable[JsonObject]]:
    async def run(engine: Engine, params: JsonObject) -> JsonObject:
        username = await engine.direct_action(action, params["name"])
        return {
            **described(engine, username),
            "direct": _direct_state(engine, username),
        }

    return run


async def _contacts(engine: Engine, params: JsonObject) -> JsonObject:
    blocked = engine.blocked()
    contacts = [
        {
            **described(engine, c.username),
            "verified": c.verified,
            "key_changed": c.changed,
            "direct": _direct_state(engine, c.username),
            "blocked": c.username in blocked,
            "contact": True,
        }
        for c in engine.contact_list()
    ]
    pinned = {c["id"] for c in contacts}
    contacts += [
        {
            **described(engine, name),
            "verified": False,
            "key_changed": False,
            "direct": None,
            "blocked": True,
            "contact": False,
        }
        for name in sorted(blocked - pinned)
    ]
    return {"contacts": contacts}


async def _history(engine: Engine, params: JsonObject) -> JsonObject:
    """A contact's conversation, or a group's (`#name`)."""
    name = params["name"]
    if name.startswith("#"):
        username = "#" + engine.group(group_name(name)).name
    else:
        username = engine.known(name).username
    last = max(0, params.get("last", 50))
    shown = engine.display(username)
    history = [
        {**record, **{k: shown for k in ("from", "to") if k in record}}
        for record in map(vocabulary.message, engine.history(username, last))
    ]
    return {"username": shown, "messages": history}


async def _show(engine: Engine, params: JsonObject) -> JsonObject:
    return {"contact": safety(engine, engine.known(params["name"]))}


async def _verify(engine: Engine, params: JsonObject) -> JsonObject:
    username = engine.known(params["name"]).username
    return {"contact": safety(engine, engine.mark_verified(username))}


async def _trust(engine: Engine, params: JsonObject) -> JsonObject:
    contact = engine.trust(checked(params["name"]), params["number"])
    return {
        "trusted": engine.display(contact.username),
        "id": contact.username,
        "safety_number": engine.safety_number(contact),
    }


async def _remove(engine: Engine, params: JsonObject) -> JsonObject:
    """Exactly the contact named (see `Engine.known`); a record removed or altered in the
    file is forgotten too."""
    try:
        contact = engine.known(params["name"])
        username, was_direct = contact.username, contact.direct is not None
        shown = engine.display(username)  # (before the contact is gone)
    except KeystoreError:
        username, was_direct = names.normalize(params["name"]), False
        shown = username
    engine.remove(username)
    return {"removed": shown, "id": username, "was_direct": was_direct}


async def _block(engine: Engine, params: JsonObject) -> JsonObject:
    blocked = engine.block(params["name"])
    return {"blocked": engine.display(blocked), "id": blocked}


async def _unblock(engine: Engine, params: JsonObject) -> JsonObject:
    unblocked = engine.unblock(params["name"])
    return {"unblocked": engine.display(unblocked), "id": unblocked}


async def _outbox(engine: Engine, params: JsonObject) -> JsonObject:
    """What waits, each with the start of its text (the whole is in `history`)."""
    return {
        "outbox": [
            {
                "id": m.id.hex(),
                "to": engine.display(m.peer),
                **vocabulary.stamp("time", m.time),
                "preview": m.text[:PREVIEW],
                "bytes": len(m.text.encode()),
                "status": m.status.value,
            }
            for m in engine.waiting()
        ]
    }


async def _drop(engine: Engine, params: JsonObject) -> JsonObject:
    message = engine.drop(params["id"])
    return {
        "dropped": message.id.hex(),
        "to": engine.display(message.peer),
        "reason": message.reason,
    }


async def _inbox(engine: Engine, params: JsonObject) -> JsonObject:
    """What came since the last `inbox`, from the process that takes messages in."""
    return {
        "messages": [vocabulary.event(shown(m, engine.display)) for m in engine.since_last_inbox()]
    }


async def _strangers(engine: Engine, params: JsonObject) -> JsonObject:
    """The policy for strangers; with `policy` (and `bits`), set first and given to the
    node (`node_told`: whether it confirmed; else at the next connection)."""
    if "policy" in params:
        await engine.set_strangers(access.policy(params["policy"], params.get("bits")))
    strangers = engine.strangers()
    return {
        "strangers": access.words(strangers),
        "bits": strangers if strangers not in (access.ALLOW, access.DENY) else None,
        "node_told": engine.access.wanted() is None,
    }


async def _names(engine: Engine, params: JsonObject) -> JsonObject:
    """The contacts' names alone, for shell completion."""
    return {"names": [engine.display(c.username) for c in engine.contact_list()]}


@dataclass(frozen=True)
class Method:
    """An operation and its parameters: `params` required, `optional` not, each with its
    JSON type; `node` when it needs the node (else an offline engine answers)."""

    run: Callable[[Engine, JsonObject], Awaitable[JsonObject]]
    params: dict[str, type] = field(default_factory=dict)
    optional: dict[str, type] = field(default_factory=dict)
    node: bool | Callable[[JsonObject], bool] = False  # (or whether, by its parameters)


NAME: dict[str, type] = {"name": str}
MEMBERS: dict[str, type] = {"name": str, "members": list}
METHODS = {
    # A send with `wait` false is only stored: the next command that connects sends it.
    "send": Method(
        _send, {"to": str, "text": str}, {"wait": bool}, node=lambda p: p.get("wait", True)
    ),
    "lookup": Method(_lookup, NAME, {"identity": str}, node=True),
    "contacts.list": Method(_contacts),
    "contacts.names": Method(_names),
    "contacts.show": Method(_show, NAME),
    "contacts.verify": Method(_verify, NAME),
    "contacts.trust": Method(_trust, {"name": str, "number": str}),
    "contacts.remove": Method(_remove, NAME),
    "contacts.block": Method(_block, NAME),
    "contacts.unblock": Method(_unblock, NAME),
    "contacts.strangers": Method(
        _strangers, {}, {"policy": str, "bits": int}, node=lambda p: "policy" in p
    ),
    "history": Method(_history, NAME, {"last": int}),
    **{f"direct.{action}": Method(_direct(action), NAME, node=True) for action in ACTIONS},
    "group.create": Method(_group_change("create"), NAME, {"members": list}, node=True),
    "group.add": Method(_group_change("add"), MEMBERS, node=True),
    "group.remove": Method(_group_change("remove"), MEMBERS, node=True),
    "group.leave": Method(_group_leave, NAME, node=True),
    "group.list": Method(_group_list),
    "group.show": Method(_group_show, NAME),
    "outbox.list": Method(_outbox),
    "outbox.drop": Method(_drop, {"id": str}),
    "inbox": Method(_inbox),
}


def check(method: str, params: JsonObject) -> Method:
    """The method named, once `params` are what it takes: raises `UnknownMethod` or
    `BadParams`."""
    known = METHODS.get(method)
    if known is None:
        raise UnknownMethod(f"no method {method!r}")
    unknown = set(params) - set(known.params) - set(known.optional)
    if unknown:
        raise BadParams(f"{method}: no parameter {sorted(unknown)[0]!r}")
    missing = [name for name in known.params if name not in params]
    if missing:
        raise BadParams(f"{method}: {missing[0]!r} is missing")
    for name, value in params.items():
        kind = known.params.get(name) or known.optional[name]
        wrong = type(value) is not kind  # exactly: a bool is not an int here
        if wrong or (isinstance(value, list) and not all(type(i) is str for i in value)):
            raise BadParams(f"{method}: {name!r} is not {_TYPES[kind]}")
    return known


async def call(engine: Engine, method: str, params: JsonObject) -> JsonObject:
    """The answer to one call, its parameters checked; raises `NymchatError`
    (`UsageError` for a name that is not valid)."""
    known = check(method, params)
    try:
        return await known.run(engine, params)
    except names.InvalidName as e:
        given = params.get("name", params.get("to"))
        if "members" in params and _valid(group_name, params["name"]):  # a member is not valid
            given = next((n for n in params["members"] if not _valid(checked, n)), given)
        raise UsageError(f"'{given}': {e}") from None


def _valid(check: Callable[[str], str], name: str) -> bool:
    try:
        check(name)
    except names.InvalidName:
        return False
    return True


def needs_node(method: str, params: JsonObject) -> bool:
    node = METHODS[method].node
    return node(params) if callable(node) else node


def perform(
    args: argparse.Namespace,
    method: str,
    params: JsonObject,
    slow: Callable[[], object] | None = None,
) -> JsonObject:
    """The answer of the process serving this profile if one runs, else of an engine of
    this command's own (unlocking the profile, and connecting only if the method needs
    it); `slow` is called if the node takes more than a second once connected."""
    import asyncio

    from nymchat.client.connect import delegate, open_engine, unlock

    served = delegate(args, method, params)
    if served is not None:
        return served
    profile = unlock(args)

    async def here() -> JsonObject:
        if not needs_node(method, params):
            return await call(Engine.offline(profile), method, params)
        async with open_engine(args, profile=profile) as engine:
            timer = asyncio.get_running_loop().call_later(1.0, slow or (lambda: None))
            try:
                return await call(engine, method, params)
            finally:
                timer.cancel()

    try:
        return asyncio.run(here())
    finally:
        profile.close()
