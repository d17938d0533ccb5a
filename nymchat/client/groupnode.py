"""Group operations at nodes: claiming a member's key package at their home node
(anonymous, with the proof of work it asks) and checking whose it is, and posting to a
group's log at its node (anonymous: the node learns the group, not who posts), with the
work the members a commit adds there need when we hold no access key of theirs."""

import asyncio
import secrets
from typing import Any

from nymchat import _native
from nymchat.client.contactids import ContactIds
from nymchat.client.contacts import requested_by_name
from nymchat.client.nodelink import Link, NodeRefused, Offline
from nymchat.client.relay import Relay
from nymchat.errors import KeyChanged, NymchatError
from nymchat.protocol import pow, wire
from nymchat.protocol.address import Address
from nymchat.protocol.wire import ErrorCode, GroupPost, Kind

WORK_ROUNDS = 2  # proofs of work for the members a commit adds


class GroupNode:
    def __init__(self, contacts: ContactIds, relay: Relay):
        self.contacts = contacts
        self.relay = relay  # its `delay` (`--sealed-delay`) holds group posts too

    def access_key(self, address: Address) -> bytes | None:
        """Theirs, if they gave us one: what lets a welcome to them through without work."""
        contact = self.contacts.at(address)
        return contact.access_key if contact is not None else None

    async def claim(self, address: Address) -> tuple[bytes, bytes]:
        """One of the key packages of the person at `address`, claimed from their home
        node (with the proof of work it asks for), checked: the identity its credential
        binds is the one the node gives, and a contact's pinned one."""
        contact = self.contacts.at(address)
        username = address.name
        shown = self.contacts.nodes.display(address)
        answer = await requested_by_name(
            self.contacts.link_to(address.node, contact),
            Kind.CLAIM_KEY_PACKAGE,
            username,
            "a proof of work to claim a group key",
        )
        if answer.kind is not Kind.KEY_PACKAGE or answer.body["username"] != username:
            raise NymchatError(f"the node answered a claim of {shown}'s group key with none")
        identity, package = answer.body["identity"], answer.body["key_package"]
        if _native.mls_key_package_identity(package) != identity:
            raise KeyChanged(
                f"the node gave a group key for {shown} that {shown}'s identity "
                "did not sign; nobody was added"
            )
        if contact is not None and (contact.identity != identity or contact.changed):
            raise KeyChanged(
                f"the key of {shown} changed: compare safety numbers and "
                f"`nymchat trust {shown} NUMBER` first; nobody was added"
            )
        return identity, package

    async def post(
        self,
        link: Link,
        group: "_native.MlsGroup",
        post: GroupPost,
        message_id: bytes,
        payload: bytes,
        access_key: bytes | None = None,
        next_verifier: bytes | None = None,
        add: list[wire.NewMember] | None = None,
        remove: list[str] | None = None,
        welcome: bytes | None = None,
    ) -> wire.Answer:
        """A group post through `link` (to the group's log node), anonymous; the members
        a commit adds there with the proof of work their policy asks, when the node says
        some is missing."""
        if link.contact is None:
            raise Offline()
        add = add or []
        body: dict[str, Any] = {
            "group_id": group.group_id,
            "epoch": group.epoch,
            "message_id": message_id,
            "post": post,
            "access_key": access_key or group.access_key(),
            "next_verifier": next_verifier,
            "remove": tuple(remove or ()),
            "welcome": welcome,
            "payload": payload,
        }
        if self.relay.delay > 0:  # so that the node cannot match it to our last fetch
            await asyncio.sleep(secrets.SystemRandom().uniform(0, self.relay.delay))
        answer = await link.request(Kind.GROUP_POST, add=tuple(add), **body)
        for _ in range(WORK_ROUNDS):
            if answer.kind is not Kind.POW_REQUIRED:
                break
            node_key, difficulty = link.contact.key, answer.body["difficulty"]
            add = [
                m
                if m.access_key is not None
                else wire.NewMember(
                    m.username,
                    None,
                    await asyncio.to_thread(
                        pow.solve,
                        pow.send(node_key, m.username, message_id),
                        difficulty,
                        f"a proof of work to add {m.username}",
                    ),
                )
                for m in add
            ]
            answer = await link.request(Kind.GROUP_POST, add=tuple(add), **body)
        if answer.kind is not Kind.POSTED:
            raise NodeRefused(ErrorCode.RATE_LIMITED, "the node kept asking for proof of work")
        return answer
