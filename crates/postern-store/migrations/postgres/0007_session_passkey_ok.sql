-- Issue 15: a session made by a link or code may still enter an app that
-- requires the passkey when it stands for the passkey: a "lost passkey"
-- sign-in made it, or a passkey was made in it. 0 for every other session,
-- and for those made before this migration (they ask for the passkey).
ALTER TABLE sessions ADD COLUMN passkey_ok BIGINT NOT NULL DEFAULT 0;
