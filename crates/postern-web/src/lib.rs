//! Postern's HTTP surface: the axum router, its state, extractors, handlers
//! and pages. Handlers extract typed input, make one service call and
//! render; the rules live in [`signin`] and below, the SQL in postern-store.

pub mod cookies;
pub mod error;
pub mod extract;
pub mod mail;
pub mod middleware;
pub mod pages;
pub mod routes;
pub mod signin;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use postern_core::net::IpCidr;
use postern_core::{Clock, Secrets};
use postern_mail::DevInbox;
use postern_store::Store;
use tokio::sync::Notify;
use url::Url;

pub use error::{AppError, Result};

/// Settings the web layer needs, already validated by the binary's loader.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `POSTERN_PUBLIC_URL`.
    pub public_url: Url,
    /// Requests per email address per hour (`POSTERN_RATE_LIMIT_EMAIL_PER_HOUR`).
    pub rate_limit_email_per_hour: i64,
    /// Requests per IP per hour (`POSTERN_RATE_LIMIT_IP_PER_HOUR`).
    pub rate_limit_ip_per_hour: i64,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpCidr>,
    /// Sliding inactivity limit of a session, seconds.
    pub session_idle_ttl: i64,
    /// Absolute cap of a session, seconds.
    pub session_max_age: i64,
    /// Whether `/_dev/mail` may exist (stdout mail, loopback public URL and
    /// bind address; the client and `Host` are checked per request).
    pub dev_mail: bool,
    /// Domain for `Message-ID` headers (from `POSTERN_MAIL_FROM`).
    pub mail_from_domain: String,
}

impl WebConfig {
    /// The issuer: the public URL without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// Cookies get `Secure` and the `__Host-` prefix on https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// An absolute URL on this server for `path` (starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer(), path)
    }
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts of [`AppState`].
pub struct Inner {
    /// Settings.
    pub config: WebConfig,
    /// Database.
    pub store: Store,
    /// Keys derived from the master key.
    pub secrets: Arc<Secrets>,
    /// Time source (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox worker after a message is committed.
    pub mail_wake: Arc<Notify>,
    /// The local inbox behind `/_dev/mail`, when mail goes to stdout.
    pub dev_inbox: Option<DevInbox>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Bundles the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The current time, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// The whole application: every route with its middleware.
pub fn router(state: AppState) -> Router {
    let browser = Router::new()
        .route("/login", get(routes::signin::login_page).post(routes::signin::login_submit))
        .route("/login/check", get(routes::signin::check_page))
        .route("/login/code", post(routes::signin::submit_code))
        .route("/login/resend", post(routes::signin::resend))
        .route("/verify-email", get(routes::signin::verify_get).post(routes::signin::verify_post))
        .route("/consent", post(routes::signin::consent_submit))
        .route("/_dev/mail", get(routes::dev::dev_mail))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::negotiate));
    let api = Router::new()
        .route("/request-magic-link", post(routes::signin::request_magic_link))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::negotiate_api));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/static/postern.css", get(routes::assets::stylesheet))
        .merge(browser)
        .merge(api)
        .fallback(routes::health::not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(middleware::trace_layer())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// in-flight requests (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
