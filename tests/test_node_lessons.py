"""Each way the original nymCHAT broke (upstream-lessons.md), shown impossible here, on
real `dist/nymchat mixnet` and `dist/nymchat node` processes."""

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest
from nodeclient import Anonymous, Client, anonymous, bundle, client, run
from procs import DIST, clean_env
from websockets.sync.client import connect

from nymchat import _native
from nymchat.client.nodelink import NodeRefused
from nymchat.nym import api
from nymchat.protocol import pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind

pytestmark = pytest.mark.cli


async def delivered(c: Client, timeout: float = 5) -> set[bytes]:
    """Payloads pushed to `c` until it has been quiet for a moment."""
    got = set()
    try:
        while True:
            push = await c.push(timeout=timeout if not got else 0.5)
            if push.kind is Kind.DELIVER:
                got.add(push.body["payload"])
    except TimeoutError:
        return got


# 1. One malformed request ended the node's receive loop; no reconnect to the nym-client.


def test_malformed_requests_leave_the_node_serving(net):
    mixnet, node = net
    node_address = NodeContact.parse(node.contact).addresses[0].to_bytes()

    async def main():
        async with client(net, "alice") as alice:
            await alice.register("alice")
            hostile = [
                b"",
                b"\x01",
                b"\x02\x05" + bytes(100),
                b'{"action":"register"}',
                b"[]",
                os.urandom(1600),
                b"\x01\x77" + os.urandom(200),
                alice.raw_request(Kind.FETCH, max=1)[:-10],
                wire.encode_anonymous_request(
                    Kind.LOOKUP, {"username": "x", "proof_of_work": 0}, 0
                )[0][:-3],
            ]
            for data in hostile:  # whole messages, and as frames
                await alice.link.send_raw(data)
                await alice.transport.send_anonymous(alice.contact.addresses[0], data, 5)
                await alice.transport.send(alice.contact.addresses[0], data)  # no tag at all
            assert (await alice.request(Kind.FETCH, max=1)).kind is Kind.FETCHED

    run(main())
    with connect(f"{mixnet.url}/raw") as raw:  # and over Text, straight to the node
        raw.send(
            f'{{"type":"sendAnonymous","recipient":"{NodeContact.parse(node.contact).addresses[0]}","message":"{{\\"action\\":1}}",'
            '"replySurbs":5}'
        )
    assert node.proc.poll() is None
    assert node_address


def test_the_node_reconnects_to_its_nym_client_and_keeps_queued_work(
    start_mixnet, start_node, tmp_path
):
    state = tmp_path / "mixnet"
    mixnet = start_mixnet(state=state)
    node = start_node(mixnet)
    bob_identity = _native.Identity.generate()

    async def main():
        async with Anonymous(f"{mixnet.url}/alice", node.contact) as alice:
            async with Client(f"{mixnet.url}/bob", node.contact, bob_identity) as bob:
                await bob.register("bob")
            sent = await alice.seal("bob", b"queued before the outage", message_id=b"q" * 16)
            assert sent.kind is Kind.ACCEPTED
        mixnet.stop()  # the node's nym-client goes away...
        await asyncio.sleep(1)
        again = await asyncio.to_thread(start_mixnet, "--port", str(mixnet.port), state=state)
        await asyncio.sleep(6)  # ...and comes back: the node reconnects by itself
        async with Client(f"{again.url}/bob", node.contact, bob_identity) as bob:
            await bob.request(Kind.REFRESH)
            assert b"queued before the outage" in await delivered(bob)

    run(main())
    assert node.proc.poll() is None


# 2. Replay: a signed request resent later, from another tag, moved the victim's tag.


def test_replayed_and_stale_requests_change_nothing(net):
    """The same bytes again (a retry, or a replay) get the same answer and change nothing:
    alice's messages still go to alice; other bytes under a seen id are a replay."""

    async def main():
        async with (
            client(net, "alice") as alice,
            client(net, "bob") as bob,
            anonymous(net, "bob-anonymous") as sealed,
        ):
            await alice.register("alice")
            await bob.register("bob")
            captured = alice.raw_request(Kind.REFRESH, push_key=alice.link.push_key)
            request_id = wire.decode_request(captured).request_id
            first = await alice.link.request_raw(captured, request_id, 5)
            assert first.kind is Kind.REFRESHED
            # mallory, holding the captured bytes, replays them from her own sender tag
            async with client(net, "mallory", alice.identity) as mallory:
                again = await mallory.link.request_raw(captured, request_id, 5)
                assert again == first  # the cached answer, the very same
            # other bytes under that id (from another tag: a client reassembles one
            # message per frame id)
            async with client(net, "oscar", alice.identity) as oscar:
                other = alice.raw_request(Kind.FETCH, request_id=request_id, max=1)
                with pytest.raises(NodeRefused) as error:
                    await oscar.link.request_raw(other, request_id, 5)
                assert error.value.code is ErrorCode.REPLAYED
            async with client(net, "mallory", alice.identity) as mallory:
                stale = alice.raw_request(
                    Kind.REFRESH,
                    now_ms=int(time.time() * 1000) - 10 * 60_000,
                    push_key=alice.link.push_key,
                )
                with pytest.raises(NodeRefused) as error:
                    await mallory.link.request_raw(stale, wire.decode_request(stale).request_id, 5)
                assert error.value.code is ErrorCode.STALE
                # alice's messages still go to alice, not to mallory
                assert (await sealed.seal("alice", b"for alice only")).kind is Kind.ACCEPTED
                assert b"for alice only" in await delivered(alice)
                assert await delivered(mallory, timeout=1) == set()

    run(main())


def test_the_answer_cache_survives_a_node_restart(start_mixnet, start_node, tmp_path):
    mixnet = start_mixnet()
    node = start_node(mixnet, data=tmp_path / "node")

    async def capture():
        async with Client(f"{mixnet.url}/alice", node.contact) as alice:
            await alice.register("alice")
            data = alice.raw_request(Kind.REFRESH, push_key=alice.link.push_key)
            rid = wire.decode_request(data).request_id
            answer = await alice.link.request_raw(data, rid, 5)
            other = alice.raw_request(Kind.FETCH, request_id=rid, max=1)
            return alice.identity, data, rid, answer, other

    identity, data, rid, answer, other = run(capture())
    node.stop()
    node = start_node(mixnet, data=tmp_path / "node")

    async def replay():
        async with Client(f"{mixnet.url}/mallory", node.contact, identity) as mallory:
            assert await mallory.link.request_raw(data, rid, 5) == answer
        async with Client(f"{mixnet.url}/oscar", node.contact, identity) as oscar:
            with pytest.raises(NodeRefused) as error:
                await oscar.link.request_raw(other, rid, 5)
            assert error.value.code is ErrorCode.REPLAYED

    run(replay())


# 3. Node answers were never verified: anyone knowing a client's address could forge a
#    lookup answer or a registration challenge.


def test_forged_and_misdirected_answers_are_rejected(net):
    async def main():
        async with (
            client(net, "alice") as alice,
            client(net, "bob") as bob,
            client(net, "mallory") as mallory,
        ):
            await alice.register("alice")
            await bob.register("bob")
            fake_node = _native.Identity.generate()
            forged_bundle = bundle(mallory.identity)
            # mallory knows alice's address and forges answers and pushes
            forgeries = [
                wire.encode_answer(
                    fake_node,
                    alice.identity.signing_public,
                    Kind.BUNDLE,
                    {
                        "username": "bob",
                        "identity": mallory.identity.signing_public,
                        "bundle": forged_bundle,
                        "strangers": 0,
                    },
                    0,
                    os.urandom(16),
                ),
                wire.encode_answer(
                    fake_node,
                    alice.identity.signing_public,
                    Kind.DELIVER,
                    {"message_id": os.urandom(16), "sent": 0, "payload": b"forged"},
                    0,
                ),
                wire.encode_answer(
                    fake_node,
                    alice.identity.signing_public,
                    Kind.CHALLENGE,
                    {"challenge": os.urandom(32), "difficulty": 0, "expires": 0},
                    0,
                    os.urandom(16),
                ),
            ]
            for forged in forgeries:
                for frame in _native.encode_frames(forged, os.urandom(16)):
                    await mallory.transport.send(alice.transport.address, frame)
            await asyncio.sleep(0.5)
            assert alice.link.rejected >= len(forgeries)
            while not alice.link.pushes.empty():
                assert alice.link.pushes.get_nowait().kind is not Kind.DELIVER
            async with anonymous(net, "alice-anonymous") as lookups:
                answer = await lookups.lookup("bob")
            assert answer.body["identity"] == bob.identity.signing_public

    run(main())


def test_an_answer_signed_for_another_user_does_not_verify():
    node = _native.Identity.generate()
    alice, bob = _native.Identity.generate(), _native.Identity.generate()
    answer = wire.encode_answer(
        node, bob.signing_public, Kind.ACCEPTED, {"message_id": b"m" * 16}, 0, b"r" * 16
    )
    key = _native.PublicKey(node.signing_public)
    assert wire.decode_answer(answer, key, bob.signing_public).kind is Kind.ACCEPTED
    with pytest.raises(wire.WireError):
        wire.decode_answer(answer, key, alice.signing_public)


# 4. The identity key signed whatever the node sent as a "nonce": a signing oracle.


def test_no_key_signs_bytes_chosen_by_the_node(net):
    """The challenge is answered with proof of work and a request signed over the client's
    own transcript (label, node key, request); nothing verifies over the bare value."""

    async def main():
        async with client(net, "alice") as alice:
            offered = bundle(alice.identity)
            body = (await alice.request(Kind.REGISTER_BEGIN, username="alice", bundle=offered)).body
            challenge = body["challenge"]
            finish = alice.raw_request(
                Kind.REGISTER_FINISH, username="alice", bundle=offered, proof_of_work=0, **body
            )
            return alice.identity, alice.contact.key, challenge, finish

    identity, node_key, challenge, finish = run(main())
    request = wire.decode_request(finish)
    key = _native.PublicKey(identity.signing_public)
    key.verify("node-request", node_key + request.signed, request.signature)
    for label in (
        "node-request",
        "node-answer",
        "node-push",
        "envelope",
        "account-key",
        "one-time-key",
        "fallback-key",
    ):
        with pytest.raises(Exception, match="signature"):
            key.verify(label, challenge, request.signature)


# 7. Unbounded state: pending registrations never expired; no rate or size limits;
#    case-sensitive look-alike names; names enumerable through error texts.


def test_registrations_left_unfinished_cost_the_node_nothing(net):
    """The node keeps no pending registration (test_registration.py): a sender who begins
    many and finishes none shuts nobody out, not even itself."""

    async def main():
        async with client(net, "spammer") as spammer:
            for n in range(50):
                challenge = await spammer.request(
                    Kind.REGISTER_BEGIN, username=f"name{n}", bundle=bundle(spammer.identity)
                )
                assert challenge.kind is Kind.CHALLENGE
            assert (await spammer.register("spammer")).kind is Kind.REGISTERED
        async with client(net, "someone") as someone:
            assert (await someone.register("someone")).kind is Kind.REGISTERED

    run(main())


def test_rate_and_size_limits(net):
    async def main():
        async with (
            client(net, "bob") as bob,
            anonymous(net, "alice-anonymous") as alice,
            anonymous(net, "carol-anonymous") as carol,
        ):
            await bob.register("bob", keys=0)  # lookups then cost no work
            too_large = await alice.seal("bob", bytes(70_000), work=16)
            assert too_large.body["code"] == ErrorCode.TOO_LARGE
            codes = []
            for _ in range(40):  # lookups are limited hardest: one-time keys are precious
                answer = await alice.lookup("bob")
                codes.append(
                    "ok" if answer.kind is Kind.BUNDLE else ErrorCode(answer.body["code"]).name
                )
            assert codes[:30] == ["ok"] * 30 and set(codes[30:]) == {"RATE_LIMITED"}
            assert (await carol.lookup("bob")).kind is Kind.BUNDLE  # per route

    run(main())


async def sends(
    sender: Anonymous, recipient: str, count: int, size: int = 1, access_key=None
) -> list[str]:
    """What the node answers to `count` sealed sends (a stranger's, paying the work the
    node asks, without `access_key`): "accepted", or the refusal's detail."""
    answers = []
    for _ in range(count):
        answer = await sender.seal(recipient, bytes(size), access_key)
        if answer.kind is Kind.ACCEPTED:
            answers.append("accepted")
        else:
            answers.append(f"{ErrorCode(answer.body['code']).name}: {answer.body['detail']}")
    return answers


def test_strangers_cannot_fill_a_queue_and_contacts_still_reach_it(start_mixnet, start_node):
    """Bob's queue holds 8, sends without his access key 4 of them together: strangers
    flooding him (with all the work asked) leave room for carol, who has his key."""
    mixnet = start_mixnet()
    net = mixnet, start_node(mixnet, "--queue-max-messages", "8")
    strangers = (
        "QUEUE_FULL: bob's queue has no more room for senders they have not given their "
        "access key; try again once they have fetched their messages"
    )
    key = os.urandom(32)

    async def main():
        async with (
            client(net, "bob") as bob,
            anonymous(net, "mallory") as mallory,
            anonymous(net, "eve") as eve,
            anonymous(net, "carol") as carol,
        ):
            await bob.register("bob")
            verifier = wire.access_verifier(key)
            await bob.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=8)
            assert await sends(mallory, "bob", 5) == ["accepted"] * 4 + [strangers]
            assert await sends(eve, "bob", 1) == [strangers]
            assert await sends(carol, "bob", 5, access_key=key) == ["accepted"] * 4 + [
                "QUEUE_FULL: bob's queue is full"
            ]

    run(main())


def test_a_full_node_refuses_new_messages_and_says_so(start_mixnet, start_node):
    mixnet = start_mixnet()
    net = mixnet, start_node(mixnet, "--node-queue-max-bytes", "3000")

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            for name in ("bob", "dave"):
                await (await stack.enter_async_context(client(net, name))).register(name)
            sender = await stack.enter_async_context(anonymous(net, "sender"))
            assert await sends(sender, "bob", 1, size=2000) == ["accepted"]
            assert await sends(sender, "dave", 1, size=2000) == [
                "BUSY: this node holds as many queued messages as it may (3000 bytes); try "
                "again later"
            ]
            assert await sends(sender, "dave", 1, size=900) == ["accepted"]

    run(main())


def test_draining_one_time_keys_by_anonymous_lookups_costs_work(net):
    """A full pool hands out keys for nothing; below 32 left each key costs proof of work
    (more as the pool runs low), and a lookup without it gets no key."""

    async def main():
        async with client(net, "bob") as bob, anonymous(net, "drainer") as drainer:
            await bob.register("bob", keys=33)
            free = [len((await drainer.lookup("bob")).body["bundle"].one_time_keys)]
            free.append(len((await drainer.lookup("bob")).body["bundle"].one_time_keys))
            assert free == [1, 1]  # 33, then 32 left: free
            data, request_id = wire.encode_anonymous_request(
                Kind.LOOKUP, {"username": "bob", "proof_of_work": 0}, int(time.time() * 1000)
            )
            refused = await drainer.send(data, request_id)
            asked = refused.body["difficulty"]
            assert (refused.kind, asked) == (Kind.POW_REQUIRED, 12)
            paid = await drainer.lookup("bob")  # pays the 12 bits
            assert len(paid.body["bundle"].one_time_keys) == 1

    run(main())
    db = sqlite3.connect(net[1].data / "node.db")
    assert db.execute("SELECT count(*) FROM one_time_keys").fetchone() == (30,)


def test_a_sealed_send_tells_a_stranger_no_more_than_a_lookup(net):
    """A sealed send to a name says whether it exists (as a lookup does, by design) and
    what its owner asks of strangers; nothing else."""

    async def main():
        async with client(net, "alice") as alice, anonymous(net, "stranger") as stranger:
            await alice.register("alice")
            answers = []
            for name in ("alice", "nobody"):
                bound = pow.send(stranger.contact.key, name, bytes(16))
                no_work = next(n for n in range(1000) if not pow.check(bound, n, 1))
                body = {"message_id": bytes(16), "payload": b"x", "access_key": None}
                answers.append(
                    await stranger.request(
                        Kind.SEALED_SEND, recipient=name, proof_of_work=no_work, **body
                    )
                )
            assert answers[0].body == {"difficulty": 16}
            assert answers[1].body["code"] == ErrorCode.NOT_FOUND
            assert (await stranger.lookup("nobody")).body["code"] == ErrorCode.NOT_FOUND

    run(main())


# 9. The node key was decrypted (PBKDF2) for every reply. Here: once, at start.


def test_node_key_is_sealed_and_a_wrong_password_is_a_clear_error(net, shiv_root):
    mixnet, node = net
    document = (node.data / "identity.json").read_text()
    assert "argon2id" in document
    node.stop()
    out = subprocess.run(
        [str(DIST), "node", "--nym", f"{mixnet.url}/node", "--data", str(node.data)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD="not the password"),
    )
    assert out.returncode == 3
    assert out.stderr.strip().startswith("nymchat: error: wrong passphrase for ")


# Crashes and hostile input.


def test_accepted_messages_survive_kill_9(start_mixnet, start_node, tmp_path):
    mixnet = start_mixnet()
    node = start_node(mixnet, data=tmp_path / "node")
    bob_identity, key = _native.Identity.generate(), os.urandom(32)
    sent = [b"message %d" % n for n in range(30)]

    async def before():
        async with Client(f"{mixnet.url}/bob", node.contact, bob_identity) as bob:
            await bob.register("bob")
            verifier = wire.access_verifier(key)
            await bob.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=16)
        async with Anonymous(f"{mixnet.url}/alice", node.contact) as alice:
            for payload in sent:
                assert (await alice.seal("bob", payload, key)).kind is Kind.ACCEPTED
        node.stop(signal.SIGKILL)  # right after the last "accepted"

    run(before())
    assert node.proc.returncode == -signal.SIGKILL
    node = start_node(mixnet, data=tmp_path / "node")

    async def after():
        async with Client(f"{mixnet.url}/bob", node.contact, bob_identity) as bob:
            await bob.request(Kind.REFRESH)
            got = await delivered(bob)
            while len(got) < len(sent):
                await bob.request(Kind.ACK, message_ids=())
                await bob.request(Kind.FETCH, max=100)
                got |= await delivered(bob)
            return got

    assert run(after()) >= set(sent)


def test_thousands_of_hostile_requests_then_a_normal_user_is_served(net):
    rng = random.Random(4)

    async def main():
        async with client(net, "alice") as alice, client(net, "mallory") as mallory:
            await alice.register("alice")
            await mallory.register("mallory")
            now = int(time.time() * 1000)
            templates = [
                wire.encode_anonymous_request(
                    Kind.LOOKUP, {"username": "alice", "proof_of_work": 0}, now
                )[0],
                wire.encode_anonymous_request(
                    Kind.SEALED_SEND,
                    {
                        "recipient": "alice",
                        "message_id": bytes(16),
                        "payload": b"x" * 50,
                        "access_key": bytes(32),
                        "proof_of_work": 0,
                    },
                    now,
                )[0],
                mallory.raw_request(
                    Kind.REGISTER_BEGIN, username="evil", bundle=bundle(mallory.identity)
                ),
                mallory.raw_request(
                    Kind.PUBLISH_KEYS, one_time_keys=(), fallback=None, agreement_signature=None
                ),
                mallory.raw_request(Kind.SET_ACCESS, access_verifier=bytes(32), strangers=0),
            ]
            for n in range(2500):
                data = bytearray(rng.choice(templates))
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                if n % 5 == 0:
                    data = data[: rng.randrange(len(data))]
                await mallory.link.send_raw(bytes(data))
                if n % 500 == 0:
                    await asyncio.sleep(0.05)
            async with client(net, "carol") as carol, anonymous(net, "carol-anon") as sealed:
                assert (await carol.register("carol")).kind is Kind.REGISTERED
                assert (await sealed.seal("alice", b"still here")).kind is Kind.ACCEPTED
            assert b"still here" in await delivered(alice, timeout=10)

    run(main(), timeout=300)
    db = sqlite3.connect(net[1].data / "node.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM users").fetchone() == (3,)
    assert api
