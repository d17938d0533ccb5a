"""A minimal client of the node protocol for the node's tests: an identity, a transport,
a NodeLink, and key bundles made of random keys (the real client puts Olm keys there)."""

import asyncio
import contextlib
import os
import time

from nymchat import _native
from nymchat.client.nodelink import NodeLink
from nymchat.nym.transport import NymClient
from nymchat.protocol import pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Kind


def one_time_key(identity, key_id: int, label: str = "one-time-key") -> wire.OneTimeKey:
    key = os.urandom(32)
    return wire.OneTimeKey(key_id, key, identity.sign(label, key_id.to_bytes(8, "big") + key))


def bundle(identity, one_time_keys: int = 5) -> wire.Bundle:
    account = os.urandom(32)
    return wire.Bundle(
        identity.agreement_public,
        identity.sign("agreement-key", identity.agreement_public),
        account,
        identity.sign("account-key", account),
        tuple(one_time_key(identity, n) for n in range(one_time_keys)),
        one_time_key(identity, 1000, "fallback-key"),
    )


class Client:
    def __init__(self, url: str, contact: str, identity=None):
        self.url, self.contact = url, NodeContact.parse(contact)
        self.identity = identity or _native.Identity.generate()
        self.acked: set[bytes] = set()  # message ids acknowledged: later copies are dropped

    async def __aenter__(self) -> "Client":
        self.transport = await NymClient(self.url).__aenter__()
        self.link = await NodeLink(self.transport, self.contact, self.identity).__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.link.__aexit__(*exc)
        await self.transport.__aexit__(*exc)

    async def request(self, kind: Kind, **body) -> wire.Answer:
        return await self.link.request(kind, timeout=5, **body)

    async def register(self, name: str, keys: int = 5) -> wire.Answer:
        offered = bundle(self.identity, keys)
        challenge = await self.request(Kind.REGISTER_BEGIN, username=name, bundle=offered)
        if challenge.kind is Kind.REGISTERED:
            return challenge
        body = challenge.body
        solution = pow.solve(
            pow.registration(body["challenge"], name.lower(), self.identity.signing_public),
            body["difficulty"],
        )
        return await self.request(
            Kind.REGISTER_FINISH, username=name, bundle=offered, proof_of_work=solution, **body
        )

    async def push(self, timeout: float = 5) -> wire.Answer:
        return await asyncio.wait_for(self.link.pushes.get(), timeout)

    def raw_request(
        self, kind: Kind, *, now_ms: int | None = None, request_id=None, **body
    ) -> bytes:
        data, _ = wire.encode_request(
            self.identity,
            self.contact.key,
            kind,
            body,
            now_ms or int(time.time() * 1000),
            request_id,
        )
        return data


def flood_frames(identity, node_key: bytes, count: int) -> list[bytes]:
    """`count` distinct, validly signed requests (lookups of nobody), one frame each."""
    now = int(time.time() * 1000)
    return [
        _native.encode_frames(
            wire.encode_request(identity, node_key, Kind.LOOKUP, {"username": "nobody"}, now)[0],
            os.urandom(16),
        )[0]
        for _ in range(count)
    ]


async def flood(transport: NymClient, address, frames: list[bytes]) -> None:
    """Sends `frames` to `address` from one sender tag as fast as they go (giving the rest
    of the event loop a turn now and then)."""
    for n, frame in enumerate(frames):
        await transport.send_anonymous(address, frame, 0)
        if n % 100 == 0:
            await asyncio.sleep(0)


def run(coroutine, timeout: float = 120):
    """Runs a test's coroutine with a deadline."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def client(net, name: str, identity=None) -> Client:
    """A client on the `net` fixture's mixnet (virtual client `name`) and node."""
    mixnet, node = net
    return Client(f"{mixnet.url}/{name}", node.contact, identity)


@contextlib.asynccontextmanager
async def engine_of(user):
    """The real client engine of a `procs.User`'s profile, in this process: for tests that
    play a registered user who crafts what the `nymchat` commands would never send."""
    from procs import PASSPHRASE

    from nymchat import keystore
    from nymchat.client.connect import connect
    from nymchat.client.profile import Profile

    profile = Profile(user.home, keystore.unlock(user.home, PASSPHRASE))
    try:
        async with connect(profile, user.nym) as engine:
            yield engine
    finally:
        profile.close()
