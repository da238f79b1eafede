-- Postern schema, PostgreSQL flavour. Same table and column names as sqlite/0001.
-- Times are unix seconds computed in Rust; ids are random strings made in Rust.

CREATE TABLE apps (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,          -- JSON of postern_core::AppSettings
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE app_secrets (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,          -- SHA-256 of a 256-bit random secret
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT                 -- set when rotated out
);
CREATE INDEX app_secrets_client ON app_secrets (client_id);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,   -- normalized (postern_core::EmailAddress)
    created_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT,
    disabled_at     BIGINT
);

CREATE TABLE login_requests (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    kind           TEXT NOT NULL,           -- 'link' or 'no_account'
    token_hash     TEXT NOT NULL UNIQUE,    -- keyed hash of the pml_ token
    code_hash      TEXT NOT NULL,           -- keyed hash of id || code
    code_attempts  BIGINT NOT NULL DEFAULT 0,
    redirect_uri   TEXT NOT NULL,
    state          TEXT,
    nonce          TEXT,
    code_challenge TEXT,
    scope          TEXT NOT NULL,
    locale         TEXT NOT NULL,
    auth_params    TEXT,                    -- JSON: the rest of an /authorize request
    ip             TEXT,
    user_agent     TEXT,
    binding_hash   TEXT,                    -- keyed hash of the asking browser's cookie
    remote_number  TEXT,                    -- device_policy = remote
    approved_at    BIGINT,
    completed_at   BIGINT,                 -- when an authorization code was issued for it
    rate_slot      TEXT,                    -- per-email rate-limit window to free on success
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);
CREATE INDEX login_requests_pair ON login_requests (client_id, email);
CREATE INDEX login_requests_binding ON login_requests (binding_hash);
CREATE INDEX login_requests_expires ON login_requests (expires_at);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,          -- public id (sid claim, listings)
    token_hash   TEXT NOT NULL UNIQUE,      -- keyed hash of the cookie / refresh secret
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT,                      -- headless sessions belong to one app
    subject      TEXT,                      -- the app's pairwise user id (headless)
    kind         TEXT NOT NULL,             -- 'browser' or 'headless'
    amr          TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,          -- absolute cap
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_subject ON sessions (client_id, subject);

CREATE TABLE grants (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     TEXT,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    scope          TEXT NOT NULL,
    amr            TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    family_id      TEXT,                    -- refresh-token family issued for it
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE sign_in_events (
    id         TEXT PRIMARY KEY,
    user_id    TEXT,
    client_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    method     TEXT NOT NULL,               -- 'link' or 'code'
    outcome    TEXT NOT NULL                -- 'success', 'denied', ...
);
CREATE INDEX sign_in_events_user ON sign_in_events (user_id, at);
CREATE INDEX sign_in_events_at ON sign_in_events (at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    private_key TEXT NOT NULL,              -- encrypted under the master key
    state       TEXT NOT NULL,              -- 'next', 'active', 'retired'
    created_at  BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at  BIGINT
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL,          -- stable Message-ID header
    payload         TEXT,                   -- encrypted message; NULL once delivered
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,       -- give up after (the link's expiry)
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE rate_limits (
    key          TEXT NOT NULL,             -- '<limit>:<keyed hash of the subject>'
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
