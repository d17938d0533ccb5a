-- The node's store on PostgreSQL: the tables of the SQLite schema after its migration 008
-- (nymchat/node/schema/), in PostgreSQL's types. Names are keyed hashes (store.NameHashes),
-- times are ms, flags are 0/1 integers. Ciphertext does not compress: payload columns are
-- stored out of line without trying (STORAGE EXTERNAL).
CREATE TABLE users (
    name_hash BYTEA PRIMARY KEY,
    skeleton_hash BYTEA NOT NULL UNIQUE,
    identity BYTEA NOT NULL UNIQUE,       -- Ed25519 signing key
    agreement BYTEA NOT NULL,             -- X25519 key
    agreement_signature BYTEA,            -- NULL: registered before it was asked for
    account_key BYTEA NOT NULL,
    account_signature BYTEA NOT NULL,
    fallback BYTEA NOT NULL,              -- encoded one-time key
    sender_tag BYTEA,                     -- route of the latest fresh signed request
    tag_updated BIGINT,
    created BIGINT NOT NULL,
    push_key BYTEA,
    access_verifier BYTEA,                -- NULL: no set_access yet, every send a stranger's
    strangers INTEGER NOT NULL DEFAULT 16, -- bits of work asked of strangers; 255: none taken
    home INTEGER                          -- the frontend of sender_tag (its first 2 bytes)
);
CREATE INDEX users_sender_tag ON users (sender_tag);
CREATE INDEX users_home ON users (home);

CREATE TABLE one_time_keys (
    name_hash BYTEA NOT NULL REFERENCES users (name_hash) ON DELETE CASCADE,
    key_id BIGINT NOT NULL,
    encoded BYTEA NOT NULL,
    PRIMARY KEY (name_hash, key_id)
);

CREATE TABLE queue (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient BYTEA NOT NULL REFERENCES users (name_hash) ON DELETE CASCADE,
    message_id BYTEA NOT NULL,
    received BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    size INTEGER NOT NULL,                -- length(payload)
    pushes INTEGER NOT NULL DEFAULT 0,
    next_push BIGINT NOT NULL,
    stranger INTEGER NOT NULL DEFAULT 0,  -- sent without the recipient's access key
    UNIQUE (recipient, message_id)
);
ALTER TABLE queue ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX queue_next_push ON queue (next_push);
-- a recipient's count and bytes, and their strangers' share, read from the index alone
CREATE INDEX queue_recipient ON queue (recipient) INCLUDE (stranger, size);

-- Payload bytes queued on the whole node: the sum of the shards, one per open store.
CREATE TABLE queue_totals (
    shard INTEGER PRIMARY KEY,
    bytes BIGINT NOT NULL
);

-- Per request id (as seen_key(request_id)) until `expires`: the digest of the request and
-- its answer, sealed under a key from the request id; a spent challenge has neither.
CREATE TABLE seen (
    key BYTEA PRIMARY KEY,
    digest BYTEA,
    answer BYTEA,
    expires BIGINT NOT NULL
);
CREATE INDEX seen_expires ON seen (expires);

-- Token buckets every node process takes from.
CREATE TABLE rate_limits (
    key BYTEA PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated BIGINT NOT NULL
);

-- Values the node processes share, such as the registration rate.
CREATE TABLE node_state (
    name TEXT PRIMARY KEY,
    value DOUBLE PRECISION NOT NULL,
    updated BIGINT NOT NULL
);

-- Every process's frontends (nym-clients), for the descriptor.
CREATE TABLE frontends (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    process TEXT NOT NULL,
    heartbeat BIGINT NOT NULL
);
