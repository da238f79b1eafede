-- After a master-key rotation (`postern master-key rotate`): the key under
-- which keyed hashes (link tokens, codes, cookies, client secrets, pairwise
-- subjects) are computed, sealed under the current master key, so that they
-- keep matching. No row: that key is derived from the master key itself.
CREATE TABLE master_key_state (
    id          INTEGER PRIMARY KEY,        -- always 1
    hash_key    TEXT NOT NULL,              -- encrypted under the master key
    rotated_at  INTEGER NOT NULL
);
