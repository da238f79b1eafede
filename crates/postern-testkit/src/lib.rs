//! A fresh, private database for each test, on the backend CI asks for.
//!
//! `POSTERN_TEST_BACKEND=sqlite` (default) gives a SQLite file in a temporary
//! directory; `POSTERN_TEST_BACKEND=postgres` creates a database named
//! `postern_test_<random>` on `POSTERN_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`) and drops it when the test ends, so
//! tests run in parallel and never see each other's rows.

use postern_core::crypto::random_id;
use postern_store::{Backend, Session, Store};
use sqlx::{Connection, Executor, PgConnection};

/// Which backend tests run on, from `POSTERN_TEST_BACKEND`.
pub fn backend() -> Backend {
    match std::env::var("POSTERN_TEST_BACKEND").as_deref() {
        Ok("postgres") | Ok("postgresql") | Ok("pg") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("POSTERN_TEST_BACKEND={other:?}: use sqlite or postgres"),
    }
}

fn pg_admin_url() -> String {
    std::env::var("POSTERN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database that exists for as long as this value lives.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give Postern (`POSTERN_DATABASE_URL`).
    pub url: String,
    /// The working directory of a SQLite test (also handy for key files).
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// Creates an empty database (not migrated).
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend() {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("postern.db").display());
                Self {
                    url,
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("postern_test_{}", postern_core::crypto::random_digits(9));
                let admin = pg_admin_url();
                let mut conn = PgConnection::connect(&format!("{admin}/postgres"))
                    .await
                    .expect(
                        "PostgreSQL must be reachable at POSTERN_TEST_PG_URL for postgres tests",
                    );
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                let url = format!("{admin}/{name}");
                Self {
                    url,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Creates a database, migrates it and connects a [`Store`].
    pub async fn store() -> (Self, Store) {
        let db = Self::new().await;
        let store = Store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        (db, store)
    }
}

/// A live browser session of `user_id` made at `now` (30 days left, from
/// 203.0.113.7 in "Mozilla/5.0"): the store tests' one session literal;
/// a test that needs another kind changes fields with `..session(…)`.
pub fn session(user_id: &str, now: i64) -> Session {
    Session {
        id: random_id(),
        token_hash: random_id(),
        user_id: user_id.to_owned(),
        client_id: None,
        kind: "browser".to_owned(),
        amr: "email".to_owned(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + 30 * 86_400,
        ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("Mozilla/5.0".to_owned()),
        revoked_at: None,
        passkey_ok: false,
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Drop runs outside any runtime guarantee; use a private thread and runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&format!("{admin}/postgres")).await
                    {
                        let _ = conn
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
