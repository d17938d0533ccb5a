"""The first run of `nymchat chat` at a terminal: an identity, then a username on a node.
Each answer is checked as it is given and asked for again when it is wrong; a name the
node refuses is asked for again without the rest; Ctrl-D ends it with one line."""

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nymchat import keystore
from nymchat.client.connect import home_of
from nymchat.client.nodelink import NodeRefused
from nymchat.client.onboarding import NAME_REFUSALS, default_url, node_contact, register
from nymchat.client.profile import Profile
from nymchat.errors import Cancelled, NoIdentity, NymchatError
from nymchat.home import ensure_home
from nymchat.nym.transport import NOT_CONNECTED, NymClient
from nymchat.passphrase import get_passphrase, unlock_with
from nymchat.protocol import names
from nymchat.terminal import line

T = TypeVar("T")


def ask(prompt: str, check: Callable[[str], T], default: str = "") -> T:
    """`check(answer)` for the first answer it accepts; each refusal is told and the
    question asked again."""
    while True:
        try:
            answer = input(prompt).strip() or default
        except EOFError:  # Ctrl-D
            print()
            raise Cancelled() from None
        try:
            return check(answer)
        except NymchatError as e:
            print(f"  {line(str(e))}; try again")


def reachable(url: str) -> str:
    """The URL, once a nym-client answers there (NymClientBusy or Unavailable says why not)."""

    async def connect() -> None:
        async with NymClient(url, reconnect=False):
            pass

    asyncio.run(connect())
    return url


def ask_url(name: str) -> str:
    return ask(f"your nym-client [{default_url(name)}]: ", reachable, default_url(name))


def _identity(args: argparse.Namespace, home: Path):
    passphrase_file = args.passphrase_file and Path(args.passphrase_file).expanduser()
    try:
        sealed = keystore.read_sealed(home)
    except NoIdentity:
        print("No identity here yet: let's make one (keys sealed with a passphrase).")
        identity = keystore.create(ensure_home(home), get_passphrase(None, new=True))
        print("Identity created.")
        return identity
    return unlock_with(passphrase_file, lambda p: keystore.unlock(home, p, sealed))


def run(args: argparse.Namespace) -> Profile:
    """Unlocks the profile; without an identity or a username, walks the person at the
    terminal through `keys new` and `register` first. Returns the unlocked profile."""
    home = home_of(args)
    profile = Profile(ensure_home(home), _identity(args, home))
    if profile.username:
        return profile
    print("Not registered on a node yet.")
    name = ask("username to claim: ", names.normalize)
    node = ask(
        "node contact string (nymchat-node:..., or the path of its contact.txt): ", node_contact
    )
    if not args.nym:
        args.nym = ask_url(name)

    while True:
        try:
            print(f"registered as {asyncio.run(register(args, profile, node, name))}")
            return profile
        except NodeRefused as e:
            if e.code not in NAME_REFUSALS:
                raise
            print(f"  {line(e.detail)}; choose another")
            name = ask("username to claim: ", names.normalize)
        except NOT_CONNECTED as e:  # busy or gone since (or given with --nym)
            print(f"  {line(str(e))}")
            args.nym = ask_url(name)
