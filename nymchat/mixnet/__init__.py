"""`nymchat mixnet`: a local stand-in for the Nym network. One process hosts many virtual
nym-clients that speak the real client's websocket API. It provides no anonymity."""
