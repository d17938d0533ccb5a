"""The mixnet's network model, sans-I/O: the clock is passed in, so timing, limits and
SURB accounting are checked exactly and instantly."""

import os
import random

import pytest
from nacl.signing import SigningKey

from nymchat.mixnet.config import Delays, Faults, Limits, parse_delays
from nymchat.mixnet.model import PACKET_DATA, Mixnet, packets_for
from nymchat.nym import api
from nymchat.nym.address import Address


def address() -> Address:
    return Address(
        bytes(SigningKey.generate().verify_key),
        os.urandom(32),
        bytes(SigningKey.generate().verify_key),
    )


def net(**kwargs) -> tuple[Mixnet, Address, Address]:
    m = Mixnet(rng=random.Random(5), **kwargs)
    a, b = m.add_client("a", address()), m.add_client("b", address())
    m.connect("a", 0.0)
    m.connect("b", 0.0)
    return m, a.address, b.address


def test_packet_counts_follow_the_real_client():
    assert packets_for(1600) == 1  # a nymchat frame fills one packet...
    assert packets_for(1600, reply=True) == 1  # ...as a reply too
    assert packets_for(PACKET_DATA - 1) == 2
    assert [packets_for(10, repliable=True, surbs=n) for n in (10, 20, 100)] == [8, 15, 73]


def test_delay_profiles():
    assert parse_delays("nym") == Delays(send_mean=0.020, hop_mean=0.015, hops=3)
    assert parse_delays("10/5/2") == Delays(send_mean=0.005, hop_mean=0.010, hops=2)
    for bad in ["slow", "1/2/3/4", "-1", "5/x", "1/1/0"]:
        with pytest.raises(ValueError):
            parse_delays(bad)


def test_nothing_arrives_before_its_time():
    m, _, b = net(delays=parse_delays("15/20"))
    m.handle("a", api.Send(b, b"x" * 10_000), 0.0)
    assert m.due(0.0) == []
    when = m.next_due()
    assert when > 0.0
    assert m.due(when) == [("b", api.Received(b"x" * 10_000))]


def test_poisson_sending_spaces_out_packets_and_fills_the_lane():
    m, _, b = net(delays=Delays(send_mean=0.020))
    m.handle("a", api.Send(b, bytes(50 * 1600), connection_id=3), 0.0)
    assert m.handle("a", api.GetLaneQueueLength(3), 0.0)[0].queue_length == 50
    arrival = m.next_due()
    assert 0.5 < arrival < 2.0  # 50 packets at ~20 ms each
    assert m.handle("a", api.GetLaneQueueLength(3), arrival)[0].queue_length == 0


def test_held_messages_are_capped_and_expire():
    m, _, b = net(limits=Limits(max_held_messages=3, retention=100.0))
    m.disconnect("b")
    for n in range(5):
        m.handle("a", api.Send(b, b"%d" % n), 0.0)
    assert m.due(0.0) == []
    assert m.stats["dropped_held_overflow"] == 2
    assert [r.message for r in m.connect("b", 50.0)] == [b"2", b"3", b"4"]
    m.disconnect("b")
    m.handle("a", api.Send(b, b"old"), 60.0)
    m.due(60.0)
    assert m.connect("b", 200.0) == []
    assert m.stats["dropped_retention"] == 1


def test_held_bytes_are_capped():
    m, _, b = net(limits=Limits(max_held_bytes=10_000))
    m.disconnect("b")
    for _ in range(5):
        m.handle("a", api.Send(b, bytes(4000)), 0.0)
    m.due(0.0)
    assert len(m.connect("b", 1.0)) == 2


def test_replies_keep_a_reserve_of_ten_surbs():
    m, _, b = net()
    m.disconnect("a")  # no top-ups while the sender is away
    m.handle("a", api.SendAnonymous(b, b"q", 15), 0.0)
    [(_, received)] = m.due(0.0)
    for n in range(8):
        m.handle("b", api.Reply(received.sender_tag, b"r%d" % n), 0.0)
    m.due(0.0)
    assert m.clients["b"].surbs[received.sender_tag] == 9  # 5 replies, 1 spent asking
    assert len(m.clients["b"].pending_replies) == 3
    assert m.stats["surb_requests"] == 1
    assert [r.message for r in m.connect("a", 1.0)] == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    # alice answers the SURB request she found waiting; bob sends the rest
    assert [r.message for _, r in m.due(1.0)] == [b"r5", b"r6", b"r7"]


def test_pending_replies_time_out():
    m, _, b = net(limits=Limits(reply_timeout=30.0))
    m.handle("a", api.SendAnonymous(b, b"q", 1), 0.0)
    [(_, received)] = m.due(0.0)
    m.disconnect("a")
    m.handle("b", api.Reply(received.sender_tag, b"late"), 0.0)
    assert m.due(29.0) == []
    m.due(31.0)
    assert m.stats["dropped_reply_timeout"] == 1
    assert m.connect("a", 32.0) == []


def test_loss_delays_but_never_loses():
    m, _, b = net(faults=Faults(loss=0.5, ack_timeout=1.0))
    for n in range(50):
        m.handle("a", api.Send(b, b"%d" % n + bytes(5000)), 0.0)
    got = m.due(1000.0)
    assert len(got) == 50
    assert m.stats["packets_lost"] > 50


def test_duplicates_and_dropped_replies():
    m, _, b = net(faults=Faults(duplicate=1.0, drop_replies=1.0))
    m.handle("a", api.SendAnonymous(b, b"q", 20), 0.0)
    first, second = m.due(0.0)
    assert first == second
    m.handle("b", api.Reply(first[1].sender_tag, b"gone"), 0.0)
    assert m.due(0.0) == []
    assert m.stats["dropped_replies_fault"] == 1


def test_client_cap():
    m = Mixnet(limits=Limits(max_clients=1))
    m.add_client("one", address())
    with pytest.raises(OverflowError):
        m.add_client("two", address())
