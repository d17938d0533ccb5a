-- Users, their published keys, the offline queue and the seen request ids.
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    skeleton TEXT NOT NULL UNIQUE,
    identity BLOB NOT NULL UNIQUE,        -- Ed25519 signing key
    agreement BLOB NOT NULL,              -- X25519 key
    account_key BLOB NOT NULL,
    account_signature BLOB NOT NULL,
    fallback BLOB NOT NULL,               -- encoded one-time key
    sender_tag BLOB,                      -- from the latest fresh authenticated request
    tag_updated INTEGER,
    created INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE one_time_keys (
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    key_id INTEGER NOT NULL,
    encoded BLOB NOT NULL,
    PRIMARY KEY (username, key_id)
) WITHOUT ROWID;

CREATE TABLE queue (
    seq INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    message_id BLOB NOT NULL,
    sender TEXT NOT NULL,
    received INTEGER NOT NULL,            -- ms
    payload BLOB NOT NULL,
    pushes INTEGER NOT NULL DEFAULT 0,
    next_push INTEGER NOT NULL,           -- ms
    UNIQUE (recipient, message_id)
);
CREATE INDEX queue_next_push ON queue (next_push);

CREATE TABLE seen_requests (
    request_id BLOB PRIMARY KEY,
    expires INTEGER NOT NULL              -- ms
) WITHOUT ROWID;
CREATE INDEX seen_requests_expires ON seen_requests (expires);
