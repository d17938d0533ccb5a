"""Who may fill a recipient's queue: the senders without the recipient's access key
(strangers) a share of it together, so that its contacts always find room, and everyone
together the node's total. The node does not know who sends: there is no per-sender
share (a sender is at most a route, limited per minute by the service)."""

from dataclasses import dataclass

from nymchat.protocol.wire import ErrorCode


@dataclass(frozen=True)
class Room:
    """What a recipient's queue and the node hold: (messages, bytes) each."""

    recipient: tuple[int, int]
    from_strangers: tuple[int, int] | None  # None: a contact's send (the access key)
    node_bytes: int


def refusal(config, recipient: str, size: int, room: Room) -> tuple[ErrorCode, str] | None:
    """Why a message of `size` bytes cannot be queued for `recipient` (given the node's
    `NodeConfig`), or None."""
    if room.node_bytes + size > config.node_queue_max_bytes:
        return ErrorCode.BUSY, (
            "this node holds as many queued messages as it may "
            f"({config.node_queue_max_bytes} bytes); try again later"
        )

    def over(held: tuple[int, int], share: float) -> bool:
        return held[0] + 1 > max(1, int(config.queue_max_messages * share)) or held[1] + size > int(
            config.queue_max_bytes * share
        )

    if over(room.recipient, 1.0):
        return ErrorCode.QUEUE_FULL, f"{recipient}'s queue is full"
    if room.from_strangers is not None and over(room.from_strangers, config.queue_stranger_share):
        return ErrorCode.QUEUE_FULL, (
            f"{recipient}'s queue has no more room for senders they have not given their "
            "access key; try again once they have fetched their messages"
        )
    return None
