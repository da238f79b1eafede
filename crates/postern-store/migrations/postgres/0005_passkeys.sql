-- Passkeys (WebAuthn, issue 15): credentials per user, and the ceremonies
-- under way, kept server-side for 5 minutes, single use, bound to the
-- browser that started them.

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,           -- random id (forms, admin)
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   TEXT NOT NULL UNIQUE,       -- base64url WebAuthn credential id
    user_handle     TEXT NOT NULL,              -- the WebAuthn user handle given at registration
    passkey         TEXT NOT NULL,              -- webauthn-rs Passkey JSON: public key, counter, flags
    sign_count      BIGINT NOT NULL DEFAULT 0,
    backup_eligible BIGINT NOT NULL DEFAULT 0,  -- 1: may be synced to other devices
    backup_state    BIGINT NOT NULL DEFAULT 0,  -- 1: is backed up (synced) now
    transports      TEXT,                       -- comma-separated: internal, hybrid, usb, nfc, ble
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

CREATE TABLE passkey_challenges (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,                -- 'register' or 'authenticate'
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,   -- register only
    binding_hash  TEXT NOT NULL,                -- keyed hash of the browser's binding cookie
    state         TEXT NOT NULL,                -- ceremony state, encrypted under the master key
    flow          TEXT,                         -- JSON: the sign-in's authorization request
    ip            TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    consumed_at   BIGINT
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
