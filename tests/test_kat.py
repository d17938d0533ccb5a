"""The known-answer vectors tests/vectors/kat_*.json (written by scripts/make_kat.py).

rust_ext/tests/kat.rs checks them against the Rust core's primitives. Here they are checked
against `cryptography` (an independent implementation) and, where the Python binding exposes
the primitive, against `nymchat._native`: it exposes Ed25519 public-key loading but not
raw Ed25519, X25519 or AES-GCM, which it only uses inside signatures and envelopes.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nymchat import _native, errors

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
KEY_FLAGS = {"SmallOrderPublicKey", "NonCanonicalPublicKey", "InvalidPublicKey"}


def cases(name: str, minimum: int) -> list[tuple[dict, dict]]:
    doc = json.loads((VECTORS / f"kat_{name}.json").read_text())
    out = [(group, test) for group in doc["testGroups"] for test in group["tests"]]
    assert [test["tcId"] for _, test in out] == list(range(1, len(out) + 1))
    assert doc["numberOfTests"] == len(out) >= minimum
    assert {test["result"] for _, test in out} == {"valid", "invalid"}
    assert all(set(test["flags"]) <= set(doc["notes"]) for _, test in out)
    return out


def h(test: dict, key: str) -> bytes:
    return bytes.fromhex(test[key])


def test_files_are_what_the_generator_makes():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_kat.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_ed25519_against_cryptography():
    for group, test in cases("ed25519", 60):
        public = h(group["key"], "pk")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(h(test, "sig"), h(test, "msg"))
            accepted = True
        except (InvalidSignature, ValueError):
            accepted = False
        if test["result"] == "valid":
            assert accepted, test
        elif accepted:
            # OpenSSL's verification is not strict: it takes small-order R and keys where
            # the plain equation holds. nymchat's core refuses them (rust_ext/tests/kat.rs).
            assert "CofactorlessHolds" in test["flags"], test


def test_ed25519_key_loading_in_the_binding():
    for group, test in cases("ed25519", 60):
        public = h(group["key"], "pk")
        if KEY_FLAGS & set(test["flags"]):
            with pytest.raises(errors.BadKey):
                _native.PublicKey(public)
        else:
            assert _native.PublicKey(public).to_bytes() == public


def test_x25519_against_cryptography():
    for _, test in cases("x25519", 35):
        private = X25519PrivateKey.from_private_bytes(h(test, "private"))
        public = X25519PublicKey.from_public_bytes(h(test, "public"))
        if test["result"] == "valid":
            assert private.exchange(public) == h(test, "shared"), test
        else:
            assert "ZeroSharedSecret" in test["flags"] and h(test, "shared") == bytes(32)
            with pytest.raises(ValueError):
                private.exchange(public)  # OpenSSL refuses an all-zero result too


def test_aes_gcm_against_cryptography():
    for group, test in cases("aes_gcm", 30):
        assert (group["keySize"], group["ivSize"], group["tagSize"]) == (256, 96, 128)
        aead = AESGCM(h(test, "key"))
        iv, aad, ct, tag = h(test, "iv"), h(test, "aad"), h(test, "ct"), h(test, "tag")
        if test["result"] == "valid":
            assert aead.encrypt(iv, h(test, "msg"), aad) == ct + tag, test
            assert aead.decrypt(iv, ct + tag, aad) == h(test, "msg"), test
        elif len(tag) == 16:
            with pytest.raises(InvalidTag):
                aead.decrypt(iv, ct + tag, aad)
