//! SPEC §3.6 operations endpoints and the fallbacks.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use postern_auth::AuthError;
use postern_store::StoreError;

use crate::error::{AppError, ErrorBody, Result};
use crate::extract::ClientIp;
use crate::AppState;
use postern_auth::metrics::{may_scrape, Scrape};

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up.", body = Status)),
)]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// `GET /readyz`: the database answers and is migrated; 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers and is migrated.", body = Status),
        (status = 503, description = "`temporarily_unavailable`: the database is unreachable or not migrated.", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ready()).await {
        Ok(Ok(true)) => Ok(Json(Status { status: "ready" })),
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
    let who = crate::metrics::scraper(client, &headers);
    let services = &state.services;
    let scrape = may_scrape(who, state.config.metrics_public, |token| async move {
        match postern_auth::admin::tokens::authenticate(services, &token, None).await {
            Ok(_) => Ok(true),
            Err(AuthError::AdminUnauthenticated) => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await?;
    if scrape == Scrape::NoCredential {
        return Err(AppError::NoBearer);
    }
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
