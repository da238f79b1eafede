//! Postern's storage.
//!
//! One implementation serves SQLite (the embedded default) and PostgreSQL
//! (several instances behind a load balancer) through sqlx's `Any` driver:
//! every statement is one SQL text with `$N` placeholders, times are unix
//! seconds computed in Rust and ids are made in Rust, so both databases run
//! the same code. Where the dialects truly differ (taking outbox leases with
//! `FOR UPDATE SKIP LOCKED`, `BEGIN IMMEDIATE` on SQLite) the code branches on
//! [`Backend`] in plain sight. One contract suite (`tests/contract.rs`) runs
//! against both.
//!
//! Reads and writes are methods of [`Queries`] (and its siblings), which
//! [`Conn`] and [`Tx`] implement, so the same method runs on a pooled
//! connection or inside a transaction ([`Store::begin`]). Both are opaque:
//! no sqlx type crosses this crate's boundary, so callers depend on the
//! store, never on the driver (the `raw-sql` feature lends tests the driver's
//! connection to inspect rows; the server never enables it).

mod account;
mod admin;
mod apps;
mod backup;
mod dashboard;
mod deferred;
mod keys;
mod outbox;
mod passkeys;
mod queries;
mod rekey;
mod rows;
mod sessions;
mod writer;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor, Transaction};
use thiserror::Error;

use postern_core::App;

pub use account::{AccountQueries, UserGrant};
pub use admin::*;
pub use apps::APP_CACHE_TTL;
pub use dashboard::DashboardQueries;
pub use deferred::{Consume, Defer};
pub use keys::{KeyQueries, StoredKey};
pub use outbox::OutboxDepth;
pub use passkeys::{PasskeyChallenge, PasskeyQueries, StoredPasskey};
pub use queries::{NewOutboxRow, Queries};
pub use rekey::{RekeyQueries, Sealed, SealedKind};
pub use rows::*;
pub use sessions::{RefreshToken, SessionQueries};
pub use writer::Writes;

/// A failure of the database. Callers treat all of these as "unavailable"
/// (503) except [`StoreError::Conflict`].
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// The database did not answer in time (`/readyz`, pool exhausted).
    #[error("the database did not answer in time")]
    TimedOut,
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[source] DatabaseError),
    /// A unique constraint refused the write.
    #[error("the record already exists")]
    Conflict,
    /// A stored value could not be read back (corrupt JSON settings, say).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL is not one Postern supports.
    #[error("unsupported database URL: use sqlite://path or postgres://...")]
    UnsupportedUrl,
}

/// What the database driver said, kept opaque so that no driver type is
/// part of the store's API; its text and source chain are for logs.
#[derive(Debug)]
pub struct DatabaseError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => StoreError::TimedOut,
            e => StoreError::Database(DatabaseError(Box::new(e))),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(DatabaseError(Box::new(e)))
    }
}

/// Result of a store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A pooled connection to Postern's database.
#[derive(Clone, Debug)]
pub struct Store {
    /// Readers (and every statement on PostgreSQL).
    pool: AnyPool,
    /// SQLite: the one connection [`Store::begin`] writes on, so its page
    /// cache stays warm instead of being invalidated by other connections'
    /// writes. PostgreSQL: the same pool as `pool`.
    write_pool: AnyPool,
    backend: Backend,
    /// SQLite's one writer, taken by [`Store::begin`] (see [`Tx`]).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// SQLite: where [`Store::begin`] callers queue before the writer, so
    /// that at most one of them waits on `writer` and a
    /// [`Store::begin_first`] caller is next but one.
    queue: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Callers waiting for a pooled connection now ([`Store::pool_stats`]).
    waiting: std::sync::Arc<AtomicUsize>,
    /// Apps by client id, for the request paths ([`Store::app`]).
    apps: std::sync::Arc<apps::AppCache>,
    /// SQLite file: the thread that runs [`Store::write`] functions.
    sqlite_writer: Option<writer::SqliteWriter>,
}

/// The connection pool at one instant, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections lent out.
    pub in_use: u32,
    /// Connections open and free.
    pub idle: u32,
    /// Callers waiting for a connection ([`Store::conn`], [`Store::begin`]).
    pub waiting: u32,
    /// The pool's size limit.
    pub max: u32,
}

/// Counts one caller waiting for a connection while it lives, so a caller
/// that gives up (a dropped request) stops counting too.
struct Waiting(std::sync::Arc<AtomicUsize>);

impl Waiting {
    fn start(count: &std::sync::Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(std::sync::Arc::clone(count))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A pooled connection; [`Queries`] methods run on it directly.
pub struct Conn {
    inner: PoolConnection<Any>,
    apps: std::sync::Arc<apps::AppCache>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn(..)")
    }
}

/// An open write transaction; [`Queries`] methods run inside it; commit to
/// keep, drop to roll back.
///
/// On SQLite it also holds this process's writer lock: SQLite allows one
/// writer at a time, and letting transactions queue on an async mutex
/// instead of SQLite's sleeping busy handler keeps tail latency low.
pub struct Tx {
    inner: Transaction<'static, Any>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    backend: Backend,
    apps: std::sync::Arc<apps::AppCache>,
    /// An app was written: the cache forgets every app at commit.
    apps_changed: bool,
    /// Writes whose answer nobody needs, sent in one round trip at commit
    /// (see [`Tx::defer_session`] and its siblings).
    deferred: deferred::Deferred,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx(..)")
    }
}

impl Tx {
    /// Runs the deferred writes, then commits the transaction (and
    /// releases the writer lock).
    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        self.inner.commit().await?;
        if self.apps_changed {
            self.apps.clear();
        }
        Ok(())
    }

    /// Rolls the transaction back now (dropping it does so too).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.inner.rollback().await?)
    }
}

/// Where statements run: a pooled [`Conn`] or an open [`Tx`]. Sealed: only
/// this crate makes them, so the driver stays an implementation detail.
pub trait Connection: sealed::Raw {}
impl Connection for Conn {}
impl Connection for Tx {}

pub(crate) mod sealed {
    /// Where [`super::Defer`] writes go: a [`super::Tx`]'s commit or a
    /// [`super::Writes`] function's end.
    pub trait Defer {
        fn defer_op(&mut self, op: crate::deferred::Op);
    }

    /// The driver connection under a [`super::Conn`] or [`super::Tx`].
    pub trait Raw {
        fn raw(&mut self) -> &mut sqlx::AnyConnection;
        /// An app was written through this connection: the app cache
        /// forgets every app (a [`super::Tx`] at its commit).
        fn apps_changed(&mut self);
        /// The app cache, and whether what this connection reads may go
        /// into it (not inside a transaction that changed an app).
        fn app_cache(&self) -> (&crate::apps::AppCache, bool);
    }
    impl Raw for super::Conn {
        fn raw(&mut self) -> &mut sqlx::AnyConnection {
            &mut self.inner
        }
        fn apps_changed(&mut self) {
            self.apps.clear();
        }
        fn app_cache(&self) -> (&crate::apps::AppCache, bool) {
            (&self.apps, true)
        }
    }
    impl Raw for super::Tx {
        fn raw(&mut self) -> &mut sqlx::AnyConnection {
            &mut self.inner
        }
        fn apps_changed(&mut self) {
            self.apps_changed = true;
        }
        fn app_cache(&self) -> (&crate::apps::AppCache, bool) {
            (&self.apps, !self.apps_changed)
        }
    }
}

/// Tests and tools that inspect rows with their own SQL borrow the driver's
/// connection; the server never enables `raw-sql`.
#[cfg(feature = "raw-sql")]
mod raw_sql {
    use sqlx::AnyConnection;

    impl std::ops::Deref for super::Conn {
        type Target = AnyConnection;
        fn deref(&self) -> &AnyConnection {
            &self.inner
        }
    }
    impl std::ops::DerefMut for super::Conn {
        fn deref_mut(&mut self) -> &mut AnyConnection {
            &mut self.inner
        }
    }
    impl std::ops::Deref for super::Tx {
        type Target = AnyConnection;
        fn deref(&self) -> &AnyConnection {
            &self.inner
        }
    }
    impl std::ops::DerefMut for super::Tx {
        fn deref_mut(&mut self) -> &mut AnyConnection {
            &mut self.inner
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path`, created if missing, or
    /// `postgres://...`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = if path.contains("mode=") {
                url.to_owned()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("sqlite:") {
            (Backend::Sqlite, url.to_owned())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let (pool, write_pool) = match backend {
            Backend::Sqlite => {
                // Readers: a small page cache each (1 MB: in WAL mode a
                // reader drops its cache whenever the database changed, so
                // under sign-ins a larger one only held memory), no mapping
                // of the file (each connection's mapping counted in the
                // process's memory again: 390 MB resident with nine under
                // load). Four: every
                // statement is a hop to the connection's own thread; two
                // readers held 2 MB less at the peak but made 8% fewer
                // link requests and 10% fewer whole sign-ins per second
                // (docs/PERFORMANCE.md, round four).
                let readers = sqlite_pool(4, "PRAGMA cache_size = -1000;")
                    .connect_with(options.clone())
                    .await?;
                // The sqlx writer: one connection, for the write paths not on
                // the writer thread (code entry, consent, the admin API). The
                // hot paths write on the writer thread's connection, which
                // has the large cache (`writer.rs`).
                let writer = sqlite_pool(1, "PRAGMA cache_size = -1000;")
                    .connect_with(options)
                    .await?;
                (readers, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    // A connection back in the pool within the last second
                    // is taken as it is; one idle longer is pinged first
                    // (a restarted server leaves stale ones), as HikariCP's
                    // 500 ms bypass window does. Under load every connection
                    // is warm: two round trips fewer per link request
                    // (docs/PERFORMANCE.md, round four).
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for > Duration::from_secs(1) {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let writer: std::sync::Arc<tokio::sync::Mutex<()>> = Default::default();
        let sqlite_writer = match sqlite_file(&url) {
            Some(path) if backend == Backend::Sqlite => {
                Some(writer::SqliteWriter::start(&path, writer.clone())?)
            }
            _ => None,
        };
        Ok(Self {
            pool,
            write_pool,
            backend,
            writer,
            queue: Default::default(),
            waiting: Default::default(),
            apps: Default::default(),
            sqlite_writer,
        })
    }

    /// The pool's connections in use and idle, and the callers waiting for
    /// one. A snapshot: cheap, no database round trip.
    pub fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            in_use: size.saturating_sub(idle),
            idle,
            waiting: u32::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = migrator(self.backend);
        // sqlx takes no migration lock on SQLite: of two processes migrating
        // at once, the loser of each migration fails ("table already
        // exists") after the winner committed it. Running again finds it
        // applied and goes on to the next, where it may lose again: each
        // attempt gets at least one migration further, so as many attempts
        // as there are migrations always finish.
        let mut attempts = 0;
        loop {
            match migrator.run(&self.pool).await {
                Err(_)
                    if self.backend == Backend::Sqlite && attempts < migrator.migrations.len() =>
                {
                    attempts += 1;
                }
                result => return Ok(result?),
            }
        }
    }

    /// Whether the database answers and is fully migrated (`/readyz`).
    pub async fn ready(&self) -> Result<bool> {
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(applied >= migrator(self.backend).migrations.len() as i64)
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<Conn> {
        let _waiting = Waiting::start(&self.waiting);
        Ok(Conn {
            inner: self.pool.acquire().await?,
            apps: self.apps.clone(),
        })
    }

    /// The app with this client id, from memory when it was read less than
    /// [`APP_CACHE_TTL`] ago. For the request paths; anything that reads an
    /// app in order to change it uses [`Queries::app`], which always reads
    /// the database.
    ///
    /// Writes through [`Queries::insert_app`] and [`Queries::update_app`]
    /// empty this instance's cache (at commit, in a transaction); any other
    /// write to `apps` or `app_secrets` must call [`Store::apps_changed`]
    /// after it commits. Other instances (and the CLI, a process of its
    /// own) see a change within [`APP_CACHE_TTL`].
    pub async fn app(&self, client_id: &str) -> Result<Option<App>> {
        let generation = match self.apps.get(client_id) {
            apps::Lookup::Hit(app) => return Ok(Some(*app)),
            apps::Lookup::Miss(generation) => generation,
        };
        let app = self.conn().await?.app(client_id).await?;
        if let Some(app) = &app {
            self.apps.put(generation, app);
        }
        Ok(app)
    }

    /// Forgets every cached app on this instance: the one invalidation of
    /// the app cache, for any write path that changes an app other than
    /// [`Queries::insert_app`] and [`Queries::update_app`] (which call it
    /// themselves). Call it after the write commits.
    pub fn apps_changed(&self) {
        self.apps.clear();
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes
    /// cannot fail with a stale snapshot; writers queue on `busy_timeout`.
    ///
    /// The `BEGIN` runs in a task of its own: starting a transaction is not
    /// cancel-safe in sqlx (launchbadge/sqlx#3932), and a request dropped
    /// between the `BEGIN` and sqlx's bookkeeping (a client hanging up, the
    /// request deadline) would leave a pooled connection inside a
    /// transaction nobody ends, holding SQLite's write lock for good.
    pub async fn begin(&self) -> Result<Tx> {
        let writer = match self.backend {
            Backend::Sqlite => {
                let _queued = self.queue.lock().await;
                Some(self.writer.clone().lock_owned().await)
            }
            Backend::Postgres => None,
        };
        self.start(writer).await
    }

    /// Runs `f` as one write transaction and commits it when `f` returns
    /// `Ok`; an `Err` from `f` (a decision to stop, or a statement that
    /// failed) rolls back everything it wrote and is returned as it is.
    /// Nothing is answered before the commit succeeded.
    ///
    /// `f` (an async closure) gets the statements a write path needs an
    /// answer from and the [`Defer`] writes; it must await nothing else
    /// and compute little (on SQLite it runs on the one writer thread,
    /// [`Writes`]): hash, render and sign before, and hand over after. On a
    /// SQLite file it runs there with other callers' functions in one
    /// group commit; elsewhere it is awaited in place over a [`Tx`] of its
    /// own.
    pub async fn write<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&mut Writes<'_>) -> std::result::Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if let Some(thread) = &self.sqlite_writer {
            let (answer, answered) = tokio::sync::oneshot::channel();
            let _waiting = Waiting::start(&self.waiting);
            if !thread.send(writer::job(f, answer)) {
                return Err(E::from(writer::failed(
                    "the writer thread has stopped".into(),
                )));
            }
            return answered.await.unwrap_or_else(|_| {
                Err(E::from(writer::failed(
                    "the write function panicked".into(),
                )))
            });
        }
        let tx = self.begin().await?;
        writer::over_tx(tx, f).await
    }

    /// [`Store::begin`] ahead of the callers queued there: on SQLite it
    /// waits for the transaction under way and at most one other. For
    /// short writes that others wait on (the outbox recording a group of
    /// deliveries, whose SMTP connections stay busy until it is written).
    pub async fn begin_first(&self) -> Result<Tx> {
        let writer = match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        self.start(writer).await
    }

    async fn start(&self, writer: Option<tokio::sync::OwnedMutexGuard<()>>) -> Result<Tx> {
        let pool = self.write_pool.clone();
        let sqlite = self.backend == Backend::Sqlite;
        let waiting = Waiting::start(&self.waiting);
        let inner = tokio::spawn(async move {
            let _waiting = waiting;
            if sqlite {
                pool.begin_with("BEGIN IMMEDIATE").await
            } else {
                pool.begin().await
            }
        })
        .await
        .map_err(|_| sqlx::Error::WorkerCrashed)??;
        Ok(Tx {
            inner,
            _writer: writer,
            backend: self.backend,
            apps: self.apps.clone(),
            apps_changed: false,
            deferred: Default::default(),
        })
    }

    /// Leases up to `limit` due outbox messages to `owner` until
    /// `lease_until`, counting an attempt on each. A message whose lease ran
    /// out (its instance died) is due again. On PostgreSQL, instances skip
    /// rows another instance is claiming (`FOR UPDATE SKIP LOCKED`), so two
    /// never lease the same message at once.
    pub async fn claim_outbox(
        &self,
        now: i64,
        owner: &str,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite has one writer at a time: the UPDATE is already exclusive.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
               AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
               ORDER BY next_attempt_at LIMIT $4 {lock}) \
             RETURNING id, message_id, payload, attempts, expires_at"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                use sqlx::Row;
                Ok(OutboxMessage {
                    id: row.try_get("id")?,
                    message_id: row.try_get("message_id")?,
                    payload: row
                        .try_get::<Option<String>, _>("payload")?
                        .unwrap_or_default(),
                    attempts: row.try_get("attempts")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Closes every connection (used at shutdown and by tests).
    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }
}

/// A pool of SQLite connections set up for Postern, with `extra` pragmas.
/// The file a `sqlite:` URL names, unless it is an in-memory database
/// (which another connection could not share).
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!memory).then(|| path.to_owned())
}

fn sqlite_pool(max: u32, extra: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        // A local file does not go stale: no ping (a hop to the
        // connection's thread and back) before every use.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the one writer; NORMAL
                // sync is durable in WAL mode except on power loss;
                // busy_timeout makes writers queue instead of failing.
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                     PRAGMA temp_store = MEMORY;",
                )
                .await?;
                conn.execute(extra).await?;
                Ok(())
            })
        })
}

fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (
                1,
                "initial",
                include_str!("../migrations/sqlite/0001_initial.sql"),
            ),
            (
                2,
                "revoked_access_tokens",
                include_str!("../migrations/sqlite/0002_revoked_access_tokens.sql"),
            ),
            (
                3,
                "codes by session",
                include_str!("../migrations/sqlite/0003_codes_by_session.sql"),
            ),
            (
                4,
                "admin",
                include_str!("../migrations/sqlite/0004_admin.sql"),
            ),
            (
                5,
                "passkeys",
                include_str!("../migrations/sqlite/0005_passkeys.sql"),
            ),
            (
                6,
                "master key state",
                include_str!("../migrations/sqlite/0006_master_key_state.sql"),
            ),
            (
                7,
                "session passkey ok",
                include_str!("../migrations/sqlite/0007_session_passkey_ok.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "initial",
                include_str!("../migrations/postgres/0001_initial.sql"),
            ),
            (
                2,
                "revoked_access_tokens",
                include_str!("../migrations/postgres/0002_revoked_access_tokens.sql"),
            ),
            (
                3,
                "codes by session",
                include_str!("../migrations/postgres/0003_codes_by_session.sql"),
            ),
            (
                4,
                "admin",
                include_str!("../migrations/postgres/0004_admin.sql"),
            ),
            (
                5,
                "passkeys",
                include_str!("../migrations/postgres/0005_passkeys.sql"),
            ),
            (
                6,
                "master key state",
                include_str!("../migrations/postgres/0006_master_key_state.sql"),
            ),
            (
                7,
                "session passkey ok",
                include_str!("../migrations/postgres/0007_session_passkey_ok.sql"),
            ),
        ],
    };
    Migrator {
        migrations: Cow::Owned(
            files
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(d),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        // A database one release ahead (a rolling upgrade, or a rollback)
        // holds migrations this binary does not know; they are additive
        // (docs/DEPLOYMENT.md, "Upgrading"), so an older instance still
        // starts instead of failing with "migration N was previously
        // applied but is missing".
        ignore_missing: true,
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod migration_order {
    use super::*;

    /// A database migrated by a Postern from before passkeys (0001–0004 and
    /// 0006, without 0005) takes 0005 on its next start: sqlx applies every
    /// known version that is missing, not only those above the highest.
    async fn existing_database_takes_0005(url: &str) {
        let store = Store::connect(url).await.unwrap();
        let mut before = migrator(store.backend);
        before.migrations = Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version != 5)
                .cloned()
                .collect(),
        );
        before.run(&store.pool).await.unwrap();
        assert!(!store.ready().await.unwrap(), "0005 is still missing");
        store.migrate().await.unwrap();
        assert!(store.ready().await.unwrap(), "every migration is applied");
        let passkeys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passkeys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(passkeys, 0);
        store.migrate().await.unwrap();
        store.close().await;
    }

    /// A database migrated by a newer Postern (a rolling upgrade's other
    /// half, or a rollback) still opens: the older binary starts, migrates
    /// nothing and answers ready.
    #[tokio::test]
    async fn an_older_binary_starts_on_a_database_a_release_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("newer.db").display());
        let store = Store::connect(&url).await.unwrap();
        let mut newer = migrator(store.backend);
        let mut migrations = newer.migrations.to_vec();
        migrations.push(Migration::new(
            9999,
            Cow::Borrowed("from a later release"),
            MigrationType::Simple,
            Cow::Borrowed("CREATE TABLE later_feature (id INTEGER PRIMARY KEY);"),
            false,
        ));
        newer.migrations = Cow::Owned(migrations);
        newer.run(&store.pool).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.ready().await.unwrap());
        store.close().await;
    }

    #[tokio::test]
    async fn migration_0005_applies_after_0006_on_an_existing_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        existing_database_takes_0005(&url).await;
    }

    #[tokio::test]
    async fn migration_0005_applies_after_0006_on_an_existing_postgres_database() {
        if std::env::var("POSTERN_TEST_BACKEND").as_deref() != Ok("postgres") {
            return;
        }
        let admin_url = std::env::var("POSTERN_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let name = format!("postern_order_{}", std::process::id());
        let admin = Store::connect(&format!("{admin_url}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin.pool)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin.pool)
            .await
            .unwrap();
        existing_database_takes_0005(&format!("{admin_url}/{name}")).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin.pool)
            .await
            .unwrap();
        admin.close().await;
    }
}
