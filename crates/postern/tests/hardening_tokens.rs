//! Black-box tests of issue 10, items 9 to 11: `POST /userinfo` as OIDC
//! Core §5.3.1 and RFC 6750 §2 define it, access tokens revocable at
//! `/revoke` (RFC 7009), and private tokens (SPEC §2): access tokens and
//! headless session tokens carry no personal data unless the app opted in
//! with `token_email`.

mod support;

use std::collections::BTreeSet;

use postern_store::Queries as _;
use reqwest::Response;
use serde_json::{json, Value};
use support::*;

const EMAIL: &str = "tina@example.com";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// What an access token may hold without `token_email` (SPEC §2).
const ACCESS_CLAIMS: &[&str] = &[
    "amr",
    "aud",
    "client_id",
    "exp",
    "iat",
    "iss",
    "jti",
    "scope",
    "sid",
    "sub",
];
/// What a headless session token may hold without `token_email` (SPEC §2).
const SESSION_CLAIMS: &[&str] = &["amr", "aud", "exp", "iat", "iss", "jti", "sid", "sub"];

// ---- helpers -------------------------------------------------------------------

/// Signs `email` in for `client` through `/authorize` and exchanges the
/// code: the token response.
async fn tokens_for(app: &TestApp, client: &TestClient, email: &str, scope: &str) -> Value {
    let (_, code) = app.raw_code(client, email, scope, Some(CHALLENGE)).await;
    let res = app.exchange_raw(client, &code, Some(VERIFIER)).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "the code exchange: {body}");
    serde_json::from_str(&body).unwrap()
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// The names of a JWT's claims, read without verifying it (as anyone
/// holding the token can).
fn claim_names(token: &str) -> BTreeSet<String> {
    jwt_claims(token)
        .as_object()
        .expect("an object of claims")
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `POST /userinfo` with an optional Bearer header, `Content-Type` and body.
async fn post_userinfo(
    app: &TestApp,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Response {
    let mut req = back_channel().post(app.url("/userinfo"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(body.to_owned()).send().await.unwrap()
}

async fn json_ok(res: Response, context: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{context}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    json_ok(
        app.token_endpoint("/introspect", client, token).await,
        "/introspect",
    )
    .await
}

/// An app's server using the headless API (HTTP Basic as the app).
struct Headless<'a> {
    app: &'a TestApp,
    client: TestClient,
}

impl Headless<'_> {
    async fn post(&self, path: &str, body: &Value) -> Response {
        let secret = self.client.secret.as_deref().expect("a confidential app");
        back_channel()
            .post(self.app.url(path))
            .header("authorization", basic(&self.client.client_id, secret))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Asks for a link for `email` and redeems the emailed token: the session.
    async fn sign_in(&self, email: &str) -> Value {
        let before = self.app.inbox();
        let res = self
            .post(
                "/api/v1/magic-links",
                &json!({"email": email, "redirect_uri": self.client.redirect_uri}),
            )
            .await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
        let mail = self.app.new_email_to(&before, email).await;
        let link = mail
            .text
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '"'))
            .find(|w| w.contains("?token=pml_"))
            .unwrap_or_else(|| panic!("no headless link in: {}", mail.text));
        let res = self
            .post(
                "/api/v1/magic-links/verify",
                &json!({"token": token_of(link)}),
            )
            .await;
        json_ok(res, "the headless verify").await
    }
}

// ---- 9. POST /userinfo -----------------------------------------------------------

#[tokio::test]
async fn post_userinfo_with_a_bearer_header_and_an_empty_body_answers_the_claims() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    let expected = json_ok(app.userinfo(access).await, "GET /userinfo").await;
    assert_eq!(expected["email"], EMAIL);
    assert!(expected["sub"].is_string(), "{expected}");
    let cases = [
        ("no Content-Type and an empty body", None, ""),
        (
            "an empty form body",
            Some("application/x-www-form-urlencoded"),
            "",
        ),
        (
            "a form body without access_token",
            Some("application/x-www-form-urlencoded"),
            "foo=bar",
        ),
        (
            "a JSON body, which is not read",
            Some("application/json"),
            "{\"access_token\": \"ignored\"}",
        ),
    ];
    for (what, content_type, body) in cases {
        let res = post_userinfo(&app, Some(access), content_type, body).await;
        let info = json_ok(res, what).await;
        assert_eq!(info, expected, "{what}");
    }
}

#[tokio::test]
async fn post_userinfo_with_the_access_token_in_the_form_answers_the_claims() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    let form = serde_urlencoded::to_string([("access_token", access)]).unwrap();
    for content_type in [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
    ] {
        let res = post_userinfo(&app, None, Some(content_type), &form).await;
        let info = json_ok(res, content_type).await;
        assert_eq!(info["email"], EMAIL, "{content_type}");
        assert_eq!(info["email_verified"], true, "{content_type}");
        assert_eq!(
            info["sub"],
            jwt_claims(access)["sub"],
            "{content_type}: the token's subject"
        );
    }
}

#[tokio::test]
async fn post_userinfo_takes_one_token_in_one_place() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    let form = serde_urlencoded::to_string([("access_token", access)]).unwrap();
    let form_ct = Some("application/x-www-form-urlencoded");

    // RFC 6750 §2: a client must not use more than one method per request.
    let res = post_userinfo(&app, Some(access), form_ct, &form).await;
    expect_error(res, 400, "invalid_request", "header and form token").await;
    let twice = format!("{form}&{form}");
    let res = post_userinfo(&app, None, form_ct, &twice).await;
    expect_error(res, 400, "invalid_request", "access_token twice").await;

    // No token: RFC 6750 §3.1, a challenge without an error code.
    for (what, content_type, body) in [
        ("an empty body", None, String::new()),
        (
            "a token in a JSON body",
            Some("application/json"),
            json!({"access_token": access}).to_string(),
        ),
        ("a token in a text body", Some("text/plain"), form.clone()),
    ] {
        let res = post_userinfo(&app, None, content_type, &body).await;
        assert_eq!(res.status(), 401, "{what}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer") && !challenge.contains("error="),
            "{what}: {challenge}"
        );
    }

    // A bad token in the form is a bad token.
    let res = post_userinfo(&app, None, form_ct, "access_token=garbage").await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

// ---- 10. revoking access tokens --------------------------------------------------

#[tokio::test]
async fn a_revoked_access_token_is_inactive_at_introspect_and_refused_at_userinfo() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email offline_access").await;
    let access = str_of(&t, "access_token");
    assert_eq!(introspect(&app, &client, access).await["active"], true);
    assert_eq!(app.userinfo(access).await.status(), 200);

    let res = app.token_endpoint("/revoke", &client, access).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    assert_eq!(
        introspect(&app, &client, access).await,
        json!({"active": false})
    );
    let res = app.userinfo(access).await;
    assert_eq!(res.status(), 401, "GET /userinfo with the revoked token");
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let form = serde_urlencoded::to_string([("access_token", access)]).unwrap();
    let res = post_userinfo(&app, None, Some("application/x-www-form-urlencoded"), &form).await;
    assert_eq!(res.status(), 401, "POST /userinfo with the revoked token");
    let res = app.token_endpoint("/revoke", &client, access).await;
    assert_eq!(res.status(), 200, "revoking again is fine (RFC 7009 §2.2)");

    // Refresh tokens and the session are untouched.
    let rt = str_of(&t, "refresh_token");
    assert_eq!(introspect(&app, &client, rt).await["active"], true);
    let next = json_ok(app.refresh_raw(&client, rt).await, "refresh").await;
    let fresh = str_of(&next, "access_token");
    assert_eq!(
        app.userinfo(fresh).await.status(),
        200,
        "a new access token"
    );
    assert_eq!(introspect(&app, &client, fresh).await["active"], true);
}

#[tokio::test]
async fn the_denylist_holds_the_jti_until_the_token_expires_and_is_then_purged() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    let claims = jwt_claims(access);
    let res = app.token_endpoint("/revoke", &client, access).await;
    assert_eq!(res.status(), 200);

    let rows = app
        .rows("SELECT jti, expires_at FROM revoked_access_tokens")
        .await;
    assert_eq!(
        rows,
        [vec![
            claims["jti"].as_str().unwrap().to_owned(),
            claims["exp"].to_string()
        ]],
        "one row: the jti until the token's exp"
    );
    assert!(
        !app.dump_database().await.contains(access),
        "the token itself is not stored"
    );

    // What the background purge task runs: nothing goes while the token
    // could still be accepted, the row goes once it expired (an hour's
    // grace, as for other rows).
    let exp = claims["exp"].as_i64().unwrap();
    let mut conn = app.state.store.conn().await.unwrap();
    let purged = conn.purge_expired(exp, 0).await.unwrap();
    assert_eq!(purged.revoked_access_tokens, 0, "not before it expired");
    let purged = conn.purge_expired(exp + 3601, 0).await.unwrap();
    assert_eq!(purged.revoked_access_tokens, 1, "once expired");
    assert_eq!(app.count("revoked_access_tokens").await, 0);
}

#[tokio::test]
async fn revoking_an_access_token_of_another_client_or_a_bad_one_changes_nothing() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let public = app.create_app(|s| s.public = true).await;
    let t = tokens_for(&app, &client, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    let mut tampered = jwt_claims(access);
    tampered["client_id"] = json!(other.client_id);
    let signature = access.rsplit('.').next().unwrap();
    let forged = compact(&jwt_header(access), &tampered, signature);
    let too_long = format!("{access}{}", "A".repeat(10_000));
    for (what, by, token) in [
        ("another confidential client", &other, access),
        ("a public client", &public, access),
        ("a forged copy naming the other client", &other, &forged),
        ("a token of 10 kB", &client, &too_long),
        ("garbage", &client, "garbage"),
    ] {
        let res = app.token_endpoint("/revoke", by, token).await;
        assert_eq!(res.status(), 200, "{what} (RFC 7009 §2.2)");
    }
    assert_eq!(app.count("revoked_access_tokens").await, 0);
    assert_eq!(app.userinfo(access).await.status(), 200);
    assert_eq!(introspect(&app, &client, access).await["active"], true);

    // An expired token: nothing to deny any more.
    app.clock.advance(601);
    let res = app.token_endpoint("/revoke", &client, access).await;
    assert_eq!(res.status(), 200, "an expired token");
    assert_eq!(app.count("revoked_access_tokens").await, 0);
}

// ---- 11. private tokens ----------------------------------------------------------

#[tokio::test]
async fn access_tokens_hold_no_email_unless_the_app_opted_in() {
    let app = spawn_oidc_app().await;
    let private = app.create_app(|_| {}).await;
    let t = tokens_for(&app, &private, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    assert_eq!(
        claim_names(access),
        names(ACCESS_CLAIMS),
        "{}",
        jwt_claims(access)
    );
    assert!(!jwt_claims(access).to_string().contains(EMAIL));
    assert_eq!(jwt_claims(access)["amr"], json!(["email"]));
    // The ID token keeps the address (OIDC Core with the email scope), and
    // so does userinfo.
    assert_eq!(jwt_claims(str_of(&t, "id_token"))["email"], EMAIL);
    let info = json_ok(app.userinfo(access).await, "userinfo").await;
    assert_eq!(info["email"], EMAIL);

    let opted_in = app.create_app(|s| s.token_email = true).await;
    let t = tokens_for(&app, &opted_in, EMAIL, "openid email").await;
    let access = str_of(&t, "access_token");
    assert_eq!(jwt_claims(access)["email"], EMAIL, "token_email");
    let mut expected = names(ACCESS_CLAIMS);
    expected.insert("email".into());
    assert_eq!(claim_names(access), expected);

    // token_email never adds what the person did not grant.
    let t = tokens_for(&app, &opted_in, "uma@example.com", "openid").await;
    let access = str_of(&t, "access_token");
    assert_eq!(
        claim_names(access),
        names(ACCESS_CLAIMS),
        "without the email scope"
    );
}

#[tokio::test]
async fn headless_session_tokens_hold_no_email_unless_the_app_opted_in() {
    let app = spawn_app().await;
    let private = Headless {
        app: &app,
        client: app.create_app(|_| {}).await,
    };
    let session = private.sign_in(EMAIL).await;
    assert_eq!(session["user"]["email"], EMAIL, "the JSON answer keeps it");
    let token = str_of(&session, "session_token");
    assert_eq!(
        claim_names(token),
        names(SESSION_CLAIMS),
        "{}",
        jwt_claims(token)
    );
    assert!(!jwt_claims(token).to_string().contains(EMAIL));

    // Online verification still tells the app who it is.
    let res = private
        .post("/api/v1/sessions/verify", &json!({"session_token": token}))
        .await;
    let verified = json_ok(res, "sessions/verify").await;
    assert_eq!(verified["user"]["email"], EMAIL);
    assert_eq!(verified["user"]["id"], session["user"]["id"]);

    // And a refreshed token is just as private.
    let res = private
        .post(
            "/api/v1/sessions/refresh",
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    let refreshed = json_ok(res, "sessions/refresh").await;
    assert_eq!(refreshed["user"]["email"], EMAIL);
    let token = str_of(&refreshed, "session_token");
    assert_eq!(claim_names(token), names(SESSION_CLAIMS));
    assert_ne!(
        jwt_claims(token)["jti"],
        jwt_claims(str_of(&session, "session_token"))["jti"],
        "each token its own jti"
    );

    let opted_in = Headless {
        app: &app,
        client: app.create_app(|s| s.token_email = true).await,
    };
    let session = opted_in.sign_in("vic@example.com").await;
    let token = str_of(&session, "session_token");
    assert_eq!(jwt_claims(token)["email"], "vic@example.com", "token_email");
    let mut expected = names(SESSION_CLAIMS);
    expected.insert("email".into());
    assert_eq!(claim_names(token), expected);
}

#[tokio::test]
async fn turning_token_email_on_or_off_applies_to_the_next_token() {
    let app = spawn_app().await;
    let shop = Headless {
        app: &app,
        client: app.create_app(|_| {}).await,
    };
    let session = shop.sign_in(EMAIL).await;
    app.update_app(&shop.client, |s| s.token_email = true).await;
    let res = shop
        .post(
            "/api/v1/sessions/refresh",
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    let refreshed = json_ok(res, "refresh after opting in").await;
    assert_eq!(
        jwt_claims(str_of(&refreshed, "session_token"))["email"],
        EMAIL
    );
    app.update_app(&shop.client, |s| s.token_email = false)
        .await;
    let res = shop
        .post(
            "/api/v1/sessions/refresh",
            &json!({"refresh_token": refreshed["refresh_token"]}),
        )
        .await;
    let again = json_ok(res, "refresh after opting out").await;
    assert_eq!(
        claim_names(str_of(&again, "session_token")),
        names(SESSION_CLAIMS)
    );
}
