-- Skeletons by the look-alike rule of nymchat/protocol/names.py (TR39 confusables, letters
-- read as one, separators folded), recomputed for the users registered under the old rule;
-- `name_skeleton` is that function, registered by NodeStore. Two existing users whose names
-- now look alike both keep their accounts: the one registered first holds the skeleton (so
-- it blocks new look-alikes), a later one's row gets its own name after a space, which no
-- skeleton contains, to keep the column unique. First every row gets a placeholder no
-- skeleton can equal ('#' is not in the alphabet), so no update collides on the way.
UPDATE users SET skeleton = '#' || username;
UPDATE users SET skeleton = ranked.look || CASE WHEN ranked.n > 1 THEN ' ' || users.username
                                                ELSE '' END
FROM (SELECT username, name_skeleton(username) AS look,
             row_number() OVER (PARTITION BY name_skeleton(username)
                                ORDER BY created, username) AS n
      FROM users) AS ranked
WHERE ranked.username = users.username;
