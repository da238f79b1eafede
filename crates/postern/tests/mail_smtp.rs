//! Black-box tests of delivery by SMTP (SPEC §4, §5) against a real SMTP
//! server (`smtp_sink.py`, on aiosmtpd): a link requested while the mail
//! server is down still succeeds and its email arrives once the server is
//! up; a message committed by an instance killed with SIGKILL before it
//! could send is delivered once by the next instance; `postern mail test`
//! sends one message and says what the server answered.

mod support;

#[path = "../../postern-mail/tests/sink/mod.rs"]
mod sink;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postern_store::Store;
use sink::{free_port, header, Sink};
use sqlx::Row;
use support::*;

/// Waits until `check` holds, up to `secs`.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_link_requested_while_smtp_is_down_arrives_once_the_server_is_up() {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[("POSTERN_MAIL", url.as_str())]).await;
    let client = app.create_app(|_| {}).await;

    let res = app
        .request_link(&browser(), &app.link_body(&client, "alice@example.com"))
        .await;
    assert_eq!(res.status(), 200, "the request succeeds with SMTP down");
    // The worker tried, failed and kept the message for a retry.
    let store = app.state.store.clone();
    let tried = eventually(5, || async {
        let mut conn = store.conn().await.unwrap();
        sqlx::query("SELECT last_error FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")
            .fetch_optional(&mut *conn)
            .await
            .unwrap()
            .and_then(|r| r.try_get::<Option<String>, _>("last_error").unwrap())
            .is_some()
    })
    .await;
    assert!(tried, "a failed attempt is recorded");

    let sink = Sink::start_on(port, &[]);
    // Time passes, as it does: a retry that came due at once may still
    // fail on the transport's short hold after a refused connection
    // (`smtp::DOWN_HOLD`) and be scheduled again, on this test's clock.
    let mut mails = Vec::new();
    for _ in 0..15 {
        app.clock.advance(30);
        mails = sink.wait_for(1, 1).await;
        if !mails.is_empty() {
            break;
        }
    }
    assert_eq!(mails.len(), 1, "the email arrives once the server is up");
    let email = parse_email(mails[0].as_bytes());
    assert_eq!(email.to, "alice@example.com");
    assert!(email.link.is_some() && email.code.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "delivered exactly once");
}

/// `postern serve` as a child process on `db`, sending to `smtp_port`.
fn serve(db: &postern_testkit::TestDb, smtp_port: u16) -> Child {
    let port = free_port();
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .arg("serve")
        .current_dir(db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POSTERN_DATABASE_URL", &db.url)
        .env("POSTERN_MASTER_KEY", MASTER_KEY)
        .env("POSTERN_BIND", format!("127.0.0.1:{port}"))
        .env("POSTERN_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("POSTERN_MAIL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("POSTERN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postern serve starts")
}

#[tokio::test]
async fn a_message_committed_before_a_sigkill_is_delivered_once_after_restart() {
    let db = postern_testkit::TestDb::new().await;
    let smtp_port = free_port();
    let mut first = serve(&db, smtp_port);
    let store = Store::connect(&db.url).await.unwrap();
    let migrated = eventually(20, || async { store.ready().await.unwrap_or(false) }).await;
    assert!(migrated, "the first instance migrated the database");

    // A message committed as a link request commits it (the request path
    // is covered elsewhere); the instance cannot send it: SMTP is down.
    let secrets =
        postern_core::Secrets::new(&postern_core::MasterKey::from_hex(MASTER_KEY).unwrap());
    let email = postern_mail::OutgoingEmail {
        to: "bob@example.com".into(),
        from_name: None,
        subject: "Sign in to Test: 123456".into(),
        text: "http://127.0.0.1/verify-email?token=pml_x\n\n123456\n".into(),
        html: "<p>123456</p>".into(),
        locale: "en".into(),
    };
    let now = postern_core::Clock::now(&postern_core::SystemClock);
    let mut tx = store.begin().await.unwrap();
    let id = postern_mail::enqueue(&mut tx, &secrets, &email, now, now + 900, "localhost")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let attempted = eventually(15, || async {
        let mut conn = store.conn().await.unwrap();
        let r = sqlx::query("SELECT attempts, lease_until FROM outbox WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        r.try_get::<i64, _>("attempts").unwrap() > 0
            && r.try_get::<Option<i64>, _>("lease_until")
                .unwrap()
                .is_none()
    })
    .await;
    assert!(attempted, "the first instance tried and failed");

    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let sink = Sink::start_on(smtp_port, &[]);
    let mut second = serve(&db, smtp_port);
    let mails = sink.wait_for(1, 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = second.kill();
    let _ = second.wait();

    assert_eq!(mails.len(), 1, "delivered after the restart");
    assert_eq!(sink.messages().len(), 1, "exactly once");
    let mut conn = store.conn().await.unwrap();
    let message_id: String = sqlx::query_scalar("SELECT message_id FROM outbox WHERE id = $1")
        .bind(&id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(header(&mails[0], "Message-ID"), Some(message_id));
}

/// `postern mail test ADDRESS` with `POSTERN_MAIL` pointing at `smtp_port`.
fn mail_test(dir: &std::path::Path, smtp_port: u16, address: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["mail", "test", address])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "POSTERN_DATABASE_URL",
            format!("sqlite://{}", dir.join("postern.db").display()),
        )
        .env("POSTERN_MASTER_KEY", MASTER_KEY)
        .env("POSTERN_MAIL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("POSTERN_MAIL_FROM", "Example sign-in <login@example.com>")
        .env("POSTERN_LOG", "warn")
        .output()
        .expect("postern mail test runs")
}

#[tokio::test]
async fn postern_mail_test_sends_one_message_and_prints_the_servers_answer_or_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&[]);
    let port: u16 = sink.url().rsplit(':').next().unwrap().parse().unwrap();

    let out = mail_test(dir.path(), port, "bob@example.com");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "accepted: {out:?}");
    assert!(
        stdout.contains("250"),
        "the server's reply is printed: {stdout}"
    );
    let mails = sink.wait_for(1, 10).await;
    assert_eq!(mails.len(), 1, "one message, sent at once without a server");
    assert_eq!(header(&mails[0], "To").as_deref(), Some("bob@example.com"));
    assert_eq!(
        header(&mails[0], "Subject").as_deref(),
        Some("Postern test message")
    );
    assert!(header(&mails[0], "From")
        .unwrap()
        .contains("login@example.com"));

    // A server that refuses the recipient: exit 1, and the reason.
    let refusing = Sink::start(&["--reject"]);
    let port: u16 = refusing.url().rsplit(':').next().unwrap().parse().unwrap();
    let out = mail_test(dir.path(), port, "bob@example.com");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {out:?}");
    assert!(
        stderr.contains("not delivered") && stderr.contains("550"),
        "{stderr}"
    );
    assert!(refusing.messages().is_empty());

    // Not an address: refused before anything is sent.
    let out = mail_test(dir.path(), port, "not an address");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an email address"));
}
