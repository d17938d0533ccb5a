"""The node's request handling, sans-I/O: an in-memory database and a clock passed in, so
expiry, retries and limits are checked exactly and instantly."""

import os
import sqlite3

import pytest
from nodeclient import bundle

from nymchat import _native
from nymchat.node.limits import RateLimiter
from nymchat.node.service import NodeConfig, NodeService
from nymchat.node.store import NodeStore
from nymchat.protocol import names, pow, wire
from nymchat.protocol.wire import ErrorCode, Kind

T0 = 1_800_000_000_000


class Harness:
    def __init__(self, **config):
        self.node = _native.Identity.generate()
        self.key = _native.PublicKey(self.node.signing_public)
        self.service = NodeService(
            self.node, NodeStore(":memory:"), NodeConfig(**{"pow_difficulty": 0, **config})
        )

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
    forged = wire.Bundle(
        b.identity_agreement, os.urandom(32), b.account_signature, b.one_time_keys, b.fallback
    )
    answer = h.answer(who, tag, Kind.REGISTER_BEGIN, username="alice", bundle=forged)
    assert answer.body["code"] == ErrorCode.BAD_SIGNATURE


def test_pushes_are_retried_with_backoff_until_acknowledged():
    h = Harness(push_retry_ms=1000)
    (alice, ta), (bob, tb) = user(), user()
    h.register(alice, ta, "alice")
    h.register(bob, tb, "bob")
    data, _ = wire.encode_request(
        alice,
        h.node.signing_public,
        Kind.SEND,
        {"recipient": "bob", "message_id": b"m" * 16, "payload": b"hi"},
        T0,
    )
    out = h.service.handle_batch([(data, ta)], T0)
    assert [o.tag for o in out].count(tb) == 1  # pushed at once
    assert h.service.due_pushes(T0 + 999) == []
    assert [o.tag for o in h.service.due_pushes(T0 + 1000)] == [tb]
    assert h.service.due_pushes(T0 + 2999) == []  # then after 2 s, 4 s, ...
    assert len(h.service.due_pushes(T0 + 3000)) == 1
    assert h.answer(bob, tb, Kind.ACK, T0 + 3001, message_ids=(b"m" * 16,)).body == {"deleted": 1}
    assert h.service.due_pushes(T0 + 100_000) == []


def test_queue_quota_and_retention():
    h = Harness(
        queue_max_messages=3, retention_ms=1000, queue_sender_share=1.0, queue_stranger_share=1.0
    )
    (alice, ta), (bob, tb) = user(), user()
    h.register(alice, ta, "alice")
    h.register(bob, tb, "bob")
    codes = [
        h.answer(
            alice, ta, Kind.SEND, recipient="bob", message_id=os.urandom(16), payload=b"x"
        ).kind
        for _ in range(4)
    ]
    assert codes == [Kind.ACCEPTED] * 3 + [Kind.ERROR]
    assert h.service.maintain(T0 + 5000) == (3, 0)
    assert h.service.store.count_queued() == 0


def test_a_refused_request_does_not_move_the_sender_tag():
    h = Harness()
    (alice, ta), (bob, tb) = user(), user()
    h.register(alice, ta, "alice")
    h.register(bob, tb, "bob")
    elsewhere = os.urandom(16)
    refused = h.answer(
        alice, elsewhere, Kind.SEND, recipient="nobody", message_id=os.urandom(16), payload=b"x"
    )
    assert refused.body["code"] == ErrorCode.NOT_FOUND
    assert h.service.store.user("alice").sender_tag == ta
    h.answer(alice, elsewhere, Kind.FETCH, max=1)
    assert h.service.store.user("alice").sender_tag == elsewhere


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


def _old_database(path, users: list[tuple[str, int]]) -> None:
    """A node database of schema version 2 (skeletons by the old rule), with `users`
    (name, registration time)."""
    from importlib import resources

    old = sqlite3.connect(path)
    for schema in ("001_initial.sql", "002_queue_totals.sql"):
        old.executescript(resources.files("nymchat.node").joinpath(f"schema/{schema}").read_text())
    for n, (name, created) in enumerate(users):
        old.execute(
            "INSERT INTO users (username, skeleton, identity, agreement, account_key,"
            " account_signature, fallback, created) VALUES (?, ?, ?, x'02', x'03',"
            " x'04', x'05', ?)",
            (name, name, bytes([n]) * 32, created),
        )
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()


def test_old_skeletons_are_recomputed_and_both_of_a_look_alike_pair_stay(tmp_path):
    """Users registered under the old rule whose names now look alike both keep their
    accounts; the first registered holds the skeleton, so new look-alikes are refused."""
    _old_database(
        tmp_path / "node.db", [("martin", 2), ("rnartin", 1), ("bob", 1), ("bob-", 3), ("carol", 1)]
    )
    h = Harness()
    h.service.store = NodeStore(tmp_path / "node.db")
    assert dict(h.service.store.db.execute("SELECT username, skeleton FROM users")) == {
        "rnartin": "martln",
        "martin": "martln martin",
        "bob": "bob",
        "bob-": "bob bob-",
        "carol": "carol",
    }
    for look_alike in ("rnart1n", "bob_", "car0l"):
        who, tag = user()
        refused = h.answer(who, tag, Kind.REGISTER_BEGIN, username=look_alike, bundle=bundle(who))
        assert refused.body["code"] == ErrorCode.NAME_TAKEN, look_alike
    assert h.register(*user(), "dave").kind is Kind.REGISTERED


def test_a_database_from_an_older_schema_is_migrated(tmp_path):
    from importlib import resources

    path = tmp_path / "node.db"
    old = sqlite3.connect(path)
    first = resources.files("nymchat.node").joinpath("schema/001_initial.sql").read_text()
    old.executescript(first)
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
    store = NodeStore(path)
    assert store.schema_version == max(
        int(f.name.split("_", 1)[0])
        for f in resources.files("nymchat.node").joinpath("schema").iterdir()
    )
    assert store.queue_size("bob") == (3, 6)
    assert store.queued_bytes() == 6
    assert store.queued_from_strangers("bob") == (0, 0)  # queued before: counted as known
    with store.transaction():
        store.ack("bob", [bytes([0]) * 16])
    assert store.queue_size("bob") == (2, 5)
    assert store.queued_bytes() == 5


class People:
    """Registered users of a harness, by name, who send each other one-byte messages."""

    def __init__(self, h: Harness, *names: str):
        self.h, self.who = h, {name: user() for name in names}
        for name, (who, tag) in self.who.items():
            h.register(who, tag, name)

    def send(self, sender: str, recipient: str, now: int = T0, payload: bytes = b"x"):
        who, tag = self.who[sender]
        answer = self.h.answer(
            who,
            tag,
            Kind.SEND,
            now,
            recipient=recipient,
            message_id=os.urandom(16),
            payload=payload,
        )
        return "accepted" if answer.kind is Kind.ACCEPTED else answer.body["detail"]


def test_one_sender_fills_only_its_share_and_contacts_always_find_room():
    """A sender may fill a quarter of a recipient's queue, the senders the recipient has
    not written to half of it together: the rest is for its contacts."""
    h = Harness(queue_max_messages=8)
    p = People(h, "bob", "carol", "mallory", "eve", "oscar")
    assert p.send("bob", "carol") == "accepted"  # bob writes to carol: he knows her now
    one_sender = (
        "bob's queue holds 2 message(s), 2 bytes, from you: one sender may fill "
        "at most 25% of it; try again once they have fetched them"
    )
    assert [p.send("mallory", "bob") for _ in range(3)] == ["accepted"] * 2 + [one_sender]
    assert [p.send("eve", "bob") for _ in range(3)] == ["accepted"] * 2 + [one_sender]
    assert (
        p.send("oscar", "bob") == "bob's queue has no more room for senders they have "
        "not written to; try again once they have fetched "
        "their messages"
    )
    assert [p.send("carol", "bob") for _ in range(3)] == ["accepted"] * 2 + [one_sender]
    assert h.service.store.queue_size("bob") == (6, 6)
    refused = p.h.answer(
        *p.who["oscar"], Kind.SEND, recipient="bob", message_id=os.urandom(16), payload=b"x"
    )
    assert refused.body["code"] == ErrorCode.QUEUE_FULL
    big = People(Harness(queue_max_bytes=1000), "bob", "mallory")  # shares of bytes too
    assert [big.send("mallory", "bob", payload=bytes(200)) for _ in range(2)] == [
        "accepted",
        "bob's queue holds 1 message(s), 200 bytes, from you: one sender may "
        "fill at most 25% of it; try again once they have fetched them",
    ]


def test_a_retry_of_a_queued_message_is_accepted_even_at_the_quota():
    h = Harness(queue_max_messages=8)  # two per sender
    p = People(h, "bob", "mallory")
    mallory, tag = p.who["mallory"]
    ids = [os.urandom(16) for _ in range(2)]
    for message_id in ids:
        assert (
            h.answer(
                mallory, tag, Kind.SEND, recipient="bob", message_id=message_id, payload=b"x"
            ).kind
            is Kind.ACCEPTED
        )
    again = h.answer(mallory, tag, Kind.SEND, recipient="bob", message_id=ids[0], payload=b"x")
    assert again.kind is Kind.ACCEPTED  # its answer was lost: the client asks again
    assert h.service.store.queue_size("bob") == (2, 2)


def test_a_receipt_to_a_stranger_does_not_make_them_a_contact():
    """A recipient knows a sender once it writes to them, but not within the hour after
    being handed one of their messages (clients send receipts then, automatically). The
    node keeps a keyed hash of the pair and the day, forgotten after the retention."""
    hour, day = 3_600_000, 86_400_000
    h = Harness(retention_ms=14 * day)
    p = People(h, "bob", "mallory")
    known = h.service.known
    assert p.send("mallory", "bob") == "accepted"  # pushed to bob at once
    assert p.send("bob", "mallory", T0 + 2000) == "accepted"  # a receipt, or so it seems
    assert not known.knows("bob", "mallory", T0 + 2000)
    assert p.send("bob", "mallory", T0 + hour + 1000) == "accepted"  # bob writes, later
    assert known.knows("bob", "mallory", T0 + hour + 1000)
    assert known.knows("mallory", "bob", T0)  # mallory wrote first, of her own accord
    rows = h.service.store.db.execute("SELECT pair, last_seen FROM known_senders").fetchall()
    assert len(rows) == 2 and all(len(pair) == 16 and seen % day == 0 for pair, seen in rows)
    assert known.knows("bob", "mallory", T0 + 14 * day)
    h.service.maintain(T0 + 16 * day)
    assert not known.knows("bob", "mallory", T0 + 16 * day)
    assert h.service.store.db.execute(
        "SELECT count(*) FROM known_senders UNION ALL SELECT count(*) FROM recent_pushes"
    ).fetchall() == [(0,), (0,)]


def test_the_node_refuses_more_than_its_total_of_queued_bytes():
    h = Harness(node_queue_max_bytes=1000)
    p = People(h, "alice", "bob", "carol", "dave")
    assert p.send("alice", "bob", payload=bytes(600)) == "accepted"
    full = "this node holds as many queued messages as it may (1000 bytes); try again later"
    assert p.send("carol", "dave", payload=bytes(600)) == full
    bob, tag = p.who["bob"]
    refused = h.answer(
        *p.who["carol"], Kind.SEND, recipient="dave", message_id=os.urandom(16), payload=bytes(600)
    )
    assert refused.body["code"] == ErrorCode.BUSY
    [message] = h.service.store.queued("bob", 1)
    h.answer(bob, tag, Kind.ACK, message_ids=(message.message_id,))
    assert p.send("carol", "dave", payload=bytes(600)) == "accepted"
    dave, tag = p.who["dave"]
    h.answer(dave, tag, Kind.UNREGISTER, username="dave")  # its queue goes with it
    assert h.service.store.queued_bytes() == 0


def test_throwaway_keys_drain_no_one_time_keys_and_share_one_budget():
    """A key not registered here gets the fallback key only; such keys share one budget of
    lookups for the whole node, and every sender tag has its own; registered users keep
    their own buckets."""
    h = Harness(lookups_unregistered_per_min=10, lookups_per_min=5)
    (bob, tb), (alice, ta) = user(), user()
    h.register(bob, tb, "bob")
    h.register(alice, ta, "alice")
    answers = [
        h.answer(_native.Identity.generate(), os.urandom(16), Kind.LOOKUP, username="bob")
        for _ in range(12)
    ]
    assert [a.kind for a in answers] == [Kind.BUNDLE] * 10 + [Kind.ERROR] * 2
    assert all(a.body["bundle"].one_time_keys == () for a in answers[:10])
    assert answers[-1].body["code"] == ErrorCode.RATE_LIMITED
    assert h.service.store.count_one_time_keys("bob") == 5
    got = h.answer(alice, ta, Kind.LOOKUP, username="bob")
    assert len(got.body["bundle"].one_time_keys) == 1  # a registered user is served
    tag = os.urandom(16)  # many keys behind one tag (one nym-client): one bucket
    codes = [
        h.answer(_native.Identity.generate(), tag, Kind.LOOKUP, T0 + 60_000, username="bob").kind
        for _ in range(6)
    ]
    assert codes == [Kind.BUNDLE] * 5 + [Kind.ERROR]
