"""The demo: starts `nymchat mixnet` and `nymchat node` (two with --federated) as child
processes of this very program, runs two people (alice, bob) on the client engine, and prints
what each part saw."""

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
from nymchat._native import Identity
from nymchat.children import child_env
from nymchat.client.connect import connect
from nymchat.client.engine import Engine
from nymchat.client.events import Status
from nymchat.client.messages import now_ms
from nymchat.client.nodes import KnownNodes
from nymchat.client.profile import Profile
from nymchat.client.records import DirectStatus
from nymchat.commands.nodes import describe
from nymchat.errors import NymchatError
from nymchat.nym import base58
from nymchat.protocol import card
from nymchat.protocol.address import Address
from nymchat.protocol.contact import NodeContact
from nymchat.terminal import block, line

PASSPHRASE = "demo passphrase"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def every_value(db: sqlite3.Connection) -> list[bytes]:
    """Every value of every row of every table, as bytes."""
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return [
        value if isinstance(value, bytes) else str(value).encode()
        for table in tables
        for row in db.execute(f'SELECT * FROM "{table}"')
        for value in row
        if value is not None
    ]


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, delay: str, keep: bool):
        self.delay, self.keep = delay, keep
        self.dir = Path(tempfile.mkdtemp(prefix="nymchat-demo-"))
        self.port = _free_port()
        self.metrics: dict[str, int] = {}  # node -> its metrics port
        self.url = f"ws://127.0.0.1:{self.port}"
        self.children: list[subprocess.Popen] = []
        self.password = secrets.token_urlsafe(16)

    def _spawn(self, log_name: str, *args: str, env: dict | None = None) -> IO[str]:
        """Starts `nymchat ARGS` as a child (its errors in LOG_NAME.log); returns its
        standard output."""
        log = (self.dir / f"{log_name}.log").open("w")
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

    def _start_mixnet(self) -> None:
        mixnet = self._spawn(
            "mixnet",
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

    def _start_node(self, name: str) -> str:
        """Starts the node NAME (data in DIR/NAME) with two frontends on the demo's mixnet;
        returns its contact string."""
        self.metrics[name] = _free_port()
        node = self._spawn(
            name,
            "node",
            "--nym",
            f"{self.url}/{name}-1",
            "--nym",
            f"{self.url}/{name}-2",  # a second frontend: messages go sealed
            "--data",
            str(self.dir / name),
            "--pow-difficulty",
            "8",
            "--metrics",
            f"127.0.0.1:{self.metrics[name]}",
            env={"NYMCHAT_NODE_PASSWORD": self.password},
        )
        line = node.readline()
        if not line.startswith("node contact: "):
            raise NymchatError(f"the node did not start; see {self.dir / name}.log")
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
        self._start_mixnet()
        contact = self._start_node("node")
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
            self._show_node("node")
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

    async def run_federated(self) -> None:
        """Two nodes: alice's home is A, bob's is B; each reaches the other's node directly
        through the mixnet, anonymously, and neither node learns of the other's user."""
        say("nymchat demo --federated: a local test mixnet (no anonymity: it is all on this")
        say("machine), two discovery nodes A and B, alice at home on A and bob on B.")
        say(f"Files: {self.dir}")
        say()
        self._start_mixnet()
        node_a, node_b = self._start_node("node-a"), self._start_node("node-b")
        say(f"node A up:  {node_a}")
        say(f"node B up:  {node_b}")
        async with AsyncExitStack() as stack:
            alice = await self._person(stack, "alice", node_a)
            async with AsyncExitStack() as bob_stack:
                bob = await self._person(bob_stack, "bob", node_b)
                await alice.register("alice")
                await bob.register("bob")
                say("alice registered at A, bob at B (each has an account at one node only)")
                bob_at_b = await self._take_card(alice, bob, NodeContact.parse(node_b))
                say()
                say("the conversation (each writes to the other's node, never through their own):")
                inbox = bob.follow(refresh_every=3600)
                alice_at_a = await self._say(
                    alice, "alice", bob_at_b, "Hi Bob, from node A!", inbox, bob, receipt=True
                )
                alice_inbox = alice.follow(refresh_every=3600)
                await self._say(
                    bob,
                    "bob",
                    alice_at_a,
                    "Hi Alice, answered at A.",
                    alice_inbox,
                    alice,
                    receipt=True,
                )
                say(
                    f"  ({line(bob.display(alice_at_a))}: alice's node as bob's client shows it; "
                    "her message said how to reach it, and he has not named it)"
                )
                await inbox.aclose()
            say("  (bob goes offline)")
            await alice.send(bob_at_b, "Are you there? B keeps it.")
            say(f"  alice -> {bob_at_b}: Are you there? B keeps it.   [accepted by B, queued]")
            self._show_node("node-a", "node A (alice's home)", ("bob", bob.profile.identity))
            self._show_node("node-b", "node B (bob's home)", ("alice", alice.profile.identity))
            async with AsyncExitStack() as bob_stack:
                profile = Profile(self.dir / "bob", keystore.unlock(self.dir / "bob", PASSPHRASE))
                bob_stack.callback(profile.close)
                bob = await self._connect(bob_stack, profile, "bob", node_b)
                for message in await bob.inbox(quiet=0.5):
                    bob.shown(message)
                    say(
                        f"  (bob is back) {line(bob.display(message.sender))} -> bob: "
                        f"{block(message.text)}   [delivered by B on his return]"
                    )
            await alice_inbox.aclose()
        self._show_node(
            "node-b", "node B once bob took his message", ("alice", alice.profile.identity)
        )
        self._kept()

    async def _take_card(self, alice: Engine, bob: Engine, node_b: NodeContact) -> str:
        """bob gives his contact card, alice takes it as `contacts add CARD --yes` does:
        B pinned under a petname, then bob looked up at B; returns his address for her."""
        text = card.encode(bob.profile.identity, await bob.certificates.current(), node_b)
        say()
        say(f"bob's contact card (`nymchat contacts card`): {text[:48]}...")
        taken = card.decode(text)
        nodes = KnownNodes(alice.profile.store)
        with alice.profile.store.transaction():
            node = nodes.add("node-b", taken.node, "card", now_ms())
        say(f"alice takes it: B pinned as '{node.petname}', {describe(taken.node)}")
        address = nodes.display(Address(taken.name, node.key))
        contact = await alice.lookup(address, taken.identity)
        say(
            f"alice looks up {address} at B (anonymously: no account there), and the keys B "
            "gives are the card's"
        )
        say(f"  safety number  {alice.safety_number(contact)}")
        return address

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
        before = self._relayed("node")
        bob_inbox = bob.follow(refresh_every=3600)
        await self._say(
            alice, "alice", "bob", "Now even the node can't see us talk.", bob_inbox, bob
        )
        await self._say(
            bob, "bob", "alice", "Right: it relayed nothing of this.", alice_inbox, alice
        )
        await bob_inbox.aclose()
        after = self._relayed("node")
        say(f"  the node's count of relayed messages: {before} before, {after} after")

    @staticmethod
    async def _until(engine: Engine, peer: str, state: DirectStatus, seconds: float = 30) -> None:
        """Lets `engine` take in what arrives until direct mode with `peer` is in `state`."""
        deadline = time.monotonic() + seconds
        while engine.direct_status(peer) is not state:
            if time.monotonic() > deadline:
                raise NymchatError(f"direct mode did not reach '{state}' in {seconds:g} s")
            await engine.inbox(quiet=0.2)

    def _relayed(self, node: str) -> int:
        """The node's counter of messages it accepted for relaying (its metrics page)."""
        page = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics[node]}/metrics", timeout=5)
            .read()
            .decode()
        )
        found = re.search(r'requests_total\{kind="sealed_send",result="ok"\} (\d+)', page)
        return int(found.group(1)) if found else 0

    async def _say(
        self,
        sender: Engine,
        name: str,
        to: str,
        text: str,
        inbox,
        receiver: Engine,
        receipt: bool = False,
    ) -> str:
        """`sender` writes to `to`; shown once `receiver` has decrypted it (and, with
        `receipt`, once the receiver's receipt is back at the sender). Returns the sender
        as the receiver knows them."""
        started = time.perf_counter()
        message_id = await sender.send(to, text)
        message = await anext(inbox)
        elapsed = (time.perf_counter() - started) * 1000
        receiver.shown(message)
        told = f"decrypted by {receiver.username} in {elapsed:.0f} ms"
        if receipt:
            await self._delivered(sender, message_id)
            told += f", receipt back in {(time.perf_counter() - started) * 1000:.0f} ms"
        sent = sender.message(message_id)
        assert sent is not None  # stored before it left
        shown_to = sender.display(sent.peer)
        say(f"  {name} -> {line(shown_to)}: {block(message.text)}   [{told}]")
        return message.sender

    @staticmethod
    async def _delivered(engine: Engine, message_id: bytes, seconds: float = 30) -> None:
        """Lets `engine` take in what arrives until its message is delivered (a receipt)."""
        deadline = time.monotonic() + seconds
        while getattr(engine.message(message_id), "status", None) is not Status.DELIVERED:
            if time.monotonic() > deadline:
                raise NymchatError(f"no receipt came back in {seconds:g} s")
            await engine.inbox(quiet=0.1)

    def _show_node(
        self, node: str, title: str = "the node", stranger: tuple[str, Identity] | None = None
    ) -> None:
        """What the node holds: keyed hashes of names, routes, and for each queued message
        its recipient, size and time, but no sender and nothing it can read; and nothing of
        `stranger` (a name and identity of another node's user) in any value it stores."""
        db = sqlite3.connect(f"file:{self.dir / node / 'node.db'}?mode=ro", uri=True)
        say()
        say(f"what {title} knows right now (read from its database):")
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
        if stranger is not None:
            if not db.execute("SELECT 1 FROM queue LIMIT 1").fetchone():
                say("  queue: empty")
            name, identity = stranger
            values = every_value(db)
            marks = (name.encode(), identity.signing_public, identity.agreement_public)
            found = sum(any(mark in value for mark in marks) for value in values)
            say(
                f"  of {name}: {found} of its {len(values)} stored values hold {name}'s name "
                f"or identity keys ({'none: it' if not found else 'it'} never learnt who "
                f"{name} is)"
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
        self._kept()

    def _kept(self) -> None:
        """With --keep: where the running demo is, and how to stop it."""
        if self.keep:
            nodes = "nodes" if len(self.metrics) > 1 else "node"
            say()
            say(
                f"This demo's mixnet ({self.url}) and {nodes} keep running (--keep): the profiles "
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
