//! The outbox: encrypted at rest, delivered promptly, erased once sent,
//! given up when expired. Runs on SQLite, and on PostgreSQL with
//! `POSTERN_TEST_BACKEND=postgres`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postern_core::{Clock, ManualClock, MasterKey, Secrets};
use postern_mail::{enqueue, Mailbox, Outbox, OutgoingEmail, Transport};
use postern_store::{Queries, Store};
use postern_testkit::TestDb;
use sqlx::Row;

const LINK: &str = "http://127.0.0.1:8080/verify-email?token=pml_SeCrEtToKeN";
const CODE: &str = "482913";
const TO: &str = "alice@example.com";

fn email() -> OutgoingEmail {
    OutgoingEmail {
        to: TO.into(),
        from_name: Some("Acme".into()),
        subject: format!("Sign in to Acme: {CODE}"),
        text: format!("Open this link:\n\n{LINK}\n\n{CODE}\n"),
        html: format!("<a href=\"{LINK}\">Sign in</a> {CODE}"),
        locale: "en".into(),
    }
}

fn secrets() -> Arc<Secrets> {
    Arc::new(Secrets::new(&MasterKey::generate()))
}

fn from() -> Mailbox {
    "Postern <no-reply@postern.example>".parse().unwrap()
}

struct Row_ {
    payload: Option<String>,
    message_id: String,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: i64,
}

async fn row(store: &Store, id: &str) -> Row_ {
    let mut conn = store.conn().await.unwrap();
    let r = sqlx::query(
        "SELECT payload, message_id, sent_at, failed_at, last_error, next_attempt_at FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    Row_ {
        payload: r.try_get("payload").unwrap(),
        message_id: r.try_get("message_id").unwrap(),
        sent_at: r.try_get("sent_at").unwrap(),
        failed_at: r.try_get("failed_at").unwrap(),
        last_error: r.try_get("last_error").unwrap(),
        next_attempt_at: r.try_get("next_attempt_at").unwrap(),
    }
}

async fn put(store: &Store, secrets: &Secrets, now: i64, expires_at: i64) -> String {
    let mut tx = store.begin().await.unwrap();
    let id = enqueue(
        &mut tx,
        secrets,
        &email(),
        now,
        expires_at,
        "postern.example",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files
}

#[tokio::test]
async fn the_database_never_holds_the_plain_message() {
    let (_db, store) = TestDb::store().await;
    let secrets = secrets();
    let now = ManualClock::new().now();
    let id = put(&store, &secrets, now, now + 900).await;

    let r = row(&store, &id).await;
    let payload = r.payload.expect("payload stored");
    for secret in [
        CODE,
        "pml_SeCrEtToKeN",
        "verify-email",
        TO,
        "alice",
        "Sign in",
    ] {
        assert!(!payload.contains(secret), "payload leaks {secret:?}");
    }
    assert!(r.message_id.starts_with('<') && r.message_id.ends_with("@postern.example>"));
    // Bound to its row: the payload opens under its own context only.
    assert!(secrets.decrypt(&format!("outbox:{id}"), &payload).is_ok());
    assert!(secrets.decrypt("outbox:other", &payload).is_err());
}

#[tokio::test]
async fn a_rolled_back_transaction_queues_nothing() {
    let (_db, store) = TestDb::store().await;
    let secrets = secrets();
    let mut tx = store.begin().await.unwrap();
    enqueue(&mut tx, &secrets, &email(), 1, 901, "postern.example")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        store.conn().await.unwrap().outbox_pending().await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a_bad_recipient_is_refused_before_queueing() {
    let (_db, store) = TestDb::store().await;
    let mut conn = store.conn().await.unwrap();
    let mut e = email();
    e.to = "a@b.c\r\nBcc: x@y.z".into();
    assert!(
        enqueue(&mut conn, &secrets(), &e, 1, 901, "postern.example")
            .await
            .is_err()
    );
    assert_eq!(conn.outbox_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn the_file_transport_delivers_one_eml_and_erases_the_payload() {
    let (db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock = Arc::new(ManualClock::new());
    let dir = db.dir.path().join("mail");
    let id = put(&store, &secrets, clock.now(), clock.now() + 900).await;
    let message_id = row(&store, &id).await.message_id;

    let outbox = Outbox::new(
        store.clone(),
        secrets,
        Transport::File(dir.clone()),
        from(),
        clock.clone(),
    );
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    assert_eq!(outbox.drain_once().await.unwrap(), 0, "delivered once only");

    let files = emls(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(&format!("-{id}.eml")), "{name}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains(&format!("Message-ID: {message_id}")));
    assert!(raw.contains("Auto-Submitted: auto-generated"));
    assert!(raw.contains(&format!("To: {TO}")));
    assert!(raw.contains("From: Acme <no-reply@postern.example>"));
    assert!(raw.contains(CODE));
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let r = row(&store, &id).await;
    assert_eq!(r.payload, None, "content erased once delivered");
    assert_eq!(r.sent_at, Some(clock.now()));
    assert_eq!(r.failed_at, None);
    assert_eq!(
        store.conn().await.unwrap().outbox_pending().await.unwrap(),
        0
    );
}

#[tokio::test]
async fn the_worker_wakes_at_once_when_notified() {
    let (db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock: Arc<dyn Clock> = Arc::new(postern_core::SystemClock);
    let dir = db.dir.path().join("mail");
    let outbox = Outbox::new(
        store.clone(),
        secrets.clone(),
        Transport::File(dir.clone()),
        from(),
        clock.clone(),
    );
    let waker = outbox.waker();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(outbox.run(async move {
        let _ = stopped.await;
    }));
    // Let the worker finish its first (empty) round and go to sleep.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let now = clock.now();
    put(&store, &secrets, now, now + 900).await;
    waker.notify_one();
    let delivered = tokio::time::timeout(Duration::from_secs(2), async {
        while emls(&dir).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        delivered.is_ok(),
        "not delivered within 2 s of the wake-up (the safety poll is 3 s)"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("worker stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn an_expired_message_is_given_up_without_delivery() {
    let (db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock = Arc::new(ManualClock::new());
    let dir = db.dir.path().join("mail");
    let id = put(&store, &secrets, clock.now(), clock.now() + 60).await;
    clock.advance(120);

    let outbox = Outbox::new(
        store.clone(),
        secrets,
        Transport::File(dir.clone()),
        from(),
        clock.clone(),
    );
    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    assert!(emls(&dir).is_empty());
    let r = row(&store, &id).await;
    assert_eq!(r.failed_at, Some(clock.now()));
    assert_eq!(r.sent_at, None);
    // SPEC §3.5: a given-up message can be retried by an administrator, so
    // its content stays sealed (never plain) until the row is purged.
    let sealed = r.payload.expect("sealed content kept for a retry");
    assert!(
        !sealed.contains("Subject") && !sealed.contains("pml_"),
        "kept sealed, never plain"
    );
    assert!(r.last_error.unwrap().contains("expired"));
}

#[tokio::test]
async fn an_undecryptable_message_is_a_permanent_failure() {
    let (db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let id = put(&store, &secrets(), clock.now(), clock.now() + 900).await;

    // Another master key: the payload cannot be opened.
    let outbox = Outbox::new(
        store.clone(),
        secrets(),
        Transport::File(db.dir.path().join("m")),
        from(),
        clock.clone(),
    );
    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!(r.failed_at, Some(clock.now()));
    assert!(r.last_error.unwrap().contains("decrypt"));
}

#[tokio::test]
async fn a_temporary_failure_is_retried_within_thirty_seconds() {
    let (db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock = Arc::new(ManualClock::new());
    let id = put(&store, &secrets, clock.now(), clock.now() + 900).await;

    // The "directory" is a file: writing fails, as a full disk would.
    let blocked = db.dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let outbox = Outbox::new(
        store.clone(),
        secrets.clone(),
        Transport::File(blocked),
        from(),
        clock.clone(),
    );
    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!((r.sent_at, r.failed_at), (None, None));
    assert!(r.payload.is_some(), "kept for the next attempt");
    assert!(r.last_error.is_some());
    assert!((clock.now() + 1..=clock.now() + 30).contains(&r.next_attempt_at));

    // Not due yet: nothing happens. Once due, a working transport delivers.
    let dir = db.dir.path().join("mail");
    let outbox = Outbox::new(
        store.clone(),
        secrets,
        Transport::File(dir.clone()),
        from(),
        clock.clone(),
    );
    clock.advance(30);
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    assert_eq!(emls(&dir).len(), 1);
    assert_eq!(row(&store, &id).await.payload, None);
}

#[tokio::test]
async fn the_stdout_transport_keeps_the_link_and_code_in_the_dev_inbox() {
    let (_db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock = Arc::new(ManualClock::new());
    let inbox = postern_mail::DevInbox::new();
    put(&store, &secrets, clock.now(), clock.now() + 900).await;

    let outbox = Outbox::new(
        store,
        secrets,
        Transport::Stdout(inbox.clone()),
        from(),
        clock.clone(),
    );
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    let mails = inbox.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, TO);
    assert_eq!(mails[0].link.as_deref(), Some(LINK));
    assert_eq!(mails[0].code.as_deref(), Some(CODE));
    assert_eq!(mails[0].received_at, clock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_memory_bound_messages_wait_unleased_in_the_database_and_still_go_out() {
    use postern_mail::outbox::MAX_HELD;
    let (db, store) = TestDb::store().await;
    let secrets = secrets();
    let clock: Arc<dyn Clock> = Arc::new(postern_core::SystemClock);
    let dir = db.dir.path().join("mail");
    let outbox = Outbox::new(
        store.clone(),
        secrets.clone(),
        Transport::File(dir.clone()),
        from(),
        clock.clone(),
    );
    let queue = outbox.queue();
    // The worker is not running yet: every handed-over message stays held.
    let extra = 20;
    let now = clock.now();
    for _ in 0..MAX_HELD + extra {
        let mut tx = store.begin().await.unwrap();
        let queued = queue
            .enqueue(
                &mut tx,
                &secrets,
                &email(),
                now,
                now + 900,
                "postern.example",
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        queue.hand_over(queued);
    }
    let unleased: i64 = {
        let mut conn = store.conn().await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE lease_owner IS NULL AND attempts = 0")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(
        unleased, extra as i64,
        "only what did not fit waits unleased"
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(outbox.run(async move {
        let _ = stopped.await;
    }));
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        while store.conn().await.unwrap().outbox_pending().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(all.is_ok(), "every message, held or waiting, is delivered");
    assert_eq!(emls(&dir).len(), MAX_HELD + extra, "each exactly once");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("worker stops on shutdown")
        .unwrap();
}
