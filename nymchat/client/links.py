"""The links of one profile to the nodes it talks to, all through its one nym-client: the
home link (where we are registered: signed requests, pushes) and, opened on demand per node
key, anonymous-only links to the home nodes of contacts elsewhere (lookups, sealed sends;
never a signature, so that node never links anything to an account). A foreign link
nothing waits on is closed once it has been idle for `IDLE_S`."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from nymchat.client.events import Event
from nymchat.client.nodelink import Link, NodeLink
from nymchat.client.store import ClientStore
from nymchat.errors import NotFound
from nymchat.nym import base58
from nymchat.protocol.contact import NodeContact

IDLE_S = 600.0


class Links:
    def __init__(
        self,
        home: Link,
        store: ClientStore,
        tell: Callable[[Event], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.home, self.store, self.tell, self.clock = home, store, tell, clock
        self._foreign: dict[bytes, tuple[NodeLink, float]] = {}  # node key → (link, last used)

    @property
    def home_key(self) -> bytes | None:
        return self.home.contact.key if self.home.contact is not None else None

    def to(self, node: bytes | None, contact: NodeContact | None = None) -> Link:
        """The link to the node with key `node` (None or ours: home), opened through
        `contact` (its contact string, whose key must be `node`) when there is none yet."""
        self._close_idle()
        if node is None or node == self.home_key or not isinstance(self.home, NodeLink):
            return self.home
        found = self._foreign.get(node)
        if found is None:
            if contact is None or contact.key != node:
                raise NotFound(
                    f"no way to reach node {base58.encode(node)[:8]}: its contact string is unknown"
                )
            link = self.home.beside(contact, anonymous_only=True)
            link.attach(self.store, self.tell)
            found = (link, 0.0)
        self._foreign[node] = (found[0], self.clock())
        return found[0]

    @asynccontextmanager
    async def former_home(self, contact: NodeContact) -> AsyncIterator[NodeLink]:
        """A signed link to a node we are leaving (our account there is emptied and
        freed), for as long as the context lasts. Its home frontend is one of that node's
        burned addresses where one is listed (what the node links to the account already);
        whatever it signs through is burned in the profile's one set on the way out."""
        if not isinstance(self.home, NodeLink):
            raise NotFound("no nym-client: a former home node cannot be reached offline")
        link = self.home.beside(contact)
        link.tell = self.tell
        link.frontends.burned |= self.home.frontends.burned
        try:
            yield link
        finally:
            link.reader.remove(link)
            self.home.frontends.burn(link.frontends.burned)
            for other, _ in self._foreign.values():
                other.frontends.burned |= link.frontends.burned

    def foreign(self) -> list[NodeLink]:
        return [link for link, _ in self._foreign.values()]

    def _close_idle(self) -> None:
        now = self.clock()
        for node, (link, used) in list(self._foreign.items()):
            if now - used > IDLE_S and link.idle:
                link.reader.remove(link)
                del self._foreign[node]

    def close(self) -> None:
        for link, _ in self._foreign.values():
            link.reader.remove(link)
        self._foreign.clear()
