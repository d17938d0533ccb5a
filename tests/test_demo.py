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
