"""MLS groups as the native core offers them to Python: membership through key packages
and welcomes, who can read what, leaving, conflicting commits, state round trips, the
roster, which commits carry a path, and the credential that binds a member to its
identity."""

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat import _native, errors
from nymchat._native import Identity, MlsGroup, MlsMember


class Person:
    def __init__(self):
        self.identity = Identity.generate()
        self.member = MlsMember.generate(self.identity)

    @property
    def key(self) -> bytes:
        return self.identity.signing_public


def group_of(count: int) -> tuple[list[Person], list[MlsGroup]]:
    """A group of `count` people: the first creates it and adds the others in one commit."""
    people = [Person() for _ in range(count)]
    group = people[0].member.create_group(os.urandom(32), b"roster 0")
    packages = [person.member.key_packages(1)[0] for person in people[1:]]
    _, welcome, _ = group.commit(packages, [], None)
    group.apply_pending()
    groups = [group] + [person.member.join(welcome) for person in people[1:]]
    return people, groups


def deliver(message: bytes, groups: list[MlsGroup]) -> list[_native.Processed]:
    return [group.process(message) for group in groups]


def test_a_member_adds_two_people_who_join_by_welcome():
    alice, bob, carol = Person(), Person(), Person()
    group = alice.member.create_group(b"g" * 32, b"roster")
    assert (group.epoch, group.own_index, group.members()) == (0, 0, [(0, alice.key)])
    packages = [bob.member.key_packages(2)[0], carol.member.key_packages(1)[0]]
    assert [_native.mls_key_package_identity(p) for p in packages] == [bob.key, carol.key]
    commit, welcome, next_key = group.commit(packages, [], b"roster 2")
    assert group.epoch == 0 and group.roster() == b"roster"  # pending until applied
    group.apply_pending()
    assert group.epoch == 1 and group.access_key() == next_key
    assert welcome is not None and commit
    joined = [bob.member.join(welcome), carol.member.join(welcome)]
    for member in joined:
        assert member.group_id == b"g" * 32 and member.epoch == 1
        assert member.members() == [(0, alice.key), (1, bob.key), (2, carol.key)]
        assert member.roster() == b"roster 2" and member.access_key() == next_key
        assert member.joined_by == 0


def test_the_roster_reaches_members_by_the_commit_and_the_joiner_by_the_welcome():
    people, groups = group_of(3)
    dave = Person()
    commit, welcome, _ = groups[2].commit([dave.member.key_packages(1)[0]], [], b"with dave")
    groups[2].apply_pending()
    for seen in deliver(commit, groups[:2]):
        assert seen.roster_changed and (seen.sender, seen.sender_identity) == (2, people[2].key)
    assert dave.member.join(welcome).roster() == b"with dave"
    assert [group.roster() for group in groups] == [b"with dave"] * 3
    commit, welcome, _ = groups[0].commit([Person().member.key_packages(1)[0]], [], None)
    groups[0].apply_pending()
    assert not groups[1].process(commit).roster_changed
    assert groups[1].roster() == b"with dave"
    with pytest.raises(errors.InvalidArgument):
        groups[0].commit([], [], bytes(128 * 1024 + 1))
    with pytest.raises(errors.InvalidArgument):
        people[0].member.create_group(os.urandom(32), bytes(128 * 1024 + 1))


def freshly_built(count: int) -> MlsGroup:
    """A creator who added `count` others in one commit, none of whom has joined."""
    group = Person().member.create_group(os.urandom(32), b"roster")
    group.commit([Person().member.key_packages(1)[0] for _ in range(count)], [], None)
    group.apply_pending()
    return group


def commit_size(group: MlsGroup, add: list[bytes], remove: list[int], roster: bytes | None) -> int:
    commit, _, _ = group.commit(add, remove, roster)
    group.clear_pending()
    return len(commit)


def test_adding_or_renaming_carries_no_path_and_costs_the_same_in_a_large_group():
    # A path holds a secret for each subtree it reaches: in a tree whose members never
    # committed, one for every other member. Without one, a commit does not grow with them.
    small, large = freshly_built(1), freshly_built(200)
    package = Person().member.key_packages(1)[0]
    for add, roster in [([package], None), ([package], b"renamed"), ([], b"renamed")]:
        assert commit_size(small, add, [], roster) == commit_size(large, add, [], roster)
    for remove in [[], [1]]:  # the key update, a removal: with a path
        assert (
            commit_size(large, [], remove, None) > commit_size(small, [], remove, None) + 190 * 64
        )


def test_a_key_update_changes_the_epoch_secrets_for_all_but_the_removed():
    people, groups = group_of(4)
    commit, _, _ = groups[0].commit([], [3], None)
    groups[0].apply_pending()
    deliver(commit, groups[1:])
    before = groups[0].access_key()
    commit, welcome, next_key = groups[1].commit([], [], None)
    groups[1].apply_pending()
    assert welcome is None and next_key != before
    for seen in deliver(commit, [groups[0], groups[2]]):
        assert (seen.kind, seen.sender, seen.added, seen.removed) == ("commit", 1, [], [])
    assert {group.access_key() for group in groups[:3]} == {next_key}
    assert groups[0].members() == [(i, people[i].key) for i in range(3)]
    with pytest.raises(errors.MlsError):
        groups[3].process(commit)
    secret = groups[2].encrypt(b"after the key update")
    assert groups[0].process(secret).plaintext == b"after the key update"
    with pytest.raises(errors.MlsError):
        groups[3].process(secret)


def test_members_read_each_other_and_see_the_author():
    people, groups = group_of(3)
    message = groups[1].encrypt(b"hello")
    for processed in deliver(message, [groups[0], groups[2]]):
        assert processed.kind == "application" and processed.plaintext == b"hello"
        assert (processed.sender, processed.sender_identity) == (1, people[1].key)


def test_a_removed_member_cannot_read_the_next_message():
    people, groups = group_of(3)
    commit, welcome, _ = groups[0].commit([], [2], None)
    assert welcome is None
    groups[0].apply_pending()
    seen = deliver(commit, groups[1:])
    assert seen[0].kind == "commit" and seen[0].removed == [(2, people[2].key)]
    assert not seen[0].removed_me and seen[1].removed_me
    assert groups[1].members() == [(0, people[0].key), (1, people[1].key)]
    secret = groups[0].encrypt(b"after removal")
    assert groups[1].process(secret).plaintext == b"after removal"
    with pytest.raises(errors.MlsError):
        groups[2].process(secret)


def test_a_new_member_cannot_read_older_messages():
    _, groups = group_of(2)
    older = groups[0].encrypt(b"before you came")
    dave = Person()
    commit, welcome, _ = groups[0].commit([dave.member.key_packages(1)[0]], [], None)
    groups[0].apply_pending()
    assert groups[1].process(commit).added == [(2, dave.key)]
    newcomer = dave.member.join(welcome)
    with pytest.raises(errors.MlsError):
        newcomer.process(older)
    assert groups[1].process(older).plaintext == b"before you came"  # a prior epoch kept


def test_a_leave_proposal_is_committed_by_another_member():
    people, groups = group_of(3)
    proposal = groups[2].propose_leave()
    for group in groups[:2]:
        seen = group.process(proposal)
        assert (seen.kind, seen.sender, seen.sender_identity) == ("proposal", 2, people[2].key)
        assert group.pending_proposals() == 1
    with pytest.raises(errors.MlsError):
        groups[1].encrypt(b"a proposal is pending")  # MLS: commit it first
    commit, _, _ = groups[1].commit([], [], None)  # takes the pending proposal in
    groups[1].apply_pending()
    assert groups[1].pending_proposals() == 0
    assert groups[0].process(commit).removed == [(2, people[2].key)]
    assert groups[2].process(commit).removed_me
    assert groups[0].members() == groups[1].members() == [(0, people[0].key), (1, people[1].key)]


def test_the_loser_of_conflicting_commits_applies_the_winner_then_redoes_its_own():
    people, groups = group_of(3)
    erin, frank = Person(), Person()
    won, erin_welcome, _ = groups[0].commit([erin.member.key_packages(1)[0]], [], None)
    lost, _, _ = groups[1].commit([frank.member.key_packages(1)[0]], [], None)
    groups[0].apply_pending()  # the node took alice's commit at epoch 1
    erin.member.join(erin_welcome)
    groups[1].clear_pending()
    for group in groups[1:]:
        assert group.process(won).epoch == 2
    with pytest.raises(errors.MlsError):
        groups[2].process(lost)  # of an epoch that is gone
    redo, welcome, _ = groups[1].commit([frank.member.key_packages(1)[0]], [], None)
    groups[1].apply_pending()
    for group in (groups[0], groups[2]):
        assert group.process(redo).added == [(4, frank.key)]
    joined = frank.member.join(welcome)
    assert joined.epoch == 3 and len(joined.members()) == 5
    assert {key for _, key in groups[0].members()} == {p.key for p in [*people, erin, frank]}


def test_state_round_trips_through_load_group_and_from_state():
    people, groups = group_of(2)
    before = groups[0].encrypt(b"from the prior epoch")
    commit, _, _ = groups[0].commit([], [], b"renamed")
    groups[0].apply_pending()
    stored = groups[1].state()
    member_state = people[1].member.state()
    member = MlsMember.from_state(people[1].identity, member_state)
    loaded = member.load_group(stored)
    assert (loaded.group_id, loaded.epoch, loaded.members()) == (
        groups[1].group_id,
        groups[1].epoch,
        groups[1].members(),
    )
    seen = loaded.process(commit)
    assert seen.kind == "commit" and seen.roster_changed and loaded.roster() == b"renamed"
    reloaded = member.load_group(loaded.state())
    assert reloaded.roster() == b"renamed"
    assert reloaded.process(before).plaintext == b"from the prior epoch"
    assert reloaded.process(groups[0].encrypt(b"now")).plaintext == b"now"
    with pytest.raises(errors.MlsError):
        MlsMember.from_state(Identity.generate(), member_state)  # another identity's state
    with pytest.raises(errors.MlsError):
        member.load_group(stored[:-1])


def test_a_key_package_is_used_once_and_leaves_the_member_state():
    alice, bob = Person(), Person()
    package = bob.member.key_packages(1)[0]
    with_package = bob.member.state()
    group = alice.member.create_group(os.urandom(32), b"")
    _, welcome, _ = group.commit([package], [], None)
    group.apply_pending()
    bob.member.join(welcome)
    assert len(bob.member.state()) < len(with_package)
    with pytest.raises(errors.MlsError):
        bob.member.join(welcome)  # its secrets are gone
    with pytest.raises(errors.MlsError):
        Person().member.join(welcome)  # not for them


def test_a_last_resort_key_package_can_be_used_twice():
    bob = Person()
    package = bob.member.last_resort_key_package()
    for _ in range(2):
        group = Person().member.create_group(os.urandom(32), b"")
        _, welcome, _ = group.commit([package], [], None)
        bob.member.join(welcome)


def test_a_forged_credential_is_refused():
    alice, bob, mallory = Person(), Person(), Person()
    package = bytearray(mallory.member.key_packages(1)[0])
    # Swap mallory's identity key for bob's in the credential: the signature no longer holds.
    at = bytes(package).index(mallory.key)
    package[at : at + 32] = bob.key
    with pytest.raises(errors.MlsError):
        _native.mls_key_package_identity(bytes(package))
    group = alice.member.create_group(os.urandom(32), b"")
    with pytest.raises(errors.MlsError):
        group.commit([bytes(package)], [], None)
    assert isinstance(errors.MlsError("x"), errors.NymchatError)


def test_hostile_bytes_are_refused_not_crashed_on():
    people, groups = group_of(2)
    for junk in [b"", b"\x00", os.urandom(100), groups[0].encrypt(b"x")[:-1]]:
        with pytest.raises(errors.MlsError):
            groups[1].process(junk)
        with pytest.raises(errors.MlsError):
            _native.mls_key_package_identity(junk)
        with pytest.raises(errors.MlsError):
            people[1].member.join(junk)


@pytest.fixture(scope="module")
def pair() -> tuple[list[Person], list[MlsGroup], list[bytes]]:
    people, groups = group_of(2)
    samples = [
        groups[0].encrypt(b"sample"),
        people[1].member.key_packages(1)[0],
        groups[0].commit([], [], None)[0],
    ]
    groups[0].clear_pending()
    return people, groups, samples


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mangled_messages_key_packages_and_welcomes_raise_mls_error_only(pair, data):
    people, groups, samples = pair
    sample = data.draw(st.sampled_from(samples))
    at = data.draw(st.integers(0, len(sample) - 1))
    mangled = data.draw(
        st.one_of(
            st.binary(max_size=600),
            st.just(sample[:at]),
            st.integers(1, 255).map(
                lambda x: sample[:at] + bytes([sample[at] ^ x]) + sample[at + 1 :]
            ),
        )
    )
    for call in (groups[1].process, _native.mls_key_package_identity, people[1].member.join):
        with contextlib.suppress(errors.MlsError):
            call(mangled)
