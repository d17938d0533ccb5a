-- Who fills a recipient's queue: per-sender shares, a share for senders the recipient does
-- not know, and a total over the whole node.

-- Whether the sender was a stranger to the recipient when the message came.
ALTER TABLE queue ADD COLUMN stranger INTEGER NOT NULL DEFAULT 0;
CREATE INDEX queue_sender ON queue (recipient, sender);
CREATE INDEX queue_stranger ON queue (recipient, stranger);

-- Pairs (recipient, sender) where the recipient knows the sender, as a keyed hash of the
-- pair, with the day the recipient last wrote to the sender on their own.
CREATE TABLE known_senders (
    pair BLOB PRIMARY KEY,
    last_seen INTEGER NOT NULL            -- ms, a whole day
) WITHOUT ROWID;
CREATE INDEX known_senders_last_seen ON known_senders (last_seen);

-- The same keyed pairs, for an hour after the recipient was last handed a message from
-- the sender: what the recipient sends back then may be an automatic receipt.
CREATE TABLE recent_pushes (
    pair BLOB PRIMARY KEY,
    pushed INTEGER NOT NULL               -- ms
) WITHOUT ROWID;
CREATE INDEX recent_pushes_pushed ON recent_pushes (pushed);

-- Payload bytes queued on the whole node, kept in step with the queue (one row).
CREATE TABLE queue_total (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    bytes INTEGER NOT NULL
);
INSERT INTO queue_total (id, bytes)
    SELECT 0, coalesce(sum(length(payload)), 0) FROM queue;
