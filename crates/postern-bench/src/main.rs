//! `postern-bench`: Postern's load benchmark. It drives a *running* server
//! over real HTTP — the full browser sign-in, link requests, the asking
//! browser's verification, the headless API, discovery — with its own SMTP
//! server as the server's mail transport, and prints latency percentiles
//! and throughput per step as a Markdown table (or JSON).

mod browser;
mod scenario;
mod sink;
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use url::Url;

use crate::browser::Browser;
use crate::scenario::{Ctx, Flow, Pool, Scenario};
use crate::sink::Sink;
use crate::stats::{EmailRow, Recorder, Report, Window};

const SETUP: &str = "\
Setup (one server on SQLite; docs/PERFORMANCE.md has PostgreSQL and two instances):

  1. Register a first-party app (no consent screen) whose own hourly limit
     of link requests (default 1,000) will not stop the run:

       postern app create --name Bench --first-party \\
           --redirect-uri https://bench.example/cb --link-requests-per-hour 1000000000
       # {\"client_id\": \"…\", \"client_secret\": \"pcs_…\"}

     (for an existing app: postern app update ID --link-requests-per-hour 1000000000)

  2. Start the server with this tool's SMTP sink as its mail server and the
     per-address and per-IP limits raised (every request comes from 127.0.0.1).
     Plain smtp:// is allowed without TLS because the host is loopback:

       POSTERN_MAIL=smtp://127.0.0.1:2525 \\
       POSTERN_RATE_LIMIT_EMAIL_PER_HOUR=1000000000 \\
       POSTERN_RATE_LIMIT_IP_PER_HOUR=1000000000 \\
       postern serve

     The server retries delivery while the sink is not yet listening, so
     either may start first.

  3. Run a scenario:

       postern-bench --client-id ID --client-secret pcs_… \\
           --redirect-uri https://bench.example/cb --scenario signin

Every sign-in uses a fresh email address. With --client-addresses
per-person each person's requests also come from an address of their own
(X-Forwarded-For; start the server with POSTERN_TRUSTED_PROXIES=127.0.0.1/32).
The exit status is 0 when the
scenario's last step succeeded at least once while measuring, 1 when it
never did, 2 when the run could not start; it never depends on a number.";

/// Load benchmark for a running Postern: sign-ins over real HTTP, with a
/// built-in SMTP sink as the server's mail transport.
#[derive(Debug, Parser)]
#[command(name = "postern-bench", version, after_long_help = SETUP)]
struct Args {
    /// Base URL of a running Postern. Repeat it for several instances on one
    /// database: each virtual browser sends its requests to them in turn, so
    /// a sign-in started on one instance finishes on another.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    urls: Vec<Url>,
    /// What to measure.
    #[arg(long, value_enum, default_value = "signin")]
    scenario: Scenario,
    /// Virtual browsers running at once (each with its own connection and
    /// cookie jar).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// How long to measure, after the warm-up (`10s`, `500ms`, `2m`).
    #[arg(long, default_value = "10s", value_parser = duration)]
    duration: Duration,
    /// How long to run before measuring.
    #[arg(long, default_value = "2s", value_parser = duration)]
    warmup: Duration,
    /// Where the SMTP sink listens; start the server with
    /// POSTERN_MAIL=smtp://<this address>.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2525")]
    smtp_listen: SocketAddr,
    /// The app's client_id (from `postern app create`).
    #[arg(long)]
    client_id: Option<String>,
    /// The app's client secret (signin and headless call /token and the API).
    #[arg(long)]
    client_secret: Option<String>,
    /// One of the app's registered redirect URIs.
    #[arg(long)]
    redirect_uri: Option<String>,
    /// verify: links to request (and receive) before the clock starts; the
    /// run ends early if they run out, so give at least the expected rate ×
    /// (warm-up + duration).
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    prepare: usize,
    /// Longest wait for one answer, and for one email.
    #[arg(long, default_value = "30s", value_parser = duration)]
    timeout: Duration,
    /// Where the people's requests come from: `one` address (the bench's
    /// own, so every request shares the server's per-IP limit counter), or
    /// `per-person`: each person's requests carry `X-Forwarded-For` with an
    /// address of their own, as real traffic through a proxy does. Start
    /// the server with POSTERN_TRUSTED_PROXIES=127.0.0.1/32 for it to count.
    #[arg(long, value_enum, default_value = "one")]
    client_addresses: ClientAddresses,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClientAddresses {
    One,
    PerPerson,
}

/// `10s`, `500ms`, `2m`, or plain seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// The 1-minute load average (Linux), for the report.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Prepare,
    Measure(Scenario),
}

/// Runs `concurrency` virtual browsers doing `job` until `window.end` (or
/// until the job runs out); returns their merged tally and, when every
/// browser ran out of work before the end, when the last one did.
async fn drive(
    ctx: &Arc<Ctx>,
    job: Job,
    pool: Option<&Arc<Pool>>,
    concurrency: usize,
    steps: usize,
    window: Window,
) -> (Recorder, Option<Instant>) {
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let ctx = Arc::clone(ctx);
        let pool = pool.cloned();
        tasks.push(tokio::spawn(async move {
            let mut b = Browser::new(Arc::clone(&ctx.urls), i, ctx.timeout, window.end);
            let mut rec = Recorder::new(steps, window);
            // An iteration under way at the end finishes its request (not
            // counted) and sends nothing more.
            while Instant::now() < window.end {
                let flow = match (job, &pool) {
                    (Job::Prepare, Some(pool)) => {
                        scenario::prepare(&ctx, &mut b, &mut rec, pool).await
                    }
                    (Job::Prepare, None) => Flow::Done,
                    (Job::Measure(s), pool) => {
                        scenario::iteration(s, &ctx, &mut b, &mut rec, pool.as_deref()).await
                    }
                };
                if let Flow::Done = flow {
                    return (rec, Some(Instant::now()));
                }
            }
            (rec, None)
        }));
    }
    let mut total = Recorder::new(steps, window);
    let mut ran_out: Option<Option<Instant>> = None;
    for task in tasks {
        let (rec, done) = task.await.expect("a virtual browser does not panic");
        total.merge(rec);
        ran_out = Some(match (ran_out, done) {
            (None, d) => d,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
            _ => None,
        });
    }
    (total, ran_out.flatten())
}

fn bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("[{bar:32}] {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Updates a progress bar every 100 ms until aborted: time through the run,
/// and the scenario's completions per second once measuring.
fn tick(
    ctx: Arc<Ctx>,
    bar: ProgressBar,
    start: Instant,
    warmup: Duration,
    total: Duration,
    unit: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut base: Option<u64> = None;
        loop {
            let elapsed = start.elapsed().min(total);
            bar.set_position(elapsed.as_millis() as u64);
            let done = ctx.finished.load(Ordering::Relaxed);
            if elapsed < warmup {
                bar.set_message(format!(
                    "warm-up {:.1}/{:.1} s · {done} {unit}",
                    elapsed.as_secs_f64(),
                    warmup.as_secs_f64()
                ));
            } else {
                let base = *base.get_or_insert(done);
                let measured = (elapsed - warmup).as_secs_f64();
                let n = done - base;
                bar.set_message(format!(
                    "measuring {measured:.1}/{:.1} s · {n} {unit} · {:.0}/s",
                    (total - warmup).as_secs_f64(),
                    if measured > 0.0 {
                        n as f64 / measured
                    } else {
                        0.0
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("postern-bench: {message}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let s = args.scenario;
    let missing = [
        (
            "--client-id",
            args.client_id.is_none() && s != Scenario::Discovery,
        ),
        (
            "--redirect-uri",
            args.redirect_uri.is_none() && s != Scenario::Discovery,
        ),
        (
            "--client-secret",
            args.client_secret.is_none() && s.needs_secret(),
        ),
    ];
    let missing: Vec<&str> = missing.iter().filter(|m| m.1).map(|m| m.0).collect();
    if !missing.is_empty() {
        return fail(format!(
            "the {} scenario needs {} (see --help for how to create the app)",
            scenario_name(s),
            missing.join(", ")
        ));
    }

    let sink = match Sink::start(args.smtp_listen).await {
        Ok(sink) => sink,
        Err(e) => {
            return fail(format!(
                "the SMTP sink cannot listen on {}: {e}",
                args.smtp_listen
            ))
        }
    };
    if s.needs_mail() {
        eprintln!(
            "postern-bench: SMTP sink listening on {addr}; the server must run with POSTERN_MAIL=smtp://{addr}",
            addr = sink.addr()
        );
    }
    let ctx = Arc::new(Ctx::new(
        args.urls.clone(),
        args.client_id.clone().unwrap_or_default(),
        args.client_secret.clone(),
        args.redirect_uri.clone().unwrap_or_default(),
        Arc::clone(&sink),
        args.timeout,
        args.client_addresses == ClientAddresses::PerPerson,
    ));

    // Fail fast, and clearly, when a server is not there.
    for url in ctx.urls.iter() {
        let ready = url.join("/readyz").expect("a path joins");
        let status = reqwest::Client::new()
            .get(ready.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status());
        match status {
            Ok(s) if s.is_success() => {}
            Ok(s) => return fail(format!("{ready} answered {s}: the server is not ready")),
            Err(e) => {
                return fail(format!(
                    "cannot reach {ready} ({e}): is `postern serve` running?"
                ))
            }
        }
    }

    let concurrency = usize::from(args.concurrency);
    let load_average = load_average();
    let mut notes = Vec::new();

    // The verify scenario verifies links requested before its clock starts.
    let pool = if s == Scenario::Verify {
        let pool = Arc::new(Pool::new(args.prepare));
        let bar = bar(args.prepare as u64);
        bar.set_message(format!("requesting and receiving {} links", args.prepare));
        let ticker = {
            let (bar, pool) = (bar.clone(), Arc::clone(&pool));
            tokio::spawn(async move {
                loop {
                    bar.set_position(pool.ready() as u64);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let now = Instant::now();
        // Links live 15 minutes by default: prepare for at most 5.
        let window = Window {
            measure_from: now,
            end: now + Duration::from_secs(300),
        };
        let (prep, _) = drive(&ctx, Job::Prepare, Some(&pool), concurrency, 2, window).await;
        ticker.abort();
        bar.finish_and_clear();
        pool.seal();
        let errors = prep.errors(&["link request", "email"]);
        eprintln!(
            "postern-bench: prepared {} of {} links in {:.1} s{}",
            pool.len(),
            args.prepare,
            now.elapsed().as_secs_f64(),
            if errors.is_empty() {
                String::new()
            } else {
                let e: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{} × {} at {}", e.count, e.answer, e.step))
                    .collect();
                format!(" (failures: {})", e.join(", "))
            }
        );
        if pool.len() == 0 {
            return fail("no link could be prepared");
        }
        ctx.finished.store(0, Ordering::Relaxed);
        Some(pool)
    } else {
        None
    };

    let steps = s.steps();
    let start = Instant::now();
    let window = Window {
        measure_from: start + args.warmup,
        end: start + args.warmup + args.duration,
    };
    let total = args.warmup + args.duration;
    let bar = bar(total.as_millis() as u64);
    let ticker = tick(
        Arc::clone(&ctx),
        bar.clone(),
        start,
        args.warmup,
        total,
        s.unit(),
    );
    // The sink's count when measuring starts and ends.
    let emails_at_start = Arc::new(OnceLock::new());
    let snapshot = {
        let (sink, at_start) = (Arc::clone(&sink), Arc::clone(&emails_at_start));
        tokio::spawn(async move {
            tokio::time::sleep_until(window.measure_from.into()).await;
            let _ = at_start.set(sink.accepted());
        })
    };
    let (rec, ran_out) = drive(
        &ctx,
        Job::Measure(s),
        pool.as_ref(),
        concurrency,
        steps.len(),
        window,
    )
    .await;
    let emails_at_end = sink.accepted();
    snapshot.abort();
    ticker.abort();
    bar.finish_and_clear();

    let end = match ran_out {
        Some(t) if t < window.end => {
            notes.push(format!(
                "The {} prepared links ran out {:.1} s into the measurement; \
                 rates are over that time. Give a larger --prepare for a full run.",
                pool.as_ref().map_or(0, |p| p.len()),
                t.saturating_duration_since(window.measure_from)
                    .as_secs_f64()
            ));
            t.max(window.measure_from)
        }
        _ => window.end,
    };
    let measured = end.saturating_duration_since(window.measure_from);
    // The verify scenario's emails all arrived before its clock started.
    let emails = (s.needs_mail() && s != Scenario::Verify).then(|| {
        let accepted = emails_at_end - emails_at_start.get().copied().unwrap_or(emails_at_end);
        EmailRow {
            accepted,
            per_second: if measured.is_zero() {
                0.0
            } else {
                accepted as f64 / measured.as_secs_f64()
            },
        }
    });
    let errors = rec.errors(steps);
    if errors.iter().any(|e| e.answer.starts_with("HTTP 429")) {
        notes.push(
            "429 answers: raise POSTERN_RATE_LIMIT_IP_PER_HOUR, POSTERN_RATE_LIMIT_EMAIL_PER_HOUR \
             and the app's --link-requests-per-hour (see --help)."
                .to_owned(),
        );
    }
    if errors.iter().any(|e| e.answer.starts_with("no email")) {
        notes.push(format!(
            "Emails did not arrive: is the server running with POSTERN_MAIL=smtp://{}?",
            sink.addr()
        ));
    }
    let report = Report {
        tool: concat!("postern-bench ", env!("CARGO_PKG_VERSION")).to_owned(),
        date: time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default(),
        scenario: scenario_name(s),
        urls: ctx
            .urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .collect(),
        concurrency,
        client_addresses: match args.client_addresses {
            ClientAddresses::One => "one",
            ClientAddresses::PerPerson => "per-person",
        }
        .to_owned(),
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: measured.as_secs_f64(),
        load_average,
        steps: rec.rows(steps, measured),
        errors,
        warmup_errors: rec.warmup_errors,
        emails,
        notes,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{}", report.markdown());
    }
    if rec.ok(steps.len() - 1) == 0 {
        eprintln!(
            "postern-bench: no {} succeeded while measuring",
            steps[steps.len() - 1]
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn scenario_name(s: Scenario) -> String {
    use clap::ValueEnum as _;
    s.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
