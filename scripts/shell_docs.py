#!/usr/bin/env python3
"""The command line as the man page and bash completion present it; build.sh runs this.

    scripts/shell_docs.py completion    prints dist/nymchat.bash
    scripts/shell_docs.py man-include   prints docs/man-extra.roff, the chat's commands and
                                        the exit statuses (nymchat/errors.py), the extra
                                        sections of dist/nymchat.1
    man_parser                          the parser argparse-manpage renders

Contact names complete from the process that has the profile open (`chat`, `inbox
--follow`), through `nymchat --complete-contacts`: they are sealed in the store, and
completion never asks for a passphrase (nymchat/completion.py). With none running, a
name completes to nothing."""

import argparse
import sys
from pathlib import Path

from nymchat.cli import build_parser  # the installed package, as dist/nymchat carries it

ROOT = Path(__file__).resolve().parent.parent

GLOBAL = "global options"
NEW_NAMES = {"register"}  # commands whose NAME is a new one, not one of your contacts

# The completion shtab's generated script calls for a value: FILE, PATH, DEST, SRC and DIR by
# metavar, contact names by the positional `name`.
FILES = {"bash": "_shtab_compgen_files"}
DIRECTORIES = {"bash": "_shtab_compgen_dirs"}
BY_METAVAR = {"FILE": FILES, "PATH": FILES, "DEST": FILES, "SRC": FILES, "DIR": DIRECTORIES}
CONTACTS = {
    "bash": "_nymchat_contacts",
    "preamble": {
        "bash": r"""
# Contact names, from the process serving the profile (none: nothing). The profile is the
# one --home names on the line, else $NYMCHAT_HOME, else the default. Names are matched
# here, not by compgen -W, which would expand them.
_nymchat_contacts() {
  local i home=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --home) home=(--home "${COMP_WORDS[i + 1]/#\~/$HOME}") ;;
      --home=*) home=(--home "${COMP_WORDS[i]#--home=}") ;;
    esac
  done
  local name
  while IFS= read -r name; do
    [[ $name == "$1"* ]] && printf '%s\n' "$name"
  done < <("${COMP_WORDS[0]}" "${home[@]}" --complete-contacts 2>/dev/null)
}
"""
    },
}


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Each parser of the command line with the command words that lead to it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def completion_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    for path, sub in _parsers(parser):
        for action in sub._actions:
            if not action.option_strings and action.dest in ("name", "members"):
                if path[0] not in NEW_NAMES:
                    action.complete = CONTACTS
            elif action.metavar in BY_METAVAR:
                action.complete = BY_METAVAR[action.metavar]
    return parser


def man_parser() -> argparse.ArgumentParser:
    """The global options once, at the top: a command's own copy of them is left out (of
    its usage line too)."""
    parser = build_parser()
    for path, sub in _parsers(parser):
        if path:
            for group in sub._action_groups:
                if group.title == GLOBAL:
                    for action in group._group_actions:
                        action.help = argparse.SUPPRESS
            sub._action_groups = [g for g in sub._action_groups if g.title != GLOBAL]
    return parser


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in ".'" else text  # not a roff request


def chat_commands() -> str:
    """The CHAT COMMANDS section, from the chat's own list of them."""
    from nymchat.chat.core import COMMANDS

    lines = [
        "[CHAT COMMANDS]",
        "Typed at the prompt of \\fBnymchat chat\\fR; any other line is a message to "
        "the current conversation.",
    ]
    for usage, what in COMMANDS.values():
        lines += [".TP", f".B {_roff(usage)}", _roff(what)]
    return "\n".join(lines) + "\n"


EXIT_STATUS_INTRO = r"""[EXIT STATUS]
.nh
On failure one line on standard error says what went wrong (with \fB\-v\fR, a
traceback); with \fB\-\-json\fR the error is also one JSON object on standard output:
.PP
.nf
.RS
{"error": {"code": \fICODE\fR, "exit": \fISTATUS\fR, "message": \fITEXT\fR}}
.RE
.fi
.PP
with \fB"node_code"\fR too, the node's own code, when the node refused; \fICODE\fR is
the name given with each status below.
.TP
.B 0
Success (\fBsend\fR: the node accepted the message; \fBnode\fR, \fBmixnet\fR and
\fBinbox \-\-follow\fR: stopped by SIGTERM; \fBchat\fR: left with /quit or Ctrl\-D).
"""


def exit_status() -> str:
    """The EXIT STATUS section, from the error classes' own exit statuses and codes."""
    from nymchat.errors import EXIT_STATUS

    lines = [EXIT_STATUS_INTRO.rstrip("\n")]
    for error in sorted(EXIT_STATUS, key=lambda e: e.exit_code):
        lines += [".TP", f'.BR {error.exit_code} " ({_roff(error.kind)})"', _roff(error.meaning)]
    return "\n".join([*lines, ".hy"]) + "\n"  # .nh: the man page is searched for these


def main() -> int:
    import shtab

    if sys.argv[1:] == ["completion"]:
        sys.stdout.write(shtab.complete(completion_parser(), "bash"))
    elif sys.argv[1:] == ["man-include"]:
        extra = (ROOT / "docs" / "man-extra.roff").read_text()
        sys.stdout.write(chat_commands() + "\n" + extra + "\n" + exit_status())
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
