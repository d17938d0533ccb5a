"""`nymchat web`: the conversation in a browser, served on this machine only (docs/API.md)."""
