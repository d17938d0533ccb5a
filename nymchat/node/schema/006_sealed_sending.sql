-- Sealed sending (issue 15): the node keeps no sender and no name in clear. Users, their
-- one-time keys and the queue are keyed by a keyed hash of the name (`name_hash`, and
-- `skeleton_hash` of the look-alike skeleton: SQL functions registered by NodeStore under
-- the node's name key). Each user gets an access verifier and a policy for strangers; the
-- seen request ids become an answer cache, keyed and sealed by the request id
-- (`seen_key`); the known-senders pairs go with the per-sender shares.
CREATE TABLE users_new (
    name_hash BLOB PRIMARY KEY,           -- HMAC(name key, "name\0" || username)
    skeleton_hash BLOB NOT NULL UNIQUE,   -- HMAC(name key, "skeleton\0" || skeleton)
    identity BLOB NOT NULL UNIQUE,        -- Ed25519 signing key
    agreement BLOB NOT NULL,              -- X25519 key
    agreement_signature BLOB,             -- NULL: registered before it was asked for
    account_key BLOB NOT NULL,
    account_signature BLOB NOT NULL,
    fallback BLOB NOT NULL,               -- encoded one-time key
    sender_tag BLOB,                      -- route of the latest fresh signed request
    tag_updated INTEGER,
    created INTEGER NOT NULL,
    queued_messages INTEGER NOT NULL DEFAULT 0,
    queued_bytes INTEGER NOT NULL DEFAULT 0,
    push_key BLOB,
    access_verifier BLOB,                 -- NULL: no set_access yet, every send a stranger's
    strangers INTEGER NOT NULL DEFAULT 16 -- bits of work asked of strangers; 255: none taken
) WITHOUT ROWID;
INSERT INTO users_new (name_hash, skeleton_hash, identity, agreement, account_key,
                       account_signature, fallback, sender_tag, tag_updated, created,
                       queued_messages, queued_bytes, push_key)
    SELECT name_hash(username), skeleton_hash(skeleton), identity, agreement, account_key,
           account_signature, fallback, sender_tag, tag_updated, created, queued_messages,
           queued_bytes, push_key
    FROM users;

CREATE TABLE one_time_keys_new (
    name_hash BLOB NOT NULL REFERENCES users_new(name_hash) ON DELETE CASCADE,
    key_id INTEGER NOT NULL,
    encoded BLOB NOT NULL,
    PRIMARY KEY (name_hash, key_id)
) WITHOUT ROWID;
INSERT INTO one_time_keys_new SELECT name_hash(username), key_id, encoded FROM one_time_keys;

CREATE TABLE queue_new (
    seq INTEGER PRIMARY KEY,
    recipient BLOB NOT NULL REFERENCES users_new(name_hash) ON DELETE CASCADE,
    message_id BLOB NOT NULL,
    received INTEGER NOT NULL,            -- ms
    payload BLOB NOT NULL,
    pushes INTEGER NOT NULL DEFAULT 0,
    next_push INTEGER NOT NULL,           -- ms
    stranger INTEGER NOT NULL DEFAULT 0,  -- sent without the recipient's access key
    UNIQUE (recipient, message_id)
);
INSERT INTO queue_new (seq, recipient, message_id, received, payload, pushes, next_push,
                       stranger)
    SELECT seq, name_hash(recipient), message_id, received, payload, pushes, next_push,
           stranger
    FROM queue;

-- Per request id (as seen_key(request_id)) until `expires`: the digest of the request and
-- its answer, sealed under a key from the request id; a spent challenge has neither.
CREATE TABLE seen_new (
    key BLOB PRIMARY KEY,
    digest BLOB,
    answer BLOB,
    expires INTEGER NOT NULL              -- ms
) WITHOUT ROWID;
INSERT INTO seen_new (key, expires) SELECT seen_key(request_id), expires FROM seen_requests;

DROP TABLE queue;
DROP TABLE one_time_keys;
DROP TABLE users;
DROP TABLE seen_requests;
DROP TABLE known_senders;
DROP TABLE recent_pushes;
ALTER TABLE users_new RENAME TO users;
ALTER TABLE one_time_keys_new RENAME TO one_time_keys;
ALTER TABLE queue_new RENAME TO queue;
ALTER TABLE seen_new RENAME TO seen;
CREATE INDEX queue_next_push ON queue (next_push);
CREATE INDEX queue_stranger ON queue (recipient, stranger);
CREATE INDEX users_sender_tag ON users (sender_tag);
CREATE INDEX seen_expires ON seen (expires);
