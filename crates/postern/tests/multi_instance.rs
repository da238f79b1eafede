//! Several instances, proven (issue 14 item 3; SPEC §4): three `postern
//! serve` processes on one PostgreSQL database behind a round-robin TCP
//! proxy. Every request of the browsers here opens a new connection, so
//! consecutive requests of one sign-in land on different instances.
//!
//! PostgreSQL only (`POSTERN_TEST_BACKEND=postgres`); on SQLite each test
//! says it is skipped and passes. Numbers are printed as `OPS ...` lines.

mod ops;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ops::{browser, create_app, delivery, link_body, load, Instance, Sink, REDIRECT_URI};
use postern_store::{Backend, Queries as _, Store};
use postern_testkit::TestDb;
use reqwest::{Client, Response};
use serde_json::Value;

struct Cluster {
    _db: TestDb,
    store: Store,
    sink: std::sync::Arc<Sink>,
    instances: Vec<Instance>,
    /// The proxy's base URL (also the public URL of every instance).
    base: String,
    client_id: String,
    secret: String,
}

/// Three instances behind the proxy, or None (skipped) on SQLite.
async fn cluster(name: &str) -> Option<Cluster> {
    if postern_testkit::backend() != Backend::Postgres {
        eprintln!(
            "{name}: skipped (several instances need PostgreSQL: POSTERN_TEST_BACKEND=postgres)"
        );
        return None;
    }
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client_id, secret) = create_app(&store).await;
    let sink = Sink::start().await;
    let ports: Vec<u16> = (0..3).map(|_| ops::free_port()).collect();
    let proxy = ops::round_robin(ports.clone()).await;
    let base = format!("http://127.0.0.1:{proxy}");
    let start = |port: u16| {
        Instance::start(
            db.dir.path(),
            &db.url,
            port,
            &sink.url(),
            &[("POSTERN_PUBLIC_URL", base.as_str())],
        )
    };
    // The first instance makes the first signing keys of an empty
    // database; the others start once it is up, as docs/DEPLOYMENT.md
    // says (instances started at the same instant would each make their
    // own first key and refuse each other's tokens until the next key
    // refresh).
    let first = start(ports[0]);
    first.ready(60).await;
    let mut instances = vec![first];
    instances.extend(ports[1..].iter().map(|p| start(*p)));
    for i in &instances {
        i.ready(60).await;
    }
    Some(Cluster {
        _db: db,
        store,
        sink,
        instances,
        base,
        client_id,
        secret,
    })
}

impl Cluster {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn sign_in(&self, b: &Client, email: &str, by_code: bool) -> String {
        ops::sign_in(&self.base, &self.client_id, &self.sink, b, email, by_code).await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Response {
        ops::token(&self.base, &self.client_id, &self.secret, form).await
    }

    async fn exchange(&self, code: &str) -> Value {
        ops::exchange(&self.base, &self.client_id, &self.secret, code).await
    }
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_finishes_on_another() {
    let Some(c) = cluster("a_sign_in_started_on_one_instance_finishes_on_another").await else {
        return;
    };
    for (email, by_code) in [("link@example.com", false), ("code@example.com", true)] {
        let b = browser();
        let code = c.sign_in(&b, email, by_code).await;
        let tokens = c.exchange(&code).await;
        assert!(tokens["id_token"].is_string() && tokens["access_token"].is_string());
        let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
        // Refresh on each instance in turn: every one honours the rotation.
        let mut current = refresh.to_owned();
        for _ in 0..3 {
            let res = c
                .token(&[("grant_type", "refresh_token"), ("refresh_token", &current)])
                .await;
            assert_eq!(res.status(), 200, "refresh");
            let t: Value = res.json().await.unwrap();
            current = t["refresh_token"].as_str().unwrap_or(&current).to_owned();
        }
        // The code is single use on every instance.
        for _ in 0..3 {
            let res = c
                .token(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                ])
                .await;
            assert_eq!(res.status(), 400, "a used code is refused everywhere");
        }
    }
    eprintln!("OPS multi-instance: link and code sign-ins, code exchange and 3 refreshes each crossed the 3 instances");
}

#[tokio::test]
async fn rate_limits_are_exact_across_instances() {
    let Some(c) = cluster("rate_limits_are_exact_across_instances").await else {
        return;
    };
    // 20 per address per hour (the default), spread over the instances.
    let mut ok = 0;
    for _ in 0..20 {
        let res = browser()
            .post(c.url("/request-magic-link"))
            .json(&link_body(&c.client_id, "limited@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        ok += 1;
    }
    for _ in 0..3 {
        let res = browser()
            .post(c.url("/request-magic-link"))
            .json(&link_body(&c.client_id, "limited@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429, "the 21st is refused on every instance");
    }
    // Concurrently too: 20 at once for a fresh address over 3 instances.
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let (url, body) = (
                c.url("/request-magic-link"),
                link_body(&c.client_id, "burst@example.com"),
            );
            tokio::spawn(async move {
                browser()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let granted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        granted, 20,
        "exactly 20 of 25 concurrent requests: {statuses:?}"
    );
    eprintln!("OPS multi-instance rate limit: {ok} granted then 429 sequentially; {granted}/25 granted concurrently");
}

#[tokio::test]
async fn revocation_is_seen_by_every_instance_at_once() {
    let Some(c) = cluster("revocation_is_seen_by_every_instance_at_once").await else {
        return;
    };
    let b = browser();
    let code = c.sign_in(&b, "revoke@example.com", false).await;
    let tokens = c.exchange(&code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for i in &c.instances {
        let res = browser()
            .get(i.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        let why = format!("{:?}", res.headers().get("www-authenticate"));
        assert_eq!(res.status(), 200, "userinfo before revocation: {why}");
    }
    for token in [&access, &refresh] {
        let res = browser()
            .post(c.url("/revoke"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "revoke");
    }
    // At once, on every instance directly.
    for i in &c.instances {
        let res = browser()
            .get(i.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            401,
            "a revoked access token is refused on {}",
            i.port
        );
        let res = browser()
            .post(i.url("/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            400,
            "a revoked refresh token is refused on {}",
            i.port
        );
    }
}

#[tokio::test]
async fn the_outbox_drains_each_message_exactly_once_and_survives_a_sigkill() {
    let Some(mut c) =
        cluster("the_outbox_drains_each_message_exactly_once_and_survives_a_sigkill").await
    else {
        return;
    };
    // Exactly once under load.
    let result = load(vec![c.base.clone()], c.client_id.clone(), 16, 5.0, "steady").await;
    let want: HashSet<String> = result.accepted.keys().cloned().collect();
    c.sink.wait_for_all(&want, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady = delivery(&c.sink, &result, "steady");
    eprintln!(
        "OPS multi-instance load (3 instances, 16 connections, 5 s): {} accepted ({:.0}/s), {} lost, {} twice, slowest {:.2} s",
        steady.accepted, steady.accepted as f64 / 5.0, steady.lost, steady.twice, steady.slowest.as_secs_f64()
    );
    assert!(steady.accepted > 20, "{steady:?}");
    assert_eq!((steady.lost, steady.twice), (0, 0), "{steady:?}");

    // SIGKILL of one instance in the middle of a run.
    let run = tokio::spawn(load(
        vec![c.base.clone()],
        c.client_id.clone(),
        16,
        8.0,
        "crash",
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.instances[0].kill9();
    let result = run.await.unwrap();
    let want: HashSet<String> = result.accepted.keys().cloned().collect();
    c.sink.wait_for_all(&want, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let crash = delivery(&c.sink, &result, "crash");
    eprintln!(
        "OPS multi-instance SIGKILL of 1 of 3 mid-load: {} accepted, {} lost, {} twice, slowest {:.2} s, {} later than 15 s, {} requests cut by the kill",
        crash.accepted, crash.lost, crash.twice, crash.slowest.as_secs_f64(), crash.later_than_15s, result.unanswered + result.cut_off
    );
    assert!(crash.accepted > 20, "{crash:?}");
    assert_eq!(
        crash.lost, 0,
        "no accepted request's email is lost: {crash:?}"
    );
    assert!(
        crash.twice <= postern_mail::smtp::DEFAULT_CONNECTIONS,
        "{crash:?}"
    );
    assert_eq!(crash.later_than_15s, 0, "{crash:?}");
    // A request the kill cut off may have committed its message, leased to
    // the dead instance and so not in `want`: it goes out once that lease
    // runs out, and then nothing is left waiting.
    let deadline =
        Instant::now() + Duration::from_secs(postern_mail::outbox::LEASE_SECS as u64 + 20);
    let pending = loop {
        let pending = c
            .store
            .conn()
            .await
            .unwrap()
            .outbox_pending()
            .await
            .unwrap();
        if pending == 0 || Instant::now() > deadline {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        pending, 0,
        "messages left in the outbox after the lease ran out"
    );
}

#[tokio::test]
async fn a_key_rotation_is_seen_by_every_instance() {
    let Some(c) = cluster("a_key_rotation_is_seen_by_every_instance").await else {
        return;
    };
    let kids = |jwks: Value| -> HashSet<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(
        browser()
            .get(c.instances[0].url("/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["keys", "rotate"])
        .current_dir(c._db.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POSTERN_DATABASE_URL", &c._db.url)
        .env("POSTERN_MASTER_KEY", ops::MASTER_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = Instant::now();
    // Every instance publishes the new keys within its key tick (60 s),
    // long before they sign anything (PUBLISH_BEFORE_USE, an hour).
    let mut seen = vec![None; c.instances.len()];
    while seen.iter().any(Option::is_none) {
        assert!(
            rotated.elapsed() < Duration::from_secs(75),
            "not seen by all: {seen:?}"
        );
        for (n, i) in c.instances.iter().enumerate() {
            if seen[n].is_some() {
                continue;
            }
            let now: Value = browser()
                .get(i.url("/jwks.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let now = kids(now);
            if now.len() > before.len() && before.is_subset(&now) {
                seen[n] = Some(rotated.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "OPS multi-instance key rotation: new keys published by the 3 instances after {seen:?}"
    );
}

/// A headless sign-in started through `instance`: its login id, and the
/// link token and code of the email the sink received.
struct HeadlessLink {
    login_id: String,
    token: String,
    code: String,
}

impl Cluster {
    /// `POST /api/v1/magic-links` (or `…/verify`, …) on `instance`, as the app.
    async fn headless(&self, instance: usize, path: &str, body: Value) -> Response {
        browser()
            .post(self.instances[instance].url(path))
            .basic_auth(&self.client_id, Some(&self.secret))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Asks for a headless link on `instance` and reads its email.
    async fn headless_link(&self, instance: usize, email: &str) -> HeadlessLink {
        let before = self.sink.by_recipient().get(email).map_or(0, Vec::len);
        let res = self
            .headless(
                instance,
                "/api/v1/magic-links",
                serde_json::json!({ "email": email, "redirect_uri": ops::REDIRECT_URI }),
            )
            .await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
        let login_id = res.json::<Value>().await.unwrap()["login_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mail = loop {
            let got = self
                .sink
                .by_recipient()
                .get(email)
                .cloned()
                .unwrap_or_default();
            if got.len() > before {
                break got[before].raw.clone();
            }
            assert!(std::time::Instant::now() < deadline, "no email to {email}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let parsed = mail_parser::MessageParser::default()
            .parse(mail.as_bytes())
            .expect("a parsable email");
        let code = parsed
            .subject()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a code in the subject")
            .to_owned();
        let body = parsed.body_text(0).unwrap_or_default().into_owned();
        let token = body
            .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
            .find_map(|w| w.split_once("token=").map(|(_, t)| t))
            .and_then(|t| t.split('&').next())
            .expect("a link with a token")
            .to_owned();
        HeadlessLink {
            login_id,
            token,
            code,
        }
    }
}

/// A wrong code that differs from `right`.
fn wrong(right: &str, n: usize) -> String {
    let w = format!(
        "{:06}",
        (right.parse::<u32>().unwrap() + 1 + n as u32) % 1_000_000
    );
    assert_ne!(w, right);
    w
}

#[tokio::test]
async fn logout_is_seen_by_every_instance_at_once() {
    let Some(c) = cluster("logout_is_seen_by_every_instance_at_once").await else {
        return;
    };
    // A browser session ended by RP-initiated logout on one instance: the
    // refresh token that follows it is refused by every instance at once.
    let b = browser();
    let code = c.sign_in(&b, "logout@example.com", false).await;
    let tokens = c.exchange(&code).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let q = serde_urlencoded::to_string([("id_token_hint", id_token.as_str())]).unwrap();
    let res = b
        .get(c.instances[0].url(&format!("/logout?{q}")))
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == 200 || res.status() == 303,
        "logout: {}",
        res.status()
    );
    for i in &c.instances {
        let res = browser()
            .post(i.url("/token"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            400,
            "the ended session's refresh token is refused on {}",
            i.port
        );
    }

    // A headless session: signed in on one instance, ended on another,
    // refused by every instance at once (its token and its refresh token).
    let link = c.headless_link(0, "headless-logout@example.com").await;
    let res = c
        .headless(
            1,
            "/api/v1/magic-links/verify",
            serde_json::json!({ "token": link.token }),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let session: Value = res.json().await.unwrap();
    let (sid, session_token, refresh) = (
        session["session_id"].as_str().unwrap().to_owned(),
        session["session_token"].as_str().unwrap().to_owned(),
        session["refresh_token"].as_str().unwrap().to_owned(),
    );
    for n in 0..c.instances.len() {
        let res = c
            .headless(
                n,
                "/api/v1/sessions/verify",
                serde_json::json!({ "session_token": session_token }),
            )
            .await;
        assert_eq!(res.status(), 200, "live on every instance before");
    }
    let res = browser()
        .delete(c.instances[2].url(&format!("/api/v1/sessions/{sid}")))
        .basic_auth(&c.client_id, Some(&c.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "DELETE the session");
    for (n, i) in c.instances.iter().enumerate() {
        let res = c
            .headless(
                n,
                "/api/v1/sessions/verify",
                serde_json::json!({ "session_token": session_token }),
            )
            .await;
        assert_eq!(
            res.status(),
            401,
            "the ended session is refused on {}",
            i.port
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_session");
        let res = c
            .headless(
                n,
                "/api/v1/sessions/refresh",
                serde_json::json!({ "refresh_token": refresh }),
            )
            .await;
        assert!(
            res.status().is_client_error(),
            "its refresh token is refused on {}: {}",
            i.port,
            res.status()
        );
    }
    eprintln!("OPS multi-instance logout: an RP-initiated logout and a headless DELETE on one instance were refused at once by all 3");
}

#[tokio::test]
async fn code_budgets_are_exact_across_instances() {
    let Some(c) = cluster("code_budgets_are_exact_across_instances").await else {
        return;
    };
    let n = c.instances.len();
    let try_code = |instance: usize, login_id: String, code: String| {
        let (url, id, secret) = (
            c.instances[instance].url("/api/v1/magic-links/verify"),
            c.client_id.clone(),
            c.secret.clone(),
        );
        async move {
            let res = browser()
                .post(url)
                .basic_auth(id, Some(secret))
                .json(&serde_json::json!({ "login_id": login_id, "code": code }))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_owned())
        }
    };

    // Per request (SPEC §2: 5 wrong tries, then the request is dead): 8
    // wrong codes at once, spread over the instances.
    let one = c.headless_link(0, "budget-request@example.com").await;
    let tasks: Vec<_> = (0..8)
        .map(|k| tokio::spawn(try_code(k % n, one.login_id.clone(), wrong(&one.code, k))))
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let wrong_code = answers.iter().filter(|a| a.1 == "invalid_code").count();
    let dead = answers.iter().filter(|a| a.1 == "invalid_token").count();
    assert_eq!(
        (wrong_code, dead),
        (4, 4),
        "4 wrong codes are told so, the 5th kills the request: {answers:?}"
    );
    assert!(answers.iter().all(|a| a.0 == 400), "{answers:?}");
    for k in 0..n {
        let right = try_code(k, one.login_id.clone(), one.code.clone()).await;
        assert_eq!(
            right,
            (400, "invalid_token".to_owned()),
            "the right code of a killed request is refused on instance {k}"
        );
    }

    // Per address (10 wrong tries an hour over all its requests): 10 wrong
    // codes at once over three requests and the three instances are all
    // counted, none refused early; then the address's codes stop working
    // on every instance — the right one included — while its link works.
    let email = "budget-address@example.com";
    let mut requests = Vec::new();
    for k in 0..3 {
        requests.push(c.headless_link(k % n, email).await);
    }
    let tasks: Vec<_> = (0..10)
        .map(|k| {
            // 4 + 4 + 2: no request reaches its own budget of 5.
            let r = &requests[[0, 0, 0, 0, 1, 1, 1, 1, 2, 2][k]];
            tokio::spawn(try_code(k % n, r.login_id.clone(), wrong(&r.code, k)))
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers
            .iter()
            .all(|a| *a == (400, "invalid_code".to_owned())),
        "the first 10 wrong tries are each counted as wrong codes: {answers:?}"
    );
    let fresh = c.headless_link(1, email).await;
    for k in 0..n {
        let right = try_code(k, fresh.login_id.clone(), fresh.code.clone()).await;
        assert_eq!(
            right,
            (400, "invalid_token".to_owned()),
            "with the address's budget spent, even the right code is refused on instance {k}"
        );
    }
    let res = c
        .headless(
            2,
            "/api/v1/magic-links/verify",
            serde_json::json!({ "token": fresh.token }),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "links keep working: {}",
        res.text().await.unwrap()
    );
    eprintln!("OPS multi-instance code budgets: 8 concurrent wrong codes on one request → 4 wrong + 4 dead; 10 concurrent wrong codes for one address over 3 requests all counted, then the right code refused on all 3 instances, the link still good");
}
