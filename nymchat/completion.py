"""What shell completion asks nymchat while the user types (dist/nymchat.bash, written by
scripts/completion.py, runs `nymchat --complete-contacts`).

Contact names are sealed in the profile's store, and completion must never ask for a
passphrase: the names come from the process that has the profile open (`chat`, `inbox
--follow`) over its control socket, which any process of the same user may use anyway.
When none runs, nothing is completed."""

import argparse
import asyncio

from nymchat.errors import NymchatError

ASK_FOR = 2.0  # seconds: a tab press waits no longer


def print_contact_names(args: argparse.Namespace) -> int:
    """The contacts' names, one a line, or nothing; always exit 0 and silent."""
    from nymchat.client import control
    from nymchat.client.connect import home_of

    try:
        answer = asyncio.run(control.call(home_of(args), "contacts.names", timeout=ASK_FOR))
    except (OSError, TimeoutError, ValueError, NymchatError):
        return 0
    if answer and isinstance(answer.get("result"), dict):
        for name in answer["result"].get("names", []):
            print(name)
    return 0
