"""The account at the node: registering a name (with proof of work when the node asks),
freeing it, keeping the published keys supplied (one-time keys when the node says they
run low, a new fallback key weekly), and keeping the node told our access verifier and
policy for strangers (`set_access`)."""

import asyncio
import logging
from collections.abc import Callable

from nymchat import _native
from nymchat.client.access import Access
from nymchat.client.certificate import Certificates
from nymchat.client.events import EventBus, KeysLow, KeysNotPublished
from nymchat.client.keypackages import PUBLISHED, KeyPackages
from nymchat.client.messages import now_ms
from nymchat.client.nodelink import Link, NodeRefused
from nymchat.client.nodes import KnownNodes
from nymchat.client.profile import ORIGIN_NODE, Profile
from nymchat.errors import NotRegistered, NymchatError
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import ErrorCode, Kind

log = logging.getLogger(__name__)
ONE_TIME_KEYS = 50
AGREEMENT_PUBLISHED = "agreement_published"  # the node has our agreement key's signature
FALLBACK_ROTATION_MS = 7 * 86_400_000  # a new fallback key weekly (the last one is kept)


def _signed_key(
    identity: _native.Identity, key_id: int, key: bytes, fallback: bool = False
) -> wire.OneTimeKey:
    label = "fallback-key" if fallback else "one-time-key"
    return wire.OneTimeKey(key_id, key, identity.sign(label, key_id.to_bytes(8, "big") + key))


class Registration:
    def __init__(
        self,
        profile: Profile,
        link: Link,
        events: EventBus,
        access: Access,
        certificates: Certificates,
        key_packages: KeyPackages,
    ):
        self.profile, self.store, self.identity = profile, profile.store, profile.identity
        self.link, self.events, self.access = link, events, access
        self.certificates, self.key_packages = certificates, key_packages
        self._keys_low = False

    def _agreement_signature(self) -> bytes:
        return self.identity.sign("agreement-key", self.identity.agreement_public)

    async def register(self, name: str, on_work: Callable[[int], None] | None = None) -> str:
        username = names.normalize(name)
        account = self.profile.account(create=True)
        keys = account.generate_one_time_keys(ONE_TIME_KEYS - len(account.one_time_keys()))
        fallback = account.fallback_key() or account.generate_fallback_key()
        bundle = wire.Bundle(
            self.identity.agreement_public,
            self._agreement_signature(),
            account.curve25519_key,
            self.identity.sign("account-key", account.curve25519_key),
            tuple(_signed_key(self.identity, i, k) for i, k in keys),
            _signed_key(self.identity, *fallback, fallback=True),
        )
        with self.store.transaction():
            self.profile.save_account(account)
        answer = await self.link.request(Kind.REGISTER_BEGIN, username=username, bundle=bundle)
        if answer.kind is Kind.CHALLENGE:  # the node keeps nothing: all of it goes back
            challenge, difficulty = answer.body["challenge"], answer.body["difficulty"]
            if on_work is not None and 16 <= difficulty <= pow.MAX_DIFFICULTY:
                on_work(difficulty)  # (over the maximum, `solve` refuses at once)
            solution = await asyncio.to_thread(
                pow.solve,
                pow.registration(challenge, username, self.identity.signing_public),
                difficulty,
                "a registration proof of work",
            )
            await self.link.request(
                Kind.REGISTER_FINISH,
                username=username,
                bundle=bundle,
                challenge=challenge,
                difficulty=difficulty,
                expires=answer.body["expires"],
                proof_of_work=solution,
            )
        account.mark_keys_as_published()
        node = self.link.contact
        assert node is not None  # the node answered
        with self.store.transaction():
            self.profile.save_account(account)
            self.store.put("username", username)
            if self.profile.origin_node is None:  # (else kept: old contacts are there)
                self.store.put(ORIGIN_NODE, node.key.hex())
            KnownNodes(self.store).enter_home(node, now_ms())  # (reads the old `node`)
            self.store.put("node", str(node))
            self.store.put("fallback_published", now_ms())
            self.store.put(AGREEMENT_PUBLISHED, True)
            self.access.forget_confirmed()  # a new account: the node has no verifier yet
            self.certificates.forget()  # nor does a certificate name it
            self.store.put(PUBLISHED, False)  # nor any of our MLS key packages
        await self.settle()
        return username

    async def unregister(self) -> str:
        """Frees this profile's name at its node (which deletes its keys and queue); the
        profile keeps its identity, contacts and history, and is no longer registered."""
        me = self.profile.username
        if me is None:
            raise NotRegistered("this profile is not registered on a node: nothing to unregister")
        await self.free(self.link, me)
        with self.store.transaction():
            self.store.put("username", None)
            self.certificates.forget()
        return me

    @staticmethod
    async def free(link: Link, name: str) -> None:
        """Has the node of `link` free `name`, ours there (and delete its keys and queue)."""
        try:
            await link.request(Kind.UNREGISTER, username=name)
        except NodeRefused as e:
            if e.code is not ErrorCode.NOT_REGISTERED:  # else the node forgot us already
                raise

    def keys_low(self) -> None:
        """The node said our one-time keys run low: `keep` publishes fresh ones."""
        self._keys_low = True
        self.events.emit(KeysLow())

    async def settle(self) -> None:
        """Tells the node what it lacks of this account: the signature of our agreement
        key (an account registered before sealed sending, once), and our access verifier
        and policy for strangers while it has not confirmed the current ones; and has a
        sender certificate that does not expire soon. What fails is tried again at the
        next connection."""
        if self.profile.username is None:
            return
        await self.certificates.keep()
        try:
            if not self.store.get(AGREEMENT_PUBLISHED):
                await self.link.request(
                    Kind.PUBLISH_KEYS,
                    one_time_keys=(),
                    fallback=None,
                    agreement_signature=self._agreement_signature(),
                )
                with self.store.transaction():
                    self.store.put(AGREEMENT_PUBLISHED, True)
            if (wanted := self.access.wanted()) is not None:
                verifier, strangers = wanted
                await self.link.request(
                    Kind.SET_ACCESS, access_verifier=verifier, strangers=strangers
                )
                self.access.confirmed(verifier, strangers)
            await self.key_packages.keep()
        except NymchatError as e:
            log.info("the node was not told our keys or access: %s", e)

    async def keep(self) -> None:
        """Publishes fresh one-time keys if the node said they run low, and a new fallback
        key once the published one is `FALLBACK_ROTATION_MS` old; and what `settle` does."""
        await self.settle()
        published = self.store.get("fallback_published")
        rotate = published is None or now_ms() - published >= FALLBACK_ROTATION_MS
        if not (self._keys_low or rotate):
            return
        one_time, self._keys_low = self._keys_low, False
        try:
            await self.replenish(one_time=one_time, fallback=rotate)
        except NymchatError as e:
            self.events.emit(KeysNotPublished(str(e)))

    async def replenish(self, one_time: bool = True, fallback: bool = False) -> int:
        """Publishes fresh one-time keys, and with `fallback` a new fallback key. The
        account keeps the previous fallback key, so that session-opening messages made
        with it before the change still open."""
        account = self.profile.account()
        new_fallback = None
        if fallback:  # saved before it leaves: the node may take it even if its answer is lost
            key_id, key = account.fallback_key() or account.generate_fallback_key()
            new_fallback = _signed_key(self.identity, key_id, key, fallback=True)
            with self.store.transaction():
                self.profile.save_account(account)
        keys = account.generate_one_time_keys(ONE_TIME_KEYS) if one_time else []
        answer = await self.link.request(
            Kind.PUBLISH_KEYS,
            one_time_keys=tuple(_signed_key(self.identity, i, k) for i, k in keys[:ONE_TIME_KEYS]),
            fallback=new_fallback,
            agreement_signature=None,
        )
        account.mark_keys_as_published()
        node = self.link.contact
        assert node is not None  # the node answered
        with self.store.transaction():
            self.profile.save_account(account)
            if fallback:
                self.store.put("fallback_published", now_ms())
        left: int = answer.body["one_time_keys_left"]
        return left
