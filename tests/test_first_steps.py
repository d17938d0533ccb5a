"""A new user's first steps and ordinary mistakes (issue 13, items 3 and 5-7): each comes
out as one clear line with the right exit code, never an internal error or a traceback."""

import signal
import subprocess
import time
import tomllib

import pexpect
import pytest
from procs import DIST, PASSPHRASE, NodeProcess, User, clean_env, wait_until_serving

pytestmark = pytest.mark.cli
PASSWORD = NodeProcess.PASSWORD


def nymchat(shiv_root, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DIST), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(shiv_root, **env),
    )


def one_clear_line(out: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert out.returncode == code, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nymchat: error: "), out.stderr
    assert text in lines[0], lines[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_args(tmp_path, *args: str) -> list[str]:
    return [
        "node",
        "--nym",
        f"ws://127.0.0.1:{free_port()}/node",
        "--data",
        str(tmp_path / "data"),
        *args,
    ]


# --- item 3: a busy nym-client is not a missing one ------------------------------------


@pytest.fixture
def pair(net, shiv_root, tmp_path):
    mixnet, node = net
    alice, bob = (User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob"))
    alice.register()
    bob("keys", "new")
    return alice, bob


def follow(user) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(DIST), "--home", str(user.home), "inbox", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(user.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    wait_until_serving(user.home, proc)
    return proc


def test_a_node_on_a_nym_client_in_use_says_so(net, start_node, tmp_path):
    mixnet, _ = net  # its node holds the virtual client "node"
    with pytest.raises(AssertionError, match="did not start"):
        start_node(mixnet, data=tmp_path / "second", name="node")
    log = (tmp_path / "second.log").read_text()
    assert f"the nym-client at {mixnet.url}/node is in use by another program" in log


def test_a_busy_nym_client_is_told_apart_from_a_missing_one(pair):
    alice, bob = pair
    held = follow(alice)
    try:  # bob points at alice's nym-client: it listens, but it is hers
        busy = bob("register", "bob", "--node", bob.contact, "--nym", alice.nym, check=False)
        one_clear_line(
            busy,
            8,
            f"the nym-client at {alice.nym} is in use by another program (a running chat or node?)",
        )
    finally:
        held.terminate()
        held.wait(timeout=30)
    missing = bob(
        "register",
        "bob",
        "--node",
        bob.contact,
        "--nym",
        f"ws://127.0.0.1:{free_port()}/bob",
        check=False,
    )
    one_clear_line(missing, 6, "no nym-client at ws://127.0.0.1:")


def test_a_second_chat_or_inbox_on_one_home_names_what_holds_it(pair):
    alice, _ = pair
    held = follow(alice)
    try:
        for command in (["chat"], ["inbox", "--follow"]):
            out = alice(*command, input="", check=False)
            one_clear_line(
                out,
                8,
                f"`inbox --follow` (pid {held.pid}) already runs for this "
                "profile and receives its messages",
            )
            assert f"`{' '.join(command)}` cannot run beside it" in out.stderr
        # a command that needs the nym-client itself is told who holds it
        out = alice("register", "alice2", "--node", alice.contact, "--nym", alice.nym, check=False)
        one_clear_line(
            out,
            8,
            f"the nym-client at {alice.nym} is in use by another program "
            f"(`inbox --follow` (pid {held.pid}) serves this profile)",
        )
    finally:
        held.terminate()
        held.wait(timeout=30)
    chat = subprocess.Popen(
        [str(DIST), "--home", str(alice.home), "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=clean_env(alice.shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    try:
        wait_until_serving(alice.home, chat)
        one_clear_line(
            alice("chat", input="", check=False),
            8,
            f"`chat` (pid {chat.pid}) already runs for this profile",
        )
    finally:
        chat.stdin.close()  # end of input: the scripted chat ends
        chat.wait(timeout=30)


def test_the_mixnet_closes_a_second_websocket_before_the_handshake(start_mixnet):
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidMessage

    mixnet = start_mixnet()

    async def twice() -> None:
        async with connect(f"{mixnet.url}/one"):
            with pytest.raises(InvalidMessage) as refused:
                async with connect(f"{mixnet.url}/one"):
                    pass
            assert isinstance(refused.value.__cause__, EOFError)  # closed, not refused
            async with connect(f"{mixnet.url}/two"):  # another virtual client is free
                pass

    asyncio.run(twice())


# --- item 5: the first-run wizard -------------------------------------------------------


def spawn(shiv_root, *args, **env) -> pexpect.spawn:
    return pexpect.spawn(
        str(DIST),
        list(args),
        env=clean_env(shiv_root, TERM="xterm", **env),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 140),
    )


def test_the_first_run_checks_each_answer_and_asks_again(net, shiv_root, tmp_path):
    mixnet, node = net
    User("taken", tmp_path / "taken", shiv_root, mixnet, node).register()
    child = spawn(shiv_root, "--home", str(tmp_path / "new"), "chat")
    child.expect("New passphrase: ")
    child.sendline("short")  # refused at once, before the repetition
    child.expect("at least 8 characters; try again")
    child.expect("New passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Repeat passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("username to claim: ")
    child.sendline("no spaces!")
    child.expect("a username uses only a-z, 0-9, '_' and '-'; try again")
    child.expect("username to claim: ")
    child.sendline("taken")  # valid here; the node says it is taken, later
    child.expect("node contact string")
    child.sendline("nymchat-node:nonsense")
    child.expect("try again")
    child.expect("node contact string")
    child.sendline(str(node.data / "contact.txt"))  # the path is as good as the string
    child.expect(r"your nym-client \[ws://127.0.0.1:1977/taken\]: ")  # a client of one's own
    child.sendline(f"ws://127.0.0.1:{free_port()}/taken")
    child.expect("no nym-client at .*; try again")
    child.expect("your nym-client")
    child.sendline(f"{mixnet.url}/newcomer")
    child.expect("is already taken|already registered|taken")
    child.expect("choose another")
    child.expect("username to claim: ")  # only the name again
    child.sendline("newcomer")
    registered_then_quit(child)


def registered_then_quit(child) -> None:
    """The end of a first run that succeeded: registered, in the chat, /quit leaves."""
    child.expect("registered as newcomer")
    child.expect("Ctrl-D to leave")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_nym_client_given_with_nym_that_fails_is_asked_for_again(net, shiv_root, tmp_path):
    mixnet, node = net
    child = spawn(
        shiv_root,
        "--home",
        str(tmp_path / "new"),
        "chat",
        "--nym",
        f"ws://127.0.0.1:{free_port()}/me",
        NYMCHAT_PASSPHRASE=PASSPHRASE,
    )
    child.expect("username to claim: ")
    child.sendline("newcomer")
    child.expect("node contact string")
    child.sendline(node.contact)
    child.expect("no nym-client at ws://127.0.0.1:")
    child.expect(r"your nym-client \[ws://127.0.0.1:1977/newcomer\]: ")
    child.sendline(f"{mixnet.url}/newcomer")
    registered_then_quit(child)


def test_ctrl_d_in_the_first_run_is_one_line(net, shiv_root, tmp_path):
    child = spawn(shiv_root, "--home", str(tmp_path / "new"), "chat", NYMCHAT_PASSPHRASE=PASSPHRASE)
    child.expect("username to claim: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "nymchat: error: cancelled" in child.before
    assert "internal error" not in child.before and "Traceback" not in child.before


def test_a_wrong_passphrase_is_asked_for_again(net, shiv_root, tmp_path):
    home = tmp_path / "me"
    assert (
        nymchat(
            shiv_root, "--home", str(home), "keys", "new", NYMCHAT_PASSPHRASE=PASSPHRASE
        ).returncode
        == 0
    )
    child = spawn(shiv_root, "--home", str(home), "chat")
    for _ in range(2):
        child.expect("Passphrase: ")
        child.sendline("not the passphrase")
        child.expect("wrong passphrase; try again")
    child.expect("Passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect("Not registered on a node yet")
    child.expect("username to claim: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_the_node_refuses_a_short_password_before_asking_it_again(shiv_root, tmp_path):
    child = spawn(shiv_root, *node_args(tmp_path))
    child.expect("New node password: ")
    child.sendline("short")
    index = child.expect(
        ["choose a node password of at least 8 characters; try again", "Repeat node password: "]
    )
    assert index == 0
    child.expect("New node password: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130 and "cancelled" in child.before


# --- item 6: ordinary mistakes ----------------------------------------------------------


def test_an_invalid_name_in_lookup_or_send_is_a_usage_error(pair):
    alice, _ = pair
    one_clear_line(alice("lookup", "no spaces!", check=False), 2, "a username uses only")
    one_clear_line(alice("send", "x", "hi", check=False), 2, "a username has 3-32 characters")
    for command in (("lookup", "no spaces!"), ("send", "no spaces!", "hi")):
        # checked before a passphrase is asked for or a nym-client reached
        one_clear_line(alice(*command, passphrase="", check=False), 2, "a username uses only")


def test_a_home_or_data_directory_that_is_a_file_or_unwritable_is_one_line(shiv_root, tmp_path):
    (tmp_path / "file").write_text("")
    one_clear_line(
        nymchat(
            shiv_root,
            "--home",
            str(tmp_path / "file"),
            "keys",
            "new",
            NYMCHAT_PASSPHRASE=PASSPHRASE,
        ),
        1,
        "exists and is not a directory",
    )
    one_clear_line(
        nymchat(
            shiv_root,
            "--home",
            str(tmp_path / "file" / "sub"),
            "keys",
            "new",
            NYMCHAT_PASSPHRASE=PASSPHRASE,
        ),
        1,
        "cannot create the directory",
    )
    one_clear_line(
        nymchat(
            shiv_root,
            "--home",
            "/proc/self",
            "keys",
            "new",  # even for root
            NYMCHAT_PASSPHRASE=PASSPHRASE,
        ),
        1,
        "cannot write in /proc/self",
    )
    one_clear_line(
        nymchat(
            shiv_root, "node", "--data", str(tmp_path / "file"), NYMCHAT_NODE_PASSWORD=PASSWORD
        ),
        1,
        "exists and is not a directory",
    )


def test_a_busy_metrics_port_is_one_line(shiv_root, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = nymchat(
            shiv_root,
            *node_args(tmp_path, "--metrics", f"127.0.0.1:{port}"),
            NYMCHAT_NODE_PASSWORD=PASSWORD,
        )
    one_clear_line(out, 1, f"cannot serve metrics on 127.0.0.1:{port}: address already in use")


def script(path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_missing_or_failing_nym_client_binary_is_one_line(shiv_root, tmp_path):
    cases = [
        (str(tmp_path / "absent"), "cannot run the nym-client .*absent: no such file"),
        (
            script(tmp_path / "init-fails", 'echo "bad config" >&2; exit 3'),
            "init --id me` failed \\(exit 3\\): bad config",
        ),
        (
            script(tmp_path / "run-fails", '[ "$1" = init ] && exit 0; exit 4'),
            "exited before it accepted a connection",
        ),
    ]
    import re

    for binary, expected in cases:
        out = nymchat(
            shiv_root,
            *node_args(tmp_path, "--nym-client-bin", binary, "--nym-id", "me"),
            NYMCHAT_NODE_PASSWORD=PASSWORD,
        )
        assert out.returncode == 6, out.stderr
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr
        assert re.search(expected, out.stderr.strip().splitlines()[-1]), out.stderr


@pytest.mark.parametrize("hangs_in", ["init", "run"])
def test_sigterm_stops_a_node_waiting_for_its_nym_client_at_once(shiv_root, tmp_path, hangs_in):
    other = "run" if hangs_in == "init" else "init"
    hang = script(tmp_path / "hang", f'[ "$1" = {other} ] && exit 0; exec sleep 300')
    node = subprocess.Popen(
        [str(DIST), *node_args(tmp_path, "--nym-client-bin", hang, "--nym-id", "me")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD=PASSWORD),
    )
    try:
        time.sleep(3)  # the node waits for a client that never listens
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=15) == 0  # not a minute later
    finally:
        node.kill()
    assert "Traceback" not in node.stderr.read()


# --- item 7: one node per data directory; --print-config loads ---------------------------


def test_a_second_node_on_one_data_directory_is_refused(net, start_node):
    mixnet, node = net
    before = (node.data / "contact.txt").read_text()
    with pytest.raises(AssertionError, match="did not start"):
        start_node(mixnet, data=node.data, name="second")
    log = node.data.with_name(node.data.name + ".log").read_text()
    assert f"another node already uses {node.data} (pid {node.proc.pid})" in log
    assert (node.data / "contact.txt").read_text() == before


def test_print_config_output_loads_as_a_config_file(shiv_root, tmp_path):
    printed = nymchat(
        shiv_root,
        "node",
        "--data",
        str(tmp_path / "data"),
        "--metrics",
        "127.0.0.1:9477",
        "--print-config",
    )
    assert printed.returncode == 0, printed.stderr
    table = tomllib.loads(printed.stdout)  # unset values are comments, not `null`
    assert table["metrics"] == "127.0.0.1:9477" and "password_file" not in table
    (tmp_path / "node.toml").write_text(printed.stdout)
    again = nymchat(shiv_root, "node", "--config", str(tmp_path / "node.toml"), "--print-config")
    assert again.returncode == 0, again.stderr
    assert tomllib.loads(again.stdout) == table


def test_inbox_beside_a_running_chat_tells_what_came_since_the_last_inbox(pair):
    """The running process takes the messages in (it holds the nym-client); `inbox` asks
    it for what came since the last `inbox`, each message once, without the passphrase."""
    alice, bob = pair
    bob("register", "bob", "--node", bob.contact, "--nym", bob.nym)
    bob("send", "alice", "before")
    alice("inbox")
    held = follow(alice)
    try:
        bob("send", "alice", "while you follow")
        deadline = time.monotonic() + 30
        while "while you follow" not in (out := alice("inbox", passphrase="wrong")).stdout:
            assert time.monotonic() < deadline, out.stderr
            time.sleep(0.5)
        assert "before" not in out.stdout
        assert alice("inbox", passphrase="wrong").stdout == ""
    finally:
        held.terminate()
        held.wait(timeout=30)
