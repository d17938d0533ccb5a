"""Keys of the virtual clients, kept in the state directory so that each name keeps its
address across restarts. Real Ed25519/X25519 keys, so addresses are valid Nym addresses."""

import json
import re
import secrets
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from nymchat.files import write_atomic
from nymchat.nym.address import Address

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
GATEWAYS = 4  # virtual gateways the clients are spread over


def _address(client: dict, gateways: list[str]) -> Address:
    identity = bytes(SigningKey(bytes.fromhex(client["identity_seed"])).verify_key)
    encryption = bytes(PrivateKey(bytes.fromhex(client["encryption_secret"])).public_key)
    gateway = bytes(SigningKey(bytes.fromhex(gateways[client["gateway"]])).verify_key)
    return Address(identity, encryption, gateway)


class IdentityStore:
    """Addresses by virtual client name; new names get new keys, written at once."""

    def __init__(self, state: Path):
        self.clients_dir = state / "clients"
        self.clients_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        gateways_file = state / "gateways.json"
        if gateways_file.exists():
            self.gateways = json.loads(gateways_file.read_text())["seeds"]
        else:
            self.gateways = [secrets.token_hex(32) for _ in range(GATEWAYS)]
            write_atomic(gateways_file, json.dumps({"seeds": self.gateways}).encode())

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.clients_dir.glob("*.json"))

    def address(self, name: str) -> Address:
        """The address of `name`, creating its keys on first use."""
        if not NAME.fullmatch(name):
            raise ValueError(f"client name {name!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        path = self.clients_dir / f"{name}.json"
        if path.exists():
            return _address(json.loads(path.read_text()), self.gateways)
        client = {
            "identity_seed": secrets.token_hex(32),
            "encryption_secret": secrets.token_hex(32),
            "gateway": secrets.randbelow(len(self.gateways)),
        }
        write_atomic(path, json.dumps(client).encode())
        return _address(client, self.gateways)
