"""Stopping a long-running command (node, mixnet, inbox --follow) by signal: SIGINT
(Ctrl-C) and SIGTERM end it cleanly by the same path, and the exit status then says which:
130 after Ctrl-C (128 + SIGINT, as shells report it, and as the man page promises), 0 after
SIGTERM (a service told to stop has stopped)."""

import signal

_interrupted = False


def on_stop_signals(loop, stop) -> None:
    """Calls `stop()` from the event loop on SIGINT or SIGTERM."""

    def received(sig: int) -> None:
        global _interrupted
        _interrupted = _interrupted or sig == signal.SIGINT
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, received, sig)


def exit_code(code: int) -> int:
    """`code`, or 130 when a command that ended well was ended by Ctrl-C."""
    return 130 if code == 0 and _interrupted else code
