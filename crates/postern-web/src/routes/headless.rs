//! SPEC §3.4 headless API endpoints, authenticated as the app with HTTP Basic.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_core::App;
use serde::Deserialize;

use postern_auth::headless::{self, LinkRequest, SessionInfo, SessionIssued, VerifyRequest};
use postern_auth::AuthError;

use crate::error::{AppError, Result};
use crate::extract::{client_credentials, ClientIp, JsonOrForm};
use crate::AppState;

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
#[derive(Debug, Default, Deserialize)]
pub struct RefreshBody {
    /// The current refresh token.
    pub refresh_token: Option<String>,
}

/// `POST /api/v1/sessions/refresh` → 200 with a new session token and a
/// rotated refresh token.
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
#[derive(Debug, Default, Deserialize)]
pub struct VerifyBody {
    /// The session token (JWT).
    pub session_token: Option<String>,
}

/// `POST /api/v1/sessions/verify` → 200, or 401 `invalid_session`.
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
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
) -> Result<StatusCode> {
    let app = calling_app(&state, &headers).await?;
    headless::revoke_session(&state, &app, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{user_id}/sessions/revoke` → 204.
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<StatusCode> {
    let app = calling_app(&state, &headers).await?;
    headless::revoke_user(&state, &app, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
