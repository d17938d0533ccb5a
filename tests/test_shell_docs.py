"""What the shell sees: bash completion (dist/nymchat.bash) of commands, paths and contact
names, the man page (dist/nymchat.1), and the exit status of an interrupted command."""

import re
import signal
import subprocess

import pytest
from procs import DIST, PASSPHRASE, User, clean_env, wait_until_serving

pytestmark = pytest.mark.cli

COMPLETION = DIST.parent / "nymchat.bash"


def complete(*words: str, cwd=None, env=None) -> list[str]:
    """What bash offers for the last of `words` (the command line so far), as TAB would."""
    script = (
        f"source {COMPLETION}\n"
        f"COMP_WORDS=({' '.join(_quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_shtab_nymchat\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    out = subprocess.run(
        ["bash", "--norc", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def test_completion_offers_the_contact_names_of_the_running_chat(net, shiv_root, tmp_path):
    mixnet, node = net
    alice, bob, bea = (
        User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "bea")
    )
    for user in (alice, bob, bea):
        user.register()
    alice("lookup", "bob")
    alice("lookup", "bea")
    env = clean_env(shiv_root)  # no passphrase anywhere: completion must not need one
    line = [str(DIST), "--home", str(alice.home)]
    assert complete(*line, "send", "b", env=env) == []  # nothing serves the profile: nothing
    follow = subprocess.Popen(
        [*line, "inbox", "--follow"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    try:
        wait_until_serving(alice.home, follow)
        assert complete(*line, "send", "b", env=env) == ["bea", "bob"]
        assert complete(*line, "send", "bo", env=env) == ["bob"]
        assert complete(*line, "lookup", "", env=env) == ["bea", "bob"]
        for action in ("show", "verify", "trust", "remove", "direct", "end-direct"):
            assert complete(*line, "contacts", action, "be", env=env) == ["bea"], action
        # --home after the command, and $NYMCHAT_HOME, name the profile too
        assert complete(str(DIST), "send", "--home", str(alice.home), "bo", env=env) == ["bob"]
        assert complete(str(DIST), "send", "bo", env={**env, "NYMCHAT_HOME": str(alice.home)}) == [
            "bob"
        ]
        assert complete(*line, "register", "b", env=env) == []  # a new name, not a contact
        assert complete(*line, "group", "add", "team", "b", env=env) == ["bea", "bob"]
        assert complete(*line, "group", "create", "team", "bea", "bo", env=env) == ["bob"]
    finally:
        follow.send_signal(signal.SIGTERM)
        follow.wait(timeout=30)


def test_completion_completes_paths_for_home_and_passphrase_file(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "pass.txt").write_text("x\n")
    assert complete("nymchat", "--home", "pro", cwd=tmp_path) == ["profiles"]
    assert complete("nymchat", "send", "--home", "pro", cwd=tmp_path) == ["profiles"]
    assert complete("nymchat", "--passphrase-file", "pa", cwd=tmp_path) == ["pass.txt"]
    assert complete("nymchat", "inbox", "--passphrase-file", "pa", cwd=tmp_path) == ["pass.txt"]
    assert complete("nymchat", "node", "--data", "pro", cwd=tmp_path) == ["profiles"]
    assert "--complete-contacts" not in complete("nymchat", "--")  # for completion only


def man_page() -> str:
    out = subprocess.run(
        ["man", "-l", str(DIST.parent / "nymchat.1")],
        capture_output=True,
        text=True,
        env={"MANWIDTH": "200", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    if out.returncode != 0:
        pytest.skip(f"man cannot render pages here: {out.stderr.strip()}")
    return re.sub(".\b", "", out.stdout)


def test_man_page_has_examples_the_chat_commands_and_every_exit_status():
    from nymchat.chat.core import COMMANDS

    page = man_page()
    sections = re.findall(r"^([A-Z][A-Z ]+)$", page, re.MULTILINE)
    for section in ("EXAMPLES", "CHAT COMMANDS", "GLOBAL OPTIONS", "EXIT STATUS"):
        assert section in sections
    examples = page.split("\nEXAMPLES\n")[1]
    assert "nymchat demo" in examples and "send alice" in examples
    chat = page.split("\nCHAT COMMANDS\n")[1].split("\nEXAMPLES\n")[0]
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\b", chat, re.MULTILINE), command
    status = page.split("\nEXIT STATUS\n")[1]
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\s+{code}\s+\S", status, re.MULTILINE), code


def test_man_page_lists_the_exit_status_and_code_of_every_kind_of_error():
    from nymchat.errors import EXIT_STATUS

    status = " ".join(man_page().split("\nEXIT STATUS\n")[1].split())  # one line
    for kind in EXIT_STATUS:
        assert f" {kind.exit_code} ({kind.kind}) {' '.join(kind.meaning.split())}" in status, kind
    assert '{"error": {"code": CODE, "exit": STATUS, "message": TEXT}}' in status


def test_man_page_describes_the_global_options_once():
    page = man_page()
    for described in (
        "where nymchat keeps its files",
        "read the passphrase from the first",
        "more log output",
    ):
        assert page.count(described) == 1, described
    assert "usage: nymchat send [-h] [--nym URL]" in page  # a command's usage: its own only


def _start(user: User, *command: str) -> subprocess.Popen:
    """`command` serving `user`'s profile, started with SIGINT ignored as a shell's
    background job is (each command must take Ctrl-C itself); its stderr kept in a file
    beside the home, with the threads' stacks dumped there if it is aborted (`_stop`)."""
    stderr = user.home.with_name(f"{user.home.name}-{command[0]}.stderr")
    proc = subprocess.Popen(
        [str(DIST), "--home", str(user.home), *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w"),
        env=clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE, PYTHONFAULTHANDLER="1"),
        # As a shell starts a background job: SIGINT ignored, until the command takes it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    proc.stderr_path = stderr  # type: ignore[attr-defined]
    wait_until_serving(user.home, proc)
    return proc


def _stop(proc: subprocess.Popen, sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # say where it hangs: the stacks of its threads
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=10)
        path = getattr(proc, "stderr_path", None)
        told = path.read_text()[-6000:] if path else ""
        raise AssertionError(f"{proc.args} did not stop within 30 s:\n{told}") from None


def test_ctrl_c_ends_each_long_running_command_with_130(
    net, start_mixnet, start_node, shiv_root, tmp_path
):
    mixnet, node = net
    alice = User("alice", tmp_path / "alice", shiv_root, mixnet, node)
    alice.register()
    for command in (["inbox", "--follow"], ["chat"]):  # chat: scripted (stdin not a tty)
        assert _stop(_start(alice, *command), signal.SIGINT) == 130, command
    other = start_mixnet()
    assert node.stop(signal.SIGINT) == 130
    assert start_node(other).stop(signal.SIGINT) == 130
    assert _stop(other.proc, signal.SIGINT) == 130


def test_sigterm_stops_the_services_with_0(net, shiv_root, tmp_path):
    mixnet, node = net
    alice = User("alice", tmp_path / "alice", shiv_root, mixnet, node)
    alice.register()
    assert _stop(_start(alice, "inbox", "--follow"), signal.SIGTERM) == 0
    assert node.stop(signal.SIGTERM) == 0
    assert _stop(mixnet.proc, signal.SIGTERM) == 0
