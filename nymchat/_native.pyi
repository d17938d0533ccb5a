"""Types of `nymchat._native`, the Rust core (rust_ext/src/python.rs), checked against the
built module by `mypy.stubtest` in `./build.sh lint`.

Errors are the classes of `nymchat.errors` marked (native): `BadKey`, `BadSignature`,
`DecryptionFailed`, `SessionBroken`, `FramingError`, `InvalidArgument`, `MlsError` (all
`CryptoError`) and `JsonError`. Byte arguments are `bytes`; keys are 32 raw bytes unless
said otherwise.
"""

from collections.abc import Sequence
from typing import Any, Final, Literal, final

__all__ = [
    "ANONYMOUS_ENVELOPE_OVERHEAD",
    "ENVELOPE_OVERHEAD",
    "FRAME_CHUNK_LEN",
    "FRAME_HEADER_LEN",
    "FRAME_SIZE",
    "MAX_FRAMES",
    "MESSAGE_ID_LEN",
    "PUBLIC_KEY_LEN",
    "SIGNATURE_LEN",
    "Account",
    "Identity",
    "MlsGroup",
    "MlsMember",
    "Processed",
    "PublicKey",
    "Reassembler",
    "Session",
    "__version__",
    "encode_frames",
    "frame_count",
    "is_nym_ed25519_key",
    "json_loads",
    "mls_key_package_identity",
    "open_anonymous",
    "open_envelope",
    "parse_nym_request_text",
    "seal_anonymous",
    "seal_envelope",
    "self_test",
    "verify",
    "verify_batch",
]

__version__: Final[str]
FRAME_SIZE: Final[int]
FRAME_HEADER_LEN: Final[int]
FRAME_CHUNK_LEN: Final[int]
MAX_FRAMES: Final[int]
MESSAGE_ID_LEN: Final[int]
ENVELOPE_OVERHEAD: Final[int]
ANONYMOUS_ENVELOPE_OVERHEAD: Final[int]
PUBLIC_KEY_LEN: Final[int]
SIGNATURE_LEN: Final[int]

@final
class Identity:
    """Long-term Ed25519 (signing) and X25519 (agreement) keys; the secrets stay inside."""

    @staticmethod
    def generate() -> Identity: ...
    @staticmethod
    def from_secret_bytes(secret: bytes) -> Identity: ...
    def secret_bytes(self) -> bytes: ...
    @property
    def signing_public(self) -> bytes: ...
    @property
    def agreement_public(self) -> bytes: ...
    def sign(self, label: str, message: bytes) -> bytes: ...

@final
class PublicKey:
    """A checked Ed25519 public key (`BadKey` for a malformed or weak one)."""

    def __new__(cls, public: bytes) -> PublicKey: ...
    def to_bytes(self) -> bytes: ...
    def verify(self, label: str, message: bytes, signature: bytes) -> None: ...

def verify(public: bytes, label: str, message: bytes, signature: bytes) -> None: ...
def verify_batch(
    items: Sequence[tuple[PublicKey | bytes, str, bytes, bytes]],
) -> list[bool]:
    """One verdict per `(public_key, label, message, signature)`; a malformed key is False."""

def seal_envelope(
    sender: Identity, recipient: bytes, context: str, message_id: bytes, plaintext: bytes
) -> bytes: ...
def open_envelope(
    recipient: Identity, context: str, sealed: bytes, expected_sender: bytes | None = None
) -> tuple[bytes, bytes, bytes]:
    """`(sender_public, message_id, plaintext)`."""

def seal_anonymous(recipient: bytes, context: str, message_id: bytes, plaintext: bytes) -> bytes:
    """No sender, no signature: what is inside must authenticate itself."""

def open_anonymous(recipient: Identity, context: str, sealed: bytes) -> tuple[bytes, bytes]:
    """`(message_id, plaintext)`."""

def frame_count(length: int) -> int: ...
def encode_frames(payload: bytes, message_id: bytes) -> list[bytes]: ...

@final
class Reassembler:
    """Frames back into messages within fixed bounds; `now` is seconds, any monotonic origin."""

    def __new__(
        cls,
        *,
        max_message_bytes: int | None = None,
        max_pending_bytes: int | None = None,
        max_pending_messages: int | None = None,
        max_source_messages: int | None = None,
        max_source_bytes: int | None = None,
        ttl: float | None = None,
        completed_memory: int | None = None,
    ) -> Reassembler: ...
    def push(self, frame: bytes, now: float, source: bytes = ...) -> tuple[bytes, bytes] | None:
        """`(message_id, payload)` when `frame` completes a message, else None; `source`
        (default b"") is whom the frame came from, for fair eviction."""

    def expire(self, now: float) -> None: ...
    @property
    def pending_messages(self) -> int: ...
    @property
    def pending_bytes(self) -> int: ...
    @property
    def evicted(self) -> int: ...

@final
class Account:
    """A device's Olm keys; key ids are integers, keys 32 raw bytes."""

    def __new__(cls) -> Account: ...
    @staticmethod
    def from_pickle(pickle: str, key: bytes) -> Account: ...
    def pickle(self, key: bytes) -> str: ...
    @property
    def curve25519_key(self) -> bytes: ...
    def generate_one_time_keys(self, count: int) -> list[tuple[int, bytes]]: ...
    def one_time_keys(self) -> list[tuple[int, bytes]]: ...
    def generate_fallback_key(self) -> tuple[int, bytes]: ...
    def fallback_key(self) -> tuple[int, bytes] | None: ...
    def mark_keys_as_published(self) -> None: ...
    def outbound(self, identity: bytes, one_time_key: bytes) -> Session: ...
    def inbound(self, identity: bytes, message: bytes) -> tuple[Session, bytes]: ...

@final
class Session:
    """A double-ratchet session with one peer (made by an `Account` or `from_pickle`)."""

    @staticmethod
    def from_pickle(pickle: str, key: bytes) -> Session: ...
    def pickle(self, key: bytes) -> str: ...
    @property
    def id(self) -> str: ...
    def encrypt(self, plaintext: bytes) -> bytes: ...
    def decrypt(self, message: bytes) -> bytes: ...
    def matches(self, message: bytes) -> bool: ...

@final
class MlsMember:
    """A profile's MLS member: an MLS signature key bound to the identity by the
    credential, and the private halves of its key packages until they are used."""

    @staticmethod
    def generate(identity: Identity) -> MlsMember: ...
    @staticmethod
    def from_state(identity: Identity, state: bytes) -> MlsMember:
        """`MlsError` unless `state` is bound to `identity`."""
    def state(self) -> bytes:
        """Signature secret and key package secrets: the caller seals them."""
    def key_packages(self, count: int) -> list[bytes]:
        """`count` (at most 100) key packages, an MLSMessage each."""
    def last_resort_key_package(self) -> bytes: ...
    def create_group(self, group_id: bytes, roster: bytes) -> MlsGroup:
        """Epoch 0, alone, with `roster` (at most 64 KiB) as the roster."""
    def join(self, welcome: bytes) -> MlsGroup:
        """With the roster the Welcome carries; `MlsError` if it is not for us or
        invalid."""
    def load_group(self, state: bytes) -> MlsGroup: ...

def mls_key_package_identity(key_package: bytes) -> bytes:
    """The identity key of a key package, once its credential checks (`MlsError`)."""

@final
class MlsGroup:
    """One group as one member holds it. `MlsError` when MLS refuses an operation."""

    @property
    def group_id(self) -> bytes: ...
    @property
    def epoch(self) -> int: ...
    @property
    def own_index(self) -> int: ...
    @property
    def joined_by(self) -> int | None:
        """Leaf index of the member whose commit welcomed us, on a group `join` made."""
    def members(self) -> list[tuple[int, bytes]]:
        """(leaf index, identity key), by leaf."""
    def roster(self) -> bytes:
        """The roster the last commit (or the Welcome, or `create_group`) set, b"" if
        none; part of `state()`."""
    def access_key(self) -> bytes:
        """exporter("nymchat group access", b"", 32) of this epoch."""
    def state(self) -> bytes:
        """With the prior epochs kept: the caller seals it."""
    def commit(
        self, add: Sequence[bytes], remove: Sequence[int], roster: bytes | None
    ) -> tuple[bytes, bytes | None, bytes]:
        """(commit, Welcome or None, access key of the next epoch): adds, removes, the
        roster if given (at most 64 KiB) and every member's leaving proposed (other
        proposals are left out); with a path (a key update) unless it only adds and sets
        the roster, so `commit([], [], None)` is the key update. Nothing changes until
        `apply_pending()`; `clear_pending()` drops it."""
    def apply_pending(self) -> None: ...
    def clear_pending(self) -> None: ...
    def propose_leave(self) -> bytes:
        """A proposal that removes us, for another member to commit."""
    def pending_proposals(self) -> int:
        """Proposals received and not committed yet: while any is, `encrypt` refuses
        (commit first; a commit also drops those it leaves out)."""
    def encrypt(self, plaintext: bytes) -> bytes: ...
    def process(self, message: bytes) -> Processed:
        """`MlsError` if the message cannot apply."""

@final
class Processed:
    """What processing one group message did."""

    @property
    def kind(self) -> Literal["application", "proposal", "commit"]: ...
    @property
    def epoch(self) -> int:
        """The group's epoch after processing."""
    @property
    def sender(self) -> int: ...
    @property
    def sender_identity(self) -> bytes: ...
    @property
    def plaintext(self) -> bytes: ...
    @property
    def added(self) -> list[tuple[int, bytes]]: ...
    @property
    def removed(self) -> list[tuple[int, bytes]]: ...
    @property
    def removed_me(self) -> bool: ...
    @property
    def roster_changed(self) -> bool: ...

def is_nym_ed25519_key(data: bytes) -> bool: ...
def parse_nym_request_text(
    text: str,
) -> (
    tuple[Literal["send"], str, str, None, int | None]
    | tuple[Literal["sendAnonymous"], str, str, int, int | None]
    | tuple[Literal["reply"], str, str, None, int | None]
    | tuple[Literal["selfAddress"], None, None, None, None]
):
    """`(type, message, recipient or sender tag, reply SURBs, connection id)`."""

def json_loads(data: bytes) -> Any:
    """A JSON value (None, bool, int, float, str, list, dict with str keys): Any, as its
    shape is the caller's to check."""

def self_test() -> bool: ...
