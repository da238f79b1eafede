-- /authorize counts a session's unredeemed codes for an app before it mints
-- another (a cap on what a signed-in browser can make the server store).
CREATE INDEX authorization_codes_session ON authorization_codes (session_id, client_id);
