//! What administration (SPEC §3.5) reads and changes: admin tokens, the
//! audit log, and the paged, filtered lists of users, sessions, sign-in
//! history and the outbox. Lists are newest first and paged by a
//! [`PageKey`] (the last row's time and id), so a page never shifts when
//! rows are added.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::queries::{event_from_row, session_from_row, user_from_row, SESSION_COLUMNS};
use crate::rows::{Session, SignInEvent, User};
use crate::Result;

/// Where a page of a newest-first list starts: after the row with this
/// time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    /// Unix seconds of the last row shown.
    pub at: i64,
    /// Its id.
    pub id: String,
}

/// An admin token (`pat_…`); the token itself is kept only as a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Public id (what `revoke` takes).
    pub id: String,
    /// Its name, shown in the audit log.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; none: never expires.
    pub expires_at: Option<i64>,
    /// Set on revocation.
    pub revoked_at: Option<i64>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Random id.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// Admin address, `token:<name>` or `cli`.
    pub actor: String,
    /// `app.update`, `user.disable`, ...
    pub action: String,
    /// What it was done to (client id, user id, ...).
    pub target: Option<String>,
    /// Source IP.
    pub ip: Option<String>,
    /// JSON detail (never a secret).
    pub detail: Option<String>,
}

/// An outbox row as the admin lists show it: never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt, unix seconds.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The app the message was for, when known.
    pub client_id: Option<String>,
    /// The recipient, masked (`j***@example.com`).
    pub recipient_hint: Option<String>,
    /// Set once delivered.
    pub sent_at: Option<i64>,
    /// Set once given up.
    pub failed_at: Option<i64>,
    /// Whether the encrypted content is still kept (a retry needs it).
    pub has_content: bool,
    /// Give up after this time.
    pub expires_at: i64,
}

/// Which sessions a list shows.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// One person's.
    pub user_id: Option<String>,
    /// Sessions used with this app.
    pub client_id: Option<String>,
    /// Only sessions used with one of these apps (an owner's view).
    pub within: Option<Vec<String>>,
}

/// Which sign-in events a list shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// One person's.
    pub user_id: Option<String>,
    /// One app's.
    pub client_id: Option<String>,
    /// Only these apps' (an owner's view).
    pub within: Option<Vec<String>>,
    /// One outcome.
    pub outcome: Option<String>,
    /// At or after, unix seconds.
    pub since: Option<i64>,
    /// Before, unix seconds.
    pub until: Option<i64>,
}

enum Bind {
    I(i64),
    S(String),
}

/// A WHERE clause being built with `$N` placeholders for both databases.
#[derive(Default)]
struct Where {
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn next(&self) -> usize {
        self.binds.len() + 1
    }
    fn push(&mut self, sql: impl FnOnce(usize) -> String, bind: Bind) {
        let n = self.next();
        self.parts.push(sql(n));
        self.binds.push(bind);
    }
    fn any_of(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            self.parts.push("1 = 0".into());
            return;
        }
        let start = self.next();
        let list: Vec<String> = (0..values.len())
            .map(|i| format!("${}", start + i))
            .collect();
        self.parts
            .push(format!("{column} IN ({})", list.join(", ")));
        self.binds.extend(values.iter().cloned().map(Bind::S));
    }
    fn after(&mut self, time: &str, id: &str, key: Option<&PageKey>) {
        if let Some(k) = key {
            let n = self.next();
            self.parts.push(format!(
                "({time} < ${n} OR ({time} = ${n} AND {id} < ${}))",
                n + 1
            ));
            self.binds.push(Bind::I(k.at));
            self.binds.push(Bind::S(k.id.clone()));
        }
    }
    fn sql(&self) -> String {
        if self.parts.is_empty() {
            "1 = 1".into()
        } else {
            self.parts.join(" AND ")
        }
    }
    async fn fetch(self, conn: &mut sqlx::AnyConnection, sql: &str) -> Result<Vec<AnyRow>> {
        let mut q = sqlx::query(sql);
        for b in self.binds {
            q = match b {
                Bind::I(i) => q.bind(i),
                Bind::S(s) => q.bind(s),
            };
        }
        Ok(q.fetch_all(conn).await?)
    }
}

/// Sessions "used with" an app: its headless sessions, and browser
/// sessions that were issued a code for it.
fn used_with(values_sql: &str) -> String {
    format!(
        "(s.client_id IN ({values_sql}) OR EXISTS (SELECT 1 FROM authorization_codes c \
         WHERE c.session_id = s.id AND c.client_id IN ({values_sql})))"
    )
}

const OUTBOX_COLUMNS: &str = "id, created_at, attempts, next_attempt_at, last_error, client_id, \
    recipient_hint, sent_at, failed_at, expires_at, \
    CASE WHEN payload IS NULL THEN 0 ELSE 1 END AS has_content";

fn outbox_from_row(row: &AnyRow) -> Result<OutboxRow> {
    let has: i32 = row.try_get("has_content")?;
    Ok(OutboxRow {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        client_id: row.try_get("client_id")?,
        recipient_hint: row.try_get("recipient_hint")?,
        sent_at: row.try_get("sent_at")?,
        failed_at: row.try_get("failed_at")?,
        expires_at: row.try_get("expires_at")?,
        has_content: has != 0,
    })
}

fn token_from_row(row: &AnyRow) -> Result<AdminToken> {
    Ok(AdminToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        ip: row.try_get("ip")?,
        detail: row.try_get("detail")?,
    })
}

/// Administration statements, available on connections and transactions.
#[allow(async_fn_in_trait)]
pub trait AdminQueries {
    /// Stores a new admin token by its keyed hash.
    async fn insert_admin_token(&mut self, token: &AdminToken, token_hash: &str) -> Result<()>;
    /// The token with this keyed hash, whatever its state.
    async fn admin_token_by_hash(&mut self, token_hash: &str) -> Result<Option<AdminToken>>;
    /// Every admin token, newest first.
    async fn admin_tokens(&mut self) -> Result<Vec<AdminToken>>;
    /// Revokes a token; false when there is no such live token.
    async fn revoke_admin_token(&mut self, id: &str, now: i64) -> Result<bool>;

    /// Appends to the audit log.
    async fn insert_audit(&mut self, record: &AuditRecord) -> Result<()>;
    /// A page of the audit log, newest first.
    async fn audit_page(&mut self, after: Option<&PageKey>, limit: i64)
        -> Result<Vec<AuditRecord>>;

    /// Users whose address starts with `prefix`, newest first; with
    /// `within`, only those with sign-in history in one of those apps.
    async fn users_page(
        &mut self,
        prefix: &str,
        within: Option<&[String]>,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<User>>;
    /// Whether the user has sign-in history in one of these apps.
    async fn user_in_apps(&mut self, user_id: &str, apps: &[String]) -> Result<bool>;
    /// Disables (`Some(now)`) or enables (`None`) a user; false if unknown.
    async fn set_user_disabled(&mut self, user_id: &str, at: Option<i64>) -> Result<bool>;

    /// Live sessions (not revoked, not past `expires_at` nor idle since
    /// `idle_since`), newest first.
    async fn sessions_page(
        &mut self,
        filter: &SessionFilter,
        now: i64,
        idle_since: i64,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<Session>>;
    /// The apps a session was used with (see [`SessionFilter::client_id`]).
    async fn session_apps(&mut self, session_id: &str) -> Result<Vec<String>>;

    /// Sign-in history, newest first.
    async fn events_page(
        &mut self,
        filter: &EventFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<SignInEvent>>;

    /// Outbox rows waiting (`failed = false`) or given up, newest first.
    async fn outbox_page(
        &mut self,
        failed: bool,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>>;
    /// One outbox row.
    async fn outbox_row(&mut self, id: &str) -> Result<Option<OutboxRow>>;
    /// Queues a given-up message again at `now` with `expires_at`; false
    /// when it is not a failed message with its content kept.
    async fn outbox_requeue(&mut self, id: &str, now: i64, expires_at: i64) -> Result<bool>;
    /// Notes the app and masked recipient of a queued message.
    async fn set_outbox_meta(
        &mut self,
        id: &str,
        client_id: Option<&str>,
        hint: &str,
    ) -> Result<()>;

    /// Deletes an app with its secrets, login requests, grants, codes and
    /// refresh tokens (foreign keys), and ends its headless sessions.
    async fn delete_app(&mut self, client_id: &str, now: i64) -> Result<bool>;
    /// Gives the app's current secrets (those without an end) the end
    /// `ends_at`; secrets already in a grace keep their own end.
    async fn end_app_secrets(&mut self, client_id: &str, ends_at: i64) -> Result<u64>;
    /// Ends every session and refresh token an app holds (headless
    /// sessions, and refresh tokens issued to it).
    async fn end_app_sessions(&mut self, client_id: &str, now: i64) -> Result<()>;
}

impl<C: crate::Connection> AdminQueries for C {
    async fn insert_admin_token(&mut self, t: &AdminToken, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_tokens (id, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(token_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn admin_token_by_hash(&mut self, token_hash: &str) -> Result<Option<AdminToken>> {
        sqlx::query(
            "SELECT id, name, created_at, expires_at, revoked_at FROM admin_tokens \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn admin_tokens(&mut self) -> Result<Vec<AdminToken>> {
        sqlx::query(
            "SELECT id, name, created_at, expires_at, revoked_at FROM admin_tokens \
             ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(token_from_row)
        .collect()
    }

    async fn revoke_admin_token(&mut self, id: &str, now: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected()
            == 1)
    }

    async fn insert_audit(&mut self, r: &AuditRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(r.at)
        .bind(&r.actor)
        .bind(&r.action)
        .bind(&r.target)
        .bind(&r.ip)
        .bind(&r.detail)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn audit_page(
        &mut self,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let mut w = Where::default();
        w.after("at", "id", after);
        let sql = format!(
            "SELECT id, at, actor, action, target, ip, detail FROM audit_log WHERE {} \
             ORDER BY at DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        w.fetch(self.raw(), &sql)
            .await?
            .iter()
            .map(audit_from_row)
            .collect()
    }

    async fn users_page(
        &mut self,
        prefix: &str,
        within: Option<&[String]>,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<User>> {
        let mut w = Where::default();
        if !prefix.is_empty() {
            // Prefix match without LIKE wildcards: compare the start.
            let p = prefix.to_owned();
            let len = p.chars().count() as i64;
            w.push(|n| format!("SUBSTR(u.email, 1, {len}) = ${n}"), Bind::S(p));
        }
        if let Some(apps) = within {
            w.any_of("e.client_id", apps);
            let list = w.parts.pop().unwrap_or_default();
            w.parts.push(format!(
                "EXISTS (SELECT 1 FROM sign_in_events e WHERE e.user_id = u.id AND {list})"
            ));
        }
        w.after("u.created_at", "u.id", after);
        let sql = format!(
            "SELECT u.id, u.email, u.created_at, u.last_sign_in_at, u.disabled_at FROM users u \
             WHERE {} ORDER BY u.created_at DESC, u.id DESC LIMIT {limit}",
            w.sql()
        );
        w.fetch(self.raw(), &sql)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn user_in_apps(&mut self, user_id: &str, apps: &[String]) -> Result<bool> {
        let mut w = Where::default();
        w.push(|n| format!("user_id = ${n}"), Bind::S(user_id.to_owned()));
        w.any_of("client_id", apps);
        let sql = format!("SELECT id FROM sign_in_events WHERE {} LIMIT 1", w.sql());
        Ok(!w.fetch(self.raw(), &sql).await?.is_empty())
    }

    async fn set_user_disabled(&mut self, user_id: &str, at: Option<i64>) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1")
                .bind(user_id)
                .bind(at)
                .execute(self.raw())
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn sessions_page(
        &mut self,
        filter: &SessionFilter,
        now: i64,
        idle_since: i64,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<Session>> {
        let mut w = Where::default();
        w.parts.push("s.revoked_at IS NULL".into());
        w.push(|n| format!("s.expires_at > ${n}"), Bind::I(now));
        w.push(|n| format!("s.last_seen_at > ${n}"), Bind::I(idle_since));
        if let Some(u) = &filter.user_id {
            w.push(|n| format!("s.user_id = ${n}"), Bind::S(u.clone()));
        }
        for apps in [
            filter.client_id.as_ref().map(|c| vec![c.clone()]),
            filter.within.clone(),
        ]
        .into_iter()
        .flatten()
        {
            if apps.is_empty() {
                w.parts.push("1 = 0".into());
                continue;
            }
            let start = w.next();
            let list: Vec<String> = (0..apps.len()).map(|i| format!("${}", start + i)).collect();
            w.binds.extend(apps.into_iter().map(Bind::S));
            w.parts.push(used_with(&list.join(", ")));
        }
        w.after("s.created_at", "s.id", after);
        let columns: Vec<String> = SESSION_COLUMNS
            .split(',')
            .map(|c| format!("s.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {} FROM sessions s WHERE {} ORDER BY s.created_at DESC, s.id DESC LIMIT {limit}",
            columns.join(", "),
            w.sql()
        );
        w.fetch(self.raw(), &sql)
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    async fn session_apps(&mut self, session_id: &str) -> Result<Vec<String>> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT client_id FROM sessions WHERE id = $1 \
             UNION SELECT client_id FROM authorization_codes WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_all(self.raw())
        .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn events_page(
        &mut self,
        f: &EventFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<SignInEvent>> {
        let mut w = Where::default();
        if let Some(u) = &f.user_id {
            w.push(|n| format!("user_id = ${n}"), Bind::S(u.clone()));
        }
        if let Some(c) = &f.client_id {
            w.push(|n| format!("client_id = ${n}"), Bind::S(c.clone()));
        }
        if let Some(apps) = &f.within {
            w.any_of("client_id", apps);
        }
        if let Some(o) = &f.outcome {
            w.push(|n| format!("outcome = ${n}"), Bind::S(o.clone()));
        }
        if let Some(s) = f.since {
            w.push(|n| format!("at >= ${n}"), Bind::I(s));
        }
        if let Some(u) = f.until {
            w.push(|n| format!("at < ${n}"), Bind::I(u));
        }
        w.after("at", "id", after);
        let sql = format!(
            "SELECT id, user_id, client_id, at, ip, user_agent, method, outcome FROM sign_in_events \
             WHERE {} ORDER BY at DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        w.fetch(self.raw(), &sql)
            .await?
            .iter()
            .map(event_from_row)
            .collect()
    }

    async fn outbox_page(
        &mut self,
        failed: bool,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let mut w = Where::default();
        w.parts.push(if failed {
            "failed_at IS NOT NULL".into()
        } else {
            "sent_at IS NULL AND failed_at IS NULL".into()
        });
        w.after("created_at", "id", after);
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {} ORDER BY created_at DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        w.fetch(self.raw(), &sql)
            .await?
            .iter()
            .map(outbox_from_row)
            .collect()
    }

    async fn outbox_row(&mut self, id: &str) -> Result<Option<OutboxRow>> {
        sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(outbox_from_row)
        .transpose()
    }

    async fn outbox_requeue(&mut self, id: &str, now: i64, expires_at: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE outbox SET failed_at = NULL, next_attempt_at = $2, expires_at = $3, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND failed_at IS NOT NULL AND payload IS NOT NULL",
        )
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .execute(self.raw())
        .await?
        .rows_affected()
            == 1)
    }

    async fn set_outbox_meta(
        &mut self,
        id: &str,
        client_id: Option<&str>,
        hint: &str,
    ) -> Result<()> {
        outbox_meta_op(id, client_id, hint)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn delete_app(&mut self, client_id: &str, now: i64) -> Result<bool> {
        self.end_app_sessions(client_id, now).await?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE client_id = $1",
            "DELETE FROM authorization_codes WHERE client_id = $1",
            "DELETE FROM grants WHERE client_id = $1",
            "DELETE FROM login_requests WHERE client_id = $1",
            "DELETE FROM app_secrets WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(client_id).execute(self.raw()).await?;
        }
        self.apps_changed();
        Ok(sqlx::query("DELETE FROM apps WHERE client_id = $1")
            .bind(client_id)
            .execute(self.raw())
            .await?
            .rows_affected()
            == 1)
    }

    async fn end_app_secrets(&mut self, client_id: &str, ends_at: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE app_secrets SET expires_at = $2 WHERE client_id = $1 AND expires_at IS NULL",
        )
        .bind(client_id)
        .bind(ends_at)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn end_app_sessions(&mut self, client_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(now)
        .execute(self.raw())
        .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(())
    }
}

/// [`AdminQueries::set_outbox_meta`]'s statement.
pub(crate) fn outbox_meta_op(id: &str, client_id: Option<&str>, hint: &str) -> crate::deferred::Op {
    use crate::deferred::Value;
    crate::deferred::Op::new(
        "UPDATE outbox SET client_id = $2, recipient_hint = $3 WHERE id = $1",
        vec![Value::from(id), Value::from(client_id), Value::from(hint)],
    )
}
