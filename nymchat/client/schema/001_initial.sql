-- Client data. Every sensitive value is sealed (XChaCha20-Poly1305 under the profile's
-- storage key); rows are found by blind indexes (keyed HMACs), never by plaintext names.
CREATE TABLE kv (
    name BLOB PRIMARY KEY,          -- blind index of the setting's name
    sealed BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE contacts (
    id BLOB PRIMARY KEY,            -- blind index of the username
    sealed BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
    contact BLOB NOT NULL,
    session_id BLOB NOT NULL,       -- blind index of the session id
    updated INTEGER NOT NULL,
    sealed BLOB NOT NULL,           -- the encrypted session pickle
    PRIMARY KEY (contact, session_id)
) WITHOUT ROWID;

CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    contact BLOB NOT NULL,
    message_id BLOB NOT NULL UNIQUE,  -- blind index of the message id: duplicates are dropped
    sealed BLOB NOT NULL
);
CREATE INDEX messages_contact ON messages (contact, seq);
