//! SPEC §3.5 `/admin/api/v1/...`: the JSON face of administration. Each
//! handler parses, makes one call into `postern_auth::admin` (which decides
//! who may do what) and renders. Who is asking is the [`Admin`] extractor:
//! `Authorization: Bearer pat_…`, or the Postern browser session `/account`
//! uses, whose writes must come from our own origin.
//!
//! The routes are one table ([`ROUTES`]) from which the router is built, so
//! the tests' authorization table covers every route there is.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::CookieJar;
use postern_auth::admin::{
    self, activity, apps, ops, users, AppCreate, AppPatch, EventQuery, OutboxState, PageRequest,
    Principal, SessionQuery,
};
use serde::Deserialize;
use serde_json::json;

use crate::error::{AppError, Result};
use crate::extract::{AppJson, AppQuery, ClientIp};
use crate::AppState;

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
        let Some(viewer) = crate::browser::viewer(state, &jar).await? else {
            return Err(postern_auth::AuthError::AdminUnauthenticated.into());
        };
        let writes = !matches!(parts.method, Method::GET | Method::HEAD);
        if writes && !super::signin::same_origin(state, &parts.headers) {
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
    get "/apps" => list_apps,
    post "/apps" => create_app,
    get "/apps/{client_id}" => read_app,
    patch "/apps/{client_id}" => update_app,
    delete "/apps/{client_id}" => delete_app,
    post "/apps/{client_id}/secrets" => rotate_secret,
    get "/apps/{client_id}/email-preview" => email_preview,
    post "/apps/{client_id}/test-email" => test_email,
    get "/users" => search_users,
    get "/users/{user_id}" => read_user,
    delete "/users/{user_id}" => delete_user,
    post "/users/{user_id}/disable" => disable_user,
    post "/users/{user_id}/enable" => enable_user,
    post "/users/{user_id}/sign-in-link" => sign_in_link,
    delete "/users/{user_id}/passkeys/{passkey_id}" => delete_passkey,
    get "/sessions" => list_sessions,
    delete "/sessions/{session_id}" => end_session,
    get "/events" => list_events,
    get "/events.csv" => events_csv,
    get "/keys" => list_keys,
    post "/keys/rotate" => rotate_keys,
    get "/outbox" => list_outbox,
    post "/outbox/{id}/retry" => retry_outbox,
    get "/audit" => list_audit,
}

/// `?cursor=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct PageQ {
    cursor: Option<String>,
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

async fn list_apps(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<PageQ>,
) -> Result<Response> {
    Ok(Json(apps::page(&s, &who, &q.page()).await?).into_response())
}

async fn create_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let created = apps::create(&s, &who, AppCreate::from_json(body)?).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn read_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
) -> Result<Response> {
    Ok(Json(apps::read(&s, &who, &client_id).await?).into_response())
}

async fn update_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let patch: AppPatch = apps::from_json(body)?;
    Ok(Json(apps::update(&s, &who, &client_id, patch).await?).into_response())
}

async fn delete_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
) -> Result<Response> {
    apps::delete(&s, &who, &client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    // The body is optional: no body means "the old secret ends at once".
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        apps::SecretRotation::default()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            AppError::InvalidRequest("The JSON body could not be read: malformed JSON".into())
        })?;
        apps::from_json(v)?
    };
    let secret = apps::rotate_secret(&s, &who, &client_id, input).await?;
    Ok((StatusCode::CREATED, Json(secret)).into_response())
}

/// `?locale=&kind=`.
#[derive(Debug, Default, Deserialize)]
pub struct PreviewQ {
    locale: Option<String>,
    kind: Option<String>,
}

async fn email_preview(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
    AppQuery(q): AppQuery<PreviewQ>,
) -> Result<Response> {
    let preview =
        apps::email_preview(&s, &who, &client_id, q.locale.as_deref(), q.kind.as_deref()).await?;
    Ok(Json(preview).into_response())
}

async fn test_email(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let id = apps::test_email(&s, &who, &client_id, apps::from_json(body)?).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

/// `?q=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct UsersQ {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn search_users(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<UsersQ>,
) -> Result<Response> {
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit,
    };
    let found = users::search(&s, &who, q.q.as_deref().unwrap_or(""), &page).await?;
    Ok(Json(found).into_response())
}

async fn read_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(user_id): Path<String>,
) -> Result<Response> {
    Ok(Json(users::read(&s, &who, &user_id).await?).into_response())
}

async fn delete_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(user_id): Path<String>,
) -> Result<Response> {
    users::delete(&s, &who, &user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn disable_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(user_id): Path<String>,
) -> Result<Response> {
    Ok(Json(users::set_disabled(&s, &who, &user_id, true).await?).into_response())
}

async fn enable_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(user_id): Path<String>,
) -> Result<Response> {
    Ok(Json(users::set_disabled(&s, &who, &user_id, false).await?).into_response())
}

/// Issue 15: an administrator deletes one of a person's passkeys.
async fn delete_passkey(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path((user_id, passkey_id)): Path<(String, String)>,
) -> Result<Response> {
    users::delete_passkey(&s, &who, &user_id, &passkey_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn sign_in_link(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(user_id): Path<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let link = users::sign_in_link(&s, &who, &user_id, apps::from_json(body)?).await?;
    Ok(Json(link).into_response())
}

/// `?user_id=&client_id=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionsQ {
    user_id: Option<String>,
    client_id: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_sessions(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<SessionsQ>,
) -> Result<Response> {
    let filter = SessionQuery {
        user_id: q.user_id,
        client_id: q.client_id,
    };
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(activity::sessions(&s, &who, &filter, &page).await?).into_response())
}

async fn end_session(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(session_id): Path<String>,
) -> Result<Response> {
    activity::end_session(&s, &who, &session_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `?user_id=&client_id=&outcome=&since=&until=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQ {
    user_id: Option<String>,
    client_id: Option<String>,
    outcome: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl EventsQ {
    fn filter(&self) -> EventQuery {
        EventQuery {
            user_id: self.user_id.clone(),
            client_id: self.client_id.clone(),
            outcome: self.outcome.clone(),
            since: self.since,
            until: self.until,
        }
    }
}

async fn list_events(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<EventsQ>,
) -> Result<Response> {
    let page = PageRequest {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    Ok(Json(activity::events(&s, &who, &q.filter(), &page).await?).into_response())
}

async fn events_csv(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<EventsQ>,
) -> Result<Response> {
    let csv = activity::events_csv(&s, &who, &q.filter()).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"sign-ins.csv\""),
    );
    Ok((headers, csv).into_response())
}

async fn list_keys(State(s): State<AppState>, Admin(who): Admin) -> Result<Response> {
    let keys = ops::keys(&s, &who).await?;
    Ok(Json(json!({ "items": keys, "next_cursor": null })).into_response())
}

async fn rotate_keys(State(s): State<AppState>, Admin(who): Admin) -> Result<Response> {
    let kids = ops::rotate_keys(&s, &who).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "created": kids }))).into_response())
}

/// `?state=pending|failed&cursor=&limit=`.
#[derive(Debug, Default, Deserialize)]
pub struct OutboxQ {
    state: Option<OutboxState>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_outbox(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<OutboxQ>,
) -> Result<Response> {
    let page = PageRequest {
        cursor: q.cursor,
        limit: q.limit,
    };
    let items = ops::outbox(&s, &who, q.state.unwrap_or_default(), &page).await?;
    Ok(Json(items).into_response())
}

async fn retry_outbox(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response> {
    ops::retry(&s, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

async fn list_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<PageQ>,
) -> Result<Response> {
    Ok(Json(ops::audit_log(&s, &who, &q.page()).await?).into_response())
}
