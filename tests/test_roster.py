"""The group roster codec and the trust a member's name is shown with (client/roster.py),
and the inner group message (client/groupmessages.py): sans-I/O."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.client import groupmessages, roster
from nymchat.client.records import Contact, MemberTrust
from nymchat.protocol import wire

ALICE, BOB, CAROL = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


def test_a_roster_round_trips_with_names_normalised():
    team = roster.Roster("Team", (roster.Entry(ALICE, "Alice"), roster.Entry(BOB, "bob")))
    decoded = roster.decode(roster.encode(team))
    assert decoded.name == "team"
    assert decoded.names() == {ALICE: "alice", BOB: "bob"}


def test_a_roster_naming_an_identity_twice_is_refused():
    twice = roster.Roster("team", (roster.Entry(ALICE, "alice"), roster.Entry(ALICE, "mallory")))
    with pytest.raises(wire.WireError, match="twice"):
        roster.decode(roster.encode(twice))


def test_a_roster_with_an_invalid_name_is_refused():
    bad = roster.Roster("team", (roster.Entry(ALICE, "\x1b[2Jalice"),))
    with pytest.raises(wire.WireError):
        roster.decode(roster.encode(bad))


def test_a_roster_over_the_member_bound_is_refused_before_its_entries_are_read():
    data = roster.encode(roster.Roster("team", ())).removesuffix(b"\x00\x00") + (1001).to_bytes(
        2, "big"
    )
    with pytest.raises(wire.WireError, match="over the limit"):
        roster.decode(data)


def test_with_members_keeps_the_kept_and_adds_the_new():
    team = roster.Roster("team", (roster.Entry(ALICE, "alice"), roster.Entry(BOB, "bob")))
    changed = team.with_members({ALICE}, {CAROL: "carol"})
    assert changed.names() == {ALICE: "alice", CAROL: "carol"}


@given(st.binary(max_size=600))
def test_hostile_bytes_only_raise_wire_error_as_a_roster(data):
    with contextlib.suppress(wire.WireError):
        roster.decode(data)


@given(st.binary(max_size=600))
def test_hostile_bytes_only_raise_wire_error_as_a_group_message(data):
    with contextlib.suppress(wire.WireError):
        groupmessages.decode(data)


def test_a_group_message_round_trips():
    inner = groupmessages.GroupInner(groupmessages.TEXT, bytes(16), 1234, "hi 👋")
    assert groupmessages.decode(groupmessages.encode(inner)) == inner


def contact(identity: bytes, verified: bool = False) -> Contact:
    return Contact("bob", identity, bytes(32), 0, verified=verified)


def test_trust_is_you_for_our_own_identity():
    assert roster.trust(ALICE, "alice", ALICE, None, {}) is MemberTrust.YOU


def test_trust_follows_a_contact_with_that_identity():
    assert roster.trust(BOB, "bob", ALICE, contact(BOB), {}) is MemberTrust.PINNED
    assert roster.trust(BOB, "bob", ALICE, contact(BOB, True), {}) is MemberTrust.VERIFIED


def test_a_contacts_name_on_another_identity_is_a_mismatch():
    assert roster.trust(CAROL, "bob", ALICE, contact(BOB, True), {}) is MemberTrust.MISMATCH


def test_a_name_only_the_group_gives_is_unconfirmed_while_its_first_binding_holds():
    assert roster.trust(CAROL, "carol", ALICE, None, {}) is MemberTrust.UNCONFIRMED
    assert roster.trust(CAROL, "carol", ALICE, None, {CAROL: "carol"}) is MemberTrust.UNCONFIRMED


def test_a_binding_other_than_the_first_is_a_mismatch_either_way():
    first = {CAROL: "carol"}
    assert roster.trust(CAROL, "mallory", ALICE, None, first) is MemberTrust.MISMATCH
    assert roster.trust(BOB, "carol", ALICE, None, first) is MemberTrust.MISMATCH
