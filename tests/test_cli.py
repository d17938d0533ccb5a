"""The built one-file executable, run as a user would run it."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from procs import DIST, ROOT, clean_env

import nymchat
from nymchat.cli import COMMAND_ORDER

pytestmark = pytest.mark.cli
PASSPHRASE = "correct horse battery"


@pytest.fixture
def run(shiv_root, tmp_path):
    """Runs dist/nymchat with a fresh home; returns the CompletedProcess."""
    home = tmp_path / "home"

    def run(*args, passphrase=PASSPHRASE, input=None, env=None):
        environ = clean_env(shiv_root, NYMCHAT_HOME=str(home))
        if passphrase is not None:
            environ["NYMCHAT_PASSPHRASE"] = passphrase
        environ.update(env or {})
        return subprocess.run(
            [str(DIST), *args], capture_output=True, text=True, input=input, env=environ, timeout=60
        )

    run.home = home
    return run


def test_version_proves_the_native_core_loaded(run):
    out = run("--version")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"nymchat {nymchat.__version__}"
    assert lines[1].startswith("native core 0.1.0 (Rust, self-test ok)")
    assert lines[2].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}")


def test_version_matches_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == nymchat.__version__


def test_help_lists_every_command(run):
    out = run("--help")
    assert out.returncode == 0
    for name in COMMAND_ORDER:
        assert f"    {name} " in out.stdout


def test_no_command_prints_help_and_exits_2(run):
    out = run()
    assert out.returncode == 2
    assert "COMMAND" in out.stdout


def test_unknown_option_is_a_usage_error(run):
    out = run("keys", "show", "--bogus")
    assert out.returncode == 2
    assert "unrecognized arguments: --bogus" in out.stderr


def test_a_sealed_delay_out_of_range_is_a_usage_error(run):
    for value in ("-1", "3601", "soon"):
        out = run("--sealed-delay", value, "inbox")
        assert out.returncode == 2, out.stderr
        assert "--sealed-delay" in out.stderr
    out = run("inbox", env={"NYMCHAT_SEALED_DELAY": "soon"})
    assert out.returncode == 2 and "NYMCHAT_SEALED_DELAY" in out.stderr


def test_keys_new_then_show(run):
    out = run("keys", "new", "--json")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["created"] is True
    path = run.home / "identity.json"
    assert created["keystore"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(run.home.stat().st_mode) == 0o700
    assert [p.name for p in run.home.iterdir()] == ["identity.json"]  # no temp file left

    shown = json.loads(run("keys", "show", "--json").stdout)
    for key in ("signing_public", "agreement_public", "fingerprint"):
        assert shown[key] == created[key]
    assert len(bytes.fromhex(shown["signing_public"])) == 32
    assert len(shown["fingerprint"].split()) == 10

    text = run("keys", "show").stdout
    assert f"fingerprint              {created['fingerprint']}" in text


def test_keystore_holds_no_secret_in_the_clear(run):
    assert run("keys", "new").returncode == 0
    document = json.loads((run.home / "identity.json").read_text())
    assert document["kdf"]["name"] == "argon2id"
    assert set(document) == {
        "format",
        "version",
        "kdf",
        "cipher",
        "signing_public",
        "agreement_public",
        "nonce",
        "ciphertext",
    }


def test_wrong_passphrase_is_a_clear_error(run):
    assert run("keys", "new").returncode == 0
    out = run("keys", "show", "--check", passphrase="not the passphrase")
    assert out.returncode == 3
    assert out.stderr.startswith("nymchat: error: wrong passphrase for ")
    assert "Traceback" not in out.stderr


def test_altered_public_key_fails_to_unlock(run):
    assert run("keys", "new").returncode == 0
    path = run.home / "identity.json"
    document = json.loads(path.read_text())
    other = json.loads(run("keys", "new", "--home", str(run.home / "other"), "--json").stdout)
    import base64

    document["signing_public"] = base64.b64encode(bytes.fromhex(other["signing_public"])).decode()
    path.write_text(json.dumps(document))
    out = run("keys", "show", "--check")
    assert out.returncode == 3
    assert "wrong passphrase" in out.stderr and "altered" in out.stderr


def test_existing_identity_is_never_overwritten(run):
    assert run("keys", "new").returncode == 0
    before = (run.home / "identity.json").read_bytes()
    out = run("keys", "new")
    assert out.returncode == 1
    assert "already exists" in out.stderr
    assert (run.home / "identity.json").read_bytes() == before


def test_passphrase_file_and_global_options_after_the_command(run, tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("from a file 123\n")
    secret.chmod(0o600)
    home = tmp_path / "elsewhere"
    out = run("keys", "new", "--home", str(home), "--passphrase-file", str(secret), passphrase=None)
    assert out.returncode == 0, out.stderr
    assert (home / "identity.json").exists()
    out = run(
        "--home",
        str(home),
        "--passphrase-file",
        str(secret),
        "keys",
        "show",
        "--check",
        passphrase="wrong, but the file wins",
    )
    assert out.returncode == 0, out.stderr


def test_no_passphrase_without_a_terminal(run):
    out = run("keys", "new", passphrase=None)
    assert out.returncode == 3
    assert "no passphrase: set NYMCHAT_PASSPHRASE" in out.stderr
    assert not (run.home / "identity.json").exists()


def test_short_new_passphrase_is_refused(run):
    out = run("keys", "new", passphrase="short")
    assert out.returncode == 3
    assert "at least 8 characters" in out.stderr


def test_show_without_identity_says_what_to_do(run):
    out = run("keys", "show")
    assert out.returncode == 4
    assert "create one with `nymchat keys new`" in out.stderr


def test_verbose_errors_show_a_traceback(run):
    out = run("-v", "keys", "show")
    assert out.returncode == 4
    assert "Traceback" in out.stderr


def test_json_logs_are_one_object_a_line(run):
    out = run("keys", "new", "-v", "--log-format", "json")
    assert out.returncode == 0, out.stderr
    entries = [json.loads(line) for line in out.stderr.splitlines()]
    assert [e["msg"] for e in entries] == [
        "deriving the keystore key with Argon2id (64 MiB)",
        f"wrote {run.home / 'identity.json'}",
    ]
    assert {e["level"] for e in entries} == {"info"}
    assert all(e["logger"] == "nymchat.keystore" and e["ts"].endswith("Z") for e in entries)


def test_quiet_and_default_levels_log_nothing_on_success(run):
    out = run("keys", "new", "-q")
    assert out.returncode == 0
    assert out.stderr == ""
    assert "Created" not in out.stdout


def test_a_home_open_to_others_is_made_private_once(run, shiv_root, tmp_path):
    said = "was open to other users (mode 0755); it is private now (0700)"
    run.home.mkdir(mode=0o755)
    run.home.chmod(0o755)
    out = run("keys", "new")
    assert out.returncode == 0 and said in out.stderr
    assert stat.S_IMODE(run.home.stat().st_mode) == 0o700
    run.home.chmod(0o755)
    assert said in run("inbox").stderr  # any command that opens the profile
    assert said not in run("inbox").stderr  # said once
    data = tmp_path / "node-data"  # a node's data directory too
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    node = run(
        "node",
        "--data",
        str(data),
        "--nym",
        "ws://127.0.0.1:9/none",
        env={"NYMCHAT_NODE_PASSWORD": "node password"},
    )
    assert said in node.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_a_home_open_to_others_that_is_not_ours_is_refused(run, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    theirs.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")  # someone else's; refused, so never changed
    out = run("--home", str(theirs), "keys", "new")
    assert out.returncode == 1
    assert f"error: {theirs} is open to other users (mode " in out.stderr
    assert "belongs to another user; use a directory of your own" in out.stderr
    assert not (theirs / "identity.json").exists()


def test_python_dash_m_works(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "nymchat", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("nymchat ")


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, nymchat.cli; heavy = [m for m in ('nymchat._native', 'nacl', "
        "'cryptography', 'websockets', 'nymchat.keystore') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_man_page_and_completion_are_built():
    man = (DIST.parent / "nymchat.1").read_text()
    assert man.startswith(".TH") or ".TH NYMCHAT" in man
    for name in COMMAND_ORDER:
        assert name in man
    completion = (DIST.parent / "nymchat.bash").read_text()
    assert "complete" in completion and "keys" in completion


def test_file_is_one_executable_with_env_shebang():
    with DIST.open("rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    assert os.access(DIST, os.X_OK)


def test_passphrase_prompt_in_a_terminal(shiv_root, tmp_path):
    import pexpect

    environ = clean_env(shiv_root, NYMCHAT_HOME=str(tmp_path / "home"))

    def spawn(*args):
        return pexpect.spawn(str(DIST), list(args), env=environ, encoding="utf-8", timeout=30)

    child = spawn("keys", "new")
    child.expect("New passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("fingerprint +([0-9a-f ]{49})")
    fingerprint = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn("keys", "show", "--check")
    child.expect("Passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert fingerprint in child.before

    child = spawn("keys", "new", "--home", str(tmp_path / "second"))
    child.expect("New passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat passphrase: ")
    child.sendline("a different one")
    child.expect("the two passphrases differ; try again")
    child.expect("New passphrase: ")
    child.sendeof()  # Ctrl-D: one line, no traceback
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "nymchat: error: cancelled" in child.before and "Traceback" not in child.before
    assert not (tmp_path / "second").exists()
