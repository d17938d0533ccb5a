"""The client engine: everything a person or script needs to talk through a node."""
