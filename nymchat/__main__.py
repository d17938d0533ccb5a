from nymchat.cli import main

raise SystemExit(main())
