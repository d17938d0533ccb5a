"""`nymchat chat`: the conversation a person sees, on the client engine."""
