-- Groups: the tables of SQLite's migration 007 (nymchat/node/schema/007_groups.sql says
-- what each holds).
CREATE TABLE key_packages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name_hash BYTEA NOT NULL REFERENCES users (name_hash) ON DELETE CASCADE,
    key_package BYTEA NOT NULL,
    last_resort INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX key_packages_owner ON key_packages (name_hash, last_resort);

CREATE TABLE groups (
    group_id BYTEA PRIMARY KEY,
    epoch BIGINT NOT NULL,
    last_commit BYTEA NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE group_verifiers (
    group_id BYTEA NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    verifier BYTEA NOT NULL,
    PRIMARY KEY (group_id, epoch)
);

CREATE TABLE group_members (
    group_id BYTEA NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
    name_hash BYTEA NOT NULL REFERENCES users (name_hash) ON DELETE CASCADE,
    PRIMARY KEY (group_id, name_hash)
);
CREATE INDEX group_members_user ON group_members (name_hash);

CREATE TABLE group_entries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    post INTEGER NOT NULL,
    message_id BYTEA NOT NULL,
    received BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    UNIQUE (group_id, message_id, post)
);
ALTER TABLE group_entries ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX group_entries_received ON group_entries (received);
CREATE INDEX group_entries_message ON group_entries (message_id);

CREATE TABLE group_deliveries (
    recipient BYTEA NOT NULL REFERENCES users (name_hash) ON DELETE CASCADE,
    entry BIGINT NOT NULL REFERENCES group_entries (seq) ON DELETE CASCADE,
    pushes INTEGER NOT NULL DEFAULT 0,
    next_push BIGINT NOT NULL,
    PRIMARY KEY (recipient, entry)
);
CREATE INDEX group_deliveries_entry ON group_deliveries (entry);
CREATE INDEX group_deliveries_next_push ON group_deliveries (next_push);
