"""Who may fill a recipient's queue: each sender a share of it, the senders the recipient
does not know a share together (so that its contacts always find room), and everyone
together the node's total. Which senders a recipient knows, the node tells from what it
sees anyway: a recipient knows a sender it has written to of its own accord, that is not
within an hour of being handed a message from them (when clients send their automatic
receipts, which a stranger could otherwise collect by writing first)."""

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nymchat.node.store import NodeStore
from nymchat.protocol.wire import ErrorCode

HOUR, DAY = 3_600_000, 86_400_000
RECEIPT_WINDOW_MS = HOUR


@dataclass(frozen=True)
class Room:
    """What a recipient's queue and the node hold: (messages, bytes) each."""

    recipient: tuple[int, int]
    from_sender: tuple[int, int]
    from_strangers: tuple[int, int] | None  # None: the sender is known to the recipient
    node_bytes: int


def refusal(config, recipient: str, size: int, room: Room) -> tuple[ErrorCode, str] | None:
    """Why a message of `size` bytes for `recipient` cannot be queued (given the node's
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
    if over(room.from_sender, config.queue_sender_share):
        return ErrorCode.QUEUE_FULL, (
            f"{recipient}'s queue holds {room.from_sender[0]} message(s), {room.from_sender[1]}"
            f" bytes, from you: one sender may fill at most {config.queue_sender_share:.0%} of "
            "it; try again once they have fetched them"
        )
    if room.from_strangers is not None and over(room.from_strangers, config.queue_stranger_share):
        return ErrorCode.QUEUE_FULL, (
            f"{recipient}'s queue has no more room for senders they have not written to; try "
            "again once they have fetched their messages"
        )
    return None


class KnownSenders:
    """The pairs (recipient, sender) where the recipient knows the sender, stored as
    little as possible: a keyed hash of the pair (the key is derived from the node's
    secret key, so the database alone does not tell the pairs), with the day it was last
    seen, forgotten after `retention_ms`."""

    def __init__(self, store: NodeStore, secret: bytes, retention_ms: int):
        self.store, self.retention_ms = store, retention_ms
        self._key = HKDF(
            hashes.SHA256(), 32, salt=None, info=b"nymchat-node-known-senders-v1"
        ).derive(secret)

    def pair(self, recipient: str, sender: str) -> bytes:
        return hmac.digest(self._key, f"{recipient}\0{sender}".encode(), "sha256")[:16]

    def knows(self, recipient: str, sender: str, now: int) -> bool:
        seen = self.store.known_since(self.pair(recipient, sender))
        return seen is not None and seen >= _day(now - self.retention_ms)

    def pushed(self, pairs: list[tuple[str, str]], now: int) -> None:
        """`(recipient, sender)` pairs whose messages were just handed to the recipient."""
        self.store.note_pushes([self.pair(r, s) for r, s in pairs], now)

    def wrote(self, sender: str, recipient: str, now: int) -> None:
        """`sender` wrote to `recipient`: it knows them from now on, unless this may be a
        receipt (then it only keeps a pair it knew alive)."""
        pair = self.pair(sender, recipient)
        maybe_receipt = self.store.pushed_since(pair, now - RECEIPT_WINDOW_MS)
        self.store.remember_known(pair, _day(now), create=not maybe_receipt)

    def expire(self, now: int) -> None:
        self.store.forget_pairs(_day(now - self.retention_ms), now - RECEIPT_WINDOW_MS)


def _day(ms: int) -> int:
    return ms - ms % DAY
