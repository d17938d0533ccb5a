"""The group roster codec and the trust a member's name is shown with (client/roster.py),
and the inner group message (client/groupmessages.py): sans-I/O."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.client import groupmessages, roster
from nymchat.client.records import Contact, MemberTrust
from nymchat.protocol import names, wire
from nymchat.protocol.address import Address

ALICE, BOB, CAROL = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
NODE_A, NODE_B, NODE_C = bytes([0xA]) * 32, bytes([0xB]) * 32, bytes([0xC]) * 32


def allowed(name: str) -> bool:
    """Whether a name is one a roster may give (not reserved, nor a look-alike of one)."""
    try:
        return names.normalize(name) == name
    except names.InvalidName:
        return False


def entry(identity: bytes, name: str, node: bytes = NODE_A) -> roster.Entry:
    return roster.Entry(identity, name, node)


def test_a_roster_round_trips_with_names_normalised_and_each_members_node():
    team = roster.Roster("Team", (entry(ALICE, "Alice"), entry(BOB, "bob", NODE_B)))
    decoded = roster.decode(roster.encode(team), NODE_C)
    assert decoded.name == "team"
    assert decoded.names() == {ALICE: Address("alice", NODE_A), BOB: Address("bob", NODE_B)}


def test_a_roster_lists_each_node_once():
    team = roster.Roster("team", tuple(entry(bytes([n]) * 32, f"p{n:02}") for n in range(50)))
    assert len(roster.encode(team)) == 2 + 5 + 2 + 32 + 2 + 50 * (32 + 4 + 1)


def v1(name: str, members: list[tuple[bytes, str]]) -> bytes:
    """A roster as versions before federation wrote it: name ‖ (identity ‖ username)*."""
    out = bytearray([len(name)]) + name.encode() + len(members).to_bytes(2, "big")
    for identity, username in members:
        out += identity + bytes([len(username)]) + username.encode()
    return bytes(out)


def test_a_version_1_roster_decodes_with_every_member_at_the_log_node():
    decoded = roster.decode(v1("team", [(ALICE, "alice"), (BOB, "bob")]), NODE_C)
    assert decoded.name == "team"
    assert decoded.names() == {ALICE: Address("alice", NODE_C), BOB: Address("bob", NODE_C)}


def test_the_largest_roster_fits_what_the_binding_carries():
    """1,000 members with the longest names at 255 nodes: under MAX_ROSTER (128 KiB)."""
    nodes = [bytes([n]) * 32 for n in range(255)]
    members = tuple(
        entry(n.to_bytes(32, "big"), f"{n:04}".ljust(32, "x"), nodes[n % 255])
        for n in range(roster.MAX_MEMBERS)
    )
    data = roster.encode(roster.Roster("t" * 32, members))
    assert len(data) <= 128 * 1024
    assert len(roster.decode(data, NODE_A).members) == roster.MAX_MEMBERS


def test_a_roster_naming_an_identity_twice_is_refused():
    twice = roster.Roster("team", (entry(ALICE, "alice"), entry(ALICE, "mallory", NODE_B)))
    with pytest.raises(wire.WireError, match="twice"):
        roster.decode(roster.encode(twice), NODE_A)


def test_a_roster_with_an_invalid_name_is_refused():
    bad = roster.Roster("team", (entry(ALICE, "\x1b[2Jalice"),))
    with pytest.raises(wire.WireError):
        roster.decode(roster.encode(bad), NODE_A)


def test_a_member_at_a_node_the_roster_does_not_list_is_refused():
    data = bytearray(roster.encode(roster.Roster("team", (entry(ALICE, "alice"),))))
    data[-1] = 1  # the member's node index: only 0 is listed
    with pytest.raises(wire.WireError, match="does not list"):
        roster.decode(bytes(data), NODE_A)


def test_a_roster_over_the_member_bound_is_refused_before_its_entries_are_read():
    data = roster.encode(roster.Roster("team", ())).removesuffix(b"\x00\x00") + (1001).to_bytes(
        2, "big"
    )
    with pytest.raises(wire.WireError, match="over the limit"):
        roster.decode(data, NODE_A)
    with pytest.raises(wire.WireError, match="over the limit"):
        roster.decode(v1("team", []).removesuffix(b"\x00\x00") + (1001).to_bytes(2, "big"), NODE_A)


def test_with_members_keeps_the_kept_and_adds_the_new():
    team = roster.Roster("team", (entry(ALICE, "alice"), entry(BOB, "bob")))
    changed = team.with_members({ALICE}, {CAROL: Address("carol", NODE_B)})
    assert changed.names() == {ALICE: Address("alice", NODE_A), CAROL: Address("carol", NODE_B)}


@given(st.binary(max_size=600))
def test_hostile_bytes_only_raise_wire_error_as_a_roster(data):
    with contextlib.suppress(wire.WireError):
        roster.decode(data, NODE_A)


@given(st.binary(max_size=600))
def test_hostile_bytes_after_the_version_2_mark_only_raise_wire_error(data):
    with contextlib.suppress(wire.WireError):
        roster.decode(roster.VERSION_2 + data, NODE_A)


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32),
            st.from_regex(r"[a-z0-9_-]{3,32}", fullmatch=True).filter(allowed),
            st.sampled_from([NODE_A, NODE_B, NODE_C]),
        ),
        max_size=20,
        unique_by=lambda m: m[0],
    )
)
def test_any_valid_roster_round_trips(members):
    team = roster.Roster("team", tuple(roster.Entry(*m) for m in members))
    assert roster.decode(roster.encode(team), NODE_A) == team


@given(st.binary(max_size=600))
def test_hostile_bytes_only_raise_wire_error_as_a_group_message(data):
    with contextlib.suppress(wire.WireError):
        groupmessages.decode(data)


def test_a_group_message_round_trips():
    inner = groupmessages.GroupInner(groupmessages.TEXT, bytes(16), 1234, "hi 👋")
    assert groupmessages.decode(groupmessages.encode(inner)) == inner


def contact(identity: bytes, verified: bool = False) -> Contact:
    return Contact("bob", identity, bytes(32), 0, verified=verified)


def at(name: str, node: bytes = NODE_A) -> Address:
    return Address(name, node)


def test_trust_is_you_for_our_own_identity():
    assert roster.trust(ALICE, at("alice"), ALICE, None, {}) is MemberTrust.YOU


def test_trust_follows_a_contact_with_that_identity():
    assert roster.trust(BOB, at("bob"), ALICE, contact(BOB), {}) is MemberTrust.PINNED
    assert roster.trust(BOB, at("bob"), ALICE, contact(BOB, True), {}) is MemberTrust.VERIFIED


def test_a_contacts_name_on_another_identity_is_a_mismatch():
    assert roster.trust(CAROL, at("bob"), ALICE, contact(BOB, True), {}) is MemberTrust.MISMATCH


def test_a_name_only_the_group_gives_is_unconfirmed_while_its_first_binding_holds():
    assert roster.trust(CAROL, at("carol"), ALICE, None, {}) is MemberTrust.UNCONFIRMED
    first = {CAROL: at("carol")}
    assert roster.trust(CAROL, at("carol"), ALICE, None, first) is MemberTrust.UNCONFIRMED


def test_a_binding_other_than_the_first_is_a_mismatch_either_way():
    first = {CAROL: at("carol")}
    assert roster.trust(CAROL, at("mallory"), ALICE, None, first) is MemberTrust.MISMATCH
    assert roster.trust(BOB, at("carol"), ALICE, None, first) is MemberTrust.MISMATCH


def test_the_same_name_at_another_node_is_another_person():
    first = {CAROL: at("carol")}
    assert roster.trust(CAROL, at("carol", NODE_B), ALICE, None, first) is MemberTrust.MISMATCH
    assert roster.trust(BOB, at("carol", NODE_B), ALICE, None, first) is MemberTrust.UNCONFIRMED


def test_a_first_name_kept_before_federation_is_at_the_log_node():
    assert roster.first("carol", NODE_C) == Address("carol", NODE_C)
    assert roster.first(str(Address("carol", NODE_B)), NODE_C) == Address("carol", NODE_B)
