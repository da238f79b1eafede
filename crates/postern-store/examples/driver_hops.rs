//! What a SQLite write transaction costs through sqlx against a rusqlite
//! thread that runs whole transactions as closures (issue 13: "decide with
//! numbers"). The same transaction shape as a link request's writes — one
//! rate-limit upsert with `RETURNING`, one insert — committed in WAL mode
//! with `synchronous = NORMAL`, from 16 concurrent tasks, three ways:
//!
//! 1. sqlx, one writer connection behind an async mutex (what the store
//!    does): `BEGIN IMMEDIATE`, two statements, `COMMIT` — four hops to the
//!    connection's thread.
//! 2. rusqlite on one thread; each task sends its transaction as a closure
//!    and waits for the answer — one hop.
//! 3. The same thread committing whatever queued up together (group
//!    commit): each closure in a `SAVEPOINT`, one `COMMIT` per group.
//!
//! Usage: `cargo run --release -p postern-store --example driver_hops [-- N]`
//! (N transactions per way, 20,000 by default). Prints transactions/s.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;
use tokio::sync::{oneshot, Mutex};

const TASKS: usize = 16;
const SCHEMA: &str = "CREATE TABLE rate (key TEXT NOT NULL, w INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, w));
     CREATE TABLE req (id TEXT PRIMARY KEY, email TEXT NOT NULL, at INTEGER NOT NULL);";
const UPSERT: &str = "INSERT INTO rate (key, w, n) VALUES ($1, 0, 1) ON CONFLICT (key, w) DO UPDATE SET n = n + 1 WHERE n < 1000000000 RETURNING n";
const INSERT: &str = "INSERT INTO req (id, email, at) VALUES ($1, $2, $3)";

type Job = Box<dyn FnOnce(&rusqlite::Connection) -> rusqlite::Result<i64> + Send>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();

    // 1. sqlx
    let path = dir.path().join("sqlx.db");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        )
        .await
        .unwrap();
    sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
    let lock = Arc::new(Mutex::new(()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (pool, lock) = (pool.clone(), lock.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(TASKS) {
                let _w = lock.lock().await;
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                let row = sqlx::query(UPSERT)
                    .bind(format!("ip:{}", i % 500))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                let _: i64 = row.get(0);
                sqlx::query(INSERT)
                    .bind(format!("r{i}"))
                    .bind(format!("p{i}@example.com"))
                    .bind(i as i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(
        "sqlx, one writer connection (4 hops a transaction)",
        n,
        start,
    );

    // 2. and 3. rusqlite on its own thread
    for group in [false, true] {
        let path = dir.path().join(format!("rusqlite-{group}.db"));
        let (jobs, rx) = mpsc::channel::<(Job, oneshot::Sender<rusqlite::Result<i64>>)>();
        let writer = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                .unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                if group {
                    batch.extend(rx.try_iter().take(255));
                }
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                let mut answers = Vec::with_capacity(batch.len());
                for (job, reply) in batch {
                    conn.execute_batch("SAVEPOINT t").unwrap();
                    let r = job(&conn);
                    conn.execute_batch(if r.is_ok() {
                        "RELEASE t"
                    } else {
                        "ROLLBACK TO t; RELEASE t"
                    })
                    .unwrap();
                    answers.push((r, reply));
                }
                let committed = conn.execute_batch("COMMIT");
                for (r, reply) in answers {
                    let _ = reply.send(match &committed {
                        Ok(()) => r,
                        Err(_) => Err(rusqlite::Error::InvalidQuery),
                    });
                }
            }
        });
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let jobs = jobs.clone();
            tasks.push(tokio::spawn(async move {
                for i in (t..n).step_by(TASKS) {
                    let (reply, answer) = oneshot::channel();
                    let job: Job = Box::new(move |c: &rusqlite::Connection| {
                        let n: i64 = c
                            .prepare_cached(UPSERT)?
                            .query_row([format!("ip:{}", i % 500)], |r| r.get(0))?;
                        c.prepare_cached(INSERT)?.execute(rusqlite::params![
                            format!("r{i}"),
                            format!("p{i}@example.com"),
                            i as i64
                        ])?;
                        Ok(n)
                    });
                    jobs.send((job, reply)).unwrap();
                    answer.await.unwrap().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop(jobs);
        writer.join().unwrap();
        report(
            if group {
                "rusqlite thread, group commit (one COMMIT for what queued up)"
            } else {
                "rusqlite thread, one transaction a closure (1 hop)"
            },
            n,
            start,
        );
    }
}

fn report(what: &str, n: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "| {what} | {:.0}/s | {:.0} µs |",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
