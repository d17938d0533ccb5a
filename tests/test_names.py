"""Usernames: look-alikes share a skeleton (TR39 confusables and this project's additions),
and nothing outside the alphabet is ever a name."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.protocol import names

# The look-alikes of issue 12 that passed registration, each with the name it imitates.
LOOK_ALIKES = [("rnartin", "martin"), ("vvilliam", "william"), ("clave", "dave"),
               ("2oe", "zoe"), ("9abe", "gabe"), ("bob-", "bob"), ("-bob", "bob"),
               ("b__o-_b", "b-o-b"), ("adrnin", "admin"), ("systern", "system"),
               ("c1ave", "dave"), ("b0b", "bob"), ("a1ice", "alice"), ("5am", "sam")]
VALID = st.from_regex(r"[A-Za-z0-9_-]{3,32}", fullmatch=True)


@pytest.mark.parametrize(("look_alike", "original"), LOOK_ALIKES)
def test_a_look_alike_has_the_skeleton_of_the_name_it_imitates(look_alike, original):
    assert names.skeleton(look_alike.lower()) == names.skeleton(original)


@pytest.mark.parametrize("name", ["adrnin", "systern", "rnod", "r00t", "5ysop", "nyrn"])
def test_look_alikes_of_reserved_names_are_reserved(name):
    with pytest.raises(names.InvalidName, match="reserved"):
        names.normalize(name)


@pytest.mark.parametrize(("a", "b"), [("bob", "rob"), ("user6", "user8"), ("alice", "alicia"),
                                      ("bob-x", "bobx"), ("dave", "cave"), ("mia", "nia")])
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


@pytest.mark.parametrize("text", ["alice\x1b[2K", "\u212alice", "al\u0131ce", "alice\u202e",
                                  "al ice", "ALICE\x00"])
def test_names_with_escapes_or_unicode_look_alikes_are_invalid(text):
    with pytest.raises(names.InvalidName):
        names.normalize(text)
