"""Engines talking through an in-process mixnet model and node service (tests/inprocess.py):
the whole client, no process and no socket, asserted on its typed events. Fast, and run
without rebuilding dist/ (the end-to-end tests on the built file stay)."""

import asyncio

import pytest
from inprocess import event, following, network, record, run, take_in, until

from nymchat.client import access
from nymchat.client.engine import Engine
from nymchat.client.events import (
    DirectChange,
    DirectChanged,
    KeyChangedEvent,
    MessageReceived,
    MessageUnreadable,
    NodeReachable,
    NodeUnreachable,
    NymClientBack,
    NymClientLost,
    OutboxNotSent,
    ReceiptReceived,
    SessionReset,
    Status,
    StatusChanged,
)
from nymchat.client.nodelink import Offline
from nymchat.client.profile import ORIGIN_NODE
from nymchat.client.records import DirectStatus
from nymchat.errors import KeyChanged, NymchatError, StillQueued
from nymchat.protocol.address import Address
from nymchat.protocol.wire import Kind


async def pair(net) -> tuple[Engine, Engine]:
    alice, bob = await net.engine("alice"), await net.engine("bob")
    await alice.lookup("bob")
    await bob.lookup("alice")
    return alice, bob


def test_registered_engines_pin_each_other_with_equal_safety_numbers(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            assert (alice.username, bob.username) == ("alice", "bob")
            a_sees_b, b_sees_a = alice.known("bob"), bob.known("alice")
            assert a_sees_b.identity == bob.profile.identity.signing_public
            assert b_sees_a.identity == alice.profile.identity.signing_public
            assert alice.safety_number(a_sees_b) == bob.safety_number(b_sees_a)

    run(main())


def test_a_message_is_accepted_then_delivered_with_a_receipt(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            a_events, b_events = record(alice), record(bob)
            async with following(alice), following(bob) as got:
                message_id = await alice.send("bob", "hello bob")
                assert a_events[:2] == [
                    StatusChanged(message_id, "bob", Status.QUEUED),
                    StatusChanged(message_id, "bob", Status.ACCEPTED),
                ]
                received = await event(b_events, MessageReceived, message_id=message_id)
                assert (received.sender, received.text) == ("alice", "hello bob")
                await event(a_events, ReceiptReceived, peer="bob", message_id=message_id)
                await event(a_events, StatusChanged, message_id=message_id, status=Status.DELIVERED)
                assert [m.text for m in got] == ["hello bob"]
            assert alice.message(message_id).status is Status.DELIVERED
            assert [m.text for m in bob.history("alice")] == ["hello bob"]

    run(main())


def test_a_message_waits_at_the_node_for_a_closed_engine(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            profile = bob.profile
            await net.close(bob)
            a_events = record(alice)
            message_id = await alice.send("bob", "while you were away")
            assert a_events == [
                StatusChanged(message_id, "bob", Status.QUEUED),
                StatusChanged(message_id, "bob", Status.ACCEPTED),
            ]
            bob = await net.engine("bob", profile)  # the same profile starts again
            taken = await take_in(bob)
            assert [(m.sender, m.text) for m in taken] == [("alice", "while you were away")]
            async with following(alice):
                await event(a_events, StatusChanged, message_id=message_id, status=Status.DELIVERED)
            assert await take_in(bob) == []  # acknowledged: not again

    run(main())


def test_a_changed_key_blocks_sending_until_trusted_with_its_number(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            await bob.unregister()
            new_bob = await net.engine("bob")  # a new identity takes the name
            a_events = record(alice)
            contact = await alice.lookup("bob")
            assert contact.changed
            assert KeyChangedEvent("bob") in a_events
            with pytest.raises(KeyChanged):
                await alice.send("bob", "is it you?")
            assert alice.waiting() == []  # nothing was queued
            number = alice.new_safety_number(contact)
            assert number == new_bob.safety_number(await new_bob.lookup("alice"))
            alice.trust("bob", number)
            message_id = await alice.send("bob", "now it is")
            taken = await take_in(new_bob)
            assert [(m.message_id, m.text) for m in taken] == [(message_id, "now it is")]

    run(main())


def test_blocking_fails_what_waits_and_drops_what_comes(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            b_events = record(bob)
            waiting = bob.queue("alice", "never mind")
            assert bob.block("alice") == "alice"
            assert StatusChanged(waiting, "alice", Status.FAILED, "you blocked alice") in b_events
            assert bob.waiting() == []
            with pytest.raises(NymchatError, match="you blocked alice"):
                bob.queue("alice", "again")
            await alice.send("bob", "hello?")  # the node still takes it
            assert await take_in(bob) == []
            assert not any(isinstance(e, MessageReceived) for e in b_events)

    run(main())


def test_a_dropped_message_fails_and_leaves_the_outbox(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, _ = await pair(net)
            a_events = record(alice)
            message_id = alice.queue("bob", "second thoughts")
            assert [m.id for m in alice.waiting()] == [message_id]
            dropped = alice.drop(message_id.hex()[:6])
            assert (dropped.status, dropped.reason) == (Status.FAILED, "dropped by you")
            assert a_events == [
                StatusChanged(message_id, "bob", Status.QUEUED),
                StatusChanged(message_id, "bob", Status.FAILED, "dropped by you"),
            ]
            assert alice.waiting() == []
            assert await alice.flush_outbox() == 0

    run(main())


def test_a_message_refused_for_good_fails_with_the_nodes_reason(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice = await net.engine("alice")
            a_events = record(alice)
            message_id = alice.queue("nobody", "hello?")
            assert await alice.flush_outbox() == 0
            refused = await event(a_events, OutboxNotSent, message_id=message_id)
            assert refused.for_good
            failed = await event(
                a_events, StatusChanged, message_id=message_id, status=Status.FAILED
            )
            assert "nobody" in failed.reason
            assert alice.message(message_id).status is Status.FAILED
            assert alice.waiting() == []

    run(main())


def test_direct_mode_carries_messages_past_the_node(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            a_events, b_events = record(alice), record(bob)
            async with following(alice), following(bob) as got:
                await alice.direct_action("invite", "bob")
                assert DirectChanged("bob", DirectChange.INVITING) in a_events
                await event(b_events, DirectChanged, username="alice", change=DirectChange.INVITED)
                assert bob.direct_status("alice") is DirectStatus.INVITED
                await bob.direct_action("accept", "alice")
                assert DirectChanged("alice", DirectChange.ACCEPTED) in b_events
                await event(a_events, DirectChanged, change=DirectChange.ACCEPTED, by_peer=True)
                await event(a_events, DirectChanged, username="bob", change=DirectChange.ON)
                await event(b_events, DirectChanged, username="alice", change=DirectChange.ON)
                assert alice.direct_status("bob") is DirectStatus.ON
                assert bob.direct_status("alice") is DirectStatus.ON
                relayed = net.node.relayed
                message_id = await alice.send("bob", "just between us")
                await until(lambda: got, "the direct message")
                assert [(m.message_id, m.text) for m in got] == [(message_id, "just between us")]
                await event(a_events, StatusChanged, message_id=message_id, status=Status.DELIVERED)
                assert net.node.relayed == relayed  # neither the message nor its receipt
                await alice.direct_action("end", "bob")
                await event(b_events, DirectChanged, change=DirectChange.ENDED, by_peer=True)
                assert alice.direct_status("bob") is None
                assert bob.direct_status("alice") is None

    run(main())


def test_a_silent_node_is_told_once_and_the_outbox_leaves_when_it_answers(tmp_path):
    async def main():
        async with network(tmp_path, timeout=0.5, attempts=2) as net:
            alice, bob = await pair(net)
            a_events = record(alice)
            async with following(alice):
                await net.node.stop()
                alice.retry_node()
                await event(a_events, NodeUnreachable)
                assert not alice.node_answers
                message_id = alice.queue("bob", "when you can")
                alice.retry_node()
                await asyncio.sleep(1.5)  # the second try goes unanswered too
                assert sum(isinstance(e, NodeUnreachable) for e in a_events) == 1
                await net.node.start()
                alice.retry_node()
                await event(a_events, NodeReachable)
                await event(a_events, StatusChanged, message_id=message_id, status=Status.ACCEPTED)
                assert alice.waiting() == []
            taken = await take_in(bob)
            assert [m.text for m in taken] == ["when you can"]

    run(main())


def test_losing_the_nym_client_is_told_and_so_is_its_return(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            a_events = record(alice)
            transport = net.transports[alice]
            transport.lose()
            assert a_events == [NymClientLost()]
            waiting = alice.queue("bob", "sent once it is back")
            transport.restore()
            assert a_events[1:] == [StatusChanged(waiting, "bob", Status.QUEUED), NymClientBack()]
            await alice.flush_outbox()
            assert alice.message(waiting).status is Status.ACCEPTED
            assert [m.text for m in await take_in(bob)] == ["sent once it is back"]

    run(main())


def test_a_broken_session_is_reset_by_the_next_message(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            await alice.send("bob", "one")
            assert len(await take_in(bob)) == 1
            await bob.send("alice", "two")  # both sessions are established now
            assert len(await take_in(alice)) == 1
            assert bob.profile.restored() > 0  # bob's ratchets are gone
            b_events = record(bob)
            await alice.send("bob", "three")
            assert await take_in(bob) == []
            # "three", and alice's receipt for "two", were sealed for the lost session
            assert {e.sender for e in b_events if isinstance(e, MessageUnreadable)} == {"alice"}
            await bob.send("alice", "let us start again")
            assert SessionReset("alice") in b_events
            taken = await take_in(alice)
            assert [m.text for m in taken] == ["let us start again"]
            await alice.send("bob", "four")
            assert [m.text for m in await take_in(bob)] == ["four"]

    run(main())


def test_an_offline_engine_refuses_the_network_and_does_the_rest(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, _ = await pair(net)
            profile = alice.profile
            await net.close(alice)
            offline = Engine.offline(profile)
            assert not offline.online
            with pytest.raises(Offline):
                await offline.lookup("bob")
            with pytest.raises(Offline):
                await offline.inbox()
            with pytest.raises(StillQueued, match="opened offline") as queued:
                await offline.send("bob", "later")  # a known contact: it waits
            message_id = queued.value.message_id
            assert [c.username for c in offline.contact_list()] == ["bob"]
            assert [m.id for m in offline.waiting()] == [message_id]
            assert await offline.flush_outbox() == 0
            assert [m.id for m in offline.waiting()] == [message_id]
            assert offline.block("carol") == "carol"
            assert offline.blocked() == {"carol"}
            assert [m.text for m in offline.history("bob", 10)] == ["later"]

    run(main())


def test_a_request_cancelled_as_its_answer_arrives_ends_cancelled(tmp_path):
    """Python 3.11's `asyncio.wait_for` returns the result of a future that completes in
    the turn the caller is cancelled, losing the cancellation: a `follow` stopped then ran
    on (the in-process node answers within a turn, which made this visible)."""

    async def main():
        async with network(tmp_path) as net:
            alice = await net.engine("alice")
            link = alice.link
            accept = link.accept

            def accept_then_cancel(data: bytes) -> None:
                accept(data)  # the answer is in...
                request.cancel()  # ...and the person quits just then

            link.accept = accept_then_cancel
            request = asyncio.create_task(link.request(Kind.REFRESH))
            with pytest.raises(asyncio.CancelledError):
                await request

    run(main())


def test_a_direct_send_cancelled_as_its_receipt_arrives_ends_cancelled(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            async with following(alice), following(bob):
                await alice.direct_action("invite", "bob")
                await until(lambda: bob.direct_status("alice") is DirectStatus.INVITED)
                await bob.direct_action("accept", "alice")
                await until(lambda: alice.direct_status("bob") is DirectStatus.ON, "alice on")
                await until(lambda: bob.direct_status("alice") is DirectStatus.ON, "bob on")

                def cancel_on_receipt(e) -> None:
                    if isinstance(e, ReceiptReceived):  # after the direct paths heard it
                        sending.cancel()

                alice.events.subscribe(cancel_on_receipt)
                sending = asyncio.create_task(alice.send("bob", "just between us"))
                with pytest.raises(asyncio.CancelledError):
                    await sending

    run(main())


def test_a_follow_started_again_gets_the_next_message_at_once(tmp_path):
    """A cancelled `follow` leaves nothing behind waiting on the node's pushes (which
    would take the next one and drop it)."""

    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            a_events = record(alice)
            async with following(alice), following(bob):
                first = await alice.send("bob", "one")
                await event(a_events, StatusChanged, message_id=first, status=Status.DELIVERED)
                await asyncio.sleep(0.1)  # bob's follow waits for the next push
            refreshes = net.node.service.counts[("refresh", "ok")]
            async with following(bob) as got:
                await until(lambda: net.node.service.counts[("refresh", "ok")] > refreshes)
                await asyncio.sleep(0.1)  # (its answer is in: nothing is queued for bob)
                await alice.send("bob", "two")
                await until(lambda: got, "the message, pushed once", wait=5)
                assert [m.text for m in got] == ["two"]

    run(main())


def requests(engine: Engine, kind: Kind | None = None) -> list[dict]:
    """Records the body of every request (of `kind`) the engine makes from now on."""
    sent: list[dict] = []
    request = engine.link.request

    async def recording(made, *args, **body):
        if kind is None or made is kind:
            sent.append({"kind": made, **body} if kind is None else body)
        return await request(made, *args, **body)

    engine.link.request = recording
    return sent


def sealed_sends(engine: Engine) -> list[dict]:
    """Records the body of every `sealed_send` the engine makes from now on."""
    return requests(engine, Kind.SEALED_SEND)


def test_a_first_message_pins_its_certified_sender_and_shows_at_once_without_a_lookup(
    tmp_path,
):
    """The node's certificate inside the message says the name is the sender's: the
    recipient asks the node nothing about a sender it has not met."""

    async def main():
        async with network(tmp_path) as net:
            alice, bob = await net.engine("alice"), await net.engine("bob")
            assert alice.certificates.held() is not None  # asked for after registering
            b_asked = requests(bob)
            first = await alice.send("bob", "hello, bob")
            [received] = await take_in(bob)
            assert (received.sender, received.message_id) == ("alice", first)
            assert not received.key_changed
            assert bob.known("alice").identity == alice.profile.identity.signing_public
            assert Kind.LOOKUP not in {r["kind"] for r in b_asked}
            assert Kind.CERTIFY not in {r["kind"] for r in b_asked}  # (bob holds his)

    run(main())


def test_a_strangers_first_message_pays_work_and_a_contacts_does_not(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            a_sent, b_sent = sealed_sends(alice), sealed_sends(bob)
            first = await alice.send("bob", "hello, stranger")
            assert [(s["access_key"], s["proof_of_work"] > 0) for s in a_sent] == [
                (None, False),  # answered pow_required (bob's default: 16 bits)
                (None, True),
            ]
            assert [m.message_id for m in await take_in(bob)] == [first]
            # bob's receipt goes with the access key alice's message gave him: no work
            assert [(s["access_key"], s["proof_of_work"]) for s in b_sent] == [
                (alice.access.key(), 0)
            ]
            await take_in(alice)  # bob's receipt
            assert alice.message(first).status is Status.DELIVERED
            del a_sent[:]
            await alice.send("bob", "hello again")  # the receipt gave alice bob's key
            assert [(s["access_key"], s["proof_of_work"]) for s in a_sent] == [
                (bob.access.key(), 0)
            ]

    run(main())


def test_a_removed_contacts_old_access_key_no_longer_works(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            carol = await net.engine("carol")
            await carol.lookup("bob")
            for sender in (alice, carol):
                await sender.send("bob", f"hi from {sender.username}")
            taken = await take_in(bob)  # receipts give both bob's access key
            assert {m.sender for m in taken} == {"alice", "carol"}
            for sender in (alice, carol):
                await take_in(sender)
                assert sender.known("bob").access_key == bob.access.key()
            old = bob.access.key()
            bob.remove("carol")
            await bob.flush_outbox()  # the node learns the new verifier; alice the new key
            assert bob.access.key() != old and bob.access.wanted() is None
            await take_in(alice)
            assert alice.known("bob").access_key == bob.access.key()
            a_sent, c_sent = sealed_sends(alice), sealed_sends(carol)
            await carol.send("bob", "still there?")
            assert [(s["access_key"], s["proof_of_work"] > 0) for s in c_sent] == [
                (old, False),  # refused: pow_required, as a stranger's
                (None, True),
            ]
            await alice.send("bob", "and me?")
            assert [(s["access_key"], s["proof_of_work"]) for s in a_sent] == [
                (bob.access.key(), 0)
            ]

    run(main())


def test_a_recipient_who_denies_strangers_gets_only_their_contacts_messages(tmp_path):
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            await bob.set_strangers(access.DENY)
            assert bob.access.wanted() is None  # the node confirmed it
            a_events = record(alice)
            message_id = alice.queue("bob", "may I?")
            assert await alice.flush_outbox() == 0
            failed = await event(
                a_events, StatusChanged, message_id=message_id, status=Status.FAILED
            )
            assert failed.reason == "bob takes messages only from people who have written to them"
            await bob.send("alice", "you may")  # now alice holds bob's access key
            await take_in(alice)
            replied = await alice.send("bob", "thanks")
            assert [m.message_id for m in await take_in(bob)] == [replied]

    run(main())


def test_with_a_sealed_delay_sends_wait_at_random_and_receipts_do_not_hold_the_inbox(
    tmp_path, monkeypatch
):
    import secrets
    import time

    waits: list[float] = []
    monkeypatch.setattr(
        secrets.SystemRandom, "uniform", lambda self, low, high: waits.append(high) or high
    )

    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            alice.relay.delay = bob.relay.delay = 0.3
            a_sent, b_sent = sealed_sends(alice), sealed_sends(bob)
            started = time.monotonic()
            first = await alice.send("bob", "after a pause")
            assert time.monotonic() - started >= 0.3 and waits == [0.3]
            assert a_sent  # it left, after the pause
            assert [m.message_id for m in await take_in(bob)] == [first]
            assert b_sent == []  # the receipt waits out its own pause, not the inbox's
            await until(lambda: b_sent)
            await take_in(alice)
            assert alice.message(first).status is Status.DELIVERED

    run(main())


def test_a_profile_from_before_federation_keeps_its_contacts_sessions_and_messages(tmp_path):
    """Records as the code before federation wrote them (contacts without a node, no
    origin node, no known nodes) open as they were: the contact's id stays the bare name,
    the session goes on (no new one opened) and the conversation is there."""

    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            async with following(alice), following(bob):
                await alice.send("bob", "before")
                await until(lambda: bob.history("alice"))
            profile = alice.profile
            with profile.store.transaction():
                for kept in profile.store.contacts():
                    kept.pop("node", None)
                    kept.pop("node_contact", None)
                    profile.store.put_contact(kept)
                profile.store.put(ORIGIN_NODE, None)
                profile.store.put("nodes", None)
            sessions = len(profile.store.sessions("bob"))
            await net.close(alice)
            alice = await net.engine("alice", profile=profile)
            assert [c.username for c in alice.contact_list()] == ["bob"]
            assert alice.contact("bob").node is None  # the origin node's, as before
            assert profile.origin_node == alice.link.contact.key
            b_events = record(bob)
            async with following(alice), following(bob):
                message_id = await alice.send("bob", "after")
                received = await event(b_events, MessageReceived, message_id=message_id)
                assert received.sender == "alice"
            assert len(profile.store.sessions("bob")) == sessions  # no new session opened
            assert [m.text for m in alice.history("bob")] == ["before", "after"]

    run(main())


def test_a_sender_certified_elsewhere_is_the_contact_of_that_name_and_identity_only(tmp_path):
    # alice moved (her messages come certified by another node) before her notice came:
    # she is still alice, and only one contact of her name and identity is her.
    async def main():
        async with network(tmp_path) as net:
            alice, bob = await pair(net)
            contacts, ids = bob.contacts, bob.contact_ids
            home, elsewhere = bob.profile.origin_node, bytes(range(32))
            mine = alice.profile.identity.signing_public
            assert ids.sender_id(Address("alice", elsewhere), mine) == "alice"
            stranger = ids.sender_id(Address("alice", elsewhere), bytes(32))
            assert stranger == str(Address("alice", elsewhere))
            assert ids.sender_id(Address("alice", home), mine) == "alice"
            with bob.profile.store.transaction():  # a second alice with that identity
                contacts.pin(str(Address("alice", elsewhere)), mine, bytes(32), node=elsewhere)
            other = bytes(range(1, 33))
            assert ids.sender_id(Address("alice", other), mine) == str(Address("alice", other))

    run(main())
