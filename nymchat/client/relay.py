"""Sending an end-to-end message through the node: sealed for the recipient, bound to
both names, the node and its id, and handed over in one `send` request."""

from nymchat.client.nodelink import Link, Offline
from nymchat.client.sessions import Sessions
from nymchat.protocol.wire import Kind


class Relay:
    def __init__(self, link: Link, sessions: Sessions):
        self.link, self.sessions = link, sessions

    def seal(self, username: str, kind: int, message_id: bytes, body: bytes) -> bytes:
        """The payload of a message to `username` (sent directly or through the node)."""
        if self.link.contact is None:
            raise Offline()
        return self.sessions.encrypt(username, kind, message_id, body, self.link.contact.key)

    async def send(self, username: str, kind: int, message_id: bytes, body: bytes) -> None:
        """Has the node accept a message for `username`; `NodeRefused` if it does not."""
        payload = self.seal(username, kind, message_id, body)
        await self.link.request(
            Kind.SEND, recipient=username, message_id=message_id, payload=payload
        )
