"""Every error nymchat reports to a user. The CLI prints ``str(error)`` as one line (with
``--json``, also ``{"error": error.to_json()}`` on stdout: ``code``, the class's
``kind``, ``exit`` and ``message``) and exits with ``exit_code``, stable per class:
`EXIT_STATUS` lists them, and the man page is made from it. The Rust core raises the
classes marked (native), bound once when the module loads. Classes defined elsewhere are
marked with their module.

    NymchatError                  1  anything else that went wrong
     ├── UsageError               2  bad command line or request
     │    ├── InvalidName            a username that is not allowed (protocol.names; ValueError)
     │    ├── BadContact             not a node contact string (protocol.contact; ValueError)
     │    ├── InvalidPetname         a node petname not allowed (protocol.address; ValueError)
     │    └── BadCard                not a valid contact card (protocol.card; ValueError)
     ├── PassphraseError          3  no passphrase to be had, or an unusable one
     │    └── WrongPassphrase        wrong passphrase (or the keystore was altered)
     ├── NotFound                 4  no such name, contact, identity or waiting message
     │    ├── NoIdentity
     │    ├── NotRegistered          this profile has no name on a node
     │    │    └── NodeNotRegistered  … the node says so (client.nodelink; a NodeRefused)
     │    ├── NodeNotFound           the node knows no such name (client.nodelink; a NodeRefused)
     │    └── UnknownNode            no node known by that petname (client.nodes)
     ├── KeyChanged               5  a contact's key changed and is not trusted yet
     ├── Unreachable              6  the mixnet, the nym-client or the node does not answer
     │    ├── NymClientUnavailable   no nym-client at the URL (nym.transport)
     │    ├── NymClientFailed        ours cannot be started (nym.supervisor)
     │    └── NodeSilent             the node does not answer (client.nodelink)
     ├── Refused                  7  the node refused a request (carries its code)
     │    ├── NodeRefused            … with its `ErrorCode` (client.nodelink)
     │    ├── TooDifficult           … asking for more proof of work than we do (protocol.pow)
     │    └── MessageFailed          … a message for good: marked failed, never retried
     ├── Busy                     8  another process holds the nym-client or the profile
     │    └── NymClientBusy          the nym-client serves another program (nym.transport)
     ├── Cancelled              130  the user ended a prompt (Ctrl-C, Ctrl-D)
     ├── StoreError                  the node's database failed (node.database)
     │    ├── StoreUnavailable       it cannot be reached
     │    └── StoreConflict          another process's transaction was in the way
     ├── KeystoreError               the identity file is unreadable or damaged
     │    ├── IdentityExists
     │    └── BadBackup              not a nymchat backup, or a damaged one (client.backup)
     ├── TooLong                     a message longer than a node relays
     ├── StillQueued                 queued, not sent yet (exit code of the cause)
     ├── WireError                   not a valid node message (protocol.wire; ValueError)
     ├── AddressError                not a valid Nym address (nym.address; ValueError)
     ├── JsonError                (native) JSON refused by the one reader (also a ValueError)
     └── CryptoError
          ├── BadKey              (native) malformed or weak key
          ├── BadSignature        (native) signature does not verify
          ├── DecryptionFailed    (native) envelope does not open
          │    └── SessionBroken  (native) an end-to-end session cannot go on
          ├── FramingError        (native) malformed or inconsistent frame
          ├── InvalidArgument     (native) argument outside what the core accepts
          └── MlsError            (native) an MLS message, key package or state refused

Messages are explicit strings (``message``), never docstrings, so ``python -OO`` gives
the same errors.
"""

from typing import Any


class NymchatError(Exception):
    exit_code = 1
    kind = "error"  # the stable name of `exit_code`: "code" in `--json` errors
    meaning = "Any other failure."  # what `exit_code` means, for the man page
    message = "something went wrong"
    node_code: str | None = None  # a node's refusal: its code (`ErrorCode`, lower case)

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)

    def to_json(self) -> dict[str, object]:
        """The error as `--json` prints it and the control socket carries it."""
        described: dict[str, object] = {
            "code": self.kind,
            "exit": self.exit_code,
            "message": str(self),
        }
        return described | ({"node_code": self.node_code} if self.node_code else {})


class UsageError(NymchatError):
    exit_code = 2
    kind = "usage"
    meaning = "The command line (or a value in it, such as a username) is not valid."
    message = "the command line is not valid"


class PassphraseError(NymchatError):
    exit_code = 3
    kind = "passphrase"
    meaning = (
        "No passphrase to be had (no terminal, an unreadable file), an unusable new one, or the "
        "wrong one."
    )
    message = "no usable passphrase"


class NotFound(NymchatError):
    exit_code = 4
    kind = "not_found"
    meaning = (
        "No such user on the node, no such contact, no identity or no username in this "
        "profile, no such waiting message, no such group."
    )
    message = "not found"


class KeyChanged(NymchatError):
    exit_code = 5
    kind = "key_changed"
    meaning = (
        "A contact's key changed and is not trusted yet: nothing was sent (compare safety "
        "numbers, then `contacts trust`)."
    )
    message = "a contact's key changed"


class Unreachable(NymchatError):
    exit_code = 6
    kind = "unreachable"
    meaning = "No nym-client at the URL (or ours cannot be started), or the node does not answer."
    message = "the network does not answer"


class Refused(NymchatError):
    exit_code = 7
    kind = "refused"
    meaning = (
        "Refused by the node (with --json, `node_code` is the node's own code), a message "
        "refused for good included."
    )
    message = "the node refused the request"


class Busy(NymchatError):
    exit_code = 8
    kind = "busy"
    meaning = (
        "Another program holds the nym-client, or another nymchat process already serves this "
        "profile (a chat, inbox --follow) or uses this data directory."
    )
    message = "another process holds what this one needs"


class Cancelled(NymchatError):
    exit_code = 130
    kind = "cancelled"
    meaning = (
        "Interrupted by Ctrl-C (SIGINT), or a prompt ended by Ctrl-D, in every command; the "
        "long-running node, mixnet and inbox --follow stop cleanly first. At the interactive "
        "chat prompt Ctrl-C is a key of the chat's own, not an interruption."
    )
    message = "cancelled (end of input at a prompt)"


class KeystoreError(NymchatError):
    message = "the identity keystore cannot be used"


class NoIdentity(NotFound, KeystoreError):
    message = "no identity here yet: create one with `nymchat keys new`"


class IdentityExists(KeystoreError):
    message = "an identity already exists here"


class WrongPassphrase(PassphraseError, KeystoreError):
    message = "wrong passphrase (or the keystore was altered)"


class NotRegistered(NotFound):
    message = (
        "this profile has no username on a node yet: run `nymchat register NAME --node CONTACT`"
    )


class TooLong(NymchatError):
    message = "a message longer than a node relays"


class MessageFailed(Refused):
    """A message that will never be sent: marked failed, with `reason`."""

    def __init__(self, recipient: str, reason: str):
        super().__init__(f"a message to {recipient} failed: {reason}; it will not be sent")
        self.reason = reason


class NotSealable(Refused):
    """A contact whose nymchat predates sealed sending: nothing can be sealed to them."""

    message = "this contact's nymchat must be updated before messages to them can be sealed"


class StillQueued(NymchatError):
    """Queued but not sent yet; it keeps the exit code (and kind) of what stopped it."""

    def __init__(self, message_id: bytes, error: NymchatError):
        super().__init__(
            f"not sent yet: {error}; it waits in your outbox and leaves with "
            "the next nymchat command that connects (`nymchat outbox` lists it)"
        )
        self.message_id, self.exit_code = message_id, error.exit_code
        self.kind, self.node_code = error.kind, error.node_code


class JsonError(NymchatError, ValueError):
    message = "malformed JSON, or JSON beyond the reader's bounds (nesting, number sizes)"


class CryptoError(NymchatError):
    message = "a cryptographic check failed"


class BadKey(CryptoError):
    message = "invalid key"


class BadSignature(CryptoError):
    message = "signature verification failed"


class DecryptionFailed(CryptoError):
    message = "the message could not be decrypted"


class SessionBroken(DecryptionFailed):
    message = "the end-to-end session cannot go on"


class FramingError(CryptoError):
    message = "malformed frame"


class InvalidArgument(CryptoError):
    message = "invalid argument"


class MlsError(CryptoError):
    message = "an MLS group message, key package or state that does not apply"


# The exit status of each kind of error (0 is success): what the man page lists.
EXIT_STATUS = (
    NymchatError,
    UsageError,
    PassphraseError,
    NotFound,
    KeyChanged,
    Unreachable,
    Refused,
    Busy,
    Cancelled,
)
_BY_KIND = {error.kind: error for error in EXIT_STATUS}
_BY_EXIT = {error.exit_code: error for error in EXIT_STATUS}


def from_json(described: dict[str, Any]) -> NymchatError:
    """The error `to_json` described (another process's), as its kind: same message, exit
    status, code and node code (without a code, the kind of its exit status)."""
    exit_code = int(described.get("exit", 1))
    kind = _BY_KIND.get(str(described.get("code"))) or _BY_EXIT.get(exit_code, NymchatError)
    error = kind(str(described.get("message") or NymchatError.message))
    error.exit_code = exit_code
    if isinstance(described.get("node_code"), str):
        error.node_code = described["node_code"]
    return error
