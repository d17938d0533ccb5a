"""The demo: starts `nymchat mixnet` and `nymchat node` as child processes of this very
program, runs two people (alice, bob) on the client engine, and prints what each part saw."""

import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO

from nymchat import keystore
from nymchat.children import child_env
from nymchat.client.connect import connect
from nymchat.client.engine import Engine
from nymchat.client.profile import Profile
from nymchat.client.records import DirectStatus
from nymchat.errors import NymchatError
from nymchat.nym import base58
from nymchat.protocol.contact import NodeContact
from nymchat.terminal import block, line

PASSPHRASE = "demo passphrase"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, delay: str, keep: bool):
        self.delay, self.keep = delay, keep
        self.dir = Path(tempfile.mkdtemp(prefix="nymchat-demo-"))
        self.port, self.metrics_port = _free_port(), _free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.children: list[subprocess.Popen] = []
        self.password = secrets.token_urlsafe(16)

    def _spawn(self, *args: str, env: dict | None = None) -> IO[str]:
        """Starts `nymchat ARGS` as a child; returns its standard output."""
        log = (self.dir / f"{args[0]}.log").open("w")
        child = subprocess.Popen(
            [sys.executable, sys.argv[0], *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
            env=child_env("SHIV_ROOT", "PYTHONPATH", **(env or {})),
        )
        self.children.append(child)
        assert child.stdout is not None  # stdout=PIPE
        return child.stdout

    def _start_network(self) -> str:
        mixnet = self._spawn(
            "mixnet",
            "--port",
            str(self.port),
            "--delay",
            self.delay,
            "--state",
            str(self.dir / "mixnet"),
            "--json",
        )
        if '"listening"' not in mixnet.readline():
            raise NymchatError(f"the mixnet did not start; see {self.dir / 'mixnet.log'}")
        node = self._spawn(
            "node",
            "--nym",
            f"{self.url}/node-1",
            "--nym",
            f"{self.url}/node-2",  # a second frontend: messages go sealed
            "--data",
            str(self.dir / "node"),
            "--pow-difficulty",
            "8",
            "--metrics",
            f"127.0.0.1:{self.metrics_port}",
            env={"NYMCHAT_NODE_PASSWORD": self.password},
        )
        line = node.readline()
        if not line.startswith("node contact: "):
            raise NymchatError(f"the node did not start; see {self.dir / 'node.log'}")
        return line.removeprefix("node contact: ").strip()

    async def _person(self, stack: AsyncExitStack, name: str, contact: str) -> Engine:
        home = self.dir / name
        home.mkdir(mode=0o700)
        profile = Profile(home, keystore.create(home, PASSPHRASE))
        stack.callback(profile.close)
        return await self._connect(stack, profile, name, contact)

    async def _connect(self, stack, profile: Profile, name: str, contact: str) -> Engine:
        return await stack.enter_async_context(
            connect(profile, f"{self.url}/{name}", NodeContact.parse(contact))
        )

    async def run(self) -> None:
        say("nymchat demo: a local test mixnet (no anonymity: it is all on this machine), a")
        say(f"discovery node, and two people, alice and bob. Files: {self.dir}")
        say()
        contact = self._start_network()
        say(f"node up; its contact string (what users configure):\n  {contact}")
        async with AsyncExitStack() as stack:
            alice = await self._person(stack, "alice", contact)
            async with AsyncExitStack() as bob_stack:
                bob = await self._person(bob_stack, "bob", contact)
                for person, name in ((alice, "alice"), (bob, "bob")):
                    started = time.perf_counter()
                    await person.register(name)
                    say(
                        f"{name} registered ({(time.perf_counter() - started) * 1000:.0f} ms, "
                        "with a small proof of work)"
                    )
                seen_by_alice = alice.safety_number(await alice.lookup("bob"))
                seen_by_bob = bob.safety_number(await bob.lookup("alice"))
                say()
                say("safety numbers (each side computes its own; they must match):")
                say(f"  alice sees  {seen_by_alice}")
                say(f"  bob sees    {seen_by_bob}")
                say(f"  {'they match' if seen_by_alice == seen_by_bob else 'MISMATCH'}")
                say()
                say("the conversation (end-to-end encrypted, double ratchet):")
                inbox = bob.follow(refresh_every=3600)
                await self._say(
                    alice, "alice", "bob", "Hi Bob! This went through the mixnet.", inbox, bob
                )
                alice_inbox = alice.follow(refresh_every=3600)
                await self._say(
                    bob, "bob", "alice", "Hi Alice, only we can read this.", alice_inbox, alice
                )
                await inbox.aclose()
            say("  (bob goes offline)")
            await alice.send("bob", "Are you there? I'll wait.")
            say("  alice -> bob: Are you there? I'll wait.   [accepted by the node, queued]")
            self._show_node()
            async with AsyncExitStack() as bob_stack:
                profile = Profile(self.dir / "bob", keystore.unlock(self.dir / "bob", PASSPHRASE))
                bob_stack.callback(profile.close)
                bob = await self._connect(bob_stack, profile, "bob", contact)
                for message in await bob.inbox(quiet=0.5):
                    bob.shown(message)
                    say(
                        f"  (bob is back) {line(message.sender)} -> bob: {block(message.text)}   "
                        "[delivered on his return]"
                    )
                await self._direct(alice, bob, alice_inbox)
            await alice_inbox.aclose()
        self._try_it()

    async def _direct(self, alice: Engine, bob: Engine, alice_inbox) -> None:
        """Direct mode: asked and agreed to, then the node carries nothing more."""
        say()
        say("direct mode, off the node (asked for, and agreed to):")
        await alice.direct_action("invite", "bob")
        say("  alice invites bob, inside their end-to-end session (she discloses nothing)")
        await self._until(bob, "alice", DirectStatus.INVITED)
        await bob.direct_action("accept", "alice")
        say("  bob accepts: his nym address goes to alice only; she answers on SURBs, so her")
        say("  address stays hidden from him")
        await self._until(alice, "bob", DirectStatus.ON)  # bob answered alice's hello
        before = self._relayed()
        bob_inbox = bob.follow(refresh_every=3600)
        await self._say(
            alice, "alice", "bob", "Now even the node can't see us talk.", bob_inbox, bob
        )
        await self._say(
            bob, "bob", "alice", "Right: it relayed nothing of this.", alice_inbox, alice
        )
        await bob_inbox.aclose()
        say(f"  the node's count of relayed messages: {before} before, {self._relayed()} after")

    @staticmethod
    async def _until(engine: Engine, peer: str, state: DirectStatus, seconds: float = 30) -> None:
        """Lets `engine` take in what arrives until direct mode with `peer` is in `state`."""
        deadline = time.monotonic() + seconds
        while engine.direct_status(peer) is not state:
            if time.monotonic() > deadline:
                raise NymchatError(f"direct mode did not reach '{state}' in {seconds:g} s")
            await engine.inbox(quiet=0.2)

    def _relayed(self) -> int:
        """The node's counter of messages it accepted for relaying (its metrics page)."""
        page = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )
        found = re.search(r'requests_total\{kind="sealed_send",result="ok"\} (\d+)', page)
        return int(found.group(1)) if found else 0

    async def _say(
        self, sender: Engine, name: str, to: str, text: str, inbox, receiver: Engine
    ) -> None:
        started = time.perf_counter()
        await sender.send(to, text)
        message = await anext(inbox)
        elapsed = (time.perf_counter() - started) * 1000
        receiver.shown(message)
        say(f"  {name} -> {to}: {block(message.text)}   [decrypted by {to} in {elapsed:.0f} ms]")

    def _show_node(self) -> None:
        """What the node holds: keyed hashes of names, routes, and for each queued message
        its recipient, size and time, but no sender and nothing it can read."""
        db = sqlite3.connect(f"file:{self.dir / 'node' / 'node.db'}?mode=ro", uri=True)
        say()
        say("what the node knows right now (read from its database):")
        label = {}
        for name_hash, route in db.execute("SELECT name_hash, sender_tag FROM users ORDER BY 1"):
            label[name_hash] = f"user {name_hash[:4].hex()}"
            say(
                f"  {label[name_hash]}  (a keyed hash of the name: no name in clear)  route "
                f"{base58.encode(route) if route else '-'}  (a reply handle: not an address)"
            )
        for recipient, received, payload in db.execute(
            "SELECT recipient, received, payload FROM queue"
        ):
            when = time.strftime("%H:%M:%S", time.localtime(received / 1000))
            say(
                f"  queued for {label.get(recipient, '?')} at {when}: {len(payload)} bytes, "
                f"sealed {payload[5:13].hex()}... from: nobody knows (a sealed send names no "
                "sender; short messages, receipts and handshakes are padded alike)"
            )
        db.close()
        say()

    def _try_it(self) -> None:
        me = "nymchat"
        if Path(sys.argv[0]).name == "nymchat":  # the one-file build: say how it was run
            me = os.path.relpath(sys.argv[0])
            me = me if not me.startswith("..") else sys.argv[0]
        say()
        say('Try it by hand, two people in four terminals (README.md, "By hand"):')
        say(f"  1. {me} mixnet")
        say(
            f"  2. {me} node --nym ws://127.0.0.1:1977/node-1 --nym ws://127.0.0.1:1977/node-2"
            " --data ~/nymchat-node"
        )
        say(f"  3. {me} --home ~/alice chat   (the first run creates an identity and registers:")
        say("     give it ~/nymchat-node/contact.txt, and keep the nym-client it offers)")
        say(f"  4. {me} --home ~/bob chat     (the same, as bob; then /msg alice hi)")
        if self.keep:
            say()
            say(
                f"This demo's mixnet ({self.url}) and node keep running (--keep): the profiles "
                f"are in {self.dir} (passphrase {PASSPHRASE!r}); stop them with"
            )
            say("  kill " + " ".join(str(c.pid) for c in self.children))

    def stop(self) -> None:
        if self.keep:
            return
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
