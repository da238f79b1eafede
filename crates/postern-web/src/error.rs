//! One error type for every handler, rendered in one place.
//!
//! [`AppError`] renders the JSON shape of SPEC §3 and stores a copy of itself
//! in the response's extensions; the [`negotiate`](crate::middleware::negotiate)
//! middleware on browser routes turns that into an HTML page when the client
//! did not ask for JSON. Unexpected failures get a short reference id that is
//! logged with the whole cause and shown to the user; nothing internal reaches
//! the body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use postern_auth::{AuthError, Flow};
use postern_core::App;
use serde::Serialize;

/// Every way a request can fail: what a service said ([`AppError::Auth`])
/// or what only HTTP can get wrong. Each variant's doc names its status and
/// SPEC error code; [`AppError::status_and_code`] maps the services' errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// What a service said went wrong; its status and code are
    /// [`auth_status_and_code`]'s.
    #[error("{0}")]
    Auth(AuthError),
    /// 400 `invalid_request`: malformed or missing input.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401 `invalid_request` with `WWW-Authenticate: Bearer realm="postern"`
    /// and no error code: the request carried no access token (RFC 6750 §3.1).
    #[error("An access token is required.")]
    NoBearer,
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
    /// Another error, plus the URL of a way forward for the HTML page.
    #[error("{0}")]
    WithRetry(Box<AppError>, String),
    /// Another error, plus the language of its HTML page when the handler
    /// knows it (the login request's, SPEC §3.3).
    #[error("{0}")]
    InLanguage(Box<AppError>, &'static str),
    /// Another error in the flow of an app: its HTML page wears the app's
    /// branding and speaks its default language when nothing else asks.
    /// Attached where the handler or service knows the app, so the error
    /// renderer never asks the database.
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

pub use postern_auth::TokenProblem;

/// Result of a handler.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// The SPEC §3 error body: `{"error": "<code>", "error_description": "<human sentence>"}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `invalid_request`, `invalid_client`, `invalid_token`, …
    #[schema(value_type = String)]
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
    /// A way forward for the HTML page, when the handler gave one.
    pub retry: Option<String>,
    /// The sign-in a dead link belonged to: its way forward is a fresh
    /// start of the same sign-in, in its language.
    pub flow: Option<Flow>,
    /// `Retry-After` seconds of a 429, for "try again in 12 minutes".
    pub retry_after: Option<i64>,
    /// Wrong codes the request still survives.
    pub tries_left: Option<i64>,
    /// The reference id logged with an unexpected failure.
    pub reference: Option<String>,
    /// The page's language, when the handler knew it.
    pub lang: Option<&'static str>,
    /// The app whose flow failed, when the handler knew it.
    pub app: Option<Box<App>>,
    /// Facts the page may tell.
    pub hint: Option<ErrorHint>,
}

/// HTTP status and SPEC error code of what a service said went wrong.
pub fn auth_status_and_code(e: &AuthError) -> (StatusCode, &'static str) {
    use AuthError::*;
    match e {
        InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        UnknownClient => (StatusCode::BAD_REQUEST, "invalid_client"),
        RedirectUriNotRegistered => (StatusCode::BAD_REQUEST, "invalid_redirect_uri"),
        InApp { error, .. } => auth_status_and_code(error),
        Token { .. } => (StatusCode::BAD_REQUEST, "invalid_token"),
        WrongCode { .. } => (StatusCode::BAD_REQUEST, "invalid_code"),
        ClientAuth => (StatusCode::UNAUTHORIZED, "invalid_client"),
        Grant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
        UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        InvalidScope => (StatusCode::BAD_REQUEST, "invalid_scope"),
        InvalidAccessToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
        InvalidSession => (StatusCode::UNAUTHORIZED, "invalid_session"),
        NotFound => (StatusCode::NOT_FOUND, "not_found"),
        AdminUnauthenticated => (StatusCode::UNAUTHORIZED, "invalid_token"),
        Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        AppDisabled => (StatusCode::BAD_REQUEST, "invalid_client"),
        Passkey(_) => (StatusCode::BAD_REQUEST, "invalid_passkey"),
        PasskeyRequired { .. } => (StatusCode::FORBIDDEN, "passkey_required"),
        RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        // Rendered as a redirect to the app; never an error body.
        AtClient(_) => (StatusCode::SEE_OTHER, "invalid_request"),
    }
}

impl AppError {
    /// HTTP status and SPEC error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AppError::*;
        match self {
            Auth(e) => auth_status_and_code(e),
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            NoBearer => (StatusCode::UNAUTHORIZED, "invalid_request"),
            Csrf => (StatusCode::FORBIDDEN, "invalid_csrf"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request"),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
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

    /// A link, login id or form token that cannot be used.
    pub fn token(problem: TokenProblem) -> Self {
        AppError::Auth(AuthError::token(problem))
    }

    /// An unexpected failure: `what` is logged, never shown.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        AppError::Auth(AuthError::internal(what))
    }

    /// What a service said, if this is that.
    pub fn auth(&self) -> Option<&AuthError> {
        match self {
            AppError::Auth(e) => Some(e.inner()),
            AppError::WithRetry(inner, _)
            | AppError::InLanguage(inner, _)
            | AppError::ForApp(inner, _)
            | AppError::WithHint(inner, _) => inner.auth(),
            _ => None,
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InApp { app, error } => {
                AppError::ForApp(Box::new(AppError::from(*error)), app)
            }
            other => AppError::Auth(other),
        }
    }
}

impl From<postern_store::StoreError> for AppError {
    fn from(e: postern_store::StoreError) -> Self {
        AppError::Auth(e.into())
    }
}

impl IntoResponse for AppError {
    /// The one place an error becomes a response: the SPEC §3 JSON body
    /// (with `WWW-Authenticate` or `Retry-After` where the protocol asks),
    /// or a redirect to the app's validated redirect URI for an
    /// authorization request that failed there. A copy goes into the
    /// response extensions; on browser routes the
    /// [`negotiate`](crate::middleware::negotiate) layer turns it into a page,
    /// from that copy alone.
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
        if let AppError::Auth(AuthError::AtClient(answer)) = &this {
            return Redirect::to(&answer.to_url()).into_response();
        }
        let (status, code) = this.status_and_code();
        let mut description = this.to_string();
        let mut reference = None;
        let cause = match &this {
            AppError::Auth(AuthError::Internal(cause)) => Some(("internal error", cause.clone())),
            AppError::Auth(AuthError::Unavailable(cause)) => {
                Some(("database unavailable", cause.to_string()))
            }
            _ => None,
        };
        if let Some((what, cause)) = cause {
            let r = postern_core::crypto::random_token(6);
            tracing::error!(reference = %r, cause = %cause, "{what}");
            description = format!("{description} Reference: {r}.");
            reference = Some(r);
        }
        let body = ErrorBody {
            error: code,
            error_description: description,
        };
        let auth = match &this {
            AppError::Auth(e) => Some(e),
            _ => None,
        };
        let retry_after = match auth {
            Some(AuthError::RateLimited { retry_after }) => Some((*retry_after).max(1)),
            _ => None,
        };
        let rendered = RenderedError {
            status,
            body: body.clone(),
            token_problem: match auth {
                Some(AuthError::Token { problem, .. }) => Some(*problem),
                _ => None,
            },
            retry,
            flow: match auth {
                Some(AuthError::Token {
                    flow: Some(flow), ..
                }) => Some((**flow).clone()),
                _ => None,
            },
            retry_after,
            tries_left: match auth {
                Some(AuthError::WrongCode { tries_left }) => Some(*tries_left),
                _ => None,
            },
            reference,
            lang,
            app,
            hint,
        };
        let mut response = (status, Json(body)).into_response();
        let h = response.headers_mut();
        match &this {
            AppError::Auth(AuthError::ClientAuth) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"postern\""),
                );
            }
            AppError::Auth(AuthError::InvalidAccessToken) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"postern\", error=\"invalid_token\""),
                );
            }
            AppError::RequestTimeout => {
                // RFC 9110 §15.5.9: a 408 closes the connection.
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            AppError::NoBearer | AppError::Auth(AuthError::AdminUnauthenticated) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"postern\""),
                );
            }
            _ => {}
        }
        if let Some(seconds) = retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(rendered);
        response
    }
}
