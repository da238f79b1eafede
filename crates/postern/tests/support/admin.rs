//! Helpers of the administration tests (admin_api.rs and its siblings):
//! a server with an administrator, admin tokens, signed-in browsers and
//! calls to `/admin/api/v1` as a given caller.

use postern_admin_web::api::PREFIX;
use postern_auth::admin::{tokens, Principal};
use reqwest::{Client, Method, Response};
use serde_json::{json, Value};

use super::*;

pub const ADMIN: &str = "root@example.com";
pub const OWNER: &str = "owner@example.com";
pub const NOBODY: &str = "nobody@example.com";
pub const PERSON: &str = "person@example.com";

pub async fn spawn_admin_app() -> TestApp {
    spawn_oidc_app_with(&[
        ("POSTERN_ADMIN_EMAILS", ADMIN),
        ("POSTERN_ADMIN_LINKS", "copy"),
    ])
    .await
}

/// A fresh admin token.
pub async fn admin_token(app: &TestApp) -> String {
    tokens::create(&app.state, &Principal::cli(), "ci", None)
        .await
        .unwrap()
        .token
}

/// A browser signed in to Postern (through `/account`) as `email`.
pub async fn signed_in_browser(app: &TestApp, email: &str) -> Client {
    let b = browser();
    sign_in_browser(app, &b, email).await;
    b
}

/// Signs `b` in to Postern (through `/account`) as `email`.
pub async fn sign_in_browser(app: &TestApp, b: &Client, email: &str) {
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303, "GET /account");
    let res = b.get(location(&res)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = app.sign_in_at(b, &location(&res), email, Proof::Link).await;
    assert_eq!(res.status(), 303, "sign-in of {email}");
    let res = b.get(location(&res)).send().await.unwrap();
    assert_eq!(res.status(), 303, "the account callback");
}

/// How a caller is identified.
#[derive(Clone)]
pub enum Who<'a> {
    Nobody,
    Token(&'a str),
    Browser(&'a Client),
}

pub async fn call(
    app: &TestApp,
    who: Who<'_>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Response {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let url = app.url(&format!("{PREFIX}{path}"));
    let plain = browser();
    let client = match &who {
        Who::Browser(b) => *b,
        _ => &plain,
    };
    let mut req = client.request(method, &url);
    match who {
        Who::Token(t) => req = req.bearer_auth(t),
        // Cookie-authenticated writes come from our own origin.
        Who::Browser(_) => req = req.header("origin", &app.address),
        Who::Nobody => {}
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

pub async fn ok_json(res: Response, what: &str) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{what}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates an app through the API.
pub async fn create_api_app(app: &TestApp, t: &str, name: &str, owners: &[&str]) -> Value {
    let res = call(
        app,
        Who::Token(t),
        "post",
        "/apps",
        Some(json!({
            "name": name,
            "first_party": true,
            "redirect_uris": ["https://app.example/cb"],
            "owners": owners,
        })),
    )
    .await;
    assert_eq!(res.status(), 201);
    ok_json(res, "create").await
}
