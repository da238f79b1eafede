//! What went wrong, in the product's words: one domain error for every
//! service. It names the failure and carries the data a face needs to offer
//! a way forward (the sign-in a dead link belonged to, the tries left, the
//! seconds until a limit resets), never an HTTP status, a URL or a page.
//! The web crate renders it in one place.

use postern_store::StoreError;

/// Every way a service call can fail.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The caller sent malformed or missing input.
    #[error("{0}")]
    InvalidRequest(RequestProblem),
    /// The client id names no app.
    #[error("Unknown client.")]
    UnknownClient,
    /// The redirect URI is not registered for the app (exact match).
    #[error("The redirect URI is not registered for this client.")]
    RedirectUriNotRegistered,
    /// Another failure, met in the flow of a known app: its page wears the
    /// app's brand and falls back to its default language (SPEC §3.3), so
    /// the face needs no lookup to say it.
    #[error("{error}")]
    InApp {
        /// The app.
        app: Box<postern_core::App>,
        /// What went wrong.
        error: Box<AuthError>,
    },
    /// A link, login id or consent that cannot be used (SPEC §2): the
    /// answer is the same whichever problem it is, a page may say more.
    #[error("The magic link has expired or is invalid.")]
    Token {
        /// Which problem, for the page.
        problem: TokenProblem,
        /// The sign-in it belonged to, when that is safe to offer again.
        flow: Option<Box<Flow>>,
    },
    /// A wrong one-time code, with tries left on this request.
    #[error("The code is not correct.")]
    WrongCode {
        /// Wrong codes the request still survives.
        tries_left: i64,
    },
    /// Client authentication failed (RFC 6749 §5.2).
    #[error("Client authentication failed.")]
    ClientAuth,
    /// A bad, used or expired code or refresh token (RFC 6749 §5.2).
    #[error("{0}")]
    Grant(GrantError),
    /// The grant type is not one Postern supports.
    #[error("The grant type is not supported.")]
    UnsupportedGrantType,
    /// More scope than was granted.
    #[error("The requested scope exceeds what was granted.")]
    InvalidScope,
    /// An access token that is invalid, expired or whose session ended.
    #[error("The access token is invalid or expired.")]
    InvalidAccessToken,
    /// A headless session token that is invalid, expired, revoked or not
    /// this app's (SPEC §3.4).
    #[error("The session is invalid, expired or revoked.")]
    InvalidSession,
    /// Nothing of that name that the caller may see.
    #[error("Not found.")]
    NotFound,
    /// Administration without credentials, or with a bad, expired or
    /// revoked admin token (SPEC §3.5: 401 `invalid_token`).
    #[error("Sign in as an administrator or send an admin token.")]
    AdminUnauthenticated,
    /// Signed in, but not allowed to do this (SPEC §3.5: 403 `forbidden`).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The change conflicts with the state of the thing (SPEC §3.5: 409
    /// `conflict`); the text says how.
    #[error("{0}")]
    Conflict(String),
    /// The app is disabled: it signs no one in (SPEC §3.6).
    #[error("This app is disabled.")]
    AppDisabled,
    /// A passkey ceremony failed (issue 15).
    #[error("{}", .0.describe())]
    Passkey(crate::passkeys::PasskeyProblem),
    /// The app asks for the person's passkey: a link or code alone does
    /// not sign them in (`passkeys = required_after_first_sign_in`).
    #[error("This app asks you to sign in with your passkey.")]
    PasskeyRequired {
        /// The sign-in that was refused, to offer a passkey instead.
        flow: Box<Flow>,
    },
    /// A rate limit is full (SPEC §2).
    #[error("Too many magic link requests. Please try again later.")]
    RateLimited {
        /// Seconds until the limit resets.
        retry_after: i64,
    },
    /// The database could not be reached.
    #[error("The service is temporarily unavailable. Please try again shortly.")]
    Unavailable(#[source] StoreError),
    /// A bug or a broken invariant: logged, never shown.
    #[error("Something went wrong on our side.")]
    Internal(String),
    /// An authorization request that failed once its client and redirect
    /// URI were valid: the app is told at its redirect URI (RFC 6749
    /// §4.1.2.1), never the person.
    #[error("{}", describe(.0))]
    AtClient(Box<crate::response::AuthorizationResponse>),
}

fn describe(r: &crate::response::AuthorizationResponse) -> String {
    match &r.answer {
        crate::response::Answer::Error { description, .. } => description.clone(),
        crate::response::Answer::Code(_) => String::new(),
    }
}

/// What was wrong with the input. Its text is the `error_description` a
/// developer reads (RFC 6749 §5.2); people see pages instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    /// A required parameter is missing or empty.
    #[error("{0} is required.")]
    Missing(&'static str),
    /// A parameter failed its check; the text says how.
    #[error("{0}")]
    Invalid(String),
}

/// Which of the indistinguishable link failures happened. API answers are
/// the same for all; a page says "expired" or "already used" where that
/// leaks nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Unknown, malformed or tampered.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// Already used or replaced by a newer link (what the link's page says).
    Used,
    /// A code typed on the check page whose request was already used.
    CodeUsed,
    /// The asking browser's request was used by a sign-in on another
    /// device ("You finished signing in on another device").
    FinishedElsewhere,
    /// Killed by too many wrong codes.
    TooManyTries,
    /// `device_policy = remote`, seen from the asking browser: a wrong number
    /// was typed on the other device and the request was killed.
    StoppedByWrongNumber,
    /// `device_policy = remote`: a wrong number was typed on another device
    /// and the request was killed (SPEC §3.1).
    WrongNumber,
    /// `/verify-email` without a token.
    Missing,
}

impl TokenProblem {
    /// Why a used (consumed) link cannot be used, as the page of whoever
    /// opens it says: killed by wrong codes, stopped by a wrong number
    /// under `device_policy = remote`, or simply used (by a sign-in, or
    /// replaced by a newer link).
    pub fn of_dead_link(req: &postern_store::LoginRequest) -> Self {
        if req.code_attempts >= crate::signin::CODE_TRIES_PER_REQUEST {
            TokenProblem::TooManyTries
        } else if stopped_by_wrong_number(req) {
            TokenProblem::WrongNumber
        } else {
            TokenProblem::Used
        }
    }

    /// The error page's title and text for this problem, in `t`'s language.
    pub fn words(self, t: &postern_core::i18n::Strings) -> (&'static str, &'static str) {
        match self {
            TokenProblem::Expired => (t.expired_title, t.expired_text),
            TokenProblem::Used => (t.used_title, t.used_text),
            TokenProblem::CodeUsed => (t.code_used_title, t.code_used_text),
            TokenProblem::FinishedElsewhere => (t.finished_title, t.finished_text),
            TokenProblem::TooManyTries => (t.too_many_tries_title, t.too_many_tries_text),
            TokenProblem::StoppedByWrongNumber => (t.stopped_title, t.stopped_text),
            TokenProblem::Unknown => (t.unknown_title, t.unknown_text),
            TokenProblem::WrongNumber => (t.wrong_number_title, t.wrong_number_text),
            TokenProblem::Missing => (t.no_link_title, t.no_link_text),
        }
    }
}

/// Whether a consumed `remote` request was killed by a wrong number typed
/// on the other device: it was never approved nor finished, and a wrong
/// answer was counted (a wrong number kills at its first count).
pub fn stopped_by_wrong_number(req: &postern_store::LoginRequest) -> bool {
    req.consumed_at.is_some()
        && req.remote_number.is_some()
        && req.approved_at.is_none()
        && req.completed_at.is_none()
        && req.code_attempts > 0
        && req.code_attempts < crate::signin::CODE_TRIES_PER_REQUEST
}

/// The sign-in a dead link or code belonged to: a face can start it again
/// ("send a new link") in the same language, without asking the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The app.
    pub client_id: String,
    /// Its registered redirect URI.
    pub redirect_uri: String,
    /// Scope asked.
    pub scope: String,
    /// Client `state`.
    pub state: Option<String>,
    /// Client `nonce`.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The language the sign-in ran in.
    pub locale: String,
    /// The address it was for.
    pub email: String,
}

impl Flow {
    /// The query of this sign-in's authorization request: `lead` first,
    /// then the app, destination, scope, `state`, `nonce`, PKCE and
    /// language, then `login_hint` — for `/login` ("send a new link") and
    /// `/authorize` (continuing it).
    pub fn query(&self, lead: Option<(&str, &str)>, login_hint: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some((k, v)) = lead {
            q.append_pair(k, v);
        }
        q.append_pair("client_id", &self.client_id);
        q.append_pair("redirect_uri", &self.redirect_uri);
        q.append_pair("scope", &self.scope);
        for (k, v) in [
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        if self.code_challenge.is_some() {
            q.append_pair("code_challenge_method", "S256");
        }
        q.append_pair("ui_locales", &self.locale);
        if let Some(e) = login_hint {
            q.append_pair("login_hint", e);
        }
        q.finish()
    }
}

/// Why a code or refresh token grants nothing (RFC 6749 §5.2
/// `invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Unknown, expired or already used code.
    #[error("The authorization code is invalid, expired or already used.")]
    CodeUnusable,
    /// The code belongs to another client.
    #[error("The authorization code was issued to another client.")]
    CodeOfAnotherClient,
    /// `redirect_uri` differs from the authorization request's.
    #[error("redirect_uri does not match the authorization request.")]
    RedirectUriMismatch,
    /// The PKCE verifier is missing or does not match.
    #[error("The PKCE code_verifier is missing or wrong.")]
    PkceMismatch,
    /// A verifier for a code issued without PKCE (RFC 9700 §4.8.2).
    #[error("code_verifier sent for a code issued without PKCE.")]
    PkceDowngrade,
    /// A public client without PKCE.
    #[error("Public clients must use PKCE.")]
    PkceRequired,
    /// The browser session the code came from has ended.
    #[error("The session behind this code has ended.")]
    CodeSessionEnded,
    /// The session behind a refresh token has ended.
    #[error("The session has ended.")]
    SessionEnded,
    /// The session is older than the app's cap (SPEC §2).
    #[error("The session is older than this app allows.")]
    SessionTooOld,
    /// The user was deleted or disabled.
    #[error("The user is not available.")]
    UserUnavailable,
    /// Unknown, used or revoked refresh token.
    #[error("The refresh token is invalid, expired or already used.")]
    RefreshUnusable,
    /// The refresh token belongs to another client.
    #[error("The refresh token was issued to another client.")]
    RefreshOfAnotherClient,
}

impl AuthError {
    /// A token problem with no way forward.
    pub fn token(problem: TokenProblem) -> Self {
        AuthError::Token {
            problem,
            flow: None,
        }
    }

    /// A token problem with the sign-in it belonged to.
    pub fn token_in(problem: TokenProblem, flow: Flow) -> Self {
        AuthError::Token {
            problem,
            flow: Some(Box::new(flow)),
        }
    }

    /// A missing parameter.
    pub fn missing(name: &'static str) -> Self {
        AuthError::InvalidRequest(RequestProblem::Missing(name))
    }

    /// 403: not allowed.
    pub fn forbidden() -> Self {
        AuthError::Forbidden("You are not allowed to do this.")
    }

    /// 409 with its reason.
    pub fn conflict(what: impl Into<String>) -> Self {
        AuthError::Conflict(what.into())
    }

    /// A field that failed its check, named in the text.
    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        AuthError::invalid(format!("{field}: {why}"))
    }

    /// A parameter that failed its check.
    pub fn invalid(what: impl Into<String>) -> Self {
        AuthError::InvalidRequest(RequestProblem::Invalid(what.into()))
    }

    /// `error`, met while checking a request for `app`.
    pub fn in_app(app: &postern_core::App, error: AuthError) -> Self {
        match error {
            already @ AuthError::InApp { .. } => already,
            error => AuthError::InApp {
                app: Box::new(app.clone()),
                error: Box::new(error),
            },
        }
    }

    /// The failure itself, without the app it was met for.
    pub fn inner(&self) -> &AuthError {
        match self {
            AuthError::InApp { error, .. } => error.inner(),
            other => other,
        }
    }

    /// The failure itself, owned.
    pub fn into_inner(self) -> AuthError {
        match self {
            AuthError::InApp { error, .. } => error.into_inner(),
            other => other,
        }
    }

    /// An unexpected failure: `what` is logged, never shown.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        AuthError::Internal(what.to_string())
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(what) => AuthError::Internal(format!("corrupt data: {what}")),
            other => AuthError::Unavailable(other),
        }
    }
}

impl From<GrantError> for AuthError {
    fn from(e: GrantError) -> Self {
        AuthError::Grant(e)
    }
}

impl From<crate::keys::KeyError> for AuthError {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::Store(e) => e.into(),
            other => AuthError::internal(other),
        }
    }
}

/// Result of a service call.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
