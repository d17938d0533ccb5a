"""`nymchat mixnet` against the nym-client API reference, over raw websockets (not
through nymchat's transport): exact JSON, exact binary layouts, error texts, sender tag
rules, the one-connection rule, offline buffering, SURBs, reordering and faults."""

import json
import re
import struct
import time

import pytest
from websockets.exceptions import InvalidHandshake, InvalidMessage
from websockets.sync.client import connect

from nymchat.nym import base58

pytestmark = pytest.mark.cli
ADDRESS = re.compile(
    r"^([1-9A-HJ-NP-Za-km-z]{43,44})\.([1-9A-HJ-NP-Za-km-z]{43,44})"
    r"@([1-9A-HJ-NP-Za-km-z]{43,44})$"
)
TAG = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{21,22}$")
QUIET = 0.4  # seconds of silence that count as "nothing arrives" at zero delay
NOT_A_POINT = bytes([2]) * 32  # no Ed25519 point has this encoding


def ws(mixnet, name):
    return connect(f"{mixnet.url}/{name}", compression=None, max_size=None)


def address_text(conn) -> str:
    conn.send('{"type":"selfAddress"}')
    return json.loads(conn.recv(timeout=5))["address"]


def address_bytes(conn) -> bytes:
    conn.send(b"\x03")
    frame = conn.recv(timeout=5)
    assert frame[0] == 0x02 and len(frame) == 97
    return frame[1:]


def send_anonymous_bin(recipient: bytes, message: bytes, surbs: int, conn_id: int = 0) -> bytes:
    return (
        b"\x01"
        + struct.pack(">I", surbs)
        + recipient
        + struct.pack(">Q", conn_id)
        + struct.pack(">Q", len(message))
        + message
    )


def send_bin(recipient: bytes, message: bytes, conn_id: int = 0) -> bytes:
    return b"\x00" + recipient + struct.pack(">QQ", conn_id, len(message)) + message


def reply_bin(tag: bytes, message: bytes, conn_id: int = 0) -> bytes:
    return b"\x02" + tag + struct.pack(">QQ", conn_id, len(message)) + message


def received_bin(frame: bytes) -> tuple[bytes | None, bytes]:
    """(sender tag, message) from a binary Received frame, decoded by hand."""
    assert frame[0] == 0x01
    if frame[1] == 1:
        tag, rest = frame[2:18], frame[18:]
    else:
        assert frame[1] == 0
        tag, rest = None, frame[2:]
    (length,) = struct.unpack(">Q", rest[:8])
    assert length == len(rest) - 8
    return tag, rest[8:]


def silent(conn) -> bool:
    try:
        conn.recv(timeout=QUIET)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def mixnet(start_mixnet):
    return start_mixnet()


# --- addresses and the Text format --------------------------------------------------


def test_self_address_text_and_binary_are_one_valid_address(mixnet):
    with ws(mixnet, "alice") as a:
        text = address_text(a)
        raw = address_bytes(a)
    parts = ADDRESS.match(text)
    assert parts, text
    assert b"".join(base58.decode(p) for p in parts.groups()) == raw


def test_addresses_persist_across_restarts(start_mixnet, tmp_path):
    first = start_mixnet(state=tmp_path / "state")
    with ws(first, "alice") as a:
        before = address_text(a)
    first.stop()
    second = start_mixnet(state=tmp_path / "state")
    with ws(second, "alice") as a:
        assert address_text(a) == before
    with ws(second, "bob") as b:
        assert address_text(b) != before


def test_exact_json_of_received_messages(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_text(b)
        address_text(a)  # alice speaks Text
        a.send(json.dumps({"type": "send", "recipient": bob, "message": "hi"}))
        assert b.recv(timeout=5) == '{"type":"received","message":"hi","senderTag":null}'
        a.send(
            json.dumps(
                {"type": "sendAnonymous", "recipient": bob, "message": "anon", "replySurbs": 10}
            )
        )
        frame = b.recv(timeout=5)
        tag = json.loads(frame)["senderTag"]
        assert TAG.match(tag)
        assert frame == '{"type":"received","message":"anon","senderTag":"' + tag + '"}'
        b.send(json.dumps({"type": "reply", "senderTag": tag, "message": "back"}))
        assert a.recv(timeout=5) == '{"type":"received","message":"back","senderTag":null}'


def test_connection_id_gives_one_lane_queue_length(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        raw = address_bytes(b)
        bob = address_text(b)
        a.send(json.dumps({"type": "send", "recipient": bob, "message": "x", "connectionId": 42}))
        assert a.recv(timeout=5) == '{"type":"laneQueueLength","lane":42,"queue_length":0}'
        a.send(
            json.dumps({"type": "send", "recipient": bob, "message": "y", "connectionId": 0})
        )  # in JSON, 0 counts as given
        assert a.recv(timeout=5) == '{"type":"laneQueueLength","lane":0,"queue_length":0}'
        a.send(json.dumps({"type": "send", "recipient": bob, "message": "z", "connectionId": None}))
        assert silent(a)
        a.send(send_bin(raw, b"w", conn_id=7))
        assert a.recv(timeout=5) == b"\x03" + struct.pack(">QQ", 7, 0)
        a.send(send_bin(raw, b"v", conn_id=0))  # in Binary, 0 means none
        assert silent(a)
        a.send(b"\x05" + struct.pack(">Q", 7))
        assert a.recv(timeout=5) == b"\x03" + struct.pack(">QQ", 7, 0)
        a.send(b"\x04" + struct.pack(">Q", 7))  # ClosedConnection: no answer
        assert silent(a)


def test_text_mode_turns_binary_payloads_into_replacement_characters(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        raw = address_bytes(b)
        address_text(b)  # bob's last request was Text
        a.send(send_bin(raw, b"ok \xff\xfe"))
        assert json.loads(b.recv(timeout=5))["message"] == "ok \ufffd\ufffd"


def test_format_follows_the_last_request(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        raw = address_bytes(b)
        a.send(send_bin(raw, b"one"))
        assert isinstance(b.recv(timeout=5), bytes)
        address_text(b)
        a.send(send_bin(raw, b"two"))
        assert isinstance(b.recv(timeout=5), str)
        address_bytes(b)
        a.send(send_bin(raw, b"three"))
        assert received_bin(b.recv(timeout=5)) == (None, b"three")


# --- Binary layouts and errors -------------------------------------------------------


def test_exact_binary_frames(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        a.send(send_anonymous_bin(bob, b"\x00\x01binary\xff", 10))
        tag, message = received_bin(b.recv(timeout=5))
        assert message == b"\x00\x01binary\xff" and len(tag) == 16
        b.send(reply_bin(tag, b"\xffreply"))
        assert a.recv(timeout=5) == b"\x01\x00" + struct.pack(">Q", 6) + b"\xffreply"


def error_bin(kind: int, text: str) -> bytes:
    return b"\x00" + bytes([kind]) + struct.pack(">Q", len(text.encode())) + text.encode()


@pytest.mark.parametrize(
    ("frame", "kind", "text"),
    [
        (b"", 0x01, "no data provided"),
        (b"\x09", 0x03, "9 does not correspond to any valid request tag"),
        (b"\xff\x00", 0x03, "255 does not correspond to any valid request tag"),
        (b"\x00" + bytes(50), 0x02, "not enough data provided to recover 'send'"),
        (b"\x01" + bytes(115), 0x02, "not enough data provided to recover 'send_anonymous'"),
        (b"\x02" + bytes(20), 0x02, "not enough data provided to recover 'reply'"),
        (
            b"\x02" + bytes(16) + struct.pack(">QQ", 0, 5) + b"abc",
            0x04,
            "message len has inconsistent length. specified: 5 got: 3",
        ),
        (
            b"\x02" + bytes(16) + struct.pack(">QQ", 0, 2) + b"abc",
            0x04,
            "message len has inconsistent length. specified: 2 got: 3",
        ),
        (b"\x05\x00", 0x04, "The received get lane queue lengths has invalid length"),
        (b"\x04" + bytes(9), 0x04, "The received closed connection has invalid length"),
        # the recipient is checked before the length
        (
            b"\x00" + NOT_A_POINT + bytes(64) + struct.pack(">QQ", 0, 9) + b"short",
            0x04,
            "malformed recipient: recipient's identity key is malformed: signature error: Cannot "
            "decompress Edwards point",
        ),
    ],
)
def test_binary_errors(mixnet, frame, kind, text):
    with ws(mixnet, "alice") as a:
        a.send(frame)
        assert a.recv(timeout=5) == error_bin(kind, text)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        # Errors about the tag carry serde_json's position; errors about the other fields do
        # not (serde reads them from a buffer). Texts as the real client (serde 1.0.228).
        (
            '{"type":"foo","message":"hi"}',
            "malformed request:unknown variant `foo`, expected one "
            "of `send`, `sendAnonymous`, `reply`, `selfAddress` at line 1 column 13",
        ),
        (
            '{"type":"SelfAddress"}',
            "malformed request:unknown variant `SelfAddress`, expected one "
            "of `send`, `sendAnonymous`, `reply`, `selfAddress` at line 1 column 21",
        ),
        ('{"message":"hi"}', "malformed request:missing field `type` at line 1 column 16"),
        (
            '{"type":"send","type":"send"}',
            "malformed request:duplicate field `type` at line 1 column 21",
        ),
        (
            '{"type":5}',
            "malformed request:invalid type: integer `5`, expected variant identifier "
            "at line 1 column 9",
        ),
        ('{"type":"send","message":"hi"}', "malformed request:missing field `recipient`"),
        (
            '{"type":"sendAnonymous","message":"hi","recipient":"x"}',
            "malformed request:missing field `replySurbs`",
        ),
        (
            '{"type":"reply","senderTag":"x","message":5}',
            "malformed request:invalid type: integer `5`, expected a string",
        ),
        (
            '{"type":"send","message":"m","recipient":"a.b@c","connectionId":-1}',
            "malformed request:invalid value: integer `-1`, expected u64",
        ),
        (
            '{"type":"send","message":"m","recipient":"no-at-sign"}',
            "malformed request:recipient is malformed - the string address does not contain "
            "exactly a single '@' character ",
        ),
        (
            '{"type":"reply","senderTag":"2","message":"m"}',
            "malformed request:Decoded "
            "AnonymousSenderTag has invalid length. Expected 16, but got 1",
        ),
        ("not json", "malformed request:expected ident at line 1 column 2"),
        ("", "malformed request:EOF while parsing a value at line 1 column 0"),
        (
            '{"type":"selfAddress"} trailing',
            "malformed request:trailing characters at line 1 column 24",
        ),
        (
            "[1,2]",
            "malformed request:invalid type: integer `1`, expected variant identifier at "
            "line 1 column 2",
        ),
        # serde reads ignored fields too, within serde_json's bounds
        (
            '{"type":"selfAddress","x":' + "[" * 200 + "]" * 200 + "}",
            "malformed request:recursion limit exceeded at line 1 column 153",
        ),
        (
            '{"type":"selfAddress","x":' + "9" * 5000 + "}",
            "malformed request:number out of range at line 1 column 5026",
        ),
        (
            '{"type":"selfAddress","x":1e400}',
            "malformed request:number out of range at line 1 column 31",
        ),
        # lone surrogates: serde_json's words depend on what follows
        (
            '{"type":"send","recipient":"x","message":"\\ud800"}',
            "malformed request:unexpected end of hex escape at line 1 column 49",
        ),
        (
            '{"type":"send","recipient":"x","message":"\\udc00"}',
            "malformed request:lone leading surrogate in hex escape at line 1 column 48",
        ),
        (
            '["send","hi"]',
            "malformed request:invalid length 1, expected struct variant "
            "ClientRequestText::Send with 3 elements",
        ),
        (
            '{"type":"send","message":"m","recipient":"' + base58.encode(NOT_A_POINT) + '.b@c"}',
            "malformed request:recipient's identity key is malformed: signature error: Cannot "
            "decompress Edwards point",
        ),
    ],
)
def test_text_errors(mixnet, frame, message):
    with ws(mixnet, "alice") as a:
        a.send(frame)
        answer = json.loads(a.recv(timeout=5))
        assert list(answer) == ["type", "message"] and answer["type"] == "error"
        assert answer["message"].startswith("malformed request:")
        if message:
            assert answer["message"] == message


def test_json_arrays_are_requests_too(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_text(b)
        a.send(json.dumps(["send", "as an array", bob, 7]))
        assert a.recv(timeout=5) == '{"type":"laneQueueLength","lane":7,"queue_length":0}'
        assert json.loads(b.recv(timeout=5))["message"] == "as an array"
        a.send(json.dumps(["sendAnonymous", bob, "anonymous array", 3, None]))
        tag = json.loads(b.recv(timeout=5))["senderTag"]
        b.send(json.dumps(["reply", tag, "back", None]))
        assert json.loads(a.recv(timeout=5))["message"] == "back"
        a.send('["selfAddress"]')
        assert json.loads(a.recv(timeout=5))["type"] == "selfAddress"


def test_a_non_canonical_recipient_key_is_accepted_as_the_real_client_does(mixnet):
    p = 2**255 - 19
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        _, rest = address_text(b).split(".", 1)
        # y = p + 1: the identity point written with y >= p, which curve25519-dalek reduces
        identity = base58.encode((p + 1).to_bytes(32, "little"))
        a.send(
            json.dumps(
                {
                    "type": "send",
                    "recipient": f"{identity}.{rest}",
                    "message": "to nobody here",
                    "connectionId": 1,
                }
            )
        )
        assert json.loads(a.recv(timeout=5)) == {
            "type": "laneQueueLength",
            "lane": 1,
            "queue_length": 0,
        }
    assert mixnet.stats()["dropped_unknown_recipient"] == 1


def test_a_huge_reply_surb_count_stalls_no_one_and_sigterm_still_stops_the_mixnet(mixnet):
    try:
        with ws(mixnet, "mallory") as m, ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
            bob_text, bob = address_text(b), address_bytes(b)
            m.send(send_anonymous_bin(bob, b"hostile", 2**32 - 1))
            m.send(
                json.dumps(
                    {
                        "type": "sendAnonymous",
                        "recipient": bob_text,
                        "message": "hostile text",
                        "replySurbs": 2**32 - 1,
                    }
                )
            )
            a.send(send_bin(bob, b"still served"))
            got = {received_bin(b.recv(timeout=10))[1] for _ in range(3)}
            assert got == {b"hostile", b"hostile text", b"still served"}
            assert mixnet.stats()["surbs_capped"] == 2
            for _ in range(20):  # and more in flight when the signal comes
                m.send(send_anonymous_bin(bob, b"hostile", 2**32 - 1))
            mixnet.proc.terminate()
            assert mixnet.proc.wait(timeout=10) == 0
    finally:
        mixnet.proc.kill()  # nothing left behind if the signal went unheard


def test_bad_frames_affect_no_one_else(mixnet):
    with ws(mixnet, "mallory") as m, ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        for frame in [b"", b"\x07", "{", '{"type":1}', b"\x00" * 200, "\x00"]:
            m.send(frame)
            m.recv(timeout=5)
        a.send(send_bin(bob, b"still works"))
        assert received_bin(b.recv(timeout=5)) == (None, b"still works")
        m.send(b"\x03")
        assert m.recv(timeout=5)[0] == 0x02  # and mallory is still served


# --- connections and buffering -------------------------------------------------------


def test_one_websocket_per_client(mixnet):
    with ws(mixnet, "alice") as first:
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError, EOFError)):
            ws(mixnet, "alice").close()
        address_bytes(first)  # the first one is unaffected
    with ws(mixnet, "alice") as again:  # a new one is accepted after the first closed
        address_bytes(again)


def test_messages_for_an_offline_client_are_held_and_flushed_as_binary(mixnet):
    with ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        address_text(b)  # Text last time: the flush is Binary anyway (new connection)
    with ws(mixnet, "alice") as a:
        for n in range(3):
            a.send(send_bin(bob, b"while away %d" % n))
        time.sleep(0.2)
    with ws(mixnet, "bob") as b:
        got = [received_bin(b.recv(timeout=5))[1] for _ in range(3)]
    assert sorted(got) == [b"while away 0", b"while away 1", b"while away 2"]
    assert mixnet.stats()["held"] == 3


def test_unknown_recipient_is_silently_dropped(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = bytearray(address_bytes(b))
        bob[40] ^= 1  # another encryption key: nobody here
        a.send(send_bin(bytes(bob), b"to nobody"))
        assert silent(a) and silent(b)
    assert mixnet.stats()["dropped_unknown_recipient"] == 1


# --- sender tags and SURBs -----------------------------------------------------------


def test_sender_tags_per_recipient_and_new_after_restart(mixnet):
    with ws(mixnet, "bob") as b, ws(mixnet, "carol") as c:
        bob, carol = address_bytes(b), address_bytes(c)
        with ws(mixnet, "alice") as a:
            a.send(send_anonymous_bin(bob, b"1", 10))
            a.send(send_anonymous_bin(bob, b"2", 10))
            a.send(send_anonymous_bin(carol, b"3", 10))
            tag1, tag2 = received_bin(b.recv(timeout=5))[0], received_bin(b.recv(timeout=5))[0]
            tag3 = received_bin(c.recv(timeout=5))[0]
        assert tag1 == tag2 != tag3
        with ws(mixnet, "alice") as a:  # reconnecting is not restarting
            a.send(send_anonymous_bin(bob, b"4", 10))
            assert received_bin(b.recv(timeout=5))[0] == tag1
        with connect(f"{mixnet.url}/alice?restart", compression=None) as a:
            a.send(send_anonymous_bin(bob, b"5", 10))
            assert received_bin(b.recv(timeout=5))[0] not in (tag1, None)
            b.send(reply_bin(tag1, b"to the old tag"))  # reply keys survive a restart
            assert received_bin(a.recv(timeout=5)) == (None, b"to the old tag")


def test_reply_with_an_unknown_tag_is_silently_dropped(mixnet):
    with ws(mixnet, "alice") as a:
        a.send(reply_bin(bytes(16), b"nobody sent with this tag"))
        assert silent(a)
    assert mixnet.stats()["dropped_unknown_tag"] == 1


def test_surbs_are_topped_up_from_an_online_sender(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        a.send(send_anonymous_bin(bob, b"ask", 3))
        tag, _ = received_bin(b.recv(timeout=5))
        for n in range(40):
            b.send(reply_bin(tag, b"answer %d" % n))
        got = {received_bin(a.recv(timeout=5))[1] for _ in range(40)}
        assert got == {b"answer %d" % n for n in range(40)}
    stats = mixnet.stats()
    assert stats["surb_requests"] >= 1
    assert stats["surbs_spent"] >= 40


def test_no_surbs_means_silent_drop(mixnet):
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        a.send(send_anonymous_bin(bob, b"no surbs", 0))
        tag, _ = received_bin(b.recv(timeout=5))
        b.send(reply_bin(tag, b"cannot be sent"))
        assert silent(a)
    assert mixnet.stats()["dropped_no_surbs"] == 1


def test_replies_to_an_offline_sender_time_out_silently(start_mixnet):
    mixnet = start_mixnet("--reply-timeout", "0.3")
    with ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        with ws(mixnet, "alice") as a:
            a.send(send_anonymous_bin(bob, b"then I leave", 1))
            tag, _ = received_bin(b.recv(timeout=5))
        b.send(reply_bin(tag, b"needs a top-up"))  # 1 SURB < 1 + reserve: asks alice
        time.sleep(0.6)
        with ws(mixnet, "alice") as a:
            assert silent(a)
    stats = mixnet.stats()
    assert stats["dropped_reply_timeout"] == 1


def test_replies_wait_for_a_sender_who_returns_in_time(mixnet):
    with ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        with ws(mixnet, "alice") as a:
            a.send(send_anonymous_bin(bob, b"back soon", 1))
            tag, _ = received_bin(b.recv(timeout=5))
        b.send(reply_bin(tag, b"waited for you"))
        time.sleep(0.2)
        with ws(mixnet, "alice") as a:
            assert received_bin(a.recv(timeout=5)) == (None, b"waited for you")


# --- timing and faults ---------------------------------------------------------------


def test_large_and_concurrent_messages_reorder(start_mixnet):
    mixnet = start_mixnet("--seed", "7", delay="5/1")
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        big = bytes(200_000)  # ~126 packets: its last packet is late
        a.send(send_bin(bob, big))
        for n in range(10):
            a.send(send_bin(bob, b"small %d" % n))
        order = [received_bin(b.recv(timeout=10))[1] for _ in range(11)]
    assert sorted(order, key=len) != order or order[0] != big
    assert order.index(big) > 0
    assert [m for m in order if m != big] != [b"small %d" % n for n in range(10)]


def test_lost_packets_arrive_late_not_never(start_mixnet):
    mixnet = start_mixnet("--loss", "0.3", "--ack-timeout", "0.05", "--seed", "3")
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        for n in range(30):
            a.send(send_bin(bob, b"lossy %d" % n + bytes(3000)))
        got = {received_bin(b.recv(timeout=10))[1][:8] for _ in range(30)}
    assert len(got) == 30
    assert mixnet.stats()["packets_lost"] > 0


def test_duplicates_are_injected(start_mixnet):
    mixnet = start_mixnet("--duplicate", "1")
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        a.send(send_bin(bob, b"twice"))
        assert received_bin(b.recv(timeout=5)) == (None, b"twice")
        assert received_bin(b.recv(timeout=5)) == (None, b"twice")


def test_dropped_replies_are_silent(start_mixnet):
    mixnet = start_mixnet("--drop-replies", "1")
    with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        a.send(send_anonymous_bin(bob, b"ask", 20))
        tag, _ = received_bin(b.recv(timeout=5))
        b.send(reply_bin(tag, b"lost"))
        assert silent(a)
    assert mixnet.stats()["dropped_replies_fault"] == 1


def test_seeded_runs_replay(start_mixnet):
    def run() -> list[bytes]:
        mixnet = start_mixnet("--seed", "11", delay="5/1")
        with ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
            bob = address_bytes(b)
            for n in range(15):
                a.send(send_bin(bob, b"m%d" % n + bytes(n * 2000)))
            order = [received_bin(b.recv(timeout=10))[1][:3] for _ in range(15)]
        mixnet.stop()
        return order

    assert run() == run()


def test_a_flood_of_random_frames_leaves_everyone_served(mixnet):
    import random

    rng = random.Random(1)
    with ws(mixnet, "mallory") as m, ws(mixnet, "alice") as a, ws(mixnet, "bob") as b:
        bob = address_bytes(b)
        for n in range(600):
            if n % 2:
                frame = bytes([rng.choice([0, 1, 2, 4, 5, 9])]) + rng.randbytes(rng.randrange(140))
            else:
                frame = rng.choice(
                    [
                        '{"type":"send"',
                        '{"type":"reply","senderTag":"',
                        "[",
                        '{"type":"sendAnonymous","replySurbs":-1}',
                        "\x00",
                    ]
                ) + rng.randbytes(rng.randrange(20)).decode("latin-1")
            m.send(frame)
        m.send(b"\x03")  # mallory is answered, in order, after all of that
        while not (isinstance(frame := m.recv(timeout=10), bytes) and frame[0] == 0x02):
            pass
        a.send(send_bin(bob, b"business as usual"))
        assert received_bin(b.recv(timeout=5)) == (None, b"business as usual")
    assert mixnet.stats()["bad_requests"] >= 300
