"""How identities are shown to people: fingerprints and key encodings."""

import hashlib

FINGERPRINT_DOMAIN = b"nymchat-fingerprint-v1\x00"


def fingerprint(signing_public: bytes, agreement_public: bytes) -> str:
    """Ten groups of four hex digits over SHA-256 of both public keys."""
    digest = hashlib.sha256(FINGERPRINT_DOMAIN + signing_public + agreement_public).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 40, 4))
