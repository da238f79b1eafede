//! One error type for every handler, rendered in one place.
//!
//! [`AppError`] renders the JSON shape of SPEC §3 and stores a copy of itself
//! in the response's extensions; the [`negotiate`](crate::middleware::negotiate)
//! middleware on browser routes turns that into an HTML page when the client
//! did not ask for JSON. Unexpected failures get a short reference id that is
//! logged with the whole cause and shown to the user; nothing internal reaches
//! the body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_core::App;
use postern_store::{LoginRequest, StoreError};
use serde::Serialize;

/// Every way a request can fail. Each variant's doc names its status and
/// SPEC error code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `invalid_request`: malformed or missing input.
    #[error("{0}")]
    InvalidRequest(String),
    /// 400 `invalid_client`: the client is unknown.
    #[error("Unknown client.")]
    InvalidClient,
    /// 400 `invalid_redirect_uri`: not registered for the client (exact match).
    #[error("The redirect URI is not registered for this client.")]
    InvalidRedirectUri,
    /// 400 `invalid_token`: expired, used, tampered or unknown link (SPEC §2).
    #[error("The magic link has expired or is invalid.")]
    InvalidToken(TokenProblem),
    /// 400 `invalid_code`: a wrong one-time code.
    #[error("The code is not correct.")]
    InvalidCode,
    /// 401 `invalid_client` with `WWW-Authenticate`: client authentication
    /// failed at `/token`, `/revoke` or `/introspect` (RFC 6749 §5.2).
    #[error("Client authentication failed.")]
    ClientAuth,
    /// 400 `invalid_grant`: a bad, used or expired code or refresh token.
    #[error("{0}")]
    InvalidGrant(String),
    /// 400 `unsupported_grant_type`.
    #[error("The grant type is not supported.")]
    UnsupportedGrantType,
    /// 400 `invalid_scope`: more scope than was granted.
    #[error("The requested scope exceeds what was granted.")]
    InvalidScope,
    /// 401 `invalid_request` with `WWW-Authenticate: Bearer realm="postern"`
    /// and no error code: the request carried no access token (RFC 6750 §3.1).
    #[error("An access token is required.")]
    NoBearer,
    /// 401 `invalid_token` with `WWW-Authenticate: Bearer` (RFC 6750 §3.1).
    #[error("The access token is invalid or expired.")]
    InvalidBearer,
    /// 401 `invalid_session`: a headless session token that is expired,
    /// revoked or not this app's (SPEC §3.4).
    #[error("The session is invalid, expired or revoked.")]
    InvalidSession,
    /// 403 `invalid_csrf`: a form without a valid CSRF token.
    #[error("This form has expired. Please go back, reload the page and try again.")]
    Csrf,
    /// 404 `not_found`.
    #[error("Not found.")]
    NotFound,
    /// 405 `method_not_allowed`.
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// 413 `invalid_request`: body over 64 KiB (SPEC §5).
    #[error("The request body is too large (64 KiB at most).")]
    PayloadTooLarge,
    /// 415 `invalid_request`: neither JSON nor a form.
    #[error(
        "Unsupported content type: send application/json or application/x-www-form-urlencoded."
    )]
    UnsupportedMediaType,
    /// 408 `invalid_request`: the request was not complete within
    /// [`REQUEST_DEADLINE`](crate::middleware::REQUEST_DEADLINE).
    #[error("The request took too long. Please try again.")]
    RequestTimeout,
    /// 429 `too_many_requests` with `Retry-After` seconds.
    #[error("Too many magic link requests. Please try again later.")]
    TooManyRequests {
        /// Seconds until the limit resets.
        retry_after: i64,
    },
    /// 503 `temporarily_unavailable`: the database could not be reached.
    #[error("The service is temporarily unavailable. Please try again shortly.")]
    Unavailable(#[source] StoreError),
    /// 500 `server_error`: a bug; logged with a reference id.
    #[error("Something went wrong on our side.")]
    Internal(String),
    /// Another error, plus the URL of a way forward for the HTML page (for
    /// a dead link: `/login` with the original destination).
    #[error("{0}")]
    WithRetry(Box<AppError>, String),
    /// Another error, plus the language of its HTML page when the handler
    /// knows it (the login request's, SPEC §3.3).
    #[error("{0}")]
    InLanguage(Box<AppError>, &'static str),
    /// Another error in the flow of an app: its HTML page wears the app's
    /// branding and speaks its default language when nothing else asks.
    /// Attached where the handler knows the app, so the error renderer
    /// never asks the database.
    #[error("{0}")]
    ForApp(Box<AppError>, Box<App>),
    /// Another error, plus facts its HTML page can tell the person.
    #[error("{0}")]
    WithHint(Box<AppError>, ErrorHint),
}

/// What an error's HTML page may add, when the handler knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorHint {
    /// A rate limit stopped a new email, but the newest one this browser
    /// asked for still works: its "check your email" page and its expiry.
    LiveEmail {
        /// `/login/check?id=…` of the live request.
        check_url: String,
        /// Unix seconds.
        expires_at: i64,
    },
}

/// Which of the indistinguishable link failures happened. The JSON answer is
/// the same for all; the HTML page says "expired" or "already used" where
/// that leaks nothing.
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
    /// `/verify-email` without a token: neither in the query nor in the
    /// short-lived cookie that keeps it out of the address bar.
    Missing,
}

impl TokenProblem {
    /// Why a used (consumed) link cannot be used, as the page of whoever
    /// opens it says: killed by wrong codes, stopped by a wrong number
    /// under `device_policy = remote`, or simply used (by a sign-in, or
    /// replaced by a newer link).
    pub fn of_dead_link(req: &LoginRequest) -> Self {
        if req.code_attempts >= crate::signin::CODE_TRIES_PER_REQUEST {
            TokenProblem::TooManyTries
        } else if stopped_by_wrong_number(req) {
            TokenProblem::WrongNumber
        } else {
            TokenProblem::Used
        }
    }
}

/// Whether a consumed `remote` request was killed by a wrong number typed
/// on the other device: it was never approved nor finished, and a wrong
/// answer was counted (a wrong number kills at its first count).
pub fn stopped_by_wrong_number(req: &LoginRequest) -> bool {
    req.consumed_at.is_some()
        && req.remote_number.is_some()
        && req.approved_at.is_none()
        && req.completed_at.is_none()
        && req.code_attempts > 0
        && req.code_attempts < crate::signin::CODE_TRIES_PER_REQUEST
}

/// Result of a handler.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// The SPEC §3 error body.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub error: &'static str,
    /// Human sentence.
    pub error_description: String,
}

/// A rendered error, kept in the response extensions for HTML negotiation.
#[derive(Debug, Clone)]
pub struct RenderedError {
    /// Status of the response.
    pub status: StatusCode,
    /// The JSON body.
    pub body: ErrorBody,
    /// Link problem, for the invalid-link page.
    pub token_problem: Option<TokenProblem>,
    /// A way forward for the HTML page.
    pub retry: Option<String>,
    /// `Retry-After` seconds of a 429, for "try again in 12 minutes".
    pub retry_after: Option<i64>,
    /// The reference id logged with an unexpected failure.
    pub reference: Option<String>,
    /// The page's language, when the handler knew it.
    pub lang: Option<&'static str>,
    /// The app whose flow failed, when the handler knew it.
    pub app: Option<Box<App>>,
    /// Facts the page may tell.
    pub hint: Option<ErrorHint>,
}

impl AppError {
    /// HTTP status and SPEC error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AppError::*;
        match self {
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            InvalidClient => (StatusCode::BAD_REQUEST, "invalid_client"),
            InvalidRedirectUri => (StatusCode::BAD_REQUEST, "invalid_redirect_uri"),
            InvalidToken(_) => (StatusCode::BAD_REQUEST, "invalid_token"),
            InvalidCode => (StatusCode::BAD_REQUEST, "invalid_code"),
            ClientAuth => (StatusCode::UNAUTHORIZED, "invalid_client"),
            InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
            UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            InvalidScope => (StatusCode::BAD_REQUEST, "invalid_scope"),
            InvalidBearer => (StatusCode::UNAUTHORIZED, "invalid_token"),
            NoBearer => (StatusCode::UNAUTHORIZED, "invalid_request"),
            InvalidSession => (StatusCode::UNAUTHORIZED, "invalid_session"),
            Csrf => (StatusCode::FORBIDDEN, "invalid_csrf"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request"),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
            TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            WithRetry(inner, _) | InLanguage(inner, _) | ForApp(inner, _) | WithHint(inner, _) => {
                inner.status_and_code()
            }
        }
    }

    /// Attaches a way forward shown on the HTML error page.
    pub fn with_retry(self, url: String) -> Self {
        AppError::WithRetry(Box::new(self), url)
    }

    /// Sets the language (a supported primary tag) of the HTML page.
    pub fn in_language(self, lang: &'static str) -> Self {
        AppError::InLanguage(Box::new(self), lang)
    }

    /// Attaches the app whose flow this is: the HTML page wears its brand.
    pub fn for_app(self, app: &App) -> Self {
        AppError::ForApp(Box::new(self), Box::new(app.clone()))
    }

    /// Attaches facts the HTML page may tell.
    pub fn with_hint(self, hint: ErrorHint) -> Self {
        AppError::WithHint(Box::new(self), hint)
    }

    /// The error without its page decorations (way forward, language, app).
    pub fn kind(&self) -> &AppError {
        match self {
            AppError::WithRetry(inner, _)
            | AppError::InLanguage(inner, _)
            | AppError::ForApp(inner, _)
            | AppError::WithHint(inner, _) => inner.kind(),
            other => other,
        }
    }

    /// An unexpected failure: `what` is logged, never shown.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        AppError::Internal(what.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(what) => AppError::Internal(format!("corrupt data: {what}")),
            other => AppError::Unavailable(other),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (mut this, mut retry, mut lang) = (self, None, None);
        let (mut app, mut hint) = (None, None);
        loop {
            match this {
                AppError::WithRetry(inner, url) => {
                    retry = retry.or(Some(url));
                    this = *inner;
                }
                AppError::InLanguage(inner, l) => {
                    lang = lang.or(Some(l));
                    this = *inner;
                }
                AppError::ForApp(inner, a) => {
                    app = app.or(Some(a));
                    this = *inner;
                }
                AppError::WithHint(inner, h) => {
                    hint = hint.or(Some(h));
                    this = *inner;
                }
                other => {
                    this = other;
                    break;
                }
            }
        }
        let (status, code) = this.status_and_code();
        let mut description = this.to_string();
        let mut reference = None;
        match &this {
            AppError::Internal(cause) => {
                let r = postern_core::crypto::random_token(6);
                tracing::error!(reference = %r, cause = %cause, "internal error");
                description = format!("{description} Reference: {r}.");
                reference = Some(r);
            }
            AppError::Unavailable(cause) => {
                let r = postern_core::crypto::random_token(6);
                tracing::error!(reference = %r, cause = %cause, "database unavailable");
                description = format!("{description} Reference: {r}.");
                reference = Some(r);
            }
            _ => {}
        }
        let body = ErrorBody {
            error: code,
            error_description: description,
        };
        let rendered = RenderedError {
            status,
            body: body.clone(),
            token_problem: match this {
                AppError::InvalidToken(p) => Some(p),
                _ => None,
            },
            retry,
            retry_after: match this {
                AppError::TooManyRequests { retry_after } => Some(retry_after.max(1)),
                _ => None,
            },
            reference,
            lang,
            app,
            hint,
        };
        let mut response = (status, Json(body)).into_response();
        match &this {
            AppError::ClientAuth => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"postern\""),
                );
            }
            AppError::InvalidBearer => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"postern\", error=\"invalid_token\""),
                );
            }
            AppError::RequestTimeout => {
                // RFC 9110 §15.5.9: a 408 closes the connection.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            AppError::NoBearer => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"postern\""),
                );
            }
            _ => {}
        }
        if let AppError::TooManyRequests { retry_after } = this {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        response.extensions_mut().insert(rendered);
        response
    }
}
