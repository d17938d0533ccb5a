"""The node's settings, in one table: each is a command-line flag, an environment
variable `NYMCHAT_NODE_<NAME>` and a key of the optional TOML file, in that order of
precedence over the default. Light to import: the command line is built from it."""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "NYMCHAT_NODE_"
PASSWORD_ENV = "NYMCHAT_NODE_PASSWORD"


@dataclass(frozen=True)
class Setting:
    name: str
    type: Any
    default: Any
    help: str
    metavar: str | None = None
    many: bool = False  # repeatable flag, TOML string or list, env separated by commas


SETTINGS = [
    Setting(
        "nym",
        str,
        ["ws://127.0.0.1:1977"],
        "websocket URL of a nym-client of the node (a frontend); repeat for several",
        "URL",
        many=True,
    ),
    Setting("data", str, None, "data directory (default: HOME/node)", "DIR"),
    Setting(
        "password_file",
        str,
        None,
        f"file holding the password that protects the node key (else ${PASSWORD_ENV})",
        "FILE",
    ),
    Setting(
        "key_file",
        str,
        None,
        "the node key's file (default DATA/identity.json, made at the first start); the"
        " processes of one node share it, and only read it",
        "PATH",
    ),
    Setting(
        "pow_difficulty",
        int,
        12,
        "registration proof of work, in bits (0: off); rises with the registration rate, up to 24",
        "BITS",
    ),
    Setting(
        "directory",
        str,
        None,
        "serve this file's list of other nodes, `petname contact-string` a line, to clients"
        " (signed; read at start)",
        "FILE",
    ),
    Setting("freshness", int, 120, "seconds a request's timestamp may be off", "SEC"),
    Setting("retention_days", int, 14, "days a queued message is kept", "DAYS"),
    Setting("queue_max_messages", int, 1000, "messages queued per recipient", "N"),
    Setting("queue_max_bytes", int, 16 << 20, "bytes queued per recipient", "BYTES"),
    Setting(
        "queue_stranger_share",
        float,
        0.5,
        "share of a recipient's queue the senders without their access key may fill together",
        "FRACTION",
    ),
    Setting("node_queue_max_bytes", int, 4 << 30, "bytes queued on the whole node", "BYTES"),
    Setting("max_payload", int, 64 << 10, "largest message relayed", "BYTES"),
    Setting("requests_per_s", float, 20.0, "requests per second per identity and per route", "N"),
    Setting("request_burst", float, 200.0, "requests allowed in a burst", "N"),
    Setting("lookups_per_min", float, 30.0, "anonymous lookups per minute per route", "N"),
    Setting("sealed_sends_per_min", float, 600.0, "sealed sends per minute per route", "N"),
    Setting(
        "store",
        str,
        None,
        "the node's database: a file path (SQLite, the default DATA/node.db) or postgresql://…"
        " (several node processes may share one)",
        "PATH|URL",
    ),
    Setting(
        "metrics",
        str,
        None,
        "serve Prometheus metrics, /health and /ready on this loopback address",
        "HOST:PORT",
    ),
    Setting(
        "metrics_public",
        bool,
        False,
        "let --metrics listen beyond loopback, e.g. 0.0.0.0:9100 for a container's scraper"
        " (the page shows counts an observer should not see: keep it on a private network)",
    ),
    Setting(
        "nym_client_bin",
        str,
        None,
        "start and supervise this nym-client binary (with --nym-id)",
        "PATH",
    ),
    Setting("nym_id", str, None, "the supervised nym-client's --id", "ID"),
    Setting(
        "frontends",
        int,
        None,
        "nym-clients the node answers on: with --nym-client-bin, N supervised ones (default 2)"
        ", the --nym URL's port and the next ones; else one per --nym",
        "N",
    ),
    Setting(
        "first_frontend",
        int,
        1,
        "the id of this process's first frontend, the next ones follow; node processes on"
        " one database take ids apart (two frontends each: 1 and 3)",
        "N",
    ),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings (default: DATA/node.toml if present)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings and where each came from, then exit",
    )
    for s in SETTINGS:
        flag, env = f"--{s.name.replace('_', '-')}", f"[env {ENV_PREFIX}{s.name.upper()}]"
        if s.type is bool:  # a switch, off by default
            parser.add_argument(
                flag,
                dest=f"node_{s.name}",
                action="store_true",
                default=None,
                help=f"{s.help} {env}",
            )
            continue
        parser.add_argument(
            flag,
            dest=f"node_{s.name}",
            type=s.type,
            metavar=s.metavar,
            default=None,
            action="append" if s.many else "store",
            help=f"{s.help} {env}"
            + (f" (default {_shown(s.default)})" if s.default is not None else ""),
        )


def without_password(store: str) -> str:
    """The `store` setting as it may be shown: a URL's password (in its user part or its
    query) as `***`."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(store)
    if parts.scheme not in ("postgresql", "postgres"):
        return store
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        shown = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(shown, safe="*"))
    return parts.geturl()


SWITCH = dict.fromkeys(("1", "true", "yes", "on"), True) | dict.fromkeys(
    ("0", "false", "no", "off"), False
)


def _parsed(setting: Setting, text: str) -> Any:
    """An environment variable's value; `ValueError` if it is not one."""
    if setting.many:
        return [setting.type(v.strip()) for v in text.split(",")]
    if setting.type is bool:
        try:
            return SWITCH[text.strip().lower()]
        except KeyError:
            raise ValueError(text) from None
    return setting.type(text)


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


class SettingsError(ValueError):
    """A setting that cannot be used."""


def resolve(args: argparse.Namespace, home: Path) -> tuple[dict, dict]:
    """The effective settings, and for each where it came from."""
    import tomllib

    values = {s.name: s.default for s in SETTINGS}
    origin = dict.fromkeys(values, "default")
    env = {s.name: os.environ.get(ENV_PREFIX + s.name.upper()) for s in SETTINGS}
    data = Path(args.node_data or env["data"] or home / "node").expanduser()
    config = Path(args.config).expanduser() if args.config else data / "node.toml"
    if args.config or config.exists():
        try:
            table = tomllib.loads(config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(f"cannot read {config}: {e}") from None
        known = {s.name: s for s in SETTINGS}
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in known:
                raise SettingsError(f"{config}: unknown setting '{key}'")
            setting = known[name]
            if setting.type is float and isinstance(value, int):
                value = float(value)
            if setting.many and isinstance(value, setting.type):
                value = [value]
            if setting.many and not (
                isinstance(value, list) and all(isinstance(v, setting.type) for v in value)
            ):
                raise SettingsError(
                    f"{config}: '{key}' must be a {setting.type.__name__}"
                    f" or a list of {setting.type.__name__}"
                )
            if not setting.many and not isinstance(value, setting.type):
                raise SettingsError(f"{config}: '{key}' must be a {setting.type.__name__}")
            values[name], origin[name] = value, str(config)
        if args.config and not (args.node_data or env["data"]) and values["data"]:
            data = Path(values["data"]).expanduser()  # as `--print-config` wrote it
    for s in SETTINGS:
        if (text := env[s.name]) is not None:
            try:
                values[s.name] = _parsed(s, text)
            except ValueError:
                raise SettingsError(
                    f"{ENV_PREFIX}{s.name.upper()} must be a {s.type.__name__}"
                ) from None
            origin[s.name] = "environment"
        flag = getattr(args, f"node_{s.name}")
        if flag is not None:
            values[s.name], origin[s.name] = flag, "command line"
    values["data"] = str(data)
    return values, origin


MAX_FRONTENDS = 16
MAX_FRONTEND_ID = 0xFFFF  # a route's first two bytes
DEFAULT_FRONTENDS = 2  # with a supervised nym-client: sealed sending works out of the box
DEFAULT_PORT = 1977  # the nym-client's own


@dataclass(frozen=True)
class FrontendPlan:
    id: int  # first_frontend, the next, ...: the slot, in the contact string's order
    url: str
    port: int  # the URL's
    nym_id: str | None  # the supervised nym-client's --id, None if the operator runs it


def frontends(values: dict) -> list[FrontendPlan]:
    """The nym-clients the node answers on, from the effective settings; `SettingsError`
    for a combination that cannot work."""
    from urllib.parse import urlsplit, urlunsplit

    urls, count = values["nym"], values["frontends"]
    if len(set(urls)) != len(urls):
        raise SettingsError("--nym names a URL twice: each frontend needs a nym-client of its own")
    for url in urls:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise SettingsError(f"--nym {url}: the port is not valid") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise SettingsError(f"--nym {url}: give a websocket URL, e.g. ws://127.0.0.1:1977")
    if count is not None and not 1 <= count <= MAX_FRONTENDS:
        raise SettingsError(f"--frontends must be 1 to {MAX_FRONTENDS}")
    first = values["first_frontend"]
    last = first + (len(urls) if count is None else count) - 1
    if not 1 <= first <= last <= MAX_FRONTEND_ID:
        raise SettingsError(f"--first-frontend: frontend ids are 1 to {MAX_FRONTEND_ID}")
    binary, nym_id = values["nym_client_bin"], values["nym_id"]
    if not binary:
        if count is not None and count != len(urls):
            raise SettingsError(
                f"--frontends {count} but {len(urls)} --nym URL(s): without --nym-client-bin "
                "the node answers on one nym-client per --nym"
            )
        return [
            FrontendPlan(first + n, url, urlsplit(url).port or DEFAULT_PORT, None)
            for n, url in enumerate(urls)
        ]
    if len(urls) != 1:
        raise SettingsError(
            "with --nym-client-bin give one --nym URL: frontend k listens on its port + k - 1"
        )
    count = DEFAULT_FRONTENDS if count is None else count
    parts = urlsplit(urls[0])
    port = parts.port or DEFAULT_PORT
    if port + count - 1 > 65535:
        raise SettingsError(f"--nym {urls[0]}: no room for {count} ports from {port}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    # the process's k-th nym-client: its port and --id are this process's own, whatever
    # frontend id it serves as
    return [
        FrontendPlan(
            first + k - 1,
            urlunsplit(parts._replace(netloc=f"{host}:{port + k - 1}")),
            port + k - 1,
            nym_id if k == 1 else f"{nym_id}-{k}",
        )
        for k in range(1, count + 1)
    ]
