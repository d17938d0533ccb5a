"""nymchat's nym-client transport against the built mixnet: real processes, loopback."""

import asyncio
import socket

import pytest

from nymchat.nym import api
from nymchat.nym.transport import NymClient, NymClientUnavailable

pytestmark = pytest.mark.cli


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def next_message(client: NymClient, timeout: float = 5) -> api.Received:
    return await asyncio.wait_for(anext(aiter(client)), timeout)


def test_send_receive_and_reply(start_mixnet):
    mixnet = start_mixnet()

    async def main():
        async with NymClient(f"{mixnet.url}/alice") as alice, NymClient(f"{mixnet.url}/bob") as bob:
            assert alice.address != bob.address
            await alice.send_anonymous(bob.address, b"\x00binary hello", reply_surbs=10)
            got = await next_message(bob)
            assert got.message == b"\x00binary hello" and len(got.sender_tag) == 16
            await bob.reply(got.sender_tag, b"\xffreply")
            assert await next_message(alice) == api.Received(b"\xffreply", None)
            await alice.send(bob.address, b"plain")
            assert await next_message(bob) == api.Received(b"plain", None)

    run(main())


def test_text_mode_and_binary_frames_before_the_first_request(start_mixnet):
    mixnet = start_mixnet()

    async def main():
        async with NymClient(f"{mixnet.url}/bob") as bob:
            bob_address = bob.address
        async with NymClient(f"{mixnet.url}/alice", text=True) as alice:
            await alice.send(bob_address, b"while you were away")
            await asyncio.sleep(0.2)
            # bob's nym-client flushes the held message as Binary on connect, before any
            # request; a Text-mode transport must still take it
            async with NymClient(f"{mixnet.url}/bob", text=True) as bob:
                assert await next_message(bob) == api.Received(b"while you were away")
                await alice.send_anonymous(bob.address, "über".encode(), reply_surbs=5)
                got = await next_message(bob)
                assert got.message == "über".encode()
                await bob.reply(got.sender_tag, b"ok")
                assert (await next_message(alice)).message == b"ok"

    run(main())


def test_absent_nym_client_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed

    async def main():
        with pytest.raises(NymClientUnavailable) as error:
            await NymClient(f"ws://127.0.0.1:{port}").start()
        return str(error.value)

    message = run(main())
    assert message.startswith(f"no nym-client at ws://127.0.0.1:{port} (")
    assert message.endswith("start one, or use `nymchat mixnet` for a local test network")


def test_reconnects_when_the_nym_client_comes_back(start_mixnet, tmp_path):
    state = tmp_path / "state"
    first = start_mixnet(state=state)
    events = []

    async def main():
        async with (
            NymClient(f"{first.url}/alice", on_change=events.append) as alice,
            NymClient(f"{first.url}/bob") as bob,
        ):
            address = alice.address
            first.stop()
            await asyncio.sleep(0.3)
            assert not alice.connected
            second = await asyncio.to_thread(start_mixnet, "--port", str(first.port), state=state)
            for _ in range(100):
                if alice.connected and "reconnected" in events:
                    break
                await asyncio.sleep(0.1)
            assert events == ["disconnected", "reconnected"]
            assert alice.address == address
            await asyncio.sleep(0.5)  # bob reconnects too
            await alice.send(bob.address, b"after the restart")
            assert await next_message(bob, timeout=10) == api.Received(b"after the restart")
            return second

    run(main())


def test_frames_it_does_not_need_are_ignored():
    async def main():
        client = NymClient()
        await client._dispatch(api.encode_response_binary(api.LaneQueueLength(3, 0)))
        await client._dispatch('{"type":"laneQueueLength","lane":3,"queue_length":0}')
        await client._dispatch('{"type":"somethingNew","x":1}')
        await client._dispatch(b"\x7fnot a response")
        await client._dispatch(api.encode_response_binary(api.Received(b"kept")))
        return client._inbox.get_nowait()

    assert run(main()) == api.Received(b"kept")
