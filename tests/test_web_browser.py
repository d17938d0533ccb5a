"""`nymchat web` in a real browser: Debian's headless chromium, driven over the DevTools
protocol (tests/browser.py) on real processes."""

import http.server
import struct
import threading

import pytest
from browser import CHROMIUM_ENV, chromium_path

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
