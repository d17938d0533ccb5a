"""The client's side of a node with several frontends: which frontend carries which request
(`Frontends`, sans-I/O: pure unit tests), the descriptor's checks, and the node link's
routing, retries and failover against a node played here frame by frame."""

import asyncio
import hashlib
import os
from collections import Counter

import pytest
from inprocess import InProcessTransport, network, record, take_in
from nodeclient import bundle

from nymchat import _native
from nymchat.client.events import DescriptorRefused, HomeMoved, NotSealed
from nymchat.client.frontends import REFRESH_MS, RETRY_MS, Frontends, rendezvous
from nymchat.client.nodelink import FRONTENDS_KEY, NodeLink, NodeSilent
from nymchat.client.profile import Profile
from nymchat.errors import NymchatError
from nymchat.nym import api
from nymchat.nym.address import Address
from nymchat.protocol import pow, wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Descriptor, Frontend, Kind, WireError

NOW = 1_796_137_941_123  # ms
DAY = 86_400_000


def address() -> Address:
    return Address(
        _native.Identity.generate().signing_public,
        os.urandom(32),
        _native.Identity.generate().signing_public,
    )


def contact_of(node, count: int) -> NodeContact:
    return NodeContact(node.signing_public, tuple(address() for _ in range(count)))


def descriptor(node, addresses, issued: int = NOW, expires: int | None = None, signer=None):
    """Descriptor bytes listing `addresses` with ids 1..N (or (id, address) pairs)."""
    frontends = tuple(
        Frontend(*a) if isinstance(a, tuple) else Frontend(n, str(a))
        for n, a in enumerate(addresses, 1)
    )
    body = Descriptor(
        node.signing_public, issued, expires or issued + wire.DESCRIPTOR_TTL_MS, frontends
    )
    return wire.encode_descriptor(signer or node, body)


# --- rendezvous order and home -------------------------------------------------------------


def test_the_rendezvous_score_is_the_designs_hash():
    me = os.urandom(32)
    order = rendezvous(me, (Frontend(1, "a"), Frontend(2, "b"), Frontend(7, "c")))
    scores = {
        f.id: hashlib.sha256(b"nymchat-home-v1\x00" + me + f.id.to_bytes(2, "big")).digest()
        for f in order
    }
    assert [f.id for f in order] == sorted(scores, key=scores.__getitem__, reverse=True)


def test_rendezvous_order_is_stable_and_spreads_users_over_frontends():
    frontends = tuple(Frontend(n, f"address-{n}") for n in range(1, 5))
    me = os.urandom(32)
    first = rendezvous(me, frontends)
    assert rendezvous(me, tuple(reversed(frontends))) == first  # not the listing's order
    # Removing a frontend leaves everyone else's order as it was (rendezvous hashing).
    assert rendezvous(me, tuple(f for f in frontends if f != first[0])) == first[1:]
    homes = Counter(
        rendezvous(hashlib.sha256(b"user %d" % n).digest(), frontends)[0].id for n in range(2000)
    )
    assert set(homes) == {1, 2, 3, 4}
    assert all(400 <= count <= 600 for count in homes.values()), homes  # 500 each, give or take


def test_home_is_burned_and_never_the_anonymous_frontend():
    node = _native.Identity.generate()
    me = os.urandom(32)
    frontends = Frontends(contact_of(node, 3), me)
    order = frontends.order()
    home = frontends.home()
    assert home == order[0] and frontends.burned == {home.address}
    assert frontends.anonymous() == order[1]
    moved = frontends.move_home(order[1])  # order[0] did not answer
    assert moved == order[1] and frontends.burned == {order[0].address, order[1].address}
    assert frontends.anonymous() == order[2]  # the first home is burned: never again
    frontends.move_home(order[2])
    assert frontends.anonymous() is None  # every frontend has been home


def test_the_next_homes_follow_the_order_and_come_round_again():
    node = _native.Identity.generate()
    frontends = Frontends(contact_of(node, 3), os.urandom(32))
    order = frontends.order()
    assert frontends.next_homes() == order[1:]
    frontends.move_home(order[2])
    assert frontends.next_homes() == order[:2]
    assert Frontends(contact_of(node, 1), os.urandom(32)).next_homes() == []


def test_a_one_frontend_node_has_no_anonymous_frontend():
    node = _native.Identity.generate()
    frontends = Frontends(contact_of(node, 1), os.urandom(32))
    assert frontends.anonymous() is None
    assert frontends.home().id == 1


def test_a_silent_anonymous_frontend_gives_way_to_the_next_unburned_one():
    node = _native.Identity.generate()
    frontends = Frontends(contact_of(node, 4), os.urandom(32))
    order = frontends.order()
    frontends.silent(frontends.anonymous())
    assert frontends.anonymous() == order[2]
    frontends.silent(order[2])
    assert frontends.anonymous() == order[3]
    frontends.silent(order[3])
    assert frontends.anonymous() == order[1]  # all silent: from the first again


def test_burned_addresses_and_home_survive_a_restart_through_the_record():
    node = _native.Identity.generate()
    contact, me = contact_of(node, 3), os.urandom(32)
    saved = []
    frontends = Frontends(contact, me, on_change=saved.append)
    order = frontends.order()
    assert frontends.home() == order[0]
    frontends.move_home(order[1])
    assert saved[-1]["burned"] == sorted({order[0].address, order[1].address})
    again = Frontends(contact, me, saved[-1])
    assert again.home() == order[1]
    assert again.anonymous() == order[2]
    # The record of another node: its burned addresses still hold, nothing else does.
    other = Frontends(NodeContact(os.urandom(32), contact.addresses), me, saved[-1])
    assert other.burned == frontends.burned and other.home_id is None


# --- the descriptor ---------------------------------------------------------------------


def test_a_good_descriptor_replaces_the_contact_strings_addresses():
    node = _native.Identity.generate()
    contact = contact_of(node, 1)
    frontends = Frontends(contact, os.urandom(32))
    assert [f.address for f in frontends.listed] == [str(contact.addresses[0])]
    listed = [contact.addresses[0], address()]
    frontends.take(descriptor(node, listed), _native.PublicKey(node.signing_public), NOW)
    assert [f.address for f in frontends.listed] == [str(a) for a in listed]


def test_a_contact_strings_frontends_keep_their_ids_before_any_descriptor():
    node = _native.Identity.generate()
    third, fourth = address(), address()
    contact = NodeContact.parse(str(NodeContact.of(node.signing_public, {3: third, 4: fourth})))
    frontends = Frontends(contact, os.urandom(32))
    assert frontends.listed == (Frontend(3, str(third)), Frontend(4, str(fourth)))
    assert frontends.home().id in (3, 4) and frontends.anonymous().id in (3, 4)


@pytest.mark.parametrize(
    "why, bad",
    [
        ("not signed by the node", lambda node, a: descriptor(node, a, signer=_other())),
        ("has expired", lambda node, a: descriptor(node, a, NOW - 8 * DAY, NOW - DAY)),
        ("another node's", lambda node, a: _foreign(node, a)),
        ("older than the one already held", lambda node, a: descriptor(node, a, NOW - 1)),
        ("bad address", lambda node, a: descriptor(node, [*a, (9, "nym-address")])),
        ("not a frontend descriptor", lambda node, a: b"\x01" + bytes(10)),
    ],
)
def test_a_bad_descriptor_is_refused_and_the_held_one_kept(why, bad):
    node = _native.Identity.generate()
    key = _native.PublicKey(node.signing_public)
    held = [address(), address()]
    saved = []
    frontends = Frontends(contact_of(node, 1), os.urandom(32), on_change=saved.append)
    frontends.take(descriptor(node, held), key, NOW)
    record = saved[-1]
    with pytest.raises(WireError, match=why):
        frontends.take(bad(node, [address()]), key, NOW + 1000)
    assert [f.address for f in frontends.listed] == [str(a) for a in held]
    assert saved[-1] == record


def _other():
    return _native.Identity.generate()


def _foreign(node, addresses):
    """Signed by the node, but naming another node's key as whose it is."""
    frontends = tuple(Frontend(n, str(a)) for n, a in enumerate(addresses, 1))
    body = Descriptor(os.urandom(32), NOW, NOW + DAY, frontends)
    return wire.encode_descriptor(node, body)


def test_a_descriptor_is_due_when_missing_old_or_expired_and_not_soon_after_a_failure():
    node = _native.Identity.generate()
    key = _native.PublicKey(node.signing_public)
    frontends = Frontends(contact_of(node, 1), os.urandom(32))
    assert frontends.due(NOW)
    frontends.failed(NOW)
    assert not frontends.due(NOW + RETRY_MS - 1) and frontends.due(NOW + RETRY_MS)
    frontends.take(descriptor(node, [address()], NOW, NOW + 2 * DAY), key, NOW)
    assert not frontends.due(NOW + REFRESH_MS)
    assert frontends.due(NOW + REFRESH_MS + 1)  # older than a day
    short = Frontends(contact_of(node, 1), os.urandom(32))
    short.take(descriptor(node, [address()], NOW, NOW + 3_600_000), key, NOW)
    assert not short.due(NOW + 3_599_999) and short.due(NOW + 3_600_000)  # expired


def test_a_home_the_descriptor_no_longer_lists_is_replaced_by_a_burned_one_first():
    node = _native.Identity.generate()
    key = _native.PublicKey(node.signing_public)
    contact = contact_of(node, 3)
    frontends = Frontends(contact, os.urandom(32))
    order = frontends.order()
    frontends.home()
    frontends.move_home(order[1])  # order[0] and order[1] burned; home order[1]
    kept = [(f.id, f.address) for f in contact_frontends(contact) if f.id != order[1].id]
    frontends.take(descriptor(node, kept), key, NOW)
    assert frontends.home() == order[0]  # burned already: nothing more learnt
    assert frontends.anonymous() == order[2]


def contact_frontends(contact):
    return [Frontend(n, str(a)) for n, a in enumerate(contact.addresses, 1)]


# --- the link, against a node played here ------------------------------------------------


class PlayedNode:
    """A nym-client as the link sees it, and behind it a node with a frontend at each of
    `addresses`: requests sent to a frontend in `answering` are answered (signed for the
    requester, or for nobody if anonymous); the rest go unanswered."""

    def __init__(self, node, addresses, descriptor_bytes=None):
        self.node, self.addresses = node, list(addresses)
        self.answering = set(self.addresses)
        self.descriptor = descriptor_bytes
        self.signed_for: bytes | None = None  # whom answers are signed for, if not the asker
        self.sent: list[tuple[Address, bytes]] = []  # (frontend, request bytes)
        self.surbs: list[int] = []
        self.frame_ids: list[bytes] = []
        self.arrivals: asyncio.Queue[api.Received] = asyncio.Queue()
        self._frames = _native.Reassembler()

    def __aiter__(self):
        return self._received()

    async def _received(self):
        while True:
            yield await self.arrivals.get()

    async def send_anonymous(self, recipient, message: bytes, reply_surbs: int) -> None:
        self.surbs.append(reply_surbs)
        self.frame_ids.append(message[1:17])
        done = self._frames.push(message, 0.0)
        if done is None:
            return
        data = done[1]
        self.sent.append((recipient, data))
        if recipient in self.answering:
            self.answer(wire.decode_request(data))

    def answer(self, request: wire.Request) -> None:
        if request.kind is Kind.FRONTENDS:
            kind, body = (
                (Kind.FRONTENDS_ARE, {"descriptor": self.descriptor})
                if self.descriptor
                else (Kind.ERROR, {"code": wire.ErrorCode.BUSY, "detail": "no descriptor yet"})
            )
        elif request.kind is Kind.LOOKUP:
            kind, body = Kind.POW_REQUIRED, {"difficulty": 12}
        else:
            kind, body = Kind.REFRESHED, {"queued": 0}
        requester = self.signed_for or request.requester
        data = wire.encode_answer(self.node, requester, kind, body, NOW, request.request_id)
        for frame in _native.encode_frames(data, wire.answer_frame_id(request.request_id)):
            self.arrivals.put_nowait(api.Received(frame, None))

    def kinds_to(self, frontend: Address) -> list[Kind]:
        return [wire.decode_request(data).kind for to, data in self.sent if to == frontend]


def run(coroutine):
    async def bounded():
        async with asyncio.timeout(30):
            return await coroutine

    return asyncio.run(bounded())


@pytest.fixture
def profile(tmp_path):
    opened = []

    def make(identity=None):
        home = tmp_path / f"home-{len(opened)}"
        home.mkdir()
        made = Profile(home, identity or _native.Identity.generate())
        opened.append(made)
        return made

    yield make
    for made in opened:
        made.close()


async def linked(played, contact, profile, events, clock=lambda: NOW / 1000):
    link = NodeLink(played, contact, profile.identity, clock=clock)
    link.attach(profile.store, events.append)
    return await link.__aenter__()


def ask(played, contact, profile, events, *requests: tuple[Kind, dict]) -> list[wire.Answer]:
    """The answers to `requests` (kind, arguments of `NodeLink.request`), one after
    another through a link of `profile` to `played`."""

    async def main():
        link = await linked(played, contact, profile, events)
        try:
            return [await link.request(kind, **arguments) for kind, arguments in requests]
        finally:
            await link.__aexit__()

    return run(main())


def order_of(contact, profile):
    return [
        Address.parse(f.address)
        for f in rendezvous(profile.identity.signing_public, tuple(contact_frontends(contact)))
    ]


def test_signed_requests_go_home_and_anonymous_ones_elsewhere_answered_for_nobody(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 3)
    home, anonymous, _ = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    events = []

    async def main():
        link = await linked(played, contact, me, events)
        assert (await link.request(Kind.REFRESH, timeout=1)).kind is Kind.REFRESHED
        answer = await link.request(Kind.LOOKUP, timeout=1, username="bob", proof_of_work=0)
        assert answer.kind is Kind.POW_REQUIRED  # signed for wire.ANONYMOUS, and taken
        await link.__aexit__()

    run(main())
    assert played.kinds_to(home) == [Kind.FRONTENDS, Kind.REFRESH]  # the descriptor: public
    assert played.kinds_to(anonymous) == [Kind.LOOKUP]
    lookup = wire.decode_request(played.sent[-1][1])
    assert lookup.requester == wire.ANONYMOUS and lookup.signature == b""
    assert events == []
    assert me.store.get(FRONTENDS_KEY)["descriptor"] == descriptor_hex(played)


def descriptor_hex(played):
    return played.descriptor.hex()


def test_a_silent_home_moves_to_the_next_frontend_with_the_same_bytes(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 3)
    home, second, _ = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    played.answering.discard(home)
    events = []
    [answer] = ask(played, contact, me, events, (Kind.REFRESH, {"timeout": 0.2, "attempts": 2}))
    assert answer.kind is Kind.REFRESHED
    refreshes = [
        (to, data) for to, data in played.sent if wire.decode_request(data).kind is Kind.REFRESH
    ]
    assert [to for to, _ in refreshes] == [home, home, second]
    assert len({data for _, data in refreshes}) == 1  # the same bytes: same id, same time
    assert played.kinds_to(second) == [Kind.FRONTENDS, Kind.REFRESH]  # asked first, anonymously
    assert (
        HomeMoved(1 + contact.addresses.index(home), 1 + contact.addresses.index(second), True)
        in events
    )
    assert set(me.store.get(FRONTENDS_KEY)["burned"]) == {str(home), str(second)}
    # Every attempt went with SURBs and frames of its own.
    assert all(surbs > 0 for surbs in played.surbs)
    assert len(set(played.frame_ids)) == len(played.frame_ids)


def test_a_silent_home_moves_past_the_next_frontends_gone_with_it(profile):
    """Home and the next in our order went silent together (one node process held both):
    home moves to the first frontend that answers the anonymous probe."""
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 4)
    home, second, third, _ = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    played.answering -= {home, second}
    events = []
    [answer] = ask(played, contact, me, events, (Kind.REFRESH, {"timeout": 0.1, "attempts": 2}))
    assert answer.kind is Kind.REFRESHED
    assert played.kinds_to(second) == [Kind.FRONTENDS]  # probed only: not burned
    assert played.kinds_to(third) == [Kind.FRONTENDS, Kind.REFRESH]
    assert set(me.store.get(FRONTENDS_KEY)["burned"]) == {str(home), str(third)}
    assert HomeMoved(*(1 + contact.addresses.index(a) for a in (home, third)), True) in events


def test_a_node_silent_on_every_frontend_burns_no_other_frontend(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 2)
    home, other = order_of(contact, me)
    played = PlayedNode(node, contact.addresses)
    played.answering.clear()
    events = []

    async def main():
        link = await linked(played, contact, me, events)
        with pytest.raises(NodeSilent):
            await link.request(Kind.REFRESH, timeout=0.1, attempts=2)
        await link.__aexit__()

    run(main())
    assert played.kinds_to(home) == [Kind.FRONTENDS, Kind.REFRESH, Kind.REFRESH]
    assert played.kinds_to(other) == [Kind.FRONTENDS]  # anonymous: it links nothing
    assert me.store.get(FRONTENDS_KEY)["burned"] == [str(home)]
    assert not any(isinstance(e, HomeMoved) for e in events)


def test_a_silent_anonymous_frontend_gives_way_to_the_next_unburned_with_the_same_bytes(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 3)
    home, second, third = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    played.answering.discard(second)

    async def main():
        link = await linked(played, contact, me, [])
        await link.request(Kind.LOOKUP, timeout=0.2, attempts=2, username="bob", proof_of_work=0)
        await link.__aexit__()

    run(main())
    lookups = [
        (to, data) for to, data in played.sent if wire.decode_request(data).kind is Kind.LOOKUP
    ]
    assert [to for to, _ in lookups] == [second, second, third]
    assert len({data for _, data in lookups}) == 1
    assert me.store.get(FRONTENDS_KEY)["burned"] == [str(home)]  # never home: not burned


def test_a_request_older_than_the_freshness_window_is_made_anew(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 1)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    now = [NOW / 1000]

    async def main():
        link = await linked(played, contact, me, [], clock=lambda: now[0])
        await link.request(Kind.FRONTENDS, timeout=1)  # the descriptor is fetched
        played.answering.clear()
        asking = asyncio.create_task(link.request(Kind.REFRESH, timeout=0.2, attempts=3))
        await asyncio.sleep(0.1)
        now[0] += 101  # the first attempt is still unanswered when it grows too old
        with pytest.raises(NodeSilent):
            await asking
        await link.__aexit__()

    run(main())
    first, second, third = [wire.decode_request(d) for _, d in played.sent if d[1] == Kind.REFRESH]
    assert second.request_id != first.request_id  # new id, new time...
    assert second.timestamp - first.timestamp >= 100_000
    assert third == second  # ...and the same bytes again after that


def test_a_one_frontend_node_sends_anonymous_requests_home_and_says_so_once(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 1)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    events = []
    lookup = {"timeout": 1, "username": "bob", "proof_of_work": 0}
    ask(played, contact, me, events, *[(Kind.LOOKUP, lookup)] * 2)
    assert played.kinds_to(contact.addresses[0]) == [Kind.FRONTENDS, Kind.LOOKUP, Kind.LOOKUP]
    assert events == [NotSealed(1)]


def test_a_bad_descriptor_from_the_node_is_refused_told_and_not_asked_again_soon(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 2)
    played = PlayedNode(
        node, contact.addresses, descriptor(node, contact.addresses, signer=_other())
    )
    events = []
    ask(played, contact, me, events, *[(Kind.REFRESH, {"timeout": 1})] * 2)
    assert [type(e) for e in events] == [DescriptorRefused]
    assert "not signed by the node" in events[0].reason
    assert [wire.decode_request(d).kind for _, d in played.sent] == [
        Kind.FRONTENDS,
        Kind.REFRESH,
        Kind.REFRESH,
    ]
    assert me.store.get(FRONTENDS_KEY)["descriptor"] is None


def test_a_new_descriptor_without_our_home_moves_it_and_says_why(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 3)
    home, second, third = order_of(contact, me)
    kept = [(1 + contact.addresses.index(a), str(a)) for a in (second, third)]
    played = PlayedNode(node, contact.addresses, descriptor(node, kept))
    events = []
    ask(played, contact, me, events, (Kind.REFRESH, {"timeout": 1}))
    home_id, second_id = (1 + contact.addresses.index(a) for a in (home, second))
    assert events == [HomeMoved(home_id, second_id, False)]
    assert played.kinds_to(second) == [Kind.REFRESH]


def test_burned_addresses_are_never_anonymous_again_after_a_restart(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 3)
    home, second, third = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    played.answering.discard(home)

    async def main():
        link = await linked(played, contact, me, [])
        await link.request(Kind.REFRESH, timeout=0.2, attempts=1)  # home moves to `second`
        await link.__aexit__()
        played.answering.add(home)
        again = await linked(played, contact, me, [])  # the next run, same profile
        await again.request(Kind.LOOKUP, timeout=1, username="bob", proof_of_work=0)
        await again.__aexit__()

    run(main())
    assert played.kinds_to(third)[-1] is Kind.LOOKUP
    assert Kind.LOOKUP not in played.kinds_to(home) + played.kinds_to(second)


@pytest.mark.parametrize("kind", [Kind.LOOKUP, Kind.REFRESH])
def test_an_answer_signed_for_the_wrong_requester_is_not_taken(profile, kind):
    """An answer to an anonymous request is signed for nobody, one to a signed request for
    us: the other way round, it is not the answer."""
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 2)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    body = {"username": "bob", "proof_of_work": 0} if kind is Kind.LOOKUP else {}

    async def main():
        link = await linked(played, contact, me, [])
        await link.request(Kind.FRONTENDS, timeout=1)
        played.signed_for = me.identity.signing_public if kind.is_anonymous else wire.ANONYMOUS
        with pytest.raises(NodeSilent):
            await link.request(kind, timeout=0.1, attempts=1, **body)
        assert link.rejected >= 1
        await link.__aexit__()

    run(main())


def test_pushes_are_taken_whichever_frontend_carried_our_last_request(profile):
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 2)
    home, other = order_of(contact, me)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    played.answering.discard(home)

    async def main():
        link = await linked(played, contact, me, [])
        await link.request(Kind.REFRESH, timeout=0.1, attempts=1)  # home moves to `other`
        push = wire.encode_answer(
            node, me.identity.signing_public, Kind.KEYS_LOW, {"one_time_keys_left": 3}, NOW
        )
        for frame in _native.encode_frames(push, wire.push_frame_id(link.push_key)):
            played.arrivals.put_nowait(api.Received(frame, None))
        assert (await asyncio.wait_for(link.pushes.get(), 5)).kind is Kind.KEYS_LOW
        await link.__aexit__()

    run(main())
    assert played.kinds_to(other)[-1] is Kind.REFRESH


def test_the_person_is_told_plainly_what_is_not_sealed_and_why():
    from nymchat.sentences import sentence

    one = sentence(NotSealed(1))
    assert "messages and lookups" in one and "not sealed" in one and "one frontend" in one
    assert "each of its 3 frontends has carried your account's requests" in sentence(NotSealed(3))
    assert "did not answer" in sentence(HomeMoved(1, 2, True))
    assert "no longer listed" in sentence(HomeMoved(1, 2, False))
    assert "expired" in sentence(DescriptorRefused("the frontend descriptor has expired"))


# --- the link on the in-process node (the real service and runner, N frontends) ----------


async def on_node(net, profile, events, timeout=0.5, attempts=2):
    """A node link for `profile` on the network's node, kept in its profile store."""
    transport = InProcessTransport(net.mixnet, f"{len(net.transports)}-{os.urandom(4).hex()}")
    await transport.start()
    net.stack.push_async_callback(transport.close)
    link = NodeLink(transport, net.node.contact, profile.identity)
    link.attach(profile.store, events.append)
    await link.__aenter__()
    net.stack.push_async_callback(link.__aexit__)

    async def request(kind, **body):
        return await link.request(kind, timeout=timeout, attempts=attempts, **body)

    return link, request


async def registered(request, identity, name: str) -> None:
    offered = bundle(identity, one_time_keys=0)  # lookups: the fallback, no work
    answer = await request(Kind.REGISTER_BEGIN, username=name, bundle=offered)
    if answer.kind is Kind.CHALLENGE:
        body = answer.body
        solution = pow.solve(
            pow.registration(body["challenge"], name, identity.signing_public), body["difficulty"]
        )
        answer = await request(
            Kind.REGISTER_FINISH, username=name, bundle=offered, proof_of_work=solution, **body
        )
    assert answer.kind is Kind.REGISTERED


def arrivals(net) -> list[int]:
    """Counts, per frontend id, the frames the node's frontends receive from now on."""
    counts = [0] * (len(net.node.frontends) + 1)
    for n, transport in enumerate(net.node.frontends, 1):

        def counted(received, n=n, deliver=transport.deliver):
            counts[n] += 1
            deliver(received)

        transport.deliver = counted
    return counts


def home_and_other(net, identity) -> tuple[int, int]:
    order = rendezvous(identity.signing_public, tuple(contact_frontends(net.node.contact)))
    return order[0].id, order[1].id


def test_on_a_two_frontend_node_lookups_go_where_the_account_never_signed(tmp_path):
    async def main():
        async with network(tmp_path, frontends=2) as net:
            alice, bob = net.profile("alice"), net.profile("bob")
            events = []
            _, ask_alice = await on_node(net, alice, events)
            _, ask_bob = await on_node(net, bob, events)
            await registered(ask_alice, alice.identity, "alice")
            await registered(ask_bob, bob.identity, "bob")
            home, other = home_and_other(net, bob.identity)
            counts = arrivals(net)
            found = await ask_bob(Kind.LOOKUP, username="alice", proof_of_work=0)
            assert found.kind is Kind.BUNDLE and found.body["identity"] == (
                alice.identity.signing_public
            )
            assert counts[other] > 0 and counts[home] == 0
            # What the node keeps of bob: the route of his signed requests, on his home.
            user = await net.node.store.user_by_identity(bob.identity.signing_public)
            assert int.from_bytes(user.sender_tag[:2], "big") == home
            record = bob.store.get(FRONTENDS_KEY)
            assert record["home"] == home and len(record["burned"]) == 1
            assert record["descriptor"] is not None  # the node's, fetched through home
            assert events == []

    run(main())


def test_with_its_home_frontend_down_a_user_moves_home_and_is_answered(tmp_path):
    async def main():
        async with network(tmp_path, frontends=2) as net:
            bob = net.profile("bob")
            events = []
            link, ask = await on_node(net, bob, events)
            await registered(ask, bob.identity, "bob")
            home, other = home_and_other(net, bob.identity)
            net.node.frontends[home - 1].lose()
            assert (await ask(Kind.REFRESH)).kind is Kind.REFRESHED
            assert events == [HomeMoved(home, other, True)]
            user = await net.node.store.user_by_identity(bob.identity.signing_public)
            assert int.from_bytes(user.sender_tag[:2], "big") == other
            # Both frontends have carried bob's signed requests: lookups are not sealed now.
            await ask(Kind.LOOKUP, username="bob", proof_of_work=0)
            await ask(Kind.LOOKUP, username="bob", proof_of_work=0)
            assert events[1:] == [NotSealed(2)]
            assert set(bob.store.get(FRONTENDS_KEY)["burned"]) == {
                f.address for f in link.frontends.listed
            }

    run(main())


def test_on_a_one_frontend_node_lookups_go_home_and_the_person_is_told_once(tmp_path):
    async def main():
        async with network(tmp_path, frontends=1) as net:
            bob = net.profile("bob")
            events = []
            _, ask = await on_node(net, bob, events)
            await registered(ask, bob.identity, "bob")
            for _ in range(2):
                assert (await ask(Kind.LOOKUP, username="bob", proof_of_work=0)).kind is Kind.BUNDLE
            assert events == [NotSealed(1)]

    run(main())


def test_a_request_goes_with_the_id_it_is_given_until_it_is_made_anew(profile):
    """Work bound to a request id (a lookup's) needs the request to carry that id."""
    node, me = _native.Identity.generate(), profile()
    contact = contact_of(node, 2)
    played = PlayedNode(node, contact.addresses, descriptor(node, contact.addresses))
    chosen = os.urandom(16)

    async def main():
        link = await linked(played, contact, me, [])
        await link.request(
            Kind.LOOKUP, timeout=1, request_id=chosen, username="bob", proof_of_work=7
        )
        await link.__aexit__()

    run(main())
    lookup = wire.decode_request(played.sent[-1][1])
    assert lookup.request_id == chosen and lookup.body["proof_of_work"] == 7


# --- engines on the in-process node ------------------------------------------------------


def requests_of(transport) -> list[tuple[Address, Kind]]:
    """The requests `transport` sends from now on: (frontend address, kind)."""
    sent: list[tuple[Address, Kind]] = []
    frames = _native.Reassembler()
    send = transport.send_anonymous

    async def recorded(recipient, message, reply_surbs):
        done = frames.push(message, 0.0)
        if done is not None and done[1][:1] == bytes([wire.VERSION]):
            sent.append((recipient, wire.decode_request(done[1]).kind))
        await send(recipient, message, reply_surbs)

    transport.send_anonymous = recorded
    return sent


@pytest.mark.parametrize("frontends", [1, 2])
def test_a_conversation_is_sealed_on_two_frontends_and_said_not_to_be_on_one(tmp_path, frontends):
    async def main():
        async with network(tmp_path, frontends=frontends) as net:
            alice, bob = await net.engine("alice"), await net.engine("bob")
            told = record(alice)
            sent = requests_of(net.transports[alice])
            await alice.lookup("bob")
            await alice.send("bob", "hello")
            await alice.send("bob", "again")
            assert [m.text for m in await take_in(bob)] == ["hello", "again"]
            order = rendezvous(
                alice.profile.identity.signing_public,
                tuple(contact_frontends(net.node.contact)),
            )
            home, *rest = (Address.parse(f.address) for f in order)
            anonymous = {Kind.LOOKUP, Kind.SEALED_SEND}
            if frontends == 1:
                assert [e for e in told if isinstance(e, NotSealed)] == [NotSealed(1)]
                assert {kind for _, kind in sent} >= anonymous
            else:
                assert not any(isinstance(e, NotSealed) for e in told)
                # alice's lookup and sends reach the node where she never signed, and
                # nothing she signs goes there.
                assert {kind for to, kind in sent if to == rest[0]} == anonymous
                assert not {kind for to, kind in sent if to == home} & anonymous
            user = await net.node.store.user_by_identity(alice.profile.identity.signing_public)
            assert int.from_bytes(user.sender_tag[:2], "big") == order[0].id

    run(main())


# --- a node we are not registered at: anonymous-only frontends and links -------------------


def test_an_anonymous_only_node_has_no_home_and_burns_nothing():
    me, node = _native.Identity.generate(), _native.Identity.generate()
    contact = contact_of(node, 3)
    order = rendezvous(me.signing_public, tuple(contact_frontends(contact)))
    changes = []
    frontends = Frontends(
        contact,
        me.signing_public,
        on_change=changes.append,
        anonymous_only=True,
        burned={order[0].address},  # once our home at some node: never anonymous
    )
    assert frontends.anonymous() == order[1]
    with pytest.raises(ValueError):
        frontends.home()
    assert changes == [] and frontends.burned == {order[0].address}
    assert frontends.record()["burned"] == []  # the profile's burned set is home's to keep


class TwoPlayedNodes:
    """One nym-client reaching two played nodes: each request goes to the node whose
    frontend it is sent to; every answer arrives through the one transport."""

    def __init__(self, *nodes: PlayedNode):
        self.nodes = nodes
        self.arrivals: asyncio.Queue[api.Received] = asyncio.Queue()
        for node in nodes:
            node.arrivals = self.arrivals

    def __aiter__(self):
        return self._received()

    async def _received(self):
        while True:
            yield await self.arrivals.get()

    async def send_anonymous(self, recipient, message: bytes, reply_surbs: int) -> None:
        for node in self.nodes:
            if recipient in node.addresses:
                await node.send_anonymous(recipient, message, reply_surbs)


def test_a_foreign_link_shares_the_reader_and_asks_its_node_anonymously(profile):
    """Home (A) and a foreign link (B) on one nym-client: signed requests go to A's home
    frontend; B gets only anonymous requests, at a frontend never burned, its descriptor
    fetched anonymously and kept in its own record; each answer reaches its own link."""
    a, b, me = _native.Identity.generate(), _native.Identity.generate(), profile()
    contact_a, contact_b = contact_of(a, 2), contact_of(b, 2)
    node_a = PlayedNode(a, contact_a.addresses, descriptor(a, contact_a.addresses))
    node_b = PlayedNode(b, contact_b.addresses, descriptor(b, contact_b.addresses))
    both = TwoPlayedNodes(node_a, node_b)
    home = order_of(contact_a, me)[0]
    burned_at_b = order_of(contact_b, me)[0]  # say it was our home once: never used
    me.store.put(FRONTENDS_KEY, {"node": "00", "burned": [str(burned_at_b)]})
    events = []

    async def main():
        home_link = await linked(both, contact_a, me, events)
        foreign = NodeLink(
            both, contact_b, me.identity, reader=home_link.reader, anonymous_only=True
        )
        foreign.attach(me.store, events.append)
        await foreign.__aenter__()
        assert (await home_link.request(Kind.REFRESH, timeout=1)).kind is Kind.REFRESHED
        lookup = await foreign.request(Kind.LOOKUP, timeout=1, username="bob", proof_of_work=0)
        assert lookup.kind is Kind.POW_REQUIRED
        with pytest.raises(NymchatError):
            await foreign.request(Kind.REFRESH, timeout=1)
        await foreign.__aexit__()
        await home_link.__aexit__()

    run(main())
    assert node_a.kinds_to(home) == [Kind.FRONTENDS, Kind.REFRESH]
    other_b = next(x for x in contact_b.addresses if x != burned_at_b)
    assert node_b.kinds_to(other_b) == [Kind.FRONTENDS, Kind.LOOKUP]
    assert node_b.kinds_to(burned_at_b) == []
    assert all(wire.decode_request(data).signature == b"" for _, data in node_b.sent)
    record = me.store.get(f"{FRONTENDS_KEY}:{b.signing_public.hex()}")
    assert record["descriptor"] == node_b.descriptor.hex() and record["home"] is None
    assert me.store.get(FRONTENDS_KEY)["burned"] == sorted([str(burned_at_b), str(home)])
