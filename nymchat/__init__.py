"""nymchat: a pseudonymous, end-to-end encrypted messenger over the Nym mixnet."""

__version__ = "0.1.0"
