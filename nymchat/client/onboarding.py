"""What a first run checks and does, at a terminal (`commands/first_run.py`) or on the page
(`web/setup.py`): a node's contact string, the nym-client's default URL, claiming a name."""

import argparse
from pathlib import Path

from nymchat.client.connect import open_engine
from nymchat.client.profile import Profile
from nymchat.errors import NymchatError
from nymchat.nym.transport import DEFAULT_URL
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode

NAME_REFUSALS = (ErrorCode.NAME_TAKEN, ErrorCode.INVALID_NAME)


def node_contact(answer: str) -> NodeContact:
    """A node's contact string, or the path of a file holding one (its contact.txt)."""
    text = answer
    if not answer.startswith("nymchat-node:"):
        path = Path(answer).expanduser()
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError as e:
            raise NymchatError(
                f"not a contact string, nor a readable file ({answer}: {e.strerror})"
            ) from None
    return NodeContact.parse(text)  # `BadContact` says what is wrong


def default_url(name: str) -> str:
    """A nym-client of the user's own: the real client ignores the path; on `nymchat
    mixnet` it names a virtual client, so two people on one machine do not share one."""
    return f"{DEFAULT_URL}/{name}"


async def register(
    args: argparse.Namespace, profile: Profile, node: NodeContact, username: str
) -> str:
    """Claims `username` at `node` through the nym-client of `args.nym`; returns the name
    as registered (`NodeRefused` with a code of `NAME_REFUSALS`: choose another)."""
    async with open_engine(args, node=str(node), profile=profile) as engine:
        return await engine.register(username)
