"""The node's request handling, sans-I/O: decoded requests and the time go in, signed
answers and pushes (each for a route: frontend id and sender tag, opaque here) come out.
Storage is the one dependency; the caller commits a whole batch before sending anything,
so no answer ever promises what a crash could take back.

Signed requests come from a user's home route; sealed sends, lookups, the frontend
descriptor and the directory of other nodes come anonymously: the node learns no sender
and no one who looks up."""

import hashlib
import hmac
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from nymchat import _native
from nymchat.node import quota
from nymchat.node.database import StoreConflict, StoreUnavailable
from nymchat.node.directory import NodeDirectory
from nymchat.node.groups import GroupHandlers
from nymchat.node.limits import RateLimiter, lookup_difficulty
from nymchat.node.metrics import Histogram
from nymchat.node.refused import Refused
from nymchat.node.registration import Challenges, Difficulty, challenge_key
from nymchat.node.routes import split_route
from nymchat.node.store import REGISTRATIONS, NodeStore, Queued, User
from nymchat.node.watches import Held
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import ErrorCode, Kind

log = logging.getLogger(__name__)
MINUTE, DAY = 60_000, 86_400_000
BATCH_ATTEMPTS = 3  # runs of a batch that meets other processes' transactions
NAMED = {Kind.SEALED_SEND: "recipient", Kind.LOOKUP: "username"}  # the user a request names


@dataclass(frozen=True)
class NodeConfig:
    freshness_ms: int = 120_000
    pow_difficulty: int = 12  # bits, rising with the registration rate (0: off)
    pow_free_registrations: int = 30  # recent registrations before the difficulty rises
    pow_half_life_ms: int = 10 * MINUTE  # how fast "recent" fades
    challenge_ttl_ms: int = 5 * MINUTE
    retention_ms: int = 14 * DAY
    queue_max_messages: int = 1000
    queue_max_bytes: int = 16 << 20
    queue_stranger_share: float = 0.5  # for all the sends without the recipient's access key
    node_queue_max_bytes: int = 4 << 30
    max_payload: int = 64 << 10
    max_one_time_keys: int = 200
    keys_low: int = 10
    push_retry_ms: int = 30_000
    push_retry_max_ms: int = 15 * MINUTE
    fetch_max: int = 100
    requests_per_s: float = 20.0  # per identity and per route
    request_burst: float = 200.0
    lookups_per_min: float = 30.0  # per route: one-time keys are precious
    sealed_sends_per_min: float = 600.0  # per route
    certificate_ttl_ms: int = 7 * DAY  # how long a sender certificate is valid
    max_key_packages: int = 100  # kept per user, the last resort besides
    group_max_members: int = 1000
    # a commit and its welcome together: what a request of runner.MAX_REQUEST_BYTES holds
    # besides its largest header (256 names added, 256 removed: under 144 KiB)
    max_commit_bytes: int = 880 << 10


@dataclass(frozen=True)
class Outgoing:
    """A signed answer or push, for the client behind `tag` (a route), framed with message
    id `frame_id` (docs/PROTOCOL.md: how the client tells the node's frames from others)."""

    tag: bytes
    message: bytes
    frame_id: bytes


@dataclass
class _Context:
    request: wire.Request
    tag: bytes
    now: int
    user: User | None
    digest: bytes = b""  # of the request's bytes (the answer cache's)
    out: list[Outgoing] = field(default_factory=list)
    result: str = "ok"  # for the metrics: what came of the request
    relayed: list[float] = field(default_factory=list)  # seconds, of acknowledged messages
    held: Held | None = None  # a group watch held, answered later
    posted: list[bytes] = field(default_factory=list)  # groups with a new entry


@dataclass
class _Tally:
    """What a batch counts, merged into the service's metrics (and logged) once it
    commits."""

    timer: Callable[[], float]  # the service's (seconds)
    handled: list[tuple[str, str, float]] = field(default_factory=list)  # kind, result, ms
    relayed: list[float] = field(default_factory=list)  # seconds, of acknowledged messages
    held: list[Held] = field(default_factory=list)  # group watches held
    posted: list[bytes] = field(default_factory=list)  # groups with a new entry
    started: float = 0.0  # when the request being handled began (`timer`)

    def begin(self) -> None:
        self.started = self.timer()

    def count(self, kind: str, result: str) -> None:
        self.handled.append((kind, result, (self.timer() - self.started) * 1000))


class NodeService:
    def __init__(
        self,
        identity: "_native.Identity",
        store: NodeStore,
        config: NodeConfig | None = None,
        frontends: frozenset[int] | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ):
        """`frontends`: the ids of this process's frontends (None: every route's is), the
        others' pushes are left to the process holding them (`NodeStore.wake`); `timer`
        (seconds) times each request for the metrics and the request log."""
        self.identity = identity
        self.key = identity.signing_public
        self.store = store
        self.config = config = config or NodeConfig()
        self.frontends = frontends
        self.timer = timer
        self.challenges = Challenges(
            challenge_key(identity.secret_bytes()), config.challenge_ttl_ms
        )
        self.difficulty = Difficulty(
            config.pow_difficulty, config.pow_free_registrations, config.pow_half_life_ms
        )
        # per route: a route is one frontend's, so one process's (the per-identity rate
        # is the store's, shared by every process)
        self.lookups = RateLimiter(config.lookups_per_min / 60, config.lookups_per_min)
        self.sealed_sends = RateLimiter(
            config.sealed_sends_per_min / 60, config.sealed_sends_per_min
        )
        # The signed frontend descriptor, from the runner once every frontend is connected.
        self.descriptor: bytes | None = None
        self.directory: NodeDirectory | None = None  # the nodes listed (`--directory`)
        self.counts: Counter[tuple[str, str]] = Counter()  # (kind, result)
        self.relay_seconds = Histogram()
        self._handlers: dict[Kind, Callable[[_Context], Awaitable[None]]] = {
            Kind.REGISTER_BEGIN: self._register_begin,
            Kind.REGISTER_FINISH: self._register_finish,
            Kind.PUBLISH_KEYS: self._publish_keys,
            Kind.FETCH: self._fetch,
            Kind.ACK: self._ack,
            Kind.REFRESH: self._refresh,
            Kind.UNREGISTER: self._unregister,
            Kind.SET_ACCESS: self._set_access,
            Kind.CERTIFY: self._certify,
            Kind.SEALED_SEND: self._sealed_send,
            Kind.LOOKUP: self._lookup,
            Kind.FRONTENDS: self._frontends,
            Kind.DIRECTORY: self._directory,
        }
        self.groups = GroupHandlers(self)
        self._handlers.update(self.groups.handlers())

    # --- entry points ---------------------------------------------------------------

    async def known_tag(self, tag: bytes) -> bool:
        """Whether `tag` (a route) is a registered user's current one."""
        return await self.store.tag_registered(tag)

    async def handle_batch(self, items: list[tuple[bytes, bytes]], now: int) -> list[Outgoing]:
        """Handles requests `(bytes, route)` that arrived together, each already within
        its route's rate (`Intake`): one batch signature check, one transaction, run
        again whole if another process's transaction stood in the way (`StoreConflict`).
        Returns what to send, once committed."""
        decoded: list[tuple[wire.Request, bytes]] = []
        out: list[Outgoing] = []
        undecodable = _Tally(self.timer)
        undecodable.begin()
        for data, tag in items:
            try:
                decoded.append((wire.decode_request(data), tag))
            except wire.WireError as e:
                out += self._refuse_undecodable(data, tag, str(e), now)
                undecodable.count("unknown", "bad_request")
        self._handled(undecodable.handled)
        if not decoded:
            return out
        verdicts = wire.verify_requests(self.key, [request for request, _ in decoded])
        watches = self.groups.watches
        for _attempt in range(BATCH_ATTEMPTS):
            tally, answers, held = _Tally(self.timer), [], []
            watches.begin()
            try:
                async with self.store.transaction():
                    await self._preload(decoded, verdicts)
                    for (request, tag), valid in zip(decoded, verdicts, strict=True):
                        answers += await self._handle(request, tag, valid, now, tally)
                held = tally.held
            except StoreConflict:
                log.info("a batch met another process's transaction; running it again")
                continue
            finally:
                watches.held(held)  # once committed (none if not)
            for group_id in tally.posted:
                watches.posted(group_id)
            self._handled(tally.handled)
            for seconds in tally.relayed:
                self.relay_seconds.observe(seconds)
            return out + answers
        conflicts = _Tally(self.timer, started=undecodable.started)  # timed from the start
        for request, _ in decoded:
            conflicts.count(request.kind.name.lower(), "conflict")
        self._handled(conflicts.handled)
        return out + [
            self._error(request, tag, ErrorCode.BUSY, "the node is busy; try again", now)
            for request, tag in decoded
        ]

    async def _preload(
        self, decoded: list[tuple[wire.Request, bytes]], verdicts: list[bool]
    ) -> None:
        """Reads at once what the batch's requests will ask of the store: their ids'
        answers, their requesters, the users they name (with their queues) and whether
        the messages they send are queued already."""
        ids, identities, keys, messages = set(), set(), set(), set()
        for (request, _), valid in zip(decoded, verdicts, strict=True):
            if not valid:
                continue
            ids.add(request.request_id)
            if not request.kind.is_anonymous:
                identities.add(request.requester)
            field = NAMED.get(request.kind)
            if field is not None:
                try:
                    key = self.store.names.name(names.normalize(request.body[field]))
                except names.InvalidName:
                    continue  # refused when its turn comes
                keys.add(key)
                if request.kind is Kind.SEALED_SEND:
                    messages.add((key, request.body["message_id"]))
        await self.store.preload(ids, identities, keys, messages)

    async def _handle(
        self, request: wire.Request, tag: bytes, valid: bool, now: int, tally: _Tally
    ) -> list[Outgoing]:
        kind = request.kind.name.lower()
        tally.begin()
        try:
            if not valid:
                raise Refused(ErrorCode.BAD_SIGNATURE, "the request's signature does not verify")
            self._check_fresh(request, now)
            digest = hashlib.sha256(request.signed + request.signature).digest()
            seen = await self.store.seen(request.request_id)
            if seen is None:
                if not request.kind.is_anonymous and not await self.store.take_token(
                    request.requester,
                    self.config.requests_per_s / 1000,
                    self.config.request_burst,
                    now,
                ):
                    raise Refused(ErrorCode.RATE_LIMITED, "too many requests; slow down")
                async with self.store.savepoint():
                    return await self._run(request, tag, digest, now, tally)
            return self._again(request, tag, digest, *seen, tally)
        except Refused as refusal:
            tally.count(kind, refusal.code.name.lower())
            return [self._error(request, tag, refusal.code, refusal.detail, now)]
        except (StoreConflict, StoreUnavailable):
            raise  # the whole batch's
        except Exception:
            log.exception("failed to handle a %s request", kind)
            tally.count(kind, "internal")
            return [self._error(request, tag, ErrorCode.BUSY, "internal error", now)]

    async def _run(
        self, request: wire.Request, tag: bytes, digest: bytes, now: int, tally: _Tally
    ) -> list[Outgoing]:
        """A request not seen before, within its identity's rate, in its savepoint."""
        user = (
            None
            if request.kind.is_anonymous
            else await self.store.user_by_identity(request.requester)
        )
        ctx = _Context(request, tag, now, user, digest)
        if ctx.user is not None:
            await self._note_sender_tag(ctx, ctx.user)
        await self._handlers[request.kind](ctx)
        if ctx.held is not None:  # answered later: nothing to remember yet
            tally.held.append(ctx.held)
            tally.count(request.kind.name.lower(), "held")
            return ctx.out
        [answer] = [o for o in ctx.out if o.frame_id == wire.answer_frame_id(request.request_id)]
        # read ahead as unseen: another process's answer meanwhile is a conflict (the
        # batch runs again and finds that answer), never a second one
        expires = now + 2 * self.config.freshness_ms
        await self.store.remember(request.request_id, digest, answer.message, expires)
        tally.count(request.kind.name.lower(), ctx.result)
        tally.relayed += ctx.relayed
        tally.posted += ctx.posted
        return ctx.out

    def _handled(self, handled: list[tuple[str, str, float]]) -> None:
        """Counts requests handled (committed) for the metrics and logs each at -v: its
        kind, result and duration, nothing of who or what."""
        for kind, result, ms in handled:
            self.counts[(kind, result)] += 1
            log.info("request %s: %s in %.1f ms", kind, result, ms)

    def _error(
        self, request: wire.Request, tag: bytes, code: ErrorCode, detail: str, now: int
    ) -> Outgoing:
        return self._answer(
            request.requester,
            tag,
            request.request_id,
            Kind.ERROR,
            {"code": code, "detail": detail},
            now,
        )

    def _again(
        self,
        request: wire.Request,
        tag: bytes,
        digest: bytes,
        seen_digest: bytes | None,
        answer: bytes | None,
        tally: _Tally,
    ) -> list[Outgoing]:
        """A request id seen before: the same request (a retry, maybe through another
        frontend) gets its answer again and changes nothing; other bytes are a replay."""
        if answer is None or not hmac.compare_digest(digest, seen_digest or b""):
            raise Refused(ErrorCode.REPLAYED, "this request was already handled")
        tally.count(request.kind.name.lower(), "again")
        return [Outgoing(tag, answer, wire.answer_frame_id(request.request_id))]

    def _refuse_undecodable(self, data: bytes, tag: bytes, why: str, now: int) -> list[Outgoing]:
        """Answers a request that does not decode, if its header is whole: signed for the
        requester it names, or for nobody if its kind is an anonymous one."""
        if len(data) < 2 or data[0] != wire.VERSION:
            return []
        if 0x20 <= data[1] < 0x40:
            if len(data) < 2 + 8 + 16:
                return []
            requester, request_id = wire.ANONYMOUS, bytes(data[10:26])
        elif len(data) >= 2 + 32 + 8 + 16:
            requester, request_id = bytes(data[2:34]), bytes(data[42:58])
        else:
            return []
        return [
            self._answer(
                requester,
                tag,
                request_id,
                Kind.ERROR,
                {"code": ErrorCode.BAD_REQUEST, "detail": why[:200]},
                now,
            )
        ]

    async def due_pushes(self, now: int, limit: int = 500) -> list[Outgoing]:
        """Messages whose recipients (homed on this process's frontends) have not
        acknowledged them yet, pushed again."""
        async with self.store.transaction():
            messages = await self.store.due_pushes(now, limit, self.frontends)
            deliveries = await self.store.groups.due_pushes(now, limit, self.frontends)
            return await self._push(messages, now) + await self.groups.push(deliveries, now)

    async def maintain(self, now: int) -> tuple[int, int]:
        """Drops expired messages (and group entries), forgotten request ids and full
        rate buckets, and folds the queued total's shards: (messages, ids)."""
        before = now - self.config.retention_ms
        async with self.store.transaction():
            expired = await self.store.expire(before) + await self.store.groups.expire(before, now)
            forgotten = await self.store.forget_seen(now)
            await self.store.forget_full_buckets(
                now, self.config.requests_per_s / 1000, self.config.request_burst
            )
            await self.store.totals.fold()
        return expired, forgotten

    # --- checks ---------------------------------------------------------------------

    def _check_fresh(self, request: wire.Request, now: int) -> None:
        window = self.config.freshness_ms
        if abs(now - request.timestamp) > window:
            raise Refused(
                ErrorCode.STALE,
                f"request time is {request.timestamp - now:+d} ms "
                f"from the node's clock (now {now})",
            )

    async def _note_sender_tag(self, ctx: _Context, user: User) -> None:
        """A fresh, authentic request from `user`: their messages go to this tag (and
        its frontend's process) now (unless the request is refused: then this is rolled
        back with the rest)."""
        if user.sender_tag != ctx.tag:
            ctx.user = await self.store.set_sender_tag(user.key, ctx.tag, ctx.now)
            await self.store.reschedule(user.key, ctx.now)
            await self.store.groups.reschedule(user.key, ctx.now)

    def _registered(self, ctx: _Context) -> User:
        if ctx.user is None:
            raise Refused(ErrorCode.NOT_REGISTERED, "this key is not registered here")
        return ctx.user

    def _check_keys(self, identity: bytes, keys, *signed: tuple[str, bytes, bytes]) -> None:
        """Checks in one batch the signatures of one-time keys and a fallback (the last of
        `keys`, or None) and of `signed` (label, key, signature), all by `identity`."""
        items = [
            (identity, "one-time-key", k.key_id.to_bytes(8, "big") + k.key, k.signature)
            for k in keys[:-1]
        ]
        fallback = keys[-1]
        if fallback is not None:
            items.append(
                (
                    identity,
                    "fallback-key",
                    fallback.key_id.to_bytes(8, "big") + fallback.key,
                    fallback.signature,
                )
            )
        items += [(identity, label, key, signature) for label, key, signature in signed]
        if not all(_native.verify_batch(items)):
            raise Refused(ErrorCode.BAD_SIGNATURE, "a key is not signed by the identity key")

    # --- answers --------------------------------------------------------------------

    def _answer(
        self,
        requester: bytes,
        tag: bytes,
        in_reply_to: bytes | None,
        kind: Kind,
        body: dict,
        now: int,
        push_key: bytes | None = None,
    ) -> Outgoing:
        """An answer to `in_reply_to`, or a push (under the recipient's `push_key`, if they
        gave one: else its frames are told from a stranger's only by their signature)."""
        if in_reply_to is not None:
            frame_id = wire.answer_frame_id(in_reply_to)
        else:
            frame_id = wire.push_frame_id(push_key) if push_key else os.urandom(16)
        return Outgoing(
            tag,
            wire.encode_answer(self.identity, requester, kind, body, now, in_reply_to),
            frame_id,
        )

    def _ask_work(self, ctx: _Context, bits: int) -> None:
        """Answers that the request needs `bits` of proof of work (a new request)."""
        ctx.result = "pow_required"
        self._reply(ctx, Kind.POW_REQUIRED, difficulty=bits)

    def _reply(self, ctx: _Context, kind: Kind, **body) -> None:
        ctx.out.append(
            self._answer(
                ctx.request.requester, ctx.tag, ctx.request.request_id, kind, body, ctx.now
            )
        )

    def _holds(self, tag: bytes) -> bool:
        """Whether this process holds the frontend of route `tag`."""
        return self.frontends is None or split_route(tag)[0] in self.frontends

    async def _local(self, tag: bytes) -> bool:
        """`_holds(tag)`; if not, the process that does is woken to push (from the queue,
        where the push waits)."""
        if self._holds(tag):
            return True
        await self.store.wake(split_route(tag)[0])
        return False

    async def _push(
        self, queued: list[Queued], now: int, user: User | None = None
    ) -> list[Outgoing]:
        """Pushes `queued` (all for `user`, if given) to their recipients' routes."""
        out, pushed = [], []
        by_user: dict[bytes, User | None] = {user.key: user} if user else {}
        for message in queued:
            if message.recipient not in by_user:
                by_user[message.recipient] = await self.store.user(message.recipient)
            to = by_user[message.recipient]
            if to is None or to.sender_tag is None or not await self._local(to.sender_tag):
                continue
            out.append(
                self._deliver(to, message.message_id, message.received, message.payload, now)
            )
            pushed.append((message.seq, now + self._retry(message.pushes)))
        if pushed:
            await self.store.pushed(pushed)
        return out

    def _deliver(
        self, user: User, message_id: bytes, received: int, payload: bytes, now: int
    ) -> Outgoing:
        """A message pushed to `user`'s route."""
        assert user.sender_tag is not None
        body = {"message_id": message_id, "sent": received, "payload": payload}
        return self._answer(
            user.identity, user.sender_tag, None, Kind.DELIVER, body, now, user.push_key
        )

    def _retry(self, pushes: int) -> int:
        """Milliseconds until a push is made again, after `pushes` of it."""
        return min(self.config.push_retry_ms << min(pushes, 10), self.config.push_retry_max_ms)

    # --- operations -----------------------------------------------------------------

    def _name(self, text: str) -> str:
        try:
            return names.normalize(text)
        except names.InvalidName as e:
            raise Refused(ErrorCode.INVALID_NAME, str(e)) from None

    async def _recent_registrations(self, now: int) -> float:
        """The node's recent registrations (all its processes'), decayed to `now`."""
        if not self.config.pow_difficulty:
            return 0.0  # no work asked: nothing to read
        return self.difficulty.recent(await self.store.node_state(REGISTRATIONS), now)

    async def _user_named(self, text: str) -> tuple[str, User]:
        username = self._name(text)
        user = await self.store.user(self.store.names.name(username))
        if user is None:
            raise Refused(ErrorCode.NOT_FOUND, f"no user '{username}' here")
        return username, user

    async def _register_begin(self, ctx: _Context) -> None:
        body, requester = ctx.request.body, ctx.request.requester
        username = self._name(body["username"])
        if ctx.user is not None:
            if ctx.user.key == self.store.names.name(username):
                return self._reply(ctx, Kind.REGISTERED, username=username)  # a retry
            raise Refused(
                ErrorCode.NAME_TAKEN, "this key is already registered here under another name"
            )
        if await self.store.skeleton_taken(names.skeleton(username)):
            raise Refused(
                ErrorCode.NAME_TAKEN, f"'{username}' (or a name that looks like it) is taken"
            )
        bundle: wire.Bundle = body["bundle"]
        self._check_keys(
            requester,
            (*bundle.one_time_keys, bundle.fallback),
            ("account-key", bundle.account_key, bundle.account_signature),
            ("agreement-key", bundle.identity_agreement, bundle.agreement_signature),
        )
        difficulty = self.difficulty.bits(await self._recent_registrations(ctx.now))
        challenge, expires = self.challenges.issue(username, requester, bundle, difficulty, ctx.now)
        self._reply(
            ctx, Kind.CHALLENGE, challenge=challenge, difficulty=difficulty, expires=expires
        )

    async def _register_finish(self, ctx: _Context) -> None:
        """The client sends back what `register_begin` was given and answered; the
        challenge's MAC vouches for all of it (the bundle's signatures were checked then)."""
        body, requester = ctx.request.body, ctx.request.requester
        username = self._name(body["username"])
        if ctx.user is not None and ctx.user.key == self.store.names.name(username):
            return self._reply(ctx, Kind.REGISTERED, username=username)  # a retry
        challenge, bundle, difficulty = body["challenge"], body["bundle"], body["difficulty"]
        if not self.challenges.valid(
            challenge, username, requester, bundle, difficulty, body["expires"], ctx.now
        ):
            raise Refused(ErrorCode.CHALLENGE_FAILED, "unknown or expired challenge")
        if not pow.check(
            pow.registration(challenge, username, requester), body["proof_of_work"], difficulty
        ):
            raise Refused(ErrorCode.CHALLENGE_FAILED, "the proof of work is wrong")
        if not await self.store.first_sight(challenge, body["expires"]):  # spent with the user
            raise Refused(ErrorCode.CHALLENGE_FAILED, "this challenge was used already")
        if (
            ctx.user is not None
            or await self.store.skeleton_taken(names.skeleton(username))
            or await self.store.add_user(username, requester, bundle, ctx.tag, ctx.now) is None
        ):
            raise Refused(ErrorCode.NAME_TAKEN, f"'{username}' was taken meanwhile")
        if self.config.pow_difficulty:  # (else nothing reads the rate)
            held = await self.store.held_node_state(REGISTRATIONS, ctx.now)
            recent = self.difficulty.recent(held, ctx.now)
            await self.store.set_node_state(REGISTRATIONS, recent + 1, ctx.now)
        self._reply(ctx, Kind.REGISTERED, username=username)

    async def _lookup(self, ctx: _Context) -> None:
        """Anonymous: one one-time key per lookup, paid for with work that grows as the
        pool runs low (`lookup_difficulty`); with none left, the fallback key only."""
        if not self.lookups.allow(ctx.tag, ctx.now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many lookups; slow down")
        username, user = await self._user_named(ctx.request.body["username"])
        left = await self.store.count_one_time_keys(user.key)
        one_time = None
        if left:
            bits = lookup_difficulty(left)
            # bound to the name as sent: the client solves for the bytes it sends
            bound = pow.lookup(self.key, ctx.request.request_id, ctx.request.body["username"])
            if not pow.check(bound, ctx.request.body["proof_of_work"], bits):
                return self._ask_work(ctx, bits)
            one_time = await self.store.take_one_time_key(user.key)
        bundle = wire.Bundle(
            user.agreement,
            user.agreement_signature or bytes(64),  # registered before: cannot be sealed to
            user.account_key,
            user.account_signature,
            (one_time,) if one_time else (),
            user.fallback,
        )
        self._reply(
            ctx,
            Kind.BUNDLE,
            username=username,
            identity=user.identity,
            bundle=bundle,
            strangers=user.strangers,
        )
        if one_time is not None and left - 1 < self.config.keys_low and user.sender_tag:
            ctx.out.append(
                self._answer(
                    user.identity,
                    user.sender_tag,
                    None,
                    Kind.KEYS_LOW,
                    {"one_time_keys_left": left - 1},
                    ctx.now,
                    user.push_key,
                )
            )

    async def _publish_keys(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        body = ctx.request.body
        keys, fallback, agreement = (
            body["one_time_keys"],
            body["fallback"],
            body["agreement_signature"],
        )
        self._check_keys(
            user.identity,
            (*keys, fallback),
            *([("agreement-key", user.agreement, agreement)] if agreement else []),
        )
        if (
            await self.store.count_one_time_keys(user.key) + len(keys)
            > self.config.max_one_time_keys
        ):
            raise Refused(
                ErrorCode.KEYS_FULL,
                f"at most {self.config.max_one_time_keys} one-time keys are kept",
            )
        await self.store.add_one_time_keys(user.key, keys)
        if fallback is not None:
            await self.store.set_fallback(user.key, fallback)
        if agreement is not None:
            await self.store.set_agreement_signature(user.key, agreement)
        self._reply(
            ctx,
            Kind.KEYS_PUBLISHED,
            one_time_keys_left=await self.store.count_one_time_keys(user.key),
        )

    async def _set_access(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        strangers = ctx.request.body["strangers"]
        if not (0 <= strangers <= pow.MAX_DIFFICULTY or strangers == wire.STRANGERS_DENY):
            raise Refused(
                ErrorCode.BAD_REQUEST,
                f"strangers is 0 to {pow.MAX_DIFFICULTY} bits or {wire.STRANGERS_DENY} (deny)",
            )
        await self.store.set_access(user.key, ctx.request.body["access_verifier"], strangers)
        self._reply(ctx, Kind.ACCESS_SET)

    async def _certify(self, ctx: _Context) -> None:
        """A sender certificate: the node's word that the user's name is their identity's,
        which their sealed messages carry. Stateless: nothing is stored. The user names
        themselves (the node keeps only the name's keyed hash)."""
        user = self._registered(ctx)
        username = self._name(ctx.request.body["username"])
        if not hmac.compare_digest(self.store.names.name(username), user.key):
            raise Refused(ErrorCode.BAD_REQUEST, "a certificate is for the account's own name")
        expires = ctx.now + self.config.certificate_ttl_ms
        certificate = wire.encode_certificate(self.identity, username, user.identity, expires)
        self._reply(ctx, Kind.CERTIFIED, certificate=certificate)

    async def _sealed_send(self, ctx: _Context) -> None:
        """Anonymous: the recipient's access key makes it a contact's send; without it, the
        recipient's policy for strangers decides (free, a proof of work, or none)."""
        if not self.sealed_sends.allow(ctx.tag, ctx.now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many messages; slow down")
        body = ctx.request.body
        username, recipient = await self._user_named(body["recipient"])
        payload, message_id = body["payload"], body["message_id"]
        if len(payload) > self.config.max_payload:
            raise Refused(
                ErrorCode.TOO_LARGE, f"messages are at most {self.config.max_payload} bytes"
            )
        stranger = not self._has_access(recipient, body["access_key"])
        if stranger:
            bits = recipient.strangers
            if bits == wire.STRANGERS_DENY:
                raise Refused(
                    ErrorCode.FORBIDDEN, f"{username} takes messages from their contacts only"
                )
            bound = pow.send(self.key, body["recipient"], message_id)  # the name as sent
            if not pow.check(bound, body["proof_of_work"], bits):
                return self._ask_work(ctx, bits)
        tag = recipient.sender_tag
        local = tag is not None and self._holds(tag)  # pushed at once, queued as pushed
        pushed_until = ctx.now + self._retry(0) if local else None
        if await self.store.enqueue(  # else a retry: accepted
            recipient.key, message_id, payload, ctx.now, stranger, pushed_until
        ):
            await self._check_room(username, recipient.key, stranger, len(payload))
            if local:
                ctx.out.append(self._deliver(recipient, message_id, ctx.now, payload, ctx.now))
            elif tag is not None:
                await self.store.wake(split_route(tag)[0])
        self._reply(ctx, Kind.ACCEPTED, message_id=message_id)

    @staticmethod
    def _has_access(recipient: User, access_key: bytes | None) -> bool:
        return (
            access_key is not None
            and recipient.access_verifier is not None
            and hmac.compare_digest(wire.access_verifier(access_key), recipient.access_verifier)
        )

    async def _check_room(self, username: str, key: bytes, stranger: bool, size: int) -> None:
        """Refuses the message of `size` bytes just queued for `key` (rolled back with the
        request) if there was no room for it."""
        queued, from_strangers = await self.store.queue_sizes(key)
        room = quota.Room(
            (queued[0] - 1, queued[1] - size),
            (from_strangers[0] - 1, from_strangers[1] - size) if stranger else None,
            await self.store.queued_bytes() - size,
        )
        refused = quota.refusal(self.config, username, size, room)
        if refused is not None:
            raise Refused(*refused)

    async def _frontends(self, ctx: _Context) -> None:
        if self.descriptor is None:
            raise Refused(ErrorCode.BUSY, "the node's frontends are not all connected yet")
        self._reply(ctx, Kind.FRONTENDS_ARE, descriptor=self.descriptor)

    async def _directory(self, ctx: _Context) -> None:
        if self.directory is None:
            raise Refused(ErrorCode.NOT_FOUND, "this node lists no other nodes")
        self._reply(ctx, Kind.DIRECTORY_IS, directory=self.directory.signed(ctx.now))

    async def _fetch(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        limit = min(ctx.request.body["max"], self.config.fetch_max)
        pushes = await self._pending(user, limit, ctx.now)
        queued = await self._queue_size(user)
        self._reply(ctx, Kind.FETCHED, pushed=len(pushes), queued=queued)
        ctx.out += pushes

    async def _ack(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        message_ids = ctx.request.body["message_ids"]
        received = await self.store.ack(user.key, message_ids)
        received += await self.store.groups.ack(user.key, message_ids, ctx.now)
        ctx.relayed += [(ctx.now - when) / 1000 for when in received]
        self._reply(ctx, Kind.ACKED, deleted=len(received))

    async def _refresh(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        push_key = ctx.request.body["push_key"]
        await self.store.set_push_key(user.key, push_key)
        # What waits goes under the key just given (the client may hold several links).
        pushes = await self._pending(
            replace(user, push_key=push_key), self.config.fetch_max, ctx.now
        )
        self._reply(ctx, Kind.REFRESHED, queued=await self._queue_size(user))
        ctx.out += pushes

    async def _pending(self, user: User, limit: int, now: int) -> list[Outgoing]:
        """Pushes of what waits for `user`, the pair queue first, at most `limit`."""
        pushes = await self._push(await self.store.queued(user.key, limit), now, user)
        return pushes + await self.groups.push(
            await self.store.groups.queued(user.key, limit - len(pushes)), now
        )

    async def _queue_size(self, user: User) -> int:
        pairs, _ = await self.store.queue_size(user.key)
        return pairs + await self.store.groups.queue_size(user.key)

    async def _unregister(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        if self.store.names.name(self._name(ctx.request.body["username"])) != user.key:
            raise Refused(ErrorCode.BAD_REQUEST, "name the account you unregister")
        await self.store.groups.forget_user(user.key, ctx.now)
        await self.store.delete_user(user.key)
        self._reply(ctx, Kind.UNREGISTERED)
