"""The nym-client websocket API: addresses, sender tags, request and response codecs.
Sans-I/O; used by the transport (client side) and by `nymchat mixnet` (server side)."""
