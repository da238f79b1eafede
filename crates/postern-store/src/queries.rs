//! Every statement Postern runs, one SQL text each for both databases.

use postern_core::{App, AppSettings};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::deferred::{Consume, Op, Value};
use crate::sealed::Raw;

use crate::rows::*;
use crate::{Result, StoreError};

/// Reads and writes, available on a pooled connection ([`crate::Conn`]) and
/// inside a transaction ([`crate::Tx`]) alike.
#[allow(async_fn_in_trait)]
pub trait Queries {
    // ---- apps -------------------------------------------------------------

    /// Stores a new app and, for confidential apps, its first secret hash.
    async fn insert_app(&mut self, app: &App, secret_hash: Option<&str>) -> Result<()>;
    /// The app with this client id.
    async fn app(&mut self, client_id: &str) -> Result<Option<App>>;
    /// The app with this client id from the app cache, read on this
    /// connection when not cached (see [`crate::Store::app`]). For request
    /// paths; read-modify-write paths use [`Queries::app`].
    async fn cached_app(&mut self, client_id: &str) -> Result<Option<App>>;
    /// All apps, oldest first.
    async fn apps(&mut self) -> Result<Vec<App>>;
    /// Replaces an app's name and settings; false when it does not exist.
    async fn update_app(&mut self, app: &App) -> Result<bool>;
    /// Adds a secret hash (rotation keeps the older ones until they expire).
    async fn add_app_secret(&mut self, client_id: &str, secret_hash: &str, now: i64) -> Result<()>;
    /// Hashes of the app's secrets that have not expired at `now`.
    async fn app_secret_hashes(&mut self, client_id: &str, now: i64) -> Result<Vec<String>>;

    // ---- users ------------------------------------------------------------

    /// The user with this normalized address.
    async fn user_by_email(&mut self, email: &str) -> Result<Option<User>>;
    /// The user with this id.
    async fn user(&mut self, id: &str) -> Result<Option<User>>;
    /// Finds the user with `email`, creating it with `new_id` if absent, and
    /// records a sign-in at `now`. Safe against concurrent creation.
    async fn upsert_user_sign_in(&mut self, new_id: &str, email: &str, now: i64) -> Result<User>;

    // ---- login requests ---------------------------------------------------

    /// Stores a new login request.
    async fn insert_login_request(&mut self, req: &LoginRequest) -> Result<()>;
    /// The login request with this id, live or not.
    async fn login_request(&mut self, id: &str) -> Result<Option<LoginRequest>>;
    /// The login request whose token hashes to `token_hash`, without consuming it.
    async fn login_request_by_token(&mut self, token_hash: &str) -> Result<Option<LoginRequest>>;
    /// Atomically consumes the live link request with this token hash; None
    /// when it is unknown, used, dead or expired. Exactly one of concurrent
    /// callers gets `Some`.
    async fn consume_login_request_by_token(
        &mut self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>>;
    /// Atomically consumes the live link request with this id (after its code
    /// was checked). Same guarantee as the token variant.
    async fn consume_login_request(&mut self, id: &str, now: i64) -> Result<Option<LoginRequest>>;
    /// Counts a wrong code; kills the request when `max_attempts` is reached.
    /// Returns the attempts so far, or None if the request was not live.
    async fn record_wrong_code(
        &mut self,
        id: &str,
        max_attempts: i64,
        now: i64,
    ) -> Result<Option<i64>>;
    /// SPEC §3.1 `device_policy = remote`: marks a live, not yet approved
    /// link request approved at `now` (the right number was typed on another
    /// device). Consumes nothing; true for exactly one of concurrent callers.
    async fn approve_remote(&mut self, id: &str, now: i64) -> Result<bool>;
    /// Atomically consumes a live request that [`Queries::approve_remote`]
    /// approved (the asking browser continues). Same guarantee as
    /// [`Queries::consume_login_request`]; None when not approved or not live.
    async fn consume_approved_login_request(
        &mut self,
        id: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>>;
    /// Marks a consumed request as finished (an authorization code or a
    /// denial was issued for it); true for exactly one caller.
    async fn complete_login_request(&mut self, id: &str, now: i64) -> Result<bool>;
    /// Consumes the live link request `which` names and, in the same
    /// statement, burns every other live request of its email and app (the
    /// start of every sign-in). Same guarantee as
    /// [`Queries::consume_login_request`]: exactly one of concurrent
    /// callers gets `Some`, and a caller that gets `None` changed nothing.
    async fn consume_burning_siblings(
        &mut self,
        which: Consume<'_>,
        now: i64,
    ) -> Result<Option<LoginRequest>>;
    /// Burns every other live request of this email and app.
    async fn burn_sibling_requests(
        &mut self,
        client_id: &str,
        email: &str,
        now: i64,
    ) -> Result<u64>;
    /// Burns the live requests this browser made for this app ("send again").
    async fn burn_browser_requests(
        &mut self,
        client_id: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<u64>;
    /// This browser's newest live request for the app, if any.
    async fn live_request_for_browser(
        &mut self,
        client_id: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>>;

    // ---- authorization codes ----------------------------------------------

    /// Stores an authorization code.
    async fn insert_authorization_code(&mut self, code: &AuthorizationCode) -> Result<()>;
    /// Atomically consumes a live code; None when unknown, used or expired.
    async fn consume_authorization_code(
        &mut self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>>;

    // ---- grants -----------------------------------------------------------

    /// The scope a user granted an app, if any.
    async fn grant(&mut self, user_id: &str, client_id: &str) -> Result<Option<String>>;
    /// Records (or widens) a grant.
    async fn upsert_grant(
        &mut self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<()>;

    // ---- sessions ---------------------------------------------------------

    /// Stores a new session.
    async fn insert_session(&mut self, session: &Session) -> Result<()>;
    /// The session whose secret hashes to `token_hash`, revoked or not.
    async fn session_by_token(&mut self, token_hash: &str) -> Result<Option<Session>>;

    // ---- history ----------------------------------------------------------

    /// Appends to sign-in history.
    async fn insert_sign_in_event(&mut self, event: &SignInEvent) -> Result<()>;
    /// A user's history, newest first.
    async fn sign_in_events(&mut self, user_id: &str, limit: i64) -> Result<Vec<SignInEvent>>;

    // ---- rate limits ------------------------------------------------------

    /// Counts one hit of `key` in the window starting at `window_start` if
    /// the window holds fewer than `limit`; false (and nothing counted) when
    /// it is full. Atomic on both databases.
    async fn rate_hit(&mut self, key: &str, window_start: i64, limit: i64) -> Result<bool>;
    /// [`Queries::rate_hit`] for several limits in one statement: each
    /// `(key, window_start, limit)` counts one hit if its window holds fewer
    /// than its limit. Returns, in order, whether each was counted; the
    /// caller drops the transaction when any was not, so that a refused
    /// request counts in none.
    async fn rate_hits(&mut self, hits: &[(&str, i64, i64)]) -> Result<Vec<bool>>;
    /// Hits counted for each `(key, window_start)`, in order, in one statement.
    async fn rate_counts(&mut self, keys: &[(&str, i64)]) -> Result<Vec<i64>>;
    /// [`Queries::rate_release`] of several slots in one statement.
    async fn rate_releases(&mut self, slots: &[&RateSlot]) -> Result<()>;
    /// Hits counted for `key` in the window starting at `window_start`.
    async fn rate_count(&mut self, key: &str, window_start: i64) -> Result<i64>;
    /// Gives back one hit of `key` in that window (never below zero).
    async fn rate_release(&mut self, key: &str, window_start: i64) -> Result<()>;

    // ---- outbox -----------------------------------------------------------

    /// Queues an encrypted message for delivery at `now`.
    async fn insert_outbox(
        &mut self,
        id: &str,
        message_id: &str,
        payload: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// Queues a sealed message ([`NewOutboxRow`]), leased or not: the
    /// instance that holds the lease delivers it without claiming it first.
    async fn insert_outbox_row(&mut self, row: &NewOutboxRow) -> Result<()>;
    /// Marks a message delivered and erases its content.
    async fn outbox_sent(&mut self, id: &str, now: i64) -> Result<()>;
    /// [`Queries::outbox_sent`] of several messages in one statement.
    async fn outbox_sent_all(&mut self, ids: &[&str], now: i64) -> Result<()>;
    /// Schedules another attempt and records why this one failed.
    async fn outbox_retry(&mut self, id: &str, next_attempt_at: i64, error: &str) -> Result<()>;
    /// Gives a message up and records why; its sealed content stays for an
    /// administrator's retry until the row is purged.
    async fn outbox_failed(&mut self, id: &str, now: i64, error: &str) -> Result<()>;
    /// Messages still waiting (not sent, not given up).
    async fn outbox_pending(&mut self) -> Result<i64>;
    /// How many messages wait and since when the oldest does (one
    /// aggregate, read at each `/metrics` scrape).
    async fn outbox_backlog(&mut self) -> Result<OutboxBacklog>;

    // ---- housekeeping -----------------------------------------------------

    /// Deletes expired requests, codes, sessions, delivered or failed outbox
    /// rows, old rate-limit windows and denylisted access tokens past their
    /// expiry, and history older than `retain_before`.
    async fn purge_expired(&mut self, now: i64, retain_before: i64) -> Result<Purged>;
}

pub(crate) fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => e.into(),
    }
}

/// A column type both drivers decode: what [`Cols::col`] reads.
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}
impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

/// A result row of either driver (sqlx's, or rusqlite's on SQLite's writer
/// thread), so one `*_from_row` maps both.
pub(crate) trait Cols {
    /// The column `name`, decoded.
    fn col<T: Column>(&self, name: &str) -> Result<T>;
}

impl Cols for AnyRow {
    fn col<T: Column>(&self, name: &str) -> Result<T> {
        Ok(self.try_get(name)?)
    }
}

pub(crate) fn app_from_row(row: &AnyRow) -> Result<App> {
    let settings: String = row.try_get("settings")?;
    let settings: AppSettings =
        serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(App {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        settings,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn user_from_row(row: &impl Cols) -> Result<User> {
    Ok(User {
        id: row.col("id")?,
        email: row.col("email")?,
        created_at: row.col("created_at")?,
        last_sign_in_at: row.col("last_sign_in_at")?,
        disabled_at: row.col("disabled_at")?,
    })
}

const LOGIN_COLUMNS: &str = "id, client_id, email, kind, token_hash, code_hash, code_attempts, \
    redirect_uri, state, nonce, code_challenge, scope, locale, auth_params, ip, user_agent, \
    binding_hash, remote_number, approved_at, completed_at, rate_slot, created_at, expires_at, consumed_at";

/// `auth_params` of a headless login request. A request's channel is
/// stored as this mark, the form every earlier version wrote and reads, so
/// no migration is needed and old and new instances can share a database
/// during an upgrade.
const HEADLESS_MARK: &str = r#"{"flow":"headless"}"#;

/// `auth_params` of an admin-issued browser login request (SPEC §3.5
/// `sign-in-link`), in the same column as [`HEADLESS_MARK`].
const ADMIN_BROWSER_MARK: &str = r#"{"flow":"browser","issued_by":"admin"}"#;

/// `auth_params` of an admin-issued headless login request.
const ADMIN_HEADLESS_MARK: &str = r#"{"flow":"headless","issued_by":"admin"}"#;

/// The stored mark of a request's channel and issuer (`None`: a browser
/// request the person made).
fn channel_mark(headless: bool, admin_issued: bool) -> Option<&'static str> {
    match (headless, admin_issued) {
        (false, false) => None,
        (true, false) => Some(HEADLESS_MARK),
        (false, true) => Some(ADMIN_BROWSER_MARK),
        (true, true) => Some(ADMIN_HEADLESS_MARK),
    }
}

fn stored_kind(kind: LoginKind) -> &'static str {
    match kind {
        LoginKind::Link => "link",
        LoginKind::NoAccount => "no_account",
        LoginKind::Session => "session",
    }
}

fn parse_kind(kind: &str) -> Result<LoginKind> {
    Ok(match kind {
        "link" => LoginKind::Link,
        "no_account" => LoginKind::NoAccount,
        "session" => LoginKind::Session,
        _ => return Err(StoreError::Corrupt(format!("login kind {kind:?}"))),
    })
}

fn login_from_row(row: &AnyRow) -> Result<LoginRequest> {
    let kind: String = row.try_get("kind")?;
    let auth_params: Option<String> = row.try_get("auth_params")?;
    let rate_slot: Option<String> = row.try_get("rate_slot")?;
    Ok(LoginRequest {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        email: row.try_get("email")?,
        kind: parse_kind(&kind)?,
        headless: matches!(
            auth_params.as_deref(),
            Some(HEADLESS_MARK | ADMIN_HEADLESS_MARK)
        ),
        admin_issued: matches!(
            auth_params.as_deref(),
            Some(ADMIN_BROWSER_MARK | ADMIN_HEADLESS_MARK)
        ),
        token_hash: row.try_get("token_hash")?,
        code_hash: row.try_get("code_hash")?,
        code_attempts: row.try_get("code_attempts")?,
        redirect_uri: row.try_get("redirect_uri")?,
        state: row.try_get("state")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        scope: row.try_get("scope")?,
        locale: row.try_get("locale")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        binding_hash: row.try_get("binding_hash")?,
        remote_number: row.try_get("remote_number")?,
        approved_at: row.try_get("approved_at")?,
        completed_at: row.try_get("completed_at")?,
        rate_slot: rate_slot.as_deref().and_then(RateSlot::from_stored),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        consumed_at: row.try_get("consumed_at")?,
    })
}

const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id, redirect_uri, \
    code_challenge, nonce, scope, amr, auth_time, created_at, expires_at, consumed_at";

pub(crate) fn code_from_row(row: &impl Cols) -> Result<AuthorizationCode> {
    Ok(AuthorizationCode {
        code_hash: row.col("code_hash")?,
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        session_id: row.col("session_id")?,
        redirect_uri: row.col("redirect_uri")?,
        code_challenge: row.col("code_challenge")?,
        nonce: row.col("nonce")?,
        scope: row.col("scope")?,
        amr: row.col("amr")?,
        auth_time: row.col("auth_time")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
        consumed_at: row.col("consumed_at")?,
    })
}

/// [`Queries::consume_authorization_code`]'s statement.
pub(crate) fn consume_code_op(code_hash: &str, now: i64) -> Op {
    Op::new(
        format!(
            "UPDATE authorization_codes SET consumed_at = $1 \
             WHERE code_hash = $2 AND consumed_at IS NULL AND expires_at > $1 RETURNING {CODE_COLUMNS}"
        ),
        vec![now.into(), code_hash.into()],
    )
}

/// [`Queries::user`]'s statement.
pub(crate) fn user_op(id: &str) -> Op {
    Op::new(
        "SELECT id, email, created_at, last_sign_in_at, disabled_at FROM users WHERE id = $1",
        vec![id.into()],
    )
}

/// [`crate::SessionQueries::session`]'s statement.
pub(crate) fn session_op(id: &str) -> Op {
    Op::new(
        format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
        vec![id.into()],
    )
}

pub(crate) const SESSION_COLUMNS: &str =
    "id, token_hash, user_id, client_id, kind, amr, auth_time, \
    created_at, last_seen_at, expires_at, ip, user_agent, revoked_at, passkey_ok";

pub(crate) fn session_from_row(row: &impl Cols) -> Result<Session> {
    Ok(Session {
        id: row.col("id")?,
        token_hash: row.col("token_hash")?,
        user_id: row.col("user_id")?,
        client_id: row.col("client_id")?,
        kind: row.col("kind")?,
        amr: row.col("amr")?,
        auth_time: row.col("auth_time")?,
        created_at: row.col("created_at")?,
        last_seen_at: row.col("last_seen_at")?,
        expires_at: row.col("expires_at")?,
        ip: row.col("ip")?,
        user_agent: row.col("user_agent")?,
        revoked_at: row.col("revoked_at")?,
        passkey_ok: row.col::<i64>("passkey_ok")? != 0,
    })
}

pub(crate) fn event_from_row(row: &AnyRow) -> Result<SignInEvent> {
    Ok(SignInEvent {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        at: row.try_get("at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        method: row.try_get("method")?,
        outcome: row.try_get("outcome")?,
    })
}

fn settings_json(app: &App) -> String {
    serde_json::to_string(&app.settings).expect("settings serialize")
}

impl<C: crate::Connection> Queries for C {
    async fn insert_app(&mut self, app: &App, secret_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO apps (client_id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&app.client_id)
        .bind(&app.name)
        .bind(settings_json(app))
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(self.raw())
        .await
        .map_err(conflict)?;
        self.apps_changed();
        if let Some(hash) = secret_hash {
            self.add_app_secret(&app.client_id, hash, app.created_at)
                .await?;
        }
        Ok(())
    }

    async fn app(&mut self, client_id: &str) -> Result<Option<App>> {
        sqlx::query("SELECT client_id, name, settings, created_at, updated_at FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(self.raw())
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn cached_app(&mut self, client_id: &str) -> Result<Option<App>> {
        let generation = match self.app_cache().0.get(client_id) {
            crate::apps::Lookup::Hit(app) => return Ok(Some(*app)),
            crate::apps::Lookup::Miss(generation) => generation,
        };
        let app = self.app(client_id).await?;
        if let (Some(app), (cache, true)) = (&app, self.app_cache()) {
            cache.put(generation, app);
        }
        Ok(app)
    }

    async fn apps(&mut self) -> Result<Vec<App>> {
        sqlx::query("SELECT client_id, name, settings, created_at, updated_at FROM apps ORDER BY created_at, client_id")
            .fetch_all(self.raw())
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    async fn update_app(&mut self, app: &App) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE apps SET name = $1, settings = $2, updated_at = $3 WHERE client_id = $4",
        )
        .bind(&app.name)
        .bind(settings_json(app))
        .bind(app.updated_at)
        .bind(&app.client_id)
        .execute(self.raw())
        .await?;
        self.apps_changed();
        Ok(done.rows_affected() == 1)
    }

    async fn add_app_secret(&mut self, client_id: &str, secret_hash: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO app_secrets (id, client_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(postern_core::crypto::random_id())
            .bind(client_id)
            .bind(secret_hash)
            .bind(now)
            .execute(self.raw())
            .await?;
        self.apps_changed();
        Ok(())
    }

    async fn app_secret_hashes(&mut self, client_id: &str, now: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT secret_hash FROM app_secrets WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC",
        )
        .bind(client_id)
        .bind(now)
        .fetch_all(self.raw())
        .await?)
    }

    async fn user_by_email(&mut self, email: &str) -> Result<Option<User>> {
        sqlx::query("SELECT id, email, created_at, last_sign_in_at, disabled_at FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(self.raw())
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user(&mut self, id: &str) -> Result<Option<User>> {
        user_op(id).fetch_optional(self.raw(), user_from_row).await
    }

    async fn upsert_user_sign_in(&mut self, new_id: &str, email: &str, now: i64) -> Result<User> {
        let op = upsert_user_op(new_id, email, now);
        let row = sqlx::query_with(&op.sql, crate::deferred::arguments(op.args)?)
            .fetch_one(self.raw())
            .await?;
        user_from_row(&row)
    }

    async fn insert_login_request(&mut self, r: &LoginRequest) -> Result<()> {
        insert_login_request_op(r).execute(self.raw()).await?;
        Ok(())
    }

    async fn login_request(&mut self, id: &str) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "SELECT {LOGIN_COLUMNS} FROM login_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn login_request_by_token(&mut self, token_hash: &str) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "SELECT {LOGIN_COLUMNS} FROM login_requests WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn consume_login_request_by_token(
        &mut self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "UPDATE login_requests SET consumed_at = $1 \
             WHERE token_hash = $2 AND kind = 'link' AND consumed_at IS NULL AND expires_at > $1 \
             RETURNING {LOGIN_COLUMNS}"
        ))
        .bind(now)
        .bind(token_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn consume_login_request(&mut self, id: &str, now: i64) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "UPDATE login_requests SET consumed_at = $1 \
             WHERE id = $2 AND kind = 'link' AND consumed_at IS NULL AND expires_at > $1 \
             RETURNING {LOGIN_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn record_wrong_code(
        &mut self,
        id: &str,
        max_attempts: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE login_requests SET code_attempts = code_attempts + 1, \
             consumed_at = CASE WHEN code_attempts + 1 >= $2 THEN $3 ELSE consumed_at END \
             WHERE id = $1 AND consumed_at IS NULL AND expires_at > $3 RETURNING code_attempts",
        )
        .bind(id)
        .bind(max_attempts)
        .bind(now)
        .fetch_optional(self.raw())
        .await?)
    }

    async fn approve_remote(&mut self, id: &str, now: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE login_requests SET approved_at = $2 \
             WHERE id = $1 AND kind = 'link' AND approved_at IS NULL AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected()
            == 1)
    }

    async fn consume_approved_login_request(
        &mut self,
        id: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "UPDATE login_requests SET consumed_at = $1 \
             WHERE id = $2 AND kind = 'link' AND approved_at IS NOT NULL AND consumed_at IS NULL AND expires_at > $1 \
             RETURNING {LOGIN_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn complete_login_request(&mut self, id: &str, now: i64) -> Result<bool> {
        Ok(complete_login_request_op(id, now)
            .execute(self.raw())
            .await?
            == 1)
    }

    async fn consume_burning_siblings(
        &mut self,
        which: Consume<'_>,
        now: i64,
    ) -> Result<Option<LoginRequest>> {
        let op = consume_op(which, now);
        let rows = sqlx::query_with(&op.sql, crate::deferred::arguments(op.args)?)
            .fetch_all(self.raw())
            .await?;
        for row in &rows {
            let request = login_from_row(row)?;
            if is_consume_target(which, &request.id, &request.token_hash) {
                return Ok(Some(request));
            }
        }
        Ok(None)
    }

    async fn burn_sibling_requests(
        &mut self,
        client_id: &str,
        email: &str,
        now: i64,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE login_requests SET consumed_at = $1 WHERE client_id = $2 AND email = $3 AND consumed_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(client_id)
        .bind(email)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn burn_browser_requests(
        &mut self,
        client_id: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE login_requests SET consumed_at = $1 WHERE client_id = $2 AND binding_hash = $3 AND consumed_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(client_id)
        .bind(binding_hash)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn live_request_for_browser(
        &mut self,
        client_id: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<Option<LoginRequest>> {
        sqlx::query(&format!(
            "SELECT {LOGIN_COLUMNS} FROM login_requests \
             WHERE client_id = $1 AND binding_hash = $2 AND consumed_at IS NULL AND expires_at > $3 \
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(client_id)
        .bind(binding_hash)
        .bind(now)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(login_from_row)
        .transpose()
    }

    async fn insert_authorization_code(&mut self, c: &AuthorizationCode) -> Result<()> {
        insert_code_op(c).execute(self.raw()).await?;
        Ok(())
    }

    async fn consume_authorization_code(
        &mut self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        consume_code_op(code_hash, now)
            .fetch_optional(self.raw(), code_from_row)
            .await
    }

    async fn grant(&mut self, user_id: &str, client_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT scope FROM grants WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(self.raw())
                .await?,
        )
    }

    async fn upsert_grant(
        &mut self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO grants (user_id, client_id, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = $3, updated_at = $4",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn insert_session(&mut self, s: &Session) -> Result<()> {
        insert_session_op(s).execute(self.raw()).await?;
        Ok(())
    }

    async fn session_by_token(&mut self, token_hash: &str) -> Result<Option<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn insert_sign_in_event(&mut self, e: &SignInEvent) -> Result<()> {
        insert_event_op(e).execute(self.raw()).await?;
        Ok(())
    }

    async fn sign_in_events(&mut self, user_id: &str, limit: i64) -> Result<Vec<SignInEvent>> {
        sqlx::query(
            "SELECT id, user_id, client_id, at, ip, user_agent, method, outcome FROM sign_in_events \
             WHERE user_id = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn rate_hit(&mut self, key: &str, window_start: i64, limit: i64) -> Result<bool> {
        sqlx::query(
            "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 0) ON CONFLICT (key, window_start) DO NOTHING",
        )
        .bind(key)
        .bind(window_start)
        .execute(self.raw())
        .await?;
        // The WHERE clause is re-checked under the row lock on PostgreSQL and
        // runs under the database write lock on SQLite: the count never passes `limit`.
        let counted = sqlx::query(
            "UPDATE rate_limits SET count = count + 1 WHERE key = $1 AND window_start = $2 AND count < $3",
        )
        .bind(key)
        .bind(window_start)
        .bind(limit)
        .execute(self.raw())
        .await?;
        Ok(counted.rows_affected() == 1)
    }

    async fn rate_count(&mut self, key: &str, window_start: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT count FROM rate_limits WHERE key = $1 AND window_start = $2",
            )
            .bind(key)
            .bind(window_start)
            .fetch_optional(self.raw())
            .await?
            .unwrap_or(0),
        )
    }

    async fn rate_release(&mut self, key: &str, window_start: i64) -> Result<()> {
        let slot = RateSlot {
            key: key.to_owned(),
            window_start,
        };
        rate_release_op(&[&slot]).execute(self.raw()).await?;
        Ok(())
    }

    async fn rate_hits(&mut self, hits: &[(&str, i64, i64)]) -> Result<Vec<bool>> {
        if !distinct_keys(hits) {
            // One statement may not change a row twice.
            let mut counted = Vec::with_capacity(hits.len());
            for (key, window_start, limit) in hits {
                counted.push(self.rate_hit(key, *window_start, *limit).await?);
            }
            return Ok(counted);
        }
        let Some(op) = rate_hits_op(hits) else {
            return Ok(vec![false; hits.len()]);
        };
        let counted: Vec<String> =
            sqlx::query_scalar_with(&op.sql, crate::deferred::arguments(op.args)?)
                .fetch_all(self.raw())
                .await?;
        Ok(rate_hits_counted(hits, &counted))
    }

    async fn rate_counts(&mut self, keys: &[(&str, i64)]) -> Result<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut terms = Vec::with_capacity(keys.len());
        let mut args: Vec<Value> = Vec::with_capacity(keys.len() * 2);
        for (key, window_start) in keys {
            let n = args.len();
            terms.push(format!("(key = ${} AND window_start = ${})", n + 1, n + 2));
            args.extend([Value::from(*key), Value::from(*window_start)]);
        }
        let sql = format!(
            "SELECT key, window_start, count FROM rate_limits WHERE {}",
            terms.join(" OR ")
        );
        let rows = sqlx::query_with(&sql, crate::deferred::arguments(args)?)
            .fetch_all(self.raw())
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key")?;
            let window_start: i64 = row.try_get("window_start")?;
            let count: i64 = row.try_get("count")?;
            found.push((key, window_start, count));
        }
        Ok(keys
            .iter()
            .map(|(key, window_start)| {
                found
                    .iter()
                    .find(|(k, w, _)| k.as_str() == *key && w == window_start)
                    .map_or(0, |f| f.2)
            })
            .collect())
    }

    async fn rate_releases(&mut self, slots: &[&RateSlot]) -> Result<()> {
        if !slots.is_empty() {
            rate_release_op(slots).execute(self.raw()).await?;
        }
        Ok(())
    }

    async fn insert_outbox(
        &mut self,
        id: &str,
        message_id: &str,
        payload: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (id, message_id, payload, attempts, next_attempt_at, expires_at, created_at) \
             VALUES ($1, $2, $3, 0, $4, $5, $4)",
        )
        .bind(id)
        .bind(message_id)
        .bind(payload)
        .bind(now)
        .bind(expires_at)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn insert_outbox_row(&mut self, row: &NewOutboxRow) -> Result<()> {
        outbox_insert_op(row).execute(self.raw()).await?;
        Ok(())
    }

    async fn outbox_sent(&mut self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET payload = NULL, sent_at = $2, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn outbox_sent_all(&mut self, ids: &[&str], now: i64) -> Result<()> {
        if !ids.is_empty() {
            outbox_sent_all_op(ids, now).execute(self.raw()).await?;
        }
        Ok(())
    }

    async fn outbox_retry(&mut self, id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
        outbox_retry_op(id, next_attempt_at, error)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn outbox_failed(&mut self, id: &str, now: i64, error: &str) -> Result<()> {
        outbox_failed_op(id, now, error).execute(self.raw()).await?;
        Ok(())
    }

    async fn outbox_pending(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.raw())
        .await?)
    }

    async fn outbox_backlog(&mut self) -> Result<OutboxBacklog> {
        let (pending, oldest_created_at): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.raw())
        .await?;
        Ok(OutboxBacklog {
            pending,
            oldest_created_at,
        })
    }

    async fn purge_expired(&mut self, now: i64, retain_before: i64) -> Result<Purged> {
        async fn run(conn: &mut impl Raw, sql: &str, a: i64) -> Result<u64> {
            Ok(sqlx::query(sql)
                .bind(a)
                .execute(conn.raw())
                .await?
                .rows_affected())
        }
        // Keep consumed or expired requests for an hour so a late click gets
        // "already used" / "expired" rather than "unknown".
        let grace = now - 3600;
        Ok(Purged {
            login_requests: run(self, "DELETE FROM login_requests WHERE expires_at < $1", grace).await?,
            authorization_codes: run(self, "DELETE FROM authorization_codes WHERE expires_at < $1", grace).await?,
            sessions: run(self, "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1", grace).await?,
            refresh_tokens: run(
                self,
                "DELETE FROM refresh_tokens WHERE revoked_at < $1 \
                 OR session_id NOT IN (SELECT id FROM sessions)",
                grace,
            )
            .await?,
            outbox: run(self, "DELETE FROM outbox WHERE ((sent_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < $1) OR expires_at < $1", grace).await?,
            rate_limits: run(self, "DELETE FROM rate_limits WHERE window_start < $1", now - 2 * 86_400).await?,
            sign_in_events: run(self, "DELETE FROM sign_in_events WHERE at < $1", retain_before).await?,
            // An hour past `exp`, like the rows above: an instance whose clock
            // runs a little behind still refuses the revoked token.
            revoked_access_tokens: run(self, "DELETE FROM revoked_access_tokens WHERE expires_at < $1", grace).await?,
        })
    }
}

// ---- statements shared by direct and deferred writes ----------------------

pub(crate) fn insert_login_request_op(r: &LoginRequest) -> Op {
    let auth_params = channel_mark(r.headless, r.admin_issued);
    Op::new(
        format!(
            "INSERT INTO login_requests ({LOGIN_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
        ),
        vec![
            Value::from(&r.id),
            Value::from(&r.client_id),
            Value::from(&r.email),
            Value::from(stored_kind(r.kind)),
            Value::from(&r.token_hash),
            Value::from(&r.code_hash),
            Value::from(r.code_attempts),
            Value::from(&r.redirect_uri),
            Value::from(&r.state),
            Value::from(&r.nonce),
            Value::from(&r.code_challenge),
            Value::from(&r.scope),
            Value::from(&r.locale),
            Value::from(auth_params),
            Value::from(&r.ip),
            Value::from(&r.user_agent),
            Value::from(&r.binding_hash),
            Value::from(&r.remote_number),
            Value::from(r.approved_at),
            Value::from(r.completed_at),
            Value::from(r.rate_slot.as_ref().map(RateSlot::to_stored)),
            Value::from(r.created_at),
            Value::from(r.expires_at),
            Value::from(r.consumed_at),
        ],
    )
}

pub(crate) fn complete_login_request_op(id: &str, now: i64) -> Op {
    Op::new(
        "UPDATE login_requests SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL AND consumed_at IS NOT NULL",
        vec![Value::from(id), Value::from(now)],
    )
}

pub(crate) fn burn_browser_op(client_id: &str, binding_hash: &str, now: i64) -> Op {
    Op::new(
        "UPDATE login_requests SET consumed_at = $1 WHERE client_id = $2 AND binding_hash = $3 AND consumed_at IS NULL AND expires_at > $1",
        vec![Value::from(now), Value::from(client_id), Value::from(binding_hash)],
    )
}

pub(crate) fn insert_code_op(c: &AuthorizationCode) -> Op {
    Op::new(
        format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ),
        vec![
            Value::from(&c.code_hash),
            Value::from(&c.client_id),
            Value::from(&c.user_id),
            Value::from(&c.session_id),
            Value::from(&c.redirect_uri),
            Value::from(&c.code_challenge),
            Value::from(&c.nonce),
            Value::from(&c.scope),
            Value::from(&c.amr),
            Value::from(c.auth_time),
            Value::from(c.created_at),
            Value::from(c.expires_at),
            Value::from(c.consumed_at),
        ],
    )
}

pub(crate) fn insert_session_op(s: &Session) -> Op {
    Op::new(
        format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        session_values(s),
    )
}

/// [`insert_session_op`] with the app's subject of the person (a headless
/// session), in the same statement: a later `UPDATE` of the row would not
/// see it when PostgreSQL runs the deferred writes as one statement.
pub(crate) fn insert_headless_session_op(s: &Session, subject: &str) -> Op {
    let mut args = session_values(s);
    args.push(Value::from(subject));
    Op::new(
        format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}, subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ),
        args,
    )
}

fn session_values(s: &Session) -> Vec<Value> {
    vec![
        Value::from(&s.id),
        Value::from(&s.token_hash),
        Value::from(&s.user_id),
        Value::from(&s.client_id),
        Value::from(&s.kind),
        Value::from(&s.amr),
        Value::from(s.auth_time),
        Value::from(s.created_at),
        Value::from(s.last_seen_at),
        Value::from(s.expires_at),
        Value::from(&s.ip),
        Value::from(&s.user_agent),
        Value::from(s.revoked_at),
        Value::from(i64::from(s.passkey_ok)),
    ]
}

pub(crate) fn insert_event_op(e: &SignInEvent) -> Op {
    Op::new(
        "INSERT INTO sign_in_events (id, user_id, client_id, at, ip, user_agent, method, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            Value::from(&e.id),
            Value::from(&e.user_id),
            Value::from(&e.client_id),
            Value::from(e.at),
            Value::from(&e.ip),
            Value::from(&e.user_agent),
            Value::from(&e.method),
            Value::from(&e.outcome),
        ],
    )
}

pub(crate) fn rate_release_op(slots: &[&RateSlot]) -> Op {
    let mut terms = Vec::with_capacity(slots.len());
    let mut args = Vec::with_capacity(slots.len() * 2);
    for slot in slots {
        let n = args.len();
        terms.push(format!("(key = ${} AND window_start = ${})", n + 1, n + 2));
        args.extend([Value::from(&slot.key), Value::from(slot.window_start)]);
    }
    Op::new(
        format!(
            "UPDATE rate_limits SET count = count - 1 WHERE count > 0 AND ({})",
            terms.join(" OR ")
        ),
        args,
    )
}

// ---- statements [`crate::Writes`] shares with the methods above -----------

/// The multi-row upsert of [`Queries::rate_hits`], `None` when no limit
/// can count (every limit zero or less). A limit of zero or less counts
/// nothing; the rest go in one upsert whose rows are in key order, so that
/// two transactions counting overlapping keys on PostgreSQL lock them in
/// the same order (no deadlock). A new window starts at one; a known one
/// counts only while below its limit (re-checked under the row lock on
/// PostgreSQL, under the write lock on SQLite); `RETURNING key` names the
/// rows that counted. The keys must be distinct ([`distinct_keys`]): one
/// statement may not change a row twice.
pub(crate) fn rate_hits_op(hits: &[(&str, i64, i64)]) -> Option<Op> {
    let mut todo: Vec<&(&str, i64, i64)> = hits.iter().filter(|h| h.2 > 0).collect();
    if todo.is_empty() {
        return None;
    }
    todo.sort_by(|a, b| a.0.cmp(b.0));
    let mut values = Vec::with_capacity(todo.len());
    let mut limits = String::new();
    let mut args: Vec<Value> = Vec::with_capacity(todo.len() * 3);
    for (key, window_start, limit) in &todo {
        let n = args.len();
        values.push(format!("(${}, ${}, 1)", n + 1, n + 2));
        limits.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 3));
        args.extend([
            Value::from(*key),
            Value::from(*window_start),
            Value::from(*limit),
        ]);
    }
    Some(Op::new(
        format!(
            "INSERT INTO rate_limits (key, window_start, count) VALUES {} \
             ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1 \
             WHERE rate_limits.count < CASE rate_limits.key{limits} END \
             RETURNING key",
            values.join(", ")
        ),
        args,
    ))
}

/// Whether each of `hits` counted, from the keys [`rate_hits_op`] returned.
pub(crate) fn rate_hits_counted(hits: &[(&str, i64, i64)], counted: &[String]) -> Vec<bool> {
    hits.iter()
        .map(|(key, _, limit)| *limit > 0 && counted.iter().any(|c| c.as_str() == *key))
        .collect()
}

/// Whether `hits` may go in one [`rate_hits_op`] (no key twice).
pub(crate) fn distinct_keys(hits: &[(&str, i64, i64)]) -> bool {
    hits.iter()
        .map(|h| h.0)
        .collect::<std::collections::HashSet<_>>()
        .len()
        == hits.len()
}

/// [`Queries::upsert_user_sign_in`]'s statement, returning the user.
pub(crate) fn upsert_user_op(new_id: &str, email: &str, now: i64) -> Op {
    Op::new(
        "INSERT INTO users (id, email, created_at, last_sign_in_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (email) DO UPDATE SET last_sign_in_at = $3 \
         RETURNING id, email, created_at, last_sign_in_at, disabled_at",
        vec![Value::from(new_id), Value::from(email), Value::from(now)],
    )
}

/// [`Queries::consume_burning_siblings`]'s statement, returning every
/// request it consumed (the target among them when it was live). The
/// target is live exactly when the subquery finds it, and then it is one
/// of its pair's live requests: one statement consumes it and burns its
/// siblings, or (not live) changes nothing. On PostgreSQL a concurrent
/// caller waits on the row lock and then finds the target consumed.
pub(crate) fn consume_op(which: Consume<'_>, now: i64) -> Op {
    let (target, value) = match which {
        Consume::Token(hash) => ("token_hash = $2 AND kind = 'link'", hash),
        Consume::Id(id) => ("id = $2 AND kind = 'link'", id),
        Consume::Approved(id) => ("id = $2 AND kind = 'link' AND approved_at IS NOT NULL", id),
    };
    Op::new(
        format!(
            "UPDATE login_requests SET consumed_at = $1 \
             WHERE consumed_at IS NULL AND expires_at > $1 AND (client_id, email) = \
               (SELECT client_id, email FROM login_requests \
                WHERE {target} AND consumed_at IS NULL AND expires_at > $1) \
             RETURNING {LOGIN_COLUMNS}"
        ),
        vec![Value::from(now), Value::from(value)],
    )
}

/// Whether a request [`consume_op`] returned (its `id` and `token_hash`)
/// is the one `which` names.
pub(crate) fn is_consume_target(which: Consume<'_>, id: &str, token_hash: &str) -> bool {
    match which {
        Consume::Token(hash) => token_hash == hash,
        Consume::Id(target) | Consume::Approved(target) => id == target,
    }
}

/// A message for the outbox, sealed; leased to an instance when that
/// instance's worker sends it from memory after the commit.
#[derive(Debug, Clone)]
pub struct NewOutboxRow {
    /// The row id.
    pub id: String,
    /// Its `Message-ID`.
    pub message_id: String,
    /// The sealed message.
    pub payload: String,
    /// When it was queued (and first due).
    pub now: i64,
    /// When it is no longer worth sending.
    pub expires_at: i64,
    /// The instance that holds it and until when (its first attempt
    /// counted), or `None`: due for any worker.
    pub lease: Option<(String, i64)>,
    /// What the admin outbox shows of it (SPEC §3.5: the app and a masked
    /// address, never the address), written with the row.
    pub meta: Option<(Option<String>, String)>,
}

pub(crate) fn outbox_insert_op(row: &NewOutboxRow) -> Op {
    let (owner, until) = match &row.lease {
        Some((owner, until)) => (Some(owner.as_str()), Some(*until)),
        None => (None, None),
    };
    let (client_id, hint) = match &row.meta {
        Some((client_id, hint)) => (client_id.as_deref(), Some(hint.as_str())),
        None => (None, None),
    };
    Op::new(
        "INSERT INTO outbox (id, message_id, payload, attempts, next_attempt_at, expires_at, created_at, lease_owner, lease_until, client_id, recipient_hint) \
         VALUES ($1, $2, $3, $6, $4, $5, $4, $7, $8, $9, $10)",
        vec![
            Value::from(&row.id),
            Value::from(&row.message_id),
            Value::from(&row.payload),
            Value::from(row.now),
            Value::from(row.expires_at),
            Value::from(i64::from(row.lease.is_some())),
            Value::from(owner),
            Value::from(until),
            Value::from(client_id),
            Value::from(hint),
        ],
    )
}

/// Marks the messages `ids` delivered at `now` and erases their content.
pub(crate) fn outbox_sent_all_op(ids: &[&str], now: i64) -> Op {
    let list = (0..ids.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let mut args = Vec::with_capacity(ids.len() + 1);
    args.push(Value::from(now));
    args.extend(ids.iter().map(|id| Value::from(*id)));
    Op::new(
        format!(
            "UPDATE outbox SET payload = NULL, sent_at = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id IN ({list})"
        ),
        args,
    )
}

pub(crate) fn outbox_retry_op(id: &str, next_attempt_at: i64, error: &str) -> Op {
    Op::new(
        "UPDATE outbox SET next_attempt_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL WHERE id = $1",
        vec![Value::from(id), Value::from(next_attempt_at), Value::from(error)],
    )
}

pub(crate) fn outbox_failed_op(id: &str, now: i64, error: &str) -> Op {
    // The sealed content stays until the row is purged: an administrator
    // may retry a given-up message (SPEC §3.5).
    Op::new(
        "UPDATE outbox SET failed_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL WHERE id = $1",
        vec![Value::from(id), Value::from(now), Value::from(error)],
    )
}
