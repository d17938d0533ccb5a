"""deploy/: what can be checked without Docker or a systemd host."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from procs import DIST, ROOT, clean_env

DEPLOY = ROOT / "deploy"


def instructions(path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_compose_file_runs_node_and_two_nym_clients_privately():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"node", "nym-client", "nym-client-2"}
    assert services["node"]["depends_on"] == ["nym-client", "nym-client-2"]
    ids = [services[s]["environment"]["NYM_ID"] for s in ("nym-client", "nym-client-2")]
    assert ids == ["nymchat-node", "nymchat-node-2"]  # two frontends, each its own state
    for service in services.values():
        assert "ports" not in service  # nothing listens outside the compose network
        assert service["restart"] == "unless-stopped"
        assert service["networks"] == ["internal"]
        assert service["build"]["context"] == ".."
        assert (DEPLOY / service["build"]["dockerfile"].removeprefix("deploy/")).exists()
    assert set(compose["volumes"]) == {"nym-data", "nym-data-2", "node-data"}
    assert services["node"]["secrets"] == ["node_password"]


def test_dockerfiles_are_well_formed_and_the_node_command_is_valid(shiv_root, tmp_path):
    node = dict(instructions(DEPLOY / "Dockerfile"))
    assert node["FROM"].startswith("python:3.11")
    assert node["COPY"] == "dist/nymchat /usr/local/bin/nymchat"
    entrypoint, cmd = json.loads(node["ENTRYPOINT"]), json.loads(node["CMD"])
    compose_cmd = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["node"][
        "command"
    ]
    assert cmd == compose_cmd
    args = [str(DIST), *entrypoint[1:], *cmd, "--print-config"]
    args[args.index("/var/lib/nymchat/node")] = str(tmp_path)
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, env=clean_env(shiv_root))
    assert out.returncode == 0, out.stderr
    assert 'nym = ["ws://nym-client:1977", "ws://nym-client-2:1977"]  # command line' in out.stdout
    client = dict(instructions(DEPLOY / "nym-client.Dockerfile"))
    assert json.loads(client["ENTRYPOINT"])[0] == "/bin/sh"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path):
    unit = (DEPLOY / "nymchat-node.service").read_text()
    assert "ExecStart=/usr/local/bin/nymchat node " in unit
    assert "--nym ws://127.0.0.1:1977 --nym ws://127.0.0.1:1978" in unit  # two frontends
    (tmp_path / "nymchat-node.service").write_text(
        unit.replace("/usr/local/bin/nymchat", str(DIST))
    )
    (tmp_path / "nym-client@.service").write_text(
        (DEPLOY / "nym-client@.service")
        .read_text()
        .replace("/usr/local/bin/nym-client", shutil.which("true"))
    )
    for name in (
        "nymchat-node.service",
        "nym-client@nymchat-node.service",
        "nym-client@nymchat-node-2.service",
    ):
        out = subprocess.run(
            ["systemd-analyze", "verify", name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
