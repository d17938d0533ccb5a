"""Direct mode as a pure state machine: `step(state, event, now_ms)` gives the new state
and the actions to carry out. No I/O, no store, no clock, no randomness: invite ids,
secrets and the own address come inside the events, the time as an argument. The engine
stores the state (as today's record in the contact's sealed record) and carries out the
actions; the packets and handshake bodies are in `direct_packets.py`.

    (none)   --Invite-------------------------> INVITING  (SendInvite)
    (none)   --InviteReceived-----------------> INVITED
    INVITING --InviteReceived, lower id ours--> INVITING  (both invited at once: the
                                                           lower id stands on both sides)
    INVITING --AcceptReceived, our id---------> ON dialer (SendHello)
    INVITED  --Accept-------------------------> ON listener (SendAccept)
    INVITED  --Decline------------------------> (none)    (SendEnd declined)
    ON       --PacketAuthentic----------------> ON, confirmed (a listener learns the tag)
    ON       --ReceiptMissing, or a listener's
               own address changed -----------> (none)    (SendEnd failed)
    any      --End----------------------------> (none)    (SendEnd ended)
    any      --EndReceived--------------------> (none)
"""

import enum
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from nymchat.client import direct_packets as packets
from nymchat.client.events import DirectChange
from nymchat.nym.address import Address, AddressError


class DirectPhase(enum.StrEnum):
    INVITING = "inviting"  # we invited them
    INVITED = "invited"  # they invited us
    ON = "on"


class DirectRole(enum.StrEnum):
    DIALER = "dialer"  # the inviter: sends to the listener's address, which it holds
    LISTENER = "listener"  # the accepter: replies on the dialer's SURBs


T = TypeVar("T")


def _present(value: T | None, name: str) -> T:
    if value is None:
        raise ValueError(f"a direct-mode state without its {name}")
    return value


@dataclass(frozen=True)
class DirectState:
    """Direct mode with one contact. `invite` while inviting or invited; the rest once on:
    `address` is the listener's, `tag` the dialer's latest sender tag (a listener's only),
    `confirmed` once a packet came back over the path."""

    phase: DirectPhase
    since: int  # epoch milliseconds
    invite: bytes | None = None
    role: DirectRole | None = None
    secret: bytes | None = None
    address: bytes | None = None
    tag: bytes | None = None
    confirmed: bool = False

    def to_record(self) -> dict[str, Any]:
        """The dict kept in the contact's sealed record (the stored format, unchanged)."""
        if self.phase != DirectPhase.ON:
            return {"state": self.phase.value, "invite": self.invitation.hex(), "since": self.since}
        record: dict[str, Any] = {
            "state": self.phase.value,
            "role": self.side.value,
            "secret": self.shared_secret.hex(),
            "address": self.listener_address.hex(),
        }
        if self.role == DirectRole.LISTENER:
            record["tag"] = None if self.tag is None else self.tag.hex()
        return {**record, "confirmed": self.confirmed, "since": self.since}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "DirectState":
        phase = DirectPhase(record["state"])
        if phase != DirectPhase.ON:
            return cls(phase, record["since"], invite=bytes.fromhex(record["invite"]))
        tag = record.get("tag")
        return cls(
            phase,
            record["since"],
            role=DirectRole(record["role"]),
            secret=bytes.fromhex(record["secret"]),
            address=bytes.fromhex(record["address"]),
            tag=None if tag is None else bytes.fromhex(tag),
            confirmed=record["confirmed"],
        )

    # What each phase must have (a state without it was never made by `step`).

    @property
    def invitation(self) -> bytes:
        return _present(self.invite, "invite")

    @property
    def side(self) -> DirectRole:
        return _present(self.role, "role")

    @property
    def shared_secret(self) -> bytes:
        return _present(self.secret, "secret")

    @property
    def listener_address(self) -> bytes:
        return _present(self.address, "address")

    @property
    def usable(self) -> bool:
        """On, and able to send: a listener needs a tag to reply on."""
        return self.phase == DirectPhase.ON and (
            self.role == DirectRole.DIALER or self.tag is not None
        )


# --- events: what the user does, what the peer says, what the path shows -------------


@dataclass(frozen=True)
class Invite:
    invite: bytes  # a fresh random id, 16 bytes


@dataclass(frozen=True)
class Accept:
    secret: bytes  # fresh, 32 bytes
    address: bytes  # our own nym address, disclosed to the inviter only


@dataclass(frozen=True)
class Decline:
    pass


@dataclass(frozen=True)
class End:
    pass


@dataclass(frozen=True)
class InviteReceived:
    invite: bytes


@dataclass(frozen=True)
class AcceptReceived:
    accept: packets.Accept


@dataclass(frozen=True)
class EndReceived:
    reason: int  # packets.ENDED, DECLINED or FAILED


@dataclass(frozen=True)
class PacketAuthentic:
    """A direct packet on this pair's channel whose MAC checked."""

    kind: int  # packets.MESSAGE or HELLO
    direction: int  # packets.FROM_DIALER or FROM_LISTENER
    tag: bytes | None  # the sender tag it came with (None: a reply on our SURBs)


@dataclass(frozen=True)
class ReceiptMissing:
    why: str


@dataclass(frozen=True)
class Refresh:
    """The engine's periodic refresh, with this client's nym address as it is now."""

    address: bytes | None


Event = (
    Invite
    | Accept
    | Decline
    | End
    | InviteReceived
    | AcceptReceived
    | EndReceived
    | PacketAuthentic
    | ReceiptMissing
    | Refresh
)


# --- actions: what the engine carries out, in order -----------------------------------


@dataclass(frozen=True)
class SendInvite:
    invite: bytes


@dataclass(frozen=True)
class SendAccept:
    accept: packets.Accept


@dataclass(frozen=True)
class SendEnd:
    reason: int


@dataclass(frozen=True)
class SendHello:
    """Greets the peer directly: a dialer's hello, or a listener's answer to one."""


@dataclass(frozen=True)
class Emit:
    """What the engine announces (`events.DirectChanged`, with the contact's name)."""

    change: DirectChange
    by_peer: bool = False
    reason: str | None = None


class Refusal(enum.StrEnum):
    """Why an event changed nothing."""

    ALREADY_ON = "direct mode is on already"
    INVITED_YOU = "they invited us already"
    NOT_INVITED = "no invitation to answer"
    NOT_ON = "direct mode is not on"
    NO_SUCH_INVITATION = "an acceptance that answers no invitation"
    BAD_ADDRESS = "an acceptance with a bad address"
    STALE = "direct mode no longer on"
    WRONG_DIRECTION = "wrong direction"


@dataclass(frozen=True)
class Refuse:
    why: Refusal


Action = SendInvite | SendAccept | SendEnd | SendHello | Emit | Refuse

ADDRESS_CHANGED = "your nym address changed"  # why a listener that moved gives up
_ENDED_BY_PEER = {
    packets.ENDED: DirectChange.ENDED,
    packets.DECLINED: DirectChange.DECLINED,
    packets.FAILED: DirectChange.FAILED,
}

Step = tuple[DirectState | None, list[Action]]


def step(state: DirectState | None, event: Event, now_ms: int) -> Step:
    """The state after `event`, and the actions it takes. A refused event leaves the
    state as it was, with one `Refuse` action."""
    phase = None if state is None else state.phase
    match event:
        case Invite(invite):
            if phase == DirectPhase.ON:
                return _refuse(state, Refusal.ALREADY_ON)
            if phase == DirectPhase.INVITED:
                return _refuse(state, Refusal.INVITED_YOU)
            return DirectState(DirectPhase.INVITING, now_ms, invite=invite), [
                SendInvite(invite),
                Emit(DirectChange.INVITING),
            ]
        case Accept(secret, address):
            if phase != DirectPhase.INVITED:
                return _refuse(state, Refusal.NOT_INVITED)
            listener = DirectState(
                DirectPhase.ON,
                now_ms,
                role=DirectRole.LISTENER,
                secret=secret,
                address=address,
            )
            return listener, [
                SendAccept(packets.Accept(_invite_of(state), secret, address)),
                Emit(DirectChange.ACCEPTED),
            ]
        case Decline():
            if phase != DirectPhase.INVITED:
                return _refuse(state, Refusal.NOT_INVITED)
            return None, [SendEnd(packets.DECLINED), Emit(DirectChange.DECLINED)]
        case End():
            if state is None:
                return _refuse(state, Refusal.NOT_ON)
            return None, [SendEnd(packets.ENDED), Emit(DirectChange.ENDED)]
        case InviteReceived(invite):
            if phase == DirectPhase.INVITING and _invite_of(state) < invite:
                return state, []  # both invited at once: ours stands, theirs is dropped
            invited = DirectState(DirectPhase.INVITED, now_ms, invite=invite)
            return invited, [Emit(DirectChange.INVITED, by_peer=True)]
        case AcceptReceived(accept):
            if phase != DirectPhase.INVITING or _invite_of(state) != accept.invite:
                return _refuse(state, Refusal.NO_SUCH_INVITATION)
            try:
                Address.from_bytes(accept.address)
            except AddressError:
                return _refuse(state, Refusal.BAD_ADDRESS)
            dialer = DirectState(
                DirectPhase.ON,
                now_ms,
                role=DirectRole.DIALER,
                secret=accept.secret,
                address=accept.address,
            )
            return dialer, [Emit(DirectChange.ACCEPTED, by_peer=True), SendHello()]
        case EndReceived(reason):
            if state is None:
                return None, []
            return None, [Emit(_ENDED_BY_PEER[reason], by_peer=True)]
        case PacketAuthentic(kind, direction, tag):
            return _packet(state, kind, direction, tag)
        case ReceiptMissing(why):
            if state is None:
                return None, []  # another message found out first
            return _failed(why)
        case Refresh(address):
            if state is None or phase != DirectPhase.ON:
                return state, []
            if state.role == DirectRole.DIALER:
                return state, [SendHello()]  # fresh SURBs, and our current sender tag
            if address is not None and address != state.address:
                return _failed(ADDRESS_CHANGED)
            return state, []
    raise TypeError(f"not a direct-mode event: {event!r}")


def _invite_of(state: DirectState | None) -> bytes:
    """The invitation of a state known to be inviting or invited."""
    return _present(state, "state").invitation


def _refuse(state: DirectState | None, why: Refusal) -> Step:
    return state, [Refuse(why)]


def _failed(why: str) -> Step:
    """The direct path is gone: back to the node, and the peer told."""
    return None, [Emit(DirectChange.FAILED, reason=why), SendEnd(packets.FAILED)]


def _packet(state: DirectState | None, kind: int, direction: int, tag: bytes | None) -> Step:
    if state is None or state.phase != DirectPhase.ON:  # ended meanwhile
        return _refuse(state, Refusal.STALE)
    dialer = state.role == DirectRole.DIALER
    expected = packets.FROM_LISTENER if dialer else packets.FROM_DIALER
    if direction != expected or (tag is None) != dialer:
        return _refuse(state, Refusal.WRONG_DIRECTION)
    actions: list[Action] = []
    if not state.confirmed:
        actions.append(Emit(DirectChange.ON))
    # a listener replies on the tag of the dialer's latest packet (its nym-client restarts)
    new = replace(state, confirmed=True, tag=state.tag if dialer else tag)
    if kind == packets.HELLO and not dialer:
        actions.append(SendHello())
    return new, actions
