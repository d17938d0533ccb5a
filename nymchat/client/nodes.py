"""The nodes a profile knows, like SSH's known hosts: each pinned by its signing key under
a petname the user keeps for it (unique, normalised like a username; look-alikes count as
one), with the contact string to reach it, when it was added and how it was learned. Kept
sealed in the profile's kv `nodes` as one JSON object (petname: entry). The home node is
the entry `home` from registration on (renamable); a profile registered before nodes had
petnames shows its home node as `home` until the table is first changed."""

import itertools
from dataclasses import dataclass
from typing import Any

from nymchat.client.store import ClientStore
from nymchat.errors import NotFound, UsageError
from nymchat.protocol import names
from nymchat.protocol.address import Address, display, normalize_petname, parse_typed
from nymchat.protocol.contact import NodeContact

KV = "nodes"
HOME = "home"
OLD_HOME = "old-home"
LEARNED = frozenset({"home", "card", "directory", "manual", "message"})


class UnknownNode(NotFound):
    message = "no node is known by that petname"


@dataclass(frozen=True, slots=True)
class KnownNode:
    petname: str
    key: bytes
    contact: str  # the node's contact string, as it was given
    added: int  # ms
    learned: str  # one of LEARNED

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "contact": self.contact,
            "added": self.added,
            "learned": self.learned,
        }


class KnownNodes:
    def __init__(self, store: ClientStore):
        self.store = store

    def home_key(self) -> bytes | None:
        """The key of the node the profile is registered at (kv `node`)."""
        text = self.store.get("node")
        return NodeContact.parse(text).key if text else None

    def get(self, petname: str) -> KnownNode | None:
        return self._load().get(normalize_petname(petname))

    def by_key(self, key: bytes) -> KnownNode | None:
        return next((node for node in self._load().values() if node.key == key), None)

    def resolve(self, petname: str) -> bytes:
        """The key of the node called `petname`, or `UnknownNode`."""
        return self._known(petname).key

    def address(self, typed: str) -> Address:
        """`name` (at the home node) or `name@petname` resolved to an `Address`."""
        name, petname = parse_typed(typed)
        if petname is not None:
            return Address(name, self.resolve(petname))
        home = self.home_key()
        if home is None:
            raise NotFound(
                "this profile has no home node yet: register first, or write name@petname"
            )
        return Address(name, home)

    def display(self, address: Address) -> str:
        node = self.by_key(address.node)
        return display(address, self.home_key(), node.petname if node else None)

    def add(self, petname: str, contact: NodeContact, learned: str, now: int) -> KnownNode:
        """Pin the node of `contact` as `petname`. A node already known by that petname
        only has its contact string renewed; a node known by another petname, or a petname
        (or a look-alike of it) taken by another node, is refused."""
        if learned not in LEARNED:
            raise ValueError(f"a node is learned from one of {sorted(LEARNED)}")
        petname = normalize_petname(petname)
        nodes = self._load()
        known = self.by_key(contact.key)
        if known is not None and known.petname != petname:
            raise UsageError(f"this node is already known as '{known.petname}'")
        if known is None:
            self.check_free(petname, nodes)
            node = KnownNode(petname, contact.key, str(contact), now, learned)
        else:
            node = KnownNode(petname, known.key, str(contact), known.added, known.learned)
        nodes[petname] = node
        self._save(nodes)
        return node

    def rename(self, old: str, new: str) -> KnownNode:
        nodes = self._load()
        node = nodes.pop(self._known(old).petname)
        new = normalize_petname(new)
        self.check_free(new, nodes)
        nodes[new] = KnownNode(new, node.key, node.contact, node.added, node.learned)
        self._save(nodes)
        return nodes[new]

    def remove(self, petname: str) -> KnownNode:
        """Forget a node (never the home node: rename it instead)."""
        node = self._known(petname)
        if node.key == self.home_key():
            raise UsageError(f"'{node.petname}' is your home node: rename it if you wish, it stays")
        nodes = self._load()
        del nodes[node.petname]
        self._save(nodes)
        return node

    def enter_home(self, contact: NodeContact, now: int) -> KnownNode:
        """At registration: the node registered at is known as `home` (or keeps the
        petname it already has); a node called `home` before is renamed `old-home`. Called
        before the profile's kv `node` changes: a profile registered before petnames knows
        its old home node only from there."""
        nodes = self._load()
        if HOME in nodes and nodes[HOME].key != contact.key:
            olds = itertools.chain([OLD_HOME], (f"{OLD_HOME}-{n}" for n in itertools.count(2)))
            self.rename(HOME, next(old for old in olds if not self._taken(nodes, old)))
        known = self.by_key(contact.key)
        if known is not None:
            return self.add(known.petname, contact, known.learned, now)
        return self.add(HOME, contact, "home", now)

    def _known(self, petname: str) -> KnownNode:
        node = self.get(petname)
        if node is None:
            raise UnknownNode(
                f"no node is called '{normalize_petname(petname)}' here: see `nymchat "
                "nodes list`; a node shown by the start of its key (name@<8 characters>) "
                "is named first, with `nymchat nodes add PETNAME CONTACT`"
            )
        return node

    @staticmethod
    def _taken(nodes: dict[str, KnownNode], petname: str) -> KnownNode | None:
        same = names.skeleton(petname)
        return next((n for n in nodes.values() if names.skeleton(n.petname) == same), None)

    def check_free(self, petname: str, nodes: dict[str, KnownNode] | None = None) -> None:
        """Refuses a petname (or a look-alike of it) that names a node already."""
        petname = normalize_petname(petname)
        taken = self._taken(self._load() if nodes is None else nodes, petname)
        if taken is not None:
            like = "" if taken.petname == petname else f" (as '{taken.petname}', which looks alike)"
            raise UsageError(f"another node is already called '{petname}'{like}")

    def _load(self) -> dict[str, KnownNode]:
        stored = self.store.get(KV)
        if stored is None:
            home = self.store.get("node")
            return (
                {HOME: KnownNode(HOME, NodeContact.parse(home).key, home, 0, "home")}
                if home
                else {}
            )
        return {
            petname: KnownNode(
                petname, bytes.fromhex(e["key"]), e["contact"], e["added"], e["learned"]
            )
            for petname, e in stored.items()
        }

    def _save(self, nodes: dict[str, KnownNode]) -> None:
        self.store.put(KV, {petname: node.to_json() for petname, node in sorted(nodes.items())})

    def list(self) -> list[KnownNode]:
        """Every known node, the home node first, then by petname."""
        home = self.home_key()
        return sorted(self._load().values(), key=lambda node: (node.key != home, node.petname))
