"""Every error nymchat reports to a user. The CLI prints ``str(error)`` as one line (with
``--json``, also ``{"error": {"code": …, "message": …}}`` on stdout) and exits with
``exit_code``, stable per class and listed in the man page. The Rust core raises the
classes marked (native), bound once when the module loads.

    NymchatError                  1  anything else that went wrong
     ├── UsageError               2  bad command line or request
     │    └── InvalidName            a username that is not allowed (also a ValueError)
     ├── PassphraseError          3  no passphrase to be had, or an unusable one
     │    └── WrongPassphrase        wrong passphrase (or the keystore was altered)
     ├── NotFound                 4  no such name, contact, identity or waiting message
     │    ├── NoIdentity
     │    └── NotRegistered          this profile has no name on a node
     ├── KeyChanged               5  a contact's key changed and is not trusted yet
     ├── Unreachable              6  the mixnet, the nym-client or the node does not answer
     ├── Refused                  7  the node refused a request (carries its code)
     │    └── MessageFailed          … a message for good: marked failed, never retried
     ├── Busy                     8  another process holds the nym-client or the profile
     ├── Cancelled              130  the user ended a prompt (Ctrl-C, Ctrl-D)
     ├── KeystoreError               the identity file is unreadable or damaged
     │    └── IdentityExists
     ├── TooLong                     a message longer than a node relays
     ├── StillQueued                 queued, not sent yet (exit code of the cause)
     ├── JsonError                (native) JSON refused by the one reader (also a ValueError)
     └── CryptoError
          ├── BadKey              (native) malformed or weak key
          ├── BadSignature        (native) signature does not verify
          ├── DecryptionFailed    (native) envelope does not open
          │    └── SessionBroken  (native) an end-to-end session cannot go on
          ├── FramingError        (native) malformed or inconsistent frame
          └── InvalidArgument     (native) argument outside what the core accepts

Messages are explicit strings (``message``), never docstrings, so ``python -OO`` gives
the same errors.
"""


class NymchatError(Exception):
    exit_code = 1
    message = "something went wrong"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)


class UsageError(NymchatError):
    exit_code = 2
    message = "the command line is not valid"


class PassphraseError(NymchatError):
    exit_code = 3
    message = "no usable passphrase"


class NotFound(NymchatError):
    exit_code = 4
    message = "not found"


class KeyChanged(NymchatError):
    exit_code = 5
    message = "a contact's key changed"


class Unreachable(NymchatError):
    exit_code = 6
    message = "the network does not answer"


class Refused(NymchatError):
    exit_code = 7
    message = "the node refused the request"


class Busy(NymchatError):
    exit_code = 8
    message = "another process holds what this one needs"


class Cancelled(NymchatError):
    exit_code = 130
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


class StillQueued(NymchatError):
    """Queued but not sent yet; it keeps the exit code of what stopped it."""

    def __init__(self, message_id: bytes, error: NymchatError):
        super().__init__(
            f"not sent yet: {error}; it waits in your outbox and leaves with "
            "the next nymchat command that connects (`nymchat outbox` lists it)"
        )
        self.message_id, self.exit_code = message_id, error.exit_code


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
