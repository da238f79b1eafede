//! Backups and master-key rotation (issue 14 item 5), black-box: the built
//! binary's `backup` and `master-key rotate` commands against a database a
//! running `postern serve` uses, then sign-ins with what was there before.

mod ops;

use std::path::Path;
use std::process::{Command, Output};

use ops::{
    browser, create_app, exchange, location, query_param, sign_in, token, Instance, Sink,
    MASTER_KEY, REDIRECT_URI,
};
use postern_store::{Backend, Store};
use postern_testkit::TestDb;

const NEW_KEY: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// `postern ARGS` in `dir` on `db_url` with the master key `key`.
fn postern(dir: &Path, db_url: &str, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POSTERN_DATABASE_URL", db_url)
        .env("POSTERN_MASTER_KEY", key)
        .env("POSTERN_LOG", "warn")
        .output()
        .expect("run postern")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// `prompt=none` for the app in browser `b`: Some(code) while its session lives.
async fn silent_code(base: &str, client_id: &str, b: &reqwest::Client) -> Option<String> {
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("prompt", "none"),
        ("nonce", "n"),
    ])
    .unwrap();
    let res = b.get(format!("{base}/authorize?{q}")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    query_param(&location(&res), "code")
}

#[tokio::test]
async fn a_backup_restored_into_a_fresh_directory_keeps_old_sessions() {
    let db = TestDb::new().await;
    if postern_testkit::backend() == Backend::Postgres {
        let out = postern(db.dir.path(), &db.url, MASTER_KEY, &["backup", "copy.db"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("pg_dump"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client_id, secret) = create_app(&store).await;
    let sink = Sink::start().await;
    let port = ops::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Instance::start(
        db.dir.path(),
        &db.url,
        port,
        &sink.url(),
        &[("POSTERN_PUBLIC_URL", base.as_str())],
    );
    server.ready(30).await;
    let b = browser();
    let code = sign_in(&base, &client_id, &sink, &b, "kept@example.com", false).await;
    let tokens = exchange(&base, &client_id, &secret, &code).await;
    let sub = ops::jwt_sub(tokens["id_token"].as_str().unwrap());
    let refresh = tokens["refresh_token"].as_str().map(str::to_owned);

    // The backup, taken while the server runs.
    let out = postern(db.dir.path(), &db.url, MASTER_KEY, &["backup", "copy.db"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["bytes"].as_u64().unwrap() > 0);
    assert!(
        text(&out.stderr).contains("master key"),
        "says to keep the master key"
    );
    let again = postern(db.dir.path(), &db.url, MASTER_KEY, &["backup", "copy.db"]);
    assert_eq!(again.status.code(), Some(2), "never overwrites");
    drop(server);
    drop(store);

    // Restored into a fresh directory, with the same master key.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(
        db.dir.path().join("copy.db"),
        fresh.path().join("postern.db"),
    )
    .unwrap();
    let url = format!("sqlite://{}", fresh.path().join("postern.db").display());
    let restored = Instance::start(
        fresh.path(),
        &url,
        port,
        &sink.url(),
        &[("POSTERN_PUBLIC_URL", base.as_str())],
    );
    restored.ready(30).await;
    let code = silent_code(&base, &client_id, &b)
        .await
        .expect("the old browser session still signs in");
    let tokens = exchange(&base, &client_id, &secret, &code).await;
    assert_eq!(
        ops::jwt_sub(tokens["id_token"].as_str().unwrap()),
        sub,
        "the same person"
    );
    if let Some(refresh) = refresh {
        let res = token(
            &base,
            &client_id,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(res.status(), 200, "the old refresh token works");
    }
}

#[tokio::test]
async fn rotating_the_master_key_keeps_sessions_links_and_keys_working() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client_id, secret) = create_app(&store).await;
    let sink = Sink::start().await;
    let port = ops::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Instance::start(
        db.dir.path(),
        &db.url,
        port,
        &sink.url(),
        &[("POSTERN_PUBLIC_URL", base.as_str())],
    );
    server.ready(30).await;
    let b = browser();
    let code = sign_in(&base, &client_id, &sink, &b, "rotate@example.com", false).await;
    let tokens = exchange(&base, &client_id, &secret, &code).await;
    let sub = ops::jwt_sub(tokens["id_token"].as_str().unwrap());
    server.term();
    server.exited_within(15).await.expect("stops");

    std::fs::write(db.dir.path().join("new.key"), format!("{NEW_KEY}\n")).unwrap();
    let out = postern(
        db.dir.path(),
        &db.url,
        MASTER_KEY,
        &["master-key", "rotate", "--new-key-file", "new.key"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["signing_keys"].as_u64().unwrap() >= 1, "{json}");

    // The old key no longer opens the database.
    let old = postern(db.dir.path(), &db.url, MASTER_KEY, &["keys", "rotate"]);
    assert!(!old.status.success());
    assert!(
        text(&old.stderr).contains("does not open this database"),
        "{}",
        text(&old.stderr)
    );

    let server = Instance::start(
        db.dir.path(),
        &db.url,
        port,
        &sink.url(),
        &[
            ("POSTERN_PUBLIC_URL", base.as_str()),
            ("POSTERN_MASTER_KEY", NEW_KEY),
        ],
    );
    server.ready(30).await;
    // The session cookie (a keyed hash) still matches; the signing keys
    // open under the new key; pairwise subjects are unchanged.
    let code = silent_code(&base, &client_id, &b)
        .await
        .expect("the session survives");
    let tokens = exchange(&base, &client_id, &secret, &code).await;
    assert_eq!(ops::jwt_sub(tokens["id_token"].as_str().unwrap()), sub);
    // A new sign-in works end to end.
    let code = sign_in(
        &base,
        &client_id,
        &sink,
        &browser(),
        "after@example.com",
        true,
    )
    .await;
    exchange(&base, &client_id, &secret, &code).await;
    drop(server);
}

#[tokio::test]
async fn rotation_refuses_when_the_current_key_cannot_open_everything() {
    let db = TestDb::new().await;
    // A database whose signing keys were made under the current key…
    let out = postern(db.dir.path(), &db.url, MASTER_KEY, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // …then an email queued under another key.
    let store = Store::connect(&db.url).await.unwrap();
    let other = postern_core::Secrets::new(&postern_core::MasterKey::generate());
    let email = postern_mail::OutgoingEmail {
        to: "x@example.com".into(),
        from_name: None,
        subject: "s".into(),
        text: "t".into(),
        html: "h".into(),
        locale: "en".into(),
    };
    let mut tx = store.begin().await.unwrap();
    postern_mail::enqueue(&mut tx, &other, &email, 1, i64::MAX / 2, "localhost")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let before = dump(&store).await;

    std::fs::write(db.dir.path().join("new.key"), NEW_KEY).unwrap();
    let out = postern(
        db.dir.path(),
        &db.url,
        MASTER_KEY,
        &["master-key", "rotate", "--new-key-file", "new.key"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(dump(&store).await, before, "nothing changed");
    // The current key still works.
    let out = postern(db.dir.path(), &db.url, MASTER_KEY, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

async fn dump(store: &Store) -> Vec<String> {
    let mut conn = store.conn().await.unwrap();
    let mut out: Vec<String> =
        sqlx::query_scalar("SELECT private_key FROM signing_keys ORDER BY kid")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    out.extend(
        sqlx::query_scalar::<_, String>("SELECT payload FROM outbox ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
    );
    out
}
