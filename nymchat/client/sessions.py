"""End-to-end sessions (Olm, in the Rust core) with each contact: opening them, sealing
and opening messages, keeping their state in the sealed store. The ratchet state is saved
before anything it produced leaves."""

import time

from nymchat import _native
from nymchat.client import messages
from nymchat.client.messages import now_ms
from nymchat.client.profile import Profile
from nymchat.client.records import Contact, name_of
from nymchat.errors import NymchatError, SessionBroken
from nymchat.protocol import wire

SESSIONS_KEPT = 4  # per contact: late messages of a replaced session still open


def _is_receipt(plaintext: bytes) -> bool:
    try:
        return messages.decode_inner(plaintext).kind == messages.RECEIPT
    except (NymchatError, wire.WireError):
        return False


class Sessions:
    def __init__(self, profile: Profile):
        self.profile, self.store = profile, profile.store

    def has(self, username: str) -> bool:
        return bool(self.store.sessions(username))

    def drop(self, username: str) -> None:
        self.store.drop_sessions(username)

    def open_outbound(self, username: str, account_key: bytes, one_time_key: bytes) -> None:
        """Starts a session from a contact's published keys (within a transaction)."""
        account = self.profile.account()
        self._save(username, account.outbound(account_key, one_time_key))

    def encrypt(
        self,
        username: str,
        kind: int,
        message_id: bytes,
        body: bytes,
        node_key: bytes,
        access_key: bytes,
        certificate: bytes,
        node_contact: str,
    ) -> messages.Sealed:
        """A message to contact `username` (an id), bound to us, their name, our home
        node and its id, with our access key and our node's certificate of our name; a
        session-opening one carries the keys that prove who opens it, and how to reach
        our node (`node_contact`). What the sealed layer then hides from the node
        (`messages.encode_payload`)."""
        me = self.profile.me()
        session = self._load(username)[0]
        inner = messages.Inner(
            kind, me, name_of(username), node_key, message_id, now_ms(), access_key, body
        )
        olm = session.encrypt(messages.encode_inner(inner))
        with self.store.transaction():
            self._save(username, session)
        keys = None
        if olm[0] == 0:
            account = self.profile.account()
            identity = self.profile.identity
            keys = messages.SenderKeys(
                identity.signing_public,
                identity.agreement_public,
                identity.sign("agreement-key", identity.agreement_public),
                account.curve25519_key,
                identity.sign("account-key", account.curve25519_key),
            )
        carried = messages.carried(node_contact) if keys is not None else None
        return messages.Sealed(me, certificate, keys, olm, node_key, carried)

    def decrypt(self, sender: str, contact: Contact, sealed: bytes) -> bytes:
        """Opens a message with the sender's sessions, or a session-opening message with
        our account (its one-time key is then gone for good). Within a transaction."""
        for place, session in enumerate(self._load(sender)):
            if sealed[0] != 0 or session.matches(sealed):
                try:
                    plaintext = session.decrypt(sealed)
                except SessionBroken:
                    continue
                # A late receipt on an older session (from the copy of a profile that was
                # restored elsewhere since) does not make that session ours again; anything
                # else does, so that two sessions opened at once converge on one.
                self._save(sender, session, newest=place == 0 or not _is_receipt(plaintext))
                return plaintext
        if sealed[0] != 0:
            raise SessionBroken(f"no session with {sender} opens this message")
        account = self.profile.account()
        session, opened = account.inbound(contact.new_account_key or contact.account_key, sealed)
        self.profile.save_account(account)
        self._save(sender, session)
        return bytes(opened)

    def _save(self, username: str, session: _native.Session, newest: bool = True) -> None:
        self.store.put_session(
            username,
            session.id,
            session.pickle(self.store.pickle_key),
            time.time_ns() if newest else None,
        )

    def _load(self, username: str) -> list[_native.Session]:
        return [
            _native.Session.from_pickle(p, self.store.pickle_key)
            for p in self.store.sessions(username)[:SESSIONS_KEPT]
        ]
