"""Text from the network, made safe to print on a terminal. Whoever can send a message (or
name, or error text) could otherwise move the cursor, erase lines, write the clipboard (OSC
52) or reorder what is shown (bidi overrides), and so forge lines nymchat never printed.
Every face prints such text through `line` or `block`; the engine and `--json` keep it
exact."""

import re

# C0 (tab apart, newline too: `block` handles lines), DEL and C1, which hold ESC and CSI;
# the bidi embeddings, overrides, isolates and marks; line and paragraph separators; and
# lone surrogates, which cannot even be printed.
_UNSAFE = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
    r"\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
CONTINUED = "  │ "  # starts every further line of a block: no line of it passes for a header
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def line(text: str) -> str:
    """`text` as one line, every control character shown as an escape as Python writes
    it (`\\x1b`, `\\r`, `\\n`, `\\u202e`); printable text is unchanged."""
    return _UNSAFE.sub(_escape, text)


def block(text: str) -> str:
    """`text` after a header on the same line: lines as `line` makes them, each one after
    the first starting with `CONTINUED`, so that it visibly belongs to the header."""
    return ("\n" + CONTINUED).join(line(part) for part in text.replace("\r\n", "\n").split("\n"))
