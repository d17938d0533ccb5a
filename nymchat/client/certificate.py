"""This profile's sender certificate: the node's word that our name is our identity's,
which every sealed message carries, so that its recipient knows the name inside is not
merely claimed (the node no longer vouches for a sender). Kept in the profile; a new one
is asked for (`certify`, through home) after registering and whenever the held one is
missing or expires within `RENEW_BEFORE_MS`."""

import logging

from nymchat import _native
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import Link
from nymchat.client.profile import Profile
from nymchat.errors import NymchatError
from nymchat.protocol import wire
from nymchat.protocol.wire import Kind

log = logging.getLogger(__name__)
KEY = "certificate"
RENEW_BEFORE_MS = 2 * 86_400_000


class Certificates:
    def __init__(self, profile: Profile, link: Link):
        self.profile, self.store, self.link = profile, profile.store, link

    def held(self) -> bytes | None:
        value = self.store.get(KEY)
        return None if value is None else bytes.fromhex(value)

    def forget(self) -> None:
        """Our name or node changed: the held certificate names what is no longer ours
        (within a transaction)."""
        self.store.put(KEY, None)

    async def current(self) -> bytes:
        """The certificate to seal a message with: the held one, else one asked for now."""
        return self.held() or await self._renew()

    async def keep(self) -> None:
        """Asks for a new certificate if none is held or it expires soon; what fails is
        tried again at the next connection."""
        held = self.held()
        if self.profile.username is None:
            return
        if held is not None:
            expires = wire.decode_record(wire.CERTIFICATE, held[:-64]).expires
            if expires - now_ms() > RENEW_BEFORE_MS:
                return
        try:
            await self._renew()
        except NymchatError as e:
            log.info("no new sender certificate: %s", e)

    async def _renew(self) -> bytes:
        me = self.profile.me()
        answer = await self.link.request(Kind.CERTIFY, username=me)
        data: bytes = answer.body["certificate"]
        if self.link.contact is None:  # (an answer came: there is a node)
            raise NymchatError("no node to check a certificate with")
        node_key = _native.PublicKey(self.link.contact.key)
        certificate = wire.decode_certificate(data, node_key, now_ms())
        if (certificate.name, certificate.identity) != (me, self.profile.identity.signing_public):
            raise wire.WireError("the node certified another name or key than ours")
        with self.store.transaction():
            self.store.put(KEY, data.hex())
        return data
