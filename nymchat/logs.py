"""Log output to stderr, as text or as one JSON object a line."""

import json
import logging
import sys
import time

from nymchat.terminal import line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)  # ASCII: C1 and bidi controls escaped too, not only C0


class TextFormatter(logging.Formatter):
    """Log lines as text; network text in them (a sender's name, a node's error) is
    shown as escapes, as everywhere on the terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return line(super().formatMessage(record))


def setup_logging(verbose: int, quiet: bool, log_format: str) -> None:
    level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("nymchat")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
