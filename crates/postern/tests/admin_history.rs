//! Sign-in history records every outcome (SPEC §1 "sign-in event", §3.5
//! `GET /events?outcome=`): a wrong code, an expired link and a used
//! link, in the browser and through the headless API alike, each found
//! by its outcome through the admin API.

mod support;

use serde_json::{json, Value};
use support::admin::{admin_token, call, ok_json, spawn_admin_app, Who};
use support::*;

/// The IP a headless app passes for its user: tells its events apart.
const HEADLESS_IP: &str = "198.51.100.7";

/// Asks the headless API for a link for `email`; the token it emailed.
async fn headless_token(app: &TestApp, client: &TestClient, email: &str) -> String {
    let before = app.inbox();
    let res = back_channel()
        .post(app.url("/api/v1/magic-links"))
        .header("authorization", auth_of(client))
        .json(&json!({"email": email, "redirect_uri": client.redirect_uri}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{email}: {}", res.text().await.unwrap());
    let mail = app.new_email_to(&before, email).await;
    let link = mail
        .text
        .split_whitespace()
        .find(|w| w.contains("?token=pml_"))
        .unwrap_or_else(|| panic!("no headless link in: {}", mail.text));
    let link = url::Url::parse(link.trim_matches(|c| c == '<' || c == '>')).unwrap();
    link.query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .expect("a token")
}

fn auth_of(client: &TestClient) -> String {
    basic(&client.client_id, client.secret.as_deref().unwrap())
}

/// `POST /api/v1/magic-links/verify` with `token`; the status.
async fn headless_verify(app: &TestApp, client: &TestClient, token: &str) -> u16 {
    back_channel()
        .post(app.url("/api/v1/magic-links/verify"))
        .header("authorization", auth_of(client))
        .json(&json!({"token": token, "ip": HEADLESS_IP}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A browser-flow link for `email` (asked in a fresh browser), and that browser.
async fn browser_link(app: &TestApp, client: &TestClient, email: &str) -> (Hosted, Email, String) {
    let (h, sent) = app
        .hosted_request_with_email(&browser(), client, email)
        .await;
    let link = app.local(sent.link.as_deref().expect("a link"));
    (h, sent, link)
}

async fn events_with(app: &TestApp, t: &str, outcome: &str) -> Vec<Value> {
    let res = call(
        app,
        Who::Token(t),
        "get",
        &format!("/events?outcome={outcome}"),
        None,
    )
    .await;
    let page = ok_json(res, outcome).await;
    page["items"].as_array().unwrap().clone()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.rows(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await[0][0]
        .clone()
}

#[tokio::test]
async fn history_records_wrong_codes_and_expired_and_used_links_in_the_browser_and_headless() {
    let app = spawn_admin_app().await;
    let t = admin_token(&app).await;
    let web = app.create_app(|_| {}).await;

    // Browser: a link opened twice.
    let (h, _, link) = browser_link(&app, &web, "used@example.com").await;
    let res = h.browser.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "the first use signs in");
    let res = app.get_json(&browser(), &link).await;
    expect_error(res, 400, "invalid_token", "the browser link again").await;

    // Browser: a wrong code.
    let (h, sent, _) = browser_link(&app, &web, "typo@example.com").await;
    let res = app
        .submit_code(&h, &wrong_code(sent.code.as_deref().unwrap()))
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());

    // Headless: a token redeemed twice.
    let token = headless_token(&app, &web, "api-used@example.com").await;
    assert_eq!(headless_verify(&app, &web, &token).await, 200);
    assert_eq!(headless_verify(&app, &web, &token).await, 400);

    // Browser and headless links used after they expired.
    let (_, _, late_link) = browser_link(&app, &web, "late@example.com").await;
    let late_token = headless_token(&app, &web, "api-late@example.com").await;
    app.clock.advance(16 * 60);
    let res = app.get_json(&browser(), &late_link).await;
    expect_error(res, 400, "invalid_token", "an expired browser link").await;
    assert_eq!(headless_verify(&app, &web, &late_token).await, 400);

    // Each outcome is found by its filter, with the app and the method.
    let wrong = events_with(&app, &t, "wrong_code").await;
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert_eq!(wrong[0]["method"], "code");
    assert_eq!(wrong[0]["client_id"], web.client_id.as_str());

    let expired = events_with(&app, &t, "expired").await;
    assert_eq!(expired.len(), 2, "browser and headless: {expired:?}");
    let ips: Vec<&str> = expired.iter().map(|e| e["ip"].as_str().unwrap()).collect();
    assert!(ips.contains(&HEADLESS_IP), "the headless one: {expired:?}");
    assert!(ips.contains(&"127.0.0.1"), "the browser one: {expired:?}");

    let used = events_with(&app, &t, "used").await;
    assert_eq!(used.len(), 2, "browser and headless: {used:?}");
    let browser_person = user_id(&app, "used@example.com").await;
    let headless_person = user_id(&app, "api-used@example.com").await;
    for (person, ip) in [
        (&browser_person, "127.0.0.1"),
        (&headless_person, HEADLESS_IP),
    ] {
        assert!(
            used.iter()
                .any(|e| e["user_id"] == person.as_str() && e["ip"] == ip),
            "{person} at {ip}: {used:?}"
        );
    }
    for e in wrong.iter().chain(&expired).chain(&used) {
        assert_eq!(e["client_id"], web.client_id.as_str(), "{e}");
    }
    for e in expired.iter().chain(&used) {
        assert_eq!(e["method"], "link", "{e}");
    }
    let successes = events_with(&app, &t, "success").await;
    assert_eq!(successes.len(), 2, "the two first uses: {successes:?}");

    // An outcome history does not know is 400, never 500.
    let res = call(&app, Who::Token(&t), "get", "/events?outcome=lost", None).await;
    expect_error(res, 400, "invalid_request", "an unknown outcome").await;
}
