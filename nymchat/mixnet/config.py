"""Settings of the local mixnet: delay profiles, faults, limits. Light to import (the
command line builds its options from these defaults)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Delays:
    """Seconds: mean gap between packets a client sends, mean delay per mix hop."""

    send_mean: float = 0.0
    hop_mean: float = 0.0
    hops: int = 3

    @property
    def expected_path(self) -> float:
        return self.hops * self.hop_mean


PROFILES = {
    "zero": Delays(),
    "fast": Delays(send_mean=0.0005, hop_mean=0.001),
    "nym": Delays(send_mean=0.020, hop_mean=0.015),
}


def parse_delays(text: str) -> Delays:
    """`zero`, `fast`, `nym`, or `HOP_MS[/SEND_MS[/HOPS]]` (e.g. `15/20/3`)."""
    if text in PROFILES:
        return PROFILES[text]
    parts = text.split("/")
    try:
        hop = float(parts[0]) / 1000
        send = float(parts[1]) / 1000 if len(parts) > 1 else 0.0
        hops = int(parts[2]) if len(parts) > 2 else 3
    except (ValueError, IndexError):
        raise ValueError(
            f"delay {text!r}: use zero, fast, nym or HOP_MS[/SEND_MS[/HOPS]]"
        ) from None
    if len(parts) > 3 or hop < 0 or send < 0 or not 1 <= hops <= 10:
        raise ValueError(f"delay {text!r}: values must be >= 0 and hops 1-10")
    return Delays(send_mean=send, hop_mean=hop, hops=hops)


@dataclass(frozen=True)
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    drop_replies: float = 0.0
    ack_timeout: float | None = None  # None: the real client's 1.5 x path + 1.5 s


@dataclass(frozen=True)
class Limits:
    max_clients: int = 10_000
    max_held_messages: int = 10_000
    max_held_bytes: int = 64 << 20
    retention: float = 24 * 3600.0
    # The real client re-asks for SURBs every 10 s and drops a tag's pending replies
    # after 5 re-requests that bring nothing (or 5 min without SURBs): about a minute.
    reply_timeout: float = 60.0
