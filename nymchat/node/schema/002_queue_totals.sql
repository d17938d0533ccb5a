-- Per-recipient queue totals, kept in step with the queue, so the quota check on every
-- send reads one row instead of summing the recipient's whole queue.
ALTER TABLE users ADD COLUMN queued_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN queued_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE users SET
    queued_messages = (SELECT count(*) FROM queue WHERE queue.recipient = users.username),
    queued_bytes = (SELECT coalesce(sum(length(payload)), 0) FROM queue
                    WHERE queue.recipient = users.username);
