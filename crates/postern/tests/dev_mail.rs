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

#[tokio::test]
async fn the_dev_inbox_frames_each_html_email_in_a_sandbox_of_its_own() {
    let app = spawn_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    let res = {
        page_after_a_request(&app).await;
        browser().get(app.url("/_dev/mail")).send().await.unwrap()
    };
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = res.text().await.unwrap();
    // The page keeps the strict policy; it may only frame this origin.
    for must in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(must), "{must}: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let opening = "<iframe class=\"mail-html\" src=\"";
    let src_at = page.find(opening).expect("a frame") + opening.len();
    let src = &page[src_at..src_at + page[src_at..].find('"').unwrap()];
    assert_eq!(src, "/_dev/mail/1.html");
    assert!(page.contains(" sandbox "), "an empty sandbox: {page}");

    let res = browser().get(app.url(src)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let header = |n: &str| res.headers()[n].to_str().unwrap().to_owned();
    let frame_csp = header("content-security-policy");
    assert!(frame_csp.starts_with("sandbox;"), "{frame_csp}");
    assert!(frame_csp.contains("default-src 'none'"), "{frame_csp}");
    assert!(!frame_csp.contains("script-src"), "no script: {frame_csp}");
    assert!(frame_csp.contains("frame-ancestors 'self'"), "{frame_csp}");
    assert_eq!(header("x-frame-options"), "SAMEORIGIN");
    assert!(header("content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Sign in to Test App"),
        "the email's HTML: {html}"
    );

    for path in ["/_dev/mail/99.html", "/_dev/mail/x.html", "/_dev/mail/1"] {
        let res = browser()
            .get(app.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn an_emails_html_is_absent_for_a_host_that_is_not_loopback() {
    let app = spawn_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    page_after_a_request(&app).await;
    let res = browser()
        .get(app.url("/_dev/mail/1.html"))
        .header("host", "postern.example")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found", "another Host").await;
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
