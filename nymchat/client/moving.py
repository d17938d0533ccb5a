"""Moving home: the account goes to another node under the same name and identity. In
order, each step safe to repeat, so that an interrupted move is finished by running it
again: registered at the new node (home from then on); a MOVED notice queued to every
contact (signed by the identity, sealed in their session, sent through their own node, and
again at every flush until it went); what still waits at the old node taken in; the name
freed there. The old node learns that the account left, not where to."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from nymchat.client import messages
from nymchat.client.contacts import Contacts
from nymchat.client.inbox import Inbox
from nymchat.client.links import Links
from nymchat.client.outbox import Outbox
from nymchat.client.profile import Profile
from nymchat.client.registration import Registration
from nymchat.errors import NotRegistered, NymchatError, UsageError
from nymchat.protocol import names
from nymchat.protocol.contact import NodeContact

log = logging.getLogger(__name__)
MOVING = "moving"  # the home being left, {"node", "name", "told"}, until its name is freed
# ("told": how many contacts were queued the notice, None before)


@dataclass(frozen=True)
class Moved:
    """What a move did: `contacts` were to be told (all but the blocked), `waiting` are
    those not told yet (their node did not take the notice: it goes at the next flush);
    `unread` the messages taken in, from the old node too, that no one has seen; `freed`
    None once the old node freed the name, else why not (run the move again to finish)."""

    name: str
    old_node: str
    contacts: int
    waiting: list[str]
    unread: int
    freed: str | None


class HomeMove:
    def __init__(
        self,
        profile: Profile,
        links: Links,
        contacts: Contacts,
        registration: Registration,
        outbox: Outbox,
        incoming: Inbox,
    ):
        self.profile, self.store = profile, profile.store
        self.links, self.contacts = links, contacts
        self.registration, self.outbox, self.incoming = registration, outbox, incoming

    def _leaving(self, name: str, new: NodeContact) -> dict[str, object]:
        """The move under way (a new one recorded): where from, under which name."""
        leaving: dict[str, object] | None = self.store.get(MOVING)
        home, me = self.profile.node, self.profile.username
        if leaving is not None:
            old = NodeContact.parse(str(leaving["node"]))
            if home is not None and home.key not in (old.key, new.key):
                raise UsageError(
                    f"a move to node {home} is not finished: run `nymchat register "
                    f"{leaving['name']} --node {home} --move` again first"
                )
            if name != leaving["name"]:
                raise UsageError(f"the move under way is of {leaving['name']}, not {name}")
            return leaving
        if home is None or me is None:
            raise NotRegistered(
                "this profile has no name on a node to move: register without --move"
            )
        if home.key == new.key:
            raise UsageError(f"this profile is registered at that node already, as {me}")
        if name != me:
            raise UsageError(
                f"a move keeps the name your contacts know you by: move as {me} (the name "
                "must be free at the new node)"
            )
        leaving = {"node": str(home), "name": me, "told": None}
        with self.store.transaction():
            self.store.put(MOVING, leaving)
        return leaving

    async def move(self, name: str, on_work: Callable[[int], None] | None = None) -> Moved:
        """Moves the account to the node of the home link (see the module's text)."""
        name = names.normalize(name)
        new = self.links.home.contact
        if new is None:
            raise NotRegistered("no node to move to")
        leaving = self._leaving(name, new)
        home = self.profile.node
        if home is None or home.key != new.key or self.profile.username != name:
            await self.registration.register(name, on_work)
        if leaving["told"] is None:
            home = self.profile.node
            assert home is not None  # registered
            body = messages.moved_body(self.profile.identity, name, str(home))
            blocked = self.contacts.blocked()
            told = [c.username for c in self.contacts.ids.all() if c.username not in blocked]
            leaving = {**leaving, "told": len(told)}
            with self.store.transaction():
                self.outbox.tell_moved(body, told)
                self.store.put(MOVING, leaving)
        await self.outbox.flush()
        old = NodeContact.parse(str(leaving["node"]))
        freed: str | None = None
        unread = 0
        try:
            async with self.links.former_home(old) as link:
                unread = len(await self.incoming.inbox(link=link))
                # Groups logged there are watched from now on (it keeps their entries).
                unread += len(await self.incoming.watch.catch_up())
                await self.registration.free(link, name)
            with self.store.transaction():
                self.store.put(MOVING, None)
        except NymchatError as e:
            log.info("the old node did not free %s: %s", name, e)
            freed = str(e)
        told = leaving["told"]
        assert isinstance(told, int)
        return Moved(
            name,
            str(old),
            told,
            self.outbox.moves_waiting(),
            unread,
            freed,
        )
