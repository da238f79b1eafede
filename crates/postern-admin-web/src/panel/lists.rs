//! `/admin/history` (with CSV), `/admin/keys`, `/admin/outbox` and
//! `/admin/audit`: the lists of SPEC §3.5, newest first, a page at a time.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use postern_auth::admin::{self, EventQuery, OutboxState, PageRequest};

use super::users::{app_names, event_rows, EventRow};
use super::{Ctx, Frame};
use postern_web::error::{AppError, Result};
use postern_web::extract::{AppForm, AppPath, AppQuery};
use postern_web::i18n::admin::AdminStrings;
use postern_web::i18n::Strings;
use postern_web::AppState;

/// `GET /admin/history`.
#[derive(Template)]
#[template(path = "admin/history.html")]
pub struct HistoryPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The filter's apps.
    pub app_options: Vec<(String, String)>,
    /// The filter's outcomes.
    pub outcome_options: Vec<(String, &'static str)>,
    /// The filters as given.
    pub client_id: String,
    pub outcome: String,
    pub user_id: String,
    pub since: String,
    pub until: String,
    /// The same list as CSV.
    pub csv_url: String,
    /// The events.
    pub events: Vec<EventRow>,
    /// The table has a person column.
    pub show_user: bool,
    /// Older events.
    pub next: Option<String>,
}

/// The filters of the history, as a form sends them (dates as `YYYY-MM-DD`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct HistoryQuery {
    pub client_id: Option<String>,
    pub outcome: Option<String>,
    pub user_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
}

/// A `YYYY-MM-DD` day as unix seconds at its start (UTC); `end` gives the
/// start of the next day, so "until 12 March" includes 12 March.
pub fn day(field: &str, value: Option<&str>, end: bool) -> Result<Option<i64>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(v, &format)
        .map_err(|_| AppError::InvalidRequest(format!("{field} must be a date (YYYY-MM-DD).")))?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Ok(Some(if end { start + 86_400 } else { start }))
}

impl HistoryQuery {
    fn events(&self) -> Result<EventQuery> {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        Ok(EventQuery {
            user_id: text(&self.user_id),
            client_id: text(&self.client_id),
            outcome: text(&self.outcome),
            since: day("since", self.since.as_deref(), false)?,
            until: day("until", self.until.as_deref(), true)?,
        })
    }

    fn query(&self, cursor: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("client_id", &self.client_id),
            ("outcome", &self.outcome),
            ("user_id", &self.user_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            s.append_pair("cursor", c);
        }
        s.finish()
    }
}

/// SPEC §3.5 `GET /admin/history`: sign-ins with filters.
pub async fn history(
    State(state): State<AppState>,
    ctx: Ctx,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<Response> {
    let found = admin::activity::events(
        &state,
        &ctx.who,
        &q.events()?,
        &PageRequest {
            cursor: q.cursor.clone(),
            limit: None,
        },
    )
    .await?;
    let names = app_names(&state, &ctx).await?;
    let mut app_options: Vec<(String, String)> =
        names.iter().map(|(c, n)| (c.clone(), n.clone())).collect();
    app_options.sort_by(|x, y| x.1.cmp(&y.1));
    let a = ctx.a;
    let page = HistoryPage {
        t: ctx.t,
        a,
        frame: ctx.frame("/admin/history"),
        app_options,
        outcome_options: super::dashboard::outcomes(a)
            .into_iter()
            .map(|(k, l)| (k.to_owned(), l))
            .collect(),
        client_id: q.client_id.clone().unwrap_or_default(),
        outcome: q.outcome.clone().unwrap_or_default(),
        user_id: q.user_id.clone().unwrap_or_default(),
        since: q.since.clone().unwrap_or_default(),
        until: q.until.clone().unwrap_or_default(),
        csv_url: format!("/admin/history.csv?{}", q.query(None)),
        events: event_rows(&ctx, &names, found.items),
        show_user: true,
        next: found
            .next_cursor
            .map(|c| format!("/admin/history?{}", q.query(Some(&c)))),
    };
    Ok(ctx.render(&page))
}

/// SPEC §3.5 `GET /admin/history.csv`: the same list as CSV.
pub async fn history_csv(
    State(state): State<AppState>,
    ctx: Ctx,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<Response> {
    let csv = admin::activity::events_csv(&state, &ctx.who, &q.events()?).await?;
    Ok((
        ctx.jar,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"sign-ins.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

/// One signing key.
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub created: String,
}

/// `GET /admin/keys`.
#[derive(Template)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The keys.
    pub keys: Vec<KeyRow>,
}

/// SPEC §3.5 `GET /admin/keys` (administrators): kid, algorithm, state,
/// created; never private parts.
pub async fn keys(State(state): State<AppState>, ctx: Ctx) -> Result<Response> {
    let keys = admin::ops::keys(&state, &ctx.who).await?;
    let mut frame = ctx.frame("/admin/keys");
    if ctx.notice.as_deref() == Some("keys-rotated") {
        frame.notice = Some(ctx.a.keys_rotated.to_owned());
    }
    let page = KeysPage {
        t: ctx.t,
        a: ctx.a,
        frame,
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                created: ctx.moment(k.created_at),
                kid: k.kid,
                alg: k.alg,
                state: k.state,
            })
            .collect(),
    };
    Ok(ctx.render(&page))
}

/// A form that only asks to be confirmed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PlainForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// "yes" from the confirmation page.
    pub confirmed: Option<String>,
}

/// SPEC §3.5 `POST /admin/keys/rotate`: after confirmation, starts a
/// rotation of the signing keys.
pub async fn rotate_keys(
    State(state): State<AppState>,
    ctx: Ctx,
    AppForm(form): AppForm<PlainForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    if form.confirmed.as_deref() != Some("yes") {
        // Only administrators get as far as the question.
        admin::ops::keys(&state, &ctx.who).await?;
        let question = ctx.a.confirm_rotate_keys.to_owned();
        return Ok(ctx.confirm(
            "/admin/keys",
            question,
            "/admin/keys/rotate".to_owned(),
            Vec::new(),
            "/admin/keys".to_owned(),
        ));
    }
    admin::ops::rotate_keys(&state, &ctx.who).await?;
    Ok(ctx.done(&state, "/admin/keys", "keys-rotated"))
}

/// One outbox message: never its address in full, link or code.
pub struct OutboxRow {
    pub id: String,
    pub created: String,
    pub to: String,
    pub app: String,
    pub attempts: i64,
    pub next_attempt: String,
    pub last_error: String,
}

/// `GET /admin/outbox`.
#[derive(Template)]
#[template(path = "admin/outbox.html")]
pub struct OutboxPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// Given up (else waiting).
    pub failed: bool,
    /// The messages.
    pub items: Vec<OutboxRow>,
    /// Older ones.
    pub next: Option<String>,
}

/// The outbox's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct OutboxQuery {
    /// `pending` (default) or `failed`.
    pub state: Option<String>,
    /// The next page.
    pub cursor: Option<String>,
}

/// SPEC §3.5 `GET /admin/outbox?state=pending|failed` (administrators).
pub async fn outbox(
    State(state): State<AppState>,
    ctx: Ctx,
    AppQuery(q): AppQuery<OutboxQuery>,
) -> Result<Response> {
    let failed = q.state.as_deref() == Some("failed");
    let which = if failed {
        OutboxState::Failed
    } else {
        OutboxState::Pending
    };
    let found = admin::ops::outbox(
        &state,
        &ctx.who,
        which,
        &PageRequest {
            cursor: q.cursor,
            limit: None,
        },
    )
    .await?;
    let names = app_names(&state, &ctx).await?;
    let mut frame = ctx.frame("/admin/outbox");
    if ctx.notice.as_deref() == Some("retried") {
        frame.notice = Some(ctx.a.retried.to_owned());
    }
    let state_name = if failed { "failed" } else { "pending" };
    let page = OutboxPage {
        t: ctx.t,
        a: ctx.a,
        frame,
        failed,
        items: found
            .items
            .into_iter()
            .map(|m| OutboxRow {
                created: ctx.moment(m.created_at),
                to: m.to.unwrap_or_default(),
                app: m
                    .client_id
                    .as_ref()
                    .map(|c| {
                        names
                            .get(c)
                            .cloned()
                            .unwrap_or_else(|| ctx.a.removed_app.to_owned())
                    })
                    .unwrap_or_default(),
                attempts: m.attempts,
                next_attempt: m.next_attempt_at.map(|t| ctx.moment(t)).unwrap_or_default(),
                last_error: m.last_error.unwrap_or_default(),
                id: m.id,
            })
            .collect(),
        next: found
            .next_cursor
            .map(|c| format!("/admin/outbox?state={state_name}&cursor={c}")),
    };
    Ok(ctx.render(&page))
}

/// SPEC §3.5 `POST /admin/outbox/{id}/retry`: a given-up message again.
pub async fn retry(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(id): AppPath<String>,
    AppForm(form): AppForm<PlainForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    admin::ops::retry(&state, &ctx.who, &id).await?;
    Ok(ctx.done(&state, "/admin/outbox?state=pending", "retried"))
}

/// One audit record.
pub struct AuditRow {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The target's page, for apps and people.
    pub href: Option<String>,
    pub ip: String,
}

/// `GET /admin/audit`.
#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The records.
    pub items: Vec<AuditRow>,
    /// Older ones.
    pub next: Option<String>,
}

/// The audit log's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CursorQuery {
    /// The next page.
    pub cursor: Option<String>,
}

/// SPEC §3.5 `GET /admin/audit` (administrators): every change through the
/// panel, the API and the CLI.
pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    AppQuery(q): AppQuery<CursorQuery>,
) -> Result<Response> {
    let found = admin::ops::audit_log(
        &state,
        &ctx.who,
        &PageRequest {
            cursor: q.cursor,
            limit: None,
        },
    )
    .await?;
    let page = AuditPage {
        t: ctx.t,
        a: ctx.a,
        frame: ctx.frame("/admin/audit"),
        items: found
            .items
            .into_iter()
            .map(|r| {
                let href = r.target.as_ref().and_then(|t| {
                    let safe = t
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    match r.action.split('.').next() {
                        Some("app") if safe => Some(format!("/admin/apps/{t}")),
                        Some("user") if safe && r.action != "user.delete" => {
                            Some(format!("/admin/users/{t}"))
                        }
                        _ => None,
                    }
                });
                AuditRow {
                    time: ctx.moment(r.at),
                    actor: r.actor,
                    target: r.target.unwrap_or_default(),
                    href,
                    ip: r.ip.unwrap_or_default(),
                    action: r.action,
                }
            })
            .collect(),
        next: found
            .next_cursor
            .map(|c| format!("/admin/audit?cursor={c}")),
    };
    Ok(ctx.render(&page))
}
