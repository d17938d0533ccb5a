"""``nymchat web``: the conversation in a browser, served on this machine only."""

import argparse
import sys
from pathlib import Path

OPENER = "web-open.html"  # what the browser is given to open (see `_lead_to`)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {text!r}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=_port, default=0, help="the port to serve on (default: a free one)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the loopback address to serve on: 127.0.0.1 (the default), another of "
        "127.0.0.0/8, ::1 or localhost; never another",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="only print the link, open no browser"
    )
    parser.add_argument("--nym", metavar="URL", help="your nym-client (default: the last used)")


def loopback(host: str) -> str:
    """`host`, once it is an address of this machine only; else a `UsageError`."""
    import ipaddress

    from nymchat.errors import UsageError

    try:
        is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise UsageError(
            f"nymchat web serves this machine only: --host is a loopback address "
            f"(127.0.0.1, another of 127.0.0.0/8, ::1 or localhost), not {host!r}"
        )
    return host


def _lead_to(url: str, home: Path) -> Path:
    """A file that leads the browser to `url` (mode 0600 in the home): a browser's command
    line can be read by every user of the machine, who could spend the token first."""
    import html

    from nymchat.files import write_atomic

    path = home / OPENER
    quoted = html.escape(url, quote=True)
    write_atomic(
        path,
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url='
        f'{quoted}"><title>nymchat</title><a href="{quoted}">open nymchat</a>\n'.encode(),
    )
    return path


def _open_browser(url: str, home: Path) -> None:
    """Opens `url` in the browser, if this session has one (a display, or $BROWSER)."""
    import os
    import threading
    import webbrowser

    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")
    )
    if not graphical:
        print("nymchat web: no browser here: open the link yourself", file=sys.stderr)
        return
    opener = _lead_to(url, home).as_uri()
    # A thread of its own: some browsers are waited for, and the command ends without it.
    threading.Thread(target=webbrowser.open, args=(opener,), daemon=True).start()


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from nymchat.client.connect import home_of, refuse_if_served
    from nymchat.home import ensure_home
    from nymchat.stopping import on_stop_signals
    from nymchat.web import server

    loopback(args.host)
    refuse_if_served(args, "web")
    home = home_of(args)

    def opened(url: str) -> None:
        print(f"nymchat web: open {url}", flush=True)
        if not args.no_browser:
            _open_browser(url, ensure_home(home))

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None  # (in asyncio.run)
        on_stop_signals(asyncio.get_running_loop(), task.cancel)
        await server.run(args, opened)

    try:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(main())  # Ctrl-C or SIGTERM ends it cleanly (exit status 130 or 0)
    finally:
        (home / OPENER).unlink(missing_ok=True)
    return 0
