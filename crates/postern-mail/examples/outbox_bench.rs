//! Email delivery throughput and latency, against an in-process SMTP sink.
//!
//! ```text
//! cargo run --release -p postern-mail --example outbox_bench [-- MESSAGES]
//! ```
//!
//! Measures, with MESSAGES messages (default 10000):
//! 1. the sink alone (as many raw client connections as the transport
//!    keeps, 16 by default, one transaction at a time
//!    each, the same command sequence Postern sends);
//! 2. the SMTP transport alone (no database);
//! 3. the outbox end to end (claim, decrypt, build, send, record) with one
//!    worker on SQLite, one worker on PostgreSQL and two workers (two
//!    pools, as two instances) on PostgreSQL;
//! 4. the latency from committing a message (and waking the worker) to the
//!    sink's acceptance, on an idle SQLite worker.
//!
//! PostgreSQL comes from `POSTERN_BENCH_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`); a scratch database is created and
//! dropped. Set `POSTERN_BENCH_PG_URL=none` to skip it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_core::{Clock, MasterKey, Secrets, SystemClock};
use postern_mail::{
    enqueue, render_sign_in, Brand, Mailbox, Outbox, OutgoingEmail, SignInEmail, Smtp,
    SmtpSettings, Transport,
};
use postern_store::Store;
use sqlx::{Connection as _, Executor as _};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the sink has accepted: a count, and when each Message-ID arrived.
#[derive(Default)]
struct Accepted {
    count: AtomicUsize,
    arrivals: Mutex<HashMap<String, Instant>>,
}

/// A minimal, fast SMTP server: accepts everything, keeps nothing but the
/// Message-ID and arrival time.
async fn sink() -> (u16, Arc<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Accepted::default());
    let shared = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(session(stream, Arc::clone(&shared)));
        }
    });
    (port, accepted)
}

async fn session(stream: TcpStream, accepted: Arc<Accepted>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut message_id = None;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    if message_id.is_none() && line.starts_with("Message-ID:") {
                        message_id = Some(line[11..].trim().to_owned());
                    }
                }
                let now = Instant::now();
                if let Some(id) = message_id {
                    accepted.arrivals.lock().unwrap().insert(id, now);
                }
                accepted.count.fetch_add(1, Ordering::SeqCst);
                write.write_all(b"250 2.0.0 queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 ok\r\n").await?,
        }
    }
}

/// Reads one reply line.
async fn reply(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) {
    line.clear();
    lines.read_line(line).await.unwrap();
}

/// (1) The sink alone: `connections` raw clients, `n` messages in total.
async fn sink_alone(port: u16, accepted: &Accepted, n: usize, connections: usize) -> f64 {
    let body = message_bytes();
    let before = accepted.count.load(Ordering::SeqCst);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let body = body.clone();
        let share = n / connections + usize::from(c < n % connections);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let mut line = String::new();
            reply(&mut lines, &mut line).await;
            write.write_all(b"EHLO bench\r\n").await.unwrap();
            reply(&mut lines, &mut line).await;
            reply(&mut lines, &mut line).await;
            for _ in 0..share {
                for command in [
                    &b"RSET\r\n"[..],
                    b"MAIL FROM:<no-reply@postern.example>\r\n",
                    b"RCPT TO:<alice@example.com>\r\n",
                    b"DATA\r\n",
                ] {
                    write.write_all(command).await.unwrap();
                    reply(&mut lines, &mut line).await;
                }
                write.write_all(&body).await.unwrap();
                write.write_all(b"\r\n.\r\n").await.unwrap();
                reply(&mut lines, &mut line).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(accepted.count.load(Ordering::SeqCst) - before, n);
    n as f64 / elapsed.as_secs_f64()
}

fn email() -> OutgoingEmail {
    let rendered = render_sign_in(&SignInEmail {
        locale: "en",
        brand: Brand {
            app_name: "Acme",
            logo_url: None,
            color: None,
            note: None,
            header: None,
        },
        link: "https://auth.example.com/verify-email?token=pml_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
        code: "482913",
        link_ttl: 900,
    })
    .unwrap();
    OutgoingEmail::new("alice@example.com", Some("Acme"), "en", rendered)
}

fn from() -> Mailbox {
    "Postern <no-reply@postern.example>".parse().unwrap()
}

fn message_bytes() -> Vec<u8> {
    postern_mail::build_message(&email(), "<bench@postern.example>", &from(), 0)
        .unwrap()
        .formatted()
}

fn transport(port: u16) -> Transport {
    let url = format!("smtp://127.0.0.1:{port}").parse().unwrap();
    Transport::Smtp(Smtp::new(SmtpSettings::from_url(&url, None).unwrap()).unwrap())
}

/// (2) The SMTP transport alone: `n` sends, as many at once as it has
/// connections.
async fn transport_alone(port: u16, n: usize) -> f64 {
    let Transport::Smtp(smtp) = transport(port) else {
        unreachable!()
    };
    let message = postern_mail::build_message(&email(), "<t@postern.example>", &from(), 0).unwrap();
    let bytes = Arc::new(message.formatted());
    let envelope = Arc::new(message.envelope().clone());
    let start = Instant::now();
    let per = smtp.settings().connections;
    let mut tasks = Vec::new();
    for c in 0..per {
        let (smtp, bytes, envelope) = (smtp.clone(), bytes.clone(), envelope.clone());
        let share = n / per + usize::from(c < n % per);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                smtp.send(&envelope, &bytes, "alice@example.com")
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn fill(store: &Store, secrets: &Secrets, n: usize) {
    let now = SystemClock.now();
    let email = email();
    for chunk in 0..n.div_ceil(1000) {
        let mut tx = store.begin().await.unwrap();
        for _ in 0..1000.min(n - chunk * 1000) {
            enqueue(&mut tx, secrets, &email, now, now + 900, "postern.example")
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// (3) End to end: `n` queued messages delivered by `workers` workers, each
/// with its own store pool and SMTP pool.
async fn end_to_end(url: &str, port: u16, accepted: &Accepted, n: usize, workers: usize) -> f64 {
    let secrets = Arc::new(Secrets::new(&MasterKey::generate()));
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    fill(&store, &secrets, n).await;
    let mut outboxes = Vec::new();
    for _ in 0..workers {
        let store = Store::connect(url).await.unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        outboxes.push(Outbox::new(
            store,
            secrets.clone(),
            transport(port),
            from(),
            clock,
        ));
    }
    let before = accepted.count.load(Ordering::SeqCst);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for outbox in outboxes {
        tasks.push(tokio::spawn(
            async move { outbox.drain_once().await.unwrap() },
        ));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(sent, n, "every message sent once");
    assert_eq!(accepted.count.load(Ordering::SeqCst) - before, n);
    store.close().await;
    n as f64 / elapsed.as_secs_f64()
}

/// (4) Commit-to-acceptance latency on an idle worker, `samples` times.
async fn latency(url: &str, port: u16, accepted: &Arc<Accepted>, samples: usize) -> Vec<Duration> {
    let secrets = Arc::new(Secrets::new(&MasterKey::generate()));
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let outbox = Outbox::new(
        store.clone(),
        secrets.clone(),
        transport(port),
        from(),
        clock.clone(),
    );
    let waker = outbox.waker();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(outbox.run(async move {
        let _ = stopped.await;
    }));
    let email = email();
    let mut out = Vec::new();
    for _ in 0..samples {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = clock.now();
        let start = Instant::now();
        let mut tx = store.begin().await.unwrap();
        let id = enqueue(&mut tx, &secrets, &email, now, now + 900, "postern.example")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        waker.notify_one();
        let message_id: String = {
            let mut conn = store.conn().await.unwrap();
            sqlx::query_scalar("SELECT message_id FROM outbox WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        };
        loop {
            if let Some(at) = accepted.arrivals.lock().unwrap().get(&message_id) {
                out.push(at.saturating_duration_since(start));
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let _ = stop.send(());
    worker.await.unwrap();
    out.sort();
    out
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("MESSAGES is a number"))
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let (port, accepted) = sink().await;
        println!("{} messages, {} cores", n, std::thread::available_parallelism().map_or(1, |p| p.get()));
        let connections = postern_mail::smtp::DEFAULT_CONNECTIONS;
        let rate = sink_alone(port, &accepted, n, connections).await;
        println!("sink alone ({connections} raw connections):         {rate:>8.0} messages/s");
        let rate = transport_alone(port, n).await;
        println!("SMTP transport alone ({connections} connections):   {rate:>8.0} messages/s");

        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let rate = end_to_end(&sqlite, port, &accepted, n, 1).await;
        println!("outbox end to end, SQLite, 1 worker:     {rate:>8.0} messages/s");

        let pg_admin = std::env::var("POSTERN_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        if pg_admin != "none" {
            let name = format!("postern_bench_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&format!("{pg_admin}/postgres"))
                .await
                .expect("PostgreSQL at POSTERN_BENCH_PG_URL (or set it to none)");
            for (workers, label) in [(1, "1 worker: "), (2, "2 workers:")] {
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await;
                admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
                let url = format!("{pg_admin}/{name}");
                let rate = end_to_end(&url, port, &accepted, n, workers).await;
                println!("outbox end to end, PostgreSQL, {label} {rate:>8.0} messages/s");
            }
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }

        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("latency.db").display());
        let l = latency(&sqlite, port, &accepted, 200).await;
        let pct = |p: usize| l[(l.len() - 1) * p / 100].as_secs_f64() * 1000.0;
        println!(
            "commit to SMTP acceptance, idle worker (SQLite): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(50),
            pct(99),
            pct(100)
        );
    });
}
