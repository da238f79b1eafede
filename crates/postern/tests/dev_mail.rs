//! SPEC §3.3 `/_dev/mail`: the local inbox exists only with the stdout
//! transport when the public URL, the bind address, the client and the
//! `Host` header are all loopback.

mod support;

use std::time::Duration;

use support::*;

/// Asks for a link and waits until the dev inbox lists it.
async fn page_after_a_request(app: &TestApp) -> String {
    let client = app.create_app(|_| {}).await;
    let res = app
        .request_link(&browser(), &app.link_body(&client, "dev@example.com"))
        .await;
    assert_eq!(res.status(), 200);
    for _ in 0..100 {
        let res = browser().get(app.url("/_dev/mail")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        if page.contains("dev@example.com") {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the development inbox never listed the email");
}

#[tokio::test]
async fn the_dev_inbox_lists_emails_with_their_link_and_code() {
    let app = spawn_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    let page = page_after_a_request(&app).await;
    assert!(
        page.contains("/verify-email?token=pml_"),
        "the link is listed"
    );
    let has_code = page
        .split(|c: char| !c.is_ascii_digit())
        .any(|w| w.len() == 6);
    assert!(has_code, "the 6-digit code is listed");
}

async fn assert_absent(app: &TestApp, host: Option<&str>) {
    let mut req = browser().get(app.url("/_dev/mail"));
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let res = req
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn the_dev_inbox_is_absent_for_a_host_that_is_not_loopback() {
    let app = spawn_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    page_after_a_request(&app).await;
    for host in ["auth.example.com", "evil.example:8080", "127.0.0.1.nip.io"] {
        assert_absent(&app, Some(host)).await;
    }
}

#[tokio::test]
async fn the_dev_inbox_is_absent_unless_mail_goes_to_stdout() {
    let app = spawn_app().await; // file:// transport
    assert_absent(&app, None).await;
}

#[tokio::test]
async fn the_dev_inbox_is_absent_with_a_public_url_that_is_not_loopback() {
    let app = spawn_app_with(&[
        ("POSTERN_MAIL", "stdout"),
        ("POSTERN_PUBLIC_URL", "https://auth.example.com"),
    ])
    .await;
    assert_absent(&app, None).await;
}

#[tokio::test]
async fn the_dev_inbox_is_absent_when_listening_beyond_loopback() {
    let app = spawn_app_with(&[("POSTERN_MAIL", "stdout"), ("POSTERN_BIND", "0.0.0.0:0")]).await;
    assert_absent(&app, None).await;
}
