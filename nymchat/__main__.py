import nymchat.python_check  # noqa: F401  (first: refuses an old Python in one line)
from nymchat.cli import main

raise SystemExit(main())
