//! `/admin/api/v1/users…`: people, their passkeys, disabling and sign-in
//! links.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_auth::admin::{
    apps, users, Page, PageRequest, SignInLink, SignInLinkRequest, UserSummary, UserView,
};
use postern_web::error::{ErrorBody, Result};
use postern_web::extract::{AppJson, AppPath, AppQuery};
use postern_web::AppState;
use serde::Deserialize;

use super::Admin;

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
    description = "Deletes the person and everything of theirs (administrators only: a Postern account signs in to every app, so app owners get 403).",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
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
    description = "The person cannot sign in; every session and refresh token of theirs ends at once (administrators only: app owners get 403).",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 200, description = "The person as they now are.", body = UserView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
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
    description = "The person may sign in again (administrators only: app owners get 403).",
    security(("admin_token" = [])),
    params(("user_id" = String, Path, description = "The person (Postern's user id).")),
    responses(
        (status = 200, description = "The person as they now are.", body = UserView),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
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
