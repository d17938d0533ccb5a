"""What a command asks of a profile, answered as JSON-able data: by the process serving
the profile (`chat`, `inbox --follow`), through its control socket with no passphrase
asked, or, when none runs, by the command itself on an engine of its own. One table for
both, so every command follows the same rule (docs/SECURITY.md, "The control socket")."""

import argparse

from nymchat.client.engine import Engine
from nymchat.client.records import Contact
from nymchat.errors import KeystoreError, UsageError
from nymchat.identity import fingerprint
from nymchat.protocol import names
from nymchat.sentences import direct_words

PREVIEW = 80  # characters of a waiting message's text in `outbox`


def safety(engine: Engine, contact: Contact) -> dict:
    """The safety numbers and fingerprints of a contact, as `verify` gives them to
    scripts: `new_key` is the key `trust` would pin, while a change waits."""
    new = None
    if contact.new_identity is not None and contact.new_account_key is not None:
        new = {
            "safety_number": engine.new_safety_number(contact),
            "fingerprint": fingerprint(contact.new_identity, contact.new_account_key),
        }
    return {
        "username": contact.username,
        "safety_number": engine.safety_number(contact),
        "fingerprint": fingerprint(contact.identity, contact.account_key),
        "verified": contact.verified,
        "key_changed": contact.changed,
        "new_key": new,
    }


async def _send(engine: Engine, request: dict) -> dict:
    if request.get("wait", True):
        message_id = await engine.send(str(request["to"]), str(request["text"]))
    else:  # stored; a serving process sends it at once, else the next command that connects
        message_id = engine.queue(str(request["to"]), str(request["text"]))
        if engine.online:
            engine.flush_soon()
    return {"sent": message_id.hex(), "status": engine.message(message_id).status.value}


async def _lookup(engine: Engine, request: dict) -> dict:
    contact = await engine.lookup(str(request["name"]))
    return {
        "contact": contact.to_record(),
        "safety_number": engine.safety_number(contact),
        "new_safety_number": engine.new_safety_number(contact),
    }


async def _direct(engine: Engine, request: dict) -> dict:
    username = await engine.direct_action(str(request["action"]), str(request["name"]))
    return {"username": username, "direct": direct_words(engine.direct_status(username))}


async def _contacts(engine: Engine, request: dict) -> dict:
    blocked = engine.blocked()
    contacts = [
        {
            "username": c.username,
            "verified": c.verified,
            "key_changed": c.changed,
            "direct": direct_words(engine.direct_status(c.username)),
            "blocked": c.username in blocked,
            "contact": True,
        }
        for c in engine.contact_list()
    ]
    pinned = {c["username"] for c in contacts}
    contacts += [
        {
            "username": name,
            "verified": False,
            "key_changed": False,
            "direct": None,
            "blocked": True,
            "contact": False,
        }
        for name in sorted(blocked - pinned)
    ]
    return {"contacts": contacts}


async def _show(engine: Engine, request: dict) -> dict:
    contact = engine.known(str(request["name"]))
    last = max(0, int(request.get("last", 50)))
    history = [m.to_record() for m in engine.history(contact.username, last)]
    return {"username": contact.username, "messages": history}


async def _verify(engine: Engine, request: dict) -> dict:
    username = engine.known(str(request["name"])).username
    contact = engine.mark_verified(username) if request.get("mark") else engine.known(username)
    return {"contact": safety(engine, contact)}


async def _trust(engine: Engine, request: dict) -> dict:
    contact = engine.trust(names.normalize(str(request["name"])), str(request["number"]))
    return {"trusted": contact.username, "safety_number": engine.safety_number(contact)}


async def _remove(engine: Engine, request: dict) -> dict:
    """Exactly the contact named (see `Engine.known`); a record removed or altered in the
    file is forgotten too."""
    try:
        contact = engine.known(str(request["name"]))
        username, was_direct = contact.username, contact.direct is not None
    except KeystoreError:
        username, was_direct = names.normalize(str(request["name"])), False
    engine.remove(username)
    return {"removed": username, "was_direct": was_direct}


async def _block(engine: Engine, request: dict) -> dict:
    return {"blocked": engine.block(str(request["name"]))}


async def _unblock(engine: Engine, request: dict) -> dict:
    return {"unblocked": engine.unblock(str(request["name"]))}


async def _outbox(engine: Engine, request: dict) -> dict:
    """What waits, each with the start of its text (the whole is in `contacts show`)."""
    return {
        "outbox": [
            {
                "id": m.id.hex(),
                "to": m.peer,
                "time": m.time,
                "preview": m.text[:PREVIEW],
                "bytes": len(m.text.encode()),
                "status": m.status.value,
            }
            for m in engine.waiting()
        ]
    }


async def _drop(engine: Engine, request: dict) -> dict:
    message = engine.drop(str(request["id"]))
    return {"dropped": message.id.hex(), "to": message.peer, "reason": message.reason}


async def _inbox(engine: Engine, request: dict) -> dict:
    """What came since the last `inbox`, from the process that takes messages in."""
    return {
        "messages": [
            {
                "sender": m.sender,
                "message_id": m.message_id.hex(),
                "sent": m.sent,
                "text": m.text,
                "verified": m.verified,
                "key_changed": m.key_changed,
            }
            for m in engine.since_last_inbox()
        ]
    }


async def _names(engine: Engine, request: dict) -> dict:
    """The contacts' names alone, for shell completion."""
    return {"names": [c.username for c in engine.contact_list()]}


OPS = {
    "send": _send,
    "lookup": _lookup,
    "direct": _direct,
    "contacts": _contacts,
    "show": _show,
    "verify": _verify,
    "trust": _trust,
    "remove": _remove,
    "block": _block,
    "unblock": _unblock,
    "outbox": _outbox,
    "drop": _drop,
    "names": _names,
    "inbox": _inbox,
}


def needs_node(request: dict) -> bool:
    return request["op"] in ("lookup", "direct") or (
        request["op"] == "send" and request.get("wait", True)
    )


async def answer(engine: Engine, request: dict) -> dict:
    """The answer to one request; raises `NymchatError` (`UsageError` for a name that
    is not valid; `KeyError`, `TypeError`, `ValueError` for a malformed request)."""
    op = OPS.get(request.get("op"))
    if op is None:
        raise UsageError(f"unknown operation {request.get('op')!r}")
    try:
        return await op(engine, request)
    except names.InvalidName as e:
        raise UsageError(f"'{request.get('name', request.get('to'))}': {e}") from None


def perform(args: argparse.Namespace, request: dict, slow=None) -> dict:
    """The answer of the process serving this profile if one runs, else of an engine of
    this command's own (unlocking the profile, and connecting only if the op needs it);
    `slow` is called if the node takes more than a second once connected."""
    import asyncio

    from nymchat.client.connect import delegate, open_engine, unlock

    served = delegate(args, request)
    if served is not None:
        return served
    profile = unlock(args)

    async def here() -> dict:
        if not needs_node(request):
            return await answer(Engine.offline(profile), request)
        async with open_engine(args, profile=profile) as engine:
            timer = asyncio.get_running_loop().call_later(1.0, slow or (lambda: None))
            try:
                return await answer(engine, request)
            finally:
                timer.cancel()

    try:
        return asyncio.run(here())
    finally:
        profile.store.close()
