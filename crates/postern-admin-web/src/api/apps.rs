//! `/admin/api/v1/apps…`: apps, their secrets, their email preview and a
//! test email.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_auth::admin::apps::{
    self, AppCreated, AppView, EmailPreview, NewSecret, SecretRotation, TestEmail,
};
use postern_auth::admin::{AppCreate, AppPatch, Page};
use postern_web::error::{AppError, ErrorBody, Result};
use postern_web::extract::{AppJson, AppPath, AppQuery};
use postern_web::AppState;
use serde::Deserialize;

use super::{Admin, PageQ, Queued};

#[utoipa::path(
    get,
    path = "/admin/api/v1/apps",
    tag = "admin",
    description = "Apps (owners: their own), newest first.",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of apps.", body = Page<AppView>),
        (status = 400, description = "`invalid_request`: a parameter or the body is malformed or out of range.", body = ErrorBody),
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
