//! SPEC §3.5 `/admin/api/v1/...`: the JSON face of administration. Each
//! handler parses, makes one call into `postern_auth::admin` (which decides
//! who may do what) and renders. Who is asking is the [`Admin`] extractor:
//! `Authorization: Bearer pat_…`, or the Postern browser session `/account`
//! uses, whose writes must come from our own origin.
//!
//! The routes are one table ([`ROUTES`]) from which the router is built, so
//! the tests' authorization table covers every route there is. The
//! handlers live by area: `apps`, `users`, `activity` (sessions and
//! sign-in history), `ops` (keys, outbox, audit). The 401 and 403 every
//! operation can answer are added to the document by the web crate's
//! OpenAPI modifier (any operation secured by `admin_token`), not repeated
//! on each.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use postern_auth::admin::{self, PageRequest, Principal};
use postern_web::error::{AppError, Result};
use postern_web::extract::ClientIp;
use postern_web::AppState;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

mod activity;
mod apps;
mod ops;
mod users;

/// Where the API lives.
pub const PREFIX: &str = "/admin/api/v1";

/// The principal of an admin request: an admin token, or a signed-in
/// administrator or app owner. 401 without credentials; 403 for a
/// signed-in person with no access, or a cookie-authenticated write from
/// another origin.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let ip = ClientIp::from_request_parts(parts, state)
            .await?
            .0
            .to_string();
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(postern_auth::AuthError::AdminUnauthenticated)?;
            return Ok(Admin(
                admin::tokens::authenticate(state, token, Some(ip)).await?,
            ));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(viewer) = postern_web::browser::viewer(state, &jar).await? else {
            return Err(postern_auth::AuthError::AdminUnauthenticated.into());
        };
        let writes = !matches!(parts.method, Method::GET | Method::HEAD);
        if writes && !postern_web::routes::signin::same_origin(state, &parts.headers) {
            return Err(AppError::Csrf);
        }
        Ok(Admin(
            admin::principal_for_user(state, &viewer.live.user, Some(ip)).await?,
        ))
    }
}

macro_rules! admin_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every admin API route, `(method, path under PREFIX)`.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// The admin API's router (mounted at [`PREFIX`]).
        pub fn router() -> Router<AppState> {
            let r = Router::new();
            $(let r = r.route(concat!("/admin/api/v1", $path), $method($handler));)*
            r
        }
    };
}

admin_routes! {
    get "/apps" => apps::list_apps,
    post "/apps" => apps::create_app,
    get "/apps/{client_id}" => apps::read_app,
    patch "/apps/{client_id}" => apps::update_app,
    delete "/apps/{client_id}" => apps::delete_app,
    post "/apps/{client_id}/secrets" => apps::rotate_secret,
    get "/apps/{client_id}/email-preview" => apps::email_preview,
    post "/apps/{client_id}/test-email" => apps::test_email,
    get "/users" => users::search_users,
    get "/users/{user_id}" => users::read_user,
    delete "/users/{user_id}" => users::delete_user,
    post "/users/{user_id}/disable" => users::disable_user,
    post "/users/{user_id}/enable" => users::enable_user,
    post "/users/{user_id}/sign-in-link" => users::sign_in_link,
    delete "/users/{user_id}/passkeys/{passkey_id}" => users::delete_passkey,
    get "/sessions" => activity::list_sessions,
    delete "/sessions/{session_id}" => activity::end_session,
    get "/events" => activity::list_events,
    get "/events.csv" => activity::events_csv,
    get "/keys" => ops::list_keys,
    post "/keys/rotate" => ops::rotate_keys,
    get "/outbox" => ops::list_outbox,
    post "/outbox/{id}/retry" => ops::retry_outbox,
    get "/audit" => ops::list_audit,
}

/// An outbox message queued: a test email, or a retry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queued {
    /// The outbox message.
    pub id: String,
}

/// `?cursor=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQ {
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

impl PageQ {
    fn page(&self) -> PageRequest {
        PageRequest {
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }
}

/// The admin API's operations, for `postern::openapi::document`.
#[derive(OpenApi)]
#[openapi(paths(
    apps::list_apps,
    apps::create_app,
    apps::read_app,
    apps::update_app,
    apps::delete_app,
    apps::rotate_secret,
    apps::email_preview,
    apps::test_email,
    users::search_users,
    users::read_user,
    users::delete_user,
    users::delete_passkey,
    users::disable_user,
    users::enable_user,
    users::sign_in_link,
    activity::list_sessions,
    activity::end_session,
    activity::list_events,
    activity::events_csv,
    ops::list_keys,
    ops::rotate_keys,
    ops::list_outbox,
    ops::retry_outbox,
    ops::list_audit,
))]
pub struct ApiDoc;
