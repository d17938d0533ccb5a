"""Bounded in-memory state of the node: rate limits and pending registration challenges.
Everything here has a fixed maximum size; the clock is passed in (milliseconds)."""

from collections import OrderedDict
from dataclasses import dataclass


class RateLimiter:
    """Token buckets per key (`rate` per second, bursts of `burst`), for at most
    `max_keys` keys: the least recently seen key is forgotten first."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def allow(self, key: bytes, now: int, cost: float = 1.0) -> bool:
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) / 1000 * self.rate)
        allowed = tokens >= cost
        self._buckets[key] = (tokens - cost if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


@dataclass(frozen=True)
class Challenge:
    username: str
    requester: bytes
    tag: bytes
    bundle: object
    expires: int


class Challenges:
    """Registration challenges waiting for an answer: each expires after `ttl`, at most
    `max_total` at once and `max_per_tag` per sender tag."""

    def __init__(self, ttl: int, max_total: int, max_per_tag: int):
        self.ttl, self.max_total, self.max_per_tag = ttl, max_total, max_per_tag
        self._pending: OrderedDict[bytes, Challenge] = OrderedDict()
        self._per_tag: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def _drop(self, key: bytes) -> Challenge:
        challenge = self._pending.pop(key)
        left = self._per_tag[challenge.tag] - 1
        if left:
            self._per_tag[challenge.tag] = left
        else:
            del self._per_tag[challenge.tag]
        return challenge

    def expire(self, now: int) -> None:
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if oldest.expires > now:
                break
            self._drop(key)

    def add(self, key: bytes, username: str, requester: bytes, tag: bytes, bundle,
            now: int) -> int | None:
        """Stores a challenge; returns its expiry, or None when over a limit."""
        self.expire(now)
        if len(self._pending) >= self.max_total or \
                self._per_tag.get(tag, 0) >= self.max_per_tag:
            return None
        expires = now + self.ttl
        self._pending[key] = Challenge(username, requester, tag, bundle, expires)
        self._per_tag[tag] = self._per_tag.get(tag, 0) + 1
        return expires

    def take(self, key: bytes, now: int) -> Challenge | None:
        """Spends a challenge: it can be answered once, right or wrong."""
        self.expire(now)
        return self._drop(key) if key in self._pending else None
