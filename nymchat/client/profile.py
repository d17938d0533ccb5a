"""An unlocked profile: the identity, its sealed store, and what is kept about the account
at the node (the name, the node, the Olm account)."""

from pathlib import Path

from nymchat import _native
from nymchat.client.store import ClientStore, derive_keys, snapshot
from nymchat.errors import NotRegistered
from nymchat.protocol.contact import NodeContact

ORIGIN_NODE = "origin_node"


class Profile:
    def __init__(self, home: Path, identity: "_native.Identity"):
        self.home, self.identity = home, identity
        self.store = ClientStore(home / "client.db", derive_keys(identity.secret_bytes()))

    @property
    def username(self) -> str | None:
        username: str | None = self.store.get("username")
        return username

    def me(self) -> str:
        """The registered name, or `NotRegistered`."""
        username = self.username
        if username is None:
            raise NotRegistered()
        return username

    @property
    def node(self) -> NodeContact | None:
        text = self.store.get("node")
        return NodeContact.parse(text) if text else None

    @property
    def origin_node(self) -> bytes | None:
        """The key of the node this profile was first registered at: where the contacts
        pinned without a node (by versions before federation) are. Set at the first
        registration, or from the current node the first time it is asked for."""
        key = self.store.get(ORIGIN_NODE)
        if key is not None:
            return bytes.fromhex(key)
        node = self.node
        if node is None:
            return None
        self.store.put(ORIGIN_NODE, node.key.hex())
        return node.key

    def account(self, create: bool = False) -> "_native.Account":
        """The Olm account (a new one with `create`, if none is stored yet); without one
        the profile was never registered."""
        pickle = self.store.get("account")
        if pickle:
            return _native.Account.from_pickle(pickle, self.store.pickle_key)
        if create:
            return _native.Account()
        raise NotRegistered()

    def save_account(self, account: "_native.Account") -> None:
        self.store.put("account", account.pickle(self.store.pickle_key))

    def contact_count(self) -> int:
        return len(self.store.contacts())

    def restored(self) -> int:
        """After a restore: the sessions' ratchets may have moved on since the backup, and
        sending with them again would reuse message keys. Each contact gets a new session
        at the next message (same identity: no key change to show), and a new fallback key
        is published at the next connection (the node may hold one made after the backup).
        Groups go too, for the same reason (MLS message keys), and because the node no
        longer holds what led from the backup's epochs to theirs: another member must add
        the profile again. Returns how many sessions were dropped."""
        with self.store.transaction():
            dropped = self.store.drop_all_sessions()
            self.store.put("fallback_published", 0)
            self.store.drop_all_groups()
        return dropped

    def snapshot(self) -> bytes:
        """The profile's database as one consistent image, for a backup."""
        return snapshot(self.home / "client.db")

    def close(self) -> None:
        self.store.close()
