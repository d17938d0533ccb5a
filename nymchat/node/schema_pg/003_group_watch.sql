-- Groups watched from other nodes: SQLite's migration 009 (nymchat/node/schema/
-- 009_group_watch.sql says what each column holds).
ALTER TABLE groups ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN watched_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE group_entries ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE group_entries SET position = seq WHERE post <> 4;
UPDATE groups SET position = coalesce(
    (SELECT max(position) FROM group_entries WHERE group_id = groups.group_id), 0);
CREATE INDEX group_entries_position ON group_entries (group_id, position);
