-- The key each user's client recognises the node's pushes by (docs/PROTOCOL.md), and an
-- index to tell a registered user's sender tag from a stranger's as requests come in.
ALTER TABLE users ADD COLUMN push_key BLOB;
CREATE INDEX users_sender_tag ON users (sender_tag);
