"""The profile's MLS member (its signature key, bound to the identity by the credential,
and the private halves of its key packages, sealed in the profile store) and the key
packages published at the node: at registration, when the node says they run low, and
once for an account registered before groups."""

import logging

from nymchat import _native
from nymchat.client.events import EventBus, KeysLow
from nymchat.client.nodelink import Link
from nymchat.client.profile import Profile
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
KEY_PACKAGES = 20  # published at a time
MEMBER = "mls_member"  # the store's MLS member state
PUBLISHED = "key_packages_published"  # the node has our key packages (and a last resort)


class KeyPackages:
    def __init__(self, profile: Profile, link: Link, events: EventBus):
        self.profile, self.store, self.link, self.events = profile, profile.store, link, events
        self._member: _native.MlsMember | None = None
        self._low = False

    def member(self) -> "_native.MlsMember":
        """The MLS member, made (and stored) the first time it is needed."""
        if self._member is None:
            state = self.store.get(MEMBER)
            if state is not None:
                self._member = _native.MlsMember.from_state(
                    self.profile.identity, bytes.fromhex(state)
                )
            else:
                self._member = _native.MlsMember.generate(self.profile.identity)
                with self.store.transaction():
                    self.save()
        return self._member

    def save(self) -> None:
        """The member's state (within a transaction: with what changed it)."""
        self.store.put(MEMBER, self.member().state().hex())

    def low(self) -> None:
        """The node said our key packages run low: `keep` publishes fresh ones."""
        self._low = True
        self.events.emit(KeysLow())

    async def keep(self) -> None:
        """Publishes key packages when the node has none of ours yet (a new account, or
        one registered before groups) or said they run low. Their private halves are
        stored before they leave."""
        if self.profile.username is None or (self.store.get(PUBLISHED) and not self._low):
            return
        first = not self.store.get(PUBLISHED)
        member = self.member()
        packages = member.key_packages(KEY_PACKAGES)
        last_resort = member.last_resort_key_package() if first else None
        with self.store.transaction():
            self.save()
        await self.link.request(
            Kind.PUBLISH_KEY_PACKAGES, key_packages=tuple(packages), last_resort=last_resort
        )
        self._low = False
        with self.store.transaction():
            self.store.put(PUBLISHED, True)
