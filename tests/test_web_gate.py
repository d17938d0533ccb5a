"""Who may have what from `nymchat web` (nymchat.web.gate), without a server: requests in,
replies out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nymchat.web.gate import SECURITY_HEADERS, File, Gate

TOKEN = "the-token"
HOST = "127.0.0.1:8123"
FILES = {
    "/": File(b"<!doctype html>", "text/html; charset=utf-8"),
    "/index.html": File(b"<!doctype html>", "text/html; charset=utf-8"),
    "/app.js": File(b"'use strict';", "text/javascript; charset=utf-8"),
}


def gate() -> Gate:
    return Gate(TOKEN, "127.0.0.1", 8123, FILES)


def cookie_of(reply) -> str:
    (value,) = [v for k, v in reply.headers if k == "Set-Cookie"]
    return value.split(";")[0]


def signed_in() -> tuple[Gate, str]:
    g, cookie, _ = signed_in_with_key()
    return g, cookie


def signed_in_with_key() -> tuple[Gate, str, str]:
    """A gate, the cookie its link gave and the session's key (the redirect's fragment)."""
    g = gate()
    reply = g.http("GET", "/", f"token={TOKEN}", [("Host", HOST)])
    return g, cookie_of(reply), header(reply, "Location").removeprefix("/#key=")


def offering(key: str) -> tuple[str, str]:
    return ("Sec-WebSocket-Protocol", f"nymchat, key.{key}")


def header(reply, name):
    return dict(reply.headers).get(name)


def test_the_token_is_traded_once_for_an_httponly_strict_cookie_and_a_303_to_the_bare_page():
    g = gate()
    reply = g.http("GET", "/", f"token={TOKEN}", [("Host", HOST)])
    location = header(reply, "Location")
    assert reply.status == 303 and location.startswith("/#key=")  # the key: a fragment
    assert len(location.removeprefix("/#key=")) >= 43
    cookie = header(reply, "Set-Cookie")
    name, _, rest = cookie.partition("=")
    secret, *attributes = rest.split("; ")
    assert name == "nymchat_session_8123" and len(secret) >= 43 and secret != TOKEN
    assert attributes == ["HttpOnly", "SameSite=Strict", "Path=/"]
    again = g.http("GET", "/", f"token={TOKEN}", [("Host", HOST)])
    assert again.status == 403 and b"nymchat web" in again.body
    assert "Set-Cookie" not in dict(again.headers)


@pytest.mark.parametrize(
    "query", ["", "token=wrong", "token=", f"token={TOKEN}x", f"token={TOKEN}&token={TOKEN}"]
)
def test_without_the_right_token_or_a_cookie_the_page_is_refused(query):
    g = gate()
    reply = g.http("GET", "/", query, [("Host", HOST)])
    assert reply.status == 403 and reply.body.startswith(b"this ")
    assert g.token == TOKEN  # not spent by a wrong one
    assert g.http("GET", "/", f"token={TOKEN}", [("Host", HOST)]).status == 303


def test_a_session_cookie_gets_the_files_with_their_types_and_nothing_else():
    g, cookie = signed_in()
    with_cookie = [("Host", HOST), ("Cookie", f"other=1; {cookie}")]
    page = g.http("GET", "/", "", with_cookie)
    assert (page.status, page.body) == (200, b"<!doctype html>")
    assert header(page, "Content-Type") == "text/html; charset=utf-8"
    script = g.http("GET", "/app.js", "", with_cookie)
    assert header(script, "Content-Type") == "text/javascript; charset=utf-8"
    assert g.http("GET", "/../gate.py", "", with_cookie).status == 404
    assert g.http("GET", "/app.js", "", [("Host", HOST)]).status == 403
    forged = [("Host", HOST), ("Cookie", "nymchat_session_8123=guess")]
    assert g.http("GET", "/app.js", "", forged).status == 403


def test_two_servers_in_one_browser_keep_their_own_cookies():
    """Browsers keep cookies by host, not port: both come to each server."""
    first, second = gate(), Gate(TOKEN, "127.0.0.1", 8124, FILES)
    first_cookie = cookie_of(first.http("GET", "/", f"token={TOKEN}", [("Host", HOST)]))
    second_cookie = cookie_of(
        second.http("GET", "/", f"token={TOKEN}", [("Host", "127.0.0.1:8124")])
    )
    assert first_cookie.split("=")[0] != second_cookie.split("=")[0]
    both = f"{first_cookie}; {second_cookie}"
    assert first.http("GET", "/", "", [("Host", HOST), ("Cookie", both)]).status == 200
    theirs = [("Host", HOST), ("Cookie", second_cookie.replace("8124", "8123"))]
    assert first.http("GET", "/", "", theirs).status == 403


def test_head_says_the_length_without_the_body():
    g, cookie = signed_in()
    reply = g.http("HEAD", "/app.js", "", [("Host", HOST), ("Cookie", cookie)])
    assert (reply.status, reply.body) == (200, b"")
    assert header(reply, "Content-Length") == str(len(FILES["/app.js"].body))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_only_get_and_head_are_answered(method):
    g, cookie = signed_in()
    reply = g.http(method, "/", "", [("Host", HOST), ("Cookie", cookie)])
    assert reply.status == 405 and header(reply, "Allow") == "GET, HEAD"


@pytest.mark.parametrize(
    "hosts",
    [
        [],
        [("Host", "evil.example:8123")],  # DNS rebinding: the attacker's name, our address
        [("Host", "127.0.0.1:8124")],
        [("Host", "127.0.0.1")],
        [("Host", "0.0.0.0:8123")],
        [("Host", HOST), ("Host", "evil.example:8123")],
    ],
)
def test_a_host_header_other_than_this_servers_is_refused_even_with_the_token(hosts):
    g = gate()
    assert g.http("GET", "/", f"token={TOKEN}", hosts).status == 403
    assert g.token == TOKEN
    g2, cookie, key = signed_in_with_key()
    assert g2.websocket(
        "/api", [*hosts, ("Cookie", cookie), ("Origin", "http://" + HOST), offering(key)]
    )


@pytest.mark.parametrize("host", ["127.0.0.1:8123", "localhost:8123", "[::1]:8123"])
def test_each_loopback_form_of_the_served_address_is_accepted(host):
    g = gate()
    assert g.http("GET", "/", f"token={TOKEN}", [("Host", host)]).status == 303


def test_a_server_on_another_loopback_address_is_reached_by_that_address_too():
    g = Gate(TOKEN, "127.0.0.2", 8123, FILES)
    assert g.http("GET", "/", f"token={TOKEN}", [("Host", "127.0.0.2:8123")]).status == 303


def test_the_websocket_needs_the_cookie_and_this_servers_origin():
    g, cookie, key = signed_in_with_key()
    good = [("Host", HOST), ("Cookie", cookie), ("Origin", "http://" + HOST), offering(key)]
    assert g.websocket("/api", good) is None
    no_cookie = [("Host", HOST), ("Origin", "http://" + HOST), offering(key)]
    assert g.websocket("/api", no_cookie).status == 403
    for origin in [
        [],
        [("Origin", "http://evil.example")],
        [("Origin", "http://127.0.0.1:8124")],
        [("Origin", "https://127.0.0.1:8123")],
        [("Origin", "null")],
        [("Origin", "http://" + HOST), ("Origin", "http://evil.example")],
    ]:
        reply = g.websocket("/api", [("Host", HOST), ("Cookie", cookie), offering(key), *origin])
        assert reply is not None and reply.status == 403, origin
    assert g.websocket("/other", good).status == 404


def test_the_cookie_without_the_sessions_key_does_not_open_the_websocket():
    """A program on another port of this machine gets the cookie from the browser (SameSite
    ignores ports), never the key, which the page keeps in its own origin's storage."""
    g, cookie, key = signed_in_with_key()
    _, _, other_key = signed_in_with_key()  # another server's session
    base = [("Host", HOST), ("Cookie", cookie), ("Origin", "http://" + HOST)]
    for protocols in [
        [],
        [("Sec-WebSocket-Protocol", "nymchat")],
        [("Sec-WebSocket-Protocol", f"key.{key}")],  # not the API's protocol
        [offering(other_key)],
        [offering(key[:-1])],
        [("Sec-WebSocket-Protocol", f"nymchat, key.{key}x")],
    ]:
        reply = g.websocket("/api", [*base, *protocols])
        assert reply is not None and reply.status == 403 and b"key" in reply.body, protocols
    assert (
        g.websocket(
            "/api",
            [
                *base,
                ("Sec-WebSocket-Protocol", "nymchat"),
                ("Sec-WebSocket-Protocol", f"key.{key}"),
            ],
        )
        is None
    )


def test_every_reply_carries_the_security_headers_and_a_charset():
    g, cookie = signed_in()
    replies = [
        gate().http("GET", "/", f"token={TOKEN}", [("Host", HOST)]),
        g.http("GET", "/", "", [("Host", HOST), ("Cookie", cookie)]),
        g.http("GET", "/", "", [("Host", HOST)]),
        g.http("GET", "/nothing", "", [("Host", HOST), ("Cookie", cookie)]),
        g.http("POST", "/", "", [("Host", HOST)]),
        g.http("GET", "/", "", [("Host", "evil.example:8123")]),
        g.websocket("/api", [("Host", HOST)]),
    ]
    csp = dict(SECURITY_HEADERS)["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp and "eval" not in csp
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    for reply in replies:
        for name, value in SECURITY_HEADERS:
            assert header(reply, name) == value
        assert "charset=utf-8" in header(reply, "Content-Type")


@given(
    st.text(max_size=200),
    st.lists(st.tuples(st.sampled_from(["Host", "Cookie", "Origin", "X"]), st.text(max_size=80))),
)
def test_no_request_is_let_in_without_the_token_or_the_cookie_and_none_raises(query, headers):
    g = gate()
    g.sessions["the-session"] = "the-key"  # a session exists: only its cookie gets in
    reply = g.http("GET", "/", query.replace(TOKEN, ""), [("Host", HOST), *headers])
    assert reply.status in (403, 200)
    assert reply.status == 403 or any("the-session" in v for k, v in headers if k == "Cookie")
    opened = g.websocket("/api", headers) is None
    assert not opened or any("the-session" in v for k, v in headers if k == "Cookie")
