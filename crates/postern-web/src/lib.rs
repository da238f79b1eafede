//! Postern's HTTP surface: the axum router, its state, extractors, handlers
//! and pages. Handlers extract typed input, make one service call and
//! render; the rules live in postern-auth, the SQL in postern-store.

/// A table of routes and the router made from exactly that table:
/// `$routes` lists `(method, path)` and `$router()` mounts each entry, so
/// the list [`json_routes`] gives the OpenAPI test cannot drift from what
/// is served.
macro_rules! route_table {
    ($(#[$doc:meta])* $routes:ident, $router:ident {
        $($method:ident $path:literal => $handler:path),* $(,)?
    }) => {
        $(#[$doc])*
        pub const $routes: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// The router of exactly the routes of its table.
        pub fn $router() -> axum::Router<$crate::AppState> {
            let r = axum::Router::new();
            // The same path twice (two methods) merges into one route.
            $(let r = r.route($path, axum::routing::$method($handler));)*
            r
        }
    };
}

pub mod browser;
pub mod cookies;
pub mod error;
pub mod extract;
/// The GeoIP lookup lives with the services ([`postern_auth::geoip`]);
/// `postern_web::geoip::GeoIp` stays a path for the binary.
pub use postern_auth::geoip;
pub mod i18n;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod render;
pub mod routes;
pub mod server;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use postern_auth::{Services, Settings};
use postern_core::net::IpCidr;
use postern_mail::DevInbox;

pub use error::{AppError, Result};
/// The signing keys live in the service crate; re-exported for callers of
/// the earlier path.
pub use postern_auth::keys;
pub use postern_auth::mail;
pub use server::{serve, ServeOptions};

/// Settings only the web layer needs, beside the services' [`Settings`]
/// (which it derefs to), already validated by the binary's loader.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The services' settings (public URL, limits, session lifetimes).
    pub settings: Arc<Settings>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpCidr>,
    /// Whether `/_dev/mail` may exist (stdout mail, loopback public URL and
    /// bind address; the client and `Host` are checked per request).
    pub dev_mail: bool,
    /// The GeoIP database that places session addresses on `/account`
    /// (`POSTERN_GEOIP_DB`), if one is configured.
    pub geoip: Option<Arc<geoip::GeoIp>>,
    /// Whether anyone may read `/metrics` (`POSTERN_METRICS_PUBLIC`), not
    /// only loopback clients and admin tokens.
    pub metrics_public: bool,
}

impl WebConfig {
    /// Cookies get `Secure` and the `__Host-` prefix on https.
    pub fn secure_cookies(&self) -> bool {
        self.settings.public_url.scheme() == "https"
    }
}

impl std::ops::Deref for WebConfig {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts of [`AppState`]: the services (which it derefs to)
/// and what only the web layer uses.
pub struct Inner {
    /// Store, secrets, clock, keys, mail wake-up and settings.
    pub services: Services,
    /// Web settings.
    pub config: WebConfig,
    /// The local inbox behind `/_dev/mail`, when mail goes to stdout.
    pub dev_inbox: Option<DevInbox>,
    /// Origins of every registered redirect URI, for CORS; refreshed every
    /// [`ORIGINS_TTL`] seconds.
    pub origins: postern_auth::oidc::Origins,
    /// Every series `/metrics` shows.
    pub metrics: metrics::Metrics,
}

/// How long the CORS origin list is cached (the services' rule).
pub use postern_auth::oidc::ORIGINS_TTL;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for Inner {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// Bundles the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Origins of the apps' redirect URIs (SPEC §3.2 CORS), cached briefly
    /// so a new app is allowed within [`ORIGINS_TTL`] seconds.
    pub async fn app_origins(&self) -> std::collections::HashSet<String> {
        self.origins.get(self).await
    }
}

route_table! {
    /// The JSON endpoints of sign-in (SPEC §3.1): JSON errors, an HTML
    /// page only for a client that asks for one.
    SIGNIN_JSON_ROUTES, signin_json_router {
        post "/request-magic-link" => routes::signin::request_magic_link,
        get "/login/status" => routes::check::login_status,
    }
}

route_table! {
    /// The OpenID Provider's JSON endpoints that browser apps call
    /// cross-origin (SPEC §3.2 CORS).
    OIDC_CORS_ROUTES, oidc_cors_router {
        get "/.well-known/openid-configuration" => routes::oidc::discovery,
        get "/jwks.json" => routes::oidc::jwks,
        post "/token" => routes::oidc::token,
        get "/userinfo" => routes::oidc::userinfo_get,
        post "/userinfo" => routes::oidc::userinfo_post,
        post "/revoke" => routes::oidc::revoke,
    }
}

route_table! {
    /// The OpenID Provider's JSON endpoints for apps' servers only.
    OIDC_SERVER_ROUTES, oidc_server_router {
        post "/introspect" => routes::oidc::introspect,
    }
}

route_table! {
    /// SPEC §3.6 operations endpoints that answer JSON.
    OPS_JSON_ROUTES, ops_json_router {
        get "/healthz" => routes::health::healthz,
        get "/readyz" => routes::health::readyz,
        get "/openapi.json" => openapi::serve,
    }
}

/// Every JSON endpoint of this crate's routes, `(method, path)` with the
/// method in lower case: what `/openapi.json` must describe, each one,
/// besides the [`Faces`] mounted with them.
pub fn json_routes() -> Vec<(&'static str, String)> {
    let tables = [
        SIGNIN_JSON_ROUTES,
        OIDC_CORS_ROUTES,
        OIDC_SERVER_ROUTES,
        OPS_JSON_ROUTES,
        routes::headless::ROUTES,
    ];
    tables
        .iter()
        .flat_map(|t| t.iter().map(|(m, p)| (*m, (*p).to_owned())))
        .collect()
}

/// Routes served beside the web crate's own, inside the same middleware
/// (error negotiation, security headers, body limit, deadline, tracing,
/// metrics): the administration faces of `postern-admin-web`, which the
/// binary mounts (this crate does not know them).
pub struct Faces {
    /// Their routes, with their own per-route layers.
    pub router: Router<AppState>,
}

/// The whole application: every route, `faces`' among them, with its
/// middleware. `document` builds what `/openapi.json` serves (at its first
/// request): the binary assembles it from both faces' operations
/// (`postern::openapi`).
pub fn router(state: AppState, faces: Faces, document: fn() -> utoipa::openapi::OpenApi) -> Router {
    let document = openapi::Document::new(document);
    let browser = Router::new()
        .route(
            "/login",
            get(routes::signin::login_page).post(routes::signin::login_submit),
        )
        .route("/login/check", get(routes::check::check_page))
        .route("/login/code", post(routes::check::submit_code))
        .route("/login/resend", post(routes::check::resend))
        .route(
            "/verify-email",
            get(routes::verify::verify_get).post(routes::verify::verify_post),
        )
        .route("/consent", post(routes::verify::consent_submit))
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
        .route(
            "/passkeys/authenticate/start",
            post(routes::passkeys::authenticate_start),
        )
        .route(
            "/passkeys/authenticate/finish",
            post(routes::passkeys::authenticate_finish),
        )
        .route(
            "/passkeys/register/start",
            post(routes::passkeys::register_start),
        )
        .route(
            "/passkeys/register/finish",
            post(routes::passkeys::register_finish),
        )
        .route("/passkeys/not-now", post(routes::passkeys::not_now))
        .route("/passkeys/lost", post(routes::passkeys::lost_passkey))
        .route("/account/passkeys/rename", post(routes::passkeys::rename))
        .route("/account/passkeys/delete", post(routes::passkeys::delete))
        .route("/_dev/mail", get(routes::dev::dev_mail))
        .route("/_dev/mail/{file}", get(routes::dev::dev_mail_html))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::negotiate,
        ));
    let api = signin_json_router().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::negotiate_api,
    ));
    // Preflights of the same paths (the `cors` layer answers them).
    let mut oidc_cors = oidc_cors_router();
    for (i, (_, path)) in OIDC_CORS_ROUTES.iter().enumerate() {
        if OIDC_CORS_ROUTES[..i].iter().all(|(_, p)| p != path) {
            oidc_cors = oidc_cors.route(path, axum::routing::options(routes::oidc::preflight));
        }
    }
    let oidc_cors = oidc_cors.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        routes::oidc::cors,
    ));
    let headless_api = routes::headless::router();
    let oidc_api = oidc_server_router();
    let oidc_browser = Router::new()
        .route(
            "/authorize",
            get(routes::oidc::authorize_get).post(routes::oidc::authorize_post),
        )
        .route(
            "/logout",
            get(routes::logout::logout_get).post(routes::logout::logout_post),
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
        .merge(ops_json_router().layer(axum::Extension(document)))
        .route("/metrics", get(routes::health::metrics))
        .route("/static/postern.css", get(routes::assets::stylesheet))
        .route("/static/postern.js", get(routes::assets::script))
        .route("/static/passkeys.js", get(routes::passkeys::script))
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
        .merge(faces.router)
        .fallback_service(not_found)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::from_fn(middleware::request_deadline))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(middleware::trace_layer())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}
