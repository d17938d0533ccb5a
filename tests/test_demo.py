"""`nymchat demo` from the built file: what a newcomer runs first."""

import subprocess

import pytest
from procs import DIST, clean_env

pytestmark = pytest.mark.cli


def test_demo_runs_and_tells_its_story(shiv_root, tmp_path):
    out = subprocess.run(
        [str(DIST), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(shiv_root, TMPDIR=str(tmp_path)),
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "no anonymity" in text
    lines = text.splitlines()
    alice_sees = next(line for line in lines if line.startswith("  alice sees"))
    bob_sees = next(line for line in lines if line.startswith("  bob sees"))
    assert alice_sees.split("sees")[1].strip() == bob_sees.split("sees")[1].strip()
    assert "  they match" in lines
    assert text.count("alice -> bob: Hi Bob! This went through the mixnet.") == 1  # shown once
    assert "bob -> alice: Hi Alice, only we can read this." in text
    assert (
        "(bob is back) alice -> bob: Are you there? I'll wait.   [delivered on his return]" in text
    )
    queued = next(line for line in lines if "queued for" in line)
    assert "bytes, sealed" in queued and "from: nobody knows" in queued
    assert not any(word in queued for word in ("Are you there", "alice", "bob"))
    assert "alice -> bob: Now even the node can't see us talk." in text
    assert "bob -> alice: Right: it relayed nothing of this." in text
    before, after = (
        next(line for line in lines if "count of relayed" in line).split(": ")[1].split(" before, ")
    )
    assert after == f"{before} after"
    assert "Try it by hand, two people in four terminals" in text
    assert list(tmp_path.glob("nymchat-demo-*")) == []  # cleaned up, nothing left running


def test_federated_demo_talks_across_two_nodes_and_neither_knows_the_other_s_user(
    shiv_root, tmp_path
):
    out = subprocess.run(
        [str(DIST), "demo", "--federated"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(shiv_root, TMPDIR=str(tmp_path)),
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    lines = text.splitlines()
    assert "no anonymity" in text
    node_a = next(line for line in lines if line.startswith("node A up:")).split()[-1]
    node_b = next(line for line in lines if line.startswith("node B up:")).split()[-1]
    assert node_a != node_b
    alice_at_a = "alice@" + node_a.split(":")[1][:8]  # bob has not named alice's node
    assert "alice takes it: B pinned as 'node-b', node key " + node_b.split(":")[1] in text
    sent = next(line for line in lines if "alice -> bob@node-b: Hi Bob, from node A!" in line)
    assert "decrypted by bob" in sent and "receipt back in" in sent
    answer = next(line for line in lines if line.startswith(f"  bob -> {alice_at_a}: "))
    assert "Hi Alice, answered at A." in answer and "receipt back in" in answer
    assert (
        f"(bob is back) {alice_at_a} -> bob: Are you there? B keeps it.   "
        "[delivered by B on his return]" in text
    )
    a, b, b_after = text.split("\nwhat node ")[1:]
    assert a.startswith("A (alice's home)") and b.startswith("B (bob's home)")
    assert a.count("  user ") == 1 and "  queue: empty" in a  # alice only; nothing for her
    assert b.count("  user ") == 1 and b.count("queued for user") == 1  # bob, his message
    assert "  queue: empty" in b_after
    assert "of bob: 0 of its " in a and "of alice: 0 of its " in b and "of alice: 0 " in b_after
    assert list(tmp_path.glob("nymchat-demo-*")) == []  # cleaned up, nothing left running
