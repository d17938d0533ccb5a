"""How every face words a contact's safety numbers: while a key change waits, the number to
compare is the new key's (the one `trust` pins), and the text says which number is which."""


def describe(username: str, number: str, new_number: str | None, verified: bool, trust: str) -> str:
    """Lines for a terminal; `trust` is the command (or chat command) that trusts a key,
    e.g. "nymchat contacts trust"."""
    if new_number is None:
        return f"safety number with {username}:\n  {number}\n" + (
            "(verified)"
            if verified
            else "compare it with theirs (in person or by a channel you trust)"
        )
    prefix = " ".join(new_number.split()[:4])
    return (
        f"WARNING: {username}'s key has CHANGED; sending to them is blocked.\n"
        f"safety number with the NEW key (the one `trust` would pin):\n  {new_number}\n"
        f"safety number with the key you pinned before (do not compare this one):\n"
        f"  {number}\n"
        f"Compare the NEW number with {username}'s own (in person or by a channel you "
        f"trust). Only if it matches:\n  {trust} {username} {prefix}"
    )
