//! SPEC §3.4 headless API endpoints, authenticated as the app with HTTP Basic.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_core::App;
use serde::Deserialize;

use postern_auth::headless::{self, LinkRequest, SessionInfo, SessionIssued, VerifyRequest};
use postern_auth::AuthError;

use crate::error::{AppError, ErrorBody, Result};
use crate::extract::{client_credentials, AppPath, ClientIp, JsonOrForm};
use crate::AppState;

route_table! {
    /// SPEC §3.4: every route of the headless API.
    ROUTES, router {
        post "/api/v1/magic-links" => create_link,
        post "/api/v1/magic-links/verify" => verify_link,
        post "/api/v1/sessions/refresh" => refresh,
        post "/api/v1/sessions/verify" => verify_session,
        delete "/api/v1/sessions/{session_id}" => delete_session,
        post "/api/v1/users/{user_id}/sessions/revoke" => revoke_user_sessions,
    }
}

/// The calling app, from `Authorization: Basic client_id:client_secret`
/// (each part form-urlencoded, RFC 6749 §2.3.1). Public apps have no secret
/// and cannot use this API. Every failure is 401 `invalid_client`.
async fn calling_app(state: &AppState, headers: &HeaderMap) -> Result<App> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let creds = client_credentials(auth, None, None).map_err(|_| AuthError::ClientAuth)?;
    Ok(headless::authenticate_app(state, &creds).await?)
}

/// `POST /api/v1/magic-links` → 202 `{login_id, expires_at}`.
#[utoipa::path(
    post,
    path = "/api/v1/magic-links",
    tag = "headless",
    security(("client_basic" = [])),
    request_body(content(
        (LinkRequest = "application/json"),
        (LinkRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 202, description = "The link is on its way.", body = postern_auth::headless::LinkCreated),
        (status = 400, description = "`invalid_request`, `invalid_redirect_uri`, `invalid_client` (a disabled app).", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
        (status = 429, description = "`too_many_requests`: a limit per address, per person IP or per app is spent.", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed."))),
    ),
)]
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonOrForm(body): JsonOrForm<LinkRequest>,
) -> Result<Response> {
    let app = calling_app(&state, &headers).await?;
    let created = headless::request_link(&state, &app, &body, ip.0).await?;
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
}

/// `POST /api/v1/magic-links/verify` → 200 with a session.
#[utoipa::path(
    post,
    path = "/api/v1/magic-links/verify",
    tag = "headless",
    security(("client_basic" = [])),
    request_body(content(
        (VerifyRequest = "application/json"),
        (VerifyRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in: a new session.", body = SessionIssued),
        (status = 400, description = "`invalid_token` (expired, used, unknown, or too many wrong codes), `invalid_code` (a wrong code), `invalid_request`, `invalid_client` (a disabled app).", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
    ),
)]
pub async fn verify_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    JsonOrForm(body): JsonOrForm<VerifyRequest>,
) -> Result<Json<SessionIssued>> {
    let app = calling_app(&state, &headers).await?;
    Ok(Json(headless::verify(&state, &app, &body, ip.0).await?))
}

/// Body of `POST /api/v1/sessions/refresh`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    /// The current refresh token.
    #[schema(value_type = String, required = true)]
    pub refresh_token: Option<String>,
}

/// `POST /api/v1/sessions/refresh` → 200 with a new session token and a
/// rotated refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/refresh",
    tag = "headless",
    security(("client_basic" = [])),
    request_body(content(
        (RefreshBody = "application/json"),
        (RefreshBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A new session token and a rotated refresh token.", body = SessionIssued),
        (status = 400, description = "`invalid_request` (no refresh token), `invalid_grant` (unknown, used or revoked: a reused one revokes the session).", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonOrForm(body): JsonOrForm<RefreshBody>,
) -> Result<Json<SessionIssued>> {
    let app = calling_app(&state, &headers).await?;
    let token = body
        .refresh_token
        .ok_or_else(|| AppError::InvalidRequest("refresh_token is required.".into()))?;
    Ok(Json(headless::refresh(&state, &app, &token).await?))
}

/// Body of `POST /api/v1/sessions/verify`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VerifyBody {
    /// The session token (JWT).
    #[schema(value_type = String, required = true)]
    pub session_token: Option<String>,
}

/// `POST /api/v1/sessions/verify` → 200, or 401 `invalid_session`.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/verify",
    tag = "headless",
    security(("client_basic" = [])),
    request_body(content(
        (VerifyBody = "application/json"),
        (VerifyBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The session is live.", body = SessionInfo),
        (status = 400, description = "`invalid_request`: no session token.", body = ErrorBody),
        (status = 401, description = "`invalid_client` (client authentication failed) or `invalid_session` (a forged, expired or revoked session).", body = ErrorBody),
    ),
)]
pub async fn verify_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonOrForm(body): JsonOrForm<VerifyBody>,
) -> Result<Json<SessionInfo>> {
    let app = calling_app(&state, &headers).await?;
    let token = body
        .session_token
        .ok_or_else(|| AppError::InvalidRequest("session_token is required.".into()))?;
    Ok(Json(headless::verify_session(&state, &app, &token).await?))
}

/// `DELETE /api/v1/sessions/{session_id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{session_id}",
    tag = "headless",
    security(("client_basic" = [])),
    params(("session_id" = String, Path, description = "A session of this app.")),
    responses(
        (status = 400, description = "`invalid_request`: the URL could not be read (a segment that is not UTF-8).", body = ErrorBody),
        (status = 204, description = "The session has ended."),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
        (status = 404, description = "`not_found`: no such session of this app.", body = ErrorBody),
    ),
)]
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(session_id): AppPath<String>,
) -> Result<StatusCode> {
    let app = calling_app(&state, &headers).await?;
    headless::revoke_session(&state, &app, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{user_id}/sessions/revoke` → 204.
#[utoipa::path(
    post,
    path = "/api/v1/users/{user_id}/sessions/revoke",
    tag = "headless",
    security(("client_basic" = [])),
    params(("user_id" = String, Path, description = "The app's subject for the person.")),
    responses(
        (status = 400, description = "`invalid_request`: the URL could not be read (a segment that is not UTF-8).", body = ErrorBody),
        (status = 204, description = "Every session of the person in this app has ended."),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
        (status = 404, description = "`not_found`: no such person in this app.", body = ErrorBody),
    ),
)]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppPath(user_id): AppPath<String>,
) -> Result<StatusCode> {
    let app = calling_app(&state, &headers).await?;
    headless::revoke_user(&state, &app, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
