"""The ``nymchat`` command line. Imports nothing heavy: each subcommand's module (and
the native core) is imported only when that subcommand runs."""

import argparse
import importlib
import json
import os
import sys

from nymchat.errors import EXIT_STATUS, Cancelled, NymchatError, UsageError

PROG = "nymchat"

COMMAND_ORDER = [
    "node",
    "chat",
    "web",
    "daemon",
    "register",
    "lookup",
    "send",
    "inbox",
    "contacts",
    "nodes",
    "group",
    "outbox",
    "keys",
    "backup",
    "restore",
    "unregister",
    "mixnet",
    "demo",
]


class _Parser(argparse.ArgumentParser):
    """A bad command line is a `UsageError`, told like any other error (in JSON too,
    with --json), after the usage line."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (also for $NYMCHAT_SEALED_DELAY)"
        ) from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(
            "a delay is 0 to 3600 seconds (also $NYMCHAT_SEALED_DELAY)"
        )
    return value


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before or after the command name. Below the top level their
    default is SUPPRESS, so a value given before the command is not reset."""

    def default(value):
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--home",
        metavar="DIR",
        default=default(None),
        help="where nymchat keeps its files (default: $NYMCHAT_HOME, else the "
        "user data directory, e.g. ~/.local/share/nymchat)",
    )
    group.add_argument(
        "--passphrase-file",
        metavar="FILE",
        default=default(None),
        help="read the passphrase from the first line of FILE "
        "(else $NYMCHAT_PASSPHRASE, else a prompt)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more log output (twice for debug); errors show a traceback",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="only errors"
    )
    group.add_argument(
        "--sealed-delay",
        metavar="SECONDS",
        type=_seconds,  # applied to the environment's string default too
        default=default(os.environ.get("NYMCHAT_SEALED_DELAY")),
        help="wait a random time, up to SECONDS, before each sealed send (messages and "
        "receipts), so that the node cannot time them against what you fetch "
        "(else $NYMCHAT_SEALED_DELAY, else 0)",
    )
    group.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=default("text"),
        help="log lines as text or as one JSON object each (default: text)",
    )


def _add_keys(commands) -> None:
    keys = commands.add_parser(
        "keys",
        help="create and show your identity keys",
        description="Create and show your identity keys.",
    )
    _common_options(keys, top=False)
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="create an identity in an encrypted keystore",
        description="Create an identity (Ed25519 signing key and X25519 agreement key) in "
        "an encrypted keystore in --home. The keystore is sealed with a key "
        "derived from your passphrase by Argon2id. An existing identity is "
        "never overwritten.",
    )
    _common_options(new, top=False)
    new.add_argument("--json", action="store_true", help="print the result as JSON")
    new.set_defaults(handler="nymchat.commands.keys:new")
    show = actions.add_parser(
        "show",
        help="print your public keys and fingerprint",
        description="Print the public keys and fingerprint, read from the keystore without "
        "the passphrase; --check unlocks it to prove they are yours.",
    )
    _common_options(show, top=False)
    show.add_argument(
        "--check",
        action="store_true",
        help="unlock the keystore (asks for the passphrase) and check that the "
        "public keys belong to the sealed secret keys",
    )
    show.add_argument("--json", action="store_true", help="print the result as JSON")
    show.set_defaults(handler="nymchat.commands.keys:show")


# Built commands whose options live in their own module (imported here, light by design).
_MODULE_COMMANDS = {
    "chat": (
        "interactive terminal chat",
        "The conversation screen: messages appear above the prompt while you type; "
        "/msg NAME switches conversation, /help lists the commands. The first run "
        "walks you through creating an identity and registering. When stdin is not a "
        "terminal, reads lines and writes events (JSON with --json) for scripts.",
    ),
    "web": (
        "the conversation in a browser, served on this machine only",
        "Serve the conversation as a page on 127.0.0.1 (a free port unless --port) and open "
        "it in the browser: the printed link carries a one-time token the page trades for "
        "a session cookie; without it every request is refused. The page does what the "
        "chat does (the first run included), through the JSON-RPC API on a websocket "
        "(docs/API.md). Only a loopback address is served.",
    ),
    "daemon": (
        "serve the JSON-RPC API for bots and scripts, taking messages in",
        "Run the profile with no screen: take messages in as they come and serve the "
        "JSON-RPC 2.0 API (docs/API.md) on the profile's control socket (mode 0600 in "
        "the home directory), and with --stdio on standard input and output too. "
        "Methods for everything a face does (send, lookup, contacts, groups, history, "
        "direct mode, outbox, inbox, status); after `subscribe`, every event arrives as a "
        "notification. Meanwhile the one-shot commands go through it (no passphrase "
        "asked). A chat serves the same API while it runs.",
    ),
    "demo": (
        "local mixnet, node and two users talking, in one command",
        "Start a local test mixnet and a node, register two people (alice and bob), "
        "have them talk end to end (one message while bob is offline), show what each "
        "part saw, and say how to try it by hand.",
    ),
    "register": (
        "claim a username on a node",
        "Claim a username on a node, publishing your session keys there; the node "
        "is remembered in your profile.",
    ),
    "lookup": (
        "fetch and pin a user's keys",
        "Fetch a user's keys from your node, check them, and pin them on first use; "
        "print their fingerprint and your safety number.",
    ),
    "send": (
        "send one message",
        "Encrypt a message end to end, to a user or to a group ('#NAME'), and relay it "
        "through your node; exit 0 once the node has accepted it.",
    ),
    "contacts": (
        "list, show, verify, trust, remove and block contacts; direct mode; strangers",
        "Your contacts: keys pinned on first use, safety numbers to compare, "
        "trusting a changed key, conversations with delivery marks, blocking; "
        "direct mode (talking without the node) by invitation and consent; what "
        "strangers' messages need (`contacts strangers`). While a "
        "chat or `inbox --follow` runs on the profile, it answers (no passphrase "
        "asked).",
    ),
    "nodes": (
        "the nodes you know by petname: list, add, rename, remove; a node's directory",
        "The nodes you know, each pinned by its key under a petname of yours (like SSH's "
        "known hosts): `name@petname` is a person homed there; your home node is `home`. "
        "A new node is pinned once you confirm its key (--yes for scripts), given its contact "
        "string or found in a node's directory (`nodes directory`, asked anonymously).",
    ),
    "group": (
        "group conversations (MLS): create, add, remove, leave, list, show",
        "Group conversations, end-to-end encrypted with MLS (RFC 9420): `group create "
        "NAME MEMBER...`, then `send '#NAME' TEXT`. Members are checked against the keys "
        "you pinned, like contacts; `group show` gives each one's trust. The node learns "
        "the group's id, its members' queues and sizes, not its name, its members' names "
        "or who sends (docs/SECURITY.md). While a chat or daemon runs on the profile, it "
        "answers (no passphrase asked).",
    ),
    "outbox": (
        "list the messages waiting to be sent; drop one",
        "The messages stored but not yet accepted by the node, with their ids; "
        "`outbox drop ID` takes one out (it is never sent). A message the node "
        "refuses for good (no such user, too large) is not kept waiting: it is "
        "marked FAILED in the conversation.",
    ),
    "unregister": (
        "free your username at the node",
        "Free your username at your node: the node deletes the name, your keys "
        "and your queue, and anyone may register the name next. Your identity, "
        "contacts and history stay in the profile. Asks you to type the "
        "username, unless --yes.",
    ),
    "inbox": (
        "fetch new messages",
        "Fetch what your node holds for you, decrypt it, store it, acknowledge it and print it.",
    ),
    "backup": (
        "write the whole profile to one file sealed under its passphrase",
        "Write the whole profile (identity, contacts with their trust, history, "
        "settings) to FILE, sealed under the profile's passphrase (Argon2id, "
        "XChaCha20-Poly1305); consistent even while a chat runs. FILE is written "
        "atomically, mode 0600, and never replaced without --force.",
    ),
    "restore": (
        "restore a profile from a backup into a new home",
        "Restore a profile from `nymchat backup` into --home, which must hold no "
        "identity (unless --force). The restored profile keeps its identity, username, "
        "contacts and history; each conversation gets a new session at its next "
        "message. Run only one copy of a profile: the node serves the one that spoke "
        "last.",
    ),
    "mixnet": (
        "run a local test mixnet speaking the nym-client API (no anonymity)",
        "Run a local test mixnet: one process hosting many virtual nym-clients, each at "
        "ws://HOST:PORT/NAME, speaking the real nym-client websocket API with sender "
        "tags, SURBs, packet delays and optional faults. It provides NO anonymity: use "
        "it for development, tests and demos only.",
    ),
    "node": (
        "run a discovery node: registry, key directory, relay, offline queue",
        "Run a discovery node: a username registry, key directory, relay and offline "
        "queue reachable only through the mixnet, via its nym-client. The first run "
        "creates the data directory and the node key (sealed with the operator's "
        "password) and writes the contact string users configure to DATA/contact.txt.",
    ),
}


def _add_module_command(commands, name: str) -> None:
    summary, description = _MODULE_COMMANDS[name]
    module = f"nymchat.commands.{name}"
    sub = commands.add_parser(name, help=summary, description=description)
    _common_options(sub, top=False)
    importlib.import_module(module).add_arguments(sub)
    sub.set_defaults(handler=f"{module}:run")


def _adder(name: str):
    return lambda commands: _add_module_command(commands, name)


BUILT = {"keys": _add_keys, **{name: _adder(name) for name in _MODULE_COMMANDS}}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Pseudonymous, end-to-end encrypted messaging over the Nym mixnet.",
        epilog=f"Exit codes: 0 ok, {', '.join(f'{e.exit_code} {e.kind}' for e in EXIT_STATUS)} "
        "(the man page says more). Run `nymchat COMMAND --help` for more.",
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the versions of nymchat, its native core, its "
        "dependencies and Python, once they have all loaded",
    )
    parser.add_argument("--complete-contacts", action="store_true", help=argparse.SUPPRESS)
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_ORDER:
        BUILT[name](commands)
    return parser


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.version:
        from nymchat.version import report

        return report()
    if args.complete_contacts:  # for shell completion (dist/nymchat.bash)
        from nymchat.completion import print_contact_names

        return print_contact_names(args)
    if args.command is None:
        parser.print_help()
        return 2
    from nymchat.logs import setup_logging

    setup_logging(args.verbose, args.quiet, args.log_format)
    module, function = args.handler.split(":")
    from nymchat.stopping import exit_code

    return exit_code(getattr(importlib.import_module(module), function)(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return _run(args, parser)
    except KeyboardInterrupt:
        return _tell(Cancelled("interrupted"), args, argv)
    except Exception as error:
        return _tell(error, args, argv)
    finally:
        sys.stdout.flush()


def _tell(error: Exception, args: argparse.Namespace | None, argv: list[str]) -> int:
    """Says what went wrong in one line on stderr (and, with --json, as `{"error": ...}`
    on stdout); returns the exit status."""
    from nymchat.terminal import line

    verbose = args is not None and args.verbose
    if verbose and not isinstance(error, Cancelled):
        import traceback

        traceback.print_exc()
    if isinstance(error, ImportError):  # this Python may lack a dependency's build
        from nymchat.version import load_all

        try:
            load_all()
        except NymchatError as why:
            error = why
    if isinstance(error, NymchatError):
        print(f"{PROG}: error: {line(str(error))}", file=sys.stderr)
    else:
        print(
            f"{PROG}: internal error: {error.__class__.__name__}: {line(str(error))}"
            f"{'' if verbose else ' (run with -v for details)'}",
            file=sys.stderr,
        )
        error = NymchatError(f"internal error: {error.__class__.__name__}: {error}")
    if getattr(args, "json", False) if args is not None else "--json" in argv:
        print(json.dumps({"error": error.to_json()}))
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
