//! Black-box tests of SPEC §3.4, the headless API: an app's server sends
//! links, redeems tokens and codes, and holds sessions as signed tokens it
//! verifies offline. Every call is authenticated as the app with HTTP Basic,
//! and an app sees and touches only its own requests, users and sessions.

mod support;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use postern_core::{DevicePolicy, SubjectType};
use reqwest::Response;
use serde_json::{json, Value};
use support::*;

/// The redirect URI every test app registers.
const CALLBACK: &str = "https://app.example/callback";
/// SPEC §2: headless session tokens live 10 minutes.
const SESSION_TOKEN_TTL: i64 = 600;
/// The server's default sliding inactivity limit of a session.
const DEFAULT_IDLE_TTL: i64 = 30 * 86_400;

// ---- helpers -------------------------------------------------------------------

/// An app's server calling the headless API with its own credentials.
struct AppServer<'a> {
    app: &'a TestApp,
    client: TestClient,
}

/// A link request's answer and the email it sent.
struct Sent {
    login_id: String,
    /// The link in the email, as sent.
    link: url::Url,
    token: String,
    code: String,
}

async fn app_server(
    app: &TestApp,
    change: impl FnOnce(&mut postern_core::AppSettings),
) -> AppServer<'_> {
    AppServer {
        app,
        client: app.create_app(change).await,
    }
}

impl AppServer<'_> {
    fn basic(&self) -> String {
        basic(
            &self.client.client_id,
            self.client.secret.as_deref().expect("a confidential app"),
        )
    }

    /// `POST path` with a JSON body and this app's Basic credentials.
    async fn post(&self, path: &str, body: &Value) -> Response {
        back_channel()
            .post(self.app.url(path))
            .header("authorization", self.basic())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/magic-links` with `body`, raw.
    async fn ask_raw(&self, body: &Value) -> Response {
        self.post("/api/v1/magic-links", body).await
    }

    /// Asks for a link for `email` with `extra` fields; asserts 202 and
    /// returns the answer with the email it sent.
    async fn ask_with(&self, email: &str, extra: &[(&str, &str)]) -> Sent {
        let mut body = json!({"email": email, "redirect_uri": CALLBACK});
        for (k, v) in extra {
            body[*k] = json!(v);
        }
        let before = self.app.inbox();
        let res = self.ask_raw(&body).await;
        assert_eq!(res.status(), 202, "{email}: {}", res.text().await.unwrap());
        let answer: Value = res.json().await.unwrap();
        let mail = self
            .app
            .new_email_to(&before, &email.trim().to_lowercase())
            .await;
        let link =
            headless_link(&mail).unwrap_or_else(|| panic!("no headless link in: {}", mail.text));
        let token = link
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .expect("a token on the link");
        Sent {
            login_id: answer["login_id"].as_str().expect("a login_id").to_owned(),
            link,
            token,
            code: mail.code.clone().expect("a code in the subject"),
        }
    }

    async fn ask(&self, email: &str) -> Sent {
        self.ask_with(email, &[("state", "st-123")]).await
    }

    /// `POST /api/v1/magic-links/verify` with `body`, raw.
    async fn redeem(&self, body: &Value) -> Response {
        self.post("/api/v1/magic-links/verify", body).await
    }

    /// Redeems `body`, asserting 200; the new session.
    async fn redeem_ok(&self, body: &Value) -> Value {
        let res = self.redeem(body).await;
        assert_eq!(res.status(), 200, "{body}: {}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    /// Signs `email` in with the emailed token; the new session.
    async fn sign_in(&self, email: &str) -> Value {
        let sent = self.ask(email).await;
        self.redeem_ok(&json!({"token": sent.token})).await
    }

    async fn verify_session(&self, session_token: &Value) -> Response {
        self.post(
            "/api/v1/sessions/verify",
            &json!({"session_token": session_token}),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &Value) -> Response {
        self.post(
            "/api/v1/sessions/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Refreshes, asserting 200; the refreshed session.
    async fn refresh_ok(&self, refresh_token: &Value) -> Value {
        let res = self.refresh(refresh_token).await;
        assert_eq!(res.status(), 200, "refresh: {}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    async fn delete_session(&self, session_id: &str) -> Response {
        back_channel()
            .delete(self.app.url(&format!("/api/v1/sessions/{session_id}")))
            .header("authorization", self.basic())
            .send()
            .await
            .unwrap()
    }

    async fn revoke_user(&self, user_id: &str) -> Response {
        self.post(
            &format!("/api/v1/users/{user_id}/sessions/revoke"),
            &json!({}),
        )
        .await
    }

    /// Asserts that `session`'s token still passes the online check.
    async fn assert_live(&self, session: &Value, context: &str) {
        let res = self.verify_session(&session["session_token"]).await;
        assert_eq!(
            res.status(),
            200,
            "{context}: {}",
            res.text().await.unwrap()
        );
    }

    /// Asserts that `session`'s token fails the online check with 401.
    async fn assert_ended(&self, session: &Value, context: &str) {
        let res = self.verify_session(&session["session_token"]).await;
        expect_error(res, 401, "invalid_session", context).await;
    }
}

/// The `redirect_uri?token=pml_…` link of a headless sign-in email.
fn headless_link(mail: &Email) -> Option<url::Url> {
    mail.text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '"'))
        .find(|w| w.contains("?token=pml_"))
        .map(|w| url::Url::parse(w).expect("an absolute link"))
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Unix seconds of the RFC 3339 UTC time Postern writes
/// (`YYYY-MM-DDTHH:MM:SSZ`); panics on anything else.
fn unix_time(text: &str) -> i64 {
    let b = text.as_bytes();
    let shape = b.len() == 20
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ]
        .iter()
        .all(|&(i, c)| b[i] == c);
    assert!(shape, "not an RFC 3339 UTC time: {text:?}");
    let n = |r: std::ops::Range<usize>| -> i64 {
        text[r]
            .parse()
            .unwrap_or_else(|_| panic!("not an RFC 3339 UTC time: {text:?}"))
    };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Whether `haystack` holds `digits` as a whole number (not inside a longer one).
fn holds_number(haystack: &str, digits: &str) -> bool {
    haystack.match_indices(digits).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Each character percent-encoded, as a form-urlencoding client may send it.
fn percent_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// `Authorization: Basic` of `raw` as given, without form-urlencoding.
fn basic_raw(raw: &str) -> String {
    let b64 = b64url(raw.as_bytes()).replace('-', "+").replace('_', "/");
    let pad = "=".repeat((4 - b64.len() % 4) % 4);
    format!("Basic {b64}{pad}")
}

/// Verifies a session token offline, with the `jsonwebtoken` crate and the
/// published JWKS only: EdDSA, the `kid`'s key, `iss`, `aud` and `exp`.
async fn verify_offline(
    app: &TestApp,
    audience: &str,
    token: &str,
) -> Result<(jsonwebtoken::Header, Value), jsonwebtoken::errors::Error> {
    let jwks: JwkSet = back_channel()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("a JWK set");
    let header = decode_header(token)?;
    let kid = header.kid.as_deref().expect("a kid in the header");
    let jwk = jwks.find(kid).expect("the kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[PUBLIC_URL]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let data = decode::<Value>(token, &key, &validation)?;
    Ok((data.header, data.claims))
}

// ---- POST /api/v1/magic-links ----------------------------------------------------

#[tokio::test]
async fn a_link_request_answers_202_with_only_a_login_id_and_its_expiry() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let res = shop
        .ask_raw(&json!({"email": "ada@example.com", "redirect_uri": CALLBACK}))
        .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(keys(&body), ["expires_at", "login_id"], "{body}");
    assert!(
        body["login_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let expires_at = unix_time(body["expires_at"].as_str().unwrap());
    assert_eq!(
        expires_at,
        app.clock_now() + 15 * 60,
        "links live 15 minutes by default"
    );
}

#[tokio::test]
async fn the_emailed_link_is_the_redirect_uri_with_the_token_and_state() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop
        .ask_with("  Ada@Example.COM ", &[("state", "a b&c=d/é")])
        .await;
    let link = &sent.link;
    assert_eq!(
        (link.scheme(), link.host_str(), link.path()),
        ("https", Some("app.example"), "/callback"),
        "{link}"
    );
    let pairs: Vec<(String, String)> = link.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("token".to_owned(), sent.token.clone()),
            ("state".to_owned(), "a b&c=d/é".to_owned())
        ],
        "{link}"
    );
    let secret = sent.token.strip_prefix("pml_").expect("a pml_ token");
    assert!(secret.len() >= 43, "256 bits of base64url: {secret}");
    assert!(
        sent.code.len() == 6 && sent.code.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        sent.code
    );
    let mail = app.last_email_to("ada@example.com").await;
    assert!(
        mail.text.contains(&sent.code),
        "the code is in the text part"
    );
    assert!(
        mail.html.contains(secret) && mail.html.contains(&sent.code),
        "{}",
        mail.html
    );
    assert!(
        !mail.text.contains("/verify-email"),
        "no browser link: {}",
        mail.text
    );
    assert!(
        mail.subject.starts_with("Sign in to Test App"),
        "{}",
        mail.subject
    );
}

#[tokio::test]
async fn a_link_without_state_carries_only_the_token() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask_with("bea@example.com", &[]).await;
    let names: Vec<String> = sent
        .link
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(names, ["token"], "{}", sent.link);
}

#[tokio::test]
async fn the_persons_locale_picks_the_language_of_the_email() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop
        .ask_with("cleo@example.com", &[("locale", "de-DE")])
        .await;
    let mail = app.last_email_to("cleo@example.com").await;
    assert!(
        mail.subject.starts_with("Bei Test App anmelden"),
        "{}",
        mail.subject
    );
    assert!(mail.subject.ends_with(&sent.code), "{}", mail.subject);
}

#[tokio::test]
async fn bad_link_requests_are_refused_and_send_nothing() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let ok = |k: &str, v: Value| {
        let mut body = json!({"email": "dan@example.com", "redirect_uri": CALLBACK});
        body[k] = v;
        body
    };
    let cases = [
        (
            "an unregistered redirect URI",
            ok("redirect_uri", json!("https://evil.example/callback")),
            "invalid_redirect_uri",
        ),
        (
            "a registered redirect URI with another path",
            ok("redirect_uri", json!("https://app.example/callback/other")),
            "invalid_redirect_uri",
        ),
        (
            "a registered redirect URI with an extra query",
            ok("redirect_uri", json!("https://app.example/callback?x=1")),
            "invalid_redirect_uri",
        ),
        (
            "no redirect URI",
            json!({"email": "dan@example.com"}),
            "invalid_request",
        ),
        (
            "no email",
            json!({"redirect_uri": CALLBACK}),
            "invalid_request",
        ),
        ("an empty email", ok("email", json!("")), "invalid_request"),
        (
            "a malformed email",
            ok("email", json!("not-an-address")),
            "invalid_request",
        ),
        (
            "two addresses",
            ok("email", json!("a@example.com, b@example.com")),
            "invalid_request",
        ),
        (
            "header injection in the email",
            ok("email", json!("dan@example.com\r\nBcc: eve@example.com")),
            "invalid_request",
        ),
        (
            "a display name",
            ok("email", json!("Dan <dan@example.com>")),
            "invalid_request",
        ),
        (
            "an ip that is not an address",
            ok("ip", json!("not-an-ip")),
            "invalid_request",
        ),
        (
            "an ip out of range",
            ok("ip", json!("256.1.1.1")),
            "invalid_request",
        ),
        (
            "an ip with a port",
            ok("ip", json!("203.0.113.7:443")),
            "invalid_request",
        ),
        (
            "an ip range",
            ok("ip", json!("203.0.113.0/24")),
            "invalid_request",
        ),
        (
            "an email that is not a string",
            ok("email", json!(42)),
            "invalid_request",
        ),
        (
            "a state that is not a string",
            ok("state", json!({"a": 1})),
            "invalid_request",
        ),
    ];
    for (case, body, code) in cases {
        let res = shop.ask_raw(&body).await;
        expect_error(res, 400, code, case).await;
    }
    let res = back_channel()
        .post(app.url("/api/v1/magic-links"))
        .header("authorization", shop.basic())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_request", "malformed JSON").await;
    let huge = json!({"email": "dan@example.com", "redirect_uri": CALLBACK, "state": "x".repeat(70 * 1024)});
    expect_error(
        shop.ask_raw(&huge).await,
        413,
        "invalid_request",
        "a body over 64 KiB",
    )
    .await;
    assert_eq!(app.count("login_requests").await, 0, "nothing was stored");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.emails().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn failed_client_authentication_is_401_invalid_client() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let other = app.create_app(|_| {}).await;
    let spa = app.create_app(|s| s.public = true).await;
    let (id, secret) = (
        shop.client.client_id.as_str(),
        shop.client.secret.clone().unwrap(),
    );
    let other_secret = other.secret.clone().unwrap();
    let cases: Vec<(&str, Option<String>, Value)> = vec![
        ("no credentials", None, json!({})),
        ("a wrong secret", Some(basic(id, "pcs_wrong")), json!({})),
        ("an empty secret", Some(basic(id, "")), json!({})),
        ("no secret part", Some(basic_raw(id)), json!({})),
        (
            "an unknown client",
            Some(basic("nobody", &secret)),
            json!({}),
        ),
        (
            "this app's id with another app's secret",
            Some(basic(id, &other_secret)),
            json!({}),
        ),
        (
            "another app's id with this app's secret",
            Some(basic(&other.client_id, &secret)),
            json!({}),
        ),
        (
            "a public app (no secret)",
            Some(basic(&spa.client_id, "")),
            json!({}),
        ),
        (
            "a public app with a made-up secret",
            Some(basic(&spa.client_id, "pcs_x")),
            json!({}),
        ),
        (
            "a Bearer token",
            Some(format!("Bearer {secret}")),
            json!({}),
        ),
        (
            "Basic that is not base64",
            Some("Basic !!!".to_owned()),
            json!({}),
        ),
        (
            "the secret in the body",
            None,
            json!({"client_id": id, "client_secret": secret}),
        ),
        (
            "a public app's id in the body",
            None,
            json!({"client_id": spa.client_id}),
        ),
    ];
    for (case, authorization, extra) in cases {
        let mut body = json!({"email": "eve@example.com", "redirect_uri": CALLBACK});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let mut req = back_channel()
            .post(app.url("/api/v1/magic-links"))
            .json(&body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert!(
            res.headers().contains_key("www-authenticate"),
            "{case}: no WWW-Authenticate"
        );
        expect_error(res, 401, "invalid_client", case).await;
    }
    assert_eq!(app.count("login_requests").await, 0, "nothing was stored");
}

#[tokio::test]
async fn every_endpoint_needs_the_apps_credentials() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("fay@example.com").await;
    let sid = session["session_id"].as_str().unwrap();
    let uid = session["user"]["id"].as_str().unwrap();
    let endpoints = [
        (
            "POST",
            "/api/v1/magic-links".to_owned(),
            json!({"email": "fay@example.com", "redirect_uri": CALLBACK}),
        ),
        (
            "POST",
            "/api/v1/magic-links/verify".to_owned(),
            json!({"token": "pml_x"}),
        ),
        (
            "POST",
            "/api/v1/sessions/refresh".to_owned(),
            json!({"refresh_token": session["refresh_token"]}),
        ),
        (
            "POST",
            "/api/v1/sessions/verify".to_owned(),
            json!({"session_token": session["session_token"]}),
        ),
        ("DELETE", format!("/api/v1/sessions/{sid}"), json!({})),
        (
            "POST",
            format!("/api/v1/users/{uid}/sessions/revoke"),
            json!({}),
        ),
    ];
    for (method, path, body) in &endpoints {
        for (how, authorization) in [
            ("no credentials", None),
            (
                "a wrong secret",
                Some(basic(&shop.client.client_id, "pcs_wrong")),
            ),
        ] {
            let context = format!("{method} {path} with {how}");
            let mut req = back_channel()
                .request(method.parse().unwrap(), app.url(path))
                .json(body);
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            let res = req.send().await.unwrap();
            assert!(res.headers().contains_key("www-authenticate"), "{context}");
            expect_error(res, 401, "invalid_client", &context).await;
        }
    }
    shop.assert_live(&session, "the session is untouched").await;
}

#[tokio::test]
async fn percent_encoded_basic_credentials_are_accepted() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let secret = shop.client.secret.clone().unwrap();
    // RFC 6749 §2.3.1: each part is form-urlencoded before Base64.
    let raw = format!(
        "{}:{}",
        percent_all(&shop.client.client_id),
        percent_all(&secret)
    );
    let res = back_channel()
        .post(app.url("/api/v1/magic-links"))
        .header("authorization", basic_raw(&raw))
        .json(&json!({"email": "gus@example.com", "redirect_uri": CALLBACK}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_form_encoded_link_request_answers_like_a_json_one() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let res = back_channel()
        .post(app.url("/api/v1/magic-links"))
        .header("authorization", shop.basic())
        .form(&[("email", "hal@example.com"), ("redirect_uri", CALLBACK)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    assert_eq!(keys(&body), ["expires_at", "login_id"]);
}

#[tokio::test]
async fn an_app_without_sign_up_sends_unknown_addresses_no_link() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.signup_allowed = false).await;
    let before = app.inbox();
    let res = shop
        .ask_raw(&json!({"email": "ivy@example.com", "redirect_uri": CALLBACK}))
        .await;
    assert_eq!(res.status(), 202, "the same answer as for a known address");
    let body: Value = res.json().await.unwrap();
    assert_eq!(keys(&body), ["expires_at", "login_id"]);
    let mail = app.new_email_to(&before, "ivy@example.com").await;
    assert!(headless_link(&mail).is_none(), "{}", mail.text);
    assert!(!mail.text.contains("pml_"), "{}", mail.text);
}

// ---- POST /api/v1/magic-links/verify ---------------------------------------------

#[tokio::test]
async fn the_emailed_token_signs_the_person_in() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("  Jo@Example.COM ").await;
    let session = shop.redeem_ok(&json!({"token": sent.token})).await;
    assert_eq!(
        keys(&session),
        [
            "expires_at",
            "refresh_token",
            "session_id",
            "session_token",
            "user"
        ],
        "{session}"
    );
    assert_eq!(keys(&session["user"]), ["email", "id"], "{session}");
    assert_eq!(session["user"]["email"], "jo@example.com");
    for field in ["session_id", "session_token", "refresh_token"] {
        assert!(
            session[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {session}"
        );
    }
    assert!(
        session["user"]["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{session}"
    );
    assert_eq!(
        session["session_token"]
            .as_str()
            .unwrap()
            .split('.')
            .count(),
        3,
        "a compact JWS"
    );
    assert_eq!(
        unix_time(session["expires_at"].as_str().unwrap()),
        app.clock_now() + DEFAULT_IDLE_TTL,
        "an idle session ends after the server's inactivity limit"
    );
    shop.assert_live(&session, "the new session").await;
}

#[tokio::test]
async fn answers_that_carry_tokens_are_never_cached() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("jon@example.com").await;
    let signed_in = shop.redeem(&json!({"token": sent.token})).await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(signed_in.headers()["cache-control"], "no-store", "verify");
    let refresh_token = signed_in.json::<Value>().await.unwrap()["refresh_token"].clone();
    let refreshed = shop.refresh(&refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(refreshed.headers()["cache-control"], "no-store", "refresh");
}

#[tokio::test]
async fn a_token_signs_in_only_once() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("kai@example.com").await;
    shop.redeem_ok(&json!({"token": sent.token})).await;
    let again = shop.redeem(&json!({"token": sent.token})).await;
    let body = expect_error(again, 400, "invalid_token", "the same token twice").await;
    assert_eq!(
        body["error_description"],
        "The magic link has expired or is invalid."
    );
    let code = shop
        .redeem(&json!({"login_id": sent.login_id, "code": sent.code}))
        .await;
    expect_error(code, 400, "invalid_token", "the code after the link").await;
}

#[tokio::test]
async fn a_code_signs_in_only_once_and_burns_the_link() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("lea@example.com").await;
    shop.redeem_ok(&json!({"login_id": sent.login_id, "code": sent.code}))
        .await;
    let again = shop
        .redeem(&json!({"login_id": sent.login_id, "code": sent.code}))
        .await;
    expect_error(again, 400, "invalid_token", "the same code twice").await;
    let link = shop.redeem(&json!({"token": sent.token})).await;
    expect_error(link, 400, "invalid_token", "the link after the code").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_ten_concurrent_redemptions_exactly_one_succeeds() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("max@example.com").await;
    let url = app.url("/api/v1/magic-links/verify");
    let tries: Vec<_> = (0..10)
        .map(|_| {
            let (url, auth, token) = (url.clone(), shop.basic(), sent.token.clone());
            tokio::spawn(async move {
                let res = back_channel()
                    .post(url)
                    .header("authorization", auth)
                    .json(&json!({"token": token}))
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400, 400, 400]);
    assert_eq!(app.count("sessions").await, 1);
}

#[tokio::test]
async fn another_apps_credentials_cannot_redeem_a_token_or_code() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let rival = app_server(&app, |_| {}).await;
    let sent = shop.ask("ned@example.com").await;
    let token = rival.redeem(&json!({"token": sent.token})).await;
    expect_error(token, 400, "invalid_token", "another app's token").await;
    let code = rival
        .redeem(&json!({"login_id": sent.login_id, "code": sent.code}))
        .await;
    expect_error(
        code,
        400,
        "invalid_token",
        "another app's login id and code",
    )
    .await;
    let session = shop.redeem_ok(&json!({"token": sent.token})).await;
    assert_eq!(
        session["user"]["email"], "ned@example.com",
        "the token still works for its app"
    );
    assert_eq!(
        app.rows("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        [["1"]]
    );
}

#[tokio::test]
async fn a_sign_in_burns_the_persons_other_links_for_the_app() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let forum = app_server(&app, |_| {}).await;
    let first = shop.ask("kit@example.com").await;
    let second = shop.ask("kit@example.com").await;
    let elsewhere = forum.ask("kit@example.com").await;
    shop.redeem_ok(&json!({"token": second.token})).await;
    let cases = [
        ("the earlier link", json!({"token": first.token})),
        (
            "the earlier code",
            json!({"login_id": first.login_id, "code": first.code}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
    forum.redeem_ok(&json!({"token": elsewhere.token})).await;
}

#[tokio::test]
async fn a_same_browser_app_must_send_the_login_id_with_the_token() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.device_policy = DevicePolicy::SameBrowser).await;
    let sent = shop.ask("olga@example.com").await;
    let other = shop.ask("olga2@example.com").await;
    let cases = [
        ("the token alone", json!({"token": sent.token})),
        (
            "another request's login id",
            json!({"token": sent.token, "login_id": other.login_id}),
        ),
        (
            "an unknown login id",
            json!({"token": sent.token, "login_id": "nope"}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
    let session = shop
        .redeem_ok(&json!({"token": sent.token, "login_id": sent.login_id}))
        .await;
    assert_eq!(session["user"]["email"], "olga@example.com");
}

#[tokio::test]
async fn the_emailed_code_with_the_login_id_signs_the_person_in() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("pia@example.com").await;
    let session = shop
        .redeem_ok(&json!({"login_id": sent.login_id, "code": format!(" {} ", sent.code)}))
        .await;
    assert_eq!(session["user"]["email"], "pia@example.com");
    let (_, claims) = verify_offline(
        &app,
        &shop.client.client_id,
        session["session_token"].as_str().unwrap(),
    )
    .await
    .expect("a valid session token");
    assert_eq!(claims["amr"], json!(["otp"]), "a code sign-in");
}

#[tokio::test]
async fn wrong_codes_are_invalid_code_and_the_fifth_kills_the_request() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("quinn@example.com").await;
    let wrong = wrong_code(&sent.code);
    for i in 1..=4 {
        let res = shop
            .redeem(&json!({"login_id": sent.login_id, "code": wrong}))
            .await;
        let body = expect_error(res, 400, "invalid_code", &format!("wrong code {i}")).await;
        assert_eq!(body["error_description"], "The code is not correct.");
    }
    let fifth = shop
        .redeem(&json!({"login_id": sent.login_id, "code": wrong}))
        .await;
    expect_error(fifth, 400, "invalid_token", "the fifth wrong code").await;
    let cases = [
        (
            "the right code after five wrong ones",
            json!({"login_id": sent.login_id, "code": sent.code}),
        ),
        (
            "the link after five wrong codes",
            json!({"token": sent.token}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
}

#[tokio::test]
async fn a_spent_code_budget_stops_codes_but_not_links() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    // Two requests of five wrong codes each spend the address's ten per hour.
    for _ in 0..2 {
        let sent = shop.ask("noa@example.com").await;
        let wrong = wrong_code(&sent.code);
        for _ in 0..5 {
            let res = shop
                .redeem(&json!({"login_id": sent.login_id, "code": wrong}))
                .await;
            assert_eq!(res.status(), 400);
        }
    }
    let sent = shop.ask("noa@example.com").await;
    let code = shop
        .redeem(&json!({"login_id": sent.login_id, "code": sent.code}))
        .await;
    expect_error(
        code,
        400,
        "invalid_token",
        "the right code with the budget spent",
    )
    .await;
    shop.redeem_ok(&json!({"token": sent.token})).await;
}

#[tokio::test]
async fn the_sign_in_history_records_the_person_and_the_method() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let by_link = shop.ask("oli@example.com").await;
    let by_code = shop.ask("pat@example.com").await;
    shop.redeem_ok(&json!({"token": by_link.token, "ip": "203.0.113.5", "user_agent": "Firefox"}))
        .await;
    shop.redeem_ok(
        &json!({"login_id": by_code.login_id, "code": by_code.code, "ip": "2001:db8::5"}),
    )
    .await;
    let rows = app
        .rows(
            "SELECT u.email, e.client_id, e.method, e.outcome, e.ip, COALESCE(e.user_agent, '-') \
             FROM sign_in_events e JOIN users u ON u.id = e.user_id ORDER BY u.email",
        )
        .await;
    let id = shop.client.client_id.as_str();
    assert_eq!(
        rows,
        [
            [
                "oli@example.com",
                id,
                "link",
                "success",
                "203.0.113.5",
                "Firefox"
            ],
            ["pat@example.com", id, "code", "success", "2001:db8::5", "-"],
        ]
    );
}

#[tokio::test]
async fn malformed_or_unknown_redemptions_are_refused() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("ray@example.com").await;
    let mut tampered = sent.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let cases = [
        ("an empty body", json!({}), "invalid_request"),
        (
            "a code without a login id",
            json!({"code": sent.code}),
            "invalid_request",
        ),
        (
            "a login id without a code",
            json!({"login_id": sent.login_id}),
            "invalid_request",
        ),
        (
            "both a token and a code",
            json!({"token": sent.token, "login_id": sent.login_id, "code": sent.code}),
            "invalid_request",
        ),
        (
            "a bad ip",
            json!({"token": sent.token, "ip": "nope"}),
            "invalid_request",
        ),
        (
            "a tampered token",
            json!({"token": tampered}),
            "invalid_token",
        ),
        (
            "a token without its prefix",
            json!({"token": sent.token.trim_start_matches("pml_")}),
            "invalid_token",
        ),
        ("garbage", json!({"token": "pml_<script>"}), "invalid_token"),
        (
            "a huge token",
            json!({"token": format!("pml_{}", "A".repeat(5000))}),
            "invalid_token",
        ),
        (
            "an unknown login id",
            json!({"login_id": "nope", "code": sent.code}),
            "invalid_token",
        ),
        (
            "a huge login id",
            json!({"login_id": "x".repeat(5000), "code": sent.code}),
            "invalid_token",
        ),
    ];
    for (case, body, code) in cases {
        expect_error(shop.redeem(&body).await, 400, code, case).await;
    }
    shop.redeem_ok(&json!({"token": sent.token})).await;
}

#[tokio::test]
async fn an_expired_token_or_code_is_refused() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("sam@example.com").await;
    app.clock.advance(15 * 60);
    let cases = [
        ("an expired token", json!({"token": sent.token})),
        (
            "an expired code",
            json!({"login_id": sent.login_id, "code": sent.code}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
}

#[tokio::test]
async fn a_headless_token_is_refused_by_the_browser_endpoint() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let sent = shop.ask("tia@example.com").await;
    let url = app.url(&format!("/verify-email?token={}", sent.token));
    let json = app.get_json(&browser(), &url).await;
    expect_error(json, 400, "invalid_token", "GET /verify-email asking JSON").await;
    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 400, "GET /verify-email as a browser");
    let post = browser()
        .post(app.url("/verify-email"))
        .header("accept", "application/json")
        .form(&[("token", sent.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16() / 100, 4, "POST /verify-email");
    shop.redeem_ok(&json!({"token": sent.token})).await;
}

#[tokio::test]
async fn a_browser_flow_token_or_code_is_refused_by_the_headless_api() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let (hosted, mail) = app
        .hosted_request_with_email(&browser(), &shop.client, "uma@example.com")
        .await;
    let token = token_of(mail.link.as_deref().expect("a browser link"));
    let code = mail.code.clone().unwrap();
    let cases = [
        ("a browser link's token", json!({"token": token})),
        (
            "a browser request's login id and code",
            json!({"login_id": hosted.login_id, "code": code}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
    let res = hosted
        .browser
        .get(app.local(mail.link.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "the browser link still works in its browser"
    );
}

#[tokio::test]
async fn user_ids_are_pairwise_per_app_unless_the_app_asks_for_public_ones() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let forum = app_server(&app, |_| {}).await;
    let admin = app_server(&app, |s| s.subject_type = SubjectType::Public).await;
    let at_shop = shop.sign_in("vic@example.com").await;
    let again_at_shop = shop.sign_in("vic@example.com").await;
    let at_forum = forum.sign_in("vic@example.com").await;
    let at_admin = admin.sign_in("vic@example.com").await;
    let internal = app.rows("SELECT id FROM users").await;
    assert_eq!(internal.len(), 1, "one person");
    let internal = &internal[0][0];
    let id = |s: &Value| s["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id(&at_shop), id(&again_at_shop), "stable within one app");
    assert_ne!(
        id(&at_shop),
        id(&at_forum),
        "two apps cannot correlate the person"
    );
    assert_ne!(&id(&at_shop), internal);
    assert_ne!(&id(&at_forum), internal);
    assert_eq!(
        &id(&at_admin),
        internal,
        "a public-subject app sees the internal id"
    );
}

// ---- the session token ---------------------------------------------------------------

#[tokio::test]
async fn the_session_token_verifies_offline_with_an_independent_jose_library() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("wes@example.com").await;
    let token = session["session_token"].as_str().unwrap();
    let (header, claims) = verify_offline(&app, &shop.client.client_id, token)
        .await
        .expect("the session token verifies against /jwks.json");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("postern-session+jwt"));
    assert_eq!(claims["iss"], PUBLIC_URL);
    assert_eq!(claims["aud"], shop.client.client_id.as_str());
    assert_eq!(claims["sub"], session["user"]["id"]);
    assert_eq!(claims["sid"], session["session_id"]);
    // SPEC §2 (private tokens): no email unless the app sets token_email.
    assert_eq!(claims.get("email"), None, "no personal data: {claims}");
    assert!(claims["jti"].is_string(), "{claims}");
    assert_eq!(claims["amr"], json!(["email"]), "a link sign-in");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(iat, app.clock_now());
    assert_eq!(exp - iat, SESSION_TOKEN_TTL, "10 minutes");
}

#[tokio::test]
async fn an_offline_verifier_refuses_the_token_for_another_audience_or_once_tampered() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("xia@example.com").await;
    let token = session["session_token"].as_str().unwrap();
    let mut claims = jwt_claims(token);
    claims["sub"] = json!("someone-else");
    let signature = token.rsplit('.').next().unwrap();
    let forged = compact(&jwt_header(token), &claims, signature);
    let cases = [
        ("another audience", "another-app", token.to_owned()),
        ("changed claims", shop.client.client_id.as_str(), forged),
    ];
    for (case, audience, token) in cases {
        assert!(
            verify_offline(&app, audience, &token).await.is_err(),
            "{case}"
        );
    }
}

#[tokio::test]
async fn the_apps_oidc_tokens_are_not_session_tokens_and_back() {
    let app = spawn_oidc_app().await;
    let shop = app_server(&app, |_| {}).await;
    let (_, code) = app
        .raw_code(&shop.client, "ann@example.com", "openid email", None)
        .await;
    let res = app.exchange_raw(&shop.client, &code, None).await;
    assert_eq!(res.status(), 200, "the OIDC exchange");
    let tokens: Value = res.json().await.unwrap();
    for field in ["access_token", "id_token"] {
        let res = shop.verify_session(&tokens[field]).await;
        expect_error(res, 401, "invalid_session", &format!("an OIDC {field}")).await;
    }
    let session = shop.sign_in("ann@example.com").await;
    let token = session["session_token"].as_str().unwrap();
    let userinfo = app.userinfo(token).await;
    assert_eq!(userinfo.status(), 401, "a session token at /userinfo");
}

// ---- POST /api/v1/sessions/verify, DELETE /api/v1/sessions/{id} --------------------

#[tokio::test]
async fn a_live_session_verifies_online() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("yan@example.com").await;
    let res = shop.verify_session(&session["session_token"]).await;
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(keys(&info), ["expires_at", "session_id", "user"], "{info}");
    assert_eq!(info["session_id"], session["session_id"]);
    assert_eq!(info["user"], session["user"]);
    assert_eq!(info["expires_at"], session["expires_at"]);
}

#[tokio::test]
async fn a_deleted_session_fails_verification_and_refresh_at_once() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("zoe@example.com").await;
    let other = shop.sign_in("zoe@example.com").await;
    let res = shop
        .delete_session(session["session_id"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 204);
    assert!(res.text().await.unwrap().is_empty(), "no body");
    shop.assert_ended(&session, "a deleted session").await;
    let refresh = shop.refresh(&session["refresh_token"]).await;
    expect_error(
        refresh,
        400,
        "invalid_token",
        "a deleted session's refresh token",
    )
    .await;
    shop.assert_live(&other, "the person's other session").await;
}

#[tokio::test]
async fn deleting_an_unknown_session_is_404() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    for (case, id) in [
        ("an unknown id", "nope".to_owned()),
        ("a huge id", "x".repeat(3000)),
    ] {
        expect_error(shop.delete_session(&id).await, 404, "not_found", case).await;
    }
}

#[tokio::test]
async fn a_session_token_lives_ten_minutes() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("abe@example.com").await;
    app.clock.advance(SESSION_TOKEN_TTL - 1);
    shop.assert_live(&session, "just before ten minutes").await;
    app.clock.advance(2);
    shop.assert_ended(&session, "after ten minutes").await;
    let fresh = shop.refresh_ok(&session["refresh_token"]).await;
    shop.assert_live(&fresh, "a refreshed token").await;
}

#[tokio::test]
async fn bad_session_tokens_are_401_invalid_session() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("bo@example.com").await;
    let token = session["session_token"].as_str().unwrap();
    let header = jwt_header(token);
    let claims = jwt_claims(token);
    let signature = token.rsplit('.').next().unwrap();
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let mut unsigned = header.clone();
    unsigned["alg"] = json!("none");
    let mut as_access_token = header.clone();
    as_access_token["typ"] = json!("at+jwt");
    let cases = [
        ("garbage", json!("not-a-jwt")),
        ("an empty token", json!("")),
        (
            "a longer expiry",
            json!(compact(&header, &longer, signature)),
        ),
        ("alg none", json!(compact(&unsigned, &claims, ""))),
        (
            "another typ",
            json!(compact(&as_access_token, &claims, signature)),
        ),
        ("the refresh token", session["refresh_token"].clone()),
    ];
    for (case, bad) in cases {
        expect_error(
            shop.verify_session(&bad).await,
            401,
            "invalid_session",
            case,
        )
        .await;
    }
    let missing = shop.post("/api/v1/sessions/verify", &json!({})).await;
    expect_error(missing, 400, "invalid_request", "no session_token").await;
}

// ---- POST /api/v1/sessions/refresh --------------------------------------------------

#[tokio::test]
async fn a_refresh_issues_a_new_session_token_and_rotates_the_refresh_token() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("cal@example.com").await;
    app.clock.advance(60);
    let fresh = shop.refresh_ok(&session["refresh_token"]).await;
    assert_eq!(
        keys(&fresh),
        [
            "expires_at",
            "refresh_token",
            "session_id",
            "session_token",
            "user"
        ],
        "{fresh}"
    );
    assert_eq!(
        fresh["session_id"], session["session_id"],
        "the same session"
    );
    assert_eq!(fresh["user"], session["user"]);
    assert_ne!(fresh["session_token"], session["session_token"]);
    assert_ne!(fresh["refresh_token"], session["refresh_token"]);
    assert_eq!(
        unix_time(fresh["expires_at"].as_str().unwrap()),
        app.clock_now() + DEFAULT_IDLE_TTL,
        "the inactivity limit starts again"
    );
    let (_, claims) = verify_offline(
        &app,
        &shop.client.client_id,
        fresh["session_token"].as_str().unwrap(),
    )
    .await
    .expect("the new session token verifies offline");
    assert_eq!(claims["sid"], session["session_id"]);
    assert_eq!(claims["iat"], app.clock_now());
    shop.assert_live(&fresh, "the new session token").await;
    shop.refresh_ok(&fresh["refresh_token"]).await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_session() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("dee@example.com").await;
    let second = shop.refresh_ok(&session["refresh_token"]).await;
    let reuse = shop.refresh(&session["refresh_token"]).await;
    expect_error(reuse, 400, "invalid_token", "a reused refresh token").await;
    shop.assert_ended(&second, "the newest session token after the reuse")
        .await;
    let newest = shop.refresh(&second["refresh_token"]).await;
    expect_error(
        newest,
        400,
        "invalid_token",
        "the newest refresh token after the reuse",
    )
    .await;
}

#[tokio::test]
async fn bad_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("eli@example.com").await;
    let cases = [
        ("garbage", json!("nope"), 400, "invalid_token"),
        (
            "an unknown refresh token",
            json!(format!("prt_{}", "A".repeat(43))),
            400,
            "invalid_token",
        ),
        (
            "a huge one",
            json!(format!("prt_{}", "A".repeat(5000))),
            400,
            "invalid_token",
        ),
        (
            "the session token",
            session["session_token"].clone(),
            400,
            "invalid_token",
        ),
    ];
    for (case, token, status, code) in cases {
        expect_error(shop.refresh(&token).await, status, code, case).await;
    }
    let missing = shop.post("/api/v1/sessions/refresh", &json!({})).await;
    expect_error(missing, 400, "invalid_request", "no refresh_token").await;
    shop.refresh_ok(&session["refresh_token"]).await;
}

#[tokio::test]
async fn refreshing_keeps_a_session_alive_past_the_idle_limit() {
    let app = spawn_app_with(&[("POSTERN_SESSION_IDLE_TTL", "1h")]).await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("fox@example.com").await;
    assert_eq!(
        unix_time(session["expires_at"].as_str().unwrap()),
        app.clock_now() + 3600
    );
    app.clock.advance(50 * 60);
    let second = shop.refresh_ok(&session["refresh_token"]).await;
    assert_eq!(
        unix_time(second["expires_at"].as_str().unwrap()),
        app.clock_now() + 3600
    );
    app.clock.advance(50 * 60);
    let third = shop.refresh_ok(&second["refresh_token"]).await;
    shop.assert_live(&third, "100 minutes in, refreshed every 50")
        .await;
}

#[tokio::test]
async fn an_idle_session_ends_after_the_idle_limit() {
    let app = spawn_app_with(&[("POSTERN_SESSION_IDLE_TTL", "1h")]).await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("gia@example.com").await;
    app.clock.advance(50 * 60);
    app.clock.advance(50 * 60);
    let res = shop.refresh(&session["refresh_token"]).await;
    expect_error(res, 400, "invalid_token", "refresh after 100 idle minutes").await;
}

#[tokio::test]
async fn the_apps_session_cap_ends_a_session_despite_refreshes() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.session_max_age = Some(3600)).await;
    let session = shop.sign_in("hub@example.com").await;
    let start = app.clock_now();
    assert_eq!(
        unix_time(session["expires_at"].as_str().unwrap()),
        start + 3600
    );
    app.clock.advance(55 * 60);
    let late = shop.refresh_ok(&session["refresh_token"]).await;
    assert_eq!(
        unix_time(late["expires_at"].as_str().unwrap()),
        start + 3600,
        "a refresh does not move the cap"
    );
    app.clock.advance(6 * 60);
    shop.assert_ended(
        &late,
        "a session token still in its 10 minutes, past the cap",
    )
    .await;
    let res = shop.refresh(&late["refresh_token"]).await;
    expect_error(res, 400, "invalid_token", "refresh past the cap").await;
}

#[tokio::test]
async fn lowering_the_apps_session_cap_ends_older_sessions() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let session = shop.sign_in("ike@example.com").await;
    let start = app.clock_now();
    app.update_app(&shop.client, |s| s.session_max_age = Some(3600))
        .await;
    app.clock.advance(50 * 60);
    let late = shop.refresh_ok(&session["refresh_token"]).await;
    assert_eq!(
        unix_time(late["expires_at"].as_str().unwrap()),
        start + 3600,
        "the new cap counts from the sign-in"
    );
    app.clock.advance(11 * 60);
    let res = shop.refresh(&late["refresh_token"]).await;
    expect_error(res, 400, "invalid_token", "refresh past the lowered cap").await;
}

// ---- app isolation and sign out everywhere ---------------------------------------------

#[tokio::test]
async fn another_app_cannot_see_refresh_or_end_a_session() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let rival = app_server(&app, |_| {}).await;
    let session = shop.sign_in("ida@example.com").await;
    let sid = session["session_id"].as_str().unwrap();
    let uid = session["user"]["id"].as_str().unwrap();
    rival
        .assert_ended(&session, "verify with another app's credentials")
        .await;
    expect_error(
        rival.delete_session(sid).await,
        404,
        "not_found",
        "DELETE by another app",
    )
    .await;
    let refresh = rival.refresh(&session["refresh_token"]).await;
    expect_error(refresh, 400, "invalid_token", "refresh by another app").await;
    let revoke = rival.revoke_user(uid).await;
    assert_eq!(revoke.status(), 204, "nothing of the rival's to revoke");
    shop.assert_live(&session, "the session after the rival's attempts")
        .await;
    let fresh = shop.refresh_ok(&session["refresh_token"]).await;
    shop.assert_live(&fresh, "the refresh token after the rival's attempt")
        .await;
}

#[tokio::test]
async fn another_app_cannot_revoke_a_session_by_replaying_its_used_refresh_token() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let rival = app_server(&app, |_| {}).await;
    let session = shop.sign_in("jan@example.com").await;
    let fresh = shop.refresh_ok(&session["refresh_token"]).await;
    let replay = rival.refresh(&session["refresh_token"]).await;
    expect_error(
        replay,
        400,
        "invalid_token",
        "another app replaying a used token",
    )
    .await;
    shop.assert_live(&fresh, "the session survives").await;
}

#[tokio::test]
async fn signing_a_user_out_everywhere_ends_only_that_apps_sessions() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let forum = app_server(&app, |_| {}).await;
    let laptop = shop.sign_in("kim@example.com").await;
    let phone = shop.sign_in("kim@example.com").await;
    let someone_else = shop.sign_in("lou@example.com").await;
    let at_forum = forum.sign_in("kim@example.com").await;
    assert_eq!(laptop["user"]["id"], phone["user"]["id"]);
    let foreign_ids = [
        (
            "the person's id at another app",
            at_forum["user"]["id"].as_str().unwrap().to_owned(),
        ),
        (
            "the person's internal id",
            app.rows("SELECT id FROM users WHERE email = 'kim@example.com'")
                .await[0][0]
                .clone(),
        ),
    ];
    for (case, id) in foreign_ids {
        assert_eq!(shop.revoke_user(&id).await.status(), 204, "{case}");
        shop.assert_live(&laptop, &format!("after a revoke with {case}"))
            .await;
    }
    let res = shop
        .revoke_user(laptop["user"]["id"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 204);
    for (case, session) in [("the laptop", &laptop), ("the phone", &phone)] {
        shop.assert_ended(session, case).await;
        let refresh = shop.refresh(&session["refresh_token"]).await;
        expect_error(
            refresh,
            400,
            "invalid_token",
            &format!("{case}'s refresh token"),
        )
        .await;
    }
    shop.assert_live(&someone_else, "another person at the same app")
        .await;
    forum
        .assert_live(&at_forum, "the same person at another app")
        .await;
    forum.refresh_ok(&at_forum["refresh_token"]).await;
}

#[tokio::test]
async fn signing_out_everywhere_an_unknown_user_is_204() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    assert_eq!(shop.revoke_user("nobody").await.status(), 204);
}

// ---- limits ------------------------------------------------------------------------------

/// Asserts the SPEC §3.1 429 answer.
async fn assert_throttled(res: Response, context: &str) {
    let retry_after: i64 = res
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{context}: no Retry-After"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=3600).contains(&retry_after),
        "{context}: Retry-After {retry_after}"
    );
    let body = expect_error(res, 429, "too_many_requests", context).await;
    assert_eq!(
        body["error_description"], "Too many magic link requests. Please try again later.",
        "{context}"
    );
}

#[tokio::test]
async fn the_per_app_limit_answers_429_with_retry_after() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.link_requests_per_hour = 2).await;
    let forum = app_server(&app, |_| {}).await;
    shop.ask("mia@example.com").await;
    shop.ask("nia@example.com").await;
    let third = shop
        .ask_raw(&json!({"email": "oda@example.com", "redirect_uri": CALLBACK}))
        .await;
    assert_throttled(third, "the app's third request in an hour").await;
    forum.ask("oda@example.com").await;
    app.clock.advance(3600);
    shop.ask("oda@example.com").await;
}

#[tokio::test]
async fn the_per_person_ip_limit_counts_the_ip_the_app_passes() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_IP_PER_HOUR", "2")]).await;
    let shop = app_server(&app, |_| {}).await;
    let ip = ("ip", "203.0.113.7");
    shop.ask_with("pam@example.com", &[ip]).await;
    shop.ask_with("quy@example.com", &[ip]).await;
    let third = shop
        .ask_raw(&json!({"email": "rex@example.com", "redirect_uri": CALLBACK, "ip": ip.1}))
        .await;
    assert_throttled(third, "a third address from the same person IP").await;
    for (i, other_ip) in ["203.0.113.8", "198.51.100.1", "2001:db8::1"]
        .iter()
        .enumerate()
    {
        shop.ask_with(&format!("other{i}@example.com"), &[("ip", other_ip)])
            .await;
    }
    for i in 0..3 {
        // Without `ip` the app's server is not a person: no per-IP limit.
        shop.ask_with(&format!("noip{i}@example.com"), &[]).await;
    }
}

#[tokio::test]
async fn the_per_email_limit_applies_to_headless_requests() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "2")]).await;
    let shop = app_server(&app, |_| {}).await;
    shop.ask("sol@example.com").await;
    shop.ask_with("sol@example.com", &[("ip", "203.0.113.1")])
        .await;
    let third = shop
        .ask_raw(
            &json!({"email": "SOL@example.com", "redirect_uri": CALLBACK, "ip": "198.51.100.9"}),
        )
        .await;
    assert_throttled(third, "a third link to one address").await;
    shop.ask("tom@example.com").await;
}

#[tokio::test]
async fn a_completed_sign_in_frees_its_slot_in_the_per_email_count() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "2")]).await;
    let shop = app_server(&app, |_| {}).await;
    shop.sign_in("uma@example.com").await;
    shop.ask("uma@example.com").await;
    shop.ask("uma@example.com").await;
    let fourth = shop
        .ask_raw(&json!({"email": "uma@example.com", "redirect_uri": CALLBACK}))
        .await;
    assert_throttled(fourth, "two pending links after a completed sign-in").await;
}

// ---- IP-range binding ---------------------------------------------------------------------

#[tokio::test]
async fn an_ip_bound_app_accepts_a_token_only_from_the_requests_range() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.bind_ip_range = true).await;
    let sent = shop
        .ask_with("uli@example.com", &[("ip", "203.0.113.10")])
        .await;
    let cases = [
        (
            "another /24",
            json!({"token": sent.token, "ip": "203.0.114.10"}),
        ),
        ("no ip", json!({"token": sent.token})),
        (
            "an IPv6 address",
            json!({"token": sent.token, "ip": "2001:db8::1"}),
        ),
    ];
    for (case, body) in cases {
        expect_error(shop.redeem(&body).await, 400, "invalid_token", case).await;
    }
    let session = shop
        .redeem_ok(&json!({"token": sent.token, "ip": "203.0.113.250"}))
        .await;
    assert_eq!(session["user"]["email"], "uli@example.com");
}

#[tokio::test]
async fn an_ip_bound_app_accepts_an_ipv6_token_only_from_the_same_56() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.bind_ip_range = true).await;
    let sent = shop
        .ask_with("val@example.com", &[("ip", "2001:db8:1:100::1")])
        .await;
    let other = shop
        .redeem(&json!({"token": sent.token, "ip": "2001:db8:1:200::1"}))
        .await;
    expect_error(other, 400, "invalid_token", "another /56").await;
    shop.redeem_ok(&json!({"token": sent.token, "ip": "2001:db8:1:1ff::2"}))
        .await;
}

#[tokio::test]
async fn an_ip_bound_app_accepts_a_code_only_from_the_requests_range() {
    let app = spawn_app().await;
    let shop = app_server(&app, |s| s.bind_ip_range = true).await;
    let sent = shop
        .ask_with("wim@example.com", &[("ip", "203.0.113.10")])
        .await;
    let other = shop
        .redeem(&json!({"login_id": sent.login_id, "code": sent.code, "ip": "198.51.100.10"}))
        .await;
    expect_error(other, 400, "invalid_token", "a code from another /24").await;
    shop.redeem_ok(&json!({"login_id": sent.login_id, "code": sent.code, "ip": "203.0.113.11"}))
        .await;
}

// ---- secrets at rest ----------------------------------------------------------------------

#[tokio::test]
async fn tokens_codes_and_session_secrets_are_never_stored_in_plain() {
    let app = spawn_app().await;
    let shop = app_server(&app, |_| {}).await;
    let by_link = shop.ask("xen@example.com").await;
    let by_code = shop.ask("yul@example.com").await;
    let mut secrets = vec![
        by_link.token.trim_start_matches("pml_").to_owned(),
        by_code.token.trim_start_matches("pml_").to_owned(),
    ];
    let codes = [by_link.code.clone(), by_code.code.clone()];
    let check = |what: &str, dump: &str, secrets: &[String]| {
        for s in secrets {
            assert!(!dump.contains(s.as_str()), "{what} holds the secret {s}");
        }
        for c in &codes {
            assert!(!holds_number(dump, c), "{what} holds the code {c}");
        }
    };
    check(
        "the database after the requests",
        &app.dump_database().await,
        &secrets,
    );
    let first = shop.redeem_ok(&json!({"token": by_link.token})).await;
    let second = shop
        .redeem_ok(&json!({"login_id": by_code.login_id, "code": by_code.code}))
        .await;
    let refreshed = shop.refresh_ok(&first["refresh_token"]).await;
    for s in [&first, &second, &refreshed] {
        secrets.push(
            s["refresh_token"]
                .as_str()
                .unwrap()
                .trim_start_matches("prt_")
                .to_owned(),
        );
        let jwt = s["session_token"].as_str().unwrap();
        secrets.push(jwt.rsplit('.').next().unwrap().to_owned());
    }
    check(
        "the database after sign-ins and a refresh",
        &app.dump_database().await,
        &secrets,
    );
}
