//! Postern's HTTP surface: the axum router, its state, extractors, handlers
//! and pages. Handlers extract typed input, make one service call and
//! render; the rules live in [`signin`] and below, the SQL in postern-store.

pub mod account;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod geoip;
pub mod headless;
pub mod i18n;
pub mod keys;
pub mod mail;
pub mod middleware;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod server;
pub mod signin;
pub mod typo;

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
pub use server::{serve, ServeOptions};

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
    /// The GeoIP database that places session addresses on `/account`
    /// (`POSTERN_GEOIP_DB`), if one is configured.
    pub geoip: Option<Arc<geoip::GeoIp>>,
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
    /// Signing keys, shared by every instance through the database.
    pub keys: keys::KeyManager,
    /// Origins of every registered redirect URI, for CORS; refreshed every
    /// [`ORIGINS_TTL`] seconds.
    pub origins: tokio::sync::RwLock<(i64, std::collections::HashSet<String>)>,
}

/// How long the CORS origin list is cached.
pub const ORIGINS_TTL: i64 = 30;

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

    /// Origins of the apps' redirect URIs (SPEC §3.2 CORS), cached briefly
    /// so a new app is allowed within [`ORIGINS_TTL`] seconds.
    pub async fn app_origins(&self) -> std::collections::HashSet<String> {
        let now = self.now();
        {
            let cached = self.origins.read().await;
            if now - cached.0 < ORIGINS_TTL && now >= cached.0 {
                return cached.1.clone();
            }
        }
        let apps = match self.store.conn().await {
            Ok(mut conn) => postern_store::Queries::apps(&mut *conn)
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let origins: std::collections::HashSet<String> = apps
            .iter()
            .flat_map(|a| a.settings.redirect_uris.iter())
            .filter_map(|u| Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .collect();
        *self.origins.write().await = (now, origins.clone());
        origins
    }
}

/// The whole application: every route with its middleware.
pub fn router(state: AppState) -> Router {
    let browser = Router::new()
        .route(
            "/login",
            get(routes::signin::login_page).post(routes::signin::login_submit),
        )
        .route("/login/check", get(routes::signin::check_page))
        .route("/login/code", post(routes::signin::submit_code))
        .route("/login/resend", post(routes::signin::resend))
        .route(
            "/verify-email",
            get(routes::signin::verify_get).post(routes::signin::verify_post),
        )
        .route("/consent", post(routes::signin::consent_submit))
        .route("/account", get(routes::account::account_page))
        .route("/account/callback", get(routes::account::callback))
        .route(
            "/account/sessions/sign-out",
            post(routes::account::sign_out_session),
        )
        .route(
            "/account/sign-out-everywhere",
            post(routes::account::sign_out_everywhere),
        )
        .route("/account/apps/revoke", post(routes::account::revoke_app))
        .route(
            "/account/delete",
            get(routes::account::delete_page).post(routes::account::delete_account),
        )
        .route("/_dev/mail", get(routes::dev::dev_mail))
        .route("/_dev/mail/{file}", get(routes::dev::dev_mail_html))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::negotiate,
        ));
    let api = Router::new()
        .route(
            "/request-magic-link",
            post(routes::signin::request_magic_link),
        )
        .route("/login/status", get(routes::signin::login_status))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::negotiate_api,
        ));
    let oidc_cors = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(routes::oidc::discovery).options(routes::oidc::preflight),
        )
        .route(
            "/jwks.json",
            get(routes::oidc::jwks).options(routes::oidc::preflight),
        )
        .route(
            "/token",
            post(routes::oidc::token).options(routes::oidc::preflight),
        )
        .route(
            "/userinfo",
            get(routes::oidc::userinfo_get)
                .post(routes::oidc::userinfo_post)
                .options(routes::oidc::preflight),
        )
        .route(
            "/revoke",
            post(routes::oidc::revoke).options(routes::oidc::preflight),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::oidc::cors,
        ));
    let headless_api = Router::new()
        .route("/api/v1/magic-links", post(routes::headless::create_link))
        .route(
            "/api/v1/magic-links/verify",
            post(routes::headless::verify_link),
        )
        .route("/api/v1/sessions/refresh", post(routes::headless::refresh))
        .route(
            "/api/v1/sessions/verify",
            post(routes::headless::verify_session),
        )
        .route(
            "/api/v1/sessions/{session_id}",
            axum::routing::delete(routes::headless::delete_session),
        )
        .route(
            "/api/v1/users/{user_id}/sessions/revoke",
            post(routes::headless::revoke_user_sessions),
        );
    let oidc_api = Router::new().route("/introspect", post(routes::oidc::introspect));
    let oidc_browser = Router::new()
        .route(
            "/authorize",
            get(routes::oidc::authorize_get).post(routes::oidc::authorize_post),
        )
        .route(
            "/logout",
            get(routes::oidc::logout_get).post(routes::oidc::logout_post),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::negotiate,
        ));
    // Unknown paths: an HTML page for a browser's navigation, the JSON
    // error shape for everyone else.
    let not_found = Router::new()
        .fallback(routes::health::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::negotiate_api,
        ))
        .with_state(state.clone());
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/static/postern.css", get(routes::assets::stylesheet))
        .route("/static/postern.js", get(routes::assets::script))
        .route(
            "/static/brand/{file}",
            get(routes::assets::brand_stylesheet),
        )
        .merge(browser)
        .merge(api)
        .merge(oidc_cors)
        .merge(oidc_api)
        .merge(headless_api)
        .merge(oidc_browser)
        .fallback_service(not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::from_fn(middleware::request_deadline))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(middleware::trace_layer())
        .with_state(state)
}
