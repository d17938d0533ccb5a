"""``nymchat web``: the conversation in a browser, served on this machine only."""

import argparse
import sys


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


def _open_browser(url: str) -> None:
    """Opens `url` in a graphical browser, if there is one (a browser in the terminal
    would take the terminal this command prints to)."""
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        browser = None
    if type(browser) is webbrowser.GenericBrowser or browser is None:  # lynx, w3m...
        print("nymchat web: no browser found here: open the link yourself", file=sys.stderr)
        return
    browser.open(url)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from nymchat.client.connect import refuse_if_served
    from nymchat.stopping import on_stop_signals
    from nymchat.web import server

    loopback(args.host)
    refuse_if_served(args, "web")

    def opened(url: str) -> None:
        print(f"nymchat web: open {url}", flush=True)
        if not args.no_browser:
            asyncio.get_running_loop().run_in_executor(None, _open_browser, url)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None  # (in asyncio.run)
        on_stop_signals(asyncio.get_running_loop(), task.cancel)
        await server.run(args, opened)

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())  # Ctrl-C or SIGTERM ends it cleanly (exit status 130 or 0)
    return 0
