"""The node as MLS delivery service, sans-I/O: the key-package directory and the group
log (compare-and-set per epoch, access per epoch, fan-out stored once, welcomes released
with their commit). Key packages and MLS messages are opaque bytes to the node."""

import asyncio
import os

import pytest
from oldschema import sqlite_at_schema
from test_node_service import T0, Harness, People, Sync, _fallback

from nymchat.database import newest_schema
from nymchat.node.limits import lookup_difficulty
from nymchat.node.registration import name_key
from nymchat.node.store import open_sqlite
from nymchat.protocol import pow, wire
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

# --- the key-package directory -------------------------------------------------------


def publish(h, p, name, count, last_resort=None, now=T0):
    who, tag = p.who[name]
    packages = tuple(f"{name}-{n}".encode() for n in range(count))
    return h.answer(
        who, tag, Kind.PUBLISH_KEY_PACKAGES, now, key_packages=packages, last_resort=last_resort
    )


def claim(h, name, work: int | None = 0, route=None, now=T0) -> wire.Answer:
    """A claim solving the `work` bits asked (None: a nonce that proves nothing)."""
    data, request_id = wire.encode_anonymous_request(
        Kind.CLAIM_KEY_PACKAGE, {"username": name, "proof_of_work": 0}, now
    )
    bound = pow.lookup(h.node.signing_public, request_id, name)
    if work is None:
        nonce = next(n for n in range(1000) if not pow.check(bound, n, 1))
    else:
        nonce = pow.solve(bound, work)
    body = {"username": name, "proof_of_work": nonce}
    data = wire.encode_anonymous_request(Kind.CLAIM_KEY_PACKAGE, body, now, request_id)[0]
    return h.answer_to(data, request_id, route or os.urandom(18), now)


def test_a_key_package_is_handed_out_once_then_only_the_last_resort():
    h = Harness()
    p = People(h, "bob")
    published = publish(h, p, "bob", 3, last_resort=b"bob-last")
    assert published.body == {"key_packages_left": 3}
    claimed = [claim(h, "bob", 20) for _ in range(5)]
    assert [c.body["key_package"] for c in claimed] == [
        b"bob-0",
        b"bob-1",
        b"bob-2",
        b"bob-last",
        b"bob-last",
    ]
    assert claimed[0].body["username"] == "bob"
    assert claimed[0].body["identity"] == p.who["bob"][0].signing_public
    assert publish(h, p, "bob", 0, last_resort=b"newer").body == {"key_packages_left": 0}
    assert claim(h, "bob").body["key_package"] == b"newer"  # replaced, not added


def test_a_name_without_key_packages_is_not_found():
    h = Harness()
    People(h, "bob")
    refused = claim(h, "bob")
    assert refused.body == {
        "code": ErrorCode.NOT_FOUND,
        "detail": "bob has not published group keys",
    }
    assert claim(h, "nobody").body["code"] == ErrorCode.NOT_FOUND


def test_a_claim_pays_the_lookup_curve_bound_to_its_request():
    h = Harness()
    p = People(h, "bob")
    publish(h, p, "bob", 20)
    bits = lookup_difficulty(20)
    assert bits > 0
    asked = claim(h, "bob", None)
    assert (asked.kind, asked.body) == (Kind.POW_REQUIRED, {"difficulty": bits})
    assert h.store.groups.count_key_packages(h.hash("bob")) == 20  # nothing handed out
    assert claim(h, "bob", bits).kind is Kind.KEY_PACKAGE
    publish(h, p, "bob", 80)
    assert claim(h, "bob", None).kind is Kind.KEY_PACKAGE  # a full pool: free


def test_the_owner_is_pushed_low_water_and_at_most_100_are_kept():
    h = Harness(keys_low=3)
    p = People(h, "bob")
    bob, home = p.who["bob"]
    publish(h, p, "bob", 4)
    full = publish(h, p, "bob", 97)
    assert full.body == {"code": ErrorCode.KEYS_FULL, "detail": "at most 100 key packages are kept"}
    data, request_id = wire.encode_anonymous_request(
        Kind.CLAIM_KEY_PACKAGE, {"username": "bob", "proof_of_work": 0}, T0
    )
    pushes = []
    for left in (4, 3):
        bound = pow.lookup(h.node.signing_public, request_id, "bob")
        body = {"username": "bob", "proof_of_work": pow.solve(bound, lookup_difficulty(left))}
        data = wire.encode_anonymous_request(Kind.CLAIM_KEY_PACKAGE, body, T0, request_id)[0]
        out = h.service.handle_batch([(data, os.urandom(18))], T0)
        pushes += [
            wire.decode_answer(o.message, h.key, bob.signing_public) for o in out if o.tag == home
        ]
        request_id = os.urandom(16)
    assert [(a.kind, a.body) for a in pushes] == [(Kind.KEY_PACKAGES_LOW, {"key_packages_left": 2})]


def test_empty_key_packages_are_refused():
    h = Harness()
    p = People(h, "bob")
    assert publish(h, p, "bob", 0, last_resort=b"").body["code"] == ErrorCode.BAD_REQUEST


# --- the group log -------------------------------------------------------------------


class Group:
    """A group on a harness, as its members' clients drive it: each epoch's access key is
    random, the MLS messages opaque bytes."""

    def __init__(self, h: Harness, p: People):
        self.h, self.p = h, p
        self.id = os.urandom(32)
        self.keys = [os.urandom(32)]  # by epoch
        self.identities = {tag: who for who, tag in p.who.values()}

    def post(self, kind=GroupPost.APPLICATION, epoch=None, payload=b"m", key=None, now=T0, **body):
        """(answer, {member name: [pushes]}) of a post through a fresh route."""
        epoch = len(self.keys) - 1 if epoch is None else epoch
        body = {
            "group_id": self.id,
            "epoch": epoch,
            "message_id": body.pop("message_id", os.urandom(16)),
            "post": kind,
            "access_key": key or self.keys[epoch],
            "next_verifier": None,
            "add": (),
            "remove": (),
            "welcome": None,
            "payload": payload,
            **body,
        }
        data, request_id = wire.encode_anonymous_request(Kind.GROUP_POST, body, now)
        return self.send(data, request_id, now)

    def send(self, data, request_id, now=T0, route=None):
        out = self.h.service.handle_batch([(data, route or os.urandom(18))], now)
        return self.answer_of(out, request_id), self.pushes(out)

    def answer_of(self, out, request_id):
        [answer] = [o for o in out if o.frame_id == wire.answer_frame_id(request_id)]
        return wire.decode_answer(answer.message, self.h.key, wire.ANONYMOUS)

    def pushes(self, out) -> dict[str, list[wire.Answer]]:
        names = {tag: name for name, (_, tag) in self.p.who.items()}
        pushes: dict[str, list[wire.Answer]] = {}
        for o in out:
            if o.tag in names:
                who = self.identities[o.tag]
                pushes.setdefault(names[o.tag], []).append(
                    wire.decode_answer(o.message, self.h.key, who.signing_public)
                )
        return pushes

    def commit(self, add=(), remove=(), welcome=b"welcome", epoch=None, work=None, **body):
        """A commit adding `add` (names: with their access keys unless `work` is given,
        a number of bits to solve, -1 for none) and removing `remove`; its next key is
        kept on success."""
        epoch = len(self.keys) - 1 if epoch is None else epoch
        next_key = os.urandom(32)
        message_id = body.pop("message_id", os.urandom(16))

        def member(name):
            if work is None:
                return wire.NewMember(name, self.p.keys[name], 0)
            bound = pow.send(self.h.node.signing_public, name, message_id)
            if work < 0:  # a nonce that proves nothing
                return wire.NewMember(
                    name, None, next(n for n in range(1000) if not pow.check(bound, n, 1))
                )
            return wire.NewMember(name, None, pow.solve(bound, work))

        answer, pushes = self.post(
            GroupPost.COMMIT,
            epoch,
            body.pop("payload", b"commit"),
            message_id=message_id,
            next_verifier=body.pop("next_verifier", wire.access_verifier(next_key)),
            add=tuple(member(name) for name in add),
            remove=tuple(remove),
            welcome=welcome if add else None,
            **body,
        )
        if answer.kind is Kind.POSTED and epoch == len(self.keys) - 1:
            self.keys.append(next_key)
        return answer, pushes

    @property
    def epoch(self) -> int:
        return len(self.keys) - 1

    def members(self) -> set[bytes]:
        return set(self.h.store.groups.members(self.id))


def kinds(pushes) -> dict[str, list[tuple[Kind, int]]]:
    return {
        name: [(a.kind, a.body.get("post")) for a in answers] for name, answers in pushes.items()
    }


def test_a_commit_at_epoch_0_creates_the_group_and_welcomes_only_those_it_adds():
    h = Harness()
    p = People(h, "alice", "bob", "carol", "dave")
    g = Group(h, p)
    answer, pushes = g.commit(add=["alice", "bob", "carol"])
    assert (answer.kind, answer.body["epoch"]) == (Kind.POSTED, 1)
    assert g.members() == {h.hash(n) for n in ("alice", "bob", "carol")}
    assert kinds(pushes) == {n: [(Kind.GROUP_DELIVER, GroupPost.WELCOME)] for n in pushes}
    assert set(pushes) == {"alice", "bob", "carol"}  # the commit had no one before it
    [welcome] = pushes["bob"]
    assert welcome.body["group_id"] == g.id and welcome.body["epoch"] == 1
    assert welcome.body["payload"] == b"welcome"
    answer, pushes = g.commit(add=["dave"])
    assert kinds(pushes) == {
        "alice": [(Kind.GROUP_DELIVER, GroupPost.COMMIT)],
        "bob": [(Kind.GROUP_DELIVER, GroupPost.COMMIT)],
        "carol": [(Kind.GROUP_DELIVER, GroupPost.COMMIT)],
        "dave": [(Kind.GROUP_DELIVER, GroupPost.WELCOME)],
    }


def test_two_commits_for_one_epoch_one_wins_the_other_conflicts():
    h = Harness()
    p = People(h, "alice", "bob", "carol")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    first, _ = g.commit(add=["carol"], epoch=1)
    second, pushes = g.commit(remove=["bob"], epoch=1)
    assert (first.kind, first.body["epoch"]) == (Kind.POSTED, 2)
    assert second.body == {
        "code": ErrorCode.EPOCH_CONFLICT,
        "detail": "another commit was accepted first: the group is at epoch 2",
    }
    assert pushes == {}
    assert g.members() == {h.hash(n) for n in ("alice", "bob", "carol")}
    assert h.store.groups.group(g.id).epoch == 2


def test_a_commit_with_an_earlier_commits_message_id_is_refused_and_alone():
    """Its entry could not be stored twice: refused as a bad request, never an error of
    the store (on PostgreSQL that would run its whole batch again)."""
    h = Harness()
    p = People(h, "alice", "bob", "carol")
    g = Group(h, p)
    old_id = os.urandom(16)
    g.commit(add=["alice", "bob"], message_id=old_id)
    answer, pushes = g.commit(add=["carol"], message_id=old_id)
    assert answer.body == {
        "code": ErrorCode.BAD_REQUEST,
        "detail": "this message id was used in this group",
    }
    assert pushes == {} and g.epoch == 1
    assert g.commit(add=["carol"])[0].kind is Kind.POSTED


def test_a_refused_commit_releases_no_welcome_and_changes_nothing():
    h = Harness()
    p = People(h, "alice", "bob", "carol")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    h.answer(*p.who["carol"], Kind.SET_ACCESS, access_verifier=bytes(32), strangers=8)
    before = h.sqlite.execute("SELECT count(*) FROM group_entries").fetchone()[0]
    for refused, code in [
        (g.commit(add=["carol"], epoch=0), ErrorCode.EPOCH_CONFLICT),  # its key still kept
        (g.commit(add=["carol"], key=os.urandom(32)), ErrorCode.FORBIDDEN),
        (g.commit(add=["carol"], work=-1), Kind.POW_REQUIRED),
    ]:
        answer, pushes = refused
        assert answer.body.get("code", answer.kind) == code and pushes == {}
    assert h.sqlite.execute("SELECT count(*) FROM group_entries").fetchone()[0] == before
    assert h.store.groups.queued(h.hash("carol"), 10) == []
    assert (h.store.groups.group(g.id).epoch, g.members()) == (1, {h.hash("alice"), h.hash("bob")})
    answer, pushes = g.commit(add=["carol"], work=8)
    assert answer.kind is Kind.POSTED
    assert kinds(pushes)["carol"] == [(Kind.GROUP_DELIVER, GroupPost.WELCOME)]
    assert h.sqlite.execute("SELECT count(*) FROM group_entries").fetchone()[0] == before + 2


def test_strangers_are_added_on_their_terms():
    h = Harness()
    p = People(h, "alice", "bob", "carol", strangers=10)
    g = Group(h, p)
    assert g.commit(add=["alice"])[0].kind is Kind.POSTED
    asked, pushes = g.commit(add=["bob"], work=-1)
    assert (asked.kind, asked.body, pushes) == (Kind.POW_REQUIRED, {"difficulty": 10}, {})
    assert h.sqlite.execute("SELECT count(*) FROM group_entries").fetchone()[0] == 1
    assert g.commit(add=["bob"], work=10)[0].kind is Kind.POSTED
    carol_key = wire.access_verifier(p.keys["carol"])
    h.answer(*p.who["carol"], Kind.SET_ACCESS, access_verifier=carol_key, strangers=255)
    denied, _ = g.commit(add=["carol"], work=16)
    assert denied.body == {
        "code": ErrorCode.FORBIDDEN,
        "detail": "carol takes messages from their contacts only",
    }
    assert g.commit(add=["carol"])[0].kind is Kind.POSTED  # with her own access key
    assert g.commit(add=["nobody"], work=0)[0].body["code"] == ErrorCode.NOT_FOUND


def test_a_wrong_access_key_is_forbidden_without_saying_whether_the_group_exists():
    h = Harness()
    p = People(h, "alice")
    g = Group(h, p)
    g.commit(add=["alice"])
    wrong, _ = g.post(key=os.urandom(32))
    unknown = Group(h, p).post(epoch=0)[0]
    assert (
        wrong.body
        == unknown.body
        == {
            "code": ErrorCode.FORBIDDEN,
            "detail": "not a member of this group",
        }
    )
    later = Group(h, p)
    later.keys.append(os.urandom(32))
    assert later.commit(add=["alice"])[0].body == unknown.body  # no creation past epoch 0


def test_application_messages_of_the_kept_epochs_are_taken_older_ones_refused():
    h = Harness()
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    for _ in range(4):
        g.commit()  # key updates: epoch 5
    assert g.epoch == 5
    for epoch in (5, 4, 3, 2):
        answer, pushes = g.post(epoch=epoch)
        assert (answer.kind, answer.body["epoch"]) == (Kind.POSTED, 5)
        assert [a.body["epoch"] for a in pushes["bob"]] == [epoch]
    for epoch in (1, 0):
        assert g.post(epoch=epoch)[0].body["code"] == ErrorCode.FORBIDDEN
    assert g.post(epoch=6, key=os.urandom(32))[0].body["code"] == ErrorCode.FORBIDDEN
    proposal, pushes = g.post(GroupPost.PROPOSAL, epoch=4)
    assert proposal.kind is Kind.POSTED
    assert kinds(pushes)["alice"] == [(Kind.GROUP_DELIVER, GroupPost.PROPOSAL)]


def test_a_commit_reaches_the_member_it_removes_and_no_more_after():
    h = Harness()
    p = People(h, "alice", "bob", "carol")
    g = Group(h, p)
    g.commit(add=["alice", "bob", "carol"])
    answer, pushes = g.commit(remove=["bob", "nobody"])
    assert answer.kind is Kind.POSTED
    assert set(pushes) == {"alice", "bob", "carol"}
    assert g.members() == {h.hash("alice"), h.hash("carol")}
    assert set(g.post()[1]) == {"alice", "carol"}
    assert [m.post for m in h.store.groups.queued(h.hash("bob"), 10)] == [
        GroupPost.WELCOME,
        GroupPost.COMMIT,
    ]


def test_a_post_is_stored_once_for_all_its_recipients():
    h = Harness()
    names = [f"user{n}" for n in range(30)]
    p = People(h, *names)
    g = Group(h, p)
    g.commit(add=names)
    _, pushes = g.post(payload=b"p" * 1000)
    assert len(pushes) == 30
    rows = h.sqlite.execute(
        "SELECT count(*), sum(length(payload)) FROM group_entries WHERE post = ?",
        (GroupPost.APPLICATION,),
    ).fetchone()
    assert rows == (1, 1000)
    deliveries = h.sqlite.execute(
        "SELECT count(*) FROM group_deliveries d JOIN group_entries e ON e.seq = d.entry"
        " WHERE e.post = ?",
        (GroupPost.APPLICATION,),
    ).fetchone()[0]
    assert deliveries == 30


def test_a_retried_post_gets_the_same_answer_and_is_stored_once():
    h = Harness()
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    data, request_id = wire.encode_anonymous_request(
        Kind.GROUP_POST,
        {
            "group_id": g.id,
            "epoch": 1,
            "message_id": b"m" * 16,
            "post": GroupPost.APPLICATION,
            "access_key": g.keys[1],
            "next_verifier": None,
            "add": (),
            "remove": (),
            "welcome": None,
            "payload": b"hello",
        },
        T0,
    )
    first = h.service.handle_batch([(data, os.urandom(18))], T0)
    again = h.service.handle_batch([(data, os.urandom(18))], T0 + 1000)
    assert [o.message for o in again] == [
        o.message for o in first if o.frame_id == wire.answer_frame_id(request_id)
    ]
    anew, pushes = g.post(message_id=b"m" * 16, payload=b"hello")  # another request, same post
    assert (anew.kind, pushes) == (Kind.POSTED, {})
    assert h.store.groups.count_entries(g.id) == 2  # the welcome and the message
    # a commit's retry after it was accepted: accepted, not a conflict with itself
    message_id = os.urandom(16)
    assert g.commit(message_id=message_id)[0].body["epoch"] == 2
    retried, pushes = g.commit(epoch=1, message_id=message_id)
    assert (retried.kind, retried.body["epoch"], pushes) == (Kind.POSTED, 2, {})


def test_leaving_stops_deliveries_and_drops_what_was_pending():
    h = Harness()
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    g.post()
    bob, home = p.who["bob"]
    assert h.answer(bob, home, Kind.LEAVE_GROUP, group_id=g.id).kind is Kind.LEFT_GROUP
    assert h.store.groups.queued(h.hash("bob"), 10) == []
    assert set(g.post()[1]) == {"alice"}
    alice, home = p.who["alice"]
    assert h.answer(alice, home, Kind.LEAVE_GROUP, group_id=g.id).kind is Kind.LEFT_GROUP
    assert h.store.groups.group(g.id) is None  # the last member gone, the group goes
    assert h.sqlite.execute("SELECT count(*) FROM group_verifiers").fetchone()[0] == 0


def test_unregistering_removes_memberships_and_deliveries():
    h = Harness()
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    g.post(payload=b"x" * 100)
    publish(h, p, "bob", 5, last_resort=b"last")
    bob, home = p.who["bob"]
    h.answer(bob, home, Kind.UNREGISTER, username="bob")
    assert g.members() == {h.hash("alice")}
    assert set(g.post()[1]) == {"alice"}
    db = h.sqlite
    assert db.execute("SELECT count(*) FROM key_packages").fetchone()[0] == 0
    assert (
        db.execute(
            "SELECT count(*) FROM group_deliveries WHERE recipient = ?", (h.hash("bob"),)
        ).fetchone()[0]
        == 0
    )
    alice, home = p.who["alice"]
    h.answer(alice, home, Kind.UNREGISTER, username="alice")
    assert db.execute("SELECT count(*) FROM group_entries").fetchone()[0] == 0
    assert h.store.groups.count_groups() == 0
    assert h.store.queued_bytes() == 0


def test_deliveries_are_fetched_acked_retried_and_expire():
    h = Harness(retention_ms=10_000, push_retry_ms=1000)
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    _, pushes = g.post(payload=b"hello")
    [push] = [a for a in pushes["bob"]]
    assert push.body["payload"] == b"hello" and push.body["sent"] == T0
    bob, home = p.who["bob"]
    fetched = h.call(bob, home, Kind.FETCH, T0, max=10)
    assert [a.kind for _, a in fetched] == [Kind.FETCHED, Kind.GROUP_DELIVER, Kind.GROUP_DELIVER]
    assert fetched[0][1].body == {"pushed": 2, "queued": 2}
    assert {o.tag for o in h.service.due_pushes(T0 + 1000)} == {p.who["alice"][1]}
    assert {o.tag for o in h.service.due_pushes(T0 + 2000)} == {home}  # fetched at T0
    acked = h.answer(bob, home, Kind.ACK, message_ids=(push.body["message_id"],))
    assert acked.body == {"deleted": 1}
    assert len(h.store.groups.queued(h.hash("bob"), 10)) == 1  # the welcome
    assert h.store.groups.count_entries(g.id) == 2  # alice still needs the message
    alice, home = p.who["alice"]
    h.answer(alice, home, Kind.ACK, message_ids=(push.body["message_id"],))
    assert h.store.groups.count_entries(g.id) == 1  # no one needs it: gone
    assert h.service.maintain(T0 + 10_001)[0] == 1  # the welcome, past retention
    assert h.store.groups.queued(h.hash("bob"), 10) == []
    assert h.store.queued_bytes() == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"payload": b"x" * 65537}, ErrorCode.TOO_LARGE),
        ({"post": GroupPost.WELCOME}, ErrorCode.BAD_REQUEST),
        ({"post": 9}, ErrorCode.BAD_REQUEST),
        ({"remove": ("alice",)}, ErrorCode.BAD_REQUEST),
        ({"welcome": b"w"}, ErrorCode.BAD_REQUEST),
    ],
)
def test_malformed_application_posts_are_refused(change, code):
    h = Harness()
    p = People(h, "alice")
    g = Group(h, p)
    g.commit(add=["alice"])
    assert g.post(**change)[0].body["code"] == code


def test_commits_are_bounded_in_members_and_bytes():
    h = Harness(group_max_members=3, max_commit_bytes=1000)
    p = People(h, "alice", "bob", "carol", "dave")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    too_many, _ = g.commit(add=["carol", "dave"])
    assert too_many.body == {"code": ErrorCode.TOO_LARGE, "detail": "a group has at most 3 members"}
    assert g.commit(add=["carol"], payload=b"c" * 500, welcome=b"w" * 501)[0].body["code"] == (
        ErrorCode.TOO_LARGE
    )
    assert g.commit(add=["carol", "dave"], remove=["bob"])[0].kind is Kind.POSTED
    assert g.commit(remove=["alice", "carol", "dave"])[0].body["code"] == ErrorCode.BAD_REQUEST
    assert g.commit(next_verifier=None)[0].body["code"] == ErrorCode.BAD_REQUEST


def test_a_groups_log_is_bounded():
    h = Harness(queue_max_messages=3)
    p = People(h, "alice")
    g = Group(h, p)
    g.commit(add=["alice"])
    assert [g.post()[0].kind for _ in range(3)] == [Kind.POSTED, Kind.POSTED, Kind.ERROR]


def test_a_schema_6_database_gains_the_group_tables_and_keeps_its_users(tmp_path):
    path = tmp_path / "node.db"
    old = sqlite_at_schema(path, 6)
    old.execute(
        "INSERT INTO users (name_hash, skeleton_hash, identity, agreement, account_key,"
        " account_signature, fallback, created) VALUES (?, ?, ?, x'02', x'03', x'04', ?, 0)",
        (b"n" * 32, b"s" * 32, b"i" * 32, _fallback()),
    )
    old.execute("PRAGMA user_version = 6")
    old.commit()
    old.close()
    h = Harness(path)
    assert (h.store.schema_version(), h.store.count_users()) == (newest_schema("nymchat.node"), 1)
    p = People(h, "alice", "bob")
    publish(h, p, "bob", 1)
    assert claim(h, "bob", 20).body["key_package"] == b"bob-0"
    g = Group(h, p)
    assert g.commit(add=["alice", "bob"])[0].kind is Kind.POSTED
    assert h.sqlite.execute("PRAGMA foreign_key_check").fetchall() == []
    h.store.close()
    again = Sync(open_sqlite(path, name_key(h.node.secret_bytes())), asyncio.new_event_loop())
    assert again.groups.group(g.id).epoch == 1


def test_the_largest_commit_the_node_takes_fits_one_request():
    from nymchat.node.runner import MAX_REQUEST_BYTES
    from nymchat.node.service import NodeConfig

    size = NodeConfig().max_commit_bytes
    body = {
        "group_id": bytes(32),
        "epoch": 2**64 - 1,
        "message_id": bytes(16),
        "post": GroupPost.COMMIT,
        "access_key": bytes(32),
        "next_verifier": bytes(32),
        "add": (wire.NewMember("a" * 255, bytes(32), 2**64 - 1),) * wire.MAX_LIST,
        "remove": ("b" * 255,) * wire.MAX_LIST,
        "welcome": bytes(size // 2),
        "payload": bytes(size - size // 2),
    }
    data, _ = wire.encode_anonymous_request(Kind.GROUP_POST, body, T0)
    assert len(data) <= MAX_REQUEST_BYTES


def test_deliveries_follow_a_member_to_their_new_route():
    h = Harness()
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"])
    bob, _ = p.who["bob"]
    moved = os.urandom(18)  # bob's client came back through another route
    p.who["bob"] = (bob, moved)
    g.identities[moved] = bob
    h.answer(
        bob,
        moved,
        Kind.SET_ACCESS,
        access_verifier=wire.access_verifier(p.keys["bob"]),
        strangers=0,
    )
    due = h.service.due_pushes(T0)  # rescheduled to now, to the new route
    assert [o.tag for o in due] == [moved]
    [push] = g.pushes(due)["bob"]
    assert push.body["post"] == GroupPost.WELCOME


def test_group_entries_count_in_the_nodes_total_of_bytes():
    h = Harness(node_queue_max_bytes=3000)
    p = People(h, "alice", "bob")
    g = Group(h, p)
    g.commit(add=["alice", "bob"], welcome=b"w" * 1000)
    full, _ = g.post(payload=b"x" * 2001)
    assert full.body["code"] == ErrorCode.BUSY
    assert g.post(payload=b"x" * 2000)[0].kind is Kind.POSTED
    assert h.store.queued_bytes() == 3000
    for name in ("alice", "bob"):
        who, home = p.who[name]
        ids = tuple(m.message_id for m in h.store.groups.queued(h.hash(name), 10))
        h.answer(who, home, Kind.ACK, message_ids=ids)
    assert h.store.queued_bytes() == 0


def test_claims_and_posts_are_rate_limited_per_route():
    h = Harness(lookups_per_min=2, sealed_sends_per_min=3)
    p = People(h, "alice")
    publish(h, p, "alice", 0, last_resort=b"last")
    route = os.urandom(18)
    claims = [claim(h, "alice", route=route).kind for _ in range(3)]
    assert claims == [Kind.KEY_PACKAGE, Kind.KEY_PACKAGE, Kind.ERROR]
    assert claim(h, "alice").kind is Kind.KEY_PACKAGE  # another route
    g = Group(h, p)
    g.commit(add=["alice"])
    data = [
        wire.encode_anonymous_request(
            Kind.GROUP_POST,
            {
                "group_id": g.id,
                "epoch": 1,
                "message_id": os.urandom(16),
                "post": GroupPost.APPLICATION,
                "access_key": g.keys[1],
                "next_verifier": None,
                "add": (),
                "remove": (),
                "welcome": None,
                "payload": b"m",
            },
            T0,
        )
        for _ in range(4)
    ]
    answers = [g.send(d, request_id, route=route)[0] for d, request_id in data]
    assert [a.body.get("code") for a in answers] == [None, None, None, ErrorCode.RATE_LIMITED]
