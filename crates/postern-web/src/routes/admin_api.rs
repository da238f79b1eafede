//! SPEC §3.5 `/admin/api/v1/...`: the JSON face of administration. Each
//! handler parses, makes one call into `postern_auth::admin` (which decides
//! who may do what) and renders. Who is asking is the [`Admin`] extractor:
//! `Authorization: Bearer pat_…`, or the Postern browser session `/account`
//! uses, whose writes must come from our own origin.
//!
//! The routes are one table ([`ROUTES`]) from which the router is built, so
//! the tests' authorization table covers every route there is.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::CookieJar;
use postern_auth::admin::activity::{EventView, SessionView};
use postern_auth::admin::apps::{
    AppCreated, AppView, EmailPreview, NewSecret, SecretRotation, TestEmail,
};
use postern_auth::admin::{
    self, activity, apps, ops, users, AppCreate, AppPatch, AuditEntry, EventQuery, KeyView,
    OutboxItem, OutboxState, Page, PageRequest, Principal, SessionQuery, SignInLink,
    SignInLinkRequest, UserSummary, UserView,
};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, ErrorBody, Result};
use crate::extract::{AppJson, AppPath, AppQuery, ClientIp};
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

/// An outbox message queued: a test email, or a retry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queued {
    /// The outbox message.
    pub id: String,
}

/// A key rotation started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysRotated {
    /// The `kid`s of the new keys.
    pub created: Vec<String>,
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

#[utoipa::path(
    get,
    path = "/admin/api/v1/apps",
    tag = "admin",
    description = "Apps (owners: their own), newest first.",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of apps.", body = Page<AppView>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_apps(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<PageQ>,
) -> Result<Response> {
    Ok(Json(apps::page(&s, &who, &q.page()).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/apps",
    tag = "admin",
    description = "Creates an app (administrators): the app shape, `name` and `redirect_uris` required; answers the app and its secret, once.",
    security(("admin_token" = [])),
    request_body(content = AppPatch, content_type = "application/json"),
    responses(
        (status = 201, description = "The app, with its `client_secret` (none for a public app).", body = AppCreated),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn create_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let created = apps::create(&s, &who, AppCreate::from_json(body)?).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/apps/{client_id}",
    tag = "admin",
    description = "One app with every setting.",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app.")),
    responses(
        (status = 200, description = "The app.", body = AppView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn read_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
) -> Result<Response> {
    Ok(Json(apps::read(&s, &who, &client_id).await?).into_response())
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/apps/{client_id}",
    tag = "admin",
    description = "Changes any subset of an app (nested objects merge; `null` clears).",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app.")),
    request_body(content = AppPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The app as it now is.", body = AppView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn update_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let patch: AppPatch = apps::from_json(body)?;
    Ok(Json(apps::update(&s, &who, &client_id, patch).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/apps/{client_id}",
    tag = "admin",
    description = "Deletes an app; its sessions, grants and refresh tokens end.",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the built-in account app cannot be deleted.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn delete_app(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
) -> Result<Response> {
    apps::delete(&s, &who, &client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/apps/{client_id}/secrets",
    tag = "admin",
    description = "A new secret, returned once; the current one keeps working `previous_valid_for` (at most 30 days; default: ends at once). The body is optional.",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app.")),
    request_body(content = Option<SecretRotation>, content_type = "application/json"),
    responses(
        (status = 201, description = "The new secret.", body = NewSecret),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: a public app has no secret.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn rotate_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
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
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQ {
    /// Language of the email (`en`, `de`, `fr`); default: the app's.
    locale: Option<String>,
    /// `sign_in` (default) or `no_account`.
    kind: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/apps/{client_id}/email-preview",
    tag = "admin",
    description = "The email as this app's users get it, with a sample link and code.",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app."), PreviewQ),
    responses(
        (status = 200, description = "Subject, text and HTML.", body = EmailPreview),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn email_preview(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
    AppQuery(q): AppQuery<PreviewQ>,
) -> Result<Response> {
    let preview =
        apps::email_preview(&s, &who, &client_id, q.locale.as_deref(), q.kind.as_deref()).await?;
    Ok(Json(preview).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/apps/{client_id}/test-email",
    tag = "admin",
    description = "Sends the preview through the outbox.",
    security(("admin_token" = [])),
    params(("client_id" = String, Path, description = "The app.")),
    request_body(content = TestEmail, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued: the outbox message id.", body = Queued),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn test_email(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(client_id): AppPath<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let id = apps::test_email(&s, &who, &client_id, apps::from_json(body)?).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { id })).into_response())
}

/// `?q=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQ {
    /// The start of the address.
    q: Option<String>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users",
    tag = "admin",
    description = "People whose address starts with `q` (owners: people who signed in to their apps).",
    security(("admin_token" = [])),
    params(UsersQ),
    responses(
        (status = 200, description = "A page of people.", body = Page<UserSummary>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn search_users(
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

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{user_id}",
    tag = "admin",
    description = "Address, created, last sign-in, disabled, apps with grants, live session count.",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 200, description = "The person.", body = UserView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn read_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(user_id): AppPath<String>,
) -> Result<Response> {
    Ok(Json(users::read(&s, &who, &user_id).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{user_id}",
    tag = "admin",
    description = "Deletes the person and everything of theirs.",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn delete_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(user_id): AppPath<String>,
) -> Result<Response> {
    users::delete(&s, &who, &user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{user_id}/disable",
    tag = "admin",
    description = "The person cannot sign in; every session and refresh token of theirs ends at once.",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 200, description = "The person as they now are.", body = UserView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn disable_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(user_id): AppPath<String>,
) -> Result<Response> {
    Ok(Json(users::set_disabled(&s, &who, &user_id, true).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{user_id}/enable",
    tag = "admin",
    description = "The person may sign in again.",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 200, description = "The person as they now are.", body = UserView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn enable_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(user_id): AppPath<String>,
) -> Result<Response> {
    Ok(Json(users::set_disabled(&s, &who, &user_id, false).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{user_id}/passkeys/{passkey_id}",
    tag = "admin",
    description = "Deletes one of the person's passkeys (administrators only: a passkey signs in to every app); the email link still signs them in.",
    security(("admin_token" = [])),
    params(
        ("user_id" = String, Path, description = "The person (Postern's user id)."),
        ("passkey_id" = String, Path, description = "The passkey's id, as `GET /users/{user_id}` lists it."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: not an administrator (app owners may not delete passkeys), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn delete_passkey(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath((user_id, passkey_id)): AppPath<(String, String)>,
) -> Result<Response> {
    users::delete_passkey(&s, &who, &user_id, &passkey_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{user_id}/sign-in-link",
    tag = "admin",
    description = "Emails the person a fresh sign-in link for an app, or (with `send: false` and `POSTERN_ADMIN_LINKS=copy`) answers the link.",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    request_body(content = SignInLinkRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Sent, or the link itself.", body = SignInLink),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the person is disabled, the app does not let their domain sign in, or (browser flow) the app's device policy or IP binding could never use such a link.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn sign_in_link(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(user_id): AppPath<String>,
    AppJson(body): AppJson<serde_json::Value>,
) -> Result<Response> {
    let link = users::sign_in_link(&s, &who, &user_id, apps::from_json(body)?).await?;
    Ok(Json(link).into_response())
}

/// `?user_id=&client_id=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQ {
    /// Only this person's.
    user_id: Option<String>,
    /// Only this app's.
    client_id: Option<String>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/sessions",
    tag = "admin",
    description = "Live sessions, newest first.",
    security(("admin_token" = [])),
    params(SessionsQ),
    responses(
        (status = 200, description = "A page of sessions.", body = Page<SessionView>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_sessions(
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

#[utoipa::path(
    delete,
    path = "/admin/api/v1/sessions/{session_id}",
    tag = "admin",
    description = "Ends one session.",
    security(("admin_token" = [])),
    params(("session_id" = String, Path, description = "The session.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn end_session(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(session_id): AppPath<String>,
) -> Result<Response> {
    activity::end_session(&s, &who, &session_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `?user_id=&client_id=&outcome=&since=&until=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQ {
    /// Only this person's.
    user_id: Option<String>,
    /// Only this app's.
    client_id: Option<String>,
    /// `success`, `wrong_code`, `expired`, `used` or `refused`.
    outcome: Option<String>,
    /// From this time on, unix seconds.
    since: Option<i64>,
    /// Before this time, unix seconds.
    until: Option<i64>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
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

#[utoipa::path(
    get,
    path = "/admin/api/v1/events",
    tag = "admin",
    description = "Sign-in history, newest first.",
    security(("admin_token" = [])),
    params(EventsQ),
    responses(
        (status = 200, description = "A page of sign-in events.", body = Page<EventView>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_events(
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

#[utoipa::path(
    get,
    path = "/admin/api/v1/events.csv",
    tag = "admin",
    description = "The sign-in history as CSV.",
    security(("admin_token" = [])),
    params(EventsQ),
    responses(
        (status = 200, description = "CSV with a header line.", body = String, content_type = "text/csv"),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn events_csv(
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

#[utoipa::path(
    get,
    path = "/admin/api/v1/keys",
    tag = "admin",
    description = "Signing keys (never private parts).",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every key, in one page.", body = Page<KeyView>),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_keys(State(s): State<AppState>, Admin(who): Admin) -> Result<Response> {
    let keys = ops::keys(&s, &who).await?;
    let page = Page {
        items: keys,
        next_cursor: None,
    };
    Ok(Json(page).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/keys/rotate",
    tag = "admin",
    description = "Starts a signing-key rotation.",
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "The new keys' ids.", body = KeysRotated),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn rotate_keys(State(s): State<AppState>, Admin(who): Admin) -> Result<Response> {
    let kids = ops::rotate_keys(&s, &who).await?;
    Ok((StatusCode::ACCEPTED, Json(KeysRotated { created: kids })).into_response())
}

/// `?state=pending|failed&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQ {
    /// `pending` (default) or `failed`.
    #[param(inline)]
    state: Option<OutboxState>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/outbox",
    tag = "admin",
    description = "Messages waiting (`pending`) or given up (`failed`).",
    security(("admin_token" = [])),
    params(OutboxQ),
    responses(
        (status = 200, description = "A page of messages.", body = Page<OutboxItem>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_outbox(
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

#[utoipa::path(
    post,
    path = "/admin/api/v1/outbox/{id}/retry",
    tag = "admin",
    description = "Tries a failed message again.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The outbox message.")),
    responses(
        (status = 202, description = "Queued again.", body = Queued),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the message is still pending, or was delivered.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn retry_outbox(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppPath(id): AppPath<String>,
) -> Result<Response> {
    ops::retry(&s, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { id })).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/audit",
    tag = "admin",
    description = "Every change made through the panel, the API or the CLI, newest first.",
    security(("admin_token" = [])),
    params(PageQ),
    responses(
        (status = 200, description = "A page of audit entries.", body = Page<AuditEntry>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: no admin token or session, or a bad one.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"postern\"`"))),
        (status = 403, description = "`forbidden`: signed in but not allowed (an app owner outside their apps), or `invalid_csrf` (a session's write from another origin).", body = ErrorBody),
    ),
)]
pub async fn list_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<PageQ>,
) -> Result<Response> {
    Ok(Json(ops::audit_log(&s, &who, &q.page()).await?).into_response())
}
