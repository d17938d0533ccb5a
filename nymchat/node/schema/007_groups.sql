-- Groups (issue 16): the node as MLS delivery service. Key packages are opaque bytes, each
-- handed out once but the last resort; a group is a random id, its epoch, the verifiers of
-- its last access keys and its members' queues (name hashes); what is posted to it is
-- stored once (an entry) with a delivery row per recipient, gone when no delivery needs it
-- (GroupStore deletes an emptied group and an entry no one needs with what emptied it).
CREATE TABLE key_packages (
    seq INTEGER PRIMARY KEY,
    name_hash BLOB NOT NULL REFERENCES users(name_hash) ON DELETE CASCADE,
    key_package BLOB NOT NULL,
    last_resort INTEGER NOT NULL DEFAULT 0  -- 1: handed out again and again, at most one
);
CREATE INDEX key_packages_owner ON key_packages (name_hash, last_resort);

CREATE TABLE groups (
    group_id BLOB PRIMARY KEY,            -- 32 random bytes, the creator's
    epoch INTEGER NOT NULL,
    last_commit BLOB NOT NULL,            -- message id of the commit that led to `epoch`
    created INTEGER NOT NULL              -- ms
) WITHOUT ROWID;

-- wire.access_verifier of the group's access key of each kept epoch (the last 4)
CREATE TABLE group_verifiers (
    group_id BLOB NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    verifier BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch)
) WITHOUT ROWID;

CREATE TABLE group_members (
    group_id BLOB NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    name_hash BLOB NOT NULL REFERENCES users(name_hash) ON DELETE CASCADE,
    PRIMARY KEY (group_id, name_hash)
) WITHOUT ROWID;
CREATE INDEX group_members_user ON group_members (name_hash);

CREATE TABLE group_entries (
    seq INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,               -- outlives its group while a delivery needs it
    epoch INTEGER NOT NULL,
    post INTEGER NOT NULL,                -- wire.GroupPost
    message_id BLOB NOT NULL,             -- a commit's Welcome shares its commit's
    received INTEGER NOT NULL,            -- ms
    payload BLOB NOT NULL,
    UNIQUE (group_id, message_id, post)
);
CREATE INDEX group_entries_received ON group_entries (received);
CREATE INDEX group_entries_message ON group_entries (message_id);

CREATE TABLE group_deliveries (
    recipient BLOB NOT NULL REFERENCES users(name_hash) ON DELETE CASCADE,
    entry INTEGER NOT NULL REFERENCES group_entries(seq) ON DELETE CASCADE,
    pushes INTEGER NOT NULL DEFAULT 0,
    next_push INTEGER NOT NULL,           -- ms
    PRIMARY KEY (recipient, entry)
) WITHOUT ROWID;
CREATE INDEX group_deliveries_entry ON group_deliveries (entry);
CREATE INDEX group_deliveries_next_push ON group_deliveries (next_push);
