"""Direct mode's state machine, sans-I/O: every transition as a row of a table (state,
event → new state, actions), the stored record read and written as older versions did, and
two machines talking to each other through their actions."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.client import direct_packets as packets
from nymchat.client.direct import (
    ADDRESS_CHANGED,
    Accept,
    AcceptReceived,
    Decline,
    DirectPhase,
    DirectRole,
    DirectState,
    Emit,
    End,
    EndReceived,
    Invite,
    InviteReceived,
    PacketAuthentic,
    ReceiptMissing,
    Refresh,
    Refusal,
    Refuse,
    SendAccept,
    SendEnd,
    SendHello,
    SendInvite,
    step,
)
from nymchat.client.events import DirectChange

T0, NOW = 1_800_000_000_000, 1_800_000_060_000
LOW, HIGH = b"\x01" * 16, b"\x02" * 16  # invite ids
SECRET = b"\x05" * 32
POINT = bytes.fromhex("58" + "66" * 31)  # the Ed25519 base point: a valid key
ADDRESS = POINT + b"\x06" * 32 + POINT  # identity ‖ encryption ‖ gateway
MOVED = POINT + b"\x07" * 32 + POINT
NOT_A_POINT = b"\x02" + bytes(31)  # y = 2 is on no Ed25519 curve point
TAG, NEW_TAG = b"\x08" * 16, b"\x09" * 16
ON = DirectPhase.ON

INVITING = DirectState(DirectPhase.INVITING, T0, invite=LOW)
INVITED = DirectState(DirectPhase.INVITED, T0, invite=LOW)
DIALER = DirectState(ON, T0, role=DirectRole.DIALER, secret=SECRET, address=ADDRESS)
LISTENER = DirectState(ON, T0, role=DirectRole.LISTENER, secret=SECRET, address=ADDRESS)
CONFIRMED_DIALER = replace(DIALER, confirmed=True)
LISTENING = replace(LISTENER, tag=TAG, confirmed=True)  # heard the dialer already
ACCEPT = packets.Accept(LOW, SECRET, ADDRESS)


def hello(direction: int, tag: bytes | None) -> PacketAuthentic:
    return PacketAuthentic(packets.HELLO, direction, tag)


def message(direction: int, tag: bytes | None) -> PacketAuthentic:
    return PacketAuthentic(packets.MESSAGE, direction, tag)


def refused(state, event, why):
    return pytest.param(state, event, state, [Refuse(why)], id=f"{why.name}")


USER = [
    pytest.param(
        None,
        Invite(HIGH),
        DirectState(DirectPhase.INVITING, NOW, invite=HIGH),
        [SendInvite(HIGH), Emit(DirectChange.INVITING)],
        id="invite",
    ),
    pytest.param(
        INVITING,
        Invite(HIGH),
        DirectState(DirectPhase.INVITING, NOW, invite=HIGH),
        [SendInvite(HIGH), Emit(DirectChange.INVITING)],
        id="invite again: the new id replaces the old",
    ),
    refused(INVITED, Invite(HIGH), Refusal.INVITED_YOU),
    refused(DIALER, Invite(HIGH), Refusal.ALREADY_ON),
    refused(LISTENING, Invite(HIGH), Refusal.ALREADY_ON),
    pytest.param(
        INVITED,
        Accept(SECRET, ADDRESS),
        replace(LISTENER, since=NOW),
        [SendAccept(ACCEPT), Emit(DirectChange.ACCEPTED)],
        id="accept: listener, our address and the secret go to the inviter",
    ),
    refused(None, Accept(SECRET, ADDRESS), Refusal.NOT_INVITED),
    refused(INVITING, Accept(SECRET, ADDRESS), Refusal.NOT_INVITED),
    refused(LISTENING, Accept(SECRET, ADDRESS), Refusal.NOT_INVITED),
    pytest.param(
        INVITED,
        Decline(),
        None,
        [SendEnd(packets.DECLINED), Emit(DirectChange.DECLINED)],
        id="decline",
    ),
    refused(None, Decline(), Refusal.NOT_INVITED),
    refused(INVITING, Decline(), Refusal.NOT_INVITED),
    refused(DIALER, Decline(), Refusal.NOT_INVITED),
    *[
        pytest.param(
            state,
            End(),
            None,
            [SendEnd(packets.ENDED), Emit(DirectChange.ENDED)],
            id=f"end from {name}",
        )
        for name, state in [
            ("inviting (withdraws)", INVITING),
            ("invited", INVITED),
            ("dialer", DIALER),
            ("listener", LISTENING),
        ]
    ],
    refused(None, End(), Refusal.NOT_ON),
]

PEER = [
    pytest.param(
        None,
        InviteReceived(LOW),
        replace(INVITED, since=NOW),
        [Emit(DirectChange.INVITED, by_peer=True)],
        id="invited",
    ),
    pytest.param(
        INVITING,
        InviteReceived(HIGH),
        INVITING,
        [],
        id="both invited at once, ours is lower: ours stands",
    ),
    pytest.param(
        replace(INVITING, invite=HIGH),
        InviteReceived(LOW),
        replace(INVITED, since=NOW),
        [Emit(DirectChange.INVITED, by_peer=True)],
        id="both invited at once, theirs is lower: theirs stands",
    ),
    pytest.param(
        LISTENING,
        InviteReceived(LOW),
        replace(INVITED, since=NOW),
        [Emit(DirectChange.INVITED, by_peer=True)],
        id="invited while on: they started over",
    ),
    pytest.param(
        INVITING,
        AcceptReceived(ACCEPT),
        replace(DIALER, since=NOW),
        [Emit(DirectChange.ACCEPTED, by_peer=True), SendHello()],
        id="accepted: dialer, greets the listener",
    ),
    refused(INVITING, AcceptReceived(replace(ACCEPT, invite=HIGH)), Refusal.NO_SUCH_INVITATION),
    refused(None, AcceptReceived(ACCEPT), Refusal.NO_SUCH_INVITATION),
    refused(INVITED, AcceptReceived(ACCEPT), Refusal.NO_SUCH_INVITATION),
    refused(DIALER, AcceptReceived(ACCEPT), Refusal.NO_SUCH_INVITATION),
    refused(
        INVITING, AcceptReceived(replace(ACCEPT, address=NOT_A_POINT * 3)), Refusal.BAD_ADDRESS
    ),
    *[
        pytest.param(
            state,
            EndReceived(reason),
            None,
            [Emit(change, by_peer=True)],
            id=f"{change} by them while {name}",
        )
        for reason, change in [
            (packets.ENDED, DirectChange.ENDED),
            (packets.DECLINED, DirectChange.DECLINED),
            (packets.FAILED, DirectChange.FAILED),
        ]
        for name, state in [("inviting", INVITING), ("invited", INVITED), ("on", LISTENING)]
    ],
    pytest.param(None, EndReceived(packets.ENDED), None, [], id="an end of nothing"),
]

PATH = [
    pytest.param(
        DIALER,
        hello(packets.FROM_LISTENER, None),
        CONFIRMED_DIALER,
        [Emit(DirectChange.ON)],
        id="the listener's answer confirms the dialer's path",
    ),
    pytest.param(
        CONFIRMED_DIALER,
        message(packets.FROM_LISTENER, None),
        CONFIRMED_DIALER,
        [],
        id="a message on a confirmed path",
    ),
    pytest.param(
        LISTENER,
        hello(packets.FROM_DIALER, TAG),
        LISTENING,
        [Emit(DirectChange.ON), SendHello()],
        id="the dialer's hello: the listener learns the tag and answers",
    ),
    pytest.param(
        LISTENING,
        hello(packets.FROM_DIALER, TAG),
        LISTENING,
        [SendHello()],
        id="every hello is answered",
    ),
    pytest.param(
        LISTENING,
        message(packets.FROM_DIALER, NEW_TAG),
        replace(LISTENING, tag=NEW_TAG),
        [],
        id="the dialer's nym-client restarted: the listener follows the new tag",
    ),
    *[
        pytest.param(state, event, state, [Refuse(Refusal.WRONG_DIRECTION)], id=name)
        for name, state, event in [
            ("a dialer's own direction", DIALER, hello(packets.FROM_DIALER, None)),
            ("a tagged packet to a dialer", DIALER, message(packets.FROM_LISTENER, TAG)),
            ("a listener's own direction", LISTENING, message(packets.FROM_LISTENER, TAG)),
            ("an untagged packet to a listener", LISTENING, hello(packets.FROM_DIALER, None)),
        ]
    ],
    *[
        refused(state, message(packets.FROM_DIALER, TAG), Refusal.STALE)
        for state in (None, INVITING, INVITED)
    ],
    *[
        pytest.param(
            state,
            ReceiptMissing("no receipt within 3 s"),
            None,
            [
                Emit(DirectChange.FAILED, reason="no receipt within 3 s"),
                SendEnd(packets.FAILED),
            ],
            id=f"no receipt as {name}: back to the node, the peer told",
        )
        for name, state in [("dialer", CONFIRMED_DIALER), ("listener", LISTENING)]
    ],
    pytest.param(
        None, ReceiptMissing("late"), None, [], id="no receipt, after another message ended it"
    ),
    pytest.param(DIALER, Refresh(MOVED), DIALER, [SendHello()], id="refresh: a dialer greets"),
    pytest.param(LISTENING, Refresh(ADDRESS), LISTENING, [], id="refresh: a listener stays"),
    pytest.param(
        LISTENING,
        Refresh(MOVED),
        None,
        [Emit(DirectChange.FAILED, reason=ADDRESS_CHANGED), SendEnd(packets.FAILED)],
        id="refresh: a listener whose own address changed fails",
    ),
    pytest.param(LISTENING, Refresh(None), LISTENING, [], id="refresh, own address unknown"),
    pytest.param(INVITING, Refresh(MOVED), INVITING, [], id="refresh while inviting"),
    pytest.param(None, Refresh(MOVED), None, [], id="refresh while off"),
]


@pytest.mark.parametrize(("state", "event", "after", "actions"), USER + PEER + PATH)
def test_transitions(state, event, after, actions):
    assert step(state, event, NOW) == (after, actions)


# --- the stored record, as every version so far wrote it -----------------------------

RECORDS = [
    ({"state": "inviting", "invite": LOW.hex(), "since": T0}, INVITING),
    ({"state": "invited", "invite": LOW.hex(), "since": T0}, INVITED),
    (
        {  # a dialer's record has no tag
            "state": "on",
            "role": "dialer",
            "secret": SECRET.hex(),
            "address": ADDRESS.hex(),
            "confirmed": False,
            "since": T0,
        },
        DIALER,
    ),
    (
        {
            "state": "on",
            "role": "listener",
            "secret": SECRET.hex(),
            "address": ADDRESS.hex(),
            "tag": None,
            "confirmed": False,
            "since": T0,
        },
        LISTENER,
    ),
    (
        {
            "state": "on",
            "role": "listener",
            "secret": SECRET.hex(),
            "address": ADDRESS.hex(),
            "tag": TAG.hex(),
            "confirmed": True,
            "since": T0,
        },
        LISTENING,
    ),
]


@pytest.mark.parametrize(("record", "state"), RECORDS)
def test_stored_records_read_and_write_unchanged(record, state):
    assert DirectState.from_record(record) == state
    assert state.to_record() == record
    assert list(state.to_record()) == list(record)  # the same keys, in the same order


@pytest.mark.parametrize(
    ("state", "usable"),
    [(INVITING, False), (INVITED, False), (DIALER, True), (LISTENER, False), (LISTENING, True)],
)
def test_only_a_dialer_or_a_listener_that_heard_it_can_send(state, usable):
    assert state.usable is usable


# --- any sequence of events -------------------------------------------------------------

EVENTS = [
    Invite(LOW),
    Invite(HIGH),
    Accept(SECRET, ADDRESS),
    Decline(),
    End(),
    InviteReceived(LOW),
    InviteReceived(HIGH),
    AcceptReceived(ACCEPT),
    AcceptReceived(replace(ACCEPT, invite=HIGH)),
    EndReceived(packets.FAILED),
    hello(packets.FROM_DIALER, TAG),
    message(packets.FROM_DIALER, NEW_TAG),
    hello(packets.FROM_LISTENER, None),
    message(packets.FROM_LISTENER, TAG),
    ReceiptMissing("no receipt"),
    Refresh(ADDRESS),
    Refresh(MOVED),
]


@given(st.lists(st.sampled_from(EVENTS), max_size=30))
def test_any_sequence_keeps_a_storable_state_and_refusals_change_nothing(events):
    state = None
    for n, event in enumerate(events):
        after, actions = step(state, event, T0 + n)
        if any(isinstance(a, Refuse) for a in actions):
            assert (after, len(actions)) == (state, 1)
        if after is not None:
            assert DirectState.from_record(after.to_record()) == after
        state = after


# --- two machines, each side's sends delivered to the other ----------------------------


class Side:
    """One client's machine; what it sends through the node or directly is handed back
    as the events the other side receives."""

    def __init__(self, address: bytes):
        self.state: DirectState | None = None
        self.address = address
        self.emitted: list[Emit] = []

    def feed(self, event, now: int = NOW) -> list:
        self.state, actions = step(self.state, event, now)
        self.emitted += [a for a in actions if isinstance(a, Emit)]
        out = []
        for action in actions:
            match action:
                case SendInvite(invite):
                    out.append(InviteReceived(invite))
                case SendAccept(accept):
                    out.append(AcceptReceived(accept))
                case SendEnd(reason):
                    out.append(EndReceived(reason))
                case SendHello():
                    dialer = self.state.role == DirectRole.DIALER
                    direction = packets.FROM_DIALER if dialer else packets.FROM_LISTENER
                    out.append(hello(direction, TAG if dialer else None))
        return out


def exchange(a: Side, b: Side, events: list) -> None:
    """Delivers `events` to b, its answers to a, and so on until both are quiet."""
    while events:
        events = [answer for event in events for answer in b.feed(event)]
        a, b = b, a


def test_two_machines_invite_accept_and_confirm_the_path():
    alice, bob = Side(ADDRESS), Side(MOVED)
    exchange(alice, bob, alice.feed(Invite(LOW)))
    assert bob.state.phase == DirectPhase.INVITED
    exchange(bob, alice, bob.feed(Accept(SECRET, bob.address)))
    assert (alice.state.role, bob.state.role) == (DirectRole.DIALER, DirectRole.LISTENER)
    assert alice.state.confirmed and bob.state.confirmed and bob.state.tag == TAG
    assert alice.state.address == bob.address  # only the listener's address travelled
    assert [e.change for e in alice.emitted] == [
        DirectChange.INVITING,
        DirectChange.ACCEPTED,
        DirectChange.ON,
    ]
    exchange(bob, alice, bob.feed(End()))
    assert alice.state is None and bob.state is None
    assert alice.emitted[-1] == Emit(DirectChange.ENDED, by_peer=True)


@pytest.mark.parametrize("alice_first", [True, False])
def test_two_invitations_at_once_leave_the_lower_on_both_sides(alice_first):
    alice, bob = Side(ADDRESS), Side(MOVED)
    to_bob, to_alice = alice.feed(Invite(HIGH)), bob.feed(Invite(LOW))
    for side, events in ([alice, to_alice], [bob, to_bob])[:: 1 if alice_first else -1]:
        for event in events:
            side.feed(event)
    assert alice.state == DirectState(DirectPhase.INVITED, NOW, invite=LOW)
    assert bob.state == DirectState(DirectPhase.INVITING, NOW, invite=LOW)
    exchange(alice, bob, alice.feed(Accept(SECRET, alice.address)))
    assert bob.state.role == DirectRole.DIALER and bob.state.confirmed
