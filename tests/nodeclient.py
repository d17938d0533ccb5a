"""A minimal client of the node protocol for the node's tests: an identity, a transport,
a NodeLink, and key bundles made of random keys (the real client puts Olm keys there);
and `Anonymous`, the requests that name no one (sealed sends, lookups, the frontends),
from a nym-client of their own."""

import asyncio
import contextlib
import os
import time

from nymchat import _native
from nymchat.client.nodelink import NodeLink
from nymchat.errors import FramingError
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


class Anonymous:
    """Anonymous requests through the node's last frontend (the home of no test client),
    from a nym-client (`url`) that never signs a request: its sender tag is linked to no
    account. Answers are signed for nobody (`wire.ANONYMOUS`); an error comes back as
    the answer, not raised."""

    def __init__(self, url: str, contact: str, frontend: int | None = None):
        """`frontend`: the id (1..N) of the frontend to use, else the last."""
        self.url, self.contact = url, NodeContact.parse(contact)
        self.address = self.contact.addresses[(frontend or len(self.contact.addresses)) - 1]
        self.node_key = _native.PublicKey(self.contact.key)
        self._pending: dict[bytes, asyncio.Future[wire.Answer]] = {}
        self._frames = _native.Reassembler(max_message_bytes=4 << 20)

    async def __aenter__(self) -> "Anonymous":
        self.transport = await NymClient(self.url).__aenter__()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        await self.transport.__aexit__(*exc)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for received in self.transport:
            try:
                done = self._frames.push(received.message, loop.time(), b"")
                answer = done and wire.decode_answer(done[1], self.node_key, wire.ANONYMOUS)
            except (FramingError, wire.WireError):
                continue
            if answer and answer.in_reply_to in self._pending:
                self._pending.pop(answer.in_reply_to).set_result(answer)

    async def send(self, data: bytes, request_id: bytes, timeout: float = 5) -> wire.Answer:
        """Sends request bytes (again, for a retry) and waits for the answer."""
        waiter = self._pending[request_id] = asyncio.get_running_loop().create_future()
        for n, frame in enumerate(_native.encode_frames(data, os.urandom(16))):
            await self.transport.send_anonymous(self.address, frame, 10 if n == 0 else 0)
        return await asyncio.wait_for(waiter, timeout)

    async def request(self, kind: Kind, timeout: float = 5, **body) -> wire.Answer:
        data, request_id = wire.encode_anonymous_request(kind, body, int(time.time() * 1000))
        return await self.send(data, request_id, timeout)

    async def lookup(self, name: str) -> wire.Answer:
        """A lookup, with the work the node asks for a one-time key."""
        bits = 0
        while True:
            request_id = os.urandom(16)
            nonce = pow.solve(pow.lookup(self.contact.key, request_id, name), bits)
            data, _ = wire.encode_anonymous_request(
                Kind.LOOKUP,
                {"username": name, "proof_of_work": nonce},
                int(time.time() * 1000),
                request_id,
            )
            answer = await self.send(data, request_id)
            if answer.kind is not Kind.POW_REQUIRED:
                return answer
            bits = answer.body["difficulty"]

    async def seal(
        self,
        recipient: str,
        payload: bytes,
        access_key: bytes | None = None,
        message_id: bytes | None = None,
        work: int = 0,
        timeout: float = 5,
    ) -> wire.Answer:
        """A sealed send, as a contact with `access_key`, else as a stranger who solves
        `work` bits (and what the node asks, if more)."""
        message_id = message_id or os.urandom(16)
        while True:
            nonce = pow.solve(pow.send(self.contact.key, recipient, message_id), work)
            answer = await self.request(
                Kind.SEALED_SEND,
                recipient=recipient,
                message_id=message_id,
                payload=payload,
                access_key=access_key,
                proof_of_work=nonce,
                timeout=timeout,
            )
            if answer.kind is not Kind.POW_REQUIRED or answer.body["difficulty"] <= work:
                return answer
            work = answer.body["difficulty"]


def flood_frames(identity, node_key: bytes, count: int) -> list[bytes]:
    """`count` distinct, validly signed requests (fetches by a key registered nowhere),
    one frame each."""
    now = int(time.time() * 1000)
    return [
        _native.encode_frames(
            wire.encode_request(identity, node_key, Kind.FETCH, {"max": 1}, now)[0],
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


def anonymous(net, name: str) -> Anonymous:
    """Anonymous requests from virtual client `name` (never a `client` too)."""
    mixnet, node = net
    return Anonymous(f"{mixnet.url}/{name}", node.contact)


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
