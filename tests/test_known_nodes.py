"""The nodes a profile knows (client.nodes): one entry per key under one petname,
petnames normalised and unique up to look-alikes, the home node always `home` unless
renamed and never removed, kept sealed in the profile."""

import os

import pytest

from nymchat import _native
from nymchat.client.nodes import KnownNode, KnownNodes, UnknownNode
from nymchat.client.profile import Profile
from nymchat.errors import NotFound, UsageError
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol.address import Address, InvalidPetname, short_key
from nymchat.protocol.contact import NodeContact

NOW = 1_796_137_941_123


def contact(key: bytes | None = None) -> NodeContact:
    signing = _native.Identity.generate().signing_public
    nym = NymAddress(signing, os.urandom(32), _native.Identity.generate().signing_public)
    return NodeContact(key or _native.Identity.generate().signing_public, (nym,))


@pytest.fixture
def profile(tmp_path):
    made = Profile(tmp_path, _native.Identity.generate())
    yield made
    made.close()


@pytest.fixture
def home(profile):
    """The profile registered at a home node (kv `node`, as registration writes it)."""
    node = contact()
    profile.store.put("node", str(node))
    return node


def test_a_profile_registered_before_petnames_knows_its_home_node_as_home(profile, home):
    nodes = KnownNodes(profile.store)
    assert nodes.list() == [KnownNode("home", home.key, str(home), 0, "home")]
    assert nodes.resolve("HOME") == home.key
    assert nodes.address("bob") == Address("bob", home.key)


def test_a_profile_never_registered_knows_no_node_and_a_bare_name_has_no_node(profile):
    nodes = KnownNodes(profile.store)
    assert nodes.list() == []
    with pytest.raises(NotFound, match="no home node"):
        nodes.address("bob")


def test_an_added_node_resolves_by_its_normalised_petname_and_survives_reopening(profile, home):
    work = contact()
    added = KnownNodes(profile.store).add(" Work ", work, "card", NOW)
    assert added == KnownNode("work", work.key, str(work), NOW, "card")
    again = KnownNodes(profile.store)
    assert again.resolve("work") == work.key
    assert again.by_key(work.key) == added
    assert again.address("Bob@WORK") == Address("bob", work.key)
    assert [node.petname for node in again.list()] == ["home", "work"]


def test_a_petname_nobody_was_given_is_not_found(profile, home):
    with pytest.raises(UnknownNode, match=r"'nowhere'.*nodes add"):
        KnownNodes(profile.store).address("bob@nowhere")


def test_a_key_is_known_once_and_adding_it_again_renews_only_its_contact(profile, home):
    nodes = KnownNodes(profile.store)
    work = contact()
    nodes.add("work", work, "card", NOW)
    with pytest.raises(UsageError, match="already known as 'work'"):
        nodes.add("office", contact(work.key), "directory", NOW)
    moved = contact(work.key)
    renewed = nodes.add("work", moved, "directory", NOW + 1)
    assert renewed == KnownNode("work", work.key, str(moved), NOW, "card")
    assert len(nodes.list()) == 2


@pytest.mark.parametrize("look_alike", ["work", "WORK", "w0rk", "vvork", "work-"])
def test_a_petname_or_its_look_alike_names_one_node_only(profile, home, look_alike):
    nodes = KnownNodes(profile.store)
    nodes.add("work", contact(), "manual", NOW)
    with pytest.raises(UsageError, match="already called"):
        nodes.add(look_alike, contact(), "manual", NOW)


def test_a_bad_petname_is_refused(profile, home):
    with pytest.raises(InvalidPetname):
        KnownNodes(profile.store).add("w!", contact(), "manual", NOW)


def test_a_renamed_node_keeps_its_key_and_shows_under_its_new_name(profile, home):
    nodes = KnownNodes(profile.store)
    work = contact()
    nodes.add("work", work, "card", NOW)
    assert nodes.display(Address("bob", work.key)) == "bob@work"
    nodes.rename("work", "office")
    assert nodes.get("work") is None and nodes.resolve("office") == work.key
    assert nodes.display(Address("bob", work.key)) == "bob@office"
    with pytest.raises(UsageError, match="already called 'home'"):
        nodes.rename("office", "home")
    nodes.rename("home", "mine")
    assert nodes.display(Address("bob", home.key)) == "bob"


def test_a_removed_node_is_shown_by_its_short_key_and_the_home_node_stays(profile, home):
    nodes = KnownNodes(profile.store)
    work = contact()
    nodes.add("work", work, "card", NOW)
    assert nodes.remove("work").key == work.key
    assert nodes.display(Address("bob", work.key)) == f"bob@{short_key(work.key)}"
    with pytest.raises(UsageError, match="home node"):
        nodes.remove("home")
    with pytest.raises(UnknownNode):
        nodes.remove("work")


def test_registering_at_a_new_node_makes_it_home_and_the_old_home_old_home(profile, home):
    nodes = KnownNodes(profile.store)
    nodes.add("old-home", contact(), "manual", NOW)
    new = contact()
    assert nodes.enter_home(new, NOW) == KnownNode("home", new.key, str(new), NOW, "home")
    assert nodes.resolve("old-home-2") == home.key
    work = contact()
    nodes.add("work", work, "card", NOW)
    assert nodes.enter_home(work, NOW + 5).petname == "work"
    # The node called home before is home no more, though the new one keeps its petname.
    assert nodes.resolve("old-home-3") == new.key
    assert nodes.get("home") is None


def test_a_profile_registered_before_petnames_moving_home_keeps_the_old_one(profile, home):
    new = contact()
    KnownNodes(profile.store).enter_home(new, NOW)
    profile.store.put("node", str(new))
    nodes = KnownNodes(profile.store)
    assert [(n.petname, n.key) for n in nodes.list()] == [("home", new.key), ("old-home", home.key)]


def test_the_table_is_sealed_in_the_profile(profile, home, tmp_path):
    KnownNodes(profile.store).add("work", contact(), "card", NOW)
    assert b"work" not in (tmp_path / "client.db").read_bytes()
