"""The native core and the independent reference (tests/reference_crypto.py) read each
other's output: signatures, envelopes and frames, both directions."""

import os
import random

import pytest
import reference_crypto as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from nymchat import _native, errors

C = ref.CHUNK_LEN
labels = st.from_regex(r"[a-z0-9._/-]{1,64}", fullmatch=True)
message_ids = st.binary(min_size=16, max_size=16)
few = settings(max_examples=40, deadline=None)


def seeds(name: str) -> tuple[bytes, bytes]:
    rng = random.Random(name)
    return rng.randbytes(32), rng.randbytes(32)


class Party:
    """One identity as both implementations hold it."""

    def __init__(self, name: str):
        seed, x_secret = seeds(name)
        self.seed, self.x_secret = seed, x_secret
        self.native = _native.Identity.from_secret_bytes(seed + x_secret)
        self.ref = ref.RefIdentity(seed, x_secret)
        assert self.native.signing_public == self.ref.signing_public
        assert self.native.agreement_public == self.ref.agreement_public
        self.public = self.ref.signing_public


ALICE, NODE, MALLORY = Party("alice"), Party("node"), Party("mallory")


# --- signatures -------------------------------------------------------------------------


@few
@given(label=labels, message=st.binary(max_size=2000))
def test_signatures_both_ways(label, message):
    signature = ALICE.native.sign(label, message)
    assert signature == ALICE.ref.sign(label, message) == ref.sign(ALICE.seed, label, message)
    ref.verify(ALICE.public, label, message, signature)
    _native.verify(ALICE.public, label, message, ref.sign(ALICE.seed, label, message))
    with pytest.raises(ref.Rejected):
        ref.verify(ALICE.public, label, message + b"x", signature)
    with pytest.raises(errors.BadSignature):
        _native.verify(ALICE.public, label, message + b"x", signature)


@pytest.mark.parametrize("label", ["", "UPPER", "with space", "nul\0", "é", "x" * 65])
def test_bad_labels_are_refused_by_both(label):
    with pytest.raises(errors.InvalidArgument):
        ALICE.native.sign(label, b"m")
    with pytest.raises(ref.Rejected):
        ref.sign(ALICE.seed, label, b"m")


def small_order_encodings() -> list[bytes]:
    """Every encoding of a small-order point, canonical or not, with either sign bit."""
    p = 2**255 - 19
    ys = [0, 1, p - 1, ref._Y8, p - ref._Y8, p, p + 1]  # p, p + 1: non-canonical 0 and 1
    return [(y | sign << 255).to_bytes(32, "little") for y in ys for sign in (0, 1)]


@pytest.mark.parametrize("encoding", small_order_encodings(), ids=lambda e: e.hex()[:8])
def test_weak_keys_are_refused_by_both(encoding):
    with pytest.raises(errors.BadKey):
        _native.PublicKey(encoding)
    with pytest.raises(ref.Rejected):
        ref.RefPublicKey(encoding)


def test_ordinary_keys_are_accepted_by_both():
    for _ in range(20):
        public = _native.Identity.generate().signing_public
        assert _native.PublicKey(public).to_bytes() == ref.RefPublicKey(public).raw


def test_batch_verify_of_reference_signatures():
    parties = [ref.RefIdentity(*seeds(f"batch/{i}")) for i in range(16)]
    items = []
    for i, party in enumerate(parties):
        message = f"message {i}".encode() * i
        signature = party.sign("batch.test", message)
        items.append((party.signing_public, "batch.test", message, signature))
    assert _native.verify_batch(items) == [True] * 16
    keyed = [(_native.PublicKey(key), *rest) for key, *rest in items]
    assert _native.verify_batch(keyed) == [True] * 16
    key, label, message, signature = items[5]
    items[5] = (key, label, message, signature[:10] + bytes([signature[10] ^ 4]) + signature[11:])
    key, label, message, signature = items[11]
    items[11] = (key, label, message + b"!", signature)
    expected = [i not in (5, 11) for i in range(16)]
    assert _native.verify_batch(items) == expected
    assert [_verifies(*item) for item in items] == expected


def _verifies(*item) -> bool:
    try:
        ref.verify(*item)
    except ref.Rejected:
        return False
    return True


# --- envelopes --------------------------------------------------------------------------


@few
@given(context=labels, message_id=message_ids, plaintext=st.binary(max_size=4000))
def test_reference_seal_native_open(context, message_id, plaintext):
    sealed = ref.seal_with(ALICE.ref, NODE.ref.agreement_public, context, message_id, plaintext)
    assert len(sealed) == _native.ENVELOPE_OVERHEAD + len(plaintext)
    opened = _native.open_envelope(NODE.native, context, sealed, ALICE.public)
    assert opened == (ALICE.public, message_id, plaintext)


@few
@given(context=labels, message_id=message_ids, plaintext=st.binary(max_size=4000))
def test_native_seal_reference_open(context, message_id, plaintext):
    sealed = _native.seal_envelope(
        ALICE.native, NODE.native.agreement_public, context, message_id, plaintext
    )
    opened = ref.open_(NODE.x_secret, context, sealed, ALICE.public)
    assert opened == (ALICE.public, message_id, plaintext)
    assert ref.open_with(NODE.ref, context, sealed) == opened


def test_fixed_ephemeral_reference_matches_itself_and_native_opens():
    args = (NODE.ref.agreement_public, "to-node", bytes(16), b"x", bytes(32))
    sealed = ref.seal(ALICE.seed, *args)
    assert sealed == ref.seal_with(ALICE.ref, *args)
    assert _native.open_envelope(NODE.native, "to-node", sealed)[2] == b"x"


@few
@given(data=st.data())
def test_damaged_envelopes_are_refused_by_both(data):
    sealed = _native.seal_envelope(
        ALICE.native, NODE.native.agreement_public, "ctx", bytes(16), b"payload"
    )
    if data.draw(st.booleans(), label="truncate"):
        damaged = sealed[: data.draw(st.integers(0, len(sealed) - 1), label="length")]
    else:
        at = data.draw(st.integers(0, len(sealed) - 1), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        damaged = sealed[:at] + bytes([sealed[at] ^ 1 << bit]) + sealed[at + 1 :]
    with pytest.raises(errors.DecryptionFailed):
        _native.open_envelope(NODE.native, "ctx", damaged)
    with pytest.raises(ref.Rejected):
        ref.open_with(NODE.ref, "ctx", damaged)


@pytest.mark.parametrize(
    "opener, context, expected_sender",
    [(MALLORY, "to-node", None), (NODE, "from-node", None), (NODE, "to-node", "mallory")],
    ids=["other recipient", "other context", "other expected sender"],
)
def test_misdirected_envelopes_are_refused_by_both(opener, context, expected_sender):
    expected = MALLORY.public if expected_sender else None
    for sealed in [
        ref.seal_with(ALICE.ref, NODE.ref.agreement_public, "to-node", bytes(16), b"hi"),
        _native.seal_envelope(
            ALICE.native, NODE.native.agreement_public, "to-node", bytes(16), b"hi"
        ),
    ]:
        with pytest.raises(errors.DecryptionFailed):
            _native.open_envelope(opener.native, context, sealed, expected)
        with pytest.raises(ref.Rejected):
            ref.open_with(opener.ref, context, sealed, expected)


def test_low_order_recipient_is_refused_by_both():
    with pytest.raises(errors.BadKey):
        _native.seal_envelope(ALICE.native, bytes(32), "ctx", bytes(16), b"x")
    with pytest.raises(ref.Rejected):
        ref.seal_with(ALICE.ref, bytes(32), "ctx", bytes(16), b"x")


# --- frames -----------------------------------------------------------------------------

SIZES = [0, 1, C - 1, C, C + 1, 2 * C, 4 * C + 1, 10 * C + 3, 1 << 20]


def pattern(n: int) -> bytes:
    return bytes((i * 31 + 7) % 256 for i in range(n)) if n < 100_000 else os.urandom(n)


@pytest.mark.parametrize("size", SIZES)
def test_frames_are_identical(size):
    payload, message_id = pattern(size), os.urandom(16)
    frames = _native.encode_frames(payload, message_id)
    assert frames == ref.encode_frames(payload, message_id)
    assert len(frames) == _native.frame_count(size) == ref.frame_count(size)


@pytest.mark.parametrize("size", SIZES)
def test_frames_reassemble_across(size):
    payload, message_id = pattern(size), os.urandom(16)
    rng = random.Random(size)
    frames = ref.encode_frames(payload, message_id)
    shuffled = frames + rng.sample(frames, min(3, len(frames)))  # with duplicates
    rng.shuffle(shuffled)
    reassembler = _native.Reassembler()
    done = [r for r in (reassembler.push(f, 1.0, b"peer") for f in shuffled) if r is not None]
    assert done == [(message_id, payload)]
    native = _native.encode_frames(payload, message_id)
    assert ref.reassemble(rng.sample(native, len(native))) == (message_id, payload)


def test_frame_counts_agree():
    buckets = [b for k in range(17) for b in (2**k, 3 * 2**k) if b <= ref.MAX_FRAMES]
    lengths = {n for b in buckets for n in (b * C - 1, b * C, b * C + 1)} | {0}
    lengths = {n for n in lengths if n <= ref.MAX_FRAMES * C}
    for n in sorted(lengths):
        assert _native.frame_count(n) == ref.frame_count(n), n
    with pytest.raises(errors.InvalidArgument):
        _native.frame_count(ref.MAX_FRAMES * C + 1)
    with pytest.raises(ref.Rejected):
        ref.frame_count(ref.MAX_FRAMES * C + 1)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(0, 5 * C),
    pick=st.integers(0, 5),
    edits=st.lists(
        st.tuples(st.one_of(st.integers(0, 24), st.integers(25, 1599)), st.integers(0, 255)),
        min_size=1,
        max_size=3,
    ),
)
def test_edited_frames_are_judged_alike(size, pick, edits):
    frames = ref.encode_frames(pattern(size), bytes(range(16)))
    frame = bytearray(frames[pick % len(frames)])
    for at, value in edits:
        frame[at] = value
    frame = bytes(frame)
    reassembler = _native.Reassembler(max_message_bytes=4 << 20)
    try:
        message_id, _, count, total_len, data = ref.parse_frame(frame)
    except ref.Rejected:
        with pytest.raises(errors.FramingError):
            reassembler.push(frame, 0.0)
        return
    if total_len > 4 << 20:  # valid, but over the receiver's limit
        with pytest.raises(errors.FramingError):
            reassembler.push(frame, 0.0)
    else:
        assert reassembler.push(frame, 0.0) == ((message_id, data) if count == 1 else None)
