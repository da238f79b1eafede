//! Black-box tests of issue 10's network hardening, each reproducing the
//! attack as it was made against the running server: a second
//! `X-Forwarded-For` line, many addresses of one IPv6 /64, a connection that
//! never finishes its request, and control characters in ids and client
//! credentials (which PostgreSQL refused with a 503).

mod support;

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, RequestBuilder};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `POST /request-magic-link` for `email` through the trusted proxy
/// (127.0.0.1) with these `X-Forwarded-For` lines, in order.
async fn request_via_proxy(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    forwarded_lines: &[&str],
) -> u16 {
    let mut req = browser().post(app.url("/request-magic-link"));
    for line in forwarded_lines {
        // reqwest appends: each call is its own header line.
        req = req.header("x-forwarded-for", *line);
    }
    req.json(&app.link_body(client, email))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_x_forwarded_for_line_counts_so_an_attackers_own_first_line_is_not_believed() {
    let app = spawn_app_with(&[
        ("POSTERN_TRUSTED_PROXIES", "127.0.0.1"),
        ("POSTERN_RATE_LIMIT_IP_PER_HOUR", "2"),
    ])
    .await;
    let client = app.create_app(|_| {}).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        // The attacker's own line first, a new address each time, then the
        // line a proxy such as HAProxy `option forwardfor` adds.
        let email = format!("xff{n}@example.com");
        let own_line = format!("6.6.6.{n}");
        let lines = [own_line.as_str(), "198.51.100.7"];
        statuses.push(request_via_proxy(&app, &client, &email, &lines).await);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    let ips = app.rows("SELECT DISTINCT ip FROM login_requests").await;
    assert_eq!(
        ips,
        [["198.51.100.7"]],
        "the address the proxy saw is stored"
    );
}

#[tokio::test]
async fn ipv6_addresses_of_one_slash_64_share_one_per_ip_budget() {
    let app = spawn_app_with(&[
        ("POSTERN_TRUSTED_PROXIES", "127.0.0.1"),
        ("POSTERN_RATE_LIMIT_IP_PER_HOUR", "2"),
    ])
    .await;
    let client = app.create_app(|_| {}).await;
    let mut statuses = Vec::new();
    for (n, ip) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .into_iter()
        .enumerate()
    {
        let email = format!("six{n}@example.com");
        statuses.push(request_via_proxy(&app, &client, &email, &[ip]).await);
    }
    assert_eq!(statuses, [200, 200, 429], "three addresses of one /64");
    let other_network =
        request_via_proxy(&app, &client, "six3@example.com", &["2001:db8:1:3::1"]).await;
    assert_eq!(other_network, 200, "an address in the next /64 is served");
    // An IPv4-mapped address counts as the IPv4 address it carries.
    for (n, ip) in ["198.51.100.9", "::ffff:198.51.100.9", "198.51.100.9"]
        .into_iter()
        .enumerate()
    {
        let email = format!("four{n}@example.com");
        let status = request_via_proxy(&app, &client, &email, &[ip]).await;
        assert_eq!(status, if n < 2 { 200 } else { 429 }, "{ip}");
    }
}

/// Reads from `socket` until the server closes it (or it resets), at most
/// `limit`; returns how long that took, or `None` if it stayed open.
async fn time_until_closed(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|()| started.elapsed())
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_head_is_closed_within_seconds() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let closed_after = time_until_closed(&mut socket, Duration::from_secs(30))
        .await
        .expect("the server closes a connection with half a request head before 30 s");
    assert!(
        closed_after < Duration::from_secs(15),
        "closed only after {closed_after:?}"
    );
}

#[tokio::test]
async fn a_request_body_that_never_finishes_is_answered_408_within_the_request_deadline() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(
            b"POST /request-magic-link HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\"",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&answer).contains("\"error_description\"") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 40 s");
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {elapsed:?}: {answer}"
    );
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    assert!(
        (Duration::from_secs(25)..Duration::from_secs(35)).contains(&elapsed),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(&[("POSTERN_MAX_CONNECTIONS", "2")]).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let idle_one = TcpStream::connect(&addr).await.unwrap();
    let idle_two = TcpStream::connect(&addr).await.unwrap();
    // Give the server a moment to accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let early = tokio::time::timeout(Duration::from_secs(1), third.read_to_end(&mut buf)).await;
    assert!(
        early.is_err() && buf.is_empty(),
        "a third connection is not served while two are open: {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(idle_one);
    let served = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut buf)).await;
    assert!(served.is_ok(), "served once a slot frees");
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    drop(idle_two);
}

/// A client that asks for JSON errors on every route.
fn json_client() -> Client {
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("application/json"));
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// `Authorization: Basic` of raw `id:secret` bytes, not form-encoded, so a
/// NUL byte arrives as it is.
fn raw_basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        b64_standard(format!("{id}:{secret}").as_bytes())
    )
}

#[tokio::test]
async fn control_characters_in_ids_and_client_credentials_are_4xx_on_every_database() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let secret = client.secret.clone().expect("a confidential app");
    let app_basic = basic(&client.client_id, &secret);
    // A browser that asked for a sign-in holds the binding and CSRF cookies,
    // so its requests reach the lookups by id.
    let hosted = app
        .hosted_request_in(&json_client(), &client, "nul@example.com")
        .await;
    let b = &hosted.browser;
    let csrf = hosted.csrf.as_str();
    let authorize = format!(
        "/authorize?response_type=code&scope=openid&client_id=%00&redirect_uri={}",
        url::form_urlencoded::byte_serialize(client.redirect_uri.as_bytes()).collect::<String>()
    );
    let token_form = |id: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("client_id", id),
        ]
    };
    let mut link_body = app.link_body(&client, "nul@example.com");
    link_body["client_id"] = json!("\u{0}");
    let cases: Vec<(&str, RequestBuilder, u16, &str)> = vec![
        (
            "GET /login/check?id=%00",
            b.get(app.url("/login/check?id=%00")),
            400,
            "invalid_token",
        ),
        (
            "GET /login/status?id=%00",
            b.get(app.url("/login/status?id=%00")),
            404,
            "not_found",
        ),
        (
            "GET /authorize?client_id=%00",
            b.get(app.url(&authorize)),
            400,
            "invalid_client",
        ),
        (
            "GET /login?client_id=%00",
            b.get(app.url(&authorize.replacen("/authorize", "/login", 1))),
            400,
            "invalid_client",
        ),
        (
            "GET /logout?client_id=%00 with a post-logout redirect",
            b.get(app.url(
                "/logout?client_id=%00&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2F",
            )),
            400,
            "invalid_request",
        ),
        (
            "POST /token with client_id=%00",
            b.post(app.url("/token")).form(&token_form("\0")),
            401,
            "invalid_client",
        ),
        (
            "POST /token with a Basic user of NUL",
            b.post(app.url("/token"))
                .header("authorization", raw_basic("\0", "x"))
                .form(&[("grant_type", "authorization_code"), ("code", "abc")]),
            401,
            "invalid_client",
        ),
        (
            "POST /token with a form-encoded Basic user of %00",
            b.post(app.url("/token"))
                .header("authorization", raw_basic("%00", "x"))
                .form(&[("grant_type", "authorization_code"), ("code", "abc")]),
            401,
            "invalid_client",
        ),
        (
            "POST /introspect with client_id=%00",
            b.post(app.url("/introspect")).form(&[
                ("token", "abc"),
                ("client_id", "\0"),
                ("client_secret", "x"),
            ]),
            401,
            "invalid_client",
        ),
        (
            "POST /introspect with a Basic user of NUL",
            b.post(app.url("/introspect"))
                .header("authorization", raw_basic("\0", "x"))
                .form(&[("token", "abc")]),
            401,
            "invalid_client",
        ),
        (
            "POST /revoke with client_id=%00",
            b.post(app.url("/revoke"))
                .form(&[("token", "abc"), ("client_id", "\0")]),
            401,
            "invalid_client",
        ),
        (
            "POST /revoke with a Basic user of NUL",
            b.post(app.url("/revoke"))
                .header("authorization", raw_basic("\0", "x"))
                .form(&[("token", "abc")]),
            401,
            "invalid_client",
        ),
        (
            "POST /api/v1/magic-links with a Basic user of NUL",
            b.post(app.url("/api/v1/magic-links"))
                .header("authorization", raw_basic("\0", "x"))
                .json(&json!({"email": "nul@example.com", "redirect_uri": client.redirect_uri})),
            401,
            "invalid_client",
        ),
        (
            "POST /api/v1/users/%00/sessions/revoke",
            b.post(app.url("/api/v1/users/%00/sessions/revoke"))
                .header("authorization", &app_basic),
            404,
            "not_found",
        ),
        (
            "DELETE /api/v1/sessions/%00",
            b.delete(app.url("/api/v1/sessions/%00"))
                .header("authorization", &app_basic),
            404,
            "not_found",
        ),
        (
            "POST /api/v1/magic-links/verify with a login id of NUL",
            b.post(app.url("/api/v1/magic-links/verify"))
                .header("authorization", &app_basic)
                .json(&json!({"login_id": "\u{0}", "code": "123456"})),
            400,
            "invalid_token",
        ),
        (
            "POST /request-magic-link with a client_id of NUL",
            b.post(app.url("/request-magic-link")).json(&link_body),
            400,
            "invalid_client",
        ),
        (
            "POST /login/resend with login_id=a%00b",
            b.post(app.url("/login/resend"))
                .form(&[("csrf_token", csrf), ("login_id", "a\0b")]),
            400,
            "invalid_token",
        ),
        (
            "POST /login/code with login_id=a%00b",
            b.post(app.url("/login/code")).form(&[
                ("csrf_token", csrf),
                ("login_id", "a\0b"),
                ("code", "123456"),
            ]),
            400,
            "invalid_token",
        ),
        (
            "POST /account/sessions/sign-out with session_id=%00",
            b.post(app.url("/account/sessions/sign-out"))
                .form(&[("csrf_token", csrf), ("session_id", "\0")]),
            400,
            "invalid_request",
        ),
        (
            "GET /static/brand/%00.css",
            b.get(app.url("/static/brand/%00.css")),
            404,
            "not_found",
        ),
    ];
    let mut wrong = Vec::new();
    for (case, req, status, code) in cases {
        let res = req.send().await.unwrap();
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if (got, body["error"].as_str()) != (status, Some(code)) {
            wrong.push(format!("{case}: {got} {text}"));
        } else {
            assert_error_shape(&body, case);
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The server answered every one from its own rules: nothing reached
    // the database and failed there.
    let logs = captured_logs();
    assert!(
        !logs.contains("database unavailable"),
        "a request with a NUL byte reached the database: {logs}"
    );
    // The request that started it all still works.
    let res = b
        .get(app.url(&format!("/login/status?id={}", hosted.login_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
