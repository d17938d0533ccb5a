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
        """The certificate to seal a message with: the held one, or one asked for now if
        none is held or it has expired (`keep`, at each connection, renews it before)."""
        held = self.held()
        if held is None or _expires(held) <= now_ms():
            return await self._renew()
        return held

    async def keep(self) -> None:
        """Asks for a new certificate if none is held or it expires soon; what fails is
        tried again at the next connection."""
        if self.profile.username is None:
            return
        held = self.held()
        if held is not None and _expires(held) - now_ms() > RENEW_BEFORE_MS:
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


def _expires(certificate: bytes) -> int:
    """When a certificate we hold (checked when it came) expires."""
    expires: int = wire.decode_record(wire.CERTIFICATE, certificate[:-64]).expires
    return expires
