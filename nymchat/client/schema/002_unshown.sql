-- Messages taken in but not yet shown to the user (a process can die in between): shown
-- by the next `inbox` or follower. Rows are the blind message ids of `messages`.
CREATE TABLE unshown (
    message_id BLOB PRIMARY KEY
) WITHOUT ROWID;
