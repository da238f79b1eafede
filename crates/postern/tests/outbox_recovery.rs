//! Crash recovery and graceful shutdown of the outbox (issue 14 item 4),
//! with real processes: `postern serve` killed with SIGKILL or stopped with
//! SIGTERM while it delivers to a real SMTP server over a socket.
//!
//! Each test prints its numbers (`OPS ...` lines) for the record.

mod ops;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops::{create_app, delivery, link_body, load, Instance, Sink};
use postern_store::{Backend, Queries as _, Store};
use postern_testkit::TestDb;

async fn ask_link(instance: &Instance, client_id: &str, email: &str) {
    let res = reqwest::Client::new()
        .post(instance.url("/request-magic-link"))
        .json(&link_body(client_id, email))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// A fresh database with an app, and a sink that holds every message
/// half-way (it never answers one).
async fn with_holding_sink() -> (TestDb, Store, String, Arc<Sink>) {
    let db = TestDb::new().await;
    let store = migrated_store(&db).await;
    let (client_id, _) = create_app(&store).await;
    let sink = Sink::start().await;
    sink.hold.store(true, Ordering::SeqCst);
    (db, store, client_id, sink)
}

async fn migrated_store(db: &TestDb) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A message in flight (the SMTP server has it but has not answered) when
/// its instance dies: on SQLite the restarted instance takes its lease back
/// at once and delivers it within 10 s; on PostgreSQL another running
/// instance takes it over within 20 s. Either way exactly once.
#[tokio::test]
async fn a_message_in_flight_at_a_sigkill_is_delivered_once_soon_after() {
    let (db, store, client_id, sink) = with_holding_sink().await;
    let mut first = Instance::start(db.dir.path(), &db.url, 0, &sink.url(), &[]);
    first.ready(30).await;
    let pg = postern_testkit::backend() == Backend::Postgres;
    // On PostgreSQL a second instance is already running and idle.
    let second = if pg {
        let i = Instance::start(db.dir.path(), &db.url, 0, &sink.url(), &[]);
        i.ready(30).await;
        Some(i)
    } else {
        None
    };

    ask_link(&first, &client_id, "held@example.com").await;
    sink.wait_held(1, 10).await;
    first.kill9();
    let killed = Instant::now();
    sink.hold.store(false, Ordering::SeqCst);
    let restarted = if pg {
        None
    } else {
        let i = Instance::start(db.dir.path(), &db.url, 0, &sink.url(), &[]);
        Some(i)
    };
    let limit = if pg { 20 } else { 10 };
    let arrival = sink
        .wait_for("held@example.com", limit)
        .await
        .unwrap_or_else(|| panic!("not delivered within {limit} s of the kill"));
    let took = arrival.at - killed;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let arrivals = sink.by_recipient();
    assert_eq!(arrivals["held@example.com"].len(), 1, "delivered once");
    let message_id: String = {
        let mut conn = store.conn().await.unwrap();
        assert_eq!(conn.outbox_pending().await.unwrap(), 0);
        sqlx::query_scalar("SELECT message_id FROM outbox")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(arrival.message_id, message_id, "the stable Message-ID");
    eprintln!(
        "OPS in-flight message after SIGKILL ({}): delivered {:.2} s after the kill",
        if pg {
            "PostgreSQL, taken over by another instance"
        } else {
            "SQLite, restarted instance"
        },
        took.as_secs_f64()
    );
    drop((second, restarted));
}

/// SIGKILL in the middle of a load run, the instance restarted at once (on
/// PostgreSQL a second instance keeps serving): no accepted request's email
/// is lost, at most the deliveries in flight (≤ the SMTP connections, 16)
/// arrive twice, and none arrives later than 15 s after its answer.
#[tokio::test]
async fn sigkill_under_load_loses_nothing_and_duplicates_at_most_the_in_flight() {
    let db = TestDb::new().await;
    let store = migrated_store(&db).await;
    let (client_id, _) = create_app(&store).await;
    let sink = Sink::start().await;
    let pg = postern_testkit::backend() == Backend::Postgres;
    // Deliveries in flight at once: the SMTP pool's connections.
    let smtp_connections = postern_mail::smtp::DEFAULT_CONNECTIONS;
    let smtp = sink.url();
    let mut first = Instance::start(db.dir.path(), &db.url, 0, &smtp, &[]);
    first.ready(30).await;
    let port = first.port;
    let other = if pg {
        let i = Instance::start(db.dir.path(), &db.url, 0, &smtp, &[]);
        i.ready(30).await;
        Some(i)
    } else {
        None
    };
    let mut urls = vec![first.url("")];
    if let Some(o) = &other {
        urls.push(o.url(""));
    }
    let run = tokio::spawn(load(urls, client_id, 16, 6.0, "kill"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    first.kill9();
    // Restarted on the same port at once.
    let mut restarted = Instance::start(db.dir.path(), &db.url, port, &smtp, &[]);
    let result = run.await.unwrap();
    let want: HashSet<String> = result.accepted.keys().cloned().collect();
    sink.wait_for_all(&want, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = delivery(&sink, &result, "kill");
    eprintln!(
        "OPS SIGKILL under load ({}): {} accepted, {} lost, {} twice, slowest {:.2} s, {} later than 15 s, {} unanswered during the restart",
        if pg { "PostgreSQL, 2 instances" } else { "SQLite" },
        d.accepted, d.lost, d.twice, d.slowest.as_secs_f64(), d.later_than_15s, result.unanswered
    );
    assert!(d.accepted > 20, "the load ran: {d:?}");
    assert_eq!(d.lost, 0, "{d:?}");
    assert!(
        d.twice <= smtp_connections,
        "at most the in-flight twice: {d:?}"
    );
    assert_eq!(d.later_than_15s, 0, "{d:?}");
    assert_eq!(result.cut_off, 0, "{result:?}");
    restarted.kill9();
}

/// SIGTERM in the middle of a load run: the instance stops accepting,
/// answers every request it took in full, delivers their email, and exits
/// within the grace; no email is delivered twice, and every email sent
/// belongs to a request that got its whole answer.
#[tokio::test]
async fn sigterm_under_load_cuts_no_answer_and_delivers_nothing_twice() {
    let db = TestDb::new().await;
    let store = migrated_store(&db).await;
    let (client_id, _) = create_app(&store).await;
    let sink = Sink::start().await;
    let smtp = sink.url();
    let mut first = Instance::start(
        db.dir.path(),
        &db.url,
        0,
        &smtp,
        &[("POSTERN_SHUTDOWN_GRACE", "10s")],
    );
    first.ready(30).await;
    let run = tokio::spawn(load(vec![first.url("")], client_id, 16, 4.0, "term"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.term();
    let exited = first
        .exited_within(15)
        .await
        .expect("exits within the grace");
    let result = run.await.unwrap();
    // Whatever was handed back at shutdown goes out with the next start.
    let next = Instance::start(db.dir.path(), &db.url, 0, &smtp, &[]);
    next.ready(30).await;
    let want: HashSet<String> = result.accepted.keys().cloned().collect();
    sink.wait_for_all(&want, 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = delivery(&sink, &result, "term");
    eprintln!(
        "OPS SIGTERM under load: exited {:.2} s after the signal; {} answered, {} lost, {} twice, {} cut off, {} unanswered after the stop",
        exited.as_secs_f64(), d.accepted, d.lost, d.twice, result.cut_off, result.unanswered
    );
    assert!(
        exited <= Duration::from_secs(11),
        "within POSTERN_SHUTDOWN_GRACE"
    );
    assert!(d.accepted > 20, "{d:?}");
    assert_eq!(result.cut_off, 0, "no answer cut off: {result:?}");
    assert_eq!(
        d.unaccounted, 0,
        "an email for a request whose answer was lost: {d:?}"
    );
    assert_eq!(d.lost, 0, "{d:?}");
    assert_eq!(d.twice, 0, "{d:?}");
    assert_eq!(
        store.conn().await.unwrap().outbox_pending().await.unwrap(),
        0
    );
}

/// `POSTERN_SMTP_CONNECTIONS` bounds the deliveries in flight: with a sink
/// that never answers a message, exactly that many reach it and the rest
/// wait for a connection.
#[tokio::test]
async fn smtp_connections_bound_the_messages_in_flight() {
    let (db, _store, client_id, sink) = with_holding_sink().await;
    let mut instance = Instance::start(
        db.dir.path(),
        &db.url,
        0,
        &sink.url(),
        &[("POSTERN_SMTP_CONNECTIONS", "3")],
    );
    instance.ready(30).await;
    for i in 0..8 {
        ask_link(&instance, &client_id, &format!("wait{i}@example.com")).await;
    }
    sink.wait_held(3, 10).await;
    // Time for a fourth connection, were there one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.held.load(Ordering::SeqCst), 3, "in flight at once");
    instance.kill9();
}
