"""The first run on the page (nymchat.web.setup), in-process on a temporary home: the
stages, the checks before anything is done, the server asked to open the engine, and the
setup.* methods in the API's shapes. Registering for real: tests/test_web_server.py."""

import argparse
import asyncio
import json

import pytest

from nymchat import keystore
from nymchat.client import ops, rpc
from nymchat.client.profile import Profile
from nymchat.errors import PassphraseError, Unreachable, WrongPassphrase
from nymchat.protocol.contact import BadContact
from nymchat.protocol.names import InvalidName
from nymchat.web.setup import NotNow, Setup, Stage

PASSPHRASE = "correct horse battery"


def setup_in(home, **options) -> Setup:
    args = argparse.Namespace(home=str(home), passphrase_file=None, nym=None, sealed_delay=0)
    return Setup(argparse.Namespace(**{**vars(args), **options}))


def registered(home) -> None:
    """A profile in `home` with a name (as if registered)."""
    profile = Profile(home, keystore.create(home, PASSPHRASE))
    profile.store.put("username", "carol")
    profile.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_new_home_is_created_with_a_passphrase_as_keys_new_wants_it(tmp_path):
    setup = setup_in(tmp_path / "home")

    async def steps():
        assert (await setup.state({}))["stage"] == "new"
        with pytest.raises(PassphraseError, match="at least 8"):
            await setup.create({"passphrase": "short"})
        assert setup.stage() is Stage.NEW and not (tmp_path / "home").exists()
        created = await setup.create({"passphrase": PASSPHRASE})
        assert created == {
            "stage": "unregistered",
            "username": None,
            "default_nym": "ws://127.0.0.1:1977/NAME",
        }
        with pytest.raises(NotNow):
            await setup.create({"passphrase": PASSPHRASE})

    run(steps())
    setup.close()
    assert keystore.unlock(tmp_path / "home", PASSPHRASE)


def test_two_tabs_creating_at_once_make_one_identity_and_the_other_is_told(tmp_path):
    setup = setup_in(tmp_path)

    async def both():
        return await asyncio.gather(
            setup.create({"passphrase": PASSPHRASE}),
            setup.create({"passphrase": "another passphrase"}),
            return_exceptions=True,
        )

    made, refused = run(both())
    assert made["stage"] == "unregistered" and isinstance(refused, NotNow)
    setup.close()
    assert keystore.unlock(tmp_path, PASSPHRASE)


def test_unlocking_takes_the_right_passphrase_only(tmp_path):
    keystore.create(tmp_path, PASSPHRASE)
    setup = setup_in(tmp_path)

    async def steps():
        assert setup.stage() is Stage.LOCKED
        with pytest.raises(WrongPassphrase):
            await setup.unlock({"passphrase": "not the one"})
        assert setup.stage() is Stage.LOCKED
        assert (await setup.unlock({"passphrase": PASSPHRASE}))["stage"] == "unregistered"
        with pytest.raises(NotNow):
            await setup.unlock({"passphrase": PASSPHRASE})

    run(steps())
    setup.close()


def test_unlocking_a_registered_profile_answers_once_the_server_opened_its_engine(tmp_path):
    registered(tmp_path)
    setup = setup_in(tmp_path)

    async def steps():
        unlocking = asyncio.create_task(setup.unlock({"passphrase": PASSPHRASE}))
        profile, opened = await setup.opening()
        assert profile.username == "carol" and not unlocking.done()
        setup.opened()
        opened.set_result(None)
        assert await unlocking == {
            "stage": "ready",
            "username": "carol",
            "default_nym": "ws://127.0.0.1:1977/NAME",
        }

    run(steps())
    setup.close()


def test_an_engine_that_cannot_open_is_the_answer_and_the_profile_is_locked_again(tmp_path):
    registered(tmp_path)
    setup = setup_in(tmp_path)

    async def steps():
        unlocking = asyncio.create_task(setup.unlock({"passphrase": PASSPHRASE}))
        _, opened = await setup.opening()
        opened.set_exception(Unreachable("no nym-client at ws://127.0.0.1:1977/carol"))
        with pytest.raises(Unreachable):
            await unlocking
        assert setup.stage() is Stage.LOCKED and setup.profile is None

    run(steps())


def test_register_checks_the_name_and_the_contact_before_reaching_anything(tmp_path):
    setup = setup_in(tmp_path)

    async def steps():
        await setup.create({"passphrase": PASSPHRASE})
        with pytest.raises(InvalidName):
            await setup.register({"username": "no spaces here", "node": "nymchat-node:x"})
        with pytest.raises(BadContact):
            await setup.register({"username": "carol", "node": "nymchat-node:not-one"})
        assert setup.stage() is Stage.UNREGISTERED

    run(steps())
    setup.close()


def test_start_unlocks_with_the_environments_passphrase(tmp_path, monkeypatch):
    registered(tmp_path)
    monkeypatch.setenv("NYMCHAT_PASSPHRASE", PASSPHRASE)
    setup = setup_in(tmp_path)
    setup.unlock_at_start()
    assert setup.registered() is not None and setup.registered().username == "carol"
    setup.close()
    monkeypatch.setenv("NYMCHAT_PASSPHRASE", "wrong one!")
    with pytest.raises(WrongPassphrase):
        setup_in(tmp_path).unlock_at_start()


def test_without_a_passphrase_given_the_page_is_asked(tmp_path, monkeypatch):
    registered(tmp_path)
    monkeypatch.delenv("NYMCHAT_PASSPHRASE", raising=False)
    setup = setup_in(tmp_path)
    setup.unlock_at_start()
    assert setup.stage() is Stage.LOCKED


@pytest.mark.parametrize(
    "method, params",
    [
        ("setup.state", {"extra": "x"}),
        ("setup.create", {}),
        ("setup.create", {"passphrase": 12345678}),
        ("setup.unlock", {"passphrase": PASSPHRASE, "also": "x"}),
        ("setup.register", {"username": "carol"}),
        ("setup.register", {"username": "carol", "node": "n", "nym": None}),
    ],
)
def test_setup_methods_refuse_parameters_they_do_not_take(tmp_path, method, params):
    setup = setup_in(tmp_path)
    with pytest.raises(ops.BadParams):
        run(setup.methods()[method](params))


def test_the_setup_socket_answers_in_the_apis_shapes(tmp_path):
    setup = setup_in(tmp_path)
    pushed = []
    connection = setup.connect(pushed.append)

    def line(*requests):
        return json.dumps(requests[0] if len(requests) == 1 else list(requests)).encode()

    async def talk():
        state = await connection.answer(line({"jsonrpc": "2.0", "id": 1, "method": "setup.state"}))
        assert state["result"]["stage"] == "new"
        subscribed = await connection.answer(
            line({"jsonrpc": "2.0", "id": 2, "method": "subscribe"})
        )
        assert subscribed["result"] == {"subscribed": False}
        early = await connection.answer(
            line({"jsonrpc": "2.0", "id": 3, "method": "contacts.list"})
        )
        assert early["error"]["code"] == rpc.METHOD_NOT_FOUND
        weak = await connection.answer(
            line(
                {"jsonrpc": "2.0", "id": 4, "method": "setup.create", "params": {"passphrase": "x"}}
            )
        )
        assert weak["error"]["code"] == rpc.APPLICATION_ERROR
        assert weak["error"]["data"] == {"code": "passphrase", "exit": 3}
        batch = await connection.answer(
            line(
                {"jsonrpc": "2.0", "id": 5, "method": "setup.state"},
                {"jsonrpc": "2.0", "method": "setup.state"},  # a notification: no answer
                {"jsonrpc": "1.0", "id": 6, "method": "setup.state"},
            )
        )
        assert sorted(a["id"] for a in batch) == [5, 6]
        assert (await connection.answer(b"not json"))["error"]["code"] == rpc.PARSE_ERROR

    run(talk())
    assert pushed == []


def test_the_nym_client_offered_is_the_one_given_else_the_last_used_else_the_users_own(tmp_path):
    given = setup_in(tmp_path / "given", nym="ws://127.0.0.1:1990/mine")
    assert run(given.state({}))["default_nym"] == "ws://127.0.0.1:1990/mine"
    setup = setup_in(tmp_path / "used")
    run(setup.create({"passphrase": PASSPHRASE}))
    assert run(setup.state({}))["default_nym"] == "ws://127.0.0.1:1977/NAME"
    setup.profile.store.put("nym", "ws://127.0.0.1:1991/before")
    assert run(setup.state({}))["default_nym"] == "ws://127.0.0.1:1991/before"
    setup.close()
