#!/usr/bin/env python3
"""Writes the test vectors tests/vectors/{signatures,envelopes,anonymous_envelopes,frames}.json.

Everything comes from tests/reference_crypto.py (never from nymchat._native) and from
fixed seeds, so a run reproduces the committed files byte for byte; the Rust core must
match them (rust_ext/tests/vectors.rs, tests/test_vectors.py). Each vector is checked
against the reference before it is written.

    scripts/make_vectors.py           regenerate the files
    scripts/make_vectors.py --check   exit 1 if the committed files differ
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
sys.path.insert(0, str(ROOT / "tests"))

import reference_crypto as ref  # noqa: E402

# The order of the Ed25519 group, for the signature vectors with a crafted scalar.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
IDENTITY_POINT = bytes([1]) + bytes(31)
PAYLOAD_FORMULA = "byte[i] = (i * mul + add) mod 256"


def secret(name: str) -> bytes:
    """32 fixed bytes for `name`."""
    return hashlib.sha256(b"nymchat test vectors/" + name.encode()).digest()


def rule_payload(rule: dict) -> bytes:
    return bytes((i * rule["mul"] + rule["add"]) % 256 for i in range(rule["length"]))


def expect_rejected(reason: str | None, call, *args) -> None:
    try:
        call(*args)
    except ref.Rejected as error:
        assert reason is None or error.reason == reason, (reason, error)
    else:
        raise AssertionError(f"the reference accepted an invalid vector ({reason})")


# --- signatures -------------------------------------------------------------------------

LONG_LABEL = ("abcdefghijklmnopqrstuvwxyz0123456789._/-" * 2)[:64]


def small_order_r_signature(seed: bytes, label: str, message: bytes) -> bytes:
    """R = the identity point and s = k·a: holds in the cofactorless equation sB = R + kA,
    but verify_strict refuses a small-order R."""
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little") & ~7 & (2**254 - 1) | 2**254
    public = ref.public_key(seed)
    k_input = IDENTITY_POINT + public + ref.signed_bytes(label, message)
    k = int.from_bytes(hashlib.sha512(k_input).digest(), "little") % GROUP_ORDER
    return IDENTITY_POINT + (k * a % GROUP_ORDER).to_bytes(32, "little")


def not_a_point() -> bytes:
    """The smallest y whose encoding is not a point of the curve."""
    for y in range(2, 100):
        encoding = y.to_bytes(32, "little")
        try:
            ref.RefPublicKey(encoding)
        except ref.Rejected:
            return encoding
    raise AssertionError("no invalid encoding found")


def signatures() -> dict:
    cases = [
        ("alice", "a", b"", "empty message, one-character label"),
        ("alice", "node-answer", b"hello", "short message"),
        ("alice", "challenge", b"hello", "same message as above, another label"),
        ("bob", "envelope", bytes(range(256)), "all byte values"),
        ("bob", LONG_LABEL, b"max-length label", "64-character label, every label character"),
        ("carol", "bulk.v1/part_2", bytes(i * 7 % 251 for i in range(1000)), "1000 bytes"),
    ]
    vectors = []
    for seed_name, label, message, description in cases:
        seed = secret(f"signature/{seed_name}")
        public = ref.public_key(seed)
        signature = ref.sign(seed, label, message)
        ref.verify(public, label, message, signature)
        vectors.append(
            {
                "description": description,
                "seed": seed.hex(),
                "public_key": public.hex(),
                "label": label,
                "message": message.hex(),
                "signed_bytes": ref.signed_bytes(label, message).hex(),
                "signature": signature.hex(),
            }
        )

    seed = secret("signature/alice")
    public = ref.public_key(seed)
    good = ref.sign(seed, "node-answer", b"hello")
    s = int.from_bytes(good[32:], "little")
    flipped = bytes([good[0] ^ 1]) + good[1:]
    invalid = [
        ("signed as node-answer, checked as challenge", public, "challenge", b"hello", good),
        ("message changed", public, "node-answer", b"hellO", good),
        ("a bit of R flipped", public, "node-answer", b"hello", flipped),
        (
            "s + group order: non-canonical s",
            public,
            "node-answer",
            b"hello",
            good[:32] + (s + GROUP_ORDER).to_bytes(32, "little"),
        ),
        ("63-byte signature", public, "node-answer", b"hello", good[:63]),
        (
            "R is the identity point (small order); the cofactorless equation holds",
            public,
            "node-answer",
            b"hello",
            small_order_r_signature(seed, "node-answer", b"hello"),
        ),
        (
            "weak key (the identity point) with R = identity, s = 0: the equation holds",
            IDENTITY_POINT,
            "node-answer",
            b"hello",
            IDENTITY_POINT + bytes(32),
        ),
        ("public key that is not a curve point", not_a_point(), "node-answer", b"hello", good),
    ]
    invalid_vectors = []
    for description, key, label, message, signature in invalid:
        expect_rejected(None, ref.verify, key, label, message, signature)
        error = "key"
        try:
            ref.RefPublicKey(key)
        except ref.Rejected:
            pass
        else:
            error = "signature"
        invalid_vectors.append(
            {
                "description": description,
                "public_key": key.hex(),
                "label": label,
                "message": message.hex(),
                "signature": signature.hex(),
                "error": error,
            }
        )
    return {
        "description": "Domain-separated Ed25519: the signature covers "
        "'nymchat-sig-v1\\0' || len(label) u8 || label || message. Ed25519 is deterministic, "
        "so signing with `seed` must give `signature` exactly. Each invalid vector must be "
        "refused: error 'key' when the public key itself is refused (not a point, or of "
        "small order), 'signature' when verification fails.",
        "vectors": vectors,
        "invalid": invalid_vectors,
    }


# --- envelopes --------------------------------------------------------------------------


def party(name: str) -> dict:
    seed, x_secret = secret(f"envelope/{name}/ed25519"), secret(f"envelope/{name}/x25519")
    return {
        "seed": seed,
        "public": ref.public_key(seed),
        "x_secret": x_secret,
        "x_public": ref.x25519_public(x_secret),
    }


def raw_envelope(ephemeral_secret, recipient_public, context, message_id, inner) -> bytes:
    """An envelope around an arbitrary `inner` (to build authentic-but-invalid ones)."""
    ephemeral = X25519PrivateKey.from_private_bytes(ephemeral_secret)
    header = bytes([1]) + ref.x25519_public(ephemeral_secret) + message_id
    aead, nonce = ref._cipher(
        ephemeral, recipient_public, header[1:33], recipient_public, context.encode()
    )
    ad = header + bytes([len(context)]) + context.encode() + recipient_public
    return header + aead.encrypt(nonce, inner, ad)


def envelopes() -> dict:
    alice, node, mallory = party("alice"), party("node"), party("mallory")
    cases = [
        (alice, node, "to-node", b"hello", "short plaintext"),
        (alice, node, "to-node", b"", "empty plaintext"),
        (node, alice, "from-node", b"\x00", "one zero byte, the other direction"),
        (
            alice,
            node,
            LONG_LABEL,
            bytes(i * 31 + 7 & 0xFF for i in range(3000)),
            "3000-byte plaintext, 64-character context",
        ),
        (alice, alice, "self-test", b"ok", "sealed to the sender's own X25519 key"),
    ]
    vectors = []
    for number, (sender, recipient, context, plaintext, description) in enumerate(cases):
        ephemeral = secret(f"envelope/ephemeral/{number}")
        message_id = secret(f"envelope/message-id/{number}")[:16]
        sealed = ref.seal(
            sender["seed"], recipient["x_public"], context, message_id, plaintext, ephemeral
        )
        opened = ref.open_(recipient["x_secret"], context, sealed, sender["public"])
        assert opened == (sender["public"], message_id, plaintext)
        vectors.append(
            {
                "description": description,
                "sender_seed": sender["seed"].hex(),
                "sender_public": sender["public"].hex(),
                "recipient_seed": recipient["seed"].hex(),
                "recipient_x25519_secret": recipient["x_secret"].hex(),
                "recipient_x25519_public": recipient["x_public"].hex(),
                "ephemeral_secret": ephemeral.hex(),
                "ephemeral_public": ref.x25519_public(ephemeral).hex(),
                "context": context,
                "message_id": message_id.hex(),
                "plaintext": plaintext.hex(),
                "envelope": sealed.hex(),
            }
        )

    ephemeral, message_id = secret("envelope/ephemeral/invalid"), bytes(range(16))
    good = ref.seal(alice["seed"], node["x_public"], "to-node", message_id, b"hi", ephemeral)

    def flip(at: int) -> bytes:
        return good[:at] + bytes([good[at] ^ 0x01]) + good[at + 1 :]

    def inner(signer: dict, claimed: bytes, plaintext: bytes, signed_plaintext: bytes) -> bytes:
        header = bytes([1]) + ref.x25519_public(ephemeral) + message_id
        ad = header + bytes([len("to-node")]) + b"to-node" + node["x_public"]
        signed = ad + claimed + signed_plaintext
        signature = ref.sign(signer["seed"], "envelope", signed)
        body = claimed + signature + plaintext
        return raw_envelope(ephemeral, node["x_public"], "to-node", message_id, body)

    defaults = {"open_as": "node", "context": "to-node", "expected_sender": None}
    invalid = [
        ("opened in another context", good, {"context": "from-node"}, "decryption_failed"),
        ("opened by another recipient", good, {"open_as": "mallory"}, "decryption_failed"),
        (
            "expected_sender is someone else",
            good,
            {"expected_sender": mallory["public"].hex()},
            "decryption_failed",
        ),
        ("version byte 2", bytes([2]) + good[1:], {}, "decryption_failed"),
        ("a bit of the ephemeral key flipped", flip(5), {}, "decryption_failed"),
        ("a bit of the message id flipped", flip(40), {}, "decryption_failed"),
        ("a bit of the ciphertext flipped", flip(60), {}, "decryption_failed"),
        ("a bit of the tag flipped", flip(len(good) - 1), {}, "decryption_failed"),
        ("truncated to one byte under the minimum", good[:160], {}, "decryption_failed"),
        (
            "ephemeral key of low order (all zero)",
            good[:1] + bytes(32) + good[33:],
            {},
            "decryption_failed",
        ),
        (
            "authentic, but the inner signature is by mallory while the sender field says alice",
            inner(mallory, alice["public"], b"hi", b"hi"),
            {},
            "bad_signature",
        ),
        (
            "authentic, but the inner signature covers another plaintext",
            inner(alice, alice["public"], b"hi", b"ho"),
            {},
            "bad_signature",
        ),
        (
            "authentic, but the sender field is a weak key (the identity point)",
            inner(alice, IDENTITY_POINT, b"hi", b"hi"),
            {},
            "bad_key",
        ),
    ]
    parties = {"alice": alice, "node": node, "mallory": mallory}
    invalid_vectors = []
    for description, sealed, how, error in invalid:
        how = {**defaults, **how}
        recipient = parties[how["open_as"]]
        expected = how["expected_sender"]
        expected = None if expected is None else bytes.fromhex(expected)
        expect_rejected(None, ref.open_, recipient["x_secret"], how["context"], sealed, expected)
        invalid_vectors.append(
            {
                "description": description,
                "recipient_seed": recipient["seed"].hex(),
                "recipient_x25519_secret": recipient["x_secret"].hex(),
                "context": how["context"],
                "expected_sender": how["expected_sender"],
                "envelope": sealed.hex(),
                "error": error,
            }
        )
    return {
        "description": "Sealed envelopes: X25519(ephemeral, recipient) -> HKDF-SHA256 -> "
        "AES-256-GCM with the sender's Ed25519 signature inside (see "
        "rust_ext/src/envelope.rs). Sealing with `ephemeral_secret` must give `envelope` "
        "exactly; the identity that opens it is recipient_seed || recipient_x25519_secret. "
        "Invalid vectors must not open: `error` names the class (decryption_failed, "
        "bad_signature, bad_key); expected_sender null means none is given.",
        "vectors": vectors,
        "invalid": invalid_vectors,
    }


def anonymous_envelopes() -> dict:
    alice, bob, mallory = party("alice"), party("node"), party("mallory")
    cases = [
        (bob, "nymchat-message", b"hello", "short plaintext"),
        (bob, "nymchat-message", b"", "empty plaintext"),
        (alice, LONG_LABEL, bytes(i * 31 + 7 & 0xFF for i in range(600)), "600 bytes"),
    ]
    vectors = []
    for number, (recipient, context, plaintext, description) in enumerate(cases):
        ephemeral = secret(f"anonymous/ephemeral/{number}")
        message_id = secret(f"anonymous/message-id/{number}")[:16]
        sealed = ref.seal_anonymous(
            recipient["x_public"], context, message_id, plaintext, ephemeral
        )
        assert ref.open_anonymous(recipient["x_secret"], context, sealed) == (message_id, plaintext)
        vectors.append(
            {
                "description": description,
                "recipient_seed": recipient["seed"].hex(),
                "recipient_x25519_secret": recipient["x_secret"].hex(),
                "recipient_x25519_public": recipient["x_public"].hex(),
                "ephemeral_secret": ephemeral.hex(),
                "context": context,
                "message_id": message_id.hex(),
                "plaintext": plaintext.hex(),
                "envelope": sealed.hex(),
            }
        )
    ephemeral, message_id = secret("anonymous/ephemeral/invalid"), bytes(range(16))
    good = ref.seal_anonymous(bob["x_public"], "nymchat-message", message_id, b"hi", ephemeral)
    signed = ref.seal(
        alice["seed"], bob["x_public"], "nymchat-message", message_id, b"hi", ephemeral
    )

    def flip(at: int) -> bytes:
        return good[:at] + bytes([good[at] ^ 0x01]) + good[at + 1 :]

    invalid = [
        ("opened in another context", good, bob, "other"),
        ("opened by another recipient", good, mallory, "nymchat-message"),
        ("version byte 1 (a signed envelope's)", bytes([1]) + good[1:], bob, "nymchat-message"),
        ("a signed envelope", signed, bob, "nymchat-message"),
        (
            "a signed envelope relabelled anonymous",
            bytes([2]) + signed[1:],
            bob,
            "nymchat-message",
        ),
        ("a bit of the ephemeral key flipped", flip(5), bob, "nymchat-message"),
        ("a bit of the message id flipped", flip(40), bob, "nymchat-message"),
        ("a bit of the ciphertext flipped", flip(50), bob, "nymchat-message"),
        ("a bit of the tag flipped", flip(len(good) - 1), bob, "nymchat-message"),
        ("truncated to one byte under the minimum", good[:64], bob, "nymchat-message"),
        ("ephemeral key of low order", good[:1] + bytes(32) + good[33:], bob, "nymchat-message"),
    ]
    invalid_vectors = []
    for description, sealed, recipient, context in invalid:
        expect_rejected(None, ref.open_anonymous, recipient["x_secret"], context, sealed)
        invalid_vectors.append(
            {
                "description": description,
                "recipient_seed": recipient["seed"].hex(),
                "recipient_x25519_secret": recipient["x_secret"].hex(),
                "context": context,
                "envelope": sealed.hex(),
            }
        )
    return {
        "description": "Anonymous envelopes: X25519(ephemeral, recipient) -> HKDF-SHA256 "
        "(info nymchat-anonymous-envelope-v1) -> AES-256-GCM, no sender, no signature (see "
        "rust_ext/src/envelope.rs). Sealing with `ephemeral_secret` must give `envelope` "
        "exactly; invalid vectors must not open (decryption_failed).",
        "vectors": vectors,
        "invalid": invalid_vectors,
    }


# --- frames -----------------------------------------------------------------------------

C = ref.CHUNK_LEN


def frames() -> dict:
    cases = [
        (b"", None, "empty payload: one frame of padding"),
        (b"hello", None, "short payload"),
        (bytes(range(100)), None, "100 bytes"),
        (None, C - 1, "one byte under a chunk"),
        (None, C, "exactly one chunk"),
        (None, C + 1, "one byte over a chunk: two frames"),
        (None, 3 * C, "exactly three chunks (a bucket)"),
        (None, 4 * C + 1, "five chunks sent as six: the last frame is only padding"),
        (None, 5 * C, "five full chunks sent as six"),
        (None, 10 * C + 3, "eleven chunks sent as twelve"),
        (None, 100_000, "100000 bytes: 64 chunks, a bucket"),
    ]
    vectors = []
    for number, (payload, length, description) in enumerate(cases):
        message_id = secret(f"frames/message-id/{number}")[:16]
        vector: dict = {"description": description, "message_id": message_id.hex()}
        if payload is None:
            vector["payload_rule"] = {
                "length": length,
                "mul": 31,
                "add": 7,
                "formula": PAYLOAD_FORMULA,
            }
            payload = rule_payload(vector["payload_rule"])
        else:
            vector["payload"] = payload.hex()
        encoded = ref.encode_frames(payload, message_id)
        assert ref.reassemble(encoded[::-1]) == (message_id, payload)
        vector["frame_count"] = len(encoded)
        vector["frames_sha256"] = hashlib.sha256(b"".join(encoded)).hexdigest()
        if len(encoded) <= 2:
            vector["frames"] = [frame.hex() for frame in encoded]
        else:
            vector["first_frame"] = encoded[0].hex()
        vectors.append(vector)

    lengths = [0, 1, C, C + 1, 2 * C, 2 * C + 1, 3 * C + 1, 4 * C + 1, 6 * C + 1, 8 * C + 1]
    lengths += [12 * C + 1, 16 * C + 1, 1 << 20, 4 << 20, ref.MAX_FRAMES * C]
    counts = [{"length": n, "frame_count": ref.frame_count(n)} for n in lengths]
    too_large = ref.MAX_FRAMES * C + 1
    expect_rejected("length", ref.frame_count, too_large)

    short = ref.encode_frames(bytes(range(100)), bytes(16))[0]
    padding_only = ref.encode_frames(
        rule_payload({"length": 4 * C + 1, "mul": 31, "add": 7}), bytes(16)
    )[-1]
    five_chunks = ref.encode_frames(bytes(5 * C), bytes(16))[0]

    def with_(frame: bytes, at: int, value: bytes) -> bytes:
        return frame[:at] + value + frame[at + len(value) :]

    def u16(n: int) -> bytes:
        return n.to_bytes(2, "big")

    invalid = [
        ("1599 bytes", short[:-1], "size"),
        ("1601 bytes", short + b"\0", "size"),
        ("0 bytes", b"", "size"),
        ("version 0", with_(short, 0, b"\0"), "version"),
        ("version 2", with_(short, 0, b"\2"), "version"),
        ("index 1 of count 1", with_(short, 17, u16(1)), "index"),
        ("count 0", with_(short, 19, u16(0)), "index"),
        (
            "count 5, not a bucket (five full chunks are sent as six)",
            with_(five_chunks, 19, u16(5)),
            "bucket",
        ),
        ("count 7, not a bucket", with_(short, 19, u16(7)), "bucket"),
        ("count 2 for a 100-byte payload", with_(short, 19, u16(2)), "length"),
        (
            "total_len of two chunks in a one-frame message",
            with_(short, 21, (2 * C).to_bytes(4, "big")),
            "length",
        ),
        (
            "total_len 2^32 - 1, too large for any frame count",
            with_(short, 21, b"\xff" * 4),
            "length",
        ),
        ("first padding byte non-zero", with_(short, ref.FRAME_HEADER_LEN + 100, b"\1"), "padding"),
        ("last padding byte non-zero", with_(short, ref.FRAME_SIZE - 1, b"\x80"), "padding"),
        (
            "a frame that is only padding, with one non-zero byte",
            with_(padding_only, 800, b"\1"),
            "padding",
        ),
    ]
    invalid_vectors = []
    for description, frame, reason in invalid:
        expect_rejected(reason, ref.parse_frame, frame)
        invalid_vectors.append({"description": description, "frame": frame.hex(), "error": reason})
    return {
        "description": "Frames of exactly 1600 bytes: 0x01 || message_id[16] || index u16 || "
        "count u16 || total_len u32 || chunk[1575] (big-endian), count the smallest bucket "
        "(2^k or 3*2^k) holding the payload. Encoding is canonical: `frames` (or, for more "
        "than two frames, `first_frame` and `frames_sha256`, the SHA-256 of all frames "
        "concatenated) must be reproduced exactly. A long payload is given by `payload_rule`: "
        f"{PAYLOAD_FORMULA} for i in 0..length. `frame_counts` gives the frame count of some "
        "lengths; `too_large` is the smallest length that cannot be framed. Each invalid "
        "frame must be refused; `error` says which check fails (size, version, index, bucket: "
        "count is not a bucket, length: count is not the bucket for total_len, padding).",
        "frame_size": ref.FRAME_SIZE,
        "chunk_len": C,
        "vectors": vectors,
        "frame_counts": counts,
        "too_large": too_large,
        "invalid": invalid_vectors,
    }


def write_or_check(files: dict[str, Callable[[], str]], tool: str) -> int:
    """The command line of the vector generators: writes each file of tests/vectors/ from
    its maker, or with --check says which differ (exit 1)."""
    parser = argparse.ArgumentParser(description=f"Writes {', '.join(files)} in tests/vectors/.")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    stale = []
    for name, make in files.items():
        path = VECTORS / name
        text = make()
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            VECTORS.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({len(text)} bytes)")
    for path in stale:
        print(f"{path.relative_to(ROOT)} differs from what scripts/{tool} makes")
    return 1 if stale else 0


def main() -> int:
    return write_or_check(
        {
            f"{name}.json": partial(lambda make: json.dumps(make(), indent=1) + "\n", make)
            for name, make in [
                ("signatures", signatures),
                ("envelopes", envelopes),
                ("anonymous_envelopes", anonymous_envelopes),
                ("frames", frames),
            ]
        },
        "make_vectors.py",
    )


if __name__ == "__main__":
    sys.exit(main())
