"""Who may have what from `nymchat web`, without I/O: the server asks the gate about each
request before it serves a file or opens the websocket.

The printed link carries a one-time token; the page trades it for a session cookie
(HttpOnly, SameSite=Strict), and everything else needs that cookie. The websocket (the
API) needs a second secret too, the session's key: the trade's redirect gives it in the
address's fragment, the page keeps it in its origin's storage and offers it as a websocket
subprotocol. Browsers send a cookie to every port of a host (SameSite ignores ports), so a
program on another port of this machine that the browser visits gets the cookie; it never
gets the key, which stays with this origin. The Host header must
name this server (a DNS-rebinding page names its own host), and the websocket's Origin
must be this server's own page (a page elsewhere cannot ride the cookie into the API)."""

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

# The session cookie's name ends with the port: browsers keep cookies by host, not port,
# so two servers (two profiles) on 127.0.0.1 would otherwise overwrite each other's.
COOKIE = "nymchat_session_{port}"
API_PATH = "/api"
PROTOCOL = "nymchat"  # the websocket subprotocol the page asks for (with `key.KEY`)
KEY_PROTOCOL = "key."
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
TEXT = "text/plain; charset=utf-8"
NEEDS_LINK = "this page needs the link `nymchat web` printed: run it and open that link\n"
NO_KEY = (
    "the API needs the key the link gave this page: open the link `nymchat web` printed "
    "(or reload the tab it opened)\n"
)
SPENT_LINK = (
    "this link was used already, or is not the one `nymchat web` printed: use the tab it "
    "opened, or run `nymchat web` again for a new link\n"
)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class File:
    """A static file as served: its bytes and their `Content-Type` (with a charset)."""

    body: bytes
    content_type: str


def reply(status: int, body: bytes, content_type: str = TEXT, *extra: tuple[str, str]) -> Reply:
    length = ("Content-Length", str(len(body)))
    return Reply(status, (*SECURITY_HEADERS, ("Content-Type", content_type), length, *extra), body)


def _one(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of the header `name` when it is given exactly once, else None."""
    values = [value for key, value in headers if key.lower() == name]
    return values[0] if len(values) == 1 else None


def _tokens(query: str) -> list[str] | None:
    """The tokens a query gives (None: it names none; a query beyond reason gives one
    that is refused)."""
    try:
        return parse_qs(query, keep_blank_values=True, max_num_fields=8).get("token")
    except ValueError:
        return [""]


class Gate:
    """The one-time `token` of the server at `host`:`port`, and the sessions it made."""

    def __init__(self, token: str, host: str, port: int, files: Mapping[str, File]):
        self.token: str | None = token
        self.files = files  # by path: "/" and "/app.js"...
        self.sessions: dict[str, str] = {}  # cookie secret → the session's key
        self.cookie = COOKIE.format(port=port)
        served = f"[{host}]" if ":" in host else host
        self.hosts = {f"{name}:{port}" for name in (served, "127.0.0.1", "localhost", "[::1]")}

    def _session(self, headers: Iterable[tuple[str, str]]) -> str | None:
        """The key of the session whose cookie the request carries, None if none."""
        offered = [
            value.strip()
            for header in (value for key, value in headers if key.lower() == "cookie")
            for name, _, value in (part.partition("=") for part in header.split(";"))
            if name.strip() == self.cookie
        ]
        for value in offered:
            for session, key in self.sessions.items():
                if hmac.compare_digest(value.encode(), session.encode()):
                    return key
        return None

    def _spend(self, given: list[str]) -> Reply:
        if self.token is None or len(given) != 1:
            return reply(403, SPENT_LINK.encode())
        if not hmac.compare_digest(given[0].encode(), self.token.encode()):
            return reply(403, SPENT_LINK.encode())
        self.token = None
        session, key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.sessions[session] = key
        return reply(
            303,
            b"",
            TEXT,
            ("Location", f"/#key={key}"),
            ("Set-Cookie", f"{self.cookie}={session}; HttpOnly; SameSite=Strict; Path=/"),
        )

    def http(self, method: str, path: str, query: str, headers: Iterable[tuple[str, str]]) -> Reply:
        """The reply to a plain HTTP request."""
        headers = list(headers)
        if _one(headers, "host") not in self.hosts:
            return reply(403, b"this server answers only at the address it printed\n")
        if method not in ("GET", "HEAD"):
            return reply(405, b"only GET here\n", TEXT, ("Allow", "GET, HEAD"))
        if path == "/" and (given := _tokens(query)) is not None:
            served = self._spend(given)
        elif self._session(headers) is None:
            served = reply(403, NEEDS_LINK.encode())
        elif (file := self.files.get(path)) is None:
            served = reply(404, b"no such page\n")
        else:
            served = reply(200, file.body, file.content_type)
        return Reply(served.status, served.headers, b"") if method == "HEAD" else served

    def websocket(self, path: str, headers: Iterable[tuple[str, str]]) -> Reply | None:
        """None to open the API's websocket (a GET of `API_PATH`), else the refusal."""
        headers = list(headers)
        if path != API_PATH:
            return reply(404, b"no such page\n")
        if _one(headers, "host") not in self.hosts:
            return reply(403, b"this server answers only at the address it printed\n")
        if (key := self._session(headers)) is None:
            return reply(403, NEEDS_LINK.encode())
        if _one(headers, "origin") not in {f"http://{host}" for host in self.hosts}:
            return reply(403, b"the API answers only this server's own page\n")
        offered = {
            protocol.strip()
            for name, value in headers
            if name.lower() == "sec-websocket-protocol"
            for protocol in value.split(",")
        }
        keys = [p.removeprefix(KEY_PROTOCOL) for p in offered if p.startswith(KEY_PROTOCOL)]
        if PROTOCOL not in offered or not any(
            hmac.compare_digest(given.encode(), key.encode()) for given in keys
        ):
            return reply(403, NO_KEY.encode())
        return None
