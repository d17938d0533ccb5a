"""Every error a user can meet is a kind of the one tree (nymchat/errors.py): a stable exit
status per kind and, with --json, an error object on stdout besides the line on stderr.
The classes in-process, then the built file on a real mixnet and node."""

import json
import socket
import subprocess
import sys

import pexpect
import pytest
from procs import DIST, PASSPHRASE, NodeProcess, User, clean_env, wait_until_serving

from nymchat import errors
from nymchat.client.backup import BadBackup
from nymchat.client.nodelink import NodeNotFound, NodeRefused, NodeSilent, refusal
from nymchat.errors import (
    EXIT_STATUS,
    Busy,
    KeystoreError,
    NotFound,
    NotRegistered,
    NymchatError,
    Refused,
    StillQueued,
    Unreachable,
    UsageError,
    from_json,
)
from nymchat.nym.address import AddressError
from nymchat.nym.supervisor import NymClientFailed
from nymchat.nym.transport import NymClientBusy, NymClientUnavailable
from nymchat.protocol.contact import BadContact
from nymchat.protocol.names import InvalidName
from nymchat.protocol.pow import TooDifficult
from nymchat.protocol.wire import ErrorCode, WireError

# --- the classes ------------------------------------------------------------------------


def test_each_exit_status_is_one_kind_with_one_code_and_all_are_listed():
    own = {
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, NymchatError) and "exit_code" in vars(kind)
    }
    assert own == set(EXIT_STATUS)
    assert len({kind.exit_code for kind in EXIT_STATUS}) == len(EXIT_STATUS)
    assert len({kind.kind for kind in EXIT_STATUS}) == len(EXIT_STATUS)
    assert {kind.kind: kind.exit_code for kind in EXIT_STATUS} == {
        "error": 1,
        "usage": 2,
        "passphrase": 3,
        "not_found": 4,
        "key_changed": 5,
        "unreachable": 6,
        "refused": 7,
        "busy": 8,
        "cancelled": 130,
    }


@pytest.mark.parametrize(
    ("error", "branch"),
    [
        (NodeRefused(ErrorCode.NAME_TAKEN, "taken"), Refused),
        (NodeSilent("the node did not answer"), Unreachable),
        (NymClientUnavailable("ws://127.0.0.1:9"), Unreachable),
        (NymClientFailed("cannot run it"), Unreachable),
        (NymClientBusy("ws://127.0.0.1:9"), Busy),
        (TooDifficult("40 bits"), Refused),
        (BadBackup("not a nymchat backup"), KeystoreError),
        (BadContact("not a contact string"), UsageError),
        (InvalidName("too short"), UsageError),
    ],
)
def test_each_error_is_on_its_branch_of_the_tree(error, branch):
    assert isinstance(error, branch)
    assert error.exit_code == branch.exit_code and error.kind == branch.kind


def test_a_busy_nym_client_is_not_an_unreachable_one():
    assert not isinstance(NymClientBusy("ws://127.0.0.1:9"), Unreachable)
    assert not isinstance(NymClientUnavailable("ws://127.0.0.1:9"), Busy)


@pytest.mark.parametrize("kind", [WireError, AddressError, BadContact, InvalidName])
def test_wire_address_contact_and_name_errors_are_also_value_errors(kind):
    error = kind("malformed")
    assert isinstance(error, NymchatError) and isinstance(error, ValueError)
    assert str(error) == "malformed"


def test_a_node_refusal_carries_the_node_code_and_no_such_name_is_not_found():
    taken = refusal(ErrorCode.NAME_TAKEN, "'alice' is taken")
    assert type(taken) is NodeRefused and taken.code is ErrorCode.NAME_TAKEN
    assert taken.to_json() == {
        "code": "refused",
        "exit": 7,
        "message": "the node refused: 'alice' is taken (name_taken)",
        "node_code": "name_taken",
    }
    nobody = refusal(ErrorCode.NOT_FOUND, "no user 'nobody' here")
    assert isinstance(nobody, NodeNotFound) and isinstance(nobody, NotFound)
    assert (nobody.exit_code, nobody.kind, nobody.node_code) == (4, "not_found", "not_found")
    forgotten = refusal(ErrorCode.NOT_REGISTERED, "this key is not registered here")
    assert isinstance(forgotten, NotRegistered) and forgotten.exit_code == 4
    newer = refusal(99, "a code from a newer node")
    assert type(newer) is NodeRefused and newer.code == 99 and newer.node_code == "error 99"


def test_a_message_still_queued_keeps_the_kind_of_what_stopped_it():
    queued = StillQueued(b"\0" * 16, refusal(ErrorCode.QUEUE_FULL, "bob's queue is full"))
    described = queued.to_json()
    assert (described["code"], described["exit"], described["node_code"]) == (
        "refused",
        7,
        "queue_full",
    )
    assert described["message"].startswith("not sent yet: the node refused: bob's queue")


@pytest.mark.parametrize(
    "error",
    [
        *(kind("told by the serving process") for kind in EXIT_STATUS),
        refusal(ErrorCode.NOT_FOUND, "no user 'nobody' here"),
        StillQueued(b"\0" * 16, NymClientUnavailable("ws://127.0.0.1:9")),
    ],
)
def test_an_error_described_by_another_process_is_raised_as_its_kind(error):
    again = from_json(json.loads(json.dumps(error.to_json())))
    assert again.to_json() == error.to_json()
    assert type(again) in EXIT_STATUS


def test_an_answer_without_a_code_is_the_kind_of_its_exit_status():
    old = from_json({"message": "bad control request: 'to'", "exit": 2})
    assert type(old) is UsageError and str(old) == "bad control request: 'to'"
    assert type(from_json({"exit": 77})) is NymchatError and from_json({"exit": 77}).exit_code == 77


# --- the built file ---------------------------------------------------------------------

cli = pytest.mark.cli


class _NoNet:
    """For a User that never reaches a mixnet or a node."""

    url = "ws://127.0.0.1:9"
    contact = "nymchat-node:none"


def told(out: subprocess.CompletedProcess, exit_code: int, code: str, text: str) -> dict:
    """Checks the exit status, the one error line on stderr and the error object on
    stdout (--json), both saying `text`; returns the object."""
    assert out.returncode == exit_code, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("nymchat: error: ") and text in line, out.stderr
    error = json.loads(out.stdout.strip().splitlines()[-1])["error"]
    assert error["code"] == code and error["exit"] == exit_code, error
    assert text in error["message"] and line == f"nymchat: error: {error['message']}"
    return error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def people(net, shiv_root, tmp_path):
    mixnet, node = net

    def make(*names):
        users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in names]
        for user in users:
            user.register()
        return users

    return make


@cli
def test_a_bad_command_line_exits_2(shiv_root, tmp_path):
    user = User("me", tmp_path / "me", shiv_root, _NoNet, _NoNet)
    told(user("keys", "show", "--bogus", "--json", check=False), 2, "usage", "--bogus")
    told(user("lookup", "al!ce", "--json", check=False), 2, "usage", "uses only a-z")
    no_json = user("keys", "show", "--bogus", check=False)
    assert no_json.returncode == 2 and no_json.stdout == ""
    assert no_json.stderr.startswith("usage: nymchat")  # the usage line, then the error


@cli
def test_a_wrong_passphrase_exits_3(shiv_root, tmp_path):
    user = User("me", tmp_path / "me", shiv_root, _NoNet, _NoNet)
    user("keys", "new")
    out = user("keys", "show", "--check", "--json", passphrase="not the passphrase", check=False)
    told(out, 3, "passphrase", "wrong passphrase")


@cli
def test_what_does_not_exist_exits_4(people, shiv_root, tmp_path):
    (alice,) = people("alice")
    error = told(alice("lookup", "nobody", "--json", check=False), 4, "not_found", "nobody")
    assert error["node_code"] == "not_found"
    told(alice("send", "nobody", "hi", "--json", check=False), 4, "not_found", "no user 'nobody'")
    empty = User("empty", tmp_path / "empty", shiv_root, _NoNet, _NoNet)
    told(empty("keys", "show", "--json", check=False), 4, "not_found", "no identity")
    empty("keys", "new")
    told(empty("inbox", "--json", check=False), 4, "not_found", "no username on a node")


@cli
def test_an_unknown_contact_exits_4(people):
    (alice,) = people("alice")
    told(alice("contacts", "show", "nobody", "--json", check=False), 4, "not_found", "nobody")


@cli
def test_a_changed_key_exits_5(people, net, shiv_root, tmp_path):
    from nodeclient import Client, run

    from nymchat import keystore
    from nymchat.protocol.wire import Kind

    alice, bob = people("alice", "bob")
    alice("lookup", "bob")
    mixnet, node = net

    async def unregister_bob():
        identity = keystore.unlock(bob.home, PASSPHRASE)
        async with Client(f"{mixnet.url}/bob", node.contact, identity) as old:
            await old.request(Kind.UNREGISTER, username="bob")

    run(unregister_bob())
    new_bob = User("bob", tmp_path / "bob-new", shiv_root, mixnet, node)
    new_bob.nym = f"{mixnet.url}/bob-new"
    new_bob.register()
    alice("lookup", "bob")
    out = alice("send", "bob", "still you?", "--json", check=False)
    told(out, 5, "key_changed", "bob's key changed")


@cli
def test_no_nym_client_exits_6(people):
    (alice,) = people("alice")
    url = f"ws://127.0.0.1:{free_port()}"
    out = alice("send", "bob", "x", "--nym", url, "--json", check=False)
    told(out, 6, "unreachable", f"no nym-client at {url}")


@cli
def test_a_refusal_of_the_node_exits_7_with_its_code(people, net, shiv_root, tmp_path):
    people("alice")
    other = User("alice", tmp_path / "other", shiv_root, *net)
    other("keys", "new")
    out = other(
        "register", "alice", "--node", other.contact, "--nym", other.nym, "--json", check=False
    )
    error = told(out, 7, "refused", "is taken")
    assert error["node_code"] == "name_taken"


@cli
def test_what_another_process_holds_exits_8(people, net, shiv_root, tmp_path):
    (alice,) = people("alice")
    follow = subprocess.Popen(
        [str(DIST), "--home", str(alice.home), "inbox", "--follow"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE),
    )
    try:
        wait_until_serving(alice.home, follow)
        told(alice("chat", "--json", input="", check=False), 8, "busy", "already runs")
        told(alice("unregister", "--yes", "--json", check=False), 8, "busy", "quit it first")
        # an error of the serving process keeps its kind (no passphrase asked: it answers)
        out = alice("lookup", "nobody", "--json", passphrase="not asked", check=False)
        assert told(out, 4, "not_found", "no user 'nobody'")["node_code"] == "not_found"
    finally:
        follow.terminate()
        follow.wait(timeout=30)
    mixnet, _ = net  # the net's node holds the virtual nym-client "node"
    node = subprocess.run(
        [str(DIST), "node", "--nym", f"{mixnet.url}/node", "--data", str(tmp_path / "second")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=clean_env(shiv_root, NYMCHAT_NODE_PASSWORD=NodeProcess.PASSWORD),
    )
    assert node.returncode == 8, node.stderr
    assert f"the nym-client at {mixnet.url}/node is in use by another program" in node.stderr


@cli
def test_ctrl_d_at_a_prompt_exits_130(shiv_root, tmp_path):
    child = pexpect.spawn(
        str(DIST),
        ["--home", str(tmp_path / "me"), "keys", "new", "--json"],
        env=clean_env(shiv_root, TERM="xterm"),
        encoding="utf-8",
        timeout=30,
    )
    child.expect("New passphrase: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert '{"error": {"code": "cancelled", "exit": 130, "message": "cancelled' in child.before


@cli
def test_python_oo_gives_the_same_errors(shiv_root, tmp_path):
    """Messages are never docstrings: `python -OO` (which drops them) says the same."""
    env = clean_env(shiv_root, NYMCHAT_PASSPHRASE=PASSPHRASE)

    def both(home, *args) -> subprocess.CompletedProcess:
        plain, optimised = (
            subprocess.run(
                [sys.executable, *flags, str(DIST), "--home", str(home), *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            for flags in ([], ["-OO"])
        )
        assert plain.returncode == optimised.returncode != 0
        assert (plain.stdout, plain.stderr) == (optimised.stdout, optimised.stderr)
        return plain

    empty, fresh = tmp_path / "empty", tmp_path / "fresh"
    assert both(empty, "keys", "show", "--json").returncode == 4  # NoIdentity
    subprocess.run([str(DIST), "--home", str(fresh), "keys", "new"], env=env, check=True)
    assert "has no username on a node yet" in both(fresh, "inbox", "--json").stdout
    assert both(fresh, "lookup", "al!ce").returncode == 2  # InvalidName
