//! SPEC §3.6 operations endpoints and the fallbacks.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use postern_auth::AuthError;
use postern_store::StoreError;

use crate::error::{AppError, Result};
use crate::extract::ClientIp;
use crate::metrics::{may_scrape, Scraper};
use crate::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers and is migrated; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ready()).await {
        Ok(Ok(true)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Ok(false)) => Err(unavailable(StoreError::Corrupt(
            "migrations pending".into(),
        ))),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable(StoreError::TimedOut)),
    }
}

/// `GET /metrics` (SPEC §3.6): every series in the Prometheus text format,
/// for a loopback client, an admin token, or anyone when
/// `POSTERN_METRICS_PUBLIC=true` ([`may_scrape`]).
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    let who = Scraper::of(client, &headers);
    let services = &state.services;
    may_scrape(who, state.config.metrics_public, |token| async move {
        match postern_auth::admin::tokens::authenticate(services, &token, None).await {
            Ok(_) => Ok(true),
            Err(AuthError::AdminUnauthenticated) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    postern_auth::metrics::refresh(&state).await;
    let text = state.metrics.encode().map_err(AppError::internal)?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// 503: the database is not ready, whatever the cause.
fn unavailable(e: StoreError) -> AppError {
    AppError::Auth(AuthError::Unavailable(e))
}

/// Any unknown path: 404 in our error shape.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// A known path with the wrong method: 405 in our error shape.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
