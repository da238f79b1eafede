//! Delivery by SMTP to a real server over a socket (`smtp_sink.py`, on
//! aiosmtpd): what arrives, what is retried, what is given up, and that two
//! workers sharing one database deliver each message exactly once. Runs on
//! SQLite, and on PostgreSQL with `POSTERN_TEST_BACKEND=postgres`.

mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;

use postern_core::{Clock, ManualClock, MasterKey, Secrets};
use postern_mail::{
    enqueue, render_sign_in, Brand, DeliveryError, Dkim, Mailbox, Outbox, OutgoingEmail,
    SignInEmail, Smtp, SmtpSettings, Transport,
};
use postern_store::{Queries, Store};
use postern_testkit::TestDb;
use sink::{free_port, header, header_names, Sink};
use sqlx::Row;

const LINK: &str = "http://127.0.0.1:8080/verify-email?token=pml_SeCrEtToKeN";
const CODE: &str = "482913";
const TO: &str = "alice@example.com";

fn secrets() -> Arc<Secrets> {
    Arc::new(Secrets::new(&MasterKey::generate()))
}

fn from() -> Mailbox {
    "Postern <no-reply@postern.example>".parse().unwrap()
}

/// The real sign-in email in `locale`, from the app `app_name`.
fn sign_in(to: &str, app_name: &str, locale: &str) -> OutgoingEmail {
    let rendered = render_sign_in(&SignInEmail {
        locale,
        brand: Brand {
            app_name,
            logo_url: None,
            color: None,
            note: None,
            header: None,
        },
        link: LINK,
        code: CODE,
        link_ttl: 900,
    })
    .unwrap();
    OutgoingEmail::new(to, Some(app_name), locale, rendered)
}

fn smtp(url: &str) -> Transport {
    let settings = SmtpSettings::from_url(&url.parse().unwrap(), None).unwrap();
    Transport::Smtp(Smtp::new(settings).unwrap())
}

fn outbox(store: &Store, secrets: &Arc<Secrets>, clock: &Arc<ManualClock>, url: &str) -> Outbox {
    Outbox::new(
        store.clone(),
        Arc::clone(secrets),
        smtp(url),
        from(),
        clock.clone(),
    )
}

async fn put(store: &Store, secrets: &Secrets, email: &OutgoingEmail, now: i64) -> String {
    let mut tx = store.begin().await.unwrap();
    let id = enqueue(&mut tx, secrets, email, now, now + 900, "postern.example")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

#[derive(Debug)]
struct Row_ {
    message_id: String,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: i64,
    payload: Option<String>,
}

async fn row(store: &Store, id: &str) -> Row_ {
    let mut conn = store.conn().await.unwrap();
    let r = sqlx::query(
        "SELECT message_id, sent_at, failed_at, last_error, next_attempt_at, payload FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    Row_ {
        message_id: r.try_get("message_id").unwrap(),
        sent_at: r.try_get("sent_at").unwrap(),
        failed_at: r.try_get("failed_at").unwrap(),
        last_error: r.try_get("last_error").unwrap(),
        next_attempt_at: r.try_get("next_attempt_at").unwrap(),
        payload: r.try_get("payload").unwrap(),
    }
}

#[tokio::test]
async fn the_message_arrives_with_its_headers_both_parts_link_and_code_in_its_language() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "de"), clock.now()).await;
    let message_id = row(&store, &id).await.message_id;

    let outbox = outbox(&store, &secrets, &clock, &sink.url());
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    let mails = sink.wait_for(1, 5).await;
    assert_eq!(mails.len(), 1);
    let raw = &mails[0];

    assert_eq!(header(raw, "Message-ID"), Some(message_id));
    assert_eq!(
        header(raw, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(raw, "From").as_deref(),
        Some("Acme <no-reply@postern.example>")
    );
    assert_eq!(header(raw, "To").as_deref(), Some(TO));
    assert!(header(raw, "Date").is_some());
    assert!(header(raw, "Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));

    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some(format!("Bei Acme anmelden: {CODE}").as_str())
    );
    let text = parsed.body_text(0).unwrap();
    let html = parsed.body_html(0).unwrap();
    for part in [&text, &html] {
        assert!(part.contains(LINK), "{part}");
        assert!(part.contains(CODE), "{part}");
        assert!(part.contains("Anmelde"), "German text: {part}");
    }

    let r = row(&store, &id).await;
    assert_eq!(r.sent_at, Some(clock.now()));
    assert_eq!(r.payload, None, "content erased once delivered");
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_the_message_arrives_exactly_once() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&["--tempfail", "1"]);
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;
    let outbox = outbox(&store, &secrets, &clock, &sink.url());

    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!((r.sent_at, r.failed_at), (None, None));
    let error = r.last_error.unwrap();
    assert!(error.contains("451"), "{error}");
    assert!((clock.now() + 1..=clock.now() + 30).contains(&r.next_attempt_at));
    assert_eq!(outbox.drain_once().await.unwrap(), 0, "not due yet");

    clock.advance(30);
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    assert_eq!(sink.wait_for(1, 5).await.len(), 1);
    assert!(row(&store, &id).await.sent_at.is_some());
}

#[tokio::test]
async fn a_permanent_refusal_gives_up_and_records_why_without_the_address() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&["--reject"]);
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;
    let outbox = outbox(&store, &secrets, &clock, &sink.url());

    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!(r.failed_at, Some(clock.now()));
    assert_eq!(r.sent_at, None);
    // SPEC §3.5: an administrator may retry a given-up message, so its
    // content stays, sealed under the master key, until the row is purged.
    let sealed = r.payload.expect("sealed content kept for a retry");
    assert!(
        !sealed.contains("alice") && !sealed.contains(CODE),
        "kept sealed"
    );
    let error = r.last_error.unwrap();
    assert!(
        error.contains("550") && error.contains("recipient"),
        "{error}"
    );
    for leak in ["alice", "example.com", CODE, "pml_"] {
        assert!(!error.contains(leak), "{leak:?} leaks into {error:?}");
    }
    clock.advance(60);
    assert_eq!(outbox.drain_once().await.unwrap(), 0, "never tried again");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn while_the_server_is_down_mail_waits_and_arrives_once_it_is_up() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;
    let outbox = outbox(&store, &secrets, &clock, &url);

    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!((r.sent_at, r.failed_at), (None, None));
    assert!(r.payload.is_some());
    let error = r.last_error.unwrap();
    assert!(error.contains("could not connect"), "{error}");
    assert!(r.next_attempt_at <= clock.now() + 30);

    let sink = Sink::start_on(port, &[]);
    // The transport holds back for a second after a failed connection.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    clock.advance(30);
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    assert_eq!(sink.wait_for(1, 5).await.len(), 1);
}

#[tokio::test]
async fn a_message_leased_by_a_crashed_instance_is_delivered_once_after_the_lease() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;
    // An instance claimed it and died (SIGKILL) before sending.
    let now = clock.now();
    let leased = store
        .claim_outbox(now, "dead-instance", now + 60, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);

    let outbox = outbox(&store, &secrets, &clock, &sink.url());
    assert_eq!(outbox.drain_once().await.unwrap(), 0, "still leased");
    clock.advance(61);
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let mails = sink.wait_for(1, 5).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        header(&mails[0], "Message-ID"),
        Some(row(&store, &id).await.message_id)
    );
}

#[tokio::test]
async fn starttls_required_refuses_a_server_that_does_not_offer_it() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;
    let url = format!("smtp+starttls://127.0.0.1:{}", sink.port);
    let outbox = outbox(&store, &secrets, &clock, &url);

    assert_eq!(outbox.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!(
        (r.sent_at, r.failed_at),
        (None, None),
        "kept for a fixed server"
    );
    let error = r.last_error.unwrap();
    assert!(error.contains("does not offer STARTTLS"), "{error}");
    assert!(sink.messages().is_empty(), "nothing sent in clear");
}

#[tokio::test]
async fn header_injection_through_app_name_subject_or_locale_adds_no_header() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let evil = "Acme\r\nBcc: mallory@evil.example\r\nX-Injected: yes";
    let mut email = sign_in(TO, evil, "en\r\nX-Injected: locale");
    email.subject = format!("{}\nX-Injected: subject", email.subject);
    put(&store, &secrets, &email, clock.now()).await;

    let outbox = outbox(&store, &secrets, &clock, &sink.url());
    assert_eq!(outbox.drain_once().await.unwrap(), 1);
    let mails = sink.wait_for(1, 5).await;
    let names = header_names(&mails[0]);
    for name in &names {
        assert!(
            !name.eq_ignore_ascii_case("Bcc") && !name.eq_ignore_ascii_case("X-Injected"),
            "injected header {name:?} in {names:?}"
        );
    }
    assert_eq!(header(&mails[0], "To").as_deref(), Some(TO));
}

#[tokio::test]
async fn the_url_user_and_configured_password_authenticate() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&["--auth", "postern@example.com:s3cret"]);
    let url = format!("smtp://postern%40example.com@127.0.0.1:{}", sink.port);
    let transport = |password: &str| {
        let settings =
            SmtpSettings::from_url(&url.parse().unwrap(), Some(password.to_owned().into()))
                .unwrap();
        Transport::Smtp(Smtp::new(settings).unwrap())
    };
    let id = put(&store, &secrets, &sign_in(TO, "Acme", "en"), clock.now()).await;

    let wrong = Outbox::new(
        store.clone(),
        secrets.clone(),
        transport("nope"),
        from(),
        clock.clone(),
    );
    assert_eq!(wrong.drain_once().await.unwrap(), 0);
    let r = row(&store, &id).await;
    assert_eq!(
        r.failed_at, None,
        "a configuration problem gives up no message"
    );
    let error = r.last_error.unwrap();
    assert!(error.contains("authentication"), "{error}");
    assert!(
        !error.contains("s3cret") && !error.contains("nope"),
        "{error}"
    );

    clock.advance(30);
    let right = Outbox::new(
        store.clone(),
        secrets,
        transport("s3cret"),
        from(),
        clock.clone(),
    );
    assert_eq!(right.drain_once().await.unwrap(), 1);
    assert_eq!(sink.wait_for(1, 5).await.len(), 1);
}

#[tokio::test]
async fn two_workers_sharing_a_database_deliver_each_of_1000_messages_exactly_once() {
    let (db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let email = sign_in(TO, "Acme", "en");
    let now = clock.now();
    let mut tx = store.begin().await.unwrap();
    for _ in 0..1000 {
        enqueue(&mut tx, &secrets, &email, now, now + 900, "postern.example")
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    // Two instances: separate pools on one database, separate SMTP pools.
    let other = Store::connect(&db.url).await.unwrap();
    let a = outbox(&store, &secrets, &clock, &sink.url());
    let b = outbox(&other, &secrets, &clock, &sink.url());
    let (sent_a, sent_b) = tokio::join!(a.drain_once(), b.drain_once());
    let (sent_a, sent_b) = (sent_a.unwrap(), sent_b.unwrap());
    assert_eq!(sent_a + sent_b, 1000, "a sent {sent_a}, b sent {sent_b}");
    assert_eq!(
        store.conn().await.unwrap().outbox_pending().await.unwrap(),
        0
    );

    let mails = sink.wait_for(1000, 20).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for raw in &mails {
        *seen.entry(header(raw, "Message-ID").unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 1000, "every message arrived");
    assert!(seen.values().all(|n| *n == 1), "a message arrived twice");
    assert_eq!(mails.len(), 1000);
}

/// Verifies the DKIM signature of `raw` with dkimpy, the public key of
/// `key_pem` standing in for the DNS record.
fn dkim_verifies(raw: &str, key_pem: &std::path::Path, alg: &str) -> bool {
    let script = r#"
import base64, subprocess, sys
import dkim
key, alg, path = sys.argv[1], sys.argv[2], sys.argv[3]
der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                     capture_output=True, check=True).stdout
if alg == "ed25519":
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:])
else:
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
ok = dkim.verify(open(path, "rb").read(), dnsfunc=lambda name, timeout=5: record)
sys.exit(0 if ok else 1)
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, raw).unwrap();
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(key_pem)
        .arg(alg)
        .arg(&path)
        .status()
        .expect("python3 with dkimpy (python3 -m pip install dkimpy)");
    status.success()
}

#[tokio::test]
async fn every_message_carries_a_dkim_signature_that_verifies() {
    let (_db, store) = TestDb::store().await;
    let (secrets, clock) = (secrets(), Arc::new(ManualClock::new()));
    let sink = Sink::start(&[]);
    let keys = tempfile::tempdir().unwrap();
    let cases = [
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        ("ed25519", &["-algorithm", "ed25519"][..]),
    ];
    for (kind, args) in cases {
        let path = keys.path().join(format!("{kind}.pem"));
        let out = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(out.success());
        let pem = std::fs::read_to_string(&path).unwrap();
        let dkim = Dkim::from_pem("mail2025", "postern.example", &pem).unwrap();
        put(&store, &secrets, &sign_in(TO, "Acme", "de"), clock.now()).await;
        let outbox = outbox(&store, &secrets, &clock, &sink.url()).with_dkim(Arc::new(dkim));
        assert_eq!(outbox.drain_once().await.unwrap(), 1, "{kind}");
    }
    let mails = sink.wait_for(2, 5).await;
    assert_eq!(mails.len(), 2);
    for (raw, (kind, _)) in mails.iter().zip(cases) {
        let sig = header(raw, "DKIM-Signature").expect("signed");
        for tag in [
            "d=postern.example",
            "s=mail2025",
            &format!("a={kind}-sha256"),
            "c=relaxed/relaxed",
        ] {
            assert!(sig.contains(tag), "{tag} missing in {sig}");
        }
        assert!(sig.contains("message-id"), "{sig}");
        let key = keys.path().join(format!("{kind}.pem"));
        assert!(
            dkim_verifies(raw, &key, kind),
            "{kind} signature does not verify"
        );
    }
}

#[test]
fn dkim_keys_are_checked_when_loaded() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("sel", "example.com", "not a key", "not an RSA or Ed25519"),
        (
            "sel",
            "example.com",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "not an RSA or Ed25519",
        ),
        ("bad selector", "example.com", "", "not a DNS name"),
        ("sel", "exa mple.com", "", "not a DNS name"),
    ];
    for (selector, domain, pem, expected) in cases {
        let e = Dkim::from_pem(selector, domain, pem)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{selector} {domain}: {e}");
    }
}

/// Runs `openssl` with `args`, writing to `out`.
fn openssl(args: &[&str], out: &std::path::Path) {
    let ok = std::process::Command::new("openssl")
        .args(args)
        .arg("-out")
        .arg(out)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success(), "openssl {args:?}");
}

#[test]
fn an_rsa_key_in_pkcs1_form_signs_too_and_a_short_one_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let pkcs8 = keys.path().join("rsa.pem");
    let pkcs1 = keys.path().join("rsa1.pem");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        &pkcs8,
    );
    openssl(
        &["rsa", "-traditional", "-in", pkcs8.to_str().unwrap()],
        &pkcs1,
    );
    let pem = std::fs::read_to_string(&pkcs1).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
    let dkim = Dkim::from_pem("mail2025", "postern.example", &pem).unwrap();
    assert_eq!(dkim.algorithm(), "rsa-sha256");
    let mut message =
        postern_mail::build_message(&sign_in(TO, "Acme", "fr"), "<a@b>", &from(), 0).unwrap();
    dkim.sign(&mut message, 1_700_000_000);
    let raw = String::from_utf8(message.formatted()).unwrap();
    assert!(dkim_verifies(&raw, &pkcs1, "rsa"), "{raw}");
    // The same message, altered after signing, no longer verifies.
    let altered = raw.replacen("Subject: ", "Subject: Re: ", 1);
    assert!(!dkim_verifies(&altered, &pkcs1, "rsa"));

    let short = keys.path().join("short.pem");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
        &short,
    );
    let e = Dkim::from_pem(
        "s",
        "postern.example",
        &std::fs::read_to_string(&short).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("2048 to 8192 bits"), "{e}");
}

#[tokio::test]
async fn a_refused_message_does_not_block_the_connection_for_the_next() {
    // Direct transport use: the reply is reported, and a 5xx for one
    // message leaves the pooled connection usable.
    let sink = Sink::start(&["--tempfail", "1"]);
    let Transport::Smtp(smtp) = smtp(&sink.url()) else {
        unreachable!()
    };
    let message =
        postern_mail::build_message(&sign_in(TO, "Acme", "en"), "<a@b>", &from(), 0).unwrap();
    let bytes = message.formatted();
    let first = smtp.send(message.envelope(), &bytes, TO).await;
    assert!(
        matches!(first, Err(DeliveryError::Temporary(ref e)) if e.contains("451")),
        "{first:?}"
    );
    let second = smtp.send(message.envelope(), &bytes, TO).await.unwrap();
    assert_eq!(second.code, 250);
    assert!(second.text.contains("queued"), "{second}");
    assert_eq!(sink.wait_for(1, 5).await.len(), 1);
}

/// The lines `smtp_sink.py --pipelining` logged: one per RCPT that arrived
/// with its DATA in the same batch.
fn pipelined(sink: &Sink) -> usize {
    std::fs::read_to_string(sink.dir.join("pipelined.log")).map_or(0, |log| log.lines().count())
}

#[tokio::test]
async fn with_pipelining_messages_go_out_in_one_batch_and_a_refusal_keeps_the_connection_in_step() {
    let message =
        postern_mail::build_message(&sign_in(TO, "Acme", "en"), "<a@b>", &from(), 0).unwrap();
    let bytes = message.formatted();

    // A server that offers PIPELINING gets RSET, MAIL, RCPT and DATA in
    // one go, on one reused connection, for every message.
    let sink = Sink::start(&["--pipelining", "--tempfail", "1"]);
    let Transport::Smtp(client) = smtp(&sink.url()) else {
        unreachable!()
    };
    let first = client.send(message.envelope(), &bytes, TO).await;
    assert!(
        matches!(first, Err(DeliveryError::Temporary(ref e)) if e.contains("451")),
        "{first:?}"
    );
    for _ in 0..3 {
        let reply = client.send(message.envelope(), &bytes, TO).await.unwrap();
        assert_eq!(reply.code, 250, "{reply}");
    }
    assert_eq!(sink.wait_for(3, 5).await.len(), 3);
    assert_eq!(pipelined(&sink), 4, "every transaction was pipelined");

    // A refused recipient: the refusals of RCPT and DATA are both read,
    // so the next transaction on the same connection starts in step and
    // hears its own answers (a stale one would fail its RSET instead).
    let sink = Sink::start(&["--pipelining", "--reject"]);
    let Transport::Smtp(client) = smtp(&sink.url()) else {
        unreachable!()
    };
    for _ in 0..2 {
        let refused = client.send(message.envelope(), &bytes, TO).await;
        assert!(
            matches!(&refused, Err(DeliveryError::Permanent(e))
                if e.contains("recipient") && e.contains("550") && !e.contains(TO)),
            "{refused:?}"
        );
    }
    assert!(sink.messages().is_empty());

    // Without PIPELINING on offer, commands go one at a time.
    let sink = Sink::start(&[]);
    let Transport::Smtp(client) = smtp(&sink.url()) else {
        unreachable!()
    };
    client.send(message.envelope(), &bytes, TO).await.unwrap();
    client.send(message.envelope(), &bytes, TO).await.unwrap();
    assert_eq!(sink.wait_for(2, 5).await.len(), 2);
}
