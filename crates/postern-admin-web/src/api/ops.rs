//! `/admin/api/v1/keys…`, `/outbox…` and `/audit`: operations
//! (administrators only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_auth::admin::{ops, AuditEntry, KeyView, OutboxItem, OutboxState, Page, PageRequest};
use postern_web::error::{ErrorBody, Result};
use postern_web::extract::{AppPath, AppQuery};
use postern_web::AppState;
use serde::{Deserialize, Serialize};

use super::{Admin, PageQ, Queued};

/// A key rotation started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysRotated {
    /// The `kid`s of the new keys.
    pub created: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/keys",
    tag = "admin",
    description = "Signing keys (never private parts).",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every key, in one page.", body = Page<KeyView>),
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
    ),
)]
pub async fn list_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    AppQuery(q): AppQuery<PageQ>,
) -> Result<Response> {
    Ok(Json(ops::audit_log(&s, &who, &q.page()).await?).into_response())
}
