//! Server-wide administration (administrators only, SPEC §3.5): signing
//! keys, the outbox and the audit log.

use postern_store::{AdminQueries, KeyQueries, OutboxRow};
use serde::{Deserialize, Serialize};

use super::{audit, Page, PageRequest, Principal, Target};
use crate::error::{AuthError, Result};
use crate::Services;

/// A signing key, never its private part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// `RS256`, `EdDSA`, `ES256`.
    pub alg: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// `GET /keys`: every signing key, newest first.
pub async fn keys(svc: &Services, who: &Principal) -> Result<Vec<KeyView>> {
    who.authorize(svc, Target::Server).await?;
    let mut keys: Vec<KeyView> = svc
        .store
        .conn()
        .await?
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| KeyView {
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
        })
        .collect();
    keys.reverse();
    Ok(keys)
}

/// `POST /keys/rotate` and `postern keys rotate`: a `next` key per
/// algorithm (see [`crate::KeyManager::rotate`]), stored in the same
/// transaction as its audit record — no rotation without its record.
/// Returns the new kids.
pub async fn rotate_keys(svc: &Services, who: &Principal) -> Result<Vec<String>> {
    who.authorize(svc, Target::Server).await?;
    // The keys are generated before the transaction opens (RSA is slow).
    let rotation = svc.keys.prepare_rotation().await?;
    let kids = rotation.kids();
    let mut tx = svc.store.begin().await?;
    rotation.store(&mut tx).await?;
    let detail = serde_json::json!({ "kids": kids });
    audit(svc, &mut tx, who, "keys.rotate", None, Some(detail)).await?;
    tx.commit().await?;
    svc.keys.rotated(&rotation).await?;
    Ok(kids)
}

/// `?state=pending|failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be delivered.
    #[default]
    Pending,
    /// Given up.
    Failed,
}

/// An outbox message: never the recipient's local part in full, the link
/// or the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutboxItem {
    /// Row id.
    pub id: String,
    /// `pending` or `failed`.
    pub state: OutboxState,
    /// The recipient, masked: `j***@example.com`.
    pub to: Option<String>,
    /// The app it was for.
    pub client_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Unix seconds; none once given up.
    pub next_attempt_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<OutboxRow> for OutboxItem {
    fn from(r: OutboxRow) -> Self {
        let failed = r.failed_at.is_some();
        OutboxItem {
            id: r.id,
            state: if failed {
                OutboxState::Failed
            } else {
                OutboxState::Pending
            },
            to: r.recipient_hint,
            client_id: r.client_id,
            created_at: r.created_at,
            attempts: r.attempts,
            next_attempt_at: (!failed).then_some(r.next_attempt_at),
            last_error: r.last_error.map(|e| scrub(&e)),
        }
    }
}

/// An address with its local part masked: `jane@example.com` →
/// `j***@example.com`.
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// An SMTP error may quote the recipient: mask anything address-like.
fn scrub(error: &str) -> String {
    error
        .split_inclusive(|c: char| c.is_whitespace() || c == '<' || c == '>')
        .map(|w| {
            let core = w.trim_end_matches(|c: char| c.is_whitespace() || c == '<' || c == '>');
            if core.contains('@') {
                format!("{}{}", mask_address(core), &w[core.len()..])
            } else {
                w.to_owned()
            }
        })
        .collect()
}

/// `GET /outbox?state=`: pending or given-up messages, newest first.
pub async fn outbox(
    svc: &Services,
    who: &Principal,
    state: OutboxState,
    page: &PageRequest,
) -> Result<Page<OutboxItem>> {
    who.authorize(svc, Target::Server).await?;
    let (limit, after) = page.parse()?;
    let rows = svc
        .store
        .conn()
        .await?
        .outbox_page(state == OutboxState::Failed, after.as_ref(), limit + 1)
        .await?;
    Ok(Page::of(
        rows,
        limit,
        |r| (r.created_at, &r.id),
        OutboxItem::from,
    ))
}

/// How long a retried message may keep trying (it carries its own expiry
/// only as a link; a retry gets this much more time).
pub const RETRY_WINDOW: i64 = 3600;

/// `POST /outbox/{id}/retry`: a given-up message is queued again (202); a
/// pending one is 409; one whose content was erased is 409 too.
pub async fn retry(svc: &Services, who: &Principal, id: &str) -> Result<()> {
    who.authorize(svc, Target::Server).await?;
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let row = tx.outbox_row(id).await?.ok_or(AuthError::NotFound)?;
    if row.sent_at.is_some() {
        return Err(AuthError::conflict("This message was delivered."));
    }
    if row.failed_at.is_none() {
        return Err(AuthError::conflict("This message is still pending."));
    }
    if !tx.outbox_requeue(id, now, now + RETRY_WINDOW).await? {
        return Err(AuthError::conflict(
            "This message's content is no longer kept; it cannot be sent again.",
        ));
    }
    audit(svc, &mut tx, who, "outbox.retry", Some(id), None).await?;
    tx.commit().await?;
    svc.mail_wake.notify_one();
    Ok(())
}

/// One change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Random id.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// Admin address, `token:<name>` or `cli`.
    pub actor: String,
    /// `app.update`, `user.disable`, ...
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// Source IP.
    pub ip: Option<String>,
    /// What changed (never a secret).
    pub detail: Option<serde_json::Value>,
}

/// `GET /audit`: every change, newest first.
pub async fn audit_log(
    svc: &Services,
    who: &Principal,
    page: &PageRequest,
) -> Result<Page<AuditEntry>> {
    who.authorize(svc, Target::Server).await?;
    let (limit, after) = page.parse()?;
    let rows = svc
        .store
        .conn()
        .await?
        .audit_page(after.as_ref(), limit + 1)
        .await?;
    Ok(Page::of(
        rows,
        limit,
        |r| (r.at, &r.id),
        |r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            ip: r.ip,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        },
    ))
}
