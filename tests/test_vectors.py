"""The native core against tests/vectors/ (written by scripts/make_vectors.py from the
independent reference in tests/reference_crypto.py)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nymchat import _native, errors

VECTORS = Path(__file__).resolve().parent / "vectors"
ROOT = VECTORS.parent.parent


def load(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text())


SIGNATURES, ENVELOPES, FRAMES = load("signatures"), load("envelopes"), load("frames")
ANONYMOUS = load("anonymous_envelopes")


def cases(data: dict, key: str) -> list:
    return [pytest.param(v, id=v["description"]) for v in data[key]]


def h(v: dict, key: str) -> bytes:
    return bytes.fromhex(v[key])


def identity(seed: bytes, x25519_secret: bytes = bytes(32)):
    return _native.Identity.from_secret_bytes(seed + x25519_secret)


def payload(v: dict) -> bytes:
    if "payload" in v:
        return h(v, "payload")
    rule = v["payload_rule"]
    return bytes((i * rule["mul"] + rule["add"]) % 256 for i in range(rule["length"]))


def test_the_files_are_what_make_vectors_writes():
    script = ROOT / "scripts" / "make_vectors.py"
    result = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_files_are_small():
    assert sum(p.stat().st_size for p in VECTORS.glob("*.json")) < 200_000


@pytest.mark.parametrize("v", cases(SIGNATURES, "vectors"))
def test_signature(v):
    signer = identity(h(v, "seed"))
    assert signer.signing_public == h(v, "public_key")
    assert signer.sign(v["label"], h(v, "message")) == h(v, "signature")
    _native.PublicKey(h(v, "public_key")).verify(v["label"], h(v, "message"), h(v, "signature"))
    _native.verify(h(v, "public_key"), v["label"], h(v, "message"), h(v, "signature"))


@pytest.mark.parametrize("v", cases(SIGNATURES, "invalid"))
def test_invalid_signature(v):
    error = {"key": errors.BadKey, "signature": errors.BadSignature}[v["error"]]
    with pytest.raises(error):
        _native.verify(h(v, "public_key"), v["label"], h(v, "message"), h(v, "signature"))


@pytest.mark.parametrize("v", cases(SIGNATURES, "invalid"))
def test_invalid_signature_in_a_batch(v):
    good = identity(bytes(range(32)))
    items = [
        (h(v, "public_key"), v["label"], h(v, "message"), h(v, "signature")),
        (good.signing_public, "t", b"fine", good.sign("t", b"fine")),
    ]
    assert _native.verify_batch(items[:1]) == [False]
    assert _native.verify_batch(items) == [False, True]


@pytest.mark.parametrize("v", cases(ENVELOPES, "vectors"))
def test_envelope_opens(v):
    recipient = identity(h(v, "recipient_seed"), h(v, "recipient_x25519_secret"))
    assert recipient.agreement_public == h(v, "recipient_x25519_public")
    sender, message_id, plaintext = _native.open_envelope(
        recipient, v["context"], h(v, "envelope"), h(v, "sender_public")
    )
    assert sender == h(v, "sender_public")
    assert message_id == h(v, "message_id")
    assert plaintext == h(v, "plaintext")
    assert len(h(v, "envelope")) == _native.ENVELOPE_OVERHEAD + len(plaintext)


@pytest.mark.parametrize("v", cases(ENVELOPES, "vectors"))
def test_native_seal_has_the_vector_layout(v):
    """The native seal takes no ephemeral key, so only sizes and openability compare."""
    sender = identity(h(v, "sender_seed"))
    recipient = identity(h(v, "recipient_seed"), h(v, "recipient_x25519_secret"))
    sealed = _native.seal_envelope(
        sender, recipient.agreement_public, v["context"], h(v, "message_id"), h(v, "plaintext")
    )
    assert len(sealed) == len(h(v, "envelope"))
    assert sealed[0] == h(v, "envelope")[0] and sealed[33:49] == h(v, "message_id")
    assert _native.open_envelope(recipient, v["context"], sealed)[2] == h(v, "plaintext")


@pytest.mark.parametrize("v", cases(ENVELOPES, "invalid"))
def test_invalid_envelope(v):
    recipient = identity(h(v, "recipient_seed"), h(v, "recipient_x25519_secret"))
    expected = v["expected_sender"] and bytes.fromhex(v["expected_sender"])
    error = {
        "decryption_failed": errors.DecryptionFailed,
        "bad_signature": errors.BadSignature,
        "bad_key": errors.BadKey,
    }[v["error"]]
    with pytest.raises(error):
        _native.open_envelope(recipient, v["context"], h(v, "envelope"), expected)


@pytest.mark.parametrize("v", cases(ANONYMOUS, "vectors"))
def test_anonymous_envelope_opens(v):
    recipient = identity(h(v, "recipient_seed"), h(v, "recipient_x25519_secret"))
    assert _native.open_anonymous(recipient, v["context"], h(v, "envelope")) == (
        h(v, "message_id"),
        h(v, "plaintext"),
    )
    assert len(h(v, "envelope")) == _native.ANONYMOUS_ENVELOPE_OVERHEAD + len(h(v, "plaintext"))
    sealed = _native.seal_anonymous(
        recipient.agreement_public, v["context"], h(v, "message_id"), h(v, "plaintext")
    )
    assert len(sealed) == len(h(v, "envelope")) and sealed[33:49] == h(v, "message_id")
    assert _native.open_anonymous(recipient, v["context"], sealed)[1] == h(v, "plaintext")


@pytest.mark.parametrize("v", cases(ANONYMOUS, "invalid"))
def test_invalid_anonymous_envelope(v):
    recipient = identity(h(v, "recipient_seed"), h(v, "recipient_x25519_secret"))
    with pytest.raises(errors.DecryptionFailed):
        _native.open_anonymous(recipient, v["context"], h(v, "envelope"))


@pytest.mark.parametrize("v", cases(FRAMES, "vectors"))
def test_frames(v):
    data, message_id = payload(v), h(v, "message_id")
    frames = _native.encode_frames(data, message_id)
    assert len(frames) == v["frame_count"] == _native.frame_count(len(data))
    assert hashlib.sha256(b"".join(frames)).hexdigest() == v["frames_sha256"]
    if "frames" in v:
        assert [f.hex() for f in frames] == v["frames"]
    else:
        assert frames[0].hex() == v["first_frame"]
    reassembler = _native.Reassembler()
    done = [reassembler.push(f, 0.0) for f in reversed(frames)]
    assert done[:-1] == [None] * (len(frames) - 1)
    assert done[-1] == (message_id, data)


def test_frame_counts():
    assert FRAMES["frame_size"] == _native.FRAME_SIZE
    assert FRAMES["chunk_len"] == _native.FRAME_CHUNK_LEN
    for v in FRAMES["frame_counts"]:
        assert _native.frame_count(v["length"]) == v["frame_count"], v
    with pytest.raises(errors.InvalidArgument):
        _native.frame_count(FRAMES["too_large"])


@pytest.mark.parametrize("v", cases(FRAMES, "invalid"))
def test_invalid_frame(v):
    with pytest.raises(errors.FramingError):
        _native.Reassembler().push(h(v, "frame"), 0.0)
