//! Live sessions and sign-in history in administration (SPEC §3.5):
//! filtered, cursor-paged lists, ending a session, and the history as CSV.

use postern_store::{
    AdminQueries, EventFilter, Session, SessionFilter, SessionQueries, SignInEvent,
};
use serde::{Deserialize, Serialize};

use super::{audit, Page, PageRequest, Principal, Target};
use crate::error::{AuthError, Result};
use crate::Services;

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Public id.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// `browser` or `headless`.
    pub kind: String,
    /// The app of a headless session.
    pub client_id: Option<String>,
    /// IP at sign-in.
    pub ip: Option<String>,
    /// Browser at sign-in.
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            id: s.id,
            user_id: s.user_id,
            kind: s.kind,
            client_id: s.client_id,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
        }
    }
}

/// `GET /sessions?user_id=&client_id=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionQuery {
    /// One person's.
    pub user_id: Option<String>,
    /// Used with one app.
    pub client_id: Option<String>,
}

/// `GET /sessions`: live sessions, newest first (owners: those used with
/// their apps).
pub async fn sessions(
    svc: &Services,
    who: &Principal,
    q: &SessionQuery,
    page: &PageRequest,
) -> Result<Page<SessionView>> {
    let (limit, after) = page.parse()?;
    if let Some(c) = &q.client_id {
        who.authorize(svc, super::Target::App(c)).await?;
    }
    let filter = SessionFilter {
        user_id: q.user_id.clone().filter(|s| !s.is_empty()),
        client_id: q.client_id.clone().filter(|s| !s.is_empty()),
        within: who.apps().map(<[String]>::to_vec),
    };
    let now = svc.now();
    let rows = svc
        .store
        .conn()
        .await?
        .sessions_page(
            &filter,
            now,
            now - svc.settings.session_idle_ttl,
            after.as_ref(),
            limit + 1,
        )
        .await?;
    Ok(Page::of(
        rows,
        limit,
        |s| (s.created_at, &s.id),
        SessionView::from,
    ))
}

/// `DELETE /sessions/{session_id}`: ends it and its refresh tokens.
pub async fn end_session(svc: &Services, who: &Principal, session_id: &str) -> Result<()> {
    who.authorize(svc, Target::Session(session_id)).await?;
    let mut tx = svc.store.begin().await?;
    if tx.session(session_id).await?.is_none() {
        return Err(AuthError::NotFound);
    }
    tx.revoke_session(session_id, svc.now()).await?;
    audit(svc, &mut tx, who, "session.end", Some(session_id), None).await?;
    tx.commit().await?;
    Ok(())
}

/// One sign-in event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Random id.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// Whose, when known.
    pub user_id: Option<String>,
    /// Which app.
    pub client_id: String,
    /// The person's IP.
    pub ip: Option<String>,
    /// Their browser.
    pub user_agent: Option<String>,
    /// `link`, `code` or `admin_link`.
    pub method: String,
    /// `success`, `wrong_code`, `expired`, `used` or `refused`.
    pub outcome: String,
}

impl From<SignInEvent> for EventView {
    fn from(e: SignInEvent) -> Self {
        EventView {
            id: e.id,
            at: e.at,
            user_id: e.user_id,
            client_id: e.client_id,
            ip: e.ip,
            user_agent: e.user_agent,
            method: e.method,
            outcome: e.outcome,
        }
    }
}

/// `GET /events?user_id=&client_id=&outcome=&since=&until=` (unix seconds).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventQuery {
    /// One person's.
    pub user_id: Option<String>,
    /// One app's.
    pub client_id: Option<String>,
    /// One outcome.
    pub outcome: Option<String>,
    /// At or after.
    pub since: Option<i64>,
    /// Before.
    pub until: Option<i64>,
}

/// The outcomes history records (SPEC §3.5).
pub const OUTCOMES: [&str; 5] = ["success", "wrong_code", "expired", "used", "refused"];

/// `GET /events`: sign-in history, newest first (owners: their apps').
pub async fn events(
    svc: &Services,
    who: &Principal,
    q: &EventQuery,
    page: &PageRequest,
) -> Result<Page<EventView>> {
    let (limit, after) = page.parse()?;
    if let Some(c) = q.client_id.as_deref().filter(|c| !c.is_empty()) {
        who.authorize(svc, Target::App(c)).await?;
    }
    if let Some(o) = q.outcome.as_deref().filter(|o| !o.is_empty()) {
        if !OUTCOMES.contains(&o) {
            return Err(AuthError::invalid_field(
                "outcome",
                "must be success, wrong_code, expired, used or refused",
            ));
        }
    }
    let filter = EventFilter {
        user_id: q.user_id.clone().filter(|s| !s.is_empty()),
        client_id: q.client_id.clone().filter(|s| !s.is_empty()),
        within: who.apps().map(<[String]>::to_vec),
        outcome: q.outcome.clone().filter(|s| !s.is_empty()),
        since: q.since,
        until: q.until,
    };
    let rows = svc
        .store
        .conn()
        .await?
        .events_page(&filter, after.as_ref(), limit + 1)
        .await?;
    Ok(Page::of(rows, limit, |e| (e.at, &e.id), EventView::from))
}

/// `GET /events.csv`: the same filters, every matching event (up to
/// 100 000), as CSV with a header row.
pub async fn events_csv(svc: &Services, who: &Principal, q: &EventQuery) -> Result<String> {
    let mut out = String::from("id,at,user_id,client_id,ip,user_agent,method,outcome\n");
    let mut page = PageRequest {
        cursor: None,
        limit: Some(super::MAX_LIMIT),
    };
    for _ in 0..500 {
        let p = events(svc, who, q, &page).await?;
        for e in &p.items {
            let fields = [
                e.id.clone(),
                e.at.to_string(),
                e.user_id.clone().unwrap_or_default(),
                e.client_id.clone(),
                e.ip.clone().unwrap_or_default(),
                e.user_agent.clone().unwrap_or_default(),
                e.method.clone(),
                e.outcome.clone(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// One CSV field (RFC 4180), defused against spreadsheet formulas.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}
