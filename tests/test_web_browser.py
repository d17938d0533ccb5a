"""`nymchat web` in a real browser: Debian's headless chromium, driven over the DevTools
protocol (tests/browser.py), on real processes (dist/nymchat mixnet, node, and a
`nymchat web --no-browser` for each person). The page is driven only through its
`data-test` hooks (listed at the top of nymchat/web/static/app.js).

The screenshots of the main screens are taken on every run (into the test's directory);
`NYMCHAT_SCREENSHOTS=docs/screenshots` writes them where the README shows them from."""

import http.server
import json
import os
import struct
import threading
from pathlib import Path

import pytest
from browser import CHROMIUM_ENV, REBOUND, Page, chromium_path
from procs import PASSPHRASE, User, WebProcess
from test_threats import substitute

pytestmark = pytest.mark.cli

STATIC = {
    "/": (
        "text/html",
        b"""<!doctype html><html><head><title>probe</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/probe.js"></script></head><body>
<button data-test="press" id="press">press</button><p data-test="said"></p>
<textarea data-test="field"></textarea><button data-test="alert">alert</button>
<script>document.title = "inline ran";</script></body></html>""",
    ),
    "/probe.js": (
        "text/javascript",
        b"""addEventListener("DOMContentLoaded", () => {
  const said = document.querySelector("[data-test=said]");
  document.querySelector("[data-test=press]").addEventListener("click", () => {
    said.textContent = "pressed";
  });
  document.querySelector("[data-test=field]").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      said.textContent = "sent: " + e.target.value;
    }
  });
  document.querySelector("[data-test=alert]").addEventListener("click", () => alert(1));
});""",
    ),
}


@pytest.fixture
def probe_site():
    """A tiny static site on loopback with a strict Content-Security-Policy, to prove the
    DevTools client on its own."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            kind, body = STATIC.get(self.path, ("text/plain", b"no such page"))
            self.send_response(200 if self.path in STATIC else 404)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            if self.path in STATIC:  # elsewhere: a page with no policy, as another site's
                self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'self'")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_devtools_client_drives_a_page_and_sees_what_went_wrong(browser, probe_site, tmp_path):
    page = browser.page()
    page.navigate(probe_site + "/")
    assert page.documents == [(probe_site + "/", 200)]
    # The inline script was refused by the policy, and the client saw the refusal.
    assert page.evaluate("document.title") == "probe"
    assert any("Content Security Policy" in p for p in page.problems), page.problems
    page.click("[data-test=press]")
    page.wait_for("document.querySelector('[data-test=said]').textContent === 'pressed'")
    page.type("[data-test=field]", "two")
    page.press("Enter", shift=True)
    page.type("[data-test=field]", "lines")
    page.press("Enter")
    assert page.evaluate("document.querySelector('[data-test=said]').textContent") == (
        "sent: two\nlines"
    )
    assert page.dialogs == []
    page.click("[data-test=alert]")
    assert page.evaluate("1 + 1") == 2  # the dialog was dismissed: the page runs on
    assert [d["type"] for d in page.dialogs] == ["alert"]
    shot = page.screenshot(tmp_path / "probe.png", 390, 844)
    assert png_size(shot) == (390, 844)
    assert page.evaluate("innerWidth") == 390
    page.navigate(probe_site + "/nothing")
    assert page.documents[-1] == (probe_site + "/nothing", 404)
    # A second page has cookies of its own.
    page.evaluate("document.cookie = 'who=first'")
    other = browser.page()
    other.navigate(probe_site + "/")
    assert other.evaluate("document.cookie") == ""


def test_a_missing_chromium_fails_with_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    with pytest.raises(AssertionError, match="the browser tests need Debian's chromium"):
        chromium_path()


# --- nymchat web on real processes ----------------------------------------------------

WIDE, NARROW = (1280, 800), (390, 844)


@pytest.fixture
def start_web():
    """Starts `nymchat web --no-browser` for a person (unlocked with the passphrase when
    given); stops every one after the test (exit status 0)."""
    started: list[WebProcess] = []

    def start(user: User, passphrase: str | None = PASSPHRASE, **env: str) -> WebProcess:
        if passphrase:
            env["NYMCHAT_PASSPHRASE"] = passphrase
        started.append(WebProcess(user.home, user.shiv_root, **env))
        return started[-1]

    yield start
    for web in started:
        assert web.stop() == 0, web.log.read_text()


@pytest.fixture
def shoot(tmp_path):
    """Takes a screenshot of a page at a size, named for its screen."""
    directory = Path(os.environ.get("NYMCHAT_SCREENSHOTS") or tmp_path / "screenshots")

    def shoot(page: Page, screen: str, size: tuple[int, int]) -> None:
        width, height = size
        shot = page.screenshot(directory / f"{screen}-{width}x{height}.png", width, height)
        assert png_size(shot) == size

    return shoot


def hooked(hook: str, /, **data: str) -> str:
    """The CSS selector of the page's `data-test` hook (with these data- values)."""
    more = "".join(f'[data-{k}="{v}"]' for k, v in data.items())
    return f'[data-test="{hook}"]{more}'


def shown(selector: str) -> str:
    """JavaScript: is the element laid out and visible?"""
    return f"!!document.querySelector({json.dumps(selector)})?.checkVisibility()"


def text_of(name: str) -> str:
    """JavaScript: the text in the hook `name` ('' when there is none)."""
    return f"(document.querySelector('{hooked(name)}')?.textContent ?? '')"


def message(text: str, direction: str) -> str:
    """JavaScript: the status of the message row (in or out) that shows exactly `text`, if
    there is one."""
    return f"""[...document.querySelectorAll('{hooked("message")}')].find(row =>
        row.dataset.direction === {json.dumps(direction)} &&
        row.querySelector('{hooked("message-text")}').textContent === {json.dumps(text)}
    )?.dataset.status"""


def signed_in(browser, web: WebProcess) -> Page:
    """A new page on a wide screen that follows the printed link to the main screen."""
    page = browser.page()
    page.viewport(*WIDE)
    page.navigate(web.url)
    page.wait_for(shown(hooked("main")), 30)
    assert page.evaluate("location.href") == web.origin + "/"  # the token left the bar
    return page


def talk_to(page: Page, name: str) -> None:
    """Starts (or opens) the conversation with `name` from the "new conversation" box."""
    page.type(hooked("new-conversation"), name)
    page.press("Enter")
    page.wait_for(f"{text_of('conversation-title')} === {json.dumps(name)}", 30)  # a lookup


def say(page: Page, text: str) -> None:
    page.type(hooked("composer"), text)
    page.press("Enter")


def clean(*pages: Page) -> None:
    """Nothing went wrong in the pages: no dialog, console error, CSP violation, exception."""
    for page in pages:
        assert page.dialogs == [] and page.problems == [], (page.dialogs, page.problems)


@pytest.fixture
def pair(net, shiv_root, tmp_path):
    mixnet, node = net
    users = [User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob")]
    for user in users:
        user.register()
    return users


def test_two_people_chat_through_two_pages_with_receipts(pair, start_web, browser, shoot):
    alice, bob = (signed_in(browser, start_web(user)) for user in pair)
    # Notifications are offered, not asked for: nothing asked the browser yet.
    assert alice.evaluate("Notification.permission") == "default"
    assert alice.evaluate(shown(hooked("notify")))
    talk_to(alice, "bob")
    assert alice.evaluate("document.activeElement.dataset.test") == "composer"
    say(alice, "hello bob")
    assert alice.wait_for(message("hello bob", "out")) in ("queued", "accepted", "delivered")
    alice.wait_for(f"{message('hello bob', 'out')} === 'delivered'", 30)  # bob's receipt
    assert "delivered" in alice.text(hooked("message-status"))
    # bob sees a new conversation with one unread message, and the message in it.
    bob.wait_for(shown(hooked("conversation", id="alice")), 30)
    bob.wait_for(
        f"document.querySelector('{hooked('conversation', id='alice')} "
        f"{hooked('unread')}')?.textContent === '1'"
    )
    bob.click(hooked("conversation", id="alice"))
    assert bob.wait_for(message("hello bob", "in")) == "received"
    assert bob.count(hooked("unread")) == 0
    say(bob, "hello alice")
    alice.wait_for(message("hello alice", "in"), 30)
    bob.wait_for(f"{message('hello alice', 'out')} === 'delivered'", 30)
    shoot(bob, "conversation", WIDE)
    clean(alice, bob)


def test_markup_in_a_message_shows_as_text_and_runs_nothing(pair, start_web, browser):
    alice, bob = (signed_in(browser, start_web(user)) for user in pair)
    markup = "<img src=x onerror=alert(1)><script>alert(2)</script><b>bold</b>"
    talk_to(alice, "bob")
    say(alice, markup)
    bob.click(hooked("conversation", id="alice"), 30)
    assert bob.wait_for(message(markup, "in")) == "received"
    assert alice.wait_for(message(markup, "out"))
    for page in (alice, bob):
        assert page.count(f"{hooked('messages')} :is(img, script, b)") == 0
        assert page.count('img[src="x"]') == 0
    clean(alice, bob)


def test_a_reload_keeps_the_conversation(pair, start_web, browser):
    alice_web = start_web(pair[0])
    alice, bob = signed_in(browser, alice_web), signed_in(browser, start_web(pair[1]))
    talk_to(alice, "bob")
    say(alice, "before the reload")
    alice.wait_for(f"{message('before the reload', 'out')} === 'delivered'", 30)
    alice.reload()
    alice.wait_for(shown(hooked("main")), 30)
    assert alice.evaluate("location.href") == alice_web.origin + "/"  # still signed in
    # The open conversation comes back, its history from the engine, statuses and all.
    alice.wait_for(f"{message('before the reload', 'out')} === 'delivered'")
    assert alice.text(hooked("conversation-title")) == "bob"
    # And it goes on: bob's answer arrives in the reloaded page.
    bob.click(hooked("conversation", id="alice"), 30)
    say(bob, "after the reload")
    alice.wait_for(message("after the reload", "in"), 30)
    clean(alice, bob)


def test_a_narrow_screen_goes_list_conversation_details_and_back_by_keyboard(
    pair, start_web, browser, shoot
):
    alice, bob = (signed_in(browser, start_web(user)) for user in pair)
    talk_to(alice, "bob")
    say(alice, "hello from a phone")
    alice.wait_for(f"{message('hello from a phone', 'out')} === 'delivered'", 30)
    alice.viewport(*NARROW)
    # One column at a time: the conversation, then its details, then back with Escape.
    assert alice.evaluate(shown(hooked("composer")))
    assert not alice.evaluate(shown(hooked("conversations")))
    shoot(alice, "conversation", NARROW)
    alice.click(hooked("details-open"))
    number = alice.wait_for(text_of("safety-number"))
    assert len(number.split()) >= 4 and not alice.evaluate(shown(hooked("composer")))
    shoot(alice, "details", NARROW)
    alice.click(hooked("verify"))
    alice.wait_for(f"!{shown(hooked('verify'))}")
    assert alice.evaluate(f"{text_of('verified-state')}.startsWith('✔ verified')")
    alice.press("Escape")
    alice.wait_for(shown(hooked("composer")))
    assert alice.evaluate(shown(hooked("conversation-verified")))
    alice.press("Escape")
    alice.wait_for(shown(hooked("conversations")))
    assert alice.count(f"{hooked('conversation', id='bob')} {hooked('verified-mark')}") == 1
    assert alice.evaluate("document.activeElement.dataset.id") == "bob"
    shoot(alice, "list", NARROW)
    alice.viewport(*WIDE)  # the details beside the conversation
    alice.click(hooked("conversation", id="bob"))
    alice.wait_for(f"{text_of('verified-state')}.startsWith('✔ verified')")
    shoot(alice, "details", WIDE)
    # Keyboard alone: Tab goes through real controls, each with a focus ring that shows.
    reached = []
    for _ in range(16):
        alice.press("Tab")
        reached.append(
            alice.evaluate("""(() => {
                const el = document.activeElement;
                const ring = getComputedStyle(el);
                return [el.tagName, el.matches(":focus-visible") && ring.outlineStyle !== "none"
                    && parseFloat(ring.outlineWidth) >= 2];
            })()""")
        )
    reached = [(tag, ring) for tag, ring in reached if tag != "BODY"]  # past the last one
    assert {tag for tag, _ in reached} <= {"BUTTON", "INPUT", "TEXTAREA", "A", "SUMMARY"}
    assert all(ring for _, ring in reached), reached
    assert {"BUTTON", "INPUT", "TEXTAREA"} <= {tag for tag, _ in reached}
    # The same number is on bob's side (what the two compare out of band).
    bob.click(hooked("conversation", id="alice"), 30)
    assert bob.wait_for(text_of("safety-number")) == number
    clean(alice, bob)


def test_a_key_change_blocks_the_composer_until_the_new_key_is_trusted(
    net, start_node, shiv_root, tmp_path, start_web, browser, shoot
):
    """The node hands out mallory's keys as bob's (as in test_threats.py): alice's page
    says so in red, sends nothing, shows the new key's number, and trusts it only when
    given that number."""
    mixnet, node = net
    data = tmp_path / "node-0"
    users = {n: User(n, tmp_path / n, shiv_root, mixnet, node) for n in ("alice", "bob", "mallory")}
    for user in users.values():
        user.register()
    users["alice"]("send", "bob", "hi bob")  # alice pins bob's key
    substitute(node, data, start_node, mixnet, "bob", "mallory")
    alice = signed_in(browser, start_web(users["alice"]))
    alice.click(hooked("conversation", id="bob"))
    alice.wait_for(message("hi bob", "out"))
    old_number = alice.wait_for(text_of("safety-number"))
    talk_to(alice, "bob")  # a lookup: the node's answer is not the pinned key
    alice.wait_for(shown(hooked("banner-key-changed")), 30)
    assert alice.evaluate(f"document.querySelector('{hooked('composer')}').disabled")
    assert alice.evaluate(f"document.querySelector('{hooked('send')}').disabled")
    assert alice.text(hooked("key-changed-name")) == "bob"
    new_number = alice.wait_for(text_of("new-safety-number"))
    assert new_number != old_number and len(new_number.split()) >= 4
    assert alice.count(f"{hooked('conversation', id='bob')} {hooked('key-changed-mark')}") == 1
    shoot(alice, "key-change", WIDE)
    shoot(alice, "key-change", NARROW)
    alice.viewport(*WIDE)
    # The number of the key pinned before trusts nothing; the new key's does.
    alice.type(hooked("trust-number"), " ".join(old_number.split()[:4]))
    alice.click(hooked("trust"))
    alice.wait_for(shown(hooked("conversation-error")))
    assert "not the safety number of bob's new key" in alice.text(hooked("conversation-error"))
    assert alice.evaluate(shown(hooked("banner-key-changed")))
    alice.evaluate(f"document.querySelector('{hooked('trust-number')}').value = ''")
    alice.type(hooked("trust-number"), " ".join(new_number.split()[:4]))
    alice.click(hooked("trust"))
    alice.wait_for(f"!{shown(hooked('banner-key-changed'))}")
    assert not alice.evaluate(f"document.querySelector('{hooked('composer')}').disabled")
    alice.wait_for(f"{text_of('safety-number')} === {json.dumps(new_number)}")


def test_the_first_run_in_the_page_and_no_way_in_without_the_link(
    net, shiv_root, tmp_path, start_web, browser, shoot
):
    """A new home: the page makes the identity and registers the name. Without the printed
    link, or with it a second time, the browser gets 403 and a page saying what to do."""
    mixnet, node = net
    carol = User("carol", tmp_path / "carol", shiv_root, mixnet, node)
    web = start_web(carol, passphrase=None)
    stranger = browser.page()
    stranger.navigate(web.origin + "/")
    assert stranger.documents[-1] == (web.origin + "/", 403)
    assert "nymchat web" in stranger.text("body")
    page = browser.page()
    page.viewport(*WIDE)
    page.navigate(web.url)
    page.wait_for(shown(hooked("setup-new")), 30)
    assert page.evaluate("document.activeElement.dataset.test") == "setup-passphrase"
    shoot(page, "setup", WIDE)
    shoot(page, "setup", NARROW)
    page.viewport(*WIDE)
    page.type(hooked("setup-passphrase"), PASSPHRASE)
    page.type(hooked("setup-passphrase-again"), PASSPHRASE)
    page.click(hooked("setup-create"))
    page.wait_for(shown(hooked("setup-unregistered")), 30)
    page.type(hooked("setup-username"), "carol")
    page.type(hooked("setup-node"), node.contact)
    nym = hooked("setup-nym")
    page.evaluate(f"document.querySelector('{nym}').value = ''")
    page.type(nym, carol.nym)
    shoot(page, "register", WIDE)
    shoot(page, "register", NARROW)
    page.viewport(*WIDE)
    page.click(hooked("setup-register"))
    page.wait_for(shown(hooked("main")), 60)
    assert page.text(hooked("me")) == "carol"
    # The link was spent: it lets nobody else in.
    again = browser.page()
    again.navigate(web.url)
    assert again.documents[-1] == (web.url, 403)
    assert not again.evaluate(shown(hooked("main")))
    clean(page)


def test_another_site_on_this_machine_gets_nothing_with_the_cookie_nor_a_rebound_name(
    pair, start_web, browser, probe_site
):
    """A page of another server on 127.0.0.1 is the same site to SameSite (ports do not
    count): the browser sends it alice's cookie, but it cannot read the session's key (kept
    in the page's own origin) and its Origin is not the page's: its websocket is refused.
    A name rebound to 127.0.0.1 gets 403 even with the link, which stays good."""
    web = start_web(pair[0])
    page = browser.page()
    rebound = web.url.replace("127.0.0.1", REBOUND)
    page.navigate(rebound)
    assert page.documents[-1] == (rebound, 403)
    page.navigate(web.url)  # the link was not spent by the refused request
    page.wait_for(shown(hooked("main")), 30)
    assert page.evaluate("location.href") == web.origin + "/"  # no token, no key shown
    page.navigate(probe_site + "/elsewhere")  # in the same browser context: the cookie's
    assert page.evaluate("localStorage.getItem('nymchat.api-key')") is None  # not the key
    api = json.dumps(web.origin.replace("http://", "ws://") + "/api")
    opened = f"""new Promise(done => {{
        const socket = new WebSocket({api});
        socket.onopen = () => {{ socket.close(); done("open"); }};
        socket.onerror = () => done("refused");
    }})"""
    assert page.evaluate(opened) == "refused"
    # Nor can it take the page's files in (Cross-Origin-Resource-Policy: same-origin).
    fetched = f"""fetch({json.dumps(web.origin + "/app.js")}, {{mode: "no-cors",
        credentials: "include"}}).then(() => "read", () => "refused")"""
    assert page.evaluate(fetched) == "refused"


def test_the_page_says_when_the_nym_client_is_lost_and_back_and_when_it_lost_nymchat_web(
    net, pair, start_mixnet, start_web, browser, tmp_path, shoot
):
    mixnet, _ = net
    web = start_web(pair[0])
    alice = signed_in(browser, web)
    assert not alice.evaluate(shown(hooked("status-nym")))
    mixnet.stop()  # the nym-client goes away...
    alice.wait_for(shown(hooked("status-nym")), 30)
    assert "nym-client is unreachable" in alice.text(hooked("status-nym"))
    shoot(alice, "nym-client-lost", WIDE)
    start_mixnet("--port", str(mixnet.port), state=tmp_path / "mixnet-state-0")  # ...and back
    alice.wait_for(f"!{shown(hooked('status-nym'))}", 60)
    assert not alice.evaluate(shown(hooked("banner-connection")))
    web.stop()  # the page's own server goes away
    alice.wait_for(shown(hooked("banner-connection")), 30)
    assert "connection to nymchat web lost" in alice.text(hooked("banner-connection"))


def test_the_page_says_when_the_node_is_unreachable_and_a_message_waits_queued(
    net, pair, start_node, start_web, browser
):
    """The node stops: a message typed meanwhile shows queued and, once its send found the
    node silent, the status bar says so; the node back, the message leaves and the line
    goes."""
    mixnet, node = net
    web = start_web(pair[0], NYMCHAT_NODE_TIMEOUT="2")
    alice = signed_in(browser, web)
    talk_to(alice, "bob")
    say(alice, "before")
    alice.wait_for(f"{message('before', 'out')} === 'accepted'", 30)
    assert not alice.evaluate(shown(hooked("status-node")))
    node.stop()
    say(alice, "while the node is down")
    alice.wait_for(f"{message('while the node is down', 'out')} === 'queued'", 10)
    alice.wait_for(shown(hooked("status-node")), 50)  # not at follow's next refresh (60 s)
    assert "does not answer" in alice.text(hooked("status-node"))
    start_node(mixnet, data=node.data)
    alice.wait_for(f"{message('while the node is down', 'out')} === 'accepted'", 120)
    alice.wait_for(f"!{shown(hooked('status-node'))}", 30)
    clean(alice)


def test_a_group_made_in_the_page_reaches_its_member(pair, start_web, browser, shoot):
    alice, bob = (signed_in(browser, start_web(user)) for user in pair)
    alice.click(hooked("new-group-open"))
    alice.type(hooked("new-group-name"), "team")
    alice.type(hooked("new-group-members"), "bob")
    alice.click(hooked("new-group-go"))
    alice.wait_for(f"{text_of('conversation-title')} === '#team'", 30)
    alice.wait_for(shown(hooked("group-member", name="bob")))
    trust = "document.querySelector('{}').dataset.trust"
    assert alice.evaluate(trust.format(hooked("group-member", name="alice"))) == "you"
    say(alice, "hello team")
    assert alice.wait_for(message("hello team", "out"), 30) in ("queued", "accepted")
    alice.wait_for(f"{message('hello team', 'out')} === 'accepted'", 30)  # no receipts here
    bob.click(hooked("conversation", id="#team"), 30)
    assert bob.wait_for(message("hello team", "in"), 30) == "received"
    assert bob.count(hooked("group-member")) == 2
    shoot(alice, "group", WIDE)
    clean(alice, bob)


def test_two_profiles_served_at_once_stay_signed_in_in_one_browser(pair, start_web, browser):
    """Cookies do not tell ports apart: signing in to the second server must not sign the
    first out (each server's cookie has a name of its own)."""
    first, second = (start_web(user) for user in pair)
    page = browser.page()  # one browser context: one cookie jar for 127.0.0.1
    page.viewport(*WIDE)
    for web, name in ((first, "alice"), (second, "bob")):
        page.navigate(web.url)
        page.wait_for(f"{text_of('me')} === {json.dumps(name)}", 30)
    for web, name in ((first, "alice"), (second, "bob")):  # back to each, with its cookie
        page.navigate(web.origin + "/")
        assert page.documents[-1] == (web.origin + "/", 200)
        page.wait_for(f"{text_of('me')} === {json.dumps(name)}", 30)


def test_direct_mode_is_invited_accepted_and_ended_in_the_pages(pair, start_web, browser):
    def marked(other: str) -> str:  # the conversation with `other` says "direct"
        return shown(f"{hooked('conversation', id=other)} {hooked('direct-mark')}")

    alice, bob = (signed_in(browser, start_web(user)) for user in pair)
    talk_to(alice, "bob")
    say(alice, "shall we talk directly?")
    alice.wait_for(f"{message('shall we talk directly?', 'out')} === 'delivered'", 30)
    alice.click(hooked("direct-invite"))
    alice.wait_for(shown(hooked("direct-end")), 30)  # inviting: it can be called off
    bob.click(hooked("conversation", id="alice"), 30)
    bob.click(hooked("direct-accept"), 30)

    for page, other in ((alice, "bob"), (bob, "alice")):
        page.wait_for(marked(other), 60)
    say(bob, "directly now")
    alice.wait_for(message("directly now", "in"), 30)
    alice.click(hooked("direct-end"))
    for page, other in ((alice, "bob"), (bob, "alice")):
        page.wait_for(f"!{marked(other)}", 30)
        page.wait_for(shown(hooked("direct-invite")), 30)
    clean(alice, bob)


def test_a_locked_profile_is_unlocked_in_the_page(pair, start_web, browser, shoot):
    page = browser.page()
    page.viewport(*WIDE)
    page.navigate(start_web(pair[0], passphrase=None).url)
    page.wait_for(shown(hooked("setup-locked")), 30)
    assert page.evaluate("document.activeElement.dataset.test") == "setup-unlock-passphrase"
    shoot(page, "unlock", WIDE)
    page.type(hooked("setup-unlock-passphrase"), "not the passphrase")
    page.press("Enter")
    page.wait_for(shown(hooked("setup-error")), 30)  # asked again, the field emptied
    assert (
        page.evaluate(f"document.querySelector('{hooked('setup-unlock-passphrase')}').value") == ""
    )
    assert page.evaluate(shown(hooked("setup-locked")))
    page.type(hooked("setup-unlock-passphrase"), PASSPHRASE)
    page.press("Enter")
    page.wait_for(shown(hooked("main")), 30)
    assert page.text(hooked("me")) == "alice"
    clean(page)
