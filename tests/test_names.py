"""Usernames: look-alikes share a skeleton (TR39 confusables and this project's additions),
nothing outside the alphabet is ever a name, and a name from the node is checked as one
typed."""

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nodeclient import bundle

from nymchat import _native
from nymchat.client.engine import Engine
from nymchat.client.profile import Profile
from nymchat.errors import NymchatError
from nymchat.protocol import names, wire

# The look-alikes of issue 12 that passed registration, each with the name it imitates.
LOOK_ALIKES = [
    ("rnartin", "martin"),
    ("vvilliam", "william"),
    ("clave", "dave"),
    ("2oe", "zoe"),
    ("9abe", "gabe"),
    ("bob-", "bob"),
    ("-bob", "bob"),
    ("b__o-_b", "b-o-b"),
    ("adrnin", "admin"),
    ("systern", "system"),
    ("c1ave", "dave"),
    ("b0b", "bob"),
    ("a1ice", "alice"),
    ("5am", "sam"),
]
VALID = st.from_regex(r"[A-Za-z0-9_-]{3,32}", fullmatch=True)


@pytest.mark.parametrize(("look_alike", "original"), LOOK_ALIKES)
def test_a_look_alike_has_the_skeleton_of_the_name_it_imitates(look_alike, original):
    assert names.skeleton(look_alike.lower()) == names.skeleton(original)


@pytest.mark.parametrize("name", ["adrnin", "systern", "rnod", "r00t", "5ysop", "nyrn"])
def test_look_alikes_of_reserved_names_are_reserved(name):
    with pytest.raises(names.InvalidName, match="reserved"):
        names.normalize(name)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("bob", "rob"),
        ("user6", "user8"),
        ("alice", "alicia"),
        ("bob-x", "bobx"),
        ("dave", "cave"),
        ("mia", "nia"),
    ],
)
def test_names_that_do_not_look_alike_stay_apart(a, b):
    assert names.skeleton(a) != names.skeleton(b)


@given(VALID)
def test_a_skeleton_is_its_own_skeleton(name):
    once = names.skeleton(name.lower())
    assert names.skeleton(once) == once


@given(st.text(max_size=40) | VALID)
def test_normalize_never_accepts_a_character_outside_the_alphabet(text):
    try:
        name = names.normalize(text)
    except names.InvalidName:
        return
    assert re.fullmatch(r"[A-Za-z0-9_-]{3,32}", text.strip(" \t\r\n"))
    assert name == text.strip(" \t\r\n").lower()


@pytest.mark.parametrize(
    "text", ["alice\x1b[2K", "\u212alice", "al\u0131ce", "alice\u202e", "al ice", "ALICE\x00"]
)
def test_names_with_escapes_or_unicode_look_alikes_are_invalid(text):
    with pytest.raises(names.InvalidName):
        names.normalize(text)


class LookupAnswers:
    """A node link that answers every lookup with the keys of `identity`, as `username`."""

    online, contact, on_direct = False, None, None

    def __init__(self, username: str, identity):
        self.body = {
            "username": username,
            "identity": identity.signing_public,
            "bundle": bundle(identity),
            "strangers": 16,
        }

    async def request(self, kind, **body) -> wire.Answer:
        assert kind is wire.Kind.LOOKUP
        return wire.Answer(wire.Kind.BUNDLE, bytes(16), 0, self.body)


@pytest.mark.parametrize("answered_as", ["mallory", "Bob", "bob\x1b[2K"])
def test_a_lookup_answered_for_another_name_pins_nothing(tmp_path, answered_as):
    profile = Profile(tmp_path, _native.Identity.generate())
    with profile.store.transaction():
        profile.save_account(_native.Account())
    engine = Engine(profile, LookupAnswers(answered_as, _native.Identity.generate()))
    with pytest.raises(NymchatError, match="keys of another name"):
        asyncio.run(engine.lookup("bob"))
    assert profile.store.contacts() == []
    engine = Engine(profile, LookupAnswers("bob", _native.Identity.generate()))
    assert asyncio.run(engine.lookup("bob")).username == "bob"
