"""The native core as Python sees it: API, error classes, limits, hostile input."""

import contextlib
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat import _native, errors

ID = bytes(range(16))


@pytest.fixture(scope="module")
def alice():
    return _native.Identity.generate()


@pytest.fixture(scope="module")
def node():
    return _native.Identity.generate()


def test_errors_are_one_hierarchy():
    names = ["BadKey", "BadSignature", "DecryptionFailed", "SessionBroken", "FramingError"]
    for name in [*names, "InvalidArgument"]:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.CryptoError)
        assert issubclass(cls, errors.NymchatError)


def _native_errors(alice):
    """One call per class the core raises, with that class."""
    account = _native.Account()
    return {
        errors.BadKey: lambda: _native.PublicKey(bytes(31)),
        errors.BadSignature: lambda: _native.verify(alice.signing_public, "x", b"m", bytes(64)),
        errors.DecryptionFailed: lambda: _native.open_envelope(alice, "ctx", bytes(200)),
        errors.SessionBroken: lambda: account.inbound(alice.agreement_public, b"\x00garbage"),
        errors.FramingError: lambda: _native.Reassembler().push(b"short", 0.0),
        errors.InvalidArgument: lambda: _native.encode_frames(b"x", b"short id"),
        errors.JsonError: lambda: _native.json_loads(b"{"),
    }


def test_each_native_error_is_the_class_of_nymchat_errors(alice):
    for cls, call in _native_errors(alice).items():
        with pytest.raises(cls) as raised:
            call()
        assert type(raised.value) is cls
        assert str(raised.value)


def test_native_errors_are_bound_once_not_looked_up_when_raised(alice, monkeypatch):
    class Impostor(Exception):
        pass

    for cls, call in _native_errors(alice).items():
        monkeypatch.setattr(errors, cls.__name__, Impostor)
        with pytest.raises(cls) as raised:
            call()
        assert type(raised.value) is cls


def test_a_class_missing_from_nymchat_errors_fails_the_import_of_the_core(tmp_path):
    script = (
        "import nymchat.errors as e; del e.SessionBroken\n"
        "try:\n    import nymchat._native\n"
        "except AttributeError as error:\n    print('refused:', error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout.startswith("refused:") and "SessionBroken" in out.stdout, out


def _session_pair():
    alice, bob = _native.Account(), _native.Account()
    [(_, one_time)] = bob.generate_one_time_keys(1)
    a = alice.outbound(bob.curve25519_key, one_time)
    b, _ = bob.inbound(alice.curve25519_key, a.encrypt(b"hello"))
    a.decrypt(b.encrypt(b"hi"))
    return alice, bob, a, b


def test_a_session_that_cannot_go_on_raises_session_broken():
    alice, bob, a, b = _session_pair()
    _, _, other, _ = _session_pair()
    message = a.encrypt(b"in this session")
    corrupted = message[:-1] + bytes([message[-1] ^ 1])
    key = os.urandom(32)
    broken = {
        "a message of another session": lambda: b.decrypt(other.encrypt(b"elsewhere")),
        "a corrupted message": lambda: b.decrypt(corrupted),
        "a message that is no session message": lambda: b.decrypt(b"\x07junk"),
        "a replayed message": lambda: b.decrypt(message) and b.decrypt(message),
        "an opening message that opens no session": lambda: bob.inbound(
            alice.curve25519_key, _native.Account().outbound(bob.curve25519_key, key).encrypt(b"x")
        ),
        "a session state that does not load": lambda: _native.Session.from_pickle(
            b.pickle(key), os.urandom(32)
        ),
    }
    for what, call in broken.items():
        with pytest.raises(errors.SessionBroken):
            call()
            pytest.fail(what)
    assert a.decrypt(b.encrypt(b"still fine")) == b"still fine"


def test_errors_outside_sessions_are_not_session_broken(alice):
    key = os.urandom(32)
    with pytest.raises(errors.DecryptionFailed) as raised:
        _native.Account.from_pickle(_native.Account().pickle(key), os.urandom(32))
    assert type(raised.value) is errors.DecryptionFailed
    with pytest.raises(errors.BadKey):
        _native.Account().outbound(b"short", bytes(32))
    with pytest.raises(errors.InvalidArgument):
        _native.Session.from_pickle("x", b"short key")


def test_signature_is_bound_to_its_role(alice):
    key = _native.PublicKey(alice.signing_public)
    sig = alice.sign("node-answer", b"payload")
    key.verify("node-answer", b"payload", sig)
    _native.verify(alice.signing_public, "node-answer", b"payload", sig)
    with pytest.raises(errors.BadSignature):
        key.verify("register-challenge", b"payload", sig)
    with pytest.raises(errors.BadSignature):
        key.verify("node-answer", b"payload!", sig)
    with pytest.raises(errors.BadSignature):
        key.verify("node-answer", b"payload", sig[:-1])


@pytest.mark.parametrize("label", ["", "Upper", "has space", "x" * 65, "é"])
def test_bad_labels_are_refused(alice, label):
    with pytest.raises(errors.InvalidArgument):
        alice.sign(label, b"m")


def test_weak_and_malformed_keys_are_refused():
    with pytest.raises(errors.BadKey):
        _native.PublicKey(b"\x01" + bytes(31))  # the identity point: small order
    with pytest.raises(errors.BadKey):
        _native.PublicKey(bytes(31))
    with pytest.raises(errors.BadKey):
        _native.Identity.from_secret_bytes(bytes(63))


def test_identity_round_trips_through_secret_bytes(alice):
    again = _native.Identity.from_secret_bytes(alice.secret_bytes())
    assert again.signing_public == alice.signing_public
    assert again.agreement_public == alice.agreement_public
    assert "secret" not in repr(alice).lower() or alice.secret_bytes().hex() not in repr(alice)


def test_verify_batch_names_bad_items():
    ids = [_native.Identity.generate() for _ in range(64)]
    items = [
        (i.signing_public, "batch", bytes([n]) * n, i.sign("batch", bytes([n]) * n))
        for n, i in enumerate(ids)
    ]
    assert _native.verify_batch(items) == [True] * 64
    keyed = [(_native.PublicKey(k), label, m, s) for k, label, m, s in items]
    assert _native.verify_batch(keyed) == [True] * 64
    items[5] = (items[5][0], "batch", b"tampered", items[5][3])
    items[9] = (bytes(32), "batch", items[9][2], items[9][3])  # not a valid key
    verdicts = _native.verify_batch(items)
    assert [n for n, ok in enumerate(verdicts) if not ok] == [5, 9]
    assert _native.verify_batch([]) == []


def test_envelope_round_trip_and_binding(alice, node):
    sealed = _native.seal_envelope(alice, node.agreement_public, "to-node", ID, b"hello")
    assert len(sealed) == _native.ENVELOPE_OVERHEAD + 5
    sender, message_id, plaintext = _native.open_envelope(
        node, "to-node", sealed, expected_sender=alice.signing_public
    )
    assert (sender, message_id, plaintext) == (alice.signing_public, ID, b"hello")
    with pytest.raises(errors.DecryptionFailed):
        _native.open_envelope(node, "from-node", sealed)  # other context
    with pytest.raises(errors.DecryptionFailed):
        _native.open_envelope(alice, "to-node", sealed)  # other recipient
    with pytest.raises(errors.DecryptionFailed):
        _native.open_envelope(node, "to-node", sealed, expected_sender=node.signing_public)
    with pytest.raises(errors.InvalidArgument):
        _native.seal_envelope(alice, node.agreement_public, "to-node", b"short", b"x")
    with pytest.raises(errors.BadKey):
        _native.seal_envelope(alice, bytes(32), "to-node", ID, b"x")


def test_envelopes_hide_sender_and_are_fresh(alice, node):
    one = _native.seal_envelope(alice, node.agreement_public, "ctx", ID, b"same")
    two = _native.seal_envelope(alice, node.agreement_public, "ctx", ID, b"same")
    assert one != two
    assert alice.signing_public not in one


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_envelopes_raise_only_decryption_failed(data):
    recipient = _native.Identity.from_secret_bytes(bytes(range(64)))
    with pytest.raises(errors.DecryptionFailed):
        _native.open_envelope(recipient, "ctx", data)


def test_framing_round_trip_out_of_order():
    payload = os.urandom(10 * _native.FRAME_CHUNK_LEN + 3)
    frames = _native.encode_frames(payload, ID)
    assert len(frames) == _native.frame_count(len(payload)) == 12
    assert {len(f) for f in frames} == {_native.FRAME_SIZE}
    r = _native.Reassembler()
    results = [r.push(f, 0.0, b"tag") for f in reversed(frames + frames[:3])]
    done = [x for x in results if x is not None]
    assert done == [(ID, payload)]
    assert (r.pending_messages, r.pending_bytes) == (0, 0)


def test_reassembled_payloads_are_bytes_that_never_change_after():
    """The core writes a message straight into the `bytes` it hands back: once handed
    back, later frames (even of the same id, once forgotten) write elsewhere."""
    chunk = _native.FRAME_CHUNK_LEN
    r = _native.Reassembler(completed_memory=0)
    first, second = os.urandom(3 * chunk), os.urandom(3 * chunk)
    [(_, out)] = [x for f in _native.encode_frames(first, ID) if (x := r.push(f, 0.0))]
    [(_, again)] = [x for f in _native.encode_frames(second, ID) if (x := r.push(f, 0.0))]
    assert type(out) is bytes and (out, again) == (first, second)
    assert type(r.push(_native.encode_frames(b"one frame", ID)[0], 0.0)[1]) is bytes


def test_reassembler_memory_is_bounded():
    chunk = _native.FRAME_CHUNK_LEN
    r = _native.Reassembler(max_pending_bytes=4 * chunk, max_pending_messages=100, ttl=5.0)
    for n in range(50):
        first = _native.encode_frames(bytes(3 * chunk), n.to_bytes(16, "big"))[0]
        assert r.push(first, float(n)) is None
        assert r.pending_bytes <= 4 * chunk
    assert r.evicted >= 49
    r.expire(1000.0)
    assert r.pending_messages == 0
    small = _native.Reassembler(max_message_bytes=100)
    with pytest.raises(errors.FramingError):
        small.push(_native.encode_frames(bytes(101), ID)[0], 0.0)


def test_framing_limits():
    with pytest.raises(errors.InvalidArgument):
        _native.frame_count(_native.MAX_FRAMES * _native.FRAME_CHUNK_LEN + 1)
    with pytest.raises(errors.InvalidArgument):
        _native.encode_frames(b"x", b"too short id")


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=_native.FRAME_SIZE + 10))
def test_hostile_frames_raise_only_framing_error(data):
    r = _native.Reassembler()
    with contextlib.suppress(errors.FramingError):
        r.push(data, 0.0)


@settings(max_examples=300, deadline=None)
@given(
    frame_index=st.integers(0, 5),
    position=st.integers(0, _native.FRAME_SIZE - 1),
    value=st.integers(0, 255),
)
def test_mutated_frames_are_refused_or_keep_the_length(frame_index, position, value):
    """Frames are not authenticated (the envelope inside them is): a mutated frame is
    refused, lands in another message, or changes bytes, but never the length."""
    payload = bytes(i * 7 % 256 for i in range(4 * _native.FRAME_CHUNK_LEN))
    frames = _native.encode_frames(payload, ID)
    mutated = bytearray(frames[frame_index % len(frames)])
    mutated[position] = value
    frames[frame_index % len(frames)] = bytes(mutated)
    r = _native.Reassembler()
    for f in frames:
        try:
            out = r.push(f, 0.0)
        except errors.FramingError:
            continue
        if out is not None:
            message_id, data = out
            if message_id == ID:
                assert len(data) == len(payload)


# --- the one reader of JSON from outside --------------------------------------------------

plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(plain_json)
def test_json_within_bounds_reads_as_pythons_json_keys_in_order(value):
    text = json.dumps(value, ensure_ascii=False)
    assert json.dumps(_native.json_loads(text.encode())) == json.dumps(value)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 200_000),
    st.integers(1, 20_000),
    st.integers(0xD800, 0xDFFF),
    st.sampled_from([b"[", b'{"a":']),
)
def test_json_past_its_bounds_is_refused_with_a_position(depth, digits, unit, opener):
    closer = b"]" if opener == b"[" else b"}"
    for document, bounded in (
        (opener * depth + b"0" + closer * depth, depth > 127),
        (b"[" + b"9" * digits + b"]", digits > 308),
        (b'"\\u%x"' % unit, True),
    ):
        try:
            _native.json_loads(document)
        except errors.JsonError as e:
            assert bounded and " at line 1 column " in str(e)
        else:
            assert not bounded
    assert issubclass(errors.JsonError, errors.NymchatError)
    assert issubclass(errors.JsonError, ValueError)  # as json.loads's errors are
