//! Black-box tests of the rules of SPEC §2 and §3.2 that an OpenID Provider
//! must enforce: single-use codes bound to client, redirect URI and PKCE;
//! errors that never redirect to unregistered URIs; rotating refresh
//! tokens; forged, expired and signed-out bearer tokens; client
//! authentication; introspection, revocation, logout and CORS. The happy
//! paths, driven by a real client library, are in `oidc.rs`.

mod support;

use postern_core::crypto::sha256_b64;
use postern_core::jose::{self, Alg, KeySet, KeyState, SigningKey};
use postern_store::Queries;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use support::*;

const EMAIL: &str = "bob@example.com";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// A well-formed verifier that does not match [`CHALLENGE`].
const OTHER_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
const APP_ORIGIN: &str = "https://app.example";

/// Form fields or query parameters.
type Pairs<'a> = Vec<(&'a str, &'a str)>;
/// Changes to an authorization request: `None` removes the parameter.
type Changes<'a> = Vec<(&'a str, Option<&'a str>)>;

/// The JSON of a successful token response.
async fn tokens(res: Response, context: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{context}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Signs in at `app` for `client` and exchanges the code: the token response.
async fn signed_in(app: &TestApp, client: &TestClient, scope: &str) -> (reqwest::Client, Value) {
    let (b, code) = app.raw_code(client, EMAIL, scope, Some(CHALLENGE)).await;
    let t = tokens(
        app.exchange_raw(client, &code, Some(VERIFIER)).await,
        "the first exchange",
    )
    .await;
    (b, t)
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

fn assert_no_redirect(res: &Response, context: &str) {
    assert!(
        res.headers().get("location").is_none(),
        "{context}: must not redirect, got Location {:?}",
        res.headers().get("location")
    );
}

/// Asserts a 401 with `WWW-Authenticate: Bearer ...` (RFC 6750 §3).
fn assert_bearer_refused(res: &Response, context: &str) {
    assert_eq!(res.status(), 401, "{context}");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{context}: no WWW-Authenticate"))
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Bearer"), "{context}: {challenge}");
}

// ---- authorization codes ---------------------------------------------------------

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_tokens_it_issued() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, code) = app
        .raw_code(
            &client,
            EMAIL,
            "openid email offline_access",
            Some(CHALLENGE),
        )
        .await;
    let first = tokens(
        app.exchange_raw(&client, &code, Some(VERIFIER)).await,
        "the first exchange",
    )
    .await;
    let replay = app.exchange_raw(&client, &code, Some(VERIFIER)).await;
    expect_error(replay, 400, "invalid_grant", "the second exchange").await;
    let refresh = app
        .refresh_raw(&client, str_of(&first, "refresh_token"))
        .await;
    expect_error(refresh, 400, "invalid_grant", "the first refresh token").await;
    let info = app.userinfo(str_of(&first, "access_token")).await;
    assert_bearer_refused(&info, "the first access token");
}

/// One way of presenting a code that its binding refuses.
struct CodeCase {
    what: &'static str,
    /// PKCE challenge at `/authorize`.
    challenge: Option<&'static str>,
    /// `code_verifier` at `/token`.
    verifier: Option<&'static str>,
    /// `redirect_uri` at `/token`: `None` omits it.
    redirect_uri: Option<&'static str>,
    /// Exchanged by another registered client.
    other_client: bool,
    /// Seconds between the redirect and the exchange.
    wait: i64,
}

#[tokio::test]
async fn a_code_is_refused_unless_client_redirect_uri_and_pkce_all_match() {
    const REGISTERED: &str = "https://app.example/callback";
    let base = CodeCase {
        what: "",
        challenge: Some(CHALLENGE),
        verifier: Some(VERIFIER),
        redirect_uri: Some(REGISTERED),
        other_client: false,
        wait: 0,
    };
    let cases = [
        CodeCase {
            what: "a wrong PKCE verifier",
            verifier: Some(OTHER_VERIFIER),
            ..base
        },
        CodeCase {
            what: "a missing PKCE verifier",
            verifier: None,
            ..base
        },
        CodeCase {
            what: "a malformed PKCE verifier",
            verifier: Some("short"),
            ..base
        },
        CodeCase {
            what: "a verifier for a code issued without a challenge (downgrade)",
            challenge: None,
            ..base
        },
        CodeCase {
            what: "another registered redirect URI",
            redirect_uri: Some("https://app.example/other"),
            ..base
        },
        CodeCase {
            what: "no redirect URI",
            redirect_uri: None,
            ..base
        },
        CodeCase {
            what: "a code issued to another client",
            other_client: true,
            ..base
        },
        CodeCase {
            what: "a code older than 60 seconds",
            wait: 61,
            ..base
        },
    ];
    let app = spawn_oidc_app().await;
    let two_uris = |s: &mut postern_core::AppSettings| {
        s.redirect_uris = vec![
            REGISTERED.to_owned(),
            "https://app.example/other".to_owned(),
        ]
    };
    let client = app.create_app(two_uris).await;
    let other = app.create_app(two_uris).await;
    for (i, case) in cases.iter().enumerate() {
        let email = format!("code{i}@example.com");
        let (_, code) = app
            .raw_code(&client, &email, "openid email", case.challenge)
            .await;
        app.clock.advance(case.wait);
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        if let Some(r) = case.redirect_uri {
            form.push(("redirect_uri", r));
        }
        if let Some(v) = case.verifier {
            form.push(("code_verifier", v));
        }
        let by = if case.other_client { &other } else { &client };
        let res = app.token(by, &form).await;
        expect_error(res, 400, "invalid_grant", case.what).await;
    }
}

#[tokio::test]
async fn token_requests_without_a_usable_grant_are_refused() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let cases: [(&str, Pairs, &str); 5] = [
        (
            "an unknown code",
            vec![
                ("grant_type", "authorization_code"),
                ("code", "not-a-code"),
                ("redirect_uri", "https://app.example/callback"),
            ],
            "invalid_grant",
        ),
        (
            "no code",
            vec![("grant_type", "authorization_code")],
            "invalid_request",
        ),
        ("no grant type", vec![("code", "x")], "invalid_request"),
        (
            "the password grant",
            vec![
                ("grant_type", "password"),
                ("username", "u"),
                ("password", "p"),
            ],
            "unsupported_grant_type",
        ),
        (
            "an unknown refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "prt_nope"),
            ],
            "invalid_grant",
        ),
    ];
    for (what, form, code) in cases {
        expect_error(app.token(&client, &form).await, 400, code, what).await;
    }
}

#[tokio::test]
async fn token_responses_are_never_cached() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, code) = app
        .raw_code(&client, EMAIL, "openid", Some(CHALLENGE))
        .await;
    let res = app.exchange_raw(&client, &code, Some(VERIFIER)).await;
    assert_eq!(res.status(), 200);
    // OIDC Core §3.1.3.3, RFC 6749 §5.1.
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
}

// ---- /authorize errors -------------------------------------------------------------

/// An `/authorize` URL for `client` with `changes` applied (a `None` value
/// removes the parameter).
fn authorize_url(app: &TestApp, client: &TestClient, changes: &[(&str, Option<&str>)]) -> String {
    let mut q: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid email"),
        ("state", "st-9"),
        ("nonce", "n-9"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in changes {
        q.retain(|(name, _)| name != k);
        if let Some(v) = v {
            q.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    app.url(&format!(
        "/authorize?{}",
        serde_urlencoded::to_string(&q).unwrap()
    ))
}

#[tokio::test]
async fn authorization_requests_from_unknown_clients_or_to_unregistered_uris_never_redirect() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let cases = [
        (
            "an unknown client",
            vec![("client_id", Some("nobody"))],
            "invalid_client",
        ),
        ("no client_id", vec![("client_id", None)], "invalid_request"),
        (
            "an unregistered redirect URI",
            vec![("redirect_uri", Some("https://evil.example/callback"))],
            "invalid_redirect_uri",
        ),
        (
            "a registered URI plus a path",
            vec![("redirect_uri", Some("https://app.example/callback/x"))],
            "invalid_redirect_uri",
        ),
        (
            "a registered URI plus a query",
            vec![("redirect_uri", Some("https://app.example/callback?x=1"))],
            "invalid_redirect_uri",
        ),
        (
            "no redirect_uri",
            vec![("redirect_uri", None)],
            "invalid_request",
        ),
    ];
    let b = browser();
    for (what, changes, code) in cases {
        let url = authorize_url(&app, &client, &changes);
        let page = b.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 400, "{what} (HTML)");
        assert_no_redirect(&page, what);
        let json = app.get_json(&b, &url).await;
        assert_no_redirect(&json, what);
        expect_error(json, 400, code, what).await;
    }
}

#[tokio::test]
async fn bad_authorization_requests_are_returned_to_the_app_with_an_error() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let public = app.create_app(|s| s.public = true).await;
    let without_pkce = [("code_challenge", None), ("code_challenge_method", None)];
    let cases: Vec<(&str, &TestClient, Changes, &str)> = vec![
        (
            "a public client without PKCE",
            &public,
            without_pkce.to_vec(),
            "invalid_request",
        ),
        (
            "PKCE plain",
            &client,
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (
            "response_type=token",
            &client,
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            "no response_type",
            &client,
            vec![("response_type", None)],
            "unsupported_response_type",
        ),
        (
            "an unknown prompt",
            &client,
            vec![("prompt", Some("bogus"))],
            "invalid_request",
        ),
        (
            "prompt=none with login",
            &client,
            vec![("prompt", Some("none login"))],
            "invalid_request",
        ),
        (
            "a negative max_age",
            &client,
            vec![("max_age", Some("-1"))],
            "invalid_request",
        ),
        (
            "response_mode=fragment",
            &client,
            vec![("response_mode", Some("fragment"))],
            "invalid_request",
        ),
        (
            "a request object",
            &client,
            vec![("request", Some("eyJhbGciOiJub25lIn0.e30."))],
            "request_not_supported",
        ),
        (
            "prompt=none without a session",
            &client,
            vec![("prompt", Some("none"))],
            "login_required",
        ),
    ];
    for (what, who, changes, code) in cases {
        let res = browser()
            .get(authorize_url(&app, who, &changes))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{what}");
        let to = location(&res);
        assert!(
            to.starts_with(&format!("{}?", who.redirect_uri)),
            "{what}: redirected to {to}"
        );
        let params = location_params(&res);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some(code),
            "{what}: {to}"
        );
        assert!(params.contains_key("error_description"), "{what}: {to}");
        assert_eq!(
            params.get("state").map(String::as_str),
            Some("st-9"),
            "{what}"
        );
        assert_eq!(
            params.get("iss"),
            Some(&app.address),
            "{what}: iss (RFC 9207)"
        );
        assert!(!params.contains_key("code"), "{what}");
    }
}

#[tokio::test]
async fn prompt_none_for_a_third_party_app_not_yet_allowed_returns_consent_required() {
    let app = spawn_oidc_app().await;
    let first = app.create_app(|_| {}).await;
    let third = app.create_app(|s| s.first_party = false).await;
    let (b, _) = app.raw_code(&first, EMAIL, "openid email", None).await;
    let res = b
        .get(authorize_url(&app, &third, &[("prompt", Some("none"))]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let params = location_params(&res);
    assert_eq!(params["error"], "consent_required", "{params:?}");
    assert_eq!(params["iss"], app.address);
}

// ---- refresh tokens ----------------------------------------------------------------

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, first) = signed_in(&app, &client, "openid email offline_access").await;
    let old = str_of(&first, "refresh_token");
    let second = tokens(app.refresh_raw(&client, old).await, "the first refresh").await;
    let newest = str_of(&second, "refresh_token");
    assert_ne!(newest, old, "refresh tokens rotate");

    let reuse = app.refresh_raw(&client, old).await;
    expect_error(reuse, 400, "invalid_grant", "the used refresh token").await;
    let after = app.refresh_raw(&client, newest).await;
    expect_error(
        after,
        400,
        "invalid_grant",
        "the newest token of the family",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_token_works_only_for_its_client_and_its_scope() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let (_, first) = signed_in(&app, &client, "openid offline_access").await;
    let rt = str_of(&first, "refresh_token");
    let res = app.refresh_raw(&other, rt).await;
    expect_error(res, 400, "invalid_grant", "another client's refresh token").await;
    let wider = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("scope", "openid email offline_access"),
            ],
        )
        .await;
    expect_error(wider, 400, "invalid_scope", "more scope than granted").await;
    // Neither refusal used the token up.
    tokens(app.refresh_raw(&client, rt).await, "the owner's refresh").await;
}

// ---- bearer tokens at /userinfo ------------------------------------------------------

/// `claims` signed with a fresh Ed25519 key that Postern never published,
/// under `kid`.
fn signed_by_a_stranger(kid: &str, claims: &Value) -> String {
    let generated = jose::generate(Alg::EdDSA);
    let key = SigningKey::new(
        kid,
        Alg::EdDSA,
        KeyState::Active,
        generated.private_pkcs8.expose_secret(),
    )
    .unwrap();
    KeySet { keys: vec![key] }
        .sign(Alg::EdDSA, "at+jwt", claims)
        .unwrap()
}

#[tokio::test]
async fn forged_access_tokens_are_refused_at_userinfo() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid email").await;
    let real = str_of(&t, "access_token").to_owned();
    let header = jwt_header(&real);
    let claims = jwt_claims(&real);
    let signature = real.rsplit('.').next().unwrap().to_owned();
    let kid = header["kid"].as_str().unwrap();

    let mut altered = claims.clone();
    altered["scope"] = json!("openid email profile");
    let mut none = header.clone();
    none["alg"] = json!("none");
    let mut hs256 = header.clone();
    hs256["alg"] = json!("HS256");
    let mut later = claims.clone();
    later["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);

    let cases = [
        (
            "signed by a key not in the JWKS",
            signed_by_a_stranger("stranger", &claims),
        ),
        (
            "signed by a foreign key under a published kid",
            signed_by_a_stranger(kid, &claims),
        ),
        ("alg none without a signature", compact(&none, &claims, "")),
        (
            "alg none with the real signature",
            compact(&none, &claims, &signature),
        ),
        ("alg HS256", compact(&hs256, &claims, &signature)),
        ("an altered scope", compact(&header, &altered, &signature)),
        ("a later expiry", compact(&header, &later, &signature)),
        ("the ID token instead", str_of(&t, "id_token").to_owned()),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, token) in cases {
        let res = app.userinfo(&token).await;
        assert_bearer_refused(&res, what);
        expect_error(res, 401, "invalid_token", what).await;
    }
    let res = back_channel()
        .get(app.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_bearer_refused(&res, "no token at all");
    // The real one still works.
    assert_eq!(app.userinfo(&real).await.status(), 200);
}

#[tokio::test]
async fn an_access_token_is_refused_once_it_expires() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid email").await;
    let access = str_of(&t, "access_token");
    app.clock.advance(599);
    assert_eq!(app.userinfo(access).await.status(), 200, "at 599 s");
    app.clock.advance(2);
    assert_bearer_refused(&app.userinfo(access).await, "at 601 s");
}

#[tokio::test]
async fn userinfo_refuses_access_tokens_of_a_signed_out_session() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, t) = signed_in(&app, &client, "openid email").await;
    let access = str_of(&t, "access_token");
    assert_eq!(app.userinfo(access).await.status(), 200);
    log_out(&app, &b).await;
    assert_bearer_refused(&app.userinfo(access).await, "after /logout");
}

// ---- logout --------------------------------------------------------------------------

/// `/logout` without an `id_token_hint`, confirmed on the page it shows
/// (RP-Initiated Logout 1.0 §2: without a hint the person is asked first).
async fn log_out(app: &TestApp, b: &reqwest::Client) {
    let res = b.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the confirmation page");
    let form = hidden_inputs(&res.text().await.unwrap());
    let res = b.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200, "the signed-out page");
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_uri() {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec!["https://app.example/bye".into()])
        .await;
    let other = app
        .create_app(|s| s.post_logout_redirect_uris = vec!["https://other.example/bye".into()])
        .await;
    let (b, t) = signed_in(&app, &client, "openid").await;
    let hint = str_of(&t, "id_token");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "an unregistered URI with a hint",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
            ],
        ),
        (
            "another app's URI with this app's hint",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
        ),
        (
            "another app's URI with this app's client_id",
            vec![
                ("client_id", client.client_id.as_str()),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
        ),
        (
            "a registered URI with neither hint nor client",
            vec![("post_logout_redirect_uri", "https://app.example/bye")],
        ),
        (
            "a hint that is not an ID token",
            vec![
                ("id_token_hint", "garbage"),
                ("post_logout_redirect_uri", "https://app.example/bye"),
            ],
        ),
        (
            "a hint contradicting client_id",
            vec![
                ("id_token_hint", hint),
                ("client_id", other.client_id.as_str()),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
        ),
    ];
    for (what, query) in cases {
        let res = b
            .get(app.url("/logout"))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{what}");
        assert_no_redirect(&res, what);
    }
    // None of these ended the session.
    assert_eq!(app.userinfo(str_of(&t, "access_token")).await.status(), 200);
}

// ---- client authentication -------------------------------------------------------------

#[tokio::test]
async fn failed_client_authentication_is_401_invalid_client_with_a_challenge() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let public = app.create_app(|s| s.public = true).await;
    let id = client.client_id.as_str();
    let secret = client.secret.as_deref().unwrap();
    let http = back_channel();
    let grant = [("grant_type", "refresh_token"), ("refresh_token", "prt_x")];
    let cases: Vec<(&str, &str, Option<String>, Pairs)> = vec![
        (
            "/token: a wrong secret (Basic)",
            "/token",
            Some(basic(id, "wrong")),
            vec![],
        ),
        (
            "/token: a wrong secret (post)",
            "/token",
            None,
            vec![("client_id", id), ("client_secret", "wrong")],
        ),
        (
            "/token: an unknown client",
            "/token",
            Some(basic("nobody", secret)),
            vec![],
        ),
        ("/token: no credentials", "/token", None, vec![]),
        ("/token: no secret", "/token", None, vec![("client_id", id)]),
        (
            "/token: a public client with a secret",
            "/token",
            Some(basic(&public.client_id, "anything")),
            vec![],
        ),
        (
            "/token: a Basic id contradicting the form",
            "/token",
            Some(basic(id, secret)),
            vec![("client_id", public.client_id.as_str())],
        ),
        (
            "/token: not Basic",
            "/token",
            Some("Bearer x".into()),
            vec![],
        ),
        (
            "/revoke: a wrong secret",
            "/revoke",
            Some(basic(id, "wrong")),
            vec![("token", "prt_x")],
        ),
        (
            "/introspect: a wrong secret",
            "/introspect",
            Some(basic(id, "wrong")),
            vec![("token", "prt_x")],
        ),
        (
            "/introspect: a public client",
            "/introspect",
            None,
            vec![("client_id", public.client_id.as_str()), ("token", "prt_x")],
        ),
    ];
    for (what, path, authorization, extra) in cases {
        let mut form: Vec<(&str, &str)> = if path == "/token" {
            grant.to_vec()
        } else {
            vec![]
        };
        form.extend(extra);
        let mut req = http.post(app.url(path)).form(&form);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert!(
            res.headers().contains_key("www-authenticate"),
            "{what}: WWW-Authenticate"
        );
        expect_error(res, 401, "invalid_client", what).await;
    }
}

#[tokio::test]
async fn a_form_encoded_basic_secret_with_reserved_characters_is_accepted() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let secret = "a:b+c%d é";
    app.state
        .store
        .conn()
        .await
        .unwrap()
        .add_app_secret(
            &client.client_id,
            &sha256_b64(secret.as_bytes()),
            app.clock_now(),
        )
        .await
        .unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "prt_x")];
    let cases = [
        ("the encoded secret", basic(&client.client_id, secret), 400),
        (
            "the registered secret still",
            basic(&client.client_id, client.secret.as_deref().unwrap()),
            400,
        ),
        (
            "the secret without its encoding",
            format!(
                "Basic {}",
                b64_standard(format!("{}:{secret}", client.client_id).as_bytes())
            ),
            401,
        ),
    ];
    for (what, authorization, status) in cases {
        let res = back_channel()
            .post(app.url("/token"))
            .header("authorization", authorization)
            .form(&form)
            .send()
            .await
            .unwrap();
        // Authenticated clients get past to the grant (invalid_grant).
        assert_eq!(res.status(), status, "{what}");
    }
}

// ---- introspection and revocation ------------------------------------------------------

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let res = app.token_endpoint("/introspect", client, token).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn introspection_shows_live_tokens_as_active_to_their_client_only() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid email offline_access").await;
    for (what, field, token_type) in [
        ("the access token", "access_token", "access_token"),
        ("the refresh token", "refresh_token", "refresh_token"),
    ] {
        let token = str_of(&t, field);
        let info = introspect(&app, &client, token).await;
        assert_eq!(info["active"], true, "{what}: {info}");
        assert_eq!(info["token_type"], token_type, "{what}");
        assert_eq!(info["client_id"], client.client_id.as_str(), "{what}");
        assert!(
            info["sub"].is_string() && info["exp"].is_i64(),
            "{what}: {info}"
        );
        let foreign = introspect(&app, &other, token).await;
        assert_eq!(
            foreign,
            json!({"active": false}),
            "{what} to another client"
        );
    }
    let junk = introspect(&app, &client, "garbage").await;
    assert_eq!(junk, json!({"active": false}));
}

#[tokio::test]
async fn introspection_shows_tokens_inactive_after_logout() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, t) = signed_in(&app, &client, "openid offline_access").await;
    log_out(&app, &b).await;
    for field in ["access_token", "refresh_token"] {
        let info = introspect(&app, &client, str_of(&t, field)).await;
        assert_eq!(info, json!({"active": false}), "{field} after logout");
    }
    let res = app.refresh_raw(&client, str_of(&t, "refresh_token")).await;
    expect_error(res, 400, "invalid_grant", "refresh after logout").await;
}

#[tokio::test]
async fn a_revoked_refresh_token_no_longer_refreshes() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid offline_access").await;
    let rt = str_of(&t, "refresh_token");
    let res = app.token_endpoint("/revoke", &client, rt).await;
    assert_eq!(res.status(), 200);
    let info = introspect(&app, &client, rt).await;
    assert_eq!(info, json!({"active": false}));
    let res = app.refresh_raw(&client, rt).await;
    expect_error(res, 400, "invalid_grant", "a revoked refresh token").await;
}

#[tokio::test]
async fn revoking_unknown_tokens_or_another_clients_tokens_is_a_quiet_no_op() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid offline_access").await;
    let rt = str_of(&t, "refresh_token");
    for (what, by, token) in [
        ("an unknown token", &client, "prt_unknown"),
        ("garbage", &client, "garbage"),
        ("another client's refresh token", &other, rt),
    ] {
        let res = app.token_endpoint("/revoke", by, token).await;
        assert_eq!(res.status(), 200, "{what} (RFC 7009 §2.2)");
    }
    tokens(
        app.refresh_raw(&client, rt).await,
        "the untouched refresh token",
    )
    .await;
}

// ---- CORS --------------------------------------------------------------------------------

#[tokio::test]
async fn only_registered_origins_get_cors_and_only_on_the_api_endpoints() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let http = back_channel();
    let auth = authorize_url(&app, &client, &[]);
    let cases = [
        (
            "/jwks.json from an unregistered origin",
            http.get(app.url("/jwks.json")),
            "https://evil.example",
        ),
        (
            "/token from an unregistered origin",
            http.post(app.url("/token")),
            "https://evil.example",
        ),
        (
            "/token from a registered origin's look-alike",
            http.post(app.url("/token")),
            "https://app.example.evil.example",
        ),
        (
            "/authorize from a registered origin",
            http.get(&auth),
            APP_ORIGIN,
        ),
        (
            "/introspect from a registered origin",
            http.post(app.url("/introspect")),
            APP_ORIGIN,
        ),
        (
            "/login from a registered origin",
            http.get(app.url("/login")),
            APP_ORIGIN,
        ),
    ];
    for (what, req, origin) in cases {
        let res = req.header("origin", origin).send().await.unwrap();
        for h in [
            "access-control-allow-origin",
            "access-control-allow-credentials",
        ] {
            assert!(res.headers().get(h).is_none(), "{what}: {h}");
        }
    }
    let preflight = http
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "a preflight from an unregistered origin"
    );
}

// ---- sessions behind codes and refresh tokens ------------------------------------------

#[tokio::test]
async fn a_code_whose_session_has_signed_out_is_refused() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, code) = app
        .raw_code(&client, EMAIL, "openid", Some(CHALLENGE))
        .await;
    log_out(&app, &b).await;
    let res = app.exchange_raw(&client, &code, Some(VERIFIER)).await;
    expect_error(res, 400, "invalid_grant", "a code of an ended session").await;
}

#[tokio::test]
async fn refresh_tokens_keep_a_session_alive_but_not_past_its_absolute_cap() {
    const DAY: i64 = 86_400;
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid offline_access").await;
    let mut rt = str_of(&t, "refresh_token").to_owned();
    // Sliding: each refresh within 30 days of the last keeps it going.
    for day in [20, 40, 60, 80] {
        app.clock.advance(20 * DAY);
        let next = tokens(app.refresh_raw(&client, &rt).await, &format!("day {day}")).await;
        rt = str_of(&next, "refresh_token").to_owned();
    }
    app.clock.advance(11 * DAY);
    let res = app.refresh_raw(&client, &rt).await;
    expect_error(res, 400, "invalid_grant", "day 91, past the 90-day cap").await;
}

#[tokio::test]
async fn a_refresh_token_idle_longer_than_the_session_allows_is_refused() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid offline_access").await;
    app.clock.advance(30 * 86_400 + 1);
    let res = app.refresh_raw(&client, str_of(&t, "refresh_token")).await;
    expect_error(res, 400, "invalid_grant", "after 30 idle days").await;
}

#[tokio::test]
async fn an_app_with_a_shorter_session_cap_needs_a_fresh_sign_in_after_it() {
    let app = spawn_oidc_app().await;
    let lax = app.create_app(|_| {}).await;
    let strict = app.create_app(|s| s.session_max_age = Some(3600)).await;
    let (b, _) = app.raw_code(&lax, EMAIL, "openid", None).await;
    let (_, code) = {
        let res = b
            .get(authorize_url(
                &app,
                &strict,
                &[("scope", Some("openid offline_access"))],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        (b.clone(), location_params(&res)["code"].clone())
    };
    let t = tokens(
        app.exchange_raw(&strict, &code, Some(VERIFIER)).await,
        "within the cap",
    )
    .await;
    app.clock.advance(3601);
    let res = b
        .get(authorize_url(&app, &strict, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(&app.url("/login?")),
        "past the app's cap: {}",
        location(&res)
    );
    let res = app.refresh_raw(&strict, str_of(&t, "refresh_token")).await;
    expect_error(res, 400, "invalid_grant", "refresh past the app's cap").await;
    // The other app still signs in by single sign-on.
    let res = b.get(authorize_url(&app, &lax, &[])).send().await.unwrap();
    assert!(location_params(&res).contains_key("code"));
}

#[tokio::test]
async fn prompt_none_with_a_session_older_than_max_age_returns_login_required() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, _) = app.raw_code(&client, EMAIL, "openid", None).await;
    app.clock.advance(120);
    let res = b
        .get(authorize_url(
            &app,
            &client,
            &[("prompt", Some("none")), ("max_age", Some("60"))],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location_params(&res)["error"], "login_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_ten_concurrent_exchanges_of_one_code_exactly_one_succeeds() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, code) = app
        .raw_code(&client, EMAIL, "openid", Some(CHALLENGE))
        .await;
    let app = std::sync::Arc::new(app);
    let tries: Vec<_> = (0..10)
        .map(|_| {
            let (app, client, code) = (app.clone(), client.clone(), code.clone());
            tokio::spawn(async move {
                app.exchange_raw(&client, &code, Some(VERIFIER))
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400, 400, 400]);
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive() {
    // RFC 7235 §2.1: the auth-scheme is a case-insensitive token.
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid").await;
    let access = str_of(&t, "access_token");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = back_channel()
            .get(app.url("/userinfo"))
            .header("authorization", format!("{scheme} {access}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme}");
    }
    let credentials = basic(&client.client_id, client.secret.as_deref().unwrap());
    let encoded = credentials.strip_prefix("Basic ").unwrap();
    for scheme in ["Basic", "basic", "BASIC"] {
        let res = back_channel()
            .post(app.url("/token"))
            .header("authorization", format!("{scheme} {encoded}"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "prt_x")])
            .send()
            .await
            .unwrap();
        // Authenticated: refused for the grant, not the client.
        expect_error(res, 400, "invalid_grant", scheme).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_refreshes_with_one_token_count_as_reuse() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (_, t) = signed_in(&app, &client, "openid offline_access").await;
    let rt = str_of(&t, "refresh_token").to_owned();
    let app = std::sync::Arc::new(app);
    let tries: Vec<_> = (0..2)
        .map(|_| {
            let (app, client, rt) = (app.clone(), client.clone(), rt.clone());
            tokio::spawn(async move {
                let res = app.refresh_raw(&client, &rt).await;
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tries {
        answers.push(t.await.unwrap());
    }
    answers.sort_by_key(|(status, _)| *status);
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 400], "{answers:?}");
    // The loser saw a used token: the winner's new token is revoked too.
    let newest = str_of(&answers[0].1, "refresh_token");
    let res = app.refresh_raw(&client, newest).await;
    expect_error(res, 400, "invalid_grant", "the winner's new token").await;
}
