"""`dist/nymchat node` on `dist/nymchat mixnet`: every operation, and every way the
original nymCHAT broke (docs: upstream-lessons), each shown impossible here."""

import os
import sqlite3

import pytest
from nodeclient import Client, anonymous, client, one_time_key, run

from nymchat import _native
from nymchat.client.nodelink import NodeRefused
from nymchat.protocol import wire
from nymchat.protocol.wire import ErrorCode, Kind

pytestmark = pytest.mark.cli


async def refused(code: ErrorCode, coroutine) -> str:
    with pytest.raises(NodeRefused) as error:
        await coroutine
    assert error.value.code is code, error.value
    return error.value.detail


async def deliveries(c: Client, count: int) -> list[wire.Answer]:
    """The next `count` distinct messages pushed and not acknowledged yet (delivery is at
    least once: duplicates are dropped, as a client does)."""
    got: dict[bytes, wire.Answer] = {}
    while len(got) < count:
        push = await c.push()
        if push.kind is Kind.DELIVER and push.body["message_id"] not in c.acked:
            got.setdefault(push.body["message_id"], push)
    return list(got.values())


# --- operations ----------------------------------------------------------------------


def test_register_lookup_and_one_time_keys(net):
    async def main():
        async with (
            client(net, "alice") as alice,
            client(net, "bob") as bob,
            anonymous(net, "alice-anonymous") as lookups,
        ):
            assert (await alice.register("Alice")).body == {"username": "alice"}
            await bob.register("bob-the_2nd", keys=2)  # hyphens and underscores work
            seen = []
            for _ in range(3):
                answer = await lookups.lookup("BOB-THE_2ND")
                assert answer.body["identity"] == bob.identity.signing_public
                assert answer.body["strangers"] == 16  # a new user's policy
                b = answer.body["bundle"]
                assert b.identity_agreement == bob.identity.agreement_public
                seen.append(tuple(k.key_id for k in b.one_time_keys))
                assert b.fallback.key_id == 1000
            assert seen == [(0,), (1,), ()]  # each one-time key handed out once
            assert (await lookups.lookup("nobody")).body["code"] == ErrorCode.NOT_FOUND
            # replenish, rotate the fallback
            published = await bob.request(
                Kind.PUBLISH_KEYS,
                one_time_keys=tuple(one_time_key(bob.identity, n) for n in range(10, 15)),
                fallback=one_time_key(bob.identity, 2000, "fallback-key"),
                agreement_signature=None,
            )
            assert published.body == {"one_time_keys_left": 5}
            b = (await lookups.lookup("bob-the_2nd")).body["bundle"]
            assert [k.key_id for k in b.one_time_keys] == [10] and b.fallback.key_id == 2000

    run(main())


def test_relay_fetch_ack_and_offline_queue(net):
    _mixnet, _ = net

    async def main():
        bob_identity, access_key = _native.Identity.generate(), os.urandom(32)
        async with anonymous(net, "alice-anonymous") as alice:
            async with client(net, "bob", bob_identity) as bob:
                await bob.register("bob")
                verifier = wire.access_verifier(access_key)
                set_ = await bob.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=16)
                assert set_.kind is Kind.ACCESS_SET
            # bob is gone (no websocket): messages wait at the node, acknowledged
            for n in range(5):
                answer = await alice.seal(
                    "bob", b"m%d" % n, access_key if n else None, message_id=bytes([n]) * 16
                )
                assert (answer.kind, answer.body) == (
                    Kind.ACCEPTED,
                    {"message_id": bytes([n]) * 16},
                )
            async with client(net, "bob", bob_identity) as bob:
                refreshed = await bob.request(Kind.REFRESH)
                assert refreshed.body == {"queued": 5}
                got = await deliveries(bob, 5)
                assert sorted(p.body["payload"] for p in got) == [b"m%d" % n for n in range(5)]
                assert all(set(p.body) == {"message_id", "sent", "payload"} for p in got)
                ids = tuple(p.body["message_id"] for p in got[:3])
                assert (await bob.request(Kind.ACK, message_ids=ids)).body == {"deleted": 3}
                bob.acked.update(ids)
                fetched = await bob.request(Kind.FETCH, max=10)
                assert fetched.body == {"pushed": 2, "queued": 2}
                rest = await deliveries(bob, 2)
                await bob.request(Kind.ACK, message_ids=tuple(p.body["message_id"] for p in rest))
                assert {p.body["message_id"] for p in rest} == {
                    p.body["message_id"] for p in got[3:]
                }
                assert (await bob.request(Kind.FETCH, max=10)).body == {"pushed": 0, "queued": 0}
                # a retried send (same id) is accepted again but queued once
                for _ in range(2):
                    await alice.seal("bob", b"once", access_key, message_id=b"x" * 16)
                assert (await bob.request(Kind.FETCH, max=10)).body["queued"] == 1

    run(main())


async def group_pushes(c: Client, count: int) -> list[wire.Answer]:
    """The next `count` distinct group deliveries pushed to `c`."""
    got: dict[tuple[bytes, int], wire.Answer] = {}
    while len(got) < count:
        push = await c.push()
        if push.kind is Kind.GROUP_DELIVER:
            got.setdefault((push.body["message_id"], push.body["post"]), push)
    return list(got.values())


def test_a_group_post_reaches_every_member_through_the_node(net):
    async def main():
        keys = {name: os.urandom(32) for name in ("alice", "bob")}
        async with (
            client(net, "alice") as alice,
            client(net, "bob") as bob,
            anonymous(net, "carol-anonymous") as poster,
        ):
            for name, c in (("alice", alice), ("bob", bob)):
                await c.register(name)
                verifier = wire.access_verifier(keys[name])
                await c.request(Kind.SET_ACCESS, access_verifier=verifier, strangers=16)
            published = await bob.request(
                Kind.PUBLISH_KEY_PACKAGES, key_packages=(b"kp1", b"kp2"), last_resort=b"last"
            )
            assert published.body == {"key_packages_left": 2}
            claimed = await poster.request(Kind.CLAIM_KEY_PACKAGE, username="bob", proof_of_work=0)
            assert claimed.kind is Kind.POW_REQUIRED  # two left: the lookup curve asks work
            group_id, epoch_keys = os.urandom(32), [os.urandom(32), os.urandom(32)]

            def post(kind, epoch, payload, **commit):
                body = {"next_verifier": None, "add": (), "remove": (), "welcome": None}
                body.update(commit)
                return poster.request(
                    Kind.GROUP_POST,
                    group_id=group_id,
                    epoch=epoch,
                    message_id=os.urandom(16),
                    post=kind,
                    access_key=epoch_keys[epoch],
                    payload=payload,
                    **body,
                )

            created = await post(
                wire.GroupPost.COMMIT,
                0,
                b"commit",
                next_verifier=wire.access_verifier(epoch_keys[1]),
                add=tuple(wire.NewMember(n, keys[n], 0) for n in ("alice", "bob")),
                welcome=b"welcome",
            )
            assert created.body["epoch"] == 1
            sent = await post(wire.GroupPost.APPLICATION, 1, b"hello, group")
            assert sent.kind is Kind.POSTED
            for member in (alice, bob):
                got = await group_pushes(member, 2)
                assert [(p.body["post"], p.body["payload"]) for p in got] == [
                    (wire.GroupPost.WELCOME, b"welcome"),
                    (wire.GroupPost.APPLICATION, b"hello, group"),
                ]
                assert {p.body["group_id"] for p in got} == {group_id}
                ids = tuple(p.body["message_id"] for p in got)
                assert (await member.request(Kind.ACK, message_ids=ids)).body == {"deleted": 2}
            assert (await bob.request(Kind.LEAVE_GROUP, group_id=group_id)).kind is (
                Kind.LEFT_GROUP
            )
            await post(wire.GroupPost.APPLICATION, 1, b"after bob left")
            [after] = await group_pushes(alice, 1)
            assert after.body["payload"] == b"after bob left"
            assert (await bob.request(Kind.FETCH, max=10)).body == {"pushed": 0, "queued": 0}

    run(main())


def test_unregister_deletes_everything(net):
    async def main():
        async with (
            client(net, "alice") as alice,
            client(net, "bob") as bob,
            anonymous(net, "alice-anonymous") as sealed,
        ):
            await alice.register("alice")
            await bob.register("bob")
            assert (await sealed.seal("bob", b"x")).kind is Kind.ACCEPTED  # a stranger's work
            await refused(ErrorCode.BAD_REQUEST, bob.request(Kind.UNREGISTER, username="alice"))
            assert (await bob.request(Kind.UNREGISTER, username="bob")).kind is Kind.UNREGISTERED
            assert (await sealed.lookup("bob")).body["code"] == ErrorCode.NOT_FOUND
            await refused(ErrorCode.NOT_REGISTERED, bob.request(Kind.FETCH, max=1))
            await bob.register("bob")  # the name is free again

    run(main())
    db = sqlite3.connect(net[1].data / "node.db")
    assert db.execute("SELECT count(*) FROM queue").fetchone()[0] == 0


def test_names_case_look_alikes_and_reserved(net):
    async def main():
        async with client(net, "a") as a, client(net, "b") as b, client(net, "c") as c:
            await a.register("bob")
            assert "taken" in await refused(ErrorCode.NAME_TAKEN, b.register("BOB"))
            for look_alike in ["b0b", "B0B"]:
                await refused(ErrorCode.NAME_TAKEN, b.register(look_alike))
            for bad in ["ab", "x" * 33, "bob!", "b b", "root", "ADMIN", "n0de"]:
                await refused(ErrorCode.INVALID_NAME, c.register(bad))
            with pytest.raises(wire.WireError):  # not even sendable: names are ASCII
                await c.register("bøb")
            await refused(ErrorCode.NAME_TAKEN, a.register("alice"))  # one name per key

    run(main())


def test_the_node_writes_its_contact_and_address(net):
    _, node = net
    assert (node.data / "contact.txt").read_text().strip() == node.contact
    addresses = (node.data / "nym_address.txt").read_text().split()
    assert len(addresses) == 2  # two frontends, one address each, in id order
    assert node.contact.endswith(":" + ",".join(addresses))
    assert oct((node.data / "identity.json").stat().st_mode & 0o777) == "0o600"
