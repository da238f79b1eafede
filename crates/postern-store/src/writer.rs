//! Write transactions that run as one synchronous function
//! ([`Store::write`]), and SQLite's writer thread that runs them.
//!
//! Through sqlx every statement is a round trip: on SQLite a hop to the
//! connection's thread and back, two context switches on two cores, while
//! the transaction holds the one writer. A link request made five of them
//! under the write lock, and the writer, not SQLite, was what limited every
//! SQLite number (docs/PERFORMANCE.md). Here a service hands the store the
//! whole transaction as a function of what it already computed: its
//! decisions (a limit refused, a link already used, a disabled person)
//! become the function's `Err`, which rolls back everything it wrote.
//!
//! On a SQLite file the function runs on a thread of its own that owns a
//! rusqlite connection: one hop per transaction instead of one per
//! statement, and **group commit** — whatever transactions queued up while
//! the last group ran go in one `BEGIN IMMEDIATE … COMMIT`, each inside a
//! `SAVEPOINT` of its own, so one that fails or decides to stop rolls back
//! alone. Nobody hears an answer before the group's `COMMIT` succeeded; if
//! it fails, every member hears the error. The thread takes the store's
//! writer lock for each group, so it and the sqlx writer ([`Store::begin`])
//! never wait on SQLite's sleeping busy handler for each other.
//!
//! The function is an async closure. On the writer thread every statement
//! is ready at once, so its future completes in a single poll; on
//! PostgreSQL (and in-memory SQLite) the same closure is awaited in place
//! over an ordinary [`Tx`], each statement a round trip: one code path for
//! both databases, the same statements, the deferred writes still in one
//! round trip with the commit, and no thread hop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};

use crate::deferred::{Consume, Op, Value};
use crate::queries::{self, code_from_row, session_from_row, user_from_row, Cols, Column};
use crate::rows::{AuthorizationCode, Session, User};
use crate::{DatabaseError, Queries as _, Result, SessionQueries as _, StoreError, Tx};

/// How many transactions one group commit takes at most.
const MAX_GROUP: usize = 64;

/// A transaction as [`Store::write`](crate::Store::write) runs it: the
/// statements a write path needs an answer from, and the writes whose
/// answer nobody needs (`defer_*`, sent right before the commit, in order).
pub struct Writes<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    /// SQLite's writer thread: its connection, lent for one function;
    /// statements run at once, deferred ones when the function returned
    /// `Ok`.
    Sqlite {
        conn: rusqlite::Connection,
        deferred: Vec<Op>,
    },
    /// Any other store: a [`Tx`], each statement awaited.
    Sqlx { tx: &'a mut Tx },
}

impl std::fmt::Debug for Writes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writes(..)")
    }
}

impl Writes<'_> {
    /// [`crate::Queries::rate_hits`]: counts one hit of every
    /// `(key, window_start, limit)` that is below its limit; whether each
    /// counted, in order.
    pub async fn rate_hits(&mut self, hits: &[(&str, i64, i64)]) -> Result<Vec<bool>> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.rate_hits(hits).await,
            Inner::Sqlite { conn, .. } => {
                if !queries::distinct_keys(hits) {
                    let mut counted = Vec::with_capacity(hits.len());
                    for hit in hits {
                        counted.extend(sqlite_rate_hits(conn, std::slice::from_ref(hit))?);
                    }
                    return Ok(counted);
                }
                sqlite_rate_hits(conn, hits)
            }
        }
    }

    /// [`crate::Queries::consume_burning_siblings`]: whether the request
    /// `which` names was live and is now consumed (its live siblings burnt
    /// with it).
    pub async fn consume_burning_siblings(&mut self, which: Consume<'_>, now: i64) -> Result<bool> {
        match &mut self.inner {
            Inner::Sqlx { tx } => Ok(tx.consume_burning_siblings(which, now).await?.is_some()),
            Inner::Sqlite { conn, .. } => {
                let op = queries::consume_op(which, now);
                let mut stmt = prepare(conn, &op)?;
                let mut rows = stmt.raw_query();
                while let Some(row) = rows.next().map_err(db)? {
                    let id: String = row.get("id").map_err(db)?;
                    let token_hash: String = row.get("token_hash").map_err(db)?;
                    if queries::is_consume_target(which, &id, &token_hash) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// [`crate::Queries::consume_authorization_code`]: the live code with
    /// this hash, now consumed; `None` when it is unknown, used or expired.
    pub async fn consume_authorization_code(
        &mut self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationCode>> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.consume_authorization_code(code_hash, now).await,
            Inner::Sqlite { conn, .. } => {
                sqlite_one(conn, &queries::consume_code_op(code_hash, now), |r| {
                    code_from_row(r)
                })
            }
        }
    }

    /// [`crate::SessionQueries::session`]: the session with this id,
    /// revoked or not.
    pub async fn session(&mut self, id: &str) -> Result<Option<Session>> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.session(id).await,
            Inner::Sqlite { conn, .. } => {
                sqlite_one(conn, &queries::session_op(id), |r| session_from_row(r))
            }
        }
    }

    /// [`crate::Queries::user`]: the person with this id.
    pub async fn user(&mut self, id: &str) -> Result<Option<User>> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.user(id).await,
            Inner::Sqlite { conn, .. } => {
                sqlite_one(conn, &queries::user_op(id), |r| user_from_row(r))
            }
        }
    }

    /// [`crate::Queries::upsert_user_sign_in`]: the person with `email`,
    /// created with `new_id` if new, their last sign-in set to `now`.
    pub async fn upsert_user_sign_in(
        &mut self,
        new_id: &str,
        email: &str,
        now: i64,
    ) -> Result<User> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.upsert_user_sign_in(new_id, email, now).await,
            Inner::Sqlite { conn, .. } => {
                let op = queries::upsert_user_op(new_id, email, now);
                sqlite_one(conn, &op, |r| user_from_row(r))?
                    .ok_or_else(|| StoreError::Corrupt("the user upsert returned no row".into()))
            }
        }
    }

    /// Runs the writes deferred so far now, in one go (otherwise they run
    /// right before the commit): for a function whose last statement
    /// should be the one that locks what others wait for.
    pub async fn flush(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Sqlx { tx } => tx.flush().await,
            Inner::Sqlite { .. } => self.flush_sqlite(),
        }
    }

    /// Runs the deferred writes on the writer thread's connection.
    fn flush_sqlite(&mut self) -> Result<()> {
        if let Inner::Sqlite { conn, deferred } = &mut self.inner {
            for op in std::mem::take(deferred) {
                prepare(conn, &op)?.raw_execute().map_err(conflict)?;
            }
        }
        Ok(())
    }
}

impl crate::sealed::Defer for Writes<'_> {
    fn defer_op(&mut self, op: Op) {
        match &mut self.inner {
            Inner::Sqlite { deferred, .. } => deferred.push(op),
            Inner::Sqlx { tx } => tx.defer_op(op),
        }
    }
}
impl crate::Defer for Writes<'_> {}

fn sqlite_rate_hits(conn: &rusqlite::Connection, hits: &[(&str, i64, i64)]) -> Result<Vec<bool>> {
    let Some(op) = queries::rate_hits_op(hits) else {
        return Ok(vec![false; hits.len()]);
    };
    let mut stmt = prepare(conn, &op)?;
    let mut rows = stmt.raw_query();
    let mut counted = Vec::with_capacity(hits.len());
    while let Some(row) = rows.next().map_err(db)? {
        counted.push(row.get::<_, String>(0).map_err(db)?);
    }
    Ok(queries::rate_hits_counted(hits, &counted))
}

/// The first row `op` returns, mapped; `None` when it returns none.
fn sqlite_one<T>(
    conn: &rusqlite::Connection,
    op: &Op,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = prepare(conn, op)?;
    let mut rows = stmt.raw_query();
    rows.next().map_err(db)?.map(map).transpose()
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Column>(&self, name: &str) -> Result<T> {
        self.get(name).map_err(db)
    }
}

/// `op` prepared (from the connection's statement cache) with its values
/// bound: each `$N` takes the N-th value, wherever it stands.
fn prepare<'c>(conn: &'c rusqlite::Connection, op: &Op) -> Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(&op.sql).map_err(db)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=op.args.len()).contains(n))
            .ok_or_else(|| StoreError::Corrupt(format!("unbound parameter {i} in {}", op.sql)))?;
        stmt.raw_bind_parameter(i, &op.args[n - 1]).map_err(db)?;
    }
    Ok(stmt)
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(Some(i)) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Value::Text(Some(t)) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Int(None) | Value::Text(None) => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(DatabaseError(Box::new(e)))
}

fn conflict(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict
        }
        _ => db(e),
    }
}

/// What the writer thread hands a job's result to once its group's fate
/// is known: `Some(error)` when the group's `COMMIT` failed.
type Deliver = Box<dyn FnOnce(Option<String>) + Send>;

/// One transaction for the writer thread: runs on its connection inside a
/// savepoint (or hears why the group could not start) and says whether to
/// keep what it wrote.
pub(crate) type Job =
    Box<dyn FnOnce(std::result::Result<&mut Writes<'static>, String>) -> (bool, Deliver) + Send>;

/// The SQLite writer thread's queue.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteWriter(..)")
    }
}

impl SqliteWriter {
    /// Opens a connection to the database file at `path` and starts the
    /// thread; it ends when the last [`crate::Store`] clone is dropped.
    pub(crate) fn start(path: &str, lock: Arc<tokio::sync::Mutex<()>>) -> Result<Self> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        // As the sqlx connections (crate::sqlite_pool), with the writer's
        // larger page cache: the pages every sign-in writes stay warm here.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8000;",
        )
        .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("postern-sqlite-writer".into())
            .spawn(move || run(conn, queue, lock))
            .map_err(|e| StoreError::Database(DatabaseError(Box::new(e))))?;
        Ok(Self { jobs })
    }

    /// Queues `job`; `false` when the thread is gone.
    pub(crate) fn send(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

fn run(conn: rusqlite::Connection, queue: mpsc::Receiver<Job>, lock: Arc<tokio::sync::Mutex<()>>) {
    let mut conn = Some(conn);
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (delivers, failed) = {
            // Not inside the runtime: this thread may block on the lock.
            let _writer = lock.blocking_lock();
            commit_group(&mut conn, jobs)
        };
        for deliver in delivers {
            deliver(failed.clone());
        }
        if conn.is_none() {
            // Only a bug could lose the connection (see `commit_group`):
            // the callers still queued hear that the writer stopped.
            tracing::error!("the SQLite writer lost its connection and stops");
            return;
        }
    }
}

/// Runs `jobs` in one transaction, each in a savepoint; returns their
/// deliveries and, when the group did not commit, why.
fn commit_group(
    slot: &mut Option<rusqlite::Connection>,
    jobs: Vec<Job>,
) -> (Vec<Deliver>, Option<String>) {
    let mut delivers = Vec::with_capacity(jobs.len());
    let Some(conn) = slot.as_ref() else {
        return (delivers, Some("the writer has no connection".into()));
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = format!("could not start a write transaction: {e}");
        for job in jobs {
            delivers.push(job(Err(why.clone())).1);
        }
        return (delivers, None);
    }
    for job in jobs {
        let Some(conn) = slot.take() else { break };
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            *slot = Some(conn);
            let why = format!("could not start a savepoint: {e}");
            delivers.push(job(Err(why)).1);
            continue;
        }
        // The connection is lent to the function for its duration.
        let mut writes = Writes {
            inner: Inner::Sqlite {
                conn,
                deferred: Vec::new(),
            },
        };
        // A job that panics keeps nothing; its caller hears that the
        // writer failed (its answer channel is dropped with the job).
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&mut writes))));
        let Inner::Sqlite { conn, .. } = writes.inner else {
            unreachable!("lent as SQLite")
        };
        let keep = match outcome {
            Ok((keep, deliver)) => {
                delivers.push(deliver);
                keep
            }
            Err(_) => false,
        };
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        let ended = conn.execute_batch(end);
        *slot = Some(conn);
        if let Err(e) = ended {
            // The transaction is in an unknown state: give it up whole.
            if let Some(conn) = slot.as_ref() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return (delivers, Some(format!("could not end a savepoint: {e}")));
        }
    }
    let Some(conn) = slot.as_ref() else {
        return (delivers, Some("the writer lost its connection".into()));
    };
    match conn.execute_batch("COMMIT") {
        Ok(()) => (delivers, None),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (delivers, Some(format!("the commit failed: {e}")))
        }
    }
}

/// Wraps a write function as a [`Job`] whose result reaches `answer`. On
/// the writer thread every statement is ready at once, so the function's
/// future completes in its first poll; one that waits on anything else is
/// a bug, and stops (rolled back) with an error.
pub(crate) fn job<T, E, F>(
    f: F,
    answer: tokio::sync::oneshot::Sender<std::result::Result<T, E>>,
) -> Job
where
    F: AsyncFnOnce(&mut Writes<'_>) -> std::result::Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    Box::new(move |writes| {
        let result = match writes {
            Err(why) => Err(E::from(failed(why))),
            Ok(w) => {
                let polled = {
                    let mut run = std::pin::pin!(f(&mut *w));
                    run.as_mut().poll(&mut Context::from_waker(Waker::noop()))
                };
                match polled {
                    Poll::Ready(Ok(v)) => w.flush_sqlite().map(|()| v).map_err(E::from),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(E::from(failed(
                        "a write function waited on something other than the database".into(),
                    ))),
                }
            }
        };
        let keep = result.is_ok();
        let deliver: Deliver = Box::new(move |commit_failed| {
            let result = match commit_failed {
                Some(why) if keep => Err(E::from(failed(why))),
                _ => result,
            };
            let _ = answer.send(result);
        });
        (keep, deliver)
    })
}

/// The error a caller hears when the writer could not run or commit its
/// transaction.
pub(crate) fn failed(why: String) -> StoreError {
    StoreError::Database(DatabaseError(why.into()))
}

/// Runs `f` over `tx`, each statement awaited, and commits when it
/// returns `Ok` (the path of every store without a writer thread).
/// Dropping the returned future (a request cut short) drops `tx`, which
/// rolls it back.
pub(crate) async fn over_tx<T, E, F>(mut tx: Tx, f: F) -> std::result::Result<T, E>
where
    F: AsyncFnOnce(&mut Writes<'_>) -> std::result::Result<T, E>,
    E: From<StoreError>,
{
    let result = {
        let mut writes = Writes {
            inner: Inner::Sqlx { tx: &mut tx },
        };
        f(&mut writes).await
    };
    let v = result?;
    tx.commit().await?;
    Ok(v)
}
