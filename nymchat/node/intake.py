"""Requests on their way to the node's service, sans-I/O (clock passed in).

Each complete request is first checked against its sender tag's rate: over it, it is
dropped and counted, silently (no signature checked, no answer signed, whatever it
holds). Admitted requests wait in a queue per tag, within fixed bounds, and are taken
round-robin across tags, the tags of registered users first: a flood from one tag, or
from many new ones, does not stand between a user and their answer."""

from collections import Counter, OrderedDict, deque

from nymchat.node.limits import RateLimiter


class _Line:
    """Queues per tag, served in turn, bounded in requests per tag and in all."""

    def __init__(self, per_tag: int, max_requests: int, max_bytes: int):
        self.per_tag, self.max_requests, self.max_bytes = per_tag, max_requests, max_bytes
        self.queues: OrderedDict[bytes, deque[bytes]] = OrderedDict()
        self.requests = self.bytes = 0

    def put(self, data: bytes, tag: bytes) -> bool:
        queue = self.queues.get(tag)
        if (
            (queue is not None and len(queue) >= self.per_tag)
            or self.requests >= self.max_requests
            or self.bytes + len(data) > self.max_bytes
        ):
            return False
        if queue is None:
            queue = self.queues[tag] = deque()
        queue.append(data)
        self.requests += 1
        self.bytes += len(data)
        return True

    def take(self) -> tuple[bytes, bytes]:
        tag, queue = next(iter(self.queues.items()))  # the tag whose turn it is
        data = queue.popleft()
        self.requests -= 1
        self.bytes -= len(data)
        if queue:
            self.queues.move_to_end(tag)
        else:
            del self.queues[tag]
        return data, tag


class Intake:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        per_tag: int | None = None,
        max_requests: int = 4096,
        max_bytes: int = 32 << 20,
    ):
        self.limiter = RateLimiter(rate, burst)
        if per_tag is None:  # what the tag's burst admits may wait, up to a 16th of all
            per_tag = max(1, min(int(burst), max_requests // 16))
        self._users = _Line(per_tag, max_requests, max_bytes)
        self._others = _Line(per_tag, max_requests, max_bytes)
        self.dropped: Counter[str] = Counter()

    def __len__(self) -> int:
        return self._users.requests + self._others.requests

    def admit(self, tag: bytes, now: int) -> bool:
        """Whether a request from `tag` is within its rate; if not, it is dropped and
        counted."""
        if self.limiter.allow(tag, now):
            return True
        self.dropped["rate_limited"] += 1
        return False

    def put(self, data: bytes, tag: bytes, known: bool) -> bool:
        """Queues an admitted request (`known`: `tag` is a registered user's), or drops and
        counts it."""
        if (self._users if known else self._others).put(data, tag):
            return True
        self.dropped["intake_full"] += 1
        return False

    def take(self, n: int) -> list[tuple[bytes, bytes]]:
        """Up to `n` `(request, tag)`, one per tag in turn, registered users' tags first."""
        out: list[tuple[bytes, bytes]] = []
        for line in (self._users, self._others):
            while line.queues and len(out) < n:
                out.append(line.take())
        return out
