"""Trusting a changed key, on the engine itself (no network): `trust` pins exactly the key
whose safety number the user was shown and gave back, never "whatever is current"."""

import pytest

from nymchat import _native
from nymchat.client.engine import Engine
from nymchat.client.profile import Profile
from nymchat.errors import KeyChanged, UsageError


@pytest.fixture
def engine(tmp_path):
    profile = Profile(tmp_path, _native.Identity.generate())
    profile.store.put("username", "alice")
    yield Engine.offline(profile)
    profile.store.close()


def key() -> tuple[bytes, bytes]:
    return _native.Identity.generate().signing_public, _native.Identity.generate().signing_public


def test_the_number_shown_during_a_change_is_the_new_keys(engine):
    first, second = key(), key()
    engine.contacts.pin("bob", *first)
    pinned = engine.safety_number(engine.known("bob"))
    contact = engine.contacts.pin("bob", *second)
    assert engine.safety_number(contact) == pinned  # the old key's: not the one to compare
    new = engine.new_safety_number(contact)
    assert new is not None and new != pinned
    engine.trust("bob", " ".join(new.split()[:4]))
    assert engine.safety_number(engine.known("bob")) == new
    assert engine.new_safety_number(engine.known("bob")) is None


def test_trust_refuses_a_number_of_another_key(engine):
    """The user compared the new key's number; the node swaps the key again before `trust`:
    the number given no longer matches, and nothing is trusted."""
    engine.contacts.pin("bob", *key())
    compared = engine.new_safety_number(engine.contacts.pin("bob", *key()))
    engine.contacts.pin("bob", *key())  # changed again meanwhile
    with pytest.raises(KeyChanged, match="not the safety number of bob's new key"):
        engine.trust("bob", compared)
    assert engine.known("bob").changed
    pinned = engine.safety_number(engine.known("bob"))
    with pytest.raises(KeyChanged):  # nor the number of the key pinned before
        engine.trust("bob", pinned)


@pytest.mark.parametrize("number", ["", "12345", "12345 67890 12345", "abcde fghij klmno pqrst"])
def test_trust_needs_at_least_four_groups_of_the_number(engine, number):
    engine.contacts.pin("bob", *key())
    engine.contacts.pin("bob", *key())
    with pytest.raises(UsageError, match="at least its first 4 groups"):
        engine.trust("bob", number)
