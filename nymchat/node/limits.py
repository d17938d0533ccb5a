"""Rate limits of the node: token buckets of a fixed maximum number of keys; the clock
is passed in (milliseconds)."""

from collections import OrderedDict


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
