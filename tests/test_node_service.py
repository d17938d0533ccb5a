"""The node's request handling, sans-I/O: an in-memory database and a clock passed in, so
expiry, retries and limits are checked exactly and instantly."""

import asyncio
import contextlib
import logging
import os
import sqlite3

import pytest
from nodeclient import bundle
from oldschema import sqlite_at_schema

from nymchat import _native
from nymchat.database import newest_schema
from nymchat.errors import NymchatError
from nymchat.node.database import StoreConflict
from nymchat.node.limits import RateLimiter
from nymchat.node.registration import name_key
from nymchat.node.routes import route
from nymchat.node.service import NodeConfig, NodeService, lookup_difficulty
from nymchat.node.store import NodeStore, open_sqlite, open_store
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import ErrorCode, Kind

T0 = 1_800_000_000_000


class Sync:
    """`target` with its coroutine methods run to the end on `loop` (and its async
    context managers entered and left there), its parts of the node wrapped alike: the
    async service and store, called as the tests read best."""

    def __init__(self, target, loop: asyncio.AbstractEventLoop):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._target, name, value)

    def __getattr__(self, name: str):
        value = getattr(self._target, name)
        if callable(value):
            return lambda *args, **kwargs: self._run(value(*args, **kwargs))
        if isinstance(value, NodeStore) or type(value).__module__.startswith("nymchat.node."):
            return Sync(value, self._loop)
        return value

    def _run(self, result):
        if asyncio.iscoroutine(result):
            return self._loop.run_until_complete(result)
        if hasattr(result, "__aenter__"):
            return self._entered(result)
        return result

    @contextlib.contextmanager
    def _entered(self, manager):
        self._loop.run_until_complete(manager.__aenter__())
        try:
            yield
        except BaseException as e:
            if not self._loop.run_until_complete(manager.__aexit__(type(e), e, e.__traceback__)):
                raise
        else:
            self._loop.run_until_complete(manager.__aexit__(None, None, None))


class Harness:
    """A node service on a fresh SQLite store at `path`: `node`, if given, is its key (a
    second process of that node, on its file); `frontends` its own; `store` makes its
    store of the database (a wrapper)."""

    def __init__(
        self, path=":memory:", node=None, frontends=None, store=NodeStore, timer=None, **config
    ):
        self.loop = asyncio.new_event_loop()
        self.node = node or _native.Identity.generate()
        self.key = _native.PublicKey(self.node.signing_public)
        self.config = NodeConfig(**{"pow_difficulty": 0, **config})
        names = name_key(self.node.secret_bytes())
        self.real = NodeService(
            self.node,
            store(open_sqlite(path, names).db, names),
            self.config,
            frontends,
            **({"timer": timer} if timer else {}),
        )

    @property
    def service(self) -> NodeService:
        """The service, its coroutines run on this harness's loop."""
        return Sync(self.real, self.loop)

    @property
    def store(self) -> NodeStore:
        return self.service.store

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The store's database, to look at as it is."""
        return self.real.store.db.connection

    def hash(self, name: str) -> bytes:
        return self.store.names.name(name)

    def call(self, who, tag: bytes, kind: Kind, now: int = T0, **body):
        data, _ = wire.encode_request(who, self.node.signing_public, kind, body, now)
        out = self.service.handle_batch([(data, tag)], now)
        return [
            (o.tag, wire.decode_answer(o.message, self.key, who.signing_public))
            for o in out
            if o.tag == tag
        ]

    def answer(self, who, tag, kind, now=T0, **body) -> wire.Answer:
        [(_, answer)] = [
            x for x in self.call(who, tag, kind, now, **body) if x[1].in_reply_to is not None
        ]
        return answer

    def anonymous(self, route: bytes, kind: Kind, now: int = T0, **body) -> wire.Answer:
        """The answer to an anonymous request from `route` (signed for nobody)."""
        data, request_id = wire.encode_anonymous_request(kind, body, now)
        return self.answer_to(data, request_id, route, now)

    def answer_to(self, data: bytes, request_id: bytes, route: bytes, now: int = T0):
        out = self.service.handle_batch([(data, route)], now)
        [answer] = [o for o in out if o.frame_id == wire.answer_frame_id(request_id)]
        assert answer.tag == route
        return wire.decode_answer(answer.message, self.key, wire.ANONYMOUS)

    def seal(self, route, recipient, access_key=None, *, now=T0, **request):
        """The answer to a sealed send from `route` (`sealed_send`)."""
        data, request_id = self.sealed_send(recipient, access_key, now=now, **request)
        return self.answer_to(data, request_id, route, now)

    def sealed_send(
        self, recipient, access_key=None, *, now=T0, payload=b"x", work=None, message_id=None
    ) -> tuple[bytes, bytes]:
        """A sealed send request and its id, solving `work` bits of proof of work (None: a
        nonce that proves none; 0: none asked)."""
        message_id = message_id or os.urandom(16)
        bound = pow.send(self.node.signing_public, recipient, message_id)
        if work is None:
            nonce = next(n for n in range(1000) if not pow.check(bound, n, 1))
        else:
            nonce = pow.solve(bound, work) if work else 0
        body = {
            "recipient": recipient,
            "message_id": message_id,
            "payload": payload,
            "access_key": access_key,
            "proof_of_work": nonce,
        }
        return wire.encode_anonymous_request(Kind.SEALED_SEND, body, now)

    def begin(self, who, tag, name, now=T0) -> tuple[wire.Bundle, dict]:
        """A fresh bundle and the challenge body the node answers for it."""
        offered = bundle(who)
        c = self.answer(who, tag, Kind.REGISTER_BEGIN, now, username=name, bundle=offered)
        return offered, c.body

    def finish(self, who, tag, name, offered, challenge, now=T0, **changes) -> wire.Answer:
        """Answers `challenge` (with a proof of work unless one is given in `changes`)."""
        body = {"username": name, "bundle": offered, **challenge}
        body["proof_of_work"] = pow.solve(
            pow.registration(body["challenge"], name, who.signing_public), body["difficulty"]
        )
        body.update(changes)
        return self.answer(who, tag, Kind.REGISTER_FINISH, now, **body)

    def register(self, who, tag, name, now=T0):
        return self.finish(who, tag, name, *self.begin(who, tag, name, now), now)


def user():
    return _native.Identity.generate(), os.urandom(16)


def test_a_challenge_expires_and_registers_once():
    h = Harness()
    who, tag = user()
    offered, challenge = h.begin(who, tag, "alice")
    assert challenge["expires"] == T0 + 300_000
    late = h.finish(who, tag, "alice", offered, challenge, T0 + 300_000)
    assert late.body["code"] == ErrorCode.CHALLENGE_FAILED
    t1 = T0 + 300_001
    offered, challenge = h.begin(who, tag, "alice", t1)
    assert (
        h.finish(who, tag, "alicia", offered, challenge, t1).body["code"]
        == ErrorCode.CHALLENGE_FAILED
    )
    assert h.finish(who, tag, "alice", offered, challenge, t1).kind is Kind.REGISTERED
    assert h.finish(who, tag, "alice", offered, challenge, t1).kind is Kind.REGISTERED  # retry
    assert h.answer(who, tag, Kind.UNREGISTER, t1, username="alice").kind is Kind.UNREGISTERED
    again = h.finish(who, tag, "alice", offered, challenge, t1)  # a replay of the same work
    assert again.body == {
        "code": ErrorCode.CHALLENGE_FAILED,
        "detail": "this challenge was used already",
    }


def test_proof_of_work_is_checked():
    h = Harness(pow_difficulty=10)
    who, tag = user()
    offered, challenge = h.begin(who, tag, "alice")
    assert challenge["difficulty"] == 10
    wrong = next(
        n
        for n in range(1000)
        if not pow.check(
            pow.registration(challenge["challenge"], "alice", who.signing_public), n, 10
        )
    )
    bad = h.finish(who, tag, "alice", offered, challenge, proof_of_work=wrong)
    assert bad.body["code"] == ErrorCode.CHALLENGE_FAILED
    easier = h.finish(
        who, tag, "alice", offered, {**challenge, "difficulty": 0}, proof_of_work=wrong
    )
    assert easier.body["code"] == ErrorCode.CHALLENGE_FAILED
    assert h.finish(who, tag, "alice", offered, challenge).kind is Kind.REGISTERED


def test_someone_elses_challenge_cannot_be_used():
    h = Harness()
    (alice, ta), (mallory, tm) = user(), user()
    offered, challenge = h.begin(alice, ta, "alice")
    stolen = h.finish(mallory, tm, "alice", offered, challenge)
    assert stolen.body["code"] == ErrorCode.CHALLENGE_FAILED
    swapped = h.finish(alice, ta, "alice", bundle(alice), challenge)  # keys never checked
    assert swapped.body["code"] == ErrorCode.CHALLENGE_FAILED


def test_badly_signed_bundles_are_refused():
    h = Harness()
    who, tag = user()
    b = bundle(who)
    forged = [
        wire.Bundle(
            b.identity_agreement,
            b.agreement_signature,
            os.urandom(32),
            b.account_signature,
            b.one_time_keys,
            b.fallback,
        ),
        wire.Bundle(
            os.urandom(32),  # an agreement key the identity did not sign
            b.agreement_signature,
            b.account_key,
            b.account_signature,
            b.one_time_keys,
            b.fallback,
        ),
    ]
    for offered in forged:
        answer = h.answer(who, tag, Kind.REGISTER_BEGIN, username="alice", bundle=offered)
        assert answer.body["code"] == ErrorCode.BAD_SIGNATURE


def _sealed(now=T0, **body) -> bytes:
    body = {"access_key": None, "proof_of_work": 0, **body}
    return wire.encode_anonymous_request(Kind.SEALED_SEND, body, now)[0]


def test_pushes_are_retried_with_backoff_until_acknowledged():
    h = Harness(push_retry_ms=1000)
    (bob, tb) = user()
    h.register(bob, tb, "bob")
    h.answer(bob, tb, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=0)
    out = h.service.handle_batch(
        [(_sealed(recipient="bob", message_id=b"m" * 16, payload=b"hi"), os.urandom(18))], T0
    )
    assert [o.tag for o in out].count(tb) == 1  # pushed at once
    assert h.service.due_pushes(T0 + 999) == []
    assert [o.tag for o in h.service.due_pushes(T0 + 1000)] == [tb]
    assert h.service.due_pushes(T0 + 2999) == []  # then after 2 s, 4 s, ...
    assert len(h.service.due_pushes(T0 + 3000)) == 1
    assert h.answer(bob, tb, Kind.ACK, T0 + 3001, message_ids=(b"m" * 16,)).body == {"deleted": 1}
    assert h.service.due_pushes(T0 + 100_000) == []


def test_a_sealed_send_is_pushed_at_once_without_a_sender():
    h = Harness()
    (bob, tb) = user()
    h.register(bob, tb, "bob")
    h.answer(bob, tb, Kind.SET_ACCESS, access_verifier=wire.access_verifier(b"k" * 32), strangers=0)
    route = os.urandom(18)
    data, _ = h.sealed_send("Bob", b"k" * 32, payload=b"sealed", work=0, message_id=b"m" * 16)
    out = h.service.handle_batch([(data, route)], T0)
    [push] = [o for o in out if o.tag == tb]
    deliver = wire.decode_answer(push.message, h.key, bob.signing_public)
    assert deliver.kind is Kind.DELIVER
    assert deliver.body == {"message_id": b"m" * 16, "sent": T0, "payload": b"sealed"}
    [answer] = [o for o in out if o.tag == route]
    assert wire.decode_answer(answer.message, h.key, wire.ANONYMOUS).kind is Kind.ACCEPTED
    assert h.store.user(h.hash("bob")).sender_tag == tb  # the anonymous route moved nothing


def test_what_waits_is_pushed_under_the_push_key_of_the_refresh_that_asks_for_it():
    # A client with two links to one node (a home being left and the new one elsewhere)
    # tells its pushes apart by the key each link gave: a refresh's pushes must carry its.
    h = Harness()
    (bob, tb) = user()
    h.register(bob, tb, "bob")
    h.answer(bob, tb, Kind.REFRESH, push_key=b"1" * 32)
    h.answer(bob, tb, Kind.SET_ACCESS, access_verifier=wire.access_verifier(b"k" * 32), strangers=0)
    data, _ = h.sealed_send("bob", b"k" * 32, payload=b"waits", work=0, message_id=b"m" * 16)
    h.service.handle_batch([(data, os.urandom(18))], T0)
    body = {"push_key": b"2" * 32}
    request, request_id = wire.encode_request(
        bob, h.node.signing_public, Kind.REFRESH, body, T0 + 1
    )
    out = h.service.handle_batch([(request, tb)], T0 + 1)
    pushes = [o for o in out if o.frame_id != wire.answer_frame_id(request_id)]
    assert len(pushes) == 1 and wire.is_push_frame_id(b"2" * 32, pushes[0].frame_id)


def test_queue_quota_and_retention():
    h = Harness(queue_max_messages=3, retention_ms=1000, queue_stranger_share=1.0)
    (bob, tb) = user()
    h.register(bob, tb, "bob")
    h.answer(bob, tb, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=0)
    codes = [h.seal(os.urandom(18), "bob").kind for _ in range(4)]
    assert codes == [Kind.ACCEPTED] * 3 + [Kind.ERROR]
    assert h.service.maintain(T0 + 5000)[0] == 3
    assert h.store.count_queued() == 0


def test_a_refused_request_does_not_move_the_sender_tag():
    h = Harness()
    (alice, ta) = user()
    h.register(alice, ta, "alice")
    elsewhere = os.urandom(18)
    refused = h.answer(alice, elsewhere, Kind.UNREGISTER, username="bob")
    assert refused.body["code"] == ErrorCode.BAD_REQUEST
    assert h.store.user(h.hash("alice")).sender_tag == ta
    h.answer(alice, elsewhere, Kind.FETCH, max=1)
    assert h.store.user(h.hash("alice")).sender_tag == elsewhere


def test_rate_limiter_is_bounded():
    limiter = RateLimiter(rate=1, burst=2, max_keys=10)
    assert [limiter.allow(b"k", T0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(b"k", T0 + 1000)
    for n in range(100):
        limiter.allow(bytes([n]), T0)
    assert len(limiter._buckets) == 10


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("bob", True),
        ("Bob", True),
        ("b-o_b", True),
        ("bo", False),
        ("x" * 33, False),
        ("bob!", False),
        ("root", False),
        ("R00T", False),
        ("adm1n", False),
    ],
)
def test_names(name, ok):
    if ok:
        assert names.normalize(name) == name.lower()
    else:
        with pytest.raises(names.InvalidName):
            names.normalize(name)
    assert names.skeleton("b0b") == names.skeleton("bob") == names.skeleton("BOB".lower())


def test_a_look_alike_of_a_registered_or_reserved_name_is_refused():
    h = Harness()
    for look_alike, original in [
        ("rnartin", "martin"),
        ("vvilliam", "william"),
        ("clave", "dave"),
        ("2oe", "zoe"),
        ("9abe", "gabe"),
        ("bob-", "bob"),
    ]:
        assert h.register(*user(), original).kind is Kind.REGISTERED
        who, tag = user()
        refused = h.answer(who, tag, Kind.REGISTER_BEGIN, username=look_alike, bundle=bundle(who))
        assert refused.body["code"] == ErrorCode.NAME_TAKEN, look_alike
    for look_alike in ("adrnin", "systern"):
        who, tag = user()
        refused = h.answer(who, tag, Kind.REGISTER_BEGIN, username=look_alike, bundle=bundle(who))
        assert refused.body["code"] == ErrorCode.INVALID_NAME, look_alike


def _old_database(path, users: list[tuple[str, int]], version: int = 2) -> None:
    """A node database of schema `version` (2: skeletons by the old rule), with `users`
    (name, registration time)."""
    old = sqlite_at_schema(path, version, {"name_skeleton": names.skeleton})
    for n, (name, created) in enumerate(users):
        old.execute(
            "INSERT INTO users (username, skeleton, identity, agreement, account_key,"
            " account_signature, fallback, created) VALUES (?, ?, ?, x'02', x'03',"
            " x'04', ?, ?)",
            (name, name, bytes([n]) * 32, _fallback(), created),
        )
    old.execute(f"PRAGMA user_version = {version}")
    old.commit()
    old.close()


def _fallback() -> bytes:
    return wire.encode_record(wire.ONE_TIME_KEY, wire.OneTimeKey(1000, b"f" * 32, bytes(64)))


def test_old_skeletons_are_recomputed_and_both_of_a_look_alike_pair_stay(tmp_path):
    """Users registered under the old rule whose names now look alike both keep their
    accounts; the first registered holds the skeleton, so new look-alikes are refused."""
    _old_database(
        tmp_path / "node.db", [("martin", 2), ("rnartin", 1), ("bob", 1), ("bob-", 3), ("carol", 1)]
    )
    h = Harness(tmp_path / "node.db")
    skeleton = h.store.names.skeleton
    assert dict(h.sqlite.execute("SELECT name_hash, skeleton_hash FROM users")) == {
        h.hash("rnartin"): skeleton("martln"),
        h.hash("martin"): skeleton("martln martin"),
        h.hash("bob"): skeleton("bob"),
        h.hash("bob-"): skeleton("bob bob-"),
        h.hash("carol"): skeleton("carol"),
    }
    for look_alike in ("rnart1n", "bob_", "car0l"):
        who, tag = user()
        refused = h.answer(who, tag, Kind.REGISTER_BEGIN, username=look_alike, bundle=bundle(who))
        assert refused.body["code"] == ErrorCode.NAME_TAKEN, look_alike
    assert h.register(*user(), "dave").kind is Kind.REGISTERED


def test_a_database_from_an_older_schema_is_migrated(tmp_path):
    path = tmp_path / "node.db"
    old = sqlite_at_schema(path, 1)
    old.execute(
        "INSERT INTO users (username, skeleton, identity, agreement, account_key,"
        " account_signature, fallback, created) VALUES ('bob', 'bob', x'01', x'02',"
        " x'03', x'04', x'05', 0)"
    )
    for n in range(3):
        old.execute(
            "INSERT INTO queue (recipient, message_id, sender, received, payload,"
            " next_push) VALUES ('bob', ?, 'alice', 0, ?, 0)",
            (bytes([n]) * 16, b"x" * (n + 1)),
        )
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    store = Sync(open_sqlite(path, b"k" * 32), asyncio.new_event_loop())
    assert store.schema_version() == newest_schema("nymchat.node")
    bob = store.names.name("bob")
    assert store.queue_size(bob) == (3, 6)
    assert store.queued_bytes() == 6
    assert store.queued_from_strangers(bob) == (0, 0)  # queued before: counted as known
    with store.transaction():
        store.ack(bob, [bytes([0]) * 16])
    assert store.queue_size(bob) == (2, 5)
    assert store.queued_bytes() == 5


def test_a_database_of_a_newer_schema_is_refused_not_written(tmp_path):
    path = tmp_path / "node.db"
    open_sqlite(path, b"k" * 32)
    newer = newest_schema("nymchat.node") + 1
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {newer}")
    db.close()
    with pytest.raises(NymchatError, match=f"schema {newer}, newer than this nymchat reads"):
        open_sqlite(path, b"k" * 32)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == newer


def test_the_migration_keeps_users_and_their_queue_and_leaves_no_name_in_clear(tmp_path):
    """A database of the schema before names were hashed, with users, one-time keys,
    queued messages (with their senders) and seen request ids: it opens, keeps working,
    and afterwards no byte of the file or its WAL holds a name."""
    path = tmp_path / "node.db"
    _old_database(path, [("alice", 1), ("bobby", 2)], version=5)
    old = sqlite3.connect(path)
    for n in range(3):
        old.execute(
            "INSERT INTO queue (recipient, message_id, sender, received, payload, next_push,"
            " stranger) VALUES ('bobby', ?, 'alice', ?, ?, 0, ?)",
            (bytes([n]) * 16, T0, b"p" * 10, n == 2),
        )
    old.execute("UPDATE users SET queued_messages = 3, queued_bytes = 30 WHERE username = 'bobby'")
    old.execute("UPDATE queue_total SET bytes = 30")
    old.execute("INSERT INTO one_time_keys VALUES ('alice', 1, x'00')")
    old.execute("INSERT INTO seen_requests VALUES (?, ?)", (b"r" * 16, T0 + 240_000))
    old.execute("INSERT INTO known_senders VALUES (?, 0)", (b"pair" * 4,))
    old.commit()
    old.close()
    h = Harness(path)
    bobby = h.hash("bobby")
    assert h.store.count_users() == 2
    assert h.store.queue_size(bobby) == (3, 30)
    assert h.store.queued_from_strangers(bobby) == (1, 10)
    assert [m.message_id for m in h.store.queued(bobby, 10)] == [bytes([n]) * 16 for n in range(3)]
    assert h.store.count_one_time_keys(h.hash("alice")) == 1
    assert not h.store.first_sight(b"r" * 16, T0)  # a seen id stays seen
    tables = {row[0] for row in h.sqlite.execute("SELECT name FROM sqlite_master")}
    assert not {"known_senders", "recent_pushes", "seen_requests"} & tables
    who, tag = user()
    assert h.register(who, tag, "carol").kind is Kind.REGISTERED
    assert h.seal(os.urandom(18), "bobby", work=16).kind is Kind.ACCEPTED
    with h.store.transaction():
        h.store.delete_user(bobby)  # the rebuilt tables still cascade
    assert (h.store.count_queued(), h.store.queued_bytes()) == (0, 0)
    assert h.sqlite.execute("PRAGMA foreign_key_check").fetchall() == []
    h.store.close()
    files = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("node.db"))
    for name in (b"alice", b"bobby", b"carol"):
        assert name not in files


class People:
    """Registered users of a harness, by name: each has a home route, an anonymous route
    and an access key (given to the node, strangers let in free unless told otherwise),
    and sends one-byte sealed messages, with the recipient's access key if it is a
    contact."""

    def __init__(self, h: Harness, *names: str, strangers: int = 0):
        self.h, self.who = h, {name: user() for name in names}
        self.routes = {name: os.urandom(18) for name in names}
        self.keys = {name: os.urandom(32) for name in names}
        for name, (who, tag) in self.who.items():
            h.register(who, tag, name)
            verifier = wire.access_verifier(self.keys[name])
            h.answer(who, tag, Kind.SET_ACCESS, access_verifier=verifier, strangers=strangers)

    def send(self, sender: str, recipient: str, contact: bool, now=T0, payload=b"x"):
        key = self.keys[recipient] if contact else None
        answer = self.h.seal(self.routes[sender], recipient, key, now=now, payload=payload)
        return "accepted" if answer.kind is Kind.ACCEPTED else answer.body["detail"]


def test_strangers_fill_only_their_share_and_contacts_always_find_room():
    """The sends without the recipient's access key may fill half of its queue together:
    the rest is for its contacts. There is no per-sender share: the node knows no sender."""
    h = Harness(queue_max_messages=8)
    p = People(h, "bob", "carol", "mallory", "eve")
    no_room = (
        "bob's queue has no more room for senders they have not given their access key; "
        "try again once they have fetched their messages"
    )
    assert [p.send("mallory", "bob", contact=False) for _ in range(3)] == ["accepted"] * 3
    assert [p.send("eve", "bob", contact=False) for _ in range(2)] == ["accepted", no_room]
    assert [p.send("carol", "bob", contact=True) for _ in range(5)] == ["accepted"] * 4 + [
        "bob's queue is full"
    ]
    assert h.store.queue_size(h.hash("bob")) == (8, 8)
    refused = h.seal(os.urandom(18), "bob", p.keys["bob"])
    assert refused.body["code"] == ErrorCode.QUEUE_FULL


def test_a_retry_of_a_queued_message_is_accepted_even_at_the_quota():
    h = Harness(queue_max_messages=2)
    p = People(h, "bob")
    ids = [os.urandom(16) for _ in range(2)]
    for message_id in ids:
        sent = h.seal(os.urandom(18), "bob", p.keys["bob"], message_id=message_id)
        assert sent.kind is Kind.ACCEPTED
    again = h.seal(os.urandom(18), "bob", p.keys["bob"], message_id=ids[0])
    assert again.kind is Kind.ACCEPTED  # its answer was lost: the client sends it anew
    assert h.store.queue_size(h.hash("bob")) == (2, 2)


def test_the_node_refuses_more_than_its_total_of_queued_bytes():
    h = Harness(node_queue_max_bytes=1000)
    p = People(h, "alice", "bob", "carol", "dave")
    assert p.send("alice", "bob", True, payload=bytes(600)) == "accepted"
    full = "this node holds as many queued messages as it may (1000 bytes); try again later"
    assert p.send("carol", "dave", True, payload=bytes(600)) == full
    refused = h.seal(os.urandom(18), "dave", p.keys["dave"], payload=bytes(600))
    assert refused.body["code"] == ErrorCode.BUSY
    bob, tag = p.who["bob"]
    [message] = h.store.queued(h.hash("bob"), 1)
    h.answer(bob, tag, Kind.ACK, message_ids=(message.message_id,))
    assert p.send("carol", "dave", True, payload=bytes(600)) == "accepted"
    dave, tag = p.who["dave"]
    h.answer(dave, tag, Kind.UNREGISTER, username="dave")  # its queue goes with it
    assert h.store.queued_bytes() == 0


class Counting:
    """A database that counts the statements run through it: those whose outcome is
    waited for, and those written without waiting (`write`, `insert_rows`)."""

    WAITED = frozenset({"execute", "executemany", "fetchone", "fetchall", "fetch_each"})

    def __init__(self, db):
        self.db, self.waited, self.written = db, 0, 0

    def __getattr__(self, name: str):
        attribute = getattr(self.db, name)
        if name not in self.WAITED | {"write", "insert_rows"}:
            return attribute

        async def counted(*args):
            if name in ("write", "insert_rows"):
                self.written += 1
            else:
                self.waited += 1
            return await attribute(*args)

        return counted


def _batch(recipient: str, access_key: bytes, sizes) -> tuple[list, list[bytes]]:
    """Sealed sends to `recipient` of payloads of `sizes` bytes, each from a route of its
    own: (the batch, their request ids)."""
    batch, ids = [], []
    for size in sizes:
        body = {"recipient": recipient, "message_id": os.urandom(16), "payload": bytes(size)}
        data, request_id = wire.encode_anonymous_request(
            Kind.SEALED_SEND, {**body, "access_key": access_key, "proof_of_work": 0}, T0
        )
        batch.append((data, os.urandom(18)))
        ids.append(request_id)
    return batch, ids


def _answers(h: Harness, out, ids: list[bytes]) -> list[wire.Answer]:
    by_frame = {o.frame_id: o for o in out}
    return [
        wire.decode_answer(by_frame[wire.answer_frame_id(i)].message, h.key, wire.ANONYMOUS)
        for i in ids
    ]


def test_a_batch_reads_what_its_requests_ask_at_once_and_writes_them_in_a_statement_a_table():
    """A batch's ids, the users its requests name, their queues and whether its messages
    are queued are read once for the batch, in one round trip, and the node's total once:
    its sealed sends then cost two writes for them all (the messages queued, the answers
    remembered: one INSERT each at the commit) waited for by nothing (on PostgreSQL they
    go out with the commit), not a round trip per question nor a statement per message."""
    h = Harness(store=lambda db, names: NodeStore(Counting(db), names))
    p = People(h, "bob")
    batch, ids = _batch("bob", p.keys["bob"], [1] * 20)
    h.real.store.db.waited = h.real.store.db.written = 0
    out = h.service.handle_batch(batch, T0)
    assert {a.kind for a in _answers(h, out, ids)} == {Kind.ACCEPTED}
    assert h.real.store.db.waited == 2  # its reads (sent together) and the node's total
    assert h.real.store.db.written == 2 + 1  # and the node's total, once
    assert h.store.queue_size(h.hash("bob")) == (20, 20)
    assert h.store.queued_bytes() == 20
    batch, ids = _batch("bob", p.keys["bob"], [1] * 2)
    out = h.service.handle_batch(batch * 2, T0)  # each twice: handled once
    assert [a.kind for a in _answers(h, out, ids * 2)] == [Kind.ACCEPTED] * 4
    assert h.store.queue_size(h.hash("bob")) == (22, 22)
    h.real.store.db.waited = 0
    h.anonymous(os.urandom(18), Kind.LOOKUP, username="bob", proof_of_work=0)
    assert h.real.store.db.waited == 2  # its id and bob (together), bob's keys: no queue


def test_whether_a_route_is_a_user_s_is_asked_of_the_database_once_in_a_while():
    """The intake asks it of every request: the answer is kept 10 s, but a route this
    process moves (a registration, a new route) counts at once."""
    h = Harness(store=lambda db, names: NodeStore(Counting(db), names))
    bob, tag = user()
    h.real.store.db.waited = 0
    assert [h.service.known_tag(tag) for _ in range(3)] == [False] * 3
    assert h.real.store.db.waited == 1
    h.register(bob, tag, "bob")
    assert h.service.known_tag(tag)


def test_a_message_refused_for_room_in_a_batch_takes_its_count_back():
    """The queue sizes read ahead are counted on through the batch: a message refused
    (its savepoint rolled back) takes its bytes back, so a smaller one after it fits."""
    h = Harness(queue_max_bytes=10)
    p = People(h, "bob")
    batch, ids = _batch("bob", p.keys["bob"], [6, 6, 4])
    answers = _answers(h, h.service.handle_batch(batch, T0), ids)
    assert [a.kind for a in answers] == [Kind.ACCEPTED, Kind.ERROR, Kind.ACCEPTED]
    assert answers[1].body["code"] == ErrorCode.QUEUE_FULL
    assert h.store.queue_size(h.hash("bob")) == (2, 10)
    assert h.store.queued_bytes() == 10


# --- the answer cache --------------------------------------------------------------------


def test_a_retry_gets_the_same_answer_through_its_route_and_changes_nothing():
    h = Harness()
    p = People(h, "alice", "bob")
    alice, home = p.who["alice"]
    data, _ = wire.encode_request(alice, h.node.signing_public, Kind.FETCH, {"max": 10}, T0)
    [first] = h.service.handle_batch([(data, home)], T0)
    other = os.urandom(18)  # the client retries through another frontend
    [again] = h.service.handle_batch([(data, other)], T0 + 1000)
    assert (again.tag, again.message, again.frame_id) == (other, first.message, first.frame_id)
    assert h.store.user(h.hash("alice")).sender_tag == home  # no route moved
    send = _sealed(recipient="bob", message_id=b"m" * 16, payload=b"x", access_key=p.keys["bob"])
    route = os.urandom(18)
    out = h.service.handle_batch([(send, route)], T0)
    assert len(out) == 2  # the answer and the push to bob
    [retry] = h.service.handle_batch([(send, route)], T0 + 1)
    assert retry.message == next(o.message for o in out if o.tag == route)  # no push again
    assert h.store.queue_size(h.hash("bob")) == (1, 1)
    both = h.service.handle_batch([(send, route), (send, other)], T0 + 2)
    assert [o.tag for o in both] == [route, other]
    twice = _sealed(recipient="bob", message_id=b"n" * 16, payload=b"x", access_key=p.keys["bob"])
    out = h.service.handle_batch([(twice, route), (twice, other)], T0 + 3)  # in one batch
    assert [o.tag for o in out].count(p.who["bob"][1]) == 1  # handled once: one push
    assert h.service.counts[("fetch", "again")] == 1
    assert h.service.counts[("sealed_send", "again")] == 4


def test_other_bytes_under_a_seen_request_id_are_a_replay():
    h = Harness()
    p = People(h, "bob")
    request_id = os.urandom(16)
    body = {"recipient": "bob", "payload": b"x", "access_key": None, "proof_of_work": 0}
    first, _ = wire.encode_anonymous_request(
        Kind.SEALED_SEND, {**body, "message_id": b"1" * 16}, T0, request_id
    )
    other, _ = wire.encode_anonymous_request(
        Kind.SEALED_SEND, {**body, "message_id": b"2" * 16}, T0, request_id
    )
    assert h.answer_to(first, request_id, os.urandom(18)).kind is Kind.ACCEPTED
    replayed = h.answer_to(other, request_id, os.urandom(18))
    assert replayed.body["code"] == ErrorCode.REPLAYED
    assert h.store.queue_size(h.hash("bob")) == (1, 1)
    bob, tag = p.who["bob"]
    h.answer(bob, tag, Kind.FETCH, T0 + 240_001, max=1)  # the window passes: forgotten
    h.service.maintain(T0 + 240_001)
    assert h.store.seen(request_id) is None


def test_a_refused_request_is_not_cached_and_may_be_retried():
    h = Harness(queue_max_messages=1)
    p = People(h, "bob")
    bob, tag = p.who["bob"]
    h.seal(os.urandom(18), "bob")
    data = _sealed(recipient="bob", message_id=b"m" * 16, payload=b"x")
    data, request_id = data, wire.decode_request(data).request_id
    assert h.answer_to(data, request_id, os.urandom(18)).body["code"] == ErrorCode.QUEUE_FULL
    [queued] = h.store.queued(h.hash("bob"), 1)
    h.answer(bob, tag, Kind.ACK, message_ids=(queued.message_id,))
    assert h.answer_to(data, request_id, os.urandom(18), T0 + 1).kind is Kind.ACCEPTED


def test_the_answer_cache_holds_neither_request_ids_nor_answers_in_clear():
    h = Harness()
    who, tag = user()
    data, request_id = wire.encode_request(
        who,
        h.node.signing_public,
        Kind.REGISTER_BEGIN,
        {"username": "alice", "bundle": bundle(who)},
        T0,
    )
    [answer] = h.service.handle_batch([(data, tag)], T0)
    [(key, digest, sealed)] = h.sqlite.execute("SELECT key, digest, answer FROM seen")
    assert request_id not in key and request_id not in sealed
    assert answer.message not in sealed and b"alice" not in sealed
    assert h.store.seen(request_id) == (digest, answer.message)


# --- sealed sending and access --------------------------------------------------------------


def test_a_sealed_send_needs_the_access_key_or_what_the_policy_asks_of_a_stranger():
    h = Harness()
    p = People(h, "bob", strangers=16)
    key = p.keys["bob"]
    assert h.seal(os.urandom(18), "bob", key).kind is Kind.ACCEPTED
    wrong = h.seal(os.urandom(18), "bob", os.urandom(32))
    assert wrong.kind is Kind.POW_REQUIRED and wrong.body == {"difficulty": 16}
    assert h.seal(os.urandom(18), "bob").kind is Kind.POW_REQUIRED
    assert h.seal(os.urandom(18), "bob", work=16).kind is Kind.ACCEPTED
    assert h.service.counts[("sealed_send", "pow_required")] == 2  # for the metrics
    assert [m.pushes for m in h.store.queued(h.hash("bob"), 10)] == [1, 1]
    stranger_ids = h.store.queued_from_strangers(h.hash("bob"))
    assert stranger_ids == (1, 1)
    nobody = h.seal(os.urandom(18), "nobody", key)
    assert nobody.body["code"] == ErrorCode.NOT_FOUND
    big = h.seal(os.urandom(18), "bob", key, payload=bytes(65 << 10))
    assert big.body["code"] == ErrorCode.TOO_LARGE


def test_a_recipient_who_denies_strangers_takes_no_send_without_its_access_key():
    h = Harness()
    p = People(h, "bob", strangers=wire.STRANGERS_DENY)
    for access_key in (None, os.urandom(32)):
        refused = h.seal(os.urandom(18), "bob", access_key, work=20)
        assert refused.body == {
            "code": ErrorCode.FORBIDDEN,
            "detail": "bob takes messages from their contacts only",
        }
    assert h.seal(os.urandom(18), "bob", p.keys["bob"]).kind is Kind.ACCEPTED


def test_an_old_access_key_is_refused_once_the_verifier_is_replaced():
    h = Harness()
    p = People(h, "bob", strangers=wire.STRANGERS_DENY)
    bob, tag = p.who["bob"]
    old, new = p.keys["bob"], os.urandom(32)
    assert h.seal(os.urandom(18), "bob", old).kind is Kind.ACCEPTED
    set_ = h.answer(
        bob, tag, Kind.SET_ACCESS, access_verifier=wire.access_verifier(new), strangers=255
    )
    assert set_.kind is Kind.ACCESS_SET
    assert h.seal(os.urandom(18), "bob", old).body["code"] == ErrorCode.FORBIDDEN
    assert h.seal(os.urandom(18), "bob", new).kind is Kind.ACCEPTED


def test_a_new_user_takes_strangers_for_16_bits_of_work_until_it_sets_its_access():
    h = Harness()
    h.register(*user(), "bob")
    assert h.store.user(h.hash("bob")).access_verifier is None
    assert h.seal(os.urandom(18), "bob", os.urandom(32)).body == {"difficulty": 16}


def test_set_access_is_for_registered_users_with_a_policy_in_range():
    h = Harness()
    who, tag = user()
    unregistered = h.answer(who, tag, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=0)
    assert unregistered.body["code"] == ErrorCode.NOT_REGISTERED
    h.register(who, tag, "bob")
    for strangers in (25, 254):
        bad = h.answer(who, tag, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=strangers)
        assert bad.body["code"] == ErrorCode.BAD_REQUEST
    for strangers in (0, 24, 255):
        ok = h.answer(who, tag, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=strangers)
        assert ok.kind is Kind.ACCESS_SET
        assert h.store.user(h.hash("bob")).strangers == strangers


def test_sealed_sends_have_a_budget_per_route():
    h = Harness(sealed_sends_per_min=3)
    p = People(h, "bob")
    route = os.urandom(18)
    codes = [h.seal(route, "bob", p.keys["bob"]).kind for _ in range(4)]
    assert codes == [Kind.ACCEPTED] * 3 + [Kind.ERROR]
    assert h.seal(os.urandom(18), "bob", p.keys["bob"]).kind is Kind.ACCEPTED  # another route


# --- anonymous lookups ----------------------------------------------------------------------


def test_the_work_a_lookup_pays_grows_as_the_pool_runs_low():
    assert [lookup_difficulty(n) for n in (200, 32, 31, 16, 15, 8, 7, 4, 3, 2, 1)] == [
        0,
        0,
        12,
        12,
        14,
        14,
        16,
        16,
        18,
        18,
        20,
    ]


def _lookup(h: Harness, name: str, work: int | None, route=None) -> wire.Answer:
    """An anonymous lookup with `work` bits solved for its request id (None: a nonce
    that proves no work at all)."""
    request_id = os.urandom(16)
    bound = pow.lookup(h.node.signing_public, request_id, name)
    if work is None:
        nonce = next(n for n in range(1000) if not pow.check(bound, n, 1))
    else:
        nonce = pow.solve(bound, work)
    data, _ = wire.encode_anonymous_request(
        Kind.LOOKUP, {"username": name, "proof_of_work": nonce}, T0, request_id
    )
    return h.answer_to(data, request_id, route or os.urandom(18))


def test_draining_one_time_keys_by_anonymous_lookups_costs_more_work_per_key():
    """Each one-time key costs the work of `lookup_difficulty`; a lookup without it gets
    POW_REQUIRED, and once the pool is empty the fallback is answered with no work asked."""
    h = Harness(lookups_per_min=1000)
    who, tag = user()
    h.register(who, tag, "bob")  # five one-time keys
    asked = []
    for left in range(5, 0, -1):
        refused = _lookup(h, "bob", None)
        assert refused.kind is Kind.POW_REQUIRED
        asked.append(refused.body["difficulty"])
        assert h.store.count_one_time_keys(h.hash("bob")) == left  # nothing taken
        got = _lookup(h, "bob", refused.body["difficulty"])
        assert got.kind is Kind.BUNDLE and len(got.body["bundle"].one_time_keys) == 1
    assert asked == [16, 16, 18, 18, 20]
    assert h.store.count_one_time_keys(h.hash("bob")) == 0
    empty = _lookup(h, "bob", None)
    assert empty.body["bundle"].one_time_keys == ()
    assert empty.body["bundle"].fallback.key_id == 1000  # the fallback stays, for free


def test_an_anonymous_lookup_answers_the_bundle_and_the_strangers_policy():
    h = Harness(keys_low=10)
    who, tag = user()
    h.register(who, tag, "bob")
    h.answer(who, tag, Kind.SET_ACCESS, access_verifier=bytes(32), strangers=7)
    data, _ = wire.encode_anonymous_request(
        Kind.LOOKUP,
        {
            "username": "Bob",
            "proof_of_work": pow.solve(pow.lookup(h.node.signing_public, b"r" * 16, "Bob"), 20),
        },
        T0,
        b"r" * 16,
    )
    out = h.service.handle_batch([(data, os.urandom(18))], T0)
    answer = wire.decode_answer(out[0].message, h.key, wire.ANONYMOUS)
    assert answer.kind is Kind.BUNDLE
    assert (answer.body["username"], answer.body["identity"]) == ("bob", who.signing_public)
    assert answer.body["strangers"] == 7
    assert answer.body["bundle"].agreement_signature == who.sign(
        "agreement-key", who.agreement_public
    )
    keys_low = wire.decode_answer(out[1].message, h.key, who.signing_public)
    assert (out[1].tag, keys_low.kind, keys_low.body) == (
        tag,
        Kind.KEYS_LOW,
        {"one_time_keys_left": 4},
    )
    assert _lookup(h, "nobody", None).body["code"] == ErrorCode.NOT_FOUND


def test_anonymous_lookups_are_limited_per_route():
    h = Harness(lookups_per_min=3)
    h.register(*user(), "bob")
    route = os.urandom(18)
    answers = [_lookup(h, "bob", None, route) for _ in range(4)]
    assert [a.kind for a in answers] == [Kind.POW_REQUIRED] * 3 + [Kind.ERROR]
    assert answers[-1].body["code"] == ErrorCode.RATE_LIMITED
    assert _lookup(h, "bob", None).kind is Kind.POW_REQUIRED  # another route


def test_an_account_from_before_agreement_signatures_gets_zeros_until_it_publishes_one():
    h = Harness()
    who, tag = user()
    h.register(who, tag, "bob")
    h.sqlite.execute("UPDATE users SET agreement_signature = NULL")  # as migrated
    assert _lookup(h, "bob", 20).body["bundle"].agreement_signature == bytes(64)
    forged = h.answer(
        who,
        tag,
        Kind.PUBLISH_KEYS,
        one_time_keys=(),
        fallback=None,
        agreement_signature=who.sign("agreement-key", os.urandom(32)),
    )
    assert forged.body["code"] == ErrorCode.BAD_SIGNATURE
    signature = who.sign("agreement-key", who.agreement_public)
    published = h.answer(
        who, tag, Kind.PUBLISH_KEYS, one_time_keys=(), fallback=None, agreement_signature=signature
    )
    assert published.kind is Kind.KEYS_PUBLISHED
    assert _lookup(h, "bob", 20).body["bundle"].agreement_signature == signature


def test_frontends_are_answered_once_the_runner_gave_the_descriptor():
    h = Harness()
    assert h.anonymous(os.urandom(18), Kind.FRONTENDS).body["code"] == ErrorCode.BUSY
    h.service.descriptor = b"signed descriptor"
    answer = h.anonymous(os.urandom(18), Kind.FRONTENDS)
    assert answer.kind is Kind.FRONTENDS_ARE and answer.body == {"descriptor": b"signed descriptor"}


def test_an_undecodable_anonymous_request_is_refused_for_nobody():
    h = Harness()
    data, request_id = wire.encode_anonymous_request(Kind.FRONTENDS, {}, T0)
    answer = h.answer_to(data + b"junk", request_id, os.urandom(18))
    assert answer.body["code"] == ErrorCode.BAD_REQUEST


# --- what the operator sees --------------------------------------------------------------------


def test_the_operator_finds_no_name_no_sender_and_no_anonymous_route_at_rest(tmp_path):
    """After registrations, lookups, sealed sends both ways (a contact's and a stranger's
    first), receipts and acks: no username in the database file or its WAL, no sender
    column, and no anonymous route in `users`."""
    h = Harness(tmp_path / "node.db")
    p = People(h, "alicewonder", "bobthebuilder", strangers=12)
    anonymous = set(p.routes.values())
    for name in p.who:
        other = "bobthebuilder" if name == "alicewonder" else "alicewonder"
        assert _lookup(h, other, 16, p.routes[name]).kind is Kind.BUNDLE
    first = h.seal(p.routes["alicewonder"], "bobthebuilder", work=12)  # a stranger's first
    assert first.kind is Kind.ACCEPTED
    for sender, recipient in [("bobthebuilder", "alicewonder"), ("alicewonder", "bobthebuilder")]:
        for _ in range(3):  # messages and the receipts that answer them
            assert p.send(sender, recipient, contact=True) == "accepted"
    for name, (who, tag) in p.who.items():
        queued = h.store.queued(h.hash(name), 100)
        h.answer(who, tag, Kind.ACK, message_ids=tuple(m.message_id for m in queued))
        assert h.store.user(h.hash(name)).sender_tag == tag
    routes = {row[0] for row in h.sqlite.execute("SELECT sender_tag FROM users")}
    assert not routes & anonymous
    for (table,) in h.sqlite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns = {row[1] for row in h.sqlite.execute(f"PRAGMA table_info({table})")}
        assert not columns & {"sender", "username", "skeleton"}, table
    files = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    assert any(f.name.endswith("-wal") for f in tmp_path.iterdir())
    for name in p.who:
        assert name.encode() not in files
        assert names.skeleton(name).encode() not in files


def test_a_sender_certificate_is_for_a_registered_users_own_name_and_identity():
    h = Harness(certificate_ttl_ms=1000)
    who, tag = user()
    unregistered = h.answer(who, tag, Kind.CERTIFY, username="bob")
    assert unregistered.body["code"] == ErrorCode.NOT_REGISTERED
    h.register(who, tag, "bob")
    h.register(*user(), "carol")
    assert h.answer(who, tag, Kind.CERTIFY, username="carol").body["code"] == ErrorCode.BAD_REQUEST
    answer = h.answer(who, tag, Kind.CERTIFY, T0 + 1, username="Bob")
    certificate = wire.decode_certificate(answer.body["certificate"], h.key, T0)
    assert certificate == wire.Certificate("bob", who.signing_public, T0 + 1 + 1000)


# --- one database, several node processes ---------------------------------------------


class ConflictOnce:
    """A database whose first transaction meets another process's (`StoreConflict` as
    it would commit): nothing of it stays."""

    def __init__(self, db):
        self.db, self.conflicts = db, 1

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    @contextlib.asynccontextmanager
    async def transaction(self):
        async with self.db.transaction():
            yield
            if self.conflicts:
                self.conflicts -= 1
                raise StoreConflict


def test_a_batch_that_meets_another_transaction_runs_again_and_answers_once():
    h = Harness(store=lambda db, names: NodeStore(ConflictOnce(db), names))
    bob, home = user()
    h.real.store.db.conflicts = 0
    h.register(bob, home, "bob")
    h.real.store.db.conflicts = 1
    route = os.urandom(18)
    data, request_id = h.sealed_send("bob", payload=b"hello", work=16, message_id=b"m" * 16)
    out = h.service.handle_batch([(data, route)], T0)
    assert h.real.store.db.conflicts == 0  # the first run was rolled back
    answers = [o for o in out if o.frame_id == wire.answer_frame_id(request_id)]
    assert [wire.decode_answer(o.message, h.key, wire.ANONYMOUS).kind for o in answers] == [
        Kind.ACCEPTED
    ]
    assert [o.tag for o in out if o not in answers] == [home]  # pushed once
    assert h.store.queue_size(h.hash("bob")) == (1, 5)
    assert h.store.queued_bytes() == 5
    assert h.service.counts[("sealed_send", "ok")] == 1  # counted once, after the commit


def test_two_processes_answering_one_request_id_at_once_give_one_answer(pg_url):
    """Two node processes on one PostgreSQL handle the same lookup at once: both read its
    id ahead as unseen, the second's record of it meets the first's, its batch runs again
    and answers the first's answer; one one-time key is taken."""
    node, (bob, home) = _native.Identity.generate(), user()
    config = NodeConfig(pow_difficulty=0, lookups_per_min=100)
    request_id = os.urandom(16)
    work = pow.solve(pow.lookup(node.signing_public, request_id, "bob"), 16)
    data, _ = wire.encode_anonymous_request(
        Kind.LOOKUP, {"username": "bob", "proof_of_work": work}, T0, request_id
    )

    async def go():
        stores = [await open_store(pg_url, name_key(node.secret_bytes())) for _ in range(2)]
        one, two = (NodeService(node, store, config) for store in stores)
        key = await one.store.add_user("bob", bob.signing_public, bundle(bob), home, T0)
        outs = await asyncio.gather(
            *(s.handle_batch([(data, os.urandom(18))], T0) for s in (one, two))
        )
        answers = {
            o.message for out in outs for o in out if o.frame_id == wire.answer_frame_id(request_id)
        }
        assert len(answers) == 1
        assert await one.store.count_one_time_keys(key) == 4
        assert one.counts + two.counts == {("lookup", "ok"): 1, ("lookup", "again"): 1}
        for store in stores:
            await store.close()

    asyncio.run(asyncio.wait_for(go(), 60))


class Blind(NodeStore):
    """A store that finds every name free, as if another process registered a look-alike
    between this one's check and its insert."""

    async def skeleton_taken(self, skeleton):
        return False


def test_a_look_alike_registered_meanwhile_by_another_process_is_a_taken_name(tmp_path):
    first = Harness(tmp_path / "node.db")
    second = Harness(tmp_path / "node.db", node=first.node, store=Blind)
    who, tag = user()
    offered, challenge = second.begin(who, tag, "rnartin")
    assert first.register(*user(), "martin").kind is Kind.REGISTERED
    refused = second.finish(who, tag, "rnartin", offered, challenge)
    assert refused.body["code"] == ErrorCode.NAME_TAKEN
    assert second.store.count_users() == 1
    assert second.store.user_by_identity(who.signing_public) is None


def test_processes_on_one_database_share_the_identity_rate_and_the_registration_work(tmp_path):
    config = {
        "requests_per_s": 0.001,
        "request_burst": 4,
        "pow_difficulty": 4,
        "pow_free_registrations": 1,
    }
    one = Harness(tmp_path / "node.db", **config)
    two = Harness(tmp_path / "node.db", node=one.node, **config)
    assert two.begin(*user(), "first")[1]["difficulty"] == 4
    for name in ("alice", "bob"):
        one.register(*user(), name)
    # two registrations on the other process: one more bit per doubling, here too
    assert two.begin(*user(), "carol")[1]["difficulty"] == 6
    alice, home = user()
    one.register(alice, home, "alice2")  # 2 of alice2's 4 tokens
    assert one.answer(alice, home, Kind.FETCH, max=1).kind is Kind.FETCHED
    assert two.answer(alice, home, Kind.FETCH, max=1).kind is Kind.FETCHED  # the 4th
    assert two.answer(alice, home, Kind.FETCH, max=1).body["code"] == ErrorCode.RATE_LIMITED
    assert one.answer(alice, home, Kind.FETCH, max=1).body["code"] == ErrorCode.RATE_LIMITED


class Woken(NodeStore):
    """A store that notes the frontends it wakes."""

    def __init__(self, db, name_key: bytes):
        super().__init__(db, name_key)
        self.woken: list[int] = []

    async def wake(self, frontend: int) -> None:
        self.woken.append(frontend)
        await super().wake(frontend)


def test_a_push_for_another_process_frontend_waits_in_the_queue_for_it(tmp_path):
    """Process A holds frontend 1, process B frontend 2, where bob is homed: A queues a
    message for bob unpushed and wakes B; B's due pushes send it."""
    a = Harness(tmp_path / "node.db", frontends=frozenset({1}), store=Woken)
    b = Harness(tmp_path / "node.db", node=a.node, frontends=frozenset({2}))
    bob, _ = user()
    home = route(2, os.urandom(16))
    b.register(bob, home, "bob")
    out = a.seal(route(1, os.urandom(16)), "bob", work=16)
    assert out.kind is Kind.ACCEPTED
    assert a.real.store.woken == [2]
    [queued] = a.store.queued(a.hash("bob"), 10)
    assert queued.pushes == 0  # not marked pushed
    assert a.service.due_pushes(T0) == []  # not A's to push
    [push] = b.service.due_pushes(T0)
    assert push.tag == home
    assert wire.decode_answer(push.message, b.key, bob.signing_public).kind is Kind.DELIVER


def test_a_migrated_database_has_queue_sizes_one_total_and_homes(tmp_path):
    """Schema 7 to 8: the per-user counters become the queue's sizes, the one-row total
    shard 0, and each user's home the frontend of their route."""
    path = tmp_path / "node.db"
    old = sqlite_at_schema(path, 7)
    for name, tag in ((b"a", route(3, b"t" * 16)), (b"b", None)):
        old.execute(
            "INSERT INTO users (name_hash, skeleton_hash, identity, agreement, account_key,"
            " account_signature, fallback, sender_tag, created, queued_messages,"
            " queued_bytes) VALUES (?, ?, ?, x'02', x'03', x'04', ?, ?, 0, 2, 7)",
            (name * 32, name * 32, name * 32, _fallback(), tag),
        )
    for n, payload in enumerate((b"abc", b"defg")):
        old.execute(
            "INSERT INTO queue (recipient, message_id, received, payload, next_push,"
            " stranger) VALUES (?, ?, ?, ?, 0, ?)",
            (b"a" * 32, bytes([n]) * 16, T0, payload, n),
        )
    old.execute("UPDATE queue_total SET bytes = 7")
    old.execute("PRAGMA user_version = 7")
    old.commit()
    old.close()
    h = Harness(path)
    assert h.store.schema_version() == newest_schema("nymchat.node")
    assert h.store.queue_size(b"a" * 32) == (2, 7)
    assert h.store.queued_from_strangers(b"a" * 32) == (1, 4)
    assert h.sqlite.execute("SELECT shard, bytes FROM queue_totals").fetchall() == [(0, 7)]
    assert dict(h.sqlite.execute("SELECT name_hash, home FROM users")) == {
        b"a" * 32: 3,
        b"b" * 32: None,
    }
    columns = {row[1] for row in h.sqlite.execute("PRAGMA table_info(users)")}
    assert not {"queued_messages", "queued_bytes"} & columns
    h.store.ack(b"a" * 32, [bytes([0]) * 16])  # to this store's shard; the total holds
    assert h.store.queued_bytes() == 4
    h.service.maintain(T0)  # folds the shards into this store's
    assert h.sqlite.execute("SELECT bytes FROM queue_totals").fetchall() == [(4,)]


def test_each_request_is_logged_with_its_kind_result_and_time_by_the_services_timer(caplog):
    readings = iter(range(0, 10_000, 25))  # 25 ms from one reading to the next
    h = Harness(timer=lambda: next(readings) / 1000)
    with caplog.at_level(logging.INFO, "nymchat.node.service"):
        h.anonymous(os.urandom(18), Kind.FRONTENDS)  # no descriptor yet: busy
        h.service.handle_batch([(b"not a request", os.urandom(18))], T0)
    assert [r.getMessage() for r in caplog.records] == [
        "request frontends: busy in 25.0 ms",
        "request unknown: bad_request in 25.0 ms",
    ]
