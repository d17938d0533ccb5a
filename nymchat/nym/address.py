"""Nym addresses (`Recipient`): client identity key ‖ client encryption key ‖ gateway
identity key, 32 bytes each; written `id.enc@gateway` in base58."""

from dataclasses import dataclass
from functools import lru_cache

from nymchat.nym import base58

KEY_LEN = 32
ADDRESS_LEN = 3 * KEY_LEN

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P


class AddressError(ValueError):
    """A string or byte string that is not a valid Nym address."""


@lru_cache(maxsize=4096)
def is_ed25519_point(encoded: bytes) -> bool:
    """Whether 32 bytes decompress to a point on Ed25519 (what ed25519-dalek's
    `VerifyingKey::from_bytes` accepts); random bytes fail about half the time."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    if y >= _P:
        return False
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if x2 == 0:
        return not encoded[31] & 0x80  # x = 0 has no negative form
    return pow(x2, (_P - 1) // 2, _P) == 1


@dataclass(frozen=True, slots=True)
class Address:
    identity: bytes
    encryption: bytes
    gateway: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> "Address":
        if len(data) != ADDRESS_LEN:
            raise AddressError(f"address must be {ADDRESS_LEN} bytes, got {len(data)}")
        address = cls(bytes(data[:32]), bytes(data[32:64]), bytes(data[64:]))
        address.check()
        return address

    @classmethod
    def parse(cls, text: str) -> "Address":
        # The reasons are the real client's (nymsphinx-addressing), for its error texts.
        if text.count("@") != 1:
            raise AddressError("the string address does not contain exactly a single '@' "
                               "character")
        client, gateway = text.split("@")
        if client.count(".") != 1:
            raise AddressError("the string address does not contain exactly a single '.' "
                               "character")
        identity, encryption = client.split(".")
        try:
            parts = [base58.decode(p) for p in (identity, encryption, gateway)]
        except ValueError as e:
            raise AddressError(f"a key is not valid base58: {e}") from None
        if any(len(p) != KEY_LEN for p in parts):
            raise AddressError(f"each key must be {KEY_LEN} bytes")
        address = cls(*parts)
        address.check()
        return address

    def check(self) -> None:
        if not is_ed25519_point(self.identity):
            raise AddressError("recipient's identity key is malformed: not an ed25519 point")
        if not is_ed25519_point(self.gateway):
            raise AddressError("recipient gateway's identity key is malformed: not an ed25519 "
                               "point")

    def to_bytes(self) -> bytes:
        return self.identity + self.encryption + self.gateway

    def __str__(self) -> str:
        return (f"{base58.encode(self.identity)}.{base58.encode(self.encryption)}"
                f"@{base58.encode(self.gateway)}")
