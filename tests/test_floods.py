"""Floods (docs/SECURITY.md, "under a flood"): of requests from one sender tag at the
node, of frames from one tag at the node's reassembly, and of a stranger's frames at a
client's address. None of them stands between a user and their answers."""

import asyncio
import os
import re
import socket
import time
import urllib.request
from types import SimpleNamespace

import pytest
from nodeclient import anonymous, bundle, client, flood, flood_frames, run

from nymchat import _native
from nymchat.client.nodelink import NodeLink, NodeRefused
from nymchat.node.intake import Intake
from nymchat.nym import api
from nymchat.nym.transport import NymClient
from nymchat.protocol import wire
from nymchat.protocol.wire import Kind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port: int, name: str) -> float:
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    found = re.search(rf"^{re.escape(name)} (\S+)$", page.decode(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def first_frames(count: int) -> list[bytes]:
    """First frames of `count` two-frame messages that never complete."""
    return [_native.encode_frames(os.urandom(2000), os.urandom(16))[0] for _ in range(count)]


def test_the_intake_drops_a_tag_over_its_rate_and_serves_users_first():
    intake = Intake(rate=1, burst=3, per_tag=2, max_requests=4, max_bytes=1 << 20)
    asked = []

    def known(tag: bytes) -> bool:
        asked.append(tag)
        return tag == b"user"

    def offer(data: bytes, tag: bytes, now: int) -> bool:  # as the runner does
        return intake.admit(tag, now) and intake.put(data, tag, known(tag))

    now = 1_800_000_000_000
    assert [offer(b"m%d" % n, b"mallory", now) for n in range(10)] == [True, True] + [False] * 8
    assert intake.dropped == {"intake_full": 1, "rate_limited": 7}
    assert asked == [b"mallory"] * 3  # nothing else is done with a request over the rate
    assert offer(b"x", b"o1", now) and offer(b"y", b"o2", now)
    assert not offer(b"z", b"o3", now)  # strangers' line is full...
    assert offer(b"u0", b"user", now)  # ...a user's is not
    assert intake.take(3) == [(b"u0", b"user"), (b"m0", b"mallory"), (b"x", b"o1")]
    assert intake.take(10) == [(b"y", b"o2"), (b"m1", b"mallory")]
    assert len(intake) == 0
    assert offer(b"m10", b"mallory", now + 1000)  # the rate refills


@pytest.mark.cli
def test_a_flood_from_one_tag_does_not_stop_a_users_requests(start_mixnet, start_node):
    """Nor the signed ones through the user's home, nor the anonymous lookups of another
    of the user's routes, which wait in the line of unknown routes with the flood."""
    mixnet = start_mixnet()
    port = free_port()
    node = start_node(mixnet, "--metrics", f"127.0.0.1:{port}", "--lookups-per-min", "600")
    flooded = 40_000

    async def main():
        async with (
            client((mixnet, node), "alice") as alice,
            anonymous((mixnet, node), "alice-anonymous") as lookups,
            client((mixnet, node), "bob") as bob,
            client((mixnet, node), "mallory") as mallory,
        ):
            await alice.register("alice")
            await bob.register("bob", keys=0)
            frames = flood_frames(mallory.identity, mallory.contact.key, flooded)
            flooding = asyncio.create_task(
                flood(mallory.transport, mallory.contact.addresses[-1], frames)
            )
            answered = 0
            while not flooding.done() or answered == 0:
                # one attempt each, a bounded wait: a request drowned in the flood fails here
                answer = await alice.link.request(Kind.FETCH, timeout=5, attempts=1, max=1)
                assert answer.kind is Kind.FETCHED
                assert (await lookups.lookup("bob")).body["username"] == "bob"
                answered += 1
                await asyncio.sleep(0.1)
            await flooding
            assert (await lookups.lookup("bob")).body["username"] == "bob"
            return answered

    assert run(main(), timeout=200) >= 1
    dropped = metric(port, 'nymchat_node_dropped_total{reason="rate_limited"}')
    assert dropped >= flooded // 2  # counted and dropped: never verified nor answered
    assert node.proc.poll() is None


@pytest.mark.cli
def test_a_frame_flood_from_one_tag_does_not_break_anothers_long_request(net):
    """Alice's registration takes four frames; between her third and her fourth, mallory
    (one tag) starts 300 messages she never finishes. Alice's request still completes."""
    mixnet = net[0]
    identity = _native.Identity.generate()

    async def main():
        async with NymClient(f"{mixnet.url}/alice") as alice, client(net, "mallory") as mallory:
            address = mallory.contact.addresses[0]
            data, request_id = wire.encode_request(
                identity,
                mallory.contact.key,
                Kind.REGISTER_BEGIN,
                {"username": "alice", "bundle": bundle(identity, 50)},
                int(time.time() * 1000),
            )
            frames = _native.encode_frames(data, os.urandom(16))
            assert len(frames) == 4
            for n, frame in enumerate(frames[:-1]):
                await alice.send_anonymous(address, frame, 20 if n == 0 else 0)
            await asyncio.sleep(0.5)  # at the node before the flood
            await flood(mallory.transport, address, first_frames(300))
            with pytest.raises(NodeRefused, match="not registered"):  # the flood was read
                await mallory.request(Kind.FETCH, max=1)
            await alice.send_anonymous(address, frames[-1], 0)
            reassembler = _native.Reassembler()
            async for received in alice:
                done = reassembler.push(received.message, 0.0, b"")
                if done is not None:
                    return wire.decode_answer(
                        done[1], _native.PublicKey(mallory.contact.key), identity.signing_public
                    ), request_id

    answer, request_id = run(main(), timeout=30)
    assert (answer.kind, answer.in_reply_to) == (Kind.CHALLENGE, request_id)


class FakeTransport:
    """A nym-client as NodeLink sees it: what `feed` is given arrives; sends go nowhere."""

    def __init__(self):
        self.arrivals: asyncio.Queue[api.Received] = asyncio.Queue()

    def feed(self, message: bytes, tag: bytes | None = None) -> None:
        self.arrivals.put_nowait(api.Received(message, tag))

    def __aiter__(self):
        return self._received()

    async def _received(self):
        while True:
            yield await self.arrivals.get()

    async def send_anonymous(self, recipient, message: bytes, reply_surbs: int) -> None:
        pass


def test_a_strangers_flood_at_our_address_evicts_no_node_answer_or_push():
    """The node's answer and push come in several frames each; between the first and the
    rest, a stranger who knows our address sends 600 first frames with plain `send`s (no
    sender tag, like the node's replies). Both still arrive."""
    node, me = _native.Identity.generate(), _native.Identity.generate()
    transport = FakeTransport()
    contact = SimpleNamespace(key=node.signing_public, addresses=(None,), ids=(1,))
    long = b"x" * 5000  # four frames

    async def main():
        async with NodeLink(transport, contact, me) as link:
            data, request_id = wire.encode_request(
                me, node.signing_public, Kind.FETCH, {"max": 1}, 0
            )
            asking = asyncio.create_task(link.request_raw(data, request_id, timeout=10))
            await asyncio.sleep(0)
            answer = wire.encode_answer(
                node,
                me.signing_public,
                Kind.ERROR,
                {"code": 8, "detail": "no user 'bob' here " + "." * 4000},
                0,
                request_id,
            )
            push = wire.encode_answer(
                node,
                me.signing_public,
                Kind.DELIVER,
                {"message_id": bytes(16), "sent": 0, "payload": long},
                0,
            )
            answer_frames = _native.encode_frames(answer, wire.answer_frame_id(request_id))
            push_frames = _native.encode_frames(push, wire.push_frame_id(link.push_key))
            assert len(answer_frames) > 1 and len(push_frames) > 1
            transport.feed(answer_frames[0])
            transport.feed(push_frames[0])
            for frame in first_frames(600):
                transport.feed(frame)
            for frame in answer_frames[1:] + push_frames[1:]:
                transport.feed(frame)
            with pytest.raises(NodeRefused, match="no user 'bob' here"):
                await asking
            pushed = await asyncio.wait_for(link.pushes.get(), 5)
            assert pushed.body["payload"] == long

    run(main(), timeout=30)
