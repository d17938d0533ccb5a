"""A minimal Chrome DevTools Protocol client for the browser tests: Debian's headless
`chromium`, driven over its own websocket with `websockets` (no selenium, no driver, nothing
downloaded). One Chromium per test; each Page is a tab in its own browser context, so two
pages keep separate cookies (as two people on two machines would)."""

import base64
import contextlib
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM_ENV = "NYMCHAT_TEST_CHROMIUM"


class CDPError(AssertionError):
    """The browser refused a command, or a script threw."""


def chromium_path() -> str:
    """$NYMCHAT_TEST_CHROMIUM (./build.sh test sets it), else `chromium` on PATH; none is an
    error (the browser tests never skip)."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    if not found or not os.access(found, os.X_OK):
        raise AssertionError(
            "the browser tests need Debian's chromium: run ./build.sh test, or apt-get install "
            f"chromium, or set {CHROMIUM_ENV}"
        )
    return found


# What Input.dispatchKeyEvent needs to make a key press as a keyboard would (text: what the
# key types into a field).
KEYS = {
    "Enter": {"code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    "Escape": {"code": "Escape", "windowsVirtualKeyCode": 27},
    "Tab": {"code": "Tab", "windowsVirtualKeyCode": 9},
}
SHIFT = 8  # CDP's modifier bit
# A name this browser resolves to 127.0.0.1, as a DNS-rebinding attacker's name would.
REBOUND = "rebound.test"


class Chromium:
    """One headless Chromium with a throwaway profile in `directory`; `stop()` ends it and
    every page, however the test ends."""

    def __init__(self, directory: Path, executable: str | None = None):
        profile = directory / "profile"
        profile.mkdir(parents=True)
        self.log = directory / "chromium.log"
        args = [
            executable or chromium_path(),
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers' /dev/shm is small
            "--hide-scrollbars",
            "--font-render-hinting=none",
            f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self._ids = itertools.count(1)
        self._waiting: dict[int, queue.Queue] = {}
        self._pages: dict[str, Page] = {}
        self._lock = threading.Lock()
        self._closing = contextlib.ExitStack()
        try:
            self.ws = self._closing.enter_context(
                connect(self._endpoint(profile), max_size=None, open_timeout=10)
            )
        except BaseException:
            self.stop()
            raise
        threading.Thread(target=self._read, daemon=True).start()

    def _endpoint(self, profile: Path, timeout: float = 30) -> str:
        """The browser's websocket, from the DevToolsActivePort file it writes when ready
        (its port on the first line, its path on the second)."""
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while True:
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not start; its log: {self.log.read_text()}")
            time.sleep(0.05)

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    waiting = self._waiting.pop(message["id"], None)
                    if waiting is not None:
                        waiting.put(message)
                elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                    try:
                        page._event(message["method"], message.get("params", {}))
                    except Exception as error:  # a surprise here must not stop the reader
                        page.problems.append(f"tests/browser.py on {message['method']}: {error!r}")
        except Exception:  # the browser went away: whoever waits learns it below
            pass
        for waiting in list(self._waiting.values()):
            waiting.put({"error": {"message": "the browser closed its connection"}})

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        answer: queue.Queue | None = None,
    ) -> int:
        """Sends a command; its answer goes to `answer` (none: dropped, as the reader thread's
        own commands must not wait)."""
        ident = next(self._ids)
        if answer is not None:
            self._waiting[ident] = answer
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        with self._lock:
            self.ws.send(json.dumps(message))
        return ident

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30
    ) -> dict:
        """Sends a command and returns its result; an error answer raises CDPError."""
        answer: queue.Queue = queue.Queue()
        ident = self.send(method, params, session, answer)
        try:
            reply = answer.get(timeout=timeout)
        except queue.Empty:
            raise CDPError(f"{method}: no answer within {timeout} s") from None
        finally:
            self._waiting.pop(ident, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def page(self) -> "Page":
        """A new tab in a browser context of its own (its own cookies and storage)."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        return page

    def stop(self) -> None:
        if hasattr(self, "ws"):
            with contextlib.suppress(Exception):  # already gone: it is killed below if not
                self.call("Browser.close", timeout=5)
        self._closing.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its renderers too: the group it leads
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Page:
    """One tab. Records what a test must see went wrong: `dialogs` (alert, confirm, prompt:
    each dismissed at once), `problems` (console errors, Content-Security-Policy violations,
    uncaught exceptions) and `documents` (each page load's URL and HTTP status)."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session
        self.dialogs: list[dict] = []
        self.problems: list[str] = []
        self.documents: list[tuple[str, int]] = []

    def call(self, method: str, params: dict | None = None, timeout=30) -> dict:
        return self.browser.call(method, params, self.session, timeout)

    def _event(self, method: str, params: dict) -> None:
        """Runs in the reader thread: it must not wait for an answer."""
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params)
            self.browser.send("Page.handleJavaScriptDialog", {"accept": False}, self.session)
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught: {thrown}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            said = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {said}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if entry.get("source") != "network":  # a refused request shows in `documents`
                self.problems.append(f"{entry.get('source')}: {entry['text']}")
        elif method == "Network.responseReceived" and params.get("type") == "Document":
            self.documents.append((params["response"]["url"], params["response"]["status"]))

    def navigate(self, url: str, timeout: float = 15) -> None:
        """Loads `url` and waits until the document has loaded."""
        done = self.call("Page.navigate", {"url": url})
        if done.get("errorText"):
            raise CDPError(f"navigating to {url}: {done['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout)

    def reload(self, timeout: float = 15) -> None:
        before = self.evaluate("performance.timeOrigin")
        self.call("Page.reload")
        self.wait_for(
            f"performance.timeOrigin !== {before} && document.readyState === 'complete'", timeout
        )

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            thrown = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"{expression!r} threw: {thrown}")
        return result["result"].get("value")

    def wait_for(self, predicate: str, timeout: float = 10):
        """Polls a JavaScript expression until it is truthy and returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(predicate)
            except CDPError as error:  # e.g. between two documents
                value, last = None, str(error)
            else:
                last = repr(value)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout:g} s for {predicate!r} (last: {last}); "
                    f"page problems: {self.problems}"
                )
            time.sleep(0.1)

    def text(self, selector: str) -> str:
        """The rendered text of the first element matching `selector` ('' when none)."""
        return self.evaluate(f"document.querySelector({json.dumps(selector)})?.innerText ?? ''")

    def count(self, selector: str) -> int:
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    def click(self, selector: str, timeout: float = 10) -> None:
        """Clicks the middle of the first element matching `selector` with the mouse, once it
        is shown and enabled (as a person would: through whatever covers it)."""
        point = self.wait_for(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el || el.disabled) return null;
                el.scrollIntoView({{block: "center", inline: "center"}});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return null;
                return [r.x + r.width / 2, r.y + r.height / 2];
            }})()""",
            timeout,
        )
        x, y = point
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def type(self, selector: str, text: str, timeout: float = 10) -> None:
        """Focuses the field matching `selector` and types `text` into it (after what it
        holds), as a keyboard's input events would."""
        self.wait_for(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el || el.disabled) return false;
                el.focus();
                return document.activeElement === el;
            }})()""",
            timeout,
        )
        self.call("Input.insertText", {"text": text})

    def press(self, key: str, shift: bool = False) -> None:
        """Presses and releases `key` (a name in KEYS) where the focus is."""
        spec = {"key": key, **KEYS[key], "modifiers": SHIFT if shift else 0}
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", **spec})
        spec.pop("text", None)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **spec})

    def viewport(self, width: int, height: int) -> None:
        """Lays the page out as on a screen of this size (narrow ones as a phone's)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        self.evaluate("new Promise(done => requestAnimationFrame(() => done(true)))")

    def screenshot(self, path: Path, width: int, height: int) -> bytes:
        """Writes a PNG of the page laid out at width x height to `path`."""
        self.viewport(width, height)
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        data = base64.b64decode(shot["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data
