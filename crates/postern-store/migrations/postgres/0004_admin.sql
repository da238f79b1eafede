-- Administration (SPEC §3.5): admin tokens, the audit log, and what the
-- admin lists need. Users already have disabled_at; sign-in history's
-- method and outcome are free text ('admin_link', 'wrong_code', ...).

-- Admin tokens (pat_...): only a keyed hash of the token is kept.
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,       -- keyed hash of the pat_ token
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    last_used_at BIGINT
);

-- Every change made through the panel, the API or the CLI.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,              -- admin address, 'token:<name>', 'cli'
    action      TEXT NOT NULL,              -- 'app.update', 'user.disable', ...
    target      TEXT,                       -- client_id, user id, session id, ...
    ip          TEXT,
    detail      TEXT                        -- JSON: what changed (never a secret)
);
CREATE INDEX audit_log_at ON audit_log (at, id);

-- The outbox lists show an app and a masked recipient without decrypting.
ALTER TABLE outbox ADD COLUMN client_id TEXT;
ALTER TABLE outbox ADD COLUMN recipient_hint TEXT;  -- 'j***@example.com'

CREATE INDEX sign_in_events_client ON sign_in_events (client_id, at);
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX sessions_created ON sessions (created_at, id);
