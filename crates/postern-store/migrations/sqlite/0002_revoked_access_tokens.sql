-- Access tokens revoked at /revoke (RFC 7009) before they expired: the
-- token's `jti` (not a secret: it names a token, it is not one), kept until
-- the token would have expired anyway, then purged.
CREATE TABLE revoked_access_tokens (
    jti         TEXT PRIMARY KEY,
    revoked_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
