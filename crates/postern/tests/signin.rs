//! Black-box tests of SPEC §3.1: link requests, verification, codes.

mod support;

use support::*;

#[tokio::test]
async fn a_link_request_answers_with_the_normalized_address() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let res = app
        .request_link(&browser(), &app.link_body(&client, "  Alice@Example.COM "))
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": "Magic link sent successfully", "email": "alice@example.com"})
    );
    let email = app.last_email_to("alice@example.com").await;
    assert!(email.subject.starts_with("Sign in to Test App"), "{}", email.subject);
    assert!(email.link.is_some() && email.code.is_some());
}

#[tokio::test]
async fn the_asking_browser_is_signed_in_by_the_link_once() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app.request_link_in_browser(&client, "bob@example.com").await;
    let email = app.last_email_to("bob@example.com").await;
    let link = app.local(email.link.as_deref().unwrap());
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let params = location_params(&res);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(&client.redirect_uri));
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], PUBLIC_URL);
    assert!(params["code"].len() >= 43);
    let again = b.get(&link).header("accept", "application/json").send().await.unwrap();
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "The magic link has expired or is invalid.");
}
