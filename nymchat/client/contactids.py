"""Who is who: the contacts a profile keeps, by id, and the id of the person at an
address. A contact's id is their bare name at the profile's origin node (as every record
made before federation is), else their canonical address `name@<node key>`, else, where
these rules give one already held by someone else, an alias `<address>#<n>` recorded
here. Also how a contact is shown, and the link to their node."""

import itertools

from nymchat.client.links import Links
from nymchat.client.nodelink import Link
from nymchat.client.nodes import KnownNodes
from nymchat.client.profile import Profile
from nymchat.client.records import Contact
from nymchat.nym import base58
from nymchat.protocol import names
from nymchat.protocol.address import KEY_LEN, Address, parse_typed
from nymchat.protocol.contact import NodeContact

ALIASES = "contact_aliases"  # canonical address → contact id, where the rules give another


def _node_key(text: str) -> bytes | None:
    """The node key of a contact id's or canonical address's tail (`<base58 key>` or
    `<base58 key>#<n>`), None if it is none (a petname, say)."""
    try:
        key = base58.decode(text.partition("#")[0]) if text else b""
    except ValueError:
        return None
    return key if len(key) == KEY_LEN else None


def checked(text: str) -> str:
    """Whom the user typed, checked before anything is unlocked: `name` or `name@petname`
    normalised, or a contact id as faces show it (`name@<node key>[#n]`) kept."""
    name, at, tail = text.strip(" \t\r\n").partition("@")
    if at and _node_key(tail) is not None:
        return f"{names.normalize(name)}@{tail}"
    name, petname = parse_typed(text)
    return name if petname is None else f"{name}@{petname}"


class ContactIds:
    def __init__(self, profile: Profile, links: Links):
        self.profile, self.store, self.links = profile, profile.store, links
        self.nodes = KnownNodes(profile.store)

    def get(self, contact_id: str) -> Contact | None:
        record = self.store.contact(contact_id)
        return Contact.from_record(record) if record is not None else None

    def all(self) -> list[Contact]:
        return [Contact.from_record(record) for record in self.store.contacts()]

    def node_of(self, contact: Contact) -> bytes | None:
        """The key of a contact's home node (a record without one: the origin node's)."""
        return contact.node or self.profile.origin_node

    def id_of(self, address: Address) -> str:
        """The id the profile keeps the person at `address` under: an alias recorded for
        the address, else the bare name at the origin node (as every record made before
        federation is), else the canonical address. An id held by a contact of another
        node (one who moved there) gets a fresh alias `<address>#<n>`, recorded."""
        aliases: dict[str, str] = self.store.get(ALIASES, {})
        canonical = str(address)
        if canonical in aliases:
            return aliases[canonical]
        contact_id = address.name if address.node == self.profile.origin_node else canonical
        held = self.get(contact_id)
        if held is None or self.node_of(held) == address.node:
            return contact_id
        taken = set(aliases.values())
        contact_id = next(
            alias
            for n in itertools.count(2)
            if (alias := f"{canonical}#{n}") not in taken and self.get(alias) is None
        )
        self.store.put(ALIASES, {**aliases, canonical: contact_id})
        return contact_id

    def at(self, address: Address) -> Contact | None:
        """The contact kept for the person at `address`, if any (no id is allocated)."""
        aliases: dict[str, str] = self.store.get(ALIASES, {})
        canonical = str(address)
        origin = address.node == self.profile.origin_node
        contact = self.get(aliases.get(canonical) or (address.name if origin else canonical))
        return contact if contact is not None and self.node_of(contact) == address.node else None

    def sender_id(self, address: Address, identity: bytes, claimed: str | None = None) -> str:
        """The id of whoever sent a message certified as `address`'s for `identity`:
        `id_of` (`claimed`, when the caller has it already), unless nobody is kept there
        while one contact of that name with that pinned identity is kept at another node.
        They moved: only their MOVED moves their record, but what they send before it
        arrives is theirs (it opens only in their sessions)."""
        contact_id = claimed or self.id_of(address)
        if self.get(contact_id) is not None:
            return contact_id
        moved = [c for c in self.all() if c.name == address.name and c.identity == identity]
        return moved[0].username if len(moved) == 1 else contact_id

    def moved(self, contact_id: str, address: Address) -> None:
        """The contact kept under `contact_id` lives at `address` now: it names them from
        now on, the aliases of their old one gone (within a transaction)."""
        aliases = {a: i for a, i in self.store.get(ALIASES, {}).items() if i != contact_id}
        self.store.put(ALIASES, {**aliases, str(address): contact_id})

    def target(self, given: str | Address) -> tuple[str, str, bytes | None]:
        """(contact id, name, node key) of whom the user means: an `Address`, a contact's
        id, a canonical `name@<node key>`, or typed `name` (at the home node) or
        `name@petname`. Node None: a profile with no node yet."""
        if isinstance(given, Address):
            return self.id_of(given), given.name, given.node
        # An id as stored (a look-alike an older version pinned, `Alice`, is not one:
        # typed, it means `alice`).
        contact = self.get(given) if "@" in given or given == given.strip().lower() else None
        if contact is not None:
            return given, contact.name, self.node_of(contact)
        name, _, at = given.partition("@")
        key = _node_key(at)
        if key is not None:
            address = Address(names.normalize(name), key)
            return self.id_of(address), address.name, address.node
        name, petname = parse_typed(given)
        node = self.nodes.resolve(petname) if petname is not None else self.nodes.home_key()
        return (name, name, None) if node is None else (self.id_of(Address(name, node)), name, node)

    def resolve(self, given: str | Address) -> str:
        """The contact id of whom the user means (see `target`)."""
        return self.target(given)[0]

    def display(self, contact_id: str) -> str:
        """How a contact is shown: `name` at the home node, `name@petname` at a node the
        user named, `name@<8 characters of its key>` at one they did not."""
        contact = self.get(contact_id) if contact_id[:1] != "#" else None
        node = self.node_of(contact) if contact is not None else None
        if contact is None or node is None:
            return contact_id
        return self.nodes.display(Address(contact.name, node))

    def link_to(
        self, node: bytes | None, contact: Contact | None = None, node_contact: str | None = None
    ) -> Link:
        """The link to a node (home, or anonymous-only to another), reached through the
        contact string of its KnownNodes entry, else the one `contact` gave us, else
        `node_contact` (a group's log node's, say)."""
        known = self.nodes.by_key(node) if node is not None else None
        text = known.contact if known else (contact.node_contact if contact else node_contact)
        return self.links.to(node, NodeContact.parse(text) if text else None)
