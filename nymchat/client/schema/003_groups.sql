-- MLS groups (issue 16). One sealed record per group (its MLS state, local name, the
-- names the roster gave, own posts, key update counters); rows found by blind indexes.
CREATE TABLE groups (
    id BLOB PRIMARY KEY,            -- blind index of the group id
    name BLOB NOT NULL UNIQUE,      -- blind index of the local name
    sealed BLOB NOT NULL
) WITHOUT ROWID;

-- Group log entries of an epoch we have not reached yet: taken in once the commit that
-- leads there is.
CREATE TABLE group_waiting (
    seq INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,         -- blind index of the group id
    epoch INTEGER NOT NULL,
    message_id BLOB NOT NULL UNIQUE,  -- blind index of the entry's id
    sealed BLOB NOT NULL
);
CREATE INDEX group_waiting_epoch ON group_waiting (group_id, epoch);
