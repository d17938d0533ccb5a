"""Routes: where an answer goes back. A route is the frontend's id (u16 big-endian)
followed by the nym sender tag it received: a sender tag means something only to the
nym-client that received it (it holds the SURBs), so the node keys everything by route
and only the runner splits one to send."""


def route(frontend: int, sender_tag: bytes) -> bytes:
    return frontend.to_bytes(2, "big") + sender_tag


def split_route(key: bytes) -> tuple[int, bytes]:
    return int.from_bytes(key[:2], "big"), key[2:]


def route_frontend(key: bytes | None) -> int | None:
    """The frontend of a route (a user's `home`), None for none."""
    return None if key is None or len(key) < 2 else split_route(key)[0]
