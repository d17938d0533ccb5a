"""`nymchat node`: the discovery node (registry, key directory, relay, offline queue)."""
