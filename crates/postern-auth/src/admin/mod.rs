//! Administration (SPEC §3.5): the services behind `/admin` (the panel),
//! `/admin/api/v1` (the JSON API) and the CLI's app and token commands.
//! Every face calls these with a [`Principal`] — who acts, from where —
//! and the decision whether they may is made here, once, by
//! [`Principal::authorize`]:
//!
//! * an **administrator** (an address in `POSTERN_ADMIN_EMAILS`, an admin
//!   token, or the CLI) may do everything;
//! * an **app owner** (an address in an app's `owners`) may read and change
//!   only their apps (not their `owners`), read the people who signed in to
//!   those apps, see and end their sessions and read their history there,
//!   and send them a sign-in link to those apps; never a person's account
//!   itself (disable, enable, delete, passkeys: it signs in to every app),
//!   signing keys, admin tokens, the outbox, the audit log or another app;
//! * anyone else is refused (403 `forbidden`).
//!
//! Every change is one transaction that also writes its audit record.
//! Lists are [`Page`]s, newest first, cursor-paged ([`PageRequest`]).

pub mod activity;
pub mod apps;
pub mod dashboard;
pub mod ops;
pub mod tokens;
pub mod users;

use postern_core::crypto::random_id;
use postern_store::{AdminQueries, AuditRecord, PageKey, Queries, Tx, User};
use serde::Serialize;

use crate::error::{AuthError, Result};
use crate::Services;

pub use activity::{EventQuery, EventView, SessionQuery, SessionView};
pub use apps::{AppCreate, AppCreated, AppPatch, AppView, EmailPreview, SecretRotation};
pub use ops::{AuditEntry, KeyView, OutboxItem, OutboxState};
pub use tokens::{CreatedToken, TokenView};
pub use users::{SignInLink, SignInLinkRequest, UserSummary, UserView};

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person whose address is in `POSTERN_ADMIN_EMAILS`.
    Admin {
        /// Their address.
        email: String,
    },
    /// An admin token (`Authorization: Bearer pat_…`): acts as an administrator.
    Token {
        /// The token's id.
        id: String,
        /// Its name, shown in the audit log.
        name: String,
    },
    /// A signed-in owner of some apps.
    Owner {
        /// Their address.
        email: String,
        /// The client ids of the apps they own.
        apps: Vec<String>,
    },
    /// The command line on the server (`postern app …`).
    Cli,
}

/// An actor and the address they act from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// Source IP, for the audit log.
    pub ip: Option<String>,
}

/// What an action touches, for [`Principal::authorize`].
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Server-wide things: creating apps, owners, signing keys, the outbox,
    /// the audit log, admin tokens. Administrators only.
    Server,
    /// One app and what hangs off it (its settings, secrets, preview).
    App(&'a str),
    /// One person, to read or to reach through an owner's app (owners:
    /// people with history in one of their apps).
    User(&'a str),
    /// One person's Postern account as a whole — disable, enable, delete,
    /// their passkeys. It signs in to every app, not only an owner's, so
    /// administrators only (SPEC §3.5: owners never act server-wide).
    Account(&'a str),
    /// One session (owners: sessions used with one of their apps).
    Session(&'a str),
}

impl Principal {
    /// The CLI on the server: an administrator without an address.
    pub fn cli() -> Self {
        Principal {
            actor: Actor::Cli,
            ip: None,
        }
    }

    /// Whether this principal may do everything.
    pub fn is_admin(&self) -> bool {
        !matches!(self.actor, Actor::Owner { .. })
    }

    /// The apps this principal is limited to; `None` for administrators.
    pub fn apps(&self) -> Option<&[String]> {
        match &self.actor {
            Actor::Owner { apps, .. } => Some(apps),
            _ => None,
        }
    }

    /// How the audit log names this actor: the admin's address, `token:<name>`
    /// or `cli`.
    pub fn audit_name(&self) -> String {
        match &self.actor {
            Actor::Admin { email } | Actor::Owner { email, .. } => email.clone(),
            Actor::Token { name, .. } => format!("token:{name}"),
            Actor::Cli => "cli".to_owned(),
        }
    }

    /// The one authorization decision of administration: may this principal
    /// act on `target`? Administrators may do everything; owners only their
    /// apps, and the people and sessions of those apps — never a person's
    /// account as a whole. 403 otherwise.
    pub async fn authorize(&self, svc: &Services, target: Target<'_>) -> Result<()> {
        let Some(apps) = self.apps() else {
            return Ok(());
        };
        let allowed = match target {
            Target::Server => false,
            Target::Account(_) => {
                return Err(AuthError::Forbidden(
                    "Only administrators change a person's account: it signs in to every app.",
                ))
            }
            Target::App(client_id) => apps.iter().any(|a| a == client_id),
            Target::User(user_id) => {
                let mut conn = svc.store.conn().await?;
                if conn.user(user_id).await?.is_none() {
                    return Err(AuthError::NotFound);
                }
                conn.user_in_apps(user_id, apps).await?
            }
            Target::Session(session_id) => {
                let mut conn = svc.store.conn().await?;
                let used = conn.session_apps(session_id).await?;
                used.iter().any(|c| apps.contains(c))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AuthError::forbidden())
        }
    }
}

/// The principal of a person signed in to Postern: an administrator when
/// their address is in `POSTERN_ADMIN_EMAILS`, else the owner of the apps
/// that list them, else 403 (a "no access" page on `/admin`).
pub async fn principal_for_user(
    svc: &Services,
    user: &User,
    ip: Option<String>,
) -> Result<Principal> {
    if user.disabled_at.is_some() {
        return Err(AuthError::forbidden());
    }
    if svc.settings.admin_emails.iter().any(|a| a == &user.email) {
        return Ok(Principal {
            actor: Actor::Admin {
                email: user.email.clone(),
            },
            ip,
        });
    }
    let apps: Vec<String> = svc
        .store
        .conn()
        .await?
        .apps()
        .await?
        .into_iter()
        .filter(|a| a.settings.owners.iter().any(|o| o == &user.email))
        .map(|a| a.client_id)
        .collect();
    if apps.is_empty() {
        return Err(AuthError::Forbidden(
            "You have no access to administration.",
        ));
    }
    Ok(Principal {
        actor: Actor::Owner {
            email: user.email.clone(),
            apps,
        },
        ip,
    })
}

/// The default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page size.
pub const MAX_LIMIT: i64 = 200;

/// `?cursor=&limit=` of a list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PageRequest {
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<i64>,
}

impl PageRequest {
    /// The checked limit and the position after which the page starts.
    pub fn parse(&self) -> Result<(i64, Option<PageKey>)> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AuthError::invalid_field(
                "limit",
                "must be between 1 and 200",
            ));
        }
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                c.split_once('.')
                    .and_then(|(at, id)| {
                        Some(PageKey {
                            at: at.parse().ok()?,
                            id: id.to_owned(),
                        })
                    })
                    .filter(|k| !k.id.is_empty() && k.id.len() <= 64)
                    .ok_or_else(|| {
                        AuthError::invalid_field("cursor", "is not a cursor of this list")
                    })?,
            ),
        };
        Ok((limit, after))
    }
}

/// A page of a list: `{"items": [...], "next_cursor": "…" | null}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Where the next page starts; none on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `rows` fetched with `limit + 1`: the extra row only tells
    /// that there is more. `key` gives a row's time and id.
    pub fn of<R>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> (i64, &str),
        view: impl FnMut(R) -> T,
    ) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| {
                rows.last().map(|r| {
                    let (at, id) = key(r);
                    format!("{at}.{id}")
                })
            })
            .flatten();
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// Writes the audit record of a change inside its transaction.
pub(crate) async fn audit(
    svc: &Services,
    tx: &mut Tx,
    who: &Principal,
    action: &str,
    target: Option<&str>,
    detail: Option<serde_json::Value>,
) -> Result<()> {
    tx.insert_audit(&AuditRecord {
        id: random_id(),
        at: svc.now(),
        actor: who.audit_name(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        ip: who.ip.clone(),
        detail: detail.map(|d| d.to_string()),
    })
    .await?;
    Ok(())
}

/// Called after every committed change to an app: this instance's app
/// cache ([`postern_store::Store::app`]) forgets every app at once, so the
/// change (a disabled app, a new redirect URI) holds for the very next
/// request here; other instances see it within
/// [`postern_store::APP_CACHE_TTL`]. (The store's own app writes clear the
/// cache at commit too; this names the rule where the admin API keeps it.)
pub(crate) fn apps_changed(svc: &Services, _client_id: &str) {
    svc.store.apps_changed();
}
