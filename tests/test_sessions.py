"""End-to-end sessions (vodozemac's Olm through the native core): setup from published
keys, ratcheting, out-of-order and lost messages, state at rest, and forward secrecy."""

import functools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat import _native, errors

KEY = os.urandom(32)


def open_pair():
    alice, bob = _native.Account(), _native.Account()
    [(_key_id, one_time)] = bob.generate_one_time_keys(1)
    bob.mark_keys_as_published()
    assert bob.one_time_keys() == []
    outbound = alice.outbound(bob.curve25519_key, one_time)
    first = outbound.encrypt(b"hello bob")
    inbound, plaintext = bob.inbound(alice.curve25519_key, first)
    assert plaintext == b"hello bob"
    return alice, bob, outbound, inbound, first


def test_conversation_ratchets_both_ways():
    _, _, a, b, _ = open_pair()
    assert a.id == b.id
    for n in range(5):
        assert a.decrypt(b.encrypt(b"b%d" % n)) == b"b%d" % n
        assert b.decrypt(a.encrypt(b"a%d" % n)) == b"a%d" % n


def test_out_of_order_and_lost_messages():
    _, _, a, b, _ = open_pair()
    b.decrypt(a.encrypt(b"warm up"))
    messages = [a.encrypt(b"m%d" % n) for n in range(10)]
    for n in [9, 3, 0, 5]:  # 1, 2, 4, 6, 7, 8 are lost
        assert b.decrypt(messages[n]) == b"m%d" % n
    with pytest.raises(errors.DecryptionFailed):
        b.decrypt(messages[9])  # each message key is used once: replays fail


def test_forward_secrecy_stolen_state_cannot_read_earlier_messages():
    _, _, a, b, first = open_pair()
    captured = [a.encrypt(b"secret %d" % n) for n in range(3)]  # an observer keeps these
    for message in captured:
        b.decrypt(message)
    b.decrypt(a.encrypt(b"later"))
    a.decrypt(b.encrypt(b"reply: the ratchet turns"))
    b.decrypt(a.encrypt(b"and again"))
    stolen = _native.Session.from_pickle(b.pickle(KEY), KEY)  # all of bob's state, now
    for message in [first, *captured]:
        with pytest.raises(errors.DecryptionFailed):
            stolen.decrypt(message)


def test_post_compromise_recovery():
    """A stolen session state stops decrypting once both sides have ratcheted again."""
    _, _, a, b, _ = open_pair()
    b.decrypt(a.encrypt(b"x"))
    stolen = _native.Session.from_pickle(b.pickle(KEY), KEY)
    a.decrypt(b.encrypt(b"bob ratchets"))
    fresh = a.encrypt(b"after recovery")
    assert b.decrypt(fresh) == b"after recovery"
    with pytest.raises(errors.DecryptionFailed):
        stolen.decrypt(fresh)


def test_one_time_keys_are_used_once_and_the_fallback_covers_their_absence():
    alice, carol, bob = _native.Account(), _native.Account(), _native.Account()
    [(_, one_time)] = bob.generate_one_time_keys(1)
    first = alice.outbound(bob.curve25519_key, one_time).encrypt(b"1")
    second = carol.outbound(bob.curve25519_key, one_time).encrypt(b"2")
    bob.inbound(alice.curve25519_key, first)
    with pytest.raises(errors.DecryptionFailed):
        bob.inbound(carol.curve25519_key, second)
    fallback_id, fallback = bob.generate_fallback_key()
    assert bob.fallback_key() == (fallback_id, fallback)
    message = carol.outbound(bob.curve25519_key, fallback).encrypt(b"via fallback")
    assert bob.inbound(carol.curve25519_key, message)[1] == b"via fallback"


def test_a_rotated_fallback_key_still_opens_late_messages():
    """The client publishes a new fallback key weekly: a session-opening message made with
    the previous one (looked up before the change) still opens, also after the account
    went through its pickle; the one before that does not (vodozemac keeps two)."""
    alice, carol, bob = _native.Account(), _native.Account(), _native.Account()
    _, first = bob.generate_fallback_key()
    bob.mark_keys_as_published()
    assert bob.fallback_key() is None  # only an unpublished one is returned
    late = alice.outbound(bob.curve25519_key, first).encrypt(b"late")
    bob.generate_fallback_key()
    bob = _native.Account.from_pickle(bob.pickle(KEY), KEY)
    assert bob.inbound(alice.curve25519_key, late)[1] == b"late"
    too_late = carol.outbound(bob.curve25519_key, first).encrypt(b"too late")
    bob.generate_fallback_key()
    with pytest.raises(errors.DecryptionFailed):
        bob.inbound(carol.curve25519_key, too_late)


def test_a_session_message_from_someone_else_does_not_open():
    alice, bob, mallory = _native.Account(), _native.Account(), _native.Account()
    [(_, one_time)] = bob.generate_one_time_keys(1)
    message = mallory.outbound(bob.curve25519_key, one_time).encrypt(b"I am alice")
    with pytest.raises(errors.DecryptionFailed):
        bob.inbound(alice.curve25519_key, message)  # claimed identity does not match


def test_account_state_at_rest():
    account = _native.Account()
    keys = account.generate_one_time_keys(3)
    pickled = account.pickle(KEY)
    assert account.curve25519_key.hex() not in pickled
    with pytest.raises(errors.DecryptionFailed):
        _native.Account.from_pickle(pickled, os.urandom(32))
    restored = _native.Account.from_pickle(pickled, KEY)
    assert restored.curve25519_key == account.curve25519_key
    assert restored.one_time_keys() == keys
    with pytest.raises(errors.InvalidArgument):
        account.pickle(b"short")


def test_first_messages_match_their_session_until_the_peer_replies():
    _, _, a, b, first = open_pair()
    assert b.matches(first)
    again = a.encrypt(b"still opening")  # until bob answers, alice keeps opening
    assert b.matches(again) and b.decrypt(again) == b"still opening"
    a.decrypt(b.encrypt(b"answer"))
    assert not b.matches(a.encrypt(b"normal message"))
    assert (
        not _native.Account()
        .outbound(
            _native.Account().curve25519_key, _native.Account().generate_one_time_keys(1)[0][1]
        )
        .matches(first)
    )


@functools.cache
def standing_pair():
    return open_pair()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_session_messages_raise_only_decryption_failed(data):
    _, bob, _, b, _ = standing_pair()
    with pytest.raises(errors.DecryptionFailed):
        b.decrypt(data)
    with pytest.raises((errors.DecryptionFailed, errors.BadKey)):
        bob.inbound(os.urandom(32), data)
