//! Black-box tests of issue 10's sign-in hardening, each reproducing the
//! attack it closes: the per-app link limit spent by strangers must not
//! close an app's browser sign-in (SPEC §3.1, §3.4), and code entry must
//! not tell whether an address has an account (SPEC §2), in the hosted
//! flow and in the headless API.

mod support;

use reqwest::Response;
use serde_json::{json, Value};
use support::*;

/// The redirect URI of every test app.
const CALLBACK: &str = "https://app.example/callback";

// ---- the per-app limit belongs to the headless API ----------------------------

/// `POST /request-magic-link` for `email` as seen from `ip` (behind the
/// trusted proxy at 127.0.0.1).
async fn request_from(app: &TestApp, client: &TestClient, email: &str, ip: &str) -> Response {
    browser()
        .post(app.url("/request-magic-link"))
        .header("x-forwarded-for", ip)
        .json(&app.link_body(client, email))
        .send()
        .await
        .unwrap()
}

/// The hosted form (`GET /login`, then `POST /login`) for `email` in a new
/// browser seen from `ip`.
async fn login_from(app: &TestApp, client: &TestClient, email: &str, ip: &str) -> Response {
    let b = browser();
    let page = b
        .get(app.url(&format!("/login?{}", app.login_query(client, &[]))))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "GET /login from {ip}");
    let mut form = hidden_inputs(&page.text().await.unwrap());
    form.push(("email".to_owned(), email.to_owned()));
    b.post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn strangers_spending_the_app_limit_do_not_close_the_browser_sign_in() {
    let app = spawn_app_with(&[("POSTERN_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let client = app.create_app(|s| s.link_requests_per_hour = 3).await;
    // More than the app's hourly count, from other people's IPs and
    // addresses, through both anonymous endpoints.
    for n in 1..=4 {
        let res = request_from(
            &app,
            &client,
            &format!("spender{n}@example.com"),
            &format!("198.51.100.{n}"),
        )
        .await;
        assert_eq!(res.status(), 200, "link request {n} by a stranger");
    }
    for n in 5..=6 {
        let res = login_from(
            &app,
            &client,
            &format!("spender{n}@example.com"),
            &format!("198.51.100.{n}"),
        )
        .await;
        assert_eq!(res.status(), 303, "hosted form {n} by a stranger");
    }
    // Someone else, from another IP, is still served, with a working link.
    let inbox = app.inbox();
    let res = request_from(&app, &client, "late@example.com", "203.0.113.9").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let sent = app.new_email_to(&inbox, "late@example.com").await;
    assert!(sent.link.is_some(), "a link: {}", sent.text);
    let res = login_from(&app, &client, "later@example.com", "203.0.113.10").await;
    assert_eq!(res.status(), 303, "the hosted form");
    assert!(
        location(&res).starts_with("/login/check?id="),
        "{}",
        location(&res)
    );
}

#[tokio::test]
async fn the_headless_api_still_answers_429_once_the_app_limit_is_spent() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.link_requests_per_hour = 3).await;
    let secret = client.secret.clone().expect("a confidential app");
    let ask = |email: String, ip: String| {
        let (url, auth) = (
            app.url("/api/v1/magic-links"),
            basic(&client.client_id, &secret),
        );
        async move {
            back_channel()
                .post(url)
                .header("authorization", auth)
                .json(&json!({"email": email, "redirect_uri": CALLBACK, "ip": ip}))
                .send()
                .await
                .unwrap()
        }
    };
    // Browser requests do not spend the app's headless count.
    for n in 1..=4 {
        let res = app
            .request_link(
                &browser(),
                &app.link_body(&client, &format!("web{n}@example.com")),
            )
            .await;
        assert_eq!(res.status(), 200, "browser request {n}");
    }
    for n in 1..=3 {
        let res = ask(format!("api{n}@example.com"), format!("198.51.100.{n}")).await;
        assert_eq!(res.status(), 202, "headless request {n}");
    }
    let res = ask("api4@example.com".into(), "203.0.113.9".into()).await;
    let retry_after: i64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body = expect_error(res, 429, "too_many_requests", "the app's 4th request").await;
    assert_eq!(
        body["error_description"],
        "Too many magic link requests. Please try again later."
    );
}

// ---- code entry does not reveal accounts ---------------------------------------

/// An app that lets only existing accounts at example.com in, and the
/// addresses it refuses for each reason, next to one it lets in. Every
/// address but the stranger's has signed in before (through another app).
struct Closed {
    client: TestClient,
    /// Has an account and is let in.
    known: &'static str,
    /// Each refused for another reason: no account and sign-up closed; an
    /// account outside the allowed domains; a disabled account.
    refused: [&'static str; 3],
}

async fn closed_app(app: &TestApp) -> Closed {
    let open = app.create_app(|_| {}).await;
    for email in [
        "known@example.com",
        "outsider@outside.example",
        "disabled@example.com",
    ] {
        app.sign_in(&open, email).await;
    }
    let mut conn = app.state.store.conn().await.unwrap();
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE email = $2")
        .bind(app.clock_now())
        .bind("disabled@example.com")
        .execute(&mut *conn)
        .await
        .unwrap();
    let client = app
        .create_app(|s| {
            s.signup_allowed = false;
            s.allowed_domains = vec!["example.com".to_owned()];
        })
        .await;
    Closed {
        client,
        known: "known@example.com",
        refused: [
            "stranger@example.com",
            "outsider@outside.example",
            "disabled@example.com",
        ],
    }
}

/// `text` with `login_id` and `email` (plain and URL-encoded) replaced by
/// placeholders, so the answers for two requests can be compared.
/// `text` with every CSRF token's value replaced by `{csrf}`.
fn mask_csrf(text: &str) -> String {
    const FIELD: &str = "name=\"csrf_token\" value=\"";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(FIELD) {
        let (head, tail) = rest.split_at(at + FIELD.len());
        out.push_str(head);
        out.push_str("{csrf}");
        rest = &tail[tail.find('"').unwrap_or(tail.len())..];
    }
    out.push_str(rest);
    out
}

fn neutral(text: &str, login_id: &str, email: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    // Pages split an address into spans that break after `@` and `.`, and
    // each browser has its own CSRF token.
    mask_csrf(&html_unescape(text))
        .replace("</span><span>", "")
        .replace(login_id, "{login_id}")
        .replace(&encoded, "{email}")
        .replace(email, "{email}")
}

/// One wrong code after another: whether the try asks for JSON, and the
/// error every address must get (SPEC §2: the fifth wrong code kills the
/// request).
const TRIES: [(bool, &str); 7] = [
    (true, "invalid_code"),
    (false, "invalid_code"),
    (true, "invalid_code"),
    (true, "invalid_code"),
    (false, "invalid_token"),
    (true, "invalid_token"),
    (false, "invalid_token"),
];

/// `POST /login/code` from the asking browser; status and neutral body.
async fn hosted_try(
    app: &TestApp,
    h: &Hosted,
    email: &str,
    code: &str,
    json: bool,
) -> (u16, String) {
    let res = h
        .browser
        .post(app.url("/login/code"))
        .header(
            "accept",
            if json {
                "application/json"
            } else {
                "text/html"
            },
        )
        .form(&[
            ("csrf_token", h.csrf.as_str()),
            ("login_id", h.login_id.as_str()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (
        status,
        neutral(&res.text().await.unwrap(), &h.login_id, email),
    )
}

/// `GET /login/check` of the asking browser, asking for JSON; status and
/// neutral body.
async fn check_page_of(app: &TestApp, h: &Hosted, email: &str) -> (u16, String) {
    let url = app.url(&format!("/login/check?id={}", h.login_id));
    let res = app.get_json(&h.browser, &url).await;
    let status = res.status().as_u16();
    (
        status,
        neutral(&res.text().await.unwrap(), &h.login_id, email),
    )
}

#[tokio::test]
async fn a_wrong_code_in_the_browser_answers_alike_with_and_without_an_account() {
    let app = spawn_app().await;
    let closed = closed_app(&app).await;
    let (known, known_mail) = app
        .hosted_request_with_email(&browser(), &closed.client, closed.known)
        .await;
    let code = known_mail.code.expect("a code for the known address");
    let mut refused = Vec::new();
    for email in closed.refused {
        let (h, mail) = app
            .hosted_request_with_email(&browser(), &closed.client, email)
            .await;
        assert_eq!(mail.code, None, "{email} was let in: {}", mail.subject);
        refused.push((email, h));
    }
    let wrong = wrong_code(&code);
    for (n, (json, error)) in TRIES.into_iter().enumerate() {
        let expected = hosted_try(&app, &known, closed.known, &wrong, json).await;
        assert_eq!(expected.0, 400, "try {}: {}", n + 1, expected.1);
        if json {
            let body: Value = serde_json::from_str(&expected.1).unwrap();
            assert_eq!(body["error"], error, "try {}", n + 1);
        } else {
            assert!(expected.1.starts_with("<!doctype html>"), "try {}", n + 1);
        }
        for (email, h) in &refused {
            let got = hosted_try(&app, h, email, &wrong, json).await;
            assert_eq!(got, expected, "try {} for {email}", n + 1);
        }
    }
    // Dead the same way: the "check your email" page too.
    let expected = check_page_of(&app, &known, closed.known).await;
    assert_eq!(expected.0, 400, "{}", expected.1);
    for (email, h) in &refused {
        assert_eq!(check_page_of(&app, h, email).await, expected, "{email}");
    }
    // And the right code no longer opens the known address's request.
    let (status, body) = hosted_try(&app, &known, closed.known, &code, true).await;
    assert_eq!(status, 400, "{body}");
}

/// `POST /api/v1/magic-links…` as the app's server.
async fn as_app(app: &TestApp, client: &TestClient, path: &str, body: &Value) -> Response {
    back_channel()
        .post(app.url(path))
        .header(
            "authorization",
            basic(&client.client_id, client.secret.as_deref().unwrap()),
        )
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The headless verify of `code` for `login_id`; status and neutral body.
async fn headless_try(
    app: &TestApp,
    client: &TestClient,
    login_id: &str,
    email: &str,
    code: &str,
) -> (u16, String) {
    let body = json!({"login_id": login_id, "code": code});
    let res = as_app(app, client, "/api/v1/magic-links/verify", &body).await;
    let status = res.status().as_u16();
    (status, neutral(&res.text().await.unwrap(), login_id, email))
}

/// `POST /api/v1/magic-links` for `email`: its login id and the code its
/// email carries, if any.
async fn ask_headless(app: &TestApp, client: &TestClient, email: &str) -> (String, Option<String>) {
    let inbox = app.inbox();
    let body = json!({"email": email, "redirect_uri": CALLBACK});
    let res = as_app(app, client, "/api/v1/magic-links", &body).await;
    assert_eq!(res.status(), 202, "{email}");
    let answer: Value = res.json().await.unwrap();
    let mail = app.new_email_to(&inbox, email).await;
    (answer["login_id"].as_str().unwrap().to_owned(), mail.code)
}

#[tokio::test]
async fn a_wrong_code_at_the_headless_verify_answers_alike_with_and_without_an_account() {
    let app = spawn_app().await;
    let closed = closed_app(&app).await;
    let (known, code) = ask_headless(&app, &closed.client, closed.known).await;
    let code = code.expect("a code for the known address");
    let mut refused = Vec::new();
    for email in closed.refused {
        let (login_id, code) = ask_headless(&app, &closed.client, email).await;
        assert_eq!(code, None, "{email} was let in");
        refused.push((email, login_id));
    }
    let wrong = wrong_code(&code);
    for (n, (_, error)) in TRIES.into_iter().enumerate() {
        let expected = headless_try(&app, &closed.client, &known, closed.known, &wrong).await;
        let body: Value = serde_json::from_str(&expected.1).unwrap();
        assert_eq!(
            (expected.0, &body["error"]),
            (400, &json!(error)),
            "try {}",
            n + 1
        );
        for (email, login_id) in &refused {
            let got = headless_try(&app, &closed.client, login_id, email, &wrong).await;
            assert_eq!(got, expected, "try {} for {email}", n + 1);
        }
    }
    let (status, body) = headless_try(&app, &closed.client, &known, closed.known, &code).await;
    assert_eq!(status, 400, "the right code after five wrong ones: {body}");
}
