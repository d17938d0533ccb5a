"""One JSON vocabulary for everything nymchat tells a program (the JSON-RPC API, `inbox
--json`, `chat --json`, the commands' `--json`): the same field names everywhere, times
as ISO 8601 UTC with milliseconds plus the same instant in epoch milliseconds (`"sent":
"2026-12-01T15:12:21.123Z", "sent_ms": 1796137941123`), ids and keys in hex, enums as
their string values.

An event becomes `{"type": "message_received", ...its fields}`: rendered from the
dataclass itself, so a new event class needs no code here (docs/API.md lists them)."""

import dataclasses
import enum
import re
import time
from typing import Any

from nymchat.client.events import Event
from nymchat.client.records import Message

TIMES = frozenset({"sent", "time", "since"})  # fields holding epoch milliseconds
JsonObject = dict[str, Any]  # a JSON object, as a program asks or is told


def iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def stamp(name: str, ms: int) -> JsonObject:
    """A time under `name` (ISO 8601) and `name_ms` (epoch milliseconds)."""
    return {name: iso(ms), f"{name}_ms": ms}


def value(v: object) -> object:
    if isinstance(v, tuple):  # (an event's names: `GroupChanged.added`)
        return [value(item) for item in v]
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, enum.Enum):
        return v.value
    return v


def kind(event: Event) -> str:
    """`MessageReceived` → "message_received"; `KeyChangedEvent` → "key_changed"."""
    name = type(event).__name__.removesuffix("Event")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event(e: Event) -> JsonObject:
    fields: JsonObject = {"type": kind(e)}
    for field in dataclasses.fields(e):
        v = getattr(e, field.name)
        if field.name in TIMES and type(v) is int:
            fields.update(stamp(field.name, v))
        else:
            fields[field.name] = value(v)
    return fields


def message(message: Message) -> JsonObject:
    """A stored message (`history`): its record's fields, `time` in the vocabulary."""
    record = message.to_record()
    return {**record, **stamp("time", record["time"])}
