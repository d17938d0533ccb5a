-- Several node processes on one database (issue 17). No row of `users` is written per
-- message any more (two processes enqueueing for the same people never lock each other):
-- a recipient's queue is counted over the queue itself, through a covering index.
ALTER TABLE queue ADD COLUMN size INTEGER NOT NULL DEFAULT 0;  -- length(payload)
UPDATE queue SET size = length(payload);
DROP INDEX queue_stranger;
CREATE INDEX queue_recipient ON queue (recipient, stranger, size);
ALTER TABLE users DROP COLUMN queued_messages;
ALTER TABLE users DROP COLUMN queued_bytes;

-- Payload bytes queued on the whole node: each store adds to its own shard, the total is
-- their sum (the old one-row total is shard 0).
CREATE TABLE queue_totals (
    shard INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
INSERT INTO queue_totals (shard, bytes) SELECT 0, bytes FROM queue_total;
DROP TABLE queue_total;

-- The frontend of a user's route (`route_frontend`, registered by NodeStore): the node
-- process holding that frontend pushes to them.
ALTER TABLE users ADD COLUMN home INTEGER;
UPDATE users SET home = route_frontend(sender_tag);
CREATE INDEX users_home ON users (home);

-- Token buckets shared by every process (the per-identity request rate).
CREATE TABLE rate_limits (
    key BLOB PRIMARY KEY,
    tokens REAL NOT NULL,
    updated INTEGER NOT NULL              -- ms
) WITHOUT ROWID;

-- Named values of the whole node (the recent registrations' decaying count).
CREATE TABLE node_state (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL,
    updated INTEGER NOT NULL              -- ms
) WITHOUT ROWID;

-- Every process's frontends, for the descriptor.
CREATE TABLE frontends (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    process TEXT NOT NULL,
    heartbeat INTEGER NOT NULL            -- ms
);
