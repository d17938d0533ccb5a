"""Sending an end-to-end message through the recipient's node (home, or through an
anonymous-only link to theirs): sealed for the recipient (the node
learns neither who sends it nor anything of it but its recipient and size), bound to
both names, the node and its id, and handed over in an anonymous `sealed_send` with the
recipient's access key; or, when we hold none that the node takes, as a stranger's, with
the proof of work the recipient asks for."""

import asyncio
import os
import secrets
from typing import Any

from nymchat.client import messages
from nymchat.client.access import Access
from nymchat.client.certificate import Certificates
from nymchat.client.contacts import Contacts
from nymchat.client.links import Links
from nymchat.client.nodelink import NodeRefused, Offline
from nymchat.client.records import name_of
from nymchat.client.sessions import Sessions
from nymchat.protocol import pow
from nymchat.protocol.wire import ErrorCode, Kind

WORK_ROUNDS = 2  # proofs of work a send makes at most (the recipient may raise the bar)


class Relay:
    def __init__(
        self,
        links: Links,
        sessions: Sessions,
        contacts: Contacts,
        access: Access,
        certificates: Certificates,
    ):
        self.links, self.sessions, self.contacts, self.access = links, sessions, contacts, access
        self.certificates = certificates
        # Seconds: the most a sealed send waits, at random, before it leaves (`--sealed-delay`),
        # so that the node cannot match it to what the sender's account just fetched.
        self.delay = 0.0

    async def seal(self, username: str, kind: int, message_id: bytes, body: bytes) -> bytes:
        """The payload of a message to contact `username` (an id; sent directly or
        through their node): bound to our home node, whose certificate it carries."""
        home = self.links.home.contact
        if home is None:
            raise Offline()
        agreement = await self.contacts.agreement(username)
        certificate = await self.certificates.current()
        sealed = self.sessions.encrypt(
            username,
            kind,
            message_id,
            body,
            home.key,
            self.access.key(),
            certificate,
            str(home),
        )
        return messages.encode_payload(agreement, message_id, sealed)

    async def send(self, username: str, kind: int, message_id: bytes, body: bytes) -> None:
        """Has their node (through our link to it) accept a message for contact
        `username`; `NodeRefused` if it does not (`forbidden`, reworded: they take
        nothing from strangers)."""
        payload = await self.seal(username, kind, message_id, body)
        if self.delay > 0:
            await asyncio.sleep(secrets.SystemRandom().uniform(0, self.delay))
        ids = self.contacts.ids
        contact = ids.get(username)
        link = self.links.home
        if contact is not None:
            link = ids.link_to(ids.node_of(contact), contact)
        name = name_of(username)
        send: dict[str, Any] = {"recipient": name, "message_id": message_id, "payload": payload}
        try:
            answer = await link.request(
                Kind.SEALED_SEND,
                **send,
                access_key=contact.access_key if contact else None,
                proof_of_work=0,
            )
            for _ in range(WORK_ROUNDS):
                if answer.kind is not Kind.POW_REQUIRED or link.contact is None:
                    break
                nonce = await asyncio.to_thread(
                    pow.solve,
                    pow.send(link.contact.key, name, message_id),
                    answer.body["difficulty"],
                    "a proof of work for a message to someone who has not written to you",
                )
                answer = await link.request(
                    Kind.SEALED_SEND, **send, access_key=None, proof_of_work=nonce
                )
        except NodeRefused as e:
            if e.code is not ErrorCode.FORBIDDEN:
                raise
            raise NodeRefused(
                ErrorCode.FORBIDDEN,
                f"{name} takes messages only from people who have written to them",
            ) from None
        if answer.kind is not Kind.ACCEPTED:
            raise NodeRefused(ErrorCode.RATE_LIMITED, "the node kept asking for proof of work")

    async def tell_access(self, username: str) -> None:
        """Gives `username` our current access key (after it was rotated)."""
        await self.send(username, messages.ACCESS, os.urandom(16), self.access.key())
