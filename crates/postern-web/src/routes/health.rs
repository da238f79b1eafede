//! SPEC §3.6 operations endpoints and the fallbacks.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{AppError, Result};
use crate::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers and is migrated; 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ready()).await {
        Ok(Ok(true)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Ok(false)) => Err(AppError::Unavailable(postern_store::StoreError::Corrupt(
            "migrations pending".into(),
        ))),
        Ok(Err(e)) => Err(AppError::Unavailable(e)),
        Err(_) => Err(AppError::Unavailable(postern_store::StoreError::TimedOut)),
    }
}

/// Any unknown path: 404 in our error shape.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// A known path with the wrong method: 405 in our error shape.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
