"""Text from the network on a terminal (nymchat/terminal.py): no control character gets
through, printable text is unchanged, and every further line of a block is marked."""

import json
import logging
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from nymchat.logs import JsonFormatter, TextFormatter
from nymchat.terminal import CONTINUED, block, line

BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ANY = st.text(st.characters(exclude_categories=()), max_size=200)  # surrogates too
HOSTILE = st.lists(
    st.sampled_from(
        [
            "\x1b[2K",
            "\r",
            "\n",
            "\x1b]52;c;aGk=\x07",
            "\x9b31m",
            "\u202e",
            "\u2066",
            "\x00",
            "\x7f",
            "\u2028",
            "\ud800",
            "alice (verified): ",
            "[12:00] ",
            "\t",
            "é",
            "→",
        ]
    ),
    max_size=20,
).map("".join)
PRINTABLE = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters=BIDI)
    | st.just("\t"),
    max_size=200,
)


def unsafe(text: str) -> bool:
    """What must never reach a terminal: C0 but tab, DEL, C1 (ESC, CSI, OSC...), the bidi
    controls, line and paragraph separators, lone surrogates."""
    return any(
        c != "\t" and (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in BIDI)
        for c in text
    )


@given(ANY | HOSTILE)
def test_no_control_character_reaches_the_terminal(text):
    assert not unsafe(line(text))
    lines = block(text).split("\n")
    assert not any(unsafe(part) for part in lines)
    assert all(part.startswith(CONTINUED) for part in lines[1:])  # no line passes as a header


@given(PRINTABLE)
def test_printable_text_is_unchanged(text):
    assert line(text) == block(text) == text


def test_controls_are_shown_as_escapes_and_lines_marked():
    text = "hi\r\x1b[2K[12:00] alice (verified): wire it\n\x1b]52;c;aGk=\x07\u202eok\r\nend"
    assert block(text) == (
        "hi\\r\\x1b[2K[12:00] alice (verified): wire it\n"
        f"{CONTINUED}\\x1b]52;c;aGk=\\x07\\u202eok\n{CONTINUED}end"
    )
    assert line("one\ntwo\x9b") == "one\\ntwo\\x9b"


def test_log_lines_show_network_text_as_escapes_and_json_logs_stay_exact():
    sender = "alice\x1b[2K\n12:00 ERROR forged: \x9b31m\u202e"
    record = logging.LogRecord(
        "nymchat.client.engine",
        logging.INFO,
        __file__,
        1,
        "a message from %s could not be read",
        (sender,),
        None,
    )
    text = TextFormatter("%(levelname)s %(message)s").format(record)
    assert text == f"INFO a message from {line(sender)} could not be read"
    assert not unsafe(text)
    logged = JsonFormatter().format(record)
    assert not unsafe(logged) and logged.isascii()
    assert json.loads(logged)["msg"] == f"a message from {sender} could not be read"
