"""An unlocked profile: the identity, its sealed store, and what is kept about the account
at the node (the name, the node, the Olm account)."""

from pathlib import Path

from nymchat import _native
from nymchat.client.store import ClientStore, derive_keys
from nymchat.errors import NotRegistered
from nymchat.protocol.contact import NodeContact


class Profile:
    def __init__(self, home: Path, identity: "_native.Identity"):
        self.home, self.identity = home, identity
        self.store = ClientStore(home / "client.db", derive_keys(identity.secret_bytes()))

    @property
    def username(self) -> str | None:
        return self.store.get("username")

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

    def account(self) -> "_native.Account | None":
        pickle = self.store.get("account")
        return _native.Account.from_pickle(pickle, self.store.pickle_key) if pickle else None

    def save_account(self, account: "_native.Account") -> None:
        self.store.put("account", account.pickle(self.store.pickle_key))

    def close(self) -> None:
        self.store.close()
