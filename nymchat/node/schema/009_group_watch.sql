-- Groups watched from other nodes (issue 18). Each group numbers its log entries in order
-- (`position`, from the group's counter, taken with its row held: increasing per group in
-- commit order, on either backend; a Welcome has none, 0) and is kept for its watchers
-- until `watched_until` (ms): meanwhile its entries stay until the retention even when no
-- local delivery needs them.
ALTER TABLE groups ADD COLUMN position INTEGER NOT NULL DEFAULT 0;  -- its newest entry's
ALTER TABLE groups ADD COLUMN watched_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE group_entries ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
UPDATE group_entries SET position = seq WHERE post <> 4;
UPDATE groups SET position = coalesce(
    (SELECT max(position) FROM group_entries WHERE group_id = groups.group_id), 0);
CREATE INDEX group_entries_position ON group_entries (group_id, position);
