"""deploy/: what can be checked without Docker or a systemd host."""

import itertools
import json
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from procs import DIST, ROOT, clean_env

DEPLOY = ROOT / "deploy"
READY = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/ready', timeout=5)"
# the flags of issue 17 the PostgreSQL deployment needs (agents M, O, S)


def instructions(path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def entrypoint() -> list[str]:
    return json.loads(dict(instructions(DEPLOY / "Dockerfile"))["ENTRYPOINT"])


def print_config(args: list[str], shiv_root, **env: str) -> str:
    """`--print-config` of dist/nymchat for `nymchat ARGS` (args[0] is the binary's path)."""
    out = subprocess.run(
        [str(DIST), *args[1:], "--print-config"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(shiv_root, **env),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_compose_file_runs_node_and_two_nym_clients_privately():
    file = compose("compose.yaml")
    services = file["services"]
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
    assert set(file["volumes"]) == {"nym-data", "nym-data-2", "node-data"}
    assert services["node"]["secrets"] == ["node_password"]
    node = services["node"]
    assert node["healthcheck"]["test"] == ["CMD", "python3", "-c", READY]
    assert node["command"][node["command"].index("--metrics") + 1] == "127.0.0.1:9100"


def test_dockerfiles_are_well_formed_and_the_node_command_is_valid(shiv_root, tmp_path):
    node = dict(instructions(DEPLOY / "Dockerfile"))
    assert node["FROM"].startswith("python:3.11")  # python3 answers the healthchecks
    assert node["COPY"] == "dist/nymchat /usr/local/bin/nymchat"
    assert "install -d -m 0700 -o nymchat -g nymchat /var/lib/nymchat-key" in node["RUN"]
    cmd = json.loads(node["CMD"])
    assert cmd == compose("compose.yaml")["services"]["node"]["command"]
    args = [*entrypoint(), *cmd]
    args[args.index("/var/lib/nymchat/node")] = str(tmp_path)
    out = print_config(args, shiv_root)
    assert 'nym = ["ws://nym-client:1977", "ws://nym-client-2:1977"]  # command line' in out
    assert 'metrics = "127.0.0.1:9100"  # command line' in out
    client = dict(instructions(DEPLOY / "nym-client.Dockerfile"))
    assert json.loads(client["ENTRYPOINT"])[0] == "/bin/sh"


def test_postgres_compose_runs_two_node_processes_on_one_private_database():
    file = compose("compose.postgres.yaml")
    services = file["services"]
    clients = [f"nym-client-{n}" for n in (1, 2, 3, 4)]
    assert set(services) == {"postgres", "node-1", "node-2", *clients}
    for service in services.values():
        assert "ports" not in service  # the database and the metrics stay on the network
        assert service["restart"] == "unless-stopped"
        assert service["networks"] == ["internal"]
        for key in service.get("environment", {}):
            assert not key.endswith("PASSWORD")  # passwords are in secrets' files only
    assert [services[c]["environment"]["NYM_ID"] for c in clients] == [
        f"nymchat-node-{n}" for n in (1, 2, 3, 4)
    ]  # each nym-client its own state

    assert {name for name, s in services.items() if "healthcheck" in s} == {
        "postgres",
        "node-1",
        "node-2",
    }
    db = services["postgres"]
    assert db["image"].startswith("postgres:")  # the official image
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert db["secrets"] == ["pg_password"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert db["volumes"] == ["pg-data:/var/lib/postgresql/data"]

    frontends = {"node-1": ("1", clients[:2]), "node-2": ("3", clients[2:])}
    for name, (first, own) in frontends.items():
        node = services[name]
        command = node["command"]
        option = {f: v for f, v in itertools.pairwise(command) if f.startswith("--")}
        nym = [v for f, v in itertools.pairwise(command) if f == "--nym"]
        assert nym == [f"ws://{client}:1977" for client in own]
        assert option["--first-frontend"] == first
        assert option["--store"] == "postgresql://nymchat@postgres:5432/nymchat"  # no password
        assert node["environment"] == {"PGPASSFILE": "/run/secrets/pgpass"}
        assert set(node["secrets"]) == {"pgpass", "node_password"}
        assert option["--password-file"] == "/run/secrets/node_password"
        assert option["--key-file"] == "/var/lib/nymchat-key/identity.json"
        assert option["--metrics"] == "0.0.0.0:9100" and "--metrics-public" in command
        assert node["healthcheck"]["test"] == ["CMD", "python3", "-c", READY]
        assert node["depends_on"]["postgres"] == {"condition": "service_healthy"}
        for client in own:
            assert node["depends_on"][client] == {"condition": "service_started"}
        assert node["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    node1, node2 = services["node-1"], services["node-2"]
    assert node2["depends_on"]["node-1"] == {"condition": "service_healthy"}  # key made
    assert node1["volumes"] == ["node-1-data:/var/lib/nymchat", "node-key:/var/lib/nymchat-key"]
    assert node2["volumes"] == [
        "node-2-data:/var/lib/nymchat",
        "node-key:/var/lib/nymchat-key:ro",  # node-2 never writes the key
    ]
    assert set(file["secrets"]) == {"pg_password", "pgpass", "node_password"}
    assert all(set(secret) == {"file"} for secret in file["secrets"].values())
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert used == set(file["volumes"])


def test_postgres_compose_node_commands_are_valid(shiv_root, tmp_path):
    services = compose("compose.postgres.yaml")["services"]
    for name, first in (("node-1", 1), ("node-2", 3)):
        args = [*entrypoint(), *services[name]["command"]]
        args[args.index("/var/lib/nymchat/node")] = str(tmp_path / name)
        out = print_config(args, shiv_root, PGPASSFILE="/run/secrets/pgpass")
        assert f"first_frontend = {first}  # command line" in out
        assert 'store = "postgresql://nymchat@postgres:5432/nymchat"  # command line' in out
        assert 'key_file = "/var/lib/nymchat-key/identity.json"  # command line' in out
        assert "metrics_public = true  # command line" in out


def env_file_example(unit: str, path: str) -> dict[str, str]:
    """The example of `path` in a unit's comments: its `#   NAME=value` lines."""
    lines = unit.split(f"# {path}:\n", 1)[1].splitlines()
    example = itertools.takewhile(lambda line: line.startswith("#   "), lines)
    return dict(line.removeprefix("#   ").split("=", 1) for line in example)


def test_systemd_node_process_example_is_valid(shiv_root, tmp_path):
    unit = (DEPLOY / "nymchat-node@.service").read_text()
    env = env_file_example(unit, "/etc/nymchat/node-1.env")
    start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M)[1].replace("%i", "1"))
    start[start.index("/var/lib/nymchat/node-1")] = str(tmp_path)
    out = print_config(start, shiv_root, **env)
    assert "first_frontend = 1  # environment" in out
    assert f"store = {json.dumps(env['NYMCHAT_NODE_STORE'])}  # environment" in out
    assert 'nym = ["ws://127.0.0.1:1977", "ws://127.0.0.1:1978"]  # environment' in out
    assert 'key_file = "/var/lib/nymchat/identity.json"  # command line' in out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify_and_wait_for_readiness(tmp_path):
    unit = (DEPLOY / "nymchat-node.service").read_text()
    assert "ExecStart=/usr/local/bin/nymchat node " in unit
    assert "--nym ws://127.0.0.1:1977 --nym ws://127.0.0.1:1978" in unit  # two frontends
    assert "--metrics 127.0.0.1:9477" in unit
    processes = (DEPLOY / "nymchat-node@.service").read_text()
    assert "EnvironmentFile=/etc/nymchat/node-%i.env" in processes
    for text, url in (
        (unit, "http://127.0.0.1:9477/ready"),
        (processes, "http://${NYMCHAT_NODE_METRICS}/ready"),
    ):
        post = re.search(r"^ExecStartPost=(.*)$", text, re.M)[1].split()
        assert post[0] == "/usr/bin/curl" and post[-1] == url
        assert {"--fail", "--retry-connrefused"} <= set(post)  # waits while not ready
    binaries = {
        "/usr/local/bin/nymchat": str(DIST),
        "/usr/local/bin/nym-client": shutil.which("true"),
        "/usr/bin/curl": shutil.which("curl") or shutil.which("true"),
    }
    for name in ("nymchat-node.service", "nymchat-node@.service", "nym-client@.service"):
        text = (DEPLOY / name).read_text()
        for installed, here in binaries.items():
            text = text.replace(installed, here)
        (tmp_path / name).write_text(text)
    for name in (
        "nymchat-node.service",
        "nym-client@nymchat-node.service",
        "nym-client@nymchat-node-2.service",
        "nymchat-node@1.service",
        "nym-client@nymchat-node-1-1.service",
    ):
        out = subprocess.run(
            ["systemd-analyze", "verify", name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
