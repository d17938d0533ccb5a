"""The node protocol, sans-I/O: message codec, usernames, proof of work, contact strings.
Shared by the node and the client engine; nothing here touches a socket, disk or clock."""
