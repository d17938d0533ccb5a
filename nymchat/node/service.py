"""The node's request handling, sans-I/O: decoded requests and the time go in, signed
answers and pushes (each for a sender tag) come out. Storage is the one dependency; the
caller commits a whole batch before sending anything, so no answer ever promises what a
crash could take back."""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field

from nymchat import _native
from nymchat.node import quota
from nymchat.node.limits import RateLimiter
from nymchat.node.metrics import Histogram
from nymchat.node.registration import Challenges, Difficulty, challenge_key
from nymchat.node.store import NodeStore, Queued, User
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import ErrorCode, Kind

log = logging.getLogger(__name__)
MINUTE, DAY = 60_000, 86_400_000


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
    queue_sender_share: float = 0.25  # of a recipient's queue, for one sender
    queue_stranger_share: float = 0.5  # for all the senders the recipient does not know
    node_queue_max_bytes: int = 4 << 30
    max_payload: int = 64 << 10
    max_one_time_keys: int = 200
    keys_low: int = 10
    push_retry_ms: int = 30_000
    push_retry_max_ms: int = 15 * MINUTE
    fetch_max: int = 100
    requests_per_s: float = 20.0  # per identity and per sender tag
    request_burst: float = 200.0
    lookups_per_min: float = 30.0  # per identity and per tag: one-time keys are precious
    lookups_unregistered_per_min: float = 60.0  # by all keys not registered here together


@dataclass(frozen=True)
class Outgoing:
    """A signed answer or push, for the client behind `tag`, framed with message id
    `frame_id` (docs/PROTOCOL.md: how the client tells the node's frames from others)."""

    tag: bytes
    message: bytes
    frame_id: bytes


class Refused(Exception):
    def __init__(self, code: ErrorCode, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass
class _Context:
    request: wire.Request
    tag: bytes
    now: int
    user: User | None
    out: list[Outgoing] = field(default_factory=list)


class NodeService:
    def __init__(
        self, identity: "_native.Identity", store: NodeStore, config: NodeConfig | None = None
    ):
        self.identity = identity
        self.key = identity.signing_public
        self.store = store
        self.config = config = config or NodeConfig()
        self.challenges = Challenges(
            challenge_key(identity.secret_bytes()), config.challenge_ttl_ms
        )
        self.difficulty = Difficulty(
            config.pow_difficulty, config.pow_free_registrations, config.pow_half_life_ms
        )
        self.per_identity = RateLimiter(config.requests_per_s, config.request_burst)
        self.lookups = RateLimiter(config.lookups_per_min / 60, config.lookups_per_min)
        self.tag_lookups = RateLimiter(config.lookups_per_min / 60, config.lookups_per_min)
        self.unregistered_lookups = RateLimiter(
            config.lookups_unregistered_per_min / 60,
            config.lookups_unregistered_per_min,
            max_keys=1,
        )
        self.known = quota.KnownSenders(store, identity.secret_bytes(), config.retention_ms)
        self.counts: Counter[tuple[str, str]] = Counter()  # (kind, result)
        self.relay_seconds = Histogram()
        self._handlers = {
            Kind.REGISTER_BEGIN: self._register_begin,
            Kind.REGISTER_FINISH: self._register_finish,
            Kind.LOOKUP: self._lookup,
            Kind.PUBLISH_KEYS: self._publish_keys,
            Kind.SEND: self._send,
            Kind.FETCH: self._fetch,
            Kind.ACK: self._ack,
            Kind.REFRESH: self._refresh,
            Kind.UNREGISTER: self._unregister,
        }

    # --- entry points ---------------------------------------------------------------

    def known_tag(self, tag: bytes) -> bool:
        """Whether `tag` is a registered user's current sender tag."""
        return self.store.tag_registered(tag)

    def handle_batch(self, items: list[tuple[bytes, bytes]], now: int) -> list[Outgoing]:
        """Handles requests `(bytes, sender tag)` that arrived together, each already
        within its tag's rate (`Intake`): one batch signature check, one transaction.
        Returns what to send, once committed."""
        decoded: list[tuple[wire.Request, bytes]] = []
        out: list[Outgoing] = []
        for data, tag in items:
            try:
                decoded.append((wire.decode_request(data), tag))
            except wire.WireError as e:
                self.counts[("unknown", "bad_request")] += 1
                out += self._refuse_undecodable(data, tag, str(e), now)
        if not decoded:
            return out
        verdicts = wire.verify_requests(self.key, [request for request, _ in decoded])
        with self.store.transaction():
            for (request, tag), valid in zip(decoded, verdicts, strict=True):
                out += self._handle(request, tag, valid, now)
        return out

    def _handle(self, request: wire.Request, tag: bytes, valid: bool, now: int) -> list[Outgoing]:
        kind = request.kind.name.lower()
        self.store.db.execute("SAVEPOINT request")
        try:
            if not valid:
                raise Refused(ErrorCode.BAD_SIGNATURE, "the request's signature does not verify")
            self._check_fresh(request, now)
            ctx = _Context(request, tag, now, self.store.user_by_identity(request.requester))
            if ctx.user is not None:
                self._note_sender_tag(ctx, ctx.user)
            self._handlers[request.kind](ctx)
        except Refused as refusal:
            self.store.db.execute("ROLLBACK TO request")
            self.counts[(kind, refusal.code.name.lower())] += 1
            return [
                self._answer(
                    request.requester,
                    tag,
                    request.request_id,
                    Kind.ERROR,
                    {"code": refusal.code, "detail": refusal.detail},
                    now,
                )
            ]
        except Exception:
            self.store.db.execute("ROLLBACK TO request")
            log.exception("failed to handle a %s request", kind)
            self.counts[(kind, "internal")] += 1
            return [
                self._answer(
                    request.requester,
                    tag,
                    request.request_id,
                    Kind.ERROR,
                    {"code": ErrorCode.BUSY, "detail": "internal error"},
                    now,
                )
            ]
        finally:
            self.store.db.execute("RELEASE request")
        self.counts[(kind, "ok")] += 1
        return ctx.out

    def _refuse_undecodable(self, data: bytes, tag: bytes, why: str, now: int) -> list[Outgoing]:
        """Answers a request that does not decode, if its header names a requester."""
        if len(data) < 2 + 32 + 8 + 16 or data[0] != wire.VERSION:
            return []
        requester, request_id = bytes(data[2:34]), bytes(data[42:58])
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

    def due_pushes(self, now: int, limit: int = 500) -> list[Outgoing]:
        """Messages whose recipients have not acknowledged them yet, pushed again."""
        with self.store.transaction():
            return self._push(self.store.due_pushes(now, limit), now)

    def maintain(self, now: int) -> tuple[int, int]:
        """Drops expired messages and forgotten request ids: (messages, ids)."""
        with self.store.transaction():
            self.known.expire(now)
            return (self.store.expire(now - self.config.retention_ms), self.store.forget_seen(now))

    # --- checks ---------------------------------------------------------------------

    def _check_fresh(self, request: wire.Request, now: int) -> None:
        window = self.config.freshness_ms
        if abs(now - request.timestamp) > window:
            raise Refused(
                ErrorCode.STALE,
                f"request time is {request.timestamp - now:+d} ms "
                f"from the node's clock (now {now})",
            )
        if not self.store.first_sight(request.request_id, now + 2 * window):
            raise Refused(ErrorCode.REPLAYED, "this request was already handled")
        if not self.per_identity.allow(request.requester, now):
            raise Refused(ErrorCode.RATE_LIMITED, "too many requests; slow down")

    def _note_sender_tag(self, ctx: _Context, user: User) -> None:
        """A fresh, authentic request from `user`: their messages go to this tag now
        (unless the request is refused: then this is rolled back with the rest)."""
        if user.sender_tag != ctx.tag:
            self.store.set_sender_tag(user.username, ctx.tag, ctx.now)
            self.store.reschedule(user.username, ctx.now)
            ctx.user = self.store.user(user.username)

    def _registered(self, ctx: _Context) -> User:
        if ctx.user is None:
            raise Refused(ErrorCode.NOT_REGISTERED, "this key is not registered here")
        return ctx.user

    def _check_keys(self, identity: bytes, keys, account=None) -> None:
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
        if account is not None:
            items.append((identity, "account-key", account[0], account[1]))
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

    def _reply(self, ctx: _Context, kind: Kind, **body) -> None:
        ctx.out.append(
            self._answer(
                ctx.request.requester, ctx.tag, ctx.request.request_id, kind, body, ctx.now
            )
        )

    def _push(self, queued: list[Queued], now: int) -> list[Outgoing]:
        out, handed = [], []
        by_user: dict[str, User | None] = {}
        for message in queued:
            user = by_user.get(message.recipient) or self.store.user(message.recipient)
            by_user[message.recipient] = user
            if user is None or user.sender_tag is None:
                continue
            out.append(
                self._answer(
                    user.identity,
                    user.sender_tag,
                    None,
                    Kind.DELIVER,
                    {
                        "message_id": message.message_id,
                        "sender": message.sender,
                        "sent": message.received,
                        "payload": message.payload,
                    },
                    now,
                    user.push_key,
                )
            )
            retry = min(
                self.config.push_retry_ms << min(message.pushes, 10), self.config.push_retry_max_ms
            )
            self.store.pushed([message.seq], now + retry)
            handed.append((message.recipient, message.sender))
        self.known.pushed(handed, now)
        return out

    # --- operations -----------------------------------------------------------------

    def _name(self, text: str) -> str:
        try:
            return names.normalize(text)
        except names.InvalidName as e:
            raise Refused(ErrorCode.INVALID_NAME, str(e)) from None

    def _register_begin(self, ctx: _Context) -> None:
        body, requester = ctx.request.body, ctx.request.requester
        username = self._name(body["username"])
        if ctx.user is not None:
            if ctx.user.username == username:
                return self._reply(ctx, Kind.REGISTERED, username=username)  # a retry
            raise Refused(
                ErrorCode.NAME_TAKEN, "this key is already registered here under another name"
            )
        if self.store.skeleton_taken(names.skeleton(username)):
            raise Refused(
                ErrorCode.NAME_TAKEN, f"'{username}' (or a name that looks like it) is taken"
            )
        bundle: wire.Bundle = body["bundle"]
        self._check_keys(
            requester,
            (*bundle.one_time_keys, bundle.fallback),
            (bundle.account_key, bundle.account_signature),
        )
        difficulty = self.difficulty.bits(ctx.now)
        challenge, expires = self.challenges.issue(username, requester, bundle, difficulty, ctx.now)
        self._reply(
            ctx, Kind.CHALLENGE, challenge=challenge, difficulty=difficulty, expires=expires
        )

    def _register_finish(self, ctx: _Context) -> None:
        """The client sends back what `register_begin` was given and answered; the
        challenge's MAC vouches for all of it (the bundle's signatures were checked then)."""
        body, requester = ctx.request.body, ctx.request.requester
        username = self._name(body["username"])
        if ctx.user is not None and ctx.user.username == username:
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
        if not self.store.first_sight(challenge, body["expires"]):  # spent with the user
            raise Refused(ErrorCode.CHALLENGE_FAILED, "this challenge was used already")
        if ctx.user is not None or self.store.skeleton_taken(names.skeleton(username)):
            raise Refused(ErrorCode.NAME_TAKEN, f"'{username}' was taken meanwhile")
        self.store.add_user(username, names.skeleton(username), requester, bundle, ctx.tag, ctx.now)
        self.difficulty.registered(ctx.now)
        self._reply(ctx, Kind.REGISTERED, username=username)

    def _lookup(self, ctx: _Context) -> None:
        username = self._name(ctx.request.body["username"])
        if not self._lookup_allowed(ctx):
            raise Refused(ErrorCode.RATE_LIMITED, "too many lookups; slow down")
        user = self.store.user(username)
        if user is None:
            raise Refused(ErrorCode.NOT_FOUND, f"no user '{username}' here")
        # A key not registered here cannot send: it gets the fallback key only, so throwaway
        # keys cannot drain anyone's one-time keys.
        one_time = self.store.take_one_time_key(username) if ctx.user is not None else None
        bundle = wire.Bundle(
            user.agreement,
            user.account_key,
            user.account_signature,
            (one_time,) if one_time else (),
            user.fallback,
        )
        self._reply(ctx, Kind.BUNDLE, username=username, identity=user.identity, bundle=bundle)
        left = self.store.count_one_time_keys(username)
        if one_time is not None and left < self.config.keys_low and user.sender_tag:
            ctx.out.append(
                self._answer(
                    user.identity,
                    user.sender_tag,
                    None,
                    Kind.KEYS_LOW,
                    {"one_time_keys_left": left},
                    ctx.now,
                    user.push_key,
                )
            )

    def _lookup_allowed(self, ctx: _Context) -> bool:
        """Per identity and per sender tag; keys not registered here also share one budget
        for the whole node (a fresh key would otherwise come with a bucket of its own)."""
        return (
            self.lookups.allow(ctx.request.requester, ctx.now)
            and self.tag_lookups.allow(ctx.tag, ctx.now)
            and (ctx.user is not None or self.unregistered_lookups.allow(b"", ctx.now))
        )

    def _publish_keys(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        keys, fallback = ctx.request.body["one_time_keys"], ctx.request.body["fallback"]
        self._check_keys(user.identity, (*keys, fallback))
        if (
            self.store.count_one_time_keys(user.username) + len(keys)
            > self.config.max_one_time_keys
        ):
            raise Refused(
                ErrorCode.KEYS_FULL,
                f"at most {self.config.max_one_time_keys} one-time keys are kept",
            )
        self.store.add_one_time_keys(user.username, keys)
        if fallback is not None:
            self.store.set_fallback(user.username, fallback)
        self._reply(
            ctx,
            Kind.KEYS_PUBLISHED,
            one_time_keys_left=self.store.count_one_time_keys(user.username),
        )

    def _send(self, ctx: _Context) -> None:
        sender = self._registered(ctx)
        body = ctx.request.body
        payload = body["payload"]
        if len(payload) > self.config.max_payload:
            raise Refused(
                ErrorCode.TOO_LARGE, f"messages are at most {self.config.max_payload} bytes"
            )
        recipient = self.store.user(self._name(body["recipient"]))
        if recipient is None:
            raise Refused(ErrorCode.NOT_FOUND, f"no user '{body['recipient']}' here")
        to, message_id = recipient.username, body["message_id"]
        if not self.store.is_queued(to, message_id):  # else a retry: accepted again
            stranger = not self.known.knows(to, sender.username, ctx.now)
            self._check_room(to, sender.username, stranger, len(payload))
            self.store.enqueue(to, message_id, sender.username, payload, ctx.now, stranger)
            ctx.out += self._push(self.store.queued_one(to, message_id), ctx.now)
        self.known.wrote(sender.username, to, ctx.now)
        self._reply(ctx, Kind.ACCEPTED, message_id=message_id)

    def _check_room(self, recipient: str, sender: str, stranger: bool, size: int) -> None:
        room = quota.Room(
            self.store.queue_size(recipient),
            self.store.queued_from(recipient, sender),
            self.store.queued_from_strangers(recipient) if stranger else None,
            self.store.queued_bytes(),
        )
        refused = quota.refusal(self.config, recipient, size, room)
        if refused is not None:
            raise Refused(*refused)

    def _fetch(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        limit = min(ctx.request.body["max"], self.config.fetch_max)
        pushes = self._push(self.store.queued(user.username, limit), ctx.now)
        self._reply(
            ctx, Kind.FETCHED, pushed=len(pushes), queued=self.store.queue_size(user.username)[0]
        )
        ctx.out += pushes

    def _ack(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        received = self.store.ack(user.username, ctx.request.body["message_ids"])
        for when in received:
            self.relay_seconds.observe((ctx.now - when) / 1000)
        self._reply(ctx, Kind.ACKED, deleted=len(received))

    def _refresh(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        self.store.set_push_key(user.username, ctx.request.body["push_key"])
        pushes = self._push(self.store.queued(user.username, self.config.fetch_max), ctx.now)
        self._reply(ctx, Kind.REFRESHED, queued=self.store.queue_size(user.username)[0])
        ctx.out += pushes

    def _unregister(self, ctx: _Context) -> None:
        user = self._registered(ctx)
        if self._name(ctx.request.body["username"]) != user.username:
            raise Refused(ErrorCode.BAD_REQUEST, "name the account you unregister")
        self.store.delete_user(user.username)
        self._reply(ctx, Kind.UNREGISTERED)
