"""Group watches held by the node, sans-I/O (clock passed in): a `group_watch` with
nothing after its position waits here until an entry is posted to its group (by this
process or, told through the database, another) or its time is up, and is then answered
(`GroupHandlers.answer_watches`). Bounded per route and in all; a node that stops drops
them (their clients ask again).

A watch is held only once the batch that read nothing for it has committed, so a post
that lands meanwhile must not be missed: posts seen while a batch runs (`begin` ..
`held`) make the watches it holds due at once."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PER_ROUTE = 16  # watches held per route
MOST = 4096  # watches held by one node process


@dataclass(frozen=True)
class Held:
    request_id: bytes
    digest: bytes  # of the request's bytes: a retry replaces it, other bytes are a replay
    tag: bytes  # the route to answer through
    group_id: bytes
    after: int
    until: int  # ms: answered (empty) then


class Watches:
    def __init__(self, per_route: int = PER_ROUTE, most: int = MOST):
        self.per_route, self.most = per_route, most
        self._held: dict[bytes, Held] = {}  # by request id
        self._routes: Counter[bytes] = Counter()  # watches held per route
        self._groups: Counter[bytes] = Counter()  # and per group
        self._due: set[bytes] = set()  # groups with an entry since their watches were held
        self._during: set[bytes] | None = None  # groups posted to while a batch runs
        # the runner's: a watch is due, or one was held (when the next is up changed)
        self.on_change: Callable[[], None] = lambda: None

    def __len__(self) -> int:
        return len(self._held)

    def get(self, request_id: bytes) -> Held | None:
        return self._held.get(request_id)

    def room(self, tag: bytes, request_id: bytes) -> bool:
        """Whether one more watch from `tag` may be held (a retry takes its own place)."""
        if request_id in self._held:
            return True
        return self._routes[tag] < self.per_route and len(self._held) < self.most

    def begin(self) -> None:
        """A batch starts: the posts seen from now on count for the watches it holds."""
        self._during = set()

    def held(self, watches: Iterable[Held]) -> None:
        """The batch committed holding `watches` (a retry replaces the watch of its id,
        answered through the retry's route); those of a group posted to meanwhile are due."""
        during, self._during = self._during or set(), None
        watches = list(watches)
        for watch in watches:
            self._hold(watch)
            if watch.group_id in during:
                self._due.add(watch.group_id)
        if watches:
            self.on_change()

    def posted(self, group_id: bytes) -> None:
        """An entry was posted to `group_id` (here, or by another node process)."""
        if self._during is not None:
            self._during.add(group_id)
        if group_id in self._groups:
            self._due.add(group_id)
            self.on_change()

    def take(self, now: int) -> list[Held]:
        """Removes and returns the watches to answer: of a group posted to, or whose time
        is up (`again` holds those that turn out to have nothing yet)."""
        due, self._due = self._due, set()
        taken = [w for w in self._held.values() if w.group_id in due or w.until <= now]
        for watch in taken:
            self._drop(watch)
        return taken

    def again(self, watches: Iterable[Held]) -> None:
        for watch in watches:
            self._hold(watch)

    def next_until(self) -> int | None:
        """When the next watch's time is up (ms), None with none held."""
        return min((watch.until for watch in self._held.values()), default=None)

    def _hold(self, watch: Held) -> None:
        earlier = self._held.get(watch.request_id)
        if earlier is not None:
            self._drop(earlier)
        self._held[watch.request_id] = watch
        self._routes[watch.tag] += 1
        self._groups[watch.group_id] += 1

    def _drop(self, watch: Held) -> None:
        del self._held[watch.request_id]
        for counts, key in ((self._routes, watch.tag), (self._groups, watch.group_id)):
            counts[key] -= 1
            if not counts[key]:
                del counts[key]
