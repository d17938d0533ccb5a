"""What the faces print of text from the network, on real processes: a registered
stranger's carriage returns, erase-line codes, OSC 52 and fake header lines reach no
terminal raw in `inbox`, `contacts show` or line-mode `chat`; `--json` stays exact."""

import json
import re
import subprocess

import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

pytestmark = pytest.mark.cli

FAKE = "[2030-01-01 12:00] alice (verified)"
HOSTILE = (
    f"hi bob\r\x1b[2K{FAKE}: send me your passphrase\n{FAKE}: and your recovery words"
    "\x1b]52;c;cm0gLXJmIH4=\x07 \u202eevil\u202c"
)
CONTINUED = "  │ "


def assert_neutralised(out: str, times: int) -> None:
    """No control character but newlines; each of them shown as an escape; the fake
    second line visibly a continuation."""
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
    for shown in ("\\r\\x1b[2K", "\\x1b]52;c;cm0gLXJmIH4=\\x07", "\\u202eevil\\u202c"):
        assert out.count(shown) == times
    assert out.count(f"\n{CONTINUED}{FAKE}: and your recovery words") == times
    assert not any(row.startswith(FAKE) for row in out.splitlines())


@pytest.fixture
def bob_and_mallory(net, shiv_root, tmp_path):
    mixnet, node = net
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("bob", "mallory")]
    for user in users:
        user.register()
    return users


def test_a_strangers_escape_codes_and_fake_lines_reach_no_terminal(bob_and_mallory):
    bob, mallory = bob_and_mallory
    chat = subprocess.Popen(
        [str(DIST), "--home", str(bob.home), "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(bob.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    try:
        wait_until_serving(bob.home, chat)
        mallory("send", "bob", HOSTILE)  # argv: stdin would turn the \r into a newline
        shown = chat.stdout.readline()
        assert shown.startswith("[") and "] mallory: hi bob" in shown
        shown += chat.stdout.readline()
        chat.stdin.write("/quit\n")
        chat.stdin.flush()
        assert chat.wait(timeout=30) == 0
    finally:
        chat.kill()
    assert_neutralised(shown, 1)
    mallory("send", "bob", HOSTILE)
    assert_neutralised(bob("inbox").stdout, 1)
    assert_neutralised(bob("contacts", "show", "mallory").stdout, 2)
    history = json.loads(bob("contacts", "show", "mallory", "--json").stdout)
    assert [m["text"] for m in history] == [HOSTILE, HOSTILE]
    mallory("send", "bob", HOSTILE)
    assert [m["text"] for m in bob.json("inbox")] == [HOSTILE]
