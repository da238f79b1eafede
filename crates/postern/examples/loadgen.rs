//! Postern's load tool: starts a real server in-process (SQLite in a temp
//! directory, or PostgreSQL with `--postgres URL`), then measures
//! `POST /request-magic-link` and the link verification over real HTTP.
//!
//! ```sh
//! cargo run --release -p postern --example loadgen -- [--requests 2000] [--concurrency 16] [--postgres postgres://postgres@127.0.0.1:5432/bench]
//! ```
//!
//! Every request uses a distinct address and the server's rate limits are
//! raised, so the figures measure the sign-in path, not the limiter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern::config::{load, Overrides};
use postern::serve::Application;
use postern_core::crypto::{random_token, sha256_b64};
use postern_core::{App, AppSettings, SystemClock};
use postern_store::Queries;

struct Args {
    requests: usize,
    concurrency: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        requests: 2000,
        concurrency: 16,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--requests" => a.requests = value.parse().expect("--requests N"),
            "--concurrency" => a.concurrency = value.parse().expect("--concurrency N"),
            "--postgres" => a.postgres = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{what:<22} {:>6} requests  {:>8.0} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

async fn run_phase<F, Fut>(n: usize, concurrency: usize, f: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let db = a
        .postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let env: BTreeMap<String, String> = [
        ("POSTERN_DATABASE_URL", db.as_str()),
        ("POSTERN_BIND", &format!("127.0.0.1:{port}")),
        ("POSTERN_PUBLIC_URL", public.as_str()),
        ("POSTERN_MASTER_KEY", &"ab".repeat(32)),
        ("POSTERN_MAIL", &format!("file://{}", mail_dir.display())),
        ("POSTERN_RATE_LIMIT_IP_PER_HOUR", "100000000"),
        ("POSTERN_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (config, _) = load(&Overrides::default(), &env, dir.path()).expect("configuration");
    let app = Application::build(&config, Arc::new(SystemClock), dir.path())
        .await
        .expect("server");
    let state = app.state();
    let now = postern_core::Clock::now(&SystemClock);
    let client_id = random_token(16);
    let mut settings = AppSettings {
        redirect_uris: vec!["https://app.example/cb".into()],
        first_party: true,
        link_requests_per_hour: 100_000_000,
        ..AppSettings::default()
    };
    App::validate("Bench", &mut settings).unwrap();
    let secret = random_token(32);
    state
        .store
        .conn()
        .await
        .unwrap()
        .insert_app(
            &App {
                client_id: client_id.clone(),
                name: "Bench".into(),
                settings,
                created_at: now,
                updated_at: now,
            },
            Some(&sha256_b64(secret.as_bytes())),
        )
        .await
        .unwrap();
    tokio::spawn(app.run_until(std::future::pending()));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap();
    let base = public.clone();
    println!(
        "Postern loadgen: {} requests, concurrency {}, database {}",
        a.requests,
        a.concurrency,
        if a.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    // Phase 1: link requests.
    let (h, b, c) = (http.clone(), base.clone(), client_id.clone());
    let (lat, wall) = run_phase(a.requests, a.concurrency, move |i| {
        let (h, b, c) = (h.clone(), b.clone(), c.clone());
        async move {
            let res = h
                .post(format!("{b}/request-magic-link"))
                .json(&serde_json::json!({
                    "email": format!("user{i}@bench.example"),
                    "client_id": c,
                    "redirect_uri": "https://app.example/cb",
                    "scope": "openid email",
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        }
    })
    .await;
    report("request-magic-link", lat, wall);

    // Wait for the outbox to deliver every email, then collect the links.
    let deadline = Instant::now() + Duration::from_secs(120);
    let links: Vec<String> = loop {
        let links: Vec<String> = std::fs::read_dir(&mail_dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .filter_map(|raw| {
                        let msg = mail_parser::MessageParser::default().parse(&raw)?;
                        let text = msg.body_text(0)?.into_owned();
                        let start = text.find("/verify-email?token=")?;
                        let token: String = text[start + 20..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                            .collect();
                        Some(format!("{base}/verify-email?token={token}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if links.len() >= a.requests || Instant::now() > deadline {
            break links;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("outbox delivered {} emails to files", links.len());

    // Phase 2: verification in another browser (confirmation page, nothing
    // consumed), then the POST that signs in and redirects with a code.
    let links = Arc::new(links);
    let n = links.len();
    let (h, l) = (http.clone(), links.clone());
    let (lat, wall) = run_phase(n, a.concurrency, move |i| {
        let (h, l) = (h.clone(), l.clone());
        async move {
            // Another browser: nothing is consumed; the token moves into a
            // short-lived cookie and the browser is sent to the bare URL.
            let res = h.get(&l[i]).send().await.unwrap();
            assert_eq!(res.status(), 303);
        }
    })
    .await;
    report("GET /verify-email (303)", lat, wall);
    let l = links.clone();
    let (lat, wall) = run_phase(n, a.concurrency, move |i| {
        let l = l.clone();
        async move {
            // A fresh cookie jar per sign-in: the confirmation page sets the
            // CSRF cookie that the POST must carry.
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let hop = browser.get(&l[i]).send().await.unwrap();
            assert_eq!(hop.status(), 303);
            let bare = l[i].split('?').next().unwrap();
            let page = browser
                .get(bare)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let field = |name: &str| {
                let needle = format!("name=\"{name}\" value=\"");
                let s = page.find(&needle).unwrap() + needle.len();
                page[s..s + page[s..].find('"').unwrap()].to_owned()
            };
            let res = browser
                .post(l[i].split('?').next().unwrap())
                .form(&[
                    ("csrf_token", field("csrf_token")),
                    ("token", field("token")),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
        }
    })
    .await;
    report("confirm + sign in", lat, wall);
}
