//! Black-box tests of SPEC §3.1 and §5 for `POST /request-magic-link`:
//! malformed and hostile input gets a clear 4xx in the JSON error shape and
//! changes nothing; the validation follows `/authorize`.

mod support;

use serde_json::{json, Value};
use support::*;

/// A valid PKCE S256 challenge (43 base64url characters).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test]
async fn bad_link_requests_get_a_clear_error_and_change_nothing() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let public = app.create_app(|s| s.public = true).await;
    let url = app.url("/request-magic-link");
    let b = browser();
    let good = app.link_body(&client, "ok@example.com");
    let with = |body: &Value, k: &str, v: Value| {
        let mut body = body.clone();
        body[k] = v;
        body
    };
    let without = |k: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(k);
        body
    };
    let public_body = app.link_body(&public, "ok@example.com");
    let json_post = |body: Value| b.post(&url).json(&body);
    let raw_post = |content_type: &str, body: String| {
        b.post(&url).header("content-type", content_type).body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            raw_post("application/json", r#"{"email": "#.to_owned()),
            400,
            "invalid_request",
        ),
        (
            "a JSON array",
            raw_post("application/json", "[]".to_owned()),
            400,
            "invalid_request",
        ),
        (
            "text/plain",
            raw_post("text/plain", good.to_string()),
            415,
            "invalid_request",
        ),
        (
            "no content type",
            b.post(&url).body(good.to_string()),
            415,
            "invalid_request",
        ),
        (
            "a 65 KiB body",
            json_post(with(&good, "state", json!("x".repeat(65 * 1024)))),
            413,
            "invalid_request",
        ),
        (
            "header injection in the address",
            json_post(with(&good, "email", json!("a@b.c\r\nBcc: x@y.z"))),
            400,
            "invalid_request",
        ),
        (
            "header injection in a form body",
            raw_post(
                "application/x-www-form-urlencoded",
                serde_urlencoded::to_string([
                    ("email", "a@b.c\r\nBcc: x@y.z"),
                    ("client_id", &client.client_id),
                    ("redirect_uri", &client.redirect_uri),
                ])
                .unwrap(),
            ),
            400,
            "invalid_request",
        ),
        (
            "a 65 KiB form body",
            raw_post(
                "application/x-www-form-urlencoded",
                format!("state={}", "x".repeat(65 * 1024)),
            ),
            413,
            "invalid_request",
        ),
        (
            "an address over 254 characters",
            json_post(with(
                &good,
                "email",
                json!(format!("{}@{}.example", "a".repeat(64), "b".repeat(190))),
            )),
            400,
            "invalid_request",
        ),
        (
            "a display name",
            json_post(with(&good, "email", json!("Ann <ann@example.com>"))),
            400,
            "invalid_request",
        ),
        (
            "two addresses",
            json_post(with(&good, "email", json!("a@example.com,b@example.com"))),
            400,
            "invalid_request",
        ),
        (
            "not an address",
            json_post(with(&good, "email", json!("not-an-address"))),
            400,
            "invalid_request",
        ),
        (
            "an empty address",
            json_post(with(&good, "email", json!(""))),
            400,
            "invalid_request",
        ),
        (
            "an address that is a number",
            json_post(with(&good, "email", json!(42))),
            400,
            "invalid_request",
        ),
        (
            "no email",
            json_post(without("email")),
            400,
            "invalid_request",
        ),
        (
            "no client_id",
            json_post(without("client_id")),
            400,
            "invalid_request",
        ),
        (
            "no redirect_uri",
            json_post(without("redirect_uri")),
            400,
            "invalid_request",
        ),
        (
            "an unknown client",
            json_post(with(&good, "client_id", json!("nope"))),
            400,
            "invalid_client",
        ),
        (
            "an unregistered redirect_uri",
            json_post(with(
                &good,
                "redirect_uri",
                json!("https://evil.example/callback"),
            )),
            400,
            "invalid_redirect_uri",
        ),
        (
            "a redirect_uri with a trailing slash",
            json_post(with(
                &good,
                "redirect_uri",
                json!("https://app.example/callback/"),
            )),
            400,
            "invalid_redirect_uri",
        ),
        (
            "a redirect_uri with a query added",
            json_post(with(
                &good,
                "redirect_uri",
                json!("https://app.example/callback?next=/"),
            )),
            400,
            "invalid_redirect_uri",
        ),
        (
            "a state with a control character",
            json_post(with(&good, "state", json!("a\u{7}b"))),
            400,
            "invalid_request",
        ),
        (
            "a public client without code_challenge",
            json_post(public_body.clone()),
            400,
            "invalid_request",
        ),
        (
            "a public client with code_challenge_method=plain",
            json_post(with(
                &with(&public_body, "code_challenge", json!(CHALLENGE)),
                "code_challenge_method",
                json!("plain"),
            )),
            400,
            "invalid_request",
        ),
        (
            "a public client with a challenge but no method (plain by default)",
            json_post(with(&public_body, "code_challenge", json!(CHALLENGE))),
            400,
            "invalid_request",
        ),
        (
            "a public client with a malformed S256 challenge",
            json_post(with(
                &with(&public_body, "code_challenge", json!("short")),
                "code_challenge_method",
                json!("S256"),
            )),
            400,
            "invalid_request",
        ),
    ];
    for (case, req, status, code) in cases {
        let res = req.send().await.unwrap();
        expect_error(res, status, code, case).await;
        assert_eq!(
            app.count("login_requests").await,
            0,
            "{case}: a login request was stored"
        );
        assert_eq!(app.count("outbox").await, 0, "{case}: an email was queued");
        assert_eq!(
            app.count("rate_limits").await,
            0,
            "{case}: a rate limit was counted"
        );
        assert_eq!(app.count("users").await, 0, "{case}: a user was created");
    }
    // A good request afterwards is the only email that ever arrives.
    let res = app
        .request_link(&b, &app.link_body(&client, "sentinel@example.com"))
        .await;
    assert_eq!(res.status(), 200);
    app.last_email_to("sentinel@example.com").await;
    let all: Vec<String> = app.emails().into_iter().map(|e| e.to).collect();
    assert_eq!(all, ["sentinel@example.com"]);
}

#[tokio::test]
async fn a_public_client_with_an_s256_challenge_gets_a_link() {
    let app = spawn_app().await;
    let public = app.create_app(|s| s.public = true).await;
    let mut body = app.link_body(&public, "pkce@example.com");
    body["code_challenge"] = json!(CHALLENGE);
    body["code_challenge_method"] = json!("S256");
    let res = app.request_link(&browser(), &body).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert!(app.last_email_to("pkce@example.com").await.link.is_some());
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_the_json_error_shape() {
    let app = spawn_app().await;
    let b = browser();
    let cases = [
        (
            "an unknown path",
            reqwest::Method::GET,
            "/no-such-page",
            404,
            "not_found",
        ),
        (
            "GET on the link endpoint",
            reqwest::Method::GET,
            "/request-magic-link",
            405,
            "method_not_allowed",
        ),
        (
            "DELETE on /verify-email",
            reqwest::Method::DELETE,
            "/verify-email",
            405,
            "method_not_allowed",
        ),
        (
            "POST on /healthz",
            reqwest::Method::POST,
            "/healthz",
            405,
            "method_not_allowed",
        ),
    ];
    for (case, method, path, status, code) in cases {
        let res = b
            .request(method, app.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        expect_error(res, status, code, case).await;
    }
}
