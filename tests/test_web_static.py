"""The page of `nymchat web` (nymchat/web/static/) keeps to what its Content-Security-Policy
and design19 promise: nothing set as HTML, no eval, no inline script, style or handler; and
every `data-test` hook the script looks up, or its header lists for the browser tests,
exists in the page."""

import re
from html.parser import HTMLParser

from procs import ROOT

STATIC = ROOT / "nymchat" / "web" / "static"
# What would put text into the page as HTML, or run a string as code.
SCRIPT_SINKS = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\s*\(|"
    r"\bnew\s+Function\b|\bFunction\s*\(|setTimeout\s*\(\s*[\"'`]|setInterval\s*\(\s*[\"'`]|"
    r"\.setAttribute\(\s*[\"'`]on|\.cssText\b|createContextualFragment|DOMParser"
)


def script_sinks(source: str) -> list[str]:
    return [m.group(0) for m in SCRIPT_SINKS.finditer(source)]


class _Inline(HTMLParser):
    """What of a page the policy would refuse or we never write: an inline script, an
    inline style (element or attribute), an `on...=` handler, a `javascript:` address."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        self.found += [f"<{tag} {name}=>" for name in names if name.startswith("on")]
        if "style" in names:
            self.found.append(f"<{tag} style=>")
        if any(v.strip().lower().startswith("javascript:") for v in names.values()):
            self.found.append(f"<{tag} javascript:>")
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._script = True
            if not names.get("src"):
                self.found.append("<script> without src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.found.append("<script> with a body")


def html_inline(page: str) -> list[str]:
    parser = _Inline()
    parser.feed(page)
    parser.close()
    return parser.found


def _scripts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(STATIC.glob("*.js"))}


def test_the_checks_catch_what_they_look_for():
    """(So that a clean result below means something.)"""
    assert script_sinks("row.innerHTML = text; eval(x); new Function('a')") == [
        ".innerHTML",
        "eval(",
        "new Function",
    ]
    assert script_sinks("node.insertAdjacentHTML('beforeend', t); document.write(t)")
    assert script_sinks("setTimeout('go()', 1); b.setAttribute('onclick', s)")
    assert not script_sinks("node.textContent = text; setTimeout(() => go(), 1)")
    found = html_inline(
        '<div onclick="x()" style="color:red"><script>alert(1)</script>'
        '<script src="/app.js"></script><a href="javascript:x()">a</a><style>p{}</style>'
    )
    assert found == [
        "<div onclick=>",
        "<div style=>",
        "<script> without src",
        "<script> with a body",
        "<a javascript:>",
        "<style>",
    ]


def test_the_script_sets_nothing_as_html_and_runs_no_strings():
    scripts = _scripts()
    assert "app.js" in scripts
    for name, source in scripts.items():
        assert script_sinks(source) == [], name


def test_the_page_has_no_inline_script_style_or_handler():
    pages = sorted(STATIC.glob("*.html")) + sorted(STATIC.glob("*.svg"))
    assert [p.name for p in pages] == ["index.html", "icon.svg"]
    for page in pages:
        assert html_inline(page.read_text(encoding="utf-8")) == [], page.name


def test_the_page_loads_nothing_from_elsewhere():
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I) == [], path.name
        assert "@import" not in text and "url(" not in text, path.name


def test_every_hook_the_script_uses_or_lists_is_in_the_page():
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = "\n".join(_scripts().values())
    made = set(re.findall(r'data-test="([a-z-]+)"', page))
    made |= set(re.findall(r'"data-test": "([a-z-]+)"', scripts))
    used = set(re.findall(r'hook\(\s*"([a-z-]+)"', scripts))
    used |= {f"setup-{s}" for s in ("new", "locked", "unregistered", "create", "unlock")}
    used |= {f"direct-{a}" for a in ("invite", "accept", "decline", "end")}
    header = "\n".join(re.findall(r"^//.*$", scripts.split("\nimport ", 1)[0], re.M))
    listed = set(re.findall(r"[a-z]+(?:-[a-z]+)*", header))
    assert used - made == set(), "hooks the script looks up that the page lacks"
    assert made - listed == set(), "hooks the header of app.js does not list"
