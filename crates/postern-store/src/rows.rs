//! Records as the store reads and writes them.

/// A person, identified by one normalized email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Internal id (never shown to apps; they see pairwise subjects).
    pub id: String,
    /// Normalized address.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful sign-in.
    pub last_sign_in_at: Option<i64>,
    /// Set when an administrator disables the account.
    pub disabled_at: Option<i64>,
}

/// What a login request's email carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// A working link and code.
    Link,
    /// A "there is no account for this address" notice: nothing to redeem.
    NoAccount,
    /// An authorization request of a person already signed in, waiting on
    /// the consent screen: consumed at birth, never redeemable.
    Session,
}

/// One counted hit of a rate limit: the limit's key and the start of the
/// window it was counted in, so that it can be given back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSlot {
    /// The limit's key (`email:<keyed hash>`).
    pub key: String,
    /// Unix seconds at which its window starts.
    pub window_start: i64,
}

impl RateSlot {
    /// The stored form, `{key}@{window_start}` (keys never hold `@`).
    pub(crate) fn to_stored(&self) -> String {
        format!("{}@{}", self.key, self.window_start)
    }

    /// Reads the stored form; None when it is not one.
    pub(crate) fn from_stored(s: &str) -> Option<Self> {
        let (key, start) = s.rsplit_once('@')?;
        Some(RateSlot {
            key: key.to_owned(),
            window_start: start.parse().ok()?,
        })
    }
}

/// One pending sign-in attempt (SPEC §1). Secrets are only present as keyed
/// hashes, and those never leave the store except for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// Random id; also the `login_id` of the headless API.
    pub id: String,
    /// The app signing in.
    pub client_id: String,
    /// Normalized address.
    pub email: String,
    /// Link or no-account notice.
    pub kind: LoginKind,
    /// Made through the headless API (SPEC §3.4): the link goes to the
    /// app's redirect URI and only that app may redeem the request. Either
    /// kind can be headless, so this is its own field, not a kind.
    pub headless: bool,
    /// Issued by an administrator (SPEC §3.5 `sign-in-link`), not asked
    /// for by the person: history records it as `admin_link`, and a
    /// browser sign-in with it goes on to the app's `initiate_login_uri`
    /// (or `/account`) instead of back with a code.
    pub admin_issued: bool,
    /// Keyed hash of the `pml_` token.
    pub token_hash: String,
    /// Keyed hash of `id` and the 6-digit code.
    pub code_hash: String,
    /// Wrong codes tried so far.
    pub code_attempts: i64,
    /// Where the authorization response goes.
    pub redirect_uri: String,
    /// Client `state`.
    pub state: Option<String>,
    /// Client `nonce`.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Granted scope, canonical order.
    pub scope: String,
    /// Language for pages and email.
    pub locale: String,
    /// Asking IP.
    pub ip: Option<String>,
    /// Asking user agent.
    pub user_agent: Option<String>,
    /// Keyed hash of the asking browser's binding cookie.
    pub binding_hash: Option<String>,
    /// Two-digit number for `device_policy = remote`.
    pub remote_number: Option<String>,
    /// When a remote device approved it.
    pub approved_at: Option<i64>,
    /// When an authorization code (or a denial) was issued for it.
    pub completed_at: Option<i64>,
    /// The per-email rate-limit hit this request counted, given back when
    /// it signs someone in.
    pub rate_slot: Option<RateSlot>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once used, replaced or killed.
    pub consumed_at: Option<i64>,
}

impl LoginRequest {
    /// Whether it can still be redeemed at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.consumed_at.is_none() && self.expires_at > now
    }
}

/// A single-use authorization code (OIDC Core §3.1.2.5), stored hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// Keyed hash of the code.
    pub code_hash: String,
    /// App it was issued to.
    pub client_id: String,
    /// Signed-in user.
    pub user_id: String,
    /// Browser session it came from.
    pub session_id: Option<String>,
    /// Must match at `/token`.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Client nonce for the ID token.
    pub nonce: Option<String>,
    /// Granted scope.
    pub scope: String,
    /// `email` or `otp`.
    pub amr: String,
    /// When the person authenticated.
    pub auth_time: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once exchanged.
    pub consumed_at: Option<i64>,
}

/// A signed-in browser or headless session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id (`sid`).
    pub id: String,
    /// Keyed hash of the cookie or refresh secret.
    pub token_hash: String,
    /// Owner.
    pub user_id: String,
    /// App of a headless session.
    pub client_id: Option<String>,
    /// `browser` or `headless`.
    pub kind: String,
    /// `email` or `otp`.
    pub amr: String,
    /// When the person authenticated.
    pub auth_time: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// Absolute cap.
    pub expires_at: i64,
    /// IP at creation.
    pub ip: Option<String>,
    /// User agent at creation.
    pub user_agent: Option<String>,
    /// Set on sign-out.
    pub revoked_at: Option<i64>,
    /// Made by a "lost passkey" sign-in, or a passkey was made in it: it
    /// may enter an app that requires the passkey (issue 15) although its
    /// `amr` is `email` or `otp`.
    pub passkey_ok: bool,
}

/// One row of sign-in history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInEvent {
    /// Random id.
    pub id: String,
    /// User, when known.
    pub user_id: Option<String>,
    /// App.
    pub client_id: String,
    /// Unix seconds.
    pub at: i64,
    /// Person's IP.
    pub ip: Option<String>,
    /// Person's browser.
    pub user_agent: Option<String>,
    /// `link` or `code`.
    pub method: String,
    /// `success`, `denied`, ...
    pub outcome: String,
}

/// An email claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id.
    pub id: String,
    /// Stable `Message-ID` header value.
    pub message_id: String,
    /// Encrypted message (see postern-mail).
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// Give up after this time.
    pub expires_at: i64,
}

/// The outbox's backlog ([`crate::Queries::outbox_backlog`]), for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Messages neither sent nor given up.
    pub pending: i64,
    /// When the oldest of them was queued, unix seconds; `None` when none is.
    pub oldest_created_at: Option<i64>,
}

/// Counts of rows removed by [`crate::Queries::purge_expired`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Login requests.
    pub login_requests: u64,
    /// Authorization codes.
    pub authorization_codes: u64,
    /// Sessions.
    pub sessions: u64,
    /// Refresh tokens of revoked or purged sessions.
    pub refresh_tokens: u64,
    /// Outbox rows.
    pub outbox: u64,
    /// Rate-limit windows.
    pub rate_limits: u64,
    /// Sign-in events past retention.
    pub sign_in_events: u64,
    /// Revoked access tokens' `jti` past the token's expiry.
    pub revoked_access_tokens: u64,
}
