"""The first run on the page: an identity, unlocking it, a name on a node, served over
JSON-RPC (setup.*, docs/API.md) until the profile's engine is open, in the API's error
shapes. The server opens the engine (`opening`); `setup.state` answers after that too."""

import argparse
import asyncio
import enum
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from nymchat import keystore
from nymchat.client import ops, rpc
from nymchat.client.connect import home_of
from nymchat.client.onboarding import default_url, node_contact, register
from nymchat.client.profile import Profile
from nymchat.client.vocabulary import JsonObject
from nymchat.errors import NoIdentity, PassphraseError, UsageError
from nymchat.home import ensure_home
from nymchat.passphrase import ENV_VAR, unlock_with, weakness
from nymchat.protocol import names

METHODS = ("setup.state", "setup.create", "setup.unlock", "setup.register")


class Stage(enum.Enum):
    NEW = "new"  # no identity in the home yet
    LOCKED = "locked"  # an identity, not unlocked
    UNREGISTERED = "unregistered"  # unlocked, no name on a node
    READY = "ready"  # the engine is open: the page reconnects to its API


class NotNow(UsageError):
    message = "not at this stage of the setup"


def _strings(method: str, params: JsonObject, required: tuple[str, ...], optional=()) -> None:
    """Raises `BadParams` unless `params` are strings named as the method takes them."""
    for name in params:
        if name not in required + optional:
            raise ops.BadParams(f"{method}: no parameter {name!r}")
    for name in required:
        if name not in params:
            raise ops.BadParams(f"{method}: {name!r} is missing")
    for name, value in params.items():
        if type(value) is not str:
            raise ops.BadParams(f"{method}: {name!r} is not a string")


class Setup:
    """Where the profile in --home stands, and the steps that take it to READY."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.home = args, home_of(args)
        self.profile: Profile | None = None
        self.ready = False
        self._steps = asyncio.Lock()  # one step at a time: two tabs may both try
        self._opening: asyncio.Queue[tuple[Profile, asyncio.Future[None]]] = asyncio.Queue()

    def stage(self) -> Stage:
        if self.ready:
            return Stage.READY
        if self.profile is not None:
            return Stage.UNREGISTERED
        try:
            keystore.read_sealed(self.home)
        except NoIdentity:
            return Stage.NEW
        return Stage.LOCKED

    def unlock_at_start(self) -> None:
        """With --passphrase-file or $NYMCHAT_PASSPHRASE, unlocks before serving (a wrong
        one ends the command, as for `daemon`); else the page asks."""
        file = self.args.passphrase_file
        if self.stage() is Stage.LOCKED and (file or ENV_VAR in os.environ):
            path = Path(file).expanduser() if file else None
            identity = unlock_with(path, lambda p: keystore.unlock(self.home, p))
            self.profile = Profile(ensure_home(self.home), identity)

    def registered(self) -> Profile | None:
        """The unlocked profile, once it has a name (the engine can open)."""
        return self.profile if self.profile is not None and self.profile.username else None

    async def opening(self) -> tuple[Profile, "asyncio.Future[None]"]:
        """The next profile to open an engine for, and what to tell once it is (or not)."""
        return await self._opening.get()

    def opened(self) -> None:
        self.ready = True

    async def _open(self) -> None:
        """Has the server open the engine; a failure locks the profile again."""
        assert self.profile is not None
        done = asyncio.get_running_loop().create_future()
        self._opening.put_nowait((self.profile, done))
        try:
            await done
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.profile is not None:
            self.profile.close()
            self.profile = None

    def _nym(self, username: str) -> str:
        """The nym-client to register `username` through, unless told: --nym, else the
        last used, else the user's own default."""
        used = self.profile.store.get("nym") if self.profile is not None else None
        return self.args.nym or used or default_url(username)

    def _at(self, method: str, *stages: Stage) -> None:
        stage = self.stage()
        if stage not in stages:
            raise NotNow(f"{method}: not now (the setup is at {stage.value!r})")

    async def state(self, params: JsonObject) -> JsonObject:
        _strings("setup.state", params, ())
        stage = self.stage()
        username = self.profile.username if self.profile is not None else None
        return {"stage": stage.value, "username": username, "default_nym": self._nym("NAME")}

    async def create(self, params: JsonObject) -> JsonObject:
        _strings("setup.create", params, ("passphrase",))
        passphrase = params["passphrase"]
        async with self._steps:
            self._at("setup.create", Stage.NEW)
            if problem := weakness(passphrase, True, "passphrase"):
                raise PassphraseError(problem)
            home = ensure_home(self.home)
            identity = await asyncio.to_thread(keystore.create, home, passphrase)
            self.profile = Profile(home, identity)
        return await self.state({})

    async def unlock(self, params: JsonObject) -> JsonObject:
        _strings("setup.unlock", params, ("passphrase",))
        async with self._steps:
            self._at("setup.unlock", Stage.LOCKED)
            identity = await asyncio.to_thread(keystore.unlock, self.home, params["passphrase"])
            self.profile = Profile(ensure_home(self.home), identity)
            if self.profile.username:
                await self._open()
        return await self.state({})

    async def register(self, params: JsonObject) -> JsonObject:
        _strings("setup.register", params, ("username", "node"), ("nym",))
        username = names.normalize(params["username"])
        node = node_contact(params["node"])
        nym = params.get("nym") or self._nym(username)
        async with self._steps:
            self._at("setup.register", Stage.UNREGISTERED)
            assert self.profile is not None
            args = argparse.Namespace(**{**vars(self.args), "nym": nym})
            await register(args, self.profile, node, username)
            await self._open()
        return await self.state({})

    def methods(self) -> dict[str, Callable[[JsonObject], Awaitable[JsonObject]]]:
        return {name: getattr(self, name.removeprefix("setup.")) for name in METHODS}

    def connect(self, push: rpc.Push) -> "Connection":
        return Connection(self, push)


class Connection:
    """A websocket served before the engine is open: setup.*, and `subscribe` (there are
    no events yet: the page subscribes again on the engine's socket)."""

    def __init__(self, setup: Setup, push: rpc.Push):
        self.setup, self.push = setup, push
        self.methods = setup.methods()

    async def answer(self, line: bytes) -> rpc.Answer | None:
        return await rpc.answer_line(line, self._answer)

    async def _answer(self, request: rpc.Request) -> JsonObject | None:
        answer = await rpc.answer_of(request, self._call)
        return None if request.notification else answer

    async def _call(self, request: rpc.Request) -> JsonObject:
        if request.method in ("subscribe", "unsubscribe"):
            return {"subscribed": False}
        method = self.methods.get(request.method)
        if method is None:
            raise ops.UnknownMethod(
                f"no method {request.method!r} before the setup is done (setup.state)"
            )
        return await method(request.params)

    def close(self) -> None:
        pass
