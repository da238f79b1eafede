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
