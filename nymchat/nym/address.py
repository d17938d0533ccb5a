"""Nym addresses (`Recipient`): client identity key ‖ client encryption key ‖ gateway
identity key, 32 bytes each; written `id.enc@gateway` in base58.

Read as the real client reads them (nym's `common/nymsphinx/addressing/src/clients.rs` and
`common/crypto`): the same checks in the same order, and its error texts, which the local
mixnet sends back to applications."""

from dataclasses import dataclass

from nymchat import _native
from nymchat.errors import NymchatError
from nymchat.nym import base58

KEY_LEN = 32
ADDRESS_LEN = 3 * KEY_LEN

_IDENTITY = "recipient's identity key"
_ENCRYPTION = "recipient's encryption key"
_GATEWAY = "recipient gateway's identity key"


class AddressError(NymchatError, ValueError):
    message = "not a valid Nym address"


def _ed25519_key(data: bytes, what: str) -> bytes:
    """An Ed25519 key as nym's `ed25519::PublicKey::from_bytes` takes it: any 32 bytes that
    ed25519-dalek decompresses (a y of p or more is reduced, as curve25519-dalek does)."""
    if len(data) != KEY_LEN:  # the slice does not fit `[u8; 32]`
        raise AddressError(f"{what} is malformed: could not convert slice to array")
    if not _native.is_nym_ed25519_key(data):  # ed25519-dalek's SignatureError, std build
        raise AddressError(f"{what} is malformed: signature error: Cannot decompress Edwards point")
    return data


def _base58_key(text: str, what: str) -> bytes:
    try:
        return base58.decode(text)
    except ValueError as e:
        raise AddressError(
            f"{what} is malformed: the base58 representation of the public key was malformed - {e}"
        ) from None


def _malformed(reason: str) -> AddressError:
    return AddressError(f"recipient is malformed - {reason} ")  # sic, trailing space


@dataclass(frozen=True, slots=True)
class Address:
    identity: bytes
    encryption: bytes
    gateway: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> "Address":
        if len(data) != ADDRESS_LEN:
            raise AddressError(f"address must be {ADDRESS_LEN} bytes, got {len(data)}")
        return cls(
            _ed25519_key(bytes(data[:32]), _IDENTITY),
            bytes(data[32:64]),
            _ed25519_key(bytes(data[64:]), _GATEWAY),
        )

    @classmethod
    def parse(cls, text: str) -> "Address":
        halves = text.split("@")
        if len(halves) != 2:
            raise _malformed("the string address does not contain exactly a single '@' character")
        client = halves[0].split(".")
        if len(client) != 2:
            raise _malformed("the string address does not contain exactly a single '.' character")
        identity = _ed25519_key(_base58_key(client[0], _IDENTITY), _IDENTITY)
        encryption = _base58_key(client[1], _ENCRYPTION)
        if len(encryption) != KEY_LEN:
            raise AddressError(
                f"{_ENCRYPTION} is malformed: received public key of invalid "
                f"size. Got: {len(encryption)}, expected: {KEY_LEN}"
            )
        gateway = _ed25519_key(_base58_key(halves[1], _GATEWAY), _GATEWAY)
        return cls(identity, encryption, gateway)

    def to_bytes(self) -> bytes:
        return self.identity + self.encryption + self.gateway

    def __str__(self) -> str:
        return (
            f"{base58.encode(self.identity)}.{base58.encode(self.encryption)}"
            f"@{base58.encode(self.gateway)}"
        )
