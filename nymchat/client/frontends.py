"""Which of a node's frontends (its nym addresses) carries which of our requests: sans-I/O,
the clock passed in (docs/PROTOCOL.md, frontends).

A nym-client shows the node one sender tag per address it writes to, and the node links a
tag to our account as soon as we sign a request with it. So our signed requests go to one
frontend, our *home* (picked by rendezvous hash of our identity and the frontends' ids:
stable for us, spread over users), and every address ever used as home is *burned*: never
used again for anonymous requests (sealed sends, lookups), which go to the best-scoring
frontend that is neither burned nor home. Where none is left (a one-frontend node), they
go through home, and the caller says so to the person.

The frontends are those of the node's signed descriptor, once one was fetched (checked:
signed by the pinned key for itself, not expired, not older than the one we hold, every
address valid), and until then the contact string's addresses with their ids. What has to
survive a restart (descriptor, home, burned addresses) is handed to `on_change` as a
record for the profile store, before it is relied on.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from nymchat import _native
from nymchat.nym.address import Address, AddressError
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Frontend, WireError

HOME_DOMAIN = b"nymchat-home-v1\x00"
REFRESH_MS = 86_400_000  # a cached descriptor older than this is fetched again
RETRY_MS = 3_600_000  # after a failed fetch (refused, none at the node, silent), ask later

Record = dict[str, Any]  # what the profile store keeps, as JSON


def score(identity: bytes, frontend_id: int) -> bytes:
    return hashlib.sha256(HOME_DOMAIN + identity + frontend_id.to_bytes(2, "big")).digest()


def rendezvous(identity: bytes, frontends: tuple[Frontend, ...]) -> list[Frontend]:
    """The frontends in our order of preference: highest score first."""
    return sorted(frontends, key=lambda f: score(identity, f.id), reverse=True)


class Frontends:
    def __init__(
        self,
        contact: NodeContact,
        identity: bytes,
        record: Record | None = None,
        on_change: Callable[[Record], None] = lambda record: None,
        anonymous_only: bool = False,
        burned: set[str] | None = None,
    ):
        """`anonymous_only`: the frontends of a node we are not registered at, which has
        no home for us and burns nothing; `burned` the profile's burned addresses (its
        home node's record holds them)."""
        self.contact, self.identity, self.on_change = contact, identity, on_change
        self.anonymous_only = anonymous_only
        self.descriptor: wire.Descriptor | None = None
        self._raw: bytes | None = None  # the descriptor's bytes as the node signed them
        self.home_id: int | None = None
        self.burned: set[str] = set(burned or ())
        self._skipped: set[int] = set()  # anonymous frontends that went silent this run
        self._ask_after = 0  # ms: no fetch before (after a failed one)
        self._addresses = {str(a): a for a in contact.addresses}  # each listed one, parsed
        if record:
            self._load(record)

    def _load(self, record: Record) -> None:
        if not self.anonymous_only:
            self.burned = set(record.get("burned", ()))
        if record.get("node") != self.contact.key.hex():
            return  # kept for another node: only the burned addresses still hold
        if record.get("descriptor"):
            # Checked when it came; the profile store seals it (AEAD) since.
            self._raw = bytes.fromhex(record["descriptor"])
            self.descriptor = wire.decode_record(wire.DESCRIPTOR, self._raw[1:-64])
            self._addresses.update(_parsed(self.descriptor))
        self.home_id = record.get("home")

    def record(self) -> Record:
        return {
            "node": self.contact.key.hex(),
            "descriptor": self._raw.hex() if self._raw is not None else None,
            "home": self.home_id,
            "burned": [] if self.anonymous_only else sorted(self.burned),
        }

    @property
    def listed(self) -> tuple[Frontend, ...]:
        if self.descriptor is not None:
            return self.descriptor.frontends
        contact = self.contact
        return tuple(
            Frontend(n, str(a)) for n, a in zip(contact.ids, contact.addresses, strict=True)
        )

    def address(self, frontend: Frontend) -> Address:
        return self._addresses[frontend.address]

    def order(self) -> list[Frontend]:
        return rendezvous(self.identity, self.listed)

    def _listed(self, frontend_id: int | None) -> Frontend | None:
        return next((f for f in self.listed if f.id == frontend_id), None)

    # --- home -------------------------------------------------------------------------

    def home(self) -> Frontend:
        """Where our signed requests go; its address is burned (and that kept) before it
        is returned. A home the node no longer lists is replaced by the first frontend in
        our order that is burned already (nothing more learnt), else by the first."""
        if self.anonymous_only:
            raise ValueError("an anonymous-only node has no home for us")
        home = self._listed(self.home_id)
        if home is None:
            order = self.order()
            home = next((f for f in order if f.address in self.burned), order[0])
        if home.id != self.home_id or home.address not in self.burned:
            self.home_id = home.id
            self.burned.add(home.address)
            self.on_change(self.record())
        return home

    def burn(self, addresses: set[str]) -> None:
        """`addresses` carried signed requests (to a node being left): never anonymous ones."""
        if not addresses <= self.burned:
            self.burned |= addresses
            self.on_change(self.record())

    def next_homes(self) -> list[Frontend]:
        """The frontends after home in our order (round again after the last): where home
        moves, the first that answers (several may have gone with one node process)."""
        order = self.order()
        at = next(n for n, f in enumerate(order) if f.id == self.home().id)
        return order[at + 1 :] + order[:at]

    def move_home(self, frontend: Frontend) -> Frontend:
        """`frontend` is home from now on (burned); returns it."""
        self.home_id = frontend.id
        self._skipped.discard(frontend.id)
        return self.home()

    # --- anonymous requests -----------------------------------------------------------

    def anonymous(self) -> Frontend | None:
        """Where anonymous requests go: the first frontend in our order that is not home
        and was never home, passing over those that went silent this run (all of them
        silent: from the first again); None when there is no such frontend at all."""
        home = None if self.anonymous_only else self.home().id
        usable = [f for f in self.order() if f.address not in self.burned and f.id != home]
        if not usable:
            return None
        awake = [f for f in usable if f.id not in self._skipped]
        if not awake:
            self._skipped.clear()
            return usable[0]
        return awake[0]

    def silent(self, frontend: Frontend) -> None:
        """An anonymous frontend did not answer: the next unburned one takes over."""
        self._skipped.add(frontend.id)

    # --- the descriptor ---------------------------------------------------------------

    def due(self, now_ms: int) -> bool:
        """Whether the descriptor should be fetched: none yet, older than a day, expired;
        not again soon after a failed fetch."""
        if now_ms < self._ask_after:
            return False
        d = self.descriptor
        return d is None or now_ms - d.issued > REFRESH_MS or d.expires <= now_ms

    def failed(self, now_ms: int) -> None:
        """A fetch failed: what we have serves until `RETRY_MS` from now."""
        self._ask_after = now_ms + RETRY_MS

    def take(self, data: bytes, node_key: "_native.PublicKey", now_ms: int) -> wire.Descriptor:
        """Checks a descriptor the node sent and, if good, keeps it; `WireError` (and the
        one held kept) if it is badly signed, another node's, expired, older than the one
        held, or lists an address that is not one."""
        descriptor = wire.decode_descriptor(data, node_key, now_ms)
        if self.descriptor is not None and descriptor.issued < self.descriptor.issued:
            raise WireError("the frontend descriptor is older than the one already held")
        try:
            addresses = _parsed(descriptor)
        except AddressError as e:
            raise WireError(f"the frontend descriptor lists a bad address ({e})") from None
        self.descriptor, self._raw = descriptor, data
        self._addresses.update(addresses)
        self._skipped.clear()
        self.on_change(self.record())
        return descriptor


def _parsed(descriptor: wire.Descriptor) -> dict[str, Address]:
    return {f.address: Address.parse(f.address) for f in descriptor.frontends}
