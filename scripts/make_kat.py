#!/usr/bin/env python3
"""Writes the known-answer vectors tests/vectors/kat_{ed25519,x25519,aes_gcm}.json.

Wycheproof-shaped (groups of tests with tcId, comment, inputs, result valid/invalid,
flags), written by us: published test vectors (RFC 8032 §7.1, RFC 7748 §5.2 and §6.1, the
GCM specification's AES-256 test cases 13-16, also in NIST SP 800-38D's validation
examples) plus edge cases computed here with Python `cryptography` and small independent
pieces of arithmetic (an RFC 7748 Montgomery ladder, Ed25519 scalars from the RFC 8032
formulas). No nymchat code is called. Fixed seeds: a run reproduces the files byte for
byte. `result` is what nymchat's core must do: it verifies Ed25519 strictly and refuses
X25519 shared secrets that are all zeros. rust_ext/tests/kat.rs and tests/test_kat.py
check the files.

    scripts/make_kat.py           regenerate the files
    scripts/make_kat.py --check   exit 1 if the committed files differ
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
D = -121665 * pow(121666, -1, P) % P
# y of the Ed25519 points of order 8 (the others of small order have y = 0, 1, p - 1).
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def fixed(name: str, length: int = 32) -> bytes:
    """`length` (<= 32) fixed bytes for `name`."""
    return hashlib.sha256(b"nymchat kat/" + name.encode()).digest()[:length]


def le(n: int) -> bytes:
    return n.to_bytes(32, "little")


def document(algorithm: str, header: list[str], notes: dict, groups: list[dict]) -> dict:
    tc_id = 0
    for group in groups:
        for test in group["tests"]:
            tc_id += 1
            test["tcId"] = tc_id
    return {
        "algorithm": algorithm,
        "generator": "scripts/make_kat.py",
        "numberOfTests": tc_id,
        "header": header,
        "notes": notes,
        "testGroups": groups,
    }


def test(comment: str, result: str, flags: list[str], **fields) -> dict:
    """A test with tcId first (filled in by `document`) and the fields in a stable order."""
    hexed = {k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}
    return {"tcId": 0, "comment": comment, **hexed, "result": result, "flags": flags}


# --- Ed25519 ----------------------------------------------------------------------------

# RFC 8032 §7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc) (secret key, public key,
# message, signature). TEST 1024 is left out for its length.
RFC8032 = [
    ("RFC 8032 7.1 TEST 1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("RFC 8032 7.1 TEST 2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("RFC 8032 7.1 TEST 3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("RFC 8032 7.1 TEST SHA(abc)",
     "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     hashlib.sha512(b"abc").hexdigest(),
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
]  # fmt: skip

ED25519_NOTES = {
    "Ktv": "A known-answer test from RFC 8032 §7.1.",
    "Valid": "A signature made by `cryptography` with the group's key.",
    "ModifiedMessage": "The message differs from the one signed.",
    "ModifiedSignature": "A bit of a valid signature is flipped.",
    "SignatureLength": "The signature is not 64 bytes.",
    "SignatureMalleability": "S is at least the group order L (S + L, S + 2L, or a high bit "
    "set): RFC 8032 §5.1.7 requires 0 <= S < L.",
    "SmallOrderR": "R is a point of small order; strict verification refuses it.",
    "NonCanonicalR": "R encodes y >= p; RFC 8032 decoding refuses it.",
    "CofactorlessHolds": "The cofactorless equation [S]B = R + [k]A holds: a verifier "
    "without the small-order or canonical-encoding checks accepts it.",
    "CofactoredHolds": "Only the cofactored equation [8S]B = [8]R + [8k]A holds.",
    "SmallOrderPublicKey": "The public key is a point of small order (a weak key).",
    "NonCanonicalPublicKey": "The public key encodes y >= p (or x = 0 with the sign bit).",
    "InvalidPublicKey": "The public key is not a curve point, or not 32 bytes.",
}


def clamped_scalar(seed: bytes) -> int:
    h = hashlib.sha512(seed).digest()
    return int.from_bytes(h[:32], "little") & ~7 & (2**254 - 1) | 2**254


def challenge(r: bytes, public: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + public + message).digest(), "little") % L


def ed_public(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def on_curve(y: int) -> bool:
    """Whether some x has (x, y) on edwards25519 (x² = (y² - 1) / (d·y² + 1) is a square)."""
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    return pow(x2, (P - 1) // 2, P) in (0, 1)


def small_order_encodings() -> list[tuple[str, bytes]]:
    out = []
    for name, y in [
        ("identity (order 1)", 1),
        ("order 2", P - 1),
        ("order 4", 0),
        ("order 8, y = y8", Y8),
        ("order 8, y = p - y8", P - Y8),
    ]:
        signs = [0] if y in (1, P - 1) else [0, 1]  # x = 0 has no negative
        for sign in signs:
            out.append((f"{name}, x sign {sign}", le(y | sign << 255)))
    return out


def ed25519() -> dict:
    groups: list[dict[str, Any]] = []
    for comment, sk, pk, msg, sig in RFC8032:
        sk, pk, msg, sig = (bytes.fromhex(x) for x in (sk, pk, msg, sig))
        assert ed_public(sk) == pk and Ed25519PrivateKey.from_private_bytes(sk).sign(msg) == sig
        groups.append(
            {
                "type": "EddsaVerify",
                "source": comment,
                "key": {"curve": "edwards25519", "sk": sk.hex(), "pk": pk.hex()},
                "tests": [test(comment, "valid", ["Ktv"], msg=msg, sig=sig)],
            }
        )

    seed = fixed("ed25519/key")
    pk, a = ed_public(seed), clamped_scalar(seed)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    msg = b"nymchat known-answer test"
    sig = key.sign(msg)
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    tests = []
    for message in [b"", b"\x00", bytes(range(32)), bytes(range(64)), fixed("msg") * 4, msg]:
        tests.append(
            test(
                f"valid, {len(message)}-byte message",
                "valid",
                ["Valid"],
                msg=message,
                sig=key.sign(message),
            )
        )
    for comment, message in [
        ("last byte flipped", msg[:-1] + bytes([msg[-1] ^ 1])),
        ("one byte appended", msg + b"\x00"),
        ("last byte dropped", msg[:-1]),
        ("empty message", b""),
    ]:
        tests.append(
            test(f"message {comment}", "invalid", ["ModifiedMessage"], msg=message, sig=sig)
        )
    for comment, bad in [
        ("empty", b""),
        ("R only (32 bytes)", sig[:32]),
        ("63 bytes", sig[:63]),
        ("65 bytes (0x00 appended)", sig + b"\x00"),
        ("twice (128 bytes)", sig + sig),
    ]:
        tests.append(test(f"signature {comment}", "invalid", ["SignatureLength"], msg=msg, sig=bad))
    for byte, bit in [(0, 0), (1, 3), (31, 7), (32, 0), (40, 5), (63, 0), (63, 4)]:
        flipped = bytearray(sig)
        flipped[byte] ^= 1 << bit
        part = "R" if byte < 32 else "S"
        tests.append(
            test(
                f"bit {bit} of byte {byte} ({part}) flipped",
                "invalid",
                ["ModifiedSignature"],
                msg=msg,
                sig=bytes(flipped),
            )
        )
    tests.append(test("S = 0", "invalid", ["ModifiedSignature"], msg=msg, sig=r + bytes(32)))
    tests.append(
        test(
            "R = 0 bytes (y = 0: a point of order 4)",
            "invalid",
            ["ModifiedSignature", "SmallOrderR"],
            msg=msg,
            sig=bytes(32) + sig[32:],
        )
    )
    for comment, s_bad in [
        ("S + L", s + L),
        ("S + 2L", s + 2 * L),
        ("S with bit 255 set", s | 1 << 255),
        ("S = L", L),
    ]:
        tests.append(
            test(comment, "invalid", ["SignatureMalleability"], msg=msg, sig=r + le(s_bad))
        )
    # R of small order, S chosen so the cofactorless equation holds: S = k·a needs R = 0.
    for comment, r_enc, flags in [
        ("R = identity, S = k·a", le(1), ["SmallOrderR", "CofactorlessHolds"]),
        (
            "R = identity encoded as y = p + 1, S = k·a",
            le(P + 1),
            ["SmallOrderR", "NonCanonicalR", "CofactorlessHolds"],
        ),
        (
            "R = identity with the x sign bit set, S = k·a",
            le(1 | 1 << 255),
            ["SmallOrderR", "NonCanonicalR", "CofactorlessHolds"],
        ),
        ("R = a point of order 8, S = k·a", le(Y8), ["SmallOrderR", "CofactoredHolds"]),
        ("R = a point of order 2, S = k·a", le(P - 1), ["SmallOrderR", "CofactoredHolds"]),
    ]:
        k = challenge(r_enc, pk, msg)
        tests.append(test(comment, "invalid", flags, msg=msg, sig=r_enc + le(k * a % L)))
    groups.append(
        {
            "type": "EddsaVerify",
            "source": "edge cases computed with `cryptography` (signing) and RFC 8032 arithmetic "
            "(the crafted S values), key from a fixed seed",
            "key": {"curve": "edwards25519", "sk": seed.hex(), "pk": pk.hex()},
            "tests": tests,
        }
    )

    # Public keys nymchat refuses to load. R = identity, S = 0 satisfies the cofactorless
    # equation for every key whose order divides k, the identity among them.
    bad_keys = [
        (f"small-order public key: {name}", enc, ["SmallOrderPublicKey"])
        for name, enc in small_order_encodings()
    ]
    bad_keys += [
        (
            "identity public key encoded as y = p + 1",
            le(P + 1),
            ["SmallOrderPublicKey", "NonCanonicalPublicKey"],
        ),
        (
            "order-4 public key encoded as y = p",
            le(P),
            ["SmallOrderPublicKey", "NonCanonicalPublicKey"],
        ),
        (
            "identity public key with the x sign bit set",
            le(1 | 1 << 255),
            ["SmallOrderPublicKey", "NonCanonicalPublicKey"],
        ),
    ]
    non_canonical = [y for y in range(2, 19) if on_curve(y)]
    for y in non_canonical:
        for sign in [0, 1] if y == non_canonical[0] else [0]:
            bad_keys.append(
                (
                    f"public key y = p + {y} (the point y = {y}), x sign {sign}",
                    le(P + y | sign << 255),
                    ["NonCanonicalPublicKey"],
                )
            )
    not_points = [y for y in range(2, 40) if not on_curve(y)][:2]
    bad_keys += [
        (f"public key y = {y}: not a curve point", le(y), ["InvalidPublicKey"]) for y in not_points
    ]
    bad_keys += [
        ("public key of 31 bytes", pk[:31], ["InvalidPublicKey"]),
        ("public key of 33 bytes", pk + b"\x00", ["InvalidPublicKey"]),
    ]
    identity_sig = le(1) + bytes(32)
    order_of_y = {1: 1, P - 1: 2, 0: 4, Y8: 8, P - Y8: 8}
    for comment, bad_pk, flags in bad_keys:
        order = order_of_y.get(int.from_bytes(bad_pk, "little") % 2**255 % P)
        if len(bad_pk) == 32 and order and challenge(identity_sig[:32], bad_pk, msg) % order == 0:
            # [0]B = R + [k]A = O + O: A's order divides k.
            flags = [*flags, "CofactorlessHolds"]
        groups.append(
            {
                "type": "EddsaVerify",
                "source": "key-loading edge cases",
                "key": {"curve": "edwards25519", "pk": bad_pk.hex()},
                "tests": [
                    test(
                        f"{comment}; R = identity, S = 0",
                        "invalid",
                        flags,
                        msg=msg,
                        sig=identity_sig,
                    )
                ],
            }
        )

    for group in groups:
        public = bytes.fromhex(group["key"]["pk"])
        for t in group["tests"]:
            if t["result"] == "valid":  # every valid test checks out with `cryptography`
                Ed25519PublicKey.from_public_bytes(public).verify(
                    bytes.fromhex(t["sig"]), bytes.fromhex(t["msg"])
                )
    header = [
        "Ed25519 (RFC 8032, pure) verification as nymchat's core does it: public keys that "
        "are not canonical curve points or are of small order are refused when loaded, and "
        "verification is strict (ed25519-dalek verify_strict: 0 <= S < L, R canonical and "
        "not of small order, cofactorless equation).",
        "Groups with `sk` give the seed; a valid test's signature is what signing `msg` with "
        "it gives (Ed25519 is deterministic).",
        "Groups with the source 'key-loading edge cases' have a public key that must be "
        "refused when loaded (RFC 8032 §5.1.3 decoding; small-order points, as "
        "ed25519-dalek's is_weak), whatever the signature.",
    ]
    return document("EDDSA", header, ED25519_NOTES, groups)


# --- X25519 -----------------------------------------------------------------------------

A24 = 121665


def ladder(scalar: bytes, u: bytes) -> bytes:
    """X25519 straight from RFC 7748 §5 (clamp, mask bit 255, Montgomery ladder)."""
    k = int.from_bytes(scalar, "little") & ~7 & (2**255 - 1) | 2**254
    x1 = int.from_bytes(u, "little") & (2**255 - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = k >> t & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return le(x2 * pow(z2, P - 2, P) % P)


def x25519_cryptography(private: bytes, public: bytes) -> bytes | None:
    """`cryptography`'s answer, None where it refuses (an all-zero shared secret)."""
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public)
        )
    except ValueError:
        return None


X25519_NOTES = {
    "Ktv": "A known-answer test from RFC 7748 (§5.2 or §6.1).",
    "Valid": "An exchange computed by `cryptography` and the ladder in make_kat.py.",
    "ZeroSharedSecret": "The shared secret is all zeros: nymchat refuses it (RFC 7748 §6.1 "
    "allows the check; x25519-dalek's was_contributory).",
    "LowOrderPublic": "The public u coordinate is a point of order 1, 2, 4 or 8 (on the "
    "curve or its twist).",
    "NonCanonicalPublic": "The public key encodes u >= p; RFC 7748 §5 computes with u mod p.",
    "PublicKeyHighBitSet": "Bit 255 of the public key is set; RFC 7748 §5 masks it.",
    "Twist": "The public u coordinate is on the quadratic twist, not the curve.",
    "PrivateKeyNotClamped": "The private key is not clamped; X25519 clamps it.",
}

RFC7748 = [
    ("RFC 7748 5.2 first vector",
     "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("RFC 7748 5.2 second vector (u has bit 255 set)",
     "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    ("RFC 7748 5.2 iteration 1 (k = u = 9)", "09" + "00" * 31, "09" + "00" * 31,
     "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"),
    ("RFC 7748 6.1 Alice's public key",
     "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "09" + "00" * 31, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
    ("RFC 7748 6.1 Bob's public key",
     "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "09" + "00" * 31, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
    ("RFC 7748 6.1 shared secret, Alice's side",
     "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
    ("RFC 7748 6.1 shared secret, Bob's side",
     "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
]  # fmt: skip
RFC7748_ITERATION_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"


def is_square(n: int) -> bool:
    return pow(n % P, (P - 1) // 2, P) in (0, 1)


def on_montgomery_curve(u: int) -> bool:
    return is_square(u**3 + 486662 * u**2 + u)


def x25519() -> dict:
    rfc = [
        test(
            comment,
            "valid",
            ["Ktv"],
            public=bytes.fromhex(u),
            private=bytes.fromhex(k),
            shared=bytes.fromhex(out),
        )
        for comment, k, u, out in RFC7748
    ]
    # The 1000th step of the §5.2 iteration, from the state after 999 steps.
    k = u = le(9)
    for _ in range(999):
        shared = x25519_cryptography(k, u)
        assert shared is not None  # the RFC's iteration never meets an all-zero secret
        k, u = shared, k
    rfc.append(
        test(
            "RFC 7748 5.2 iteration 1000 (inputs: the state after 999 steps)",
            "valid",
            ["Ktv"],
            public=u,
            private=k,
            shared=bytes.fromhex(RFC7748_ITERATION_1000),
        )
    )

    private = fixed("x25519/private")
    edge = []
    low_order = {"0 (order 2)": 0, "1 (order 4, twist)": 1, "p - 1 (order 4, twist)": P - 1}
    # The u coordinates of the two points of order 8 (well known; the assertions below
    # check that both implementations give all zeros for each).
    order8 = [
        0x00B8495F16056286FDB1329CEB8D09DA6AC49FF1FAE35616AEB8413B7C7AEBE0,
        0x57119FD0DD4E22D8868E1C58C45C44045BEF839C55B1D0B1248C50A3BC959C5F,
    ]
    for i, u8 in enumerate(order8):
        low_order[f"order-8 point {i + 1}"] = u8
    encodings = []
    for name, u0 in low_order.items():
        encodings.append((f"u = {name}", u0, ["LowOrderPublic"]))
        if u0 + P < 2**255:
            encodings.append(
                (
                    f"u = p + {u0}: {name}, not reduced",
                    u0 + P,
                    ["LowOrderPublic", "NonCanonicalPublic"],
                )
            )
    for comment, u, flags in list(encodings):
        encodings.append((f"{comment}, bit 255 set", u | 1 << 255, [*flags, "PublicKeyHighBitSet"]))
    for comment, u, flags in encodings:
        public = le(u)
        for scalar in [private, fixed("x25519/other private")]:
            assert ladder(scalar, public) == bytes(32), comment
            assert x25519_cryptography(scalar, public) is None, comment
        edge.append(
            test(
                f"public {comment}",
                "invalid",
                ["ZeroSharedSecret", *flags],
                public=public,
                private=private,
                shared=bytes(32),
            )
        )

    peer = X25519PrivateKey.from_private_bytes(fixed("x25519/peer")).public_key()
    peer = peer.public_bytes(Encoding.Raw, PublicFormat.Raw)
    peer_u = int.from_bytes(peer, "little")
    twist = [u for u in range(2, 40) if not on_montgomery_curve(u)][:2]
    curve = [u for u in range(2, 40) if on_montgomery_curve(u)][:2]
    valid = [
        ("a peer's public key", peer, ["Valid"]),
        (
            "the same public key with bit 255 set",
            le(peer_u | 1 << 255),
            ["Valid", "PublicKeyHighBitSet"],
        ),
        ("u = 9 (the base point)", le(9), ["Valid"]),
        ("u = p + 9 (the base point, not reduced)", le(P + 9), ["Valid", "NonCanonicalPublic"]),
        (
            "u = p + 9 with bit 255 set",
            le(P + 9 | 1 << 255),
            ["Valid", "NonCanonicalPublic", "PublicKeyHighBitSet"],
        ),
        (
            "u = 2^255 - 1 (p + 18, every bit below 255 set)",
            le(2**255 - 1),
            ["Valid", "NonCanonicalPublic"],
        ),
        (
            "u = 2^256 - 1 (all bits set)",
            b"\xff" * 32,
            ["Valid", "NonCanonicalPublic", "PublicKeyHighBitSet"],
        ),
        *[(f"u = {u} (on the twist)", le(u), ["Valid", "Twist"]) for u in twist],
        *[(f"u = {u} (on the curve)", le(u), ["Valid"]) for u in curve],
        ("u = p - 2 (largest canonical u that is not of small order)", le(P - 2), ["Valid"]),
    ]
    for comment, public, flags in valid:
        shared = ladder(private, public)
        assert shared != bytes(32) and x25519_cryptography(private, public) == shared, comment
        edge.append(
            test(f"public {comment}", "valid", flags, public=public, private=private, shared=shared)
        )
    for comment, scalar in [
        ("all-zero private key", bytes(32)),
        ("all-0xff private key", b"\xff" * 32),
        ("private key with the three low bits set", bytes([7]) + private[1:]),
        (
            "private key with bit 255 set and bit 254 clear",
            private[:31] + bytes([private[31] & 0x3F | 0x80]),
        ),
    ]:
        shared = ladder(scalar, peer)
        assert x25519_cryptography(scalar, peer) == shared, comment
        edge.append(
            test(
                comment,
                "valid",
                ["Valid", "PrivateKeyNotClamped"],
                public=peer,
                private=scalar,
                shared=shared,
            )
        )

    for t in rfc:  # the RFC's answers, checked against both independent implementations
        k, u = bytes.fromhex(t["private"]), bytes.fromhex(t["public"])
        assert ladder(k, u) == bytes.fromhex(t["shared"]) == x25519_cryptography(k, u), t
    groups = [
        {
            "type": "XdhComp",
            "curve": "curve25519",
            "source": "RFC 7748 §5.2 and §6.1",
            "tests": rfc,
        },
        {
            "type": "XdhComp",
            "curve": "curve25519",
            "source": "edge cases computed with `cryptography` and the RFC 7748 ladder in "
            "make_kat.py (they agree on every case), private key from a fixed seed",
            "tests": edge,
        },
    ]
    header = [
        "X25519 (RFC 7748) as nymchat's sealed envelopes use it: x25519-dalek's "
        "diffie_hellman (clamped private key, bit 255 of the public key masked, u taken mod "
        "p), and an all-zero shared secret refused as a low-order key.",
        "`shared` is the X25519 output; for invalid tests it is the all-zero output that "
        "must be refused.",
    ]
    return document("XDH", header, X25519_NOTES, groups)


# --- AES-256-GCM ------------------------------------------------------------------------

# The GCM specification (McGrew and Viega, 2005), appendix B, test cases 13-16: AES-256
# with a 96-bit IV (cases 17 and 18 use other IV lengths, which nymchat never does).
GCM_SPEC = [
    ("GCM spec test case 13", "00" * 32, "00" * 12, "", "", "",
     "530f8afbc74536b9a963b4f1c4cb738b"),
    ("GCM spec test case 14", "00" * 32, "00" * 12, "", "00" * 16,
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
    ("GCM spec test case 15",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"),
    ("GCM spec test case 16",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"),
]  # fmt: skip

AES_GCM_NOTES = {
    "Ktv": "A known-answer test from the GCM specification (AES-256, 96-bit IV).",
    "Valid": "Encrypted with `cryptography`.",
    "EmptyPlaintext": "No plaintext: the tag authenticates the AAD alone.",
    "ModifiedTag": "The tag is changed, cut or empty.",
    "ModifiedCiphertext": "The ciphertext is changed, cut or extended.",
    "ModifiedAad": "The associated data differs from what was authenticated.",
    "ModifiedIv": "The IV differs from the one used to encrypt.",
}


def aes_gcm() -> dict:
    def case(comment, key, iv, aad, msg, result, flags, ct=None, tag=None):
        if ct is None:
            sealed = AESGCM(key).encrypt(iv, msg, aad)
            ct, tag = sealed[:-16], sealed[-16:]
        return test(comment, result, flags, key=key, iv=iv, aad=aad, msg=msg, ct=ct, tag=tag)

    tests = []
    for comment, key, iv, aad, msg, ct, tag in GCM_SPEC:
        key, iv, aad, msg, ct, tag = (bytes.fromhex(x) for x in (key, iv, aad, msg, ct, tag))
        assert AESGCM(key).encrypt(iv, msg, aad) == ct + tag, comment
        flags = ["Ktv", "EmptyPlaintext"] if not msg else ["Ktv"]
        tests.append(case(comment, key, iv, aad, msg, "valid", flags, ct, tag))

    key, iv = fixed("aes/key"), fixed("aes/iv", 12)
    aad = fixed("aes/aad", 20)
    for n in [0, 1, 15, 16, 17, 31, 32, 33, 64, 100]:
        msg = bytes((i * 37 + n) % 256 for i in range(n))
        flags = ["Valid", "EmptyPlaintext"] if n == 0 else ["Valid"]
        tests.append(case(f"{n}-byte plaintext, 20-byte AAD", key, iv, aad, msg, "valid", flags))
    tests.append(
        case(
            "empty plaintext and empty AAD", key, iv, b"", b"", "valid", ["Valid", "EmptyPlaintext"]
        )
    )
    tests.append(
        case("33-byte plaintext, no AAD", key, iv, b"", bytes(range(33)), "valid", ["Valid"])
    )
    tests.append(
        case(
            "AAD of 64 bytes (the envelope's shape), 5-byte plaintext",
            key,
            iv,
            fixed("aes/ad1") + fixed("aes/ad2"),
            b"hello",
            "valid",
            ["Valid"],
        )
    )

    msg = b"nymchat envelope inner bytes 0123456789"
    good = AESGCM(key).encrypt(iv, msg, aad)
    ct, tag = good[:-16], good[-16:]
    empty_tag = AESGCM(key).encrypt(iv, b"", aad)

    def flip(data: bytes, at: int, bit: int = 0) -> bytes:
        out = bytearray(data)
        out[at] ^= 1 << bit
        return bytes(out)

    bad = [
        ("tag: bit 0 of byte 0 flipped", iv, aad, ct, flip(tag, 0), ["ModifiedTag"]),
        ("tag: bit 7 of byte 15 flipped", iv, aad, ct, flip(tag, 15, 7), ["ModifiedTag"]),
        ("tag: all zeros", iv, aad, ct, bytes(16), ["ModifiedTag"]),
        ("tag: cut to 15 bytes", iv, aad, ct, tag[:15], ["ModifiedTag"]),
        ("tag: empty", iv, aad, ct, b"", ["ModifiedTag"]),
        (
            "tag of an empty plaintext: bit 0 of byte 8 flipped",
            iv,
            aad,
            b"",
            flip(empty_tag, 8),
            ["ModifiedTag", "EmptyPlaintext"],
        ),
        ("ciphertext: bit 0 of byte 0 flipped", iv, aad, flip(ct, 0), tag, ["ModifiedCiphertext"]),
        (
            "ciphertext: bit 7 of the last byte flipped",
            iv,
            aad,
            flip(ct, len(ct) - 1, 7),
            tag,
            ["ModifiedCiphertext"],
        ),
        ("ciphertext: last byte dropped", iv, aad, ct[:-1], tag, ["ModifiedCiphertext"]),
        ("ciphertext: one byte appended", iv, aad, ct + b"\x00", tag, ["ModifiedCiphertext"]),
        ("ciphertext: empty", iv, aad, b"", tag, ["ModifiedCiphertext"]),
        ("AAD: bit 0 of byte 0 flipped", iv, flip(aad, 0), ct, tag, ["ModifiedAad"]),
        ("AAD: one byte appended", iv, aad + b"\x00", ct, tag, ["ModifiedAad"]),
        ("AAD: empty", iv, b"", ct, tag, ["ModifiedAad"]),
        ("AAD: moved into the ciphertext's place", iv, b"", aad, tag, ["ModifiedAad"]),
        ("IV: bit 0 of byte 11 flipped", flip(iv, 11), aad, ct, tag, ["ModifiedIv"]),
    ]
    for comment, bad_iv, bad_aad, bad_ct, bad_tag, flags in bad:
        tests.append(
            case(
                comment,
                key,
                bad_iv,
                bad_aad,
                msg if "EmptyPlaintext" not in flags else b"",
                "invalid",
                flags,
                bad_ct,
                bad_tag,
            )
        )
    for t in tests:  # every test checks out with `cryptography`
        k, n, a, c, g = (bytes.fromhex(t[f]) for f in ("key", "iv", "aad", "ct", "tag"))
        try:
            out = AESGCM(k).decrypt(n, c + g, a) if len(g) == 16 else None
        except InvalidTag:
            out = None
        assert (out == bytes.fromhex(t["msg"])) == (t["result"] == "valid"), t
    groups = [
        {
            "type": "AeadTest",
            "keySize": 256,
            "ivSize": 96,
            "tagSize": 128,
            "source": "GCM specification test cases 13-16; the rest computed with `cryptography` "
            "from a fixed key, IV and AAD",
            "tests": tests,
        },
    ]
    header = [
        "AES-256-GCM with a 96-bit IV and a 128-bit tag, as nymchat's sealed envelopes use "
        "it (the RustCrypto aes-gcm crate). `ct` and `tag` are separate; `msg` is the "
        "plaintext (for invalid tests: the plaintext before the change).",
    ]
    return document("AES-GCM", header, AES_GCM_NOTES, groups)


def dump(doc: dict) -> str:
    """JSON with one line per test, to keep the files small and their diffs readable."""
    lines = []
    for group in doc["testGroups"]:
        for i, t in enumerate(group["tests"]):
            lines.append(json.dumps(t, separators=(",", ":")))
            group["tests"][i] = f"@@{len(lines) - 1}@@"
    text = json.dumps(doc, indent=1)
    for n, line in enumerate(lines):
        text = text.replace(f'"@@{n}@@"', line, 1)
    return text + "\n"


def main() -> int:
    from make_vectors import write_or_check

    return write_or_check(
        {
            f"kat_{name}.json": partial(lambda make: dump(make()), make)
            for name, make in [("ed25519", ed25519), ("x25519", x25519), ("aes_gcm", aes_gcm)]
        },
        "make_kat.py",
    )


if __name__ == "__main__":
    sys.exit(main())
