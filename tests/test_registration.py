"""Registration (docs/PROTOCOL.md): challenges that cost the node no memory, a proof of
work that rises with the node-wide registration rate, and clients that do no more work
than `pow.MAX_DIFFICULTY` whatever a node asks."""

import asyncio
import os
import time
from types import SimpleNamespace

import pytest
from nodeclient import bundle, run
from procs import User
from test_node_service import T0, Harness, user

from nymchat import _native
from nymchat.node.registration import Difficulty
from nymchat.node.service import NodeService
from nymchat.nym.transport import NymClient
from nymchat.protocol import pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Kind


def test_a_challenge_is_kept_by_the_client_not_the_node():
    h = Harness()
    who, tag = user()
    offered, challenge = h.begin(who, tag, "alice")
    h.real = NodeService(h.node, h.real.store, h.config)  # a restarted node
    assert h.finish(who, tag, "alice", offered, challenge).kind is Kind.REGISTERED


def test_registrations_in_progress_from_many_tags_do_not_close_registration():
    h = Harness(request_burst=1e9)
    mallory = _native.Identity.generate()
    offered = bundle(mallory, 0)
    begins = [
        (
            wire.encode_request(
                mallory,
                h.node.signing_public,
                Kind.REGISTER_BEGIN,
                {"username": f"m{n:05d}", "bundle": offered},
                T0,
            )[0],
            os.urandom(16),
        )
        for n in range(12_000)
    ]  # each from a tag of its own
    for start in range(0, len(begins), 256):
        h.service.handle_batch(begins[start : start + 256], T0)
    who, tag = user()
    assert h.register(who, tag, "alice").kind is Kind.REGISTERED


def test_the_proof_of_work_rises_with_the_registration_rate():
    h = Harness(pow_difficulty=4, pow_free_registrations=2, pow_half_life_ms=60_000)
    asked = []
    for n in range(9):
        who, tag = user()
        offered, challenge = h.begin(who, tag, f"user{n}")
        asked.append(challenge["difficulty"])
        assert h.finish(who, tag, f"user{n}", offered, challenge).kind is Kind.REGISTERED
    assert asked == [4, 4, 5, 5, 6, 6, 6, 6, 7]  # a bit more per doubling past 2
    who, tag = user()
    assert h.begin(who, tag, "later", T0 + 10 * 60_000)[1]["difficulty"] == 4  # it fades
    flooded = Difficulty(base=20, free=1, half_life=60_000)
    assert flooded.bits(flooded.recent((1000.0, T0), T0)) == pow.MAX_DIFFICULTY == 24
    assert Difficulty(base=30, free=1, half_life=1).bits(0.0) == 24
    assert Difficulty(base=0, free=1, half_life=1).bits(1e9) == 0  # off stays off


def test_the_client_solves_no_more_than_the_maximum():
    started = time.monotonic()
    with pytest.raises(pow.TooDifficult, match="40 bits; nymchat does at most 24"):
        pow.solve(pow.registration(bytes(32), "alice", bytes(32)), 40)
    assert time.monotonic() - started < 5  # refused, not attempted
    bound = pow.registration(bytes(32), "alice", bytes(32))
    assert pow.check(bound, pow.solve(bound, 8), 8)


@pytest.mark.cli
def test_register_refuses_a_node_asking_for_too_much_work(start_mixnet, shiv_root, tmp_path):
    """A hostile node answers every registration with a 40-bit challenge: `register`
    says so at once instead of working for years."""
    mixnet = start_mixnet()
    hostile = _native.Identity.generate()

    async def main():
        async with NymClient(f"{mixnet.url}/hostile") as nym:
            contact = NodeContact(hostile.signing_public, (nym.address,))

            async def answer_everything():
                frames = _native.Reassembler()
                async for received in nym:
                    done = frames.push(received.message, 0.0, received.sender_tag)
                    if done is None:
                        continue
                    request = wire.decode_request(done[1])
                    answer = wire.encode_answer(
                        hostile,
                        request.requester,
                        Kind.CHALLENGE,
                        {"challenge": bytes(32), "difficulty": 40, "expires": 2**62},
                        int(time.time() * 1000),
                        request.request_id,
                    )
                    for frame in _native.encode_frames(
                        answer, wire.answer_frame_id(request.request_id)
                    ):
                        await nym.reply(received.sender_tag, frame)

            node = asyncio.create_task(answer_everything())
            alice = User(
                "alice",
                tmp_path / "alice",
                shiv_root,
                mixnet,
                SimpleNamespace(contact=str(contact)),
            )
            await asyncio.to_thread(alice, "keys", "new")
            out = await asyncio.to_thread(
                alice, "register", "alice", "--node", str(contact), "--nym", alice.nym, check=False
            )
            node.cancel()
            return out

    out = run(main())
    assert out.returncode == 7
    assert "asks for a registration proof of work of 40 bits; nymchat does at most 24" in out.stderr
    assert "working" not in out.stderr
