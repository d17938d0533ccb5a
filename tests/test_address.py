"""Addresses as typed (`name`, `name@petname`), resolved (a name at a node key) and shown:
everything typed is normalised or refused with a usage error, and what is shown is one
line of the name alphabet."""

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.errors import UsageError
from nymchat.nym import base58
from nymchat.protocol import names
from nymchat.protocol.address import (
    Address,
    InvalidPetname,
    display,
    normalize_petname,
    parse_typed,
    short_key,
)

VALID = st.from_regex(r"[A-Za-z0-9_-]{3,32}", fullmatch=True).filter(
    lambda name: names.skeleton(name.lower()) not in names._RESERVED_SKELETONS
)
SHOWN = re.compile(r"[a-z0-9_-]{3,32}(@[a-z0-9_-]{3,32}|@[1-9A-HJ-NP-Za-km-z]{1,8})?")
KEY = os.urandom(32)
HOME = os.urandom(32)


def test_a_typed_name_alone_has_no_petname_and_a_qualified_one_has_its_petname():
    assert parse_typed("Bob") == ("bob", None)
    assert parse_typed(" bob@Work\n") == ("bob", "work")


@pytest.mark.parametrize("typed", ["bob@", "bob@wo", "bob@wo rk", "bob@a@b", "bob@" + "w" * 33])
def test_a_bad_petname_is_refused_as_a_petname(typed):
    with pytest.raises(InvalidPetname, match="petname"):
        parse_typed(typed)


@pytest.mark.parametrize("typed", ["@work", "bo@work", "admin@work", "b!b@work"])
def test_a_bad_name_is_refused_as_a_name(typed):
    with pytest.raises(names.InvalidName):
        parse_typed(typed)


@given(VALID, VALID)
def test_any_valid_name_and_petname_parse_to_their_normal_forms(name, petname):
    assert parse_typed(f"{name}@{petname}") == (names.normalize(name), petname.lower())


@given(st.text(max_size=80))
def test_anything_typed_parses_or_is_refused_as_a_usage_error(text):
    try:
        name, petname = parse_typed(text)
    except UsageError as e:
        assert isinstance(e, ValueError)
        return
    assert names.normalize(name) == name
    assert petname is None or normalize_petname(petname) == petname


@given(VALID, st.binary(min_size=32, max_size=32), st.one_of(st.none(), VALID))
def test_an_address_is_shown_on_one_line_of_the_name_alphabet(name, key, petname):
    address = Address(names.normalize(name), key)
    shown = display(address, HOME, petname and normalize_petname(petname))
    assert SHOWN.fullmatch(shown)


def test_an_address_at_home_is_the_bare_name_a_named_node_its_petname_else_its_short_key():
    bob = Address("bob", KEY)
    assert display(Address("bob", HOME), HOME, "home") == "bob"
    assert display(bob, HOME, "work") == "bob@work"
    assert display(bob, HOME, None) == f"bob@{base58.encode(KEY)[:8]}" == f"bob@{short_key(KEY)}"
    assert display(bob, None, None) == f"bob@{short_key(KEY)}"


def test_the_canonical_form_names_the_whole_key_and_a_key_is_32_bytes():
    assert str(Address("bob", KEY)) == f"bob@{base58.encode(KEY)}"
    with pytest.raises(ValueError):
        Address("bob", KEY[:31])
