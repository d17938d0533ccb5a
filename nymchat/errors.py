"""Every error nymchat reports to a user. The CLI prints ``str(error)`` as one line and
exits with ``exit_code``; the Rust core raises the classes marked (native) by name.

    NymchatError
     ├── UsageError               bad command line (exit 2)
     │    └── InvalidName         a username that is not allowed (nymchat.protocol.names)
     ├── Cancelled                the user ended a prompt (Ctrl-D)
     ├── PassphraseError          no passphrase to be had, or an unusable one
     ├── KeystoreError            the identity file is missing, unreadable or damaged
     │    ├── NoIdentity
     │    ├── IdentityExists
     │    └── WrongPassphrase
     ├── JsonError                (native) JSON refused by the one reader (also a ValueError)
     └── CryptoError
          ├── BadKey              (native) malformed or weak key
          ├── BadSignature        (native) signature does not verify
          ├── DecryptionFailed    (native) envelope does not open
          ├── FramingError        (native) malformed or inconsistent frame
          └── InvalidArgument     (native) argument outside what the core accepts
"""


class NymchatError(Exception):
    """Something went wrong."""

    exit_code = 1

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class UsageError(NymchatError):
    """The command line is not valid."""

    exit_code = 2


class Cancelled(NymchatError):
    """cancelled (end of input at a prompt)"""


class PassphraseError(NymchatError):
    """No usable passphrase."""


class KeystoreError(NymchatError):
    """The identity keystore cannot be used."""


class NoIdentity(KeystoreError):
    """No identity here yet: create one with `nymchat keys new`."""


class IdentityExists(KeystoreError):
    """An identity already exists here."""


class WrongPassphrase(KeystoreError):
    """Wrong passphrase (or the keystore was altered)."""


class JsonError(NymchatError, ValueError):
    """Malformed JSON, or JSON beyond the reader's bounds (nesting, number sizes)."""


class CryptoError(NymchatError):
    """A cryptographic check failed."""


class BadKey(CryptoError):
    """Invalid key."""


class BadSignature(CryptoError):
    """Signature verification failed."""


class DecryptionFailed(CryptoError):
    """The message could not be decrypted."""


class FramingError(CryptoError):
    """Malformed frame."""


class InvalidArgument(CryptoError):
    """Invalid argument."""
