//! `/admin/api/v1/sessions` and `/admin/api/v1/events…`: live sessions and
//! the sign-in history (JSON pages and CSV).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_auth::admin::activity::{self, EventView, SessionView};
use postern_auth::admin::{EventQuery, Page, PageRequest, SessionQuery};
use postern_web::error::{ErrorBody, Result};
use postern_web::extract::{AppPath, AppQuery};
use postern_web::AppState;
use serde::Deserialize;

use super::Admin;

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
