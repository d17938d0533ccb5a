"""scripts/loadtest.py, small: 20 users x 20 messages over a lossy, duplicating mixnet with
two node kills in the middle; nothing accepted may be lost or shown twice."""

import json
import subprocess
import sys

import pytest
from procs import ROOT

pytestmark = pytest.mark.cli


def test_twenty_users_survive_loss_duplicates_and_node_kills(shiv_root):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "loadtest.py"),
            "--users",
            "20",
            "--messages",
            "20",
            "--loss",
            "0.05",
            "--duplicate",
            "0.05",
            "--kill-node-every",
            "2",
            "--kills",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["sent"] == 400 and result["node_kills"] == 2
    assert result["accepted"] >= 390  # a send refused while the node was down is not lost
    assert result["delivered"] == result["accepted"]
    assert (result["lost"], result["duplicated"]) == (0, 0)
