"""Rate limits of the node: token buckets of a fixed maximum number of keys, the clock
passed in (milliseconds); and the work an anonymous claim on a scarce key pays."""

from collections import OrderedDict

from nymchat.protocol import pow


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


def lookup_difficulty(left: int) -> int:
    """The bits of work a lookup pays for one of `left` one-time keys: none while the
    pool is full, more as it runs low (docs/PROTOCOL.md)."""
    if left >= 32:
        return 0
    return min(pow.MAX_DIFFICULTY, 12 + 2 * (4 - (left.bit_length() - 1)))
