//! `GET /metrics` (SPEC §3.6): Prometheus text that a parser reads, with
//! the counters of what just happened, no address, token or IP anywhere,
//! and only for loopback clients, admin tokens or everyone when public.

mod support;

use std::collections::BTreeSet;

use prometheus_parse::{LineInfo, Scrape, Value};
use support::*;

/// `/metrics` read from the loopback, parsed. (prometheus-parse reads no
/// `}` inside a label value, which real scrapers do: a route template with
/// a `{param}` in the scrape would fail the line check below.)
async fn scrape(app: &TestApp) -> (String, Scrape) {
    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    // Every line is a HELP, a TYPE or a sample whose value is a number: a
    // line the parser would skip is a format error.
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } | LineInfo::Type { .. } => {}
            LineInfo::Sample { value, .. } => {
                assert!(value.parse::<f64>().is_ok(), "not a number: {line}")
            }
            other => panic!("not Prometheus text: {line:?} ({other:?})"),
        }
    }
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The value of the sample `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

fn counter(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    value(scrape, metric, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_a_sign_in_and_name_no_address_token_or_ip() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "2")]).await;
    let client = app.create_app(|_| {}).await;

    // A sign-in by link, then the same link again.
    let before = app.inbox();
    let b = app
        .request_link_in_browser(&client, "linda@example.com")
        .await;
    let sent = app.new_email_to(&before, "linda@example.com").await;
    let link = app.local(sent.link.as_deref().unwrap());
    assert_eq!(b.get(&link).send().await.unwrap().status(), 303);
    let again = browser().get(&link).send().await.unwrap();
    assert_eq!(again.status(), 400);

    // A sign-in by code, after a wrong one.
    let (hosted, email) = app
        .hosted_request_with_email(&browser(), &client, "carl@example.com")
        .await;
    let code = email.code.unwrap();
    let wrong = app.submit_code(&hosted, &wrong_code(&code)).await;
    assert_eq!(wrong.status(), 400);
    let right = app.submit_code(&hosted, &code).await;
    assert_eq!(right.status(), 303);

    // The third link request for one address within the hour is refused.
    for expected in [200, 200, 429] {
        let res = app
            .request_link(&browser(), &app.link_body(&client, "rita@example.com"))
            .await;
        assert_eq!(res.status(), expected);
    }
    // Paths with a part that is not a route template.
    let res = browser()
        .get(app.url("/not-here/pml_secretpathpart"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.wait_for_emails(4).await;

    let (text, m) = scrape(&app).await;
    let sign_ins = |method, outcome| {
        counter(
            &m,
            "postern_sign_ins_total",
            &[("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(sign_ins("link", "success"), 1.0, "{text}");
    assert_eq!(sign_ins("link", "used"), 1.0, "{text}");
    assert_eq!(sign_ins("code", "success"), 1.0, "{text}");
    assert_eq!(sign_ins("code", "wrong_code"), 1.0, "{text}");
    let codes = |outcome| counter(&m, "postern_code_attempts_total", &[("outcome", outcome)]);
    assert_eq!((codes("right"), codes("wrong")), (1.0, 1.0), "{text}");
    assert_eq!(
        counter(
            &m,
            "postern_link_requests_refused_total",
            &[("limit", "email")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        counter(
            &m,
            "postern_link_requests_refused_total",
            &[("limit", "ip")]
        ),
        0.0
    );
    let sent = counter(&m, "postern_outbox_deliveries_total", &[("result", "sent")]);
    assert!(sent >= 4.0, "{text}");
    let pending = value(&m, "postern_outbox_pending_messages", &[]).expect("outbox depth");
    let oldest = value(&m, "postern_outbox_oldest_pending_age_seconds", &[]).expect("age");
    assert!(pending >= 0.0 && oldest >= 0.0);
    assert_eq!(value(&m, "postern_database_up", &[]), Some(1.0));
    for state in ["in_use", "idle", "waiting"] {
        let n = value(&m, "postern_db_pool_connections", &[("state", state)]);
        assert!(n.is_some_and(|n| n >= 0.0), "pool {state}: {text}");
    }
    assert!(value(&m, "postern_db_pool_max_connections", &[]).is_some_and(|n| n >= 1.0));
    for alg in ["EdDSA", "ES256", "RS256"] {
        let age = value(&m, "postern_signing_key_age_seconds", &[("alg", alg)]);
        assert!(age.is_some_and(|a| a >= 0.0), "key age {alg}: {text}");
    }
    let requests = |route, method, status| {
        counter(
            &m,
            "postern_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/verify-email", "GET", "303"), 1.0, "{text}");
    assert_eq!(requests("/verify-email", "GET", "400"), 1.0, "{text}");
    assert_eq!(requests("/request-magic-link", "POST", "429"), 1.0);
    assert_eq!(requests("/login/code", "POST", "400"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0, "{text}");
    let latency = value(
        &m,
        "postern_http_request_duration_seconds",
        &[("route", "/request-magic-link"), ("method", "POST")],
    );
    assert!(latency.is_some_and(|n| n >= 4.0), "{text}");

    // The sample dashboard asks only for series that exist.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    ))
    .unwrap();
    let names: BTreeSet<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("postern_"))
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            text.contains(&format!("\n{name}{{")) || text.contains(&format!("\n{name} ")),
            "the dashboard asks for {name}, which /metrics does not show"
        );
    }

    // Nothing a request brought is in a label: no address, token, code,
    // login id, client id or IP; routes are templates.
    for secret in [
        "@",
        "example.com",
        "pml_",
        "secretpathpart",
        hosted.login_id.as_str(),
        client.client_id.as_str(),
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "{secret:?} in /metrics");
    }
    let allowed_keys: BTreeSet<&str> = [
        "route", "method", "status", "outcome", "limit", "result", "state", "alg",
    ]
    .into();
    for sample in &m.samples {
        for (k, v) in sample.labels.iter() {
            assert!(allowed_keys.contains(k.as_str()), "label {k} in {sample:?}");
            if k == "route" {
                assert!(
                    v == "unmatched" || (v.starts_with('/') && !v.contains('?')),
                    "route {v:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn metrics_answer_only_loopback_clients_unless_public() {
    // The client address as derived through the trusted proxy.
    let app = spawn_app_with(&[("POSTERN_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let get = |xff: Option<&'static str>, auth: Option<&'static str>| {
        let mut req = browser().get(app.url("/metrics"));
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", xff);
        }
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    assert_eq!(get(None, None).await.unwrap().status(), 200, "loopback");
    let remote = get(Some("203.0.113.7"), None).await.unwrap();
    assert_eq!(
        remote.headers()["www-authenticate"],
        "Bearer realm=\"postern\""
    );
    expect_error(remote, 401, "invalid_request", "remote, no token").await;
    // A local proxy forwarding a local client is still a forwarded request.
    let local_proxy = get(Some("127.0.0.1"), None).await.unwrap();
    expect_error(local_proxy, 401, "invalid_request", "through a local proxy").await;
    let token = get(Some("203.0.113.7"), Some("Bearer pat_notanadmintoken"))
        .await
        .unwrap();
    expect_error(
        token,
        401,
        "invalid_token",
        "a token that is no admin token",
    )
    .await;
    // SPEC §3.6: a valid admin token answers from anywhere, and stops
    // when revoked.
    use postern_auth::admin::{tokens, Principal};
    let made = tokens::create(&app.state, &Principal::cli(), "scraper", None)
        .await
        .unwrap();
    let with_token = || {
        browser()
            .get(app.url("/metrics"))
            .header("x-forwarded-for", "203.0.113.7")
            .bearer_auth(&made.token)
            .send()
    };
    let res = with_token().await.unwrap();
    assert_eq!(res.status(), 200, "remote, with an admin token");
    assert!(res.text().await.unwrap().contains("postern_database_up"));
    tokens::revoke(&app.state, &Principal::cli(), &made.id)
        .await
        .unwrap();
    let res = with_token().await.unwrap();
    expect_error(res, 401, "invalid_token", "a revoked admin token").await;

    let public = spawn_app_with(&[
        ("POSTERN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("POSTERN_METRICS_PUBLIC", "true"),
    ])
    .await;
    let res = browser()
        .get(public.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A fresh server has counted no sign-in yet; its gauges are always there.
    assert!(res.text().await.unwrap().contains("postern_database_up"));
}
