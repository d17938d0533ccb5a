"""Refuses, in one line, a Python older than nymchat needs. Written to run on any Python,
2.7 included: build.sh puts this text at the top of dist/nymchat's __main__.py, before
shiv's bootstrap (which needs 3.6), and nymchat/__main__.py imports it first."""

import sys

if sys.version_info < (3, 11):
    sys.stderr.write(
        "nymchat needs Python >= 3.11; this is %d.%d (%s)\n"
        % (sys.version_info[0], sys.version_info[1], sys.executable or "python")
    )
    sys.exit(1)
