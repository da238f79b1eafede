//! Black-box tests of SPEC §3.2 with a real relying party: the
//! `openidconnect` crate discovers Postern, sends a person's browser through
//! `/authorize`, `/login` and the emailed link, exchanges the code with PKCE,
//! verifies the ID token against `/jwks.json`, calls `/userinfo` and
//! refreshes. Also single sign-on, prompts, consent, claims, discovery, CORS,
//! key rotation and logout. Refusals are in `oidc_rules.rs`.

mod support;

use openidconnect::core::{CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{Nonce, OAuth2TokenResponse, TokenResponse};
use postern_core::crypto::sha256_b64;
use postern_core::{IdTokenAlg, SubjectType};
use postern_store::Queries;
use serde_json::Value;
use support::*;

const EMAIL: &str = "alice@example.com";
const APP_ORIGIN: &str = "https://app.example";

/// A nonce verifier for refreshed ID tokens, which carry none.
fn no_nonce(n: Option<&Nonce>) -> Result<(), String> {
    match n {
        None => Ok(()),
        Some(_) => Err("a refreshed ID token carries no nonce".into()),
    }
}

// ---- the whole flow, through the library --------------------------------------

/// Discovery → authorize (PKCE S256, nonce, state) → link → code exchange →
/// ID token verified against the JWKS → userinfo → refresh.
async fn full_flow(public: bool, alg: IdTokenAlg) {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| {
            s.public = public;
            s.id_token_alg = alg;
        })
        .await;
    assert_eq!(client.secret.is_none(), public);
    let rp = app.relying_party(&client).await;
    let b = browser();
    let mut req = rp.auth_request(&["email", "offline_access"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, EMAIL, Proof::Link)
        .await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;

    let id_token = tokens.id_token().expect("an ID token");
    let expected_alg = match alg {
        IdTokenAlg::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        IdTokenAlg::EdDSA => CoreJwsSigningAlgorithm::EdDsa,
        IdTokenAlg::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    };
    assert_eq!(id_token.signing_alg().unwrap(), &expected_alg);
    let verifier = app.id_token_verifier(&rp);
    let claims = id_token
        .claims(&verifier, &req.nonce)
        .unwrap_or_else(|e| panic!("the ID token verifies: {}", describe(&e)));
    assert_eq!(claims.issuer().as_str(), app.address);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(claims.email_verified(), Some(true));
    let auth_time = claims.auth_time().expect("auth_time is set").timestamp();
    assert_eq!(auth_time, app.clock_now());
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["amr"], serde_json::json!(["email"]));
    assert!(
        raw["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "sid: {raw}"
    );
    assert_eq!(tokens.token_type().as_ref(), "bearer");

    let info: CoreUserInfoClaims = rp
        .oidc
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap_or_else(|e| panic!("userinfo: {}", describe(&e)));
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(info.email_verified(), Some(true));

    app.clock.advance(120);
    let refresh_token = tokens.refresh_token().expect("offline_access gives one");
    let refreshed = rp
        .oidc
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap_or_else(|e| panic!("refresh: {}", describe(&e)));
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), refresh_token.secret());
    let again = refreshed
        .id_token()
        .expect("a new ID token")
        .claims(&verifier, no_nonce)
        .unwrap_or_else(|e| panic!("the refreshed ID token verifies: {}", describe(&e)));
    assert_eq!(again.subject(), claims.subject());
    assert_eq!(
        again.auth_time().map(|t| t.timestamp()),
        Some(auth_time),
        "refreshing is not signing in again"
    );
    assert_eq!(again.issue_time().timestamp(), app.clock_now());
    let info: CoreUserInfoClaims = rp
        .oidc
        .user_info(
            refreshed.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&rp.http)
        .await
        .unwrap_or_else(|e| panic!("userinfo after refresh: {}", describe(&e)));
    assert_eq!(info.subject(), claims.subject());
}

#[tokio::test]
async fn a_confidential_client_signs_a_person_in_with_rs256_id_tokens() {
    full_flow(false, IdTokenAlg::RS256).await;
}

#[tokio::test]
async fn a_public_client_signs_a_person_in_with_pkce_and_rs256_id_tokens() {
    full_flow(true, IdTokenAlg::RS256).await;
}

#[tokio::test]
async fn a_confidential_client_can_choose_eddsa_id_tokens() {
    full_flow(false, IdTokenAlg::EdDSA).await;
}

#[tokio::test]
async fn a_public_client_can_choose_eddsa_id_tokens() {
    full_flow(true, IdTokenAlg::EdDSA).await;
}

#[tokio::test]
async fn a_client_can_choose_es256_id_tokens() {
    full_flow(false, IdTokenAlg::ES256).await;
}

#[tokio::test]
async fn without_offline_access_no_refresh_token_is_issued() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let (_, _, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    assert!(tokens.refresh_token().is_none());
}

#[tokio::test]
async fn client_secrets_are_form_decoded_from_basic_credentials() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    // RFC 6749 §2.3.1: the client form-encodes id and secret before Basic;
    // openidconnect does, so a secret with reserved characters must work.
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
    let rp = app.relying_party_with_secret(&client, Some(secret)).await;
    let (_, req, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    let verifier = app.id_token_verifier(&rp);
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&verifier, &req.nonce)
        .unwrap_or_else(|e| panic!("the ID token verifies: {}", describe(&e)));
}

// ---- claims -------------------------------------------------------------------

async fn amr_after(proof: Proof) -> Value {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let b = browser();
    let mut req = rp.auth_request(&["email"], &[]);
    let res = app.sign_in_through_authorize(&b, &req, EMAIL, proof).await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(&app.id_token_verifier(&rp), &req.nonce)
        .unwrap();
    assert!(claims.auth_time().is_some());
    jwt_claims(&id_token.to_string())["amr"].clone()
}

#[tokio::test]
async fn amr_is_email_after_a_link() {
    assert_eq!(amr_after(Proof::Link).await, serde_json::json!(["email"]));
}

#[tokio::test]
async fn amr_is_otp_after_a_typed_code() {
    assert_eq!(amr_after(Proof::Code).await, serde_json::json!(["otp"]));
}

/// The `sub` that `rp` sees for the person signed in in `b` (single sign-on).
async fn sub_via_sso(app: &TestApp, rp: &RelyingParty, b: &reqwest::Client) -> String {
    let mut req = rp.auth_request(&["email"], &[]);
    let before = app.emails().len();
    let res = app.authorize(b, &req.url).await;
    let code = rp.code_from(&res, &req);
    assert_eq!(app.emails().len(), before, "single sign-on sends no email");
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(rp), &req.nonce)
        .unwrap()
        .subject()
        .to_string()
}

#[tokio::test]
async fn subjects_are_pairwise_per_app_and_stable_for_one_app() {
    let app = spawn_oidc_app().await;
    let one = app.relying_party(&app.create_app(|_| {}).await).await;
    let two = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, req, tokens) = app.signed_in(&one, EMAIL, &["email"]).await;
    let sub_one = tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&one), &req.nonce)
        .unwrap()
        .subject()
        .to_string();
    let sub_two = sub_via_sso(&app, &two, &b).await;
    assert_ne!(sub_one, sub_two, "two apps cannot correlate the person");

    // A separate sign-in (new browser, new session) for the first app.
    let (_, req, tokens) = app.signed_in(&one, EMAIL, &["email"]).await;
    let again = tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&one), &req.nonce)
        .unwrap()
        .subject()
        .to_string();
    assert_eq!(again, sub_one, "one app always sees the same sub");
}

#[tokio::test]
async fn public_subject_apps_see_the_same_sub() {
    let app = spawn_oidc_app().await;
    let public = |s: &mut postern_core::AppSettings| s.subject_type = SubjectType::Public;
    let one = app.relying_party(&app.create_app(public).await).await;
    let two = app.relying_party(&app.create_app(public).await).await;
    let (b, _, _) = app.signed_in(&one, EMAIL, &["email"]).await;
    assert_eq!(
        sub_via_sso(&app, &one, &b).await,
        sub_via_sso(&app, &two, &b).await
    );
}

// ---- single sign-on and prompts -----------------------------------------------

#[tokio::test]
async fn a_second_authorization_in_the_same_browser_needs_no_email_and_keeps_auth_time() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let (b, req, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    let verifier = app.id_token_verifier(&rp);
    let first = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &req.nonce)
        .unwrap()
        .auth_time()
        .expect("auth_time");

    app.clock.advance(300);
    let emails = app.emails().len();
    let mut req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    let code = rp.code_from(&res, &req);
    assert_eq!(app.emails().len(), emails, "no email for single sign-on");
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &req.nonce)
        .unwrap()
        .clone();
    assert_eq!(claims.auth_time(), Some(first), "the original auth_time");
    assert_eq!(claims.issue_time().timestamp(), app.clock_now());
}

/// Signs in for `rp` in a new browser, moves the clock, then asks again with
/// `extra`: returns the browser and the answer to `/authorize`.
async fn ask_again_with(
    app: &TestApp,
    rp: &RelyingParty,
    extra: &[(&str, &str)],
) -> (reqwest::Client, AuthRequest, reqwest::Response) {
    let (b, _, _) = app.signed_in(rp, EMAIL, &["email"]).await;
    app.clock.advance(10);
    let req = rp.auth_request(&["email"], extra);
    let res = app.authorize(&b, &req.url).await;
    (b, req, res)
}

#[tokio::test]
async fn prompt_login_and_max_age_send_a_signed_in_browser_to_the_email_form() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    for (case, extra) in [
        ("prompt=login", [("prompt", "login")]),
        ("max_age=0 after 10 s", [("max_age", "0")]),
        ("max_age=5 after 10 s", [("max_age", "5")]),
    ] {
        let (_, _, res) = ask_again_with(&app, &rp, &extra).await;
        assert_eq!(res.status(), 303, "{case}");
        assert!(
            location(&res).starts_with(&app.url("/login?")),
            "{case}: went to {}",
            location(&res)
        );
    }
}

#[tokio::test]
async fn a_max_age_the_session_meets_signs_in_without_email() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (_, req, res) = ask_again_with(&app, &rp, &[("max_age", "3600")]).await;
    rp.code_from(&res, &req);
}

#[tokio::test]
async fn signing_in_again_after_prompt_login_gives_a_fresh_auth_time() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, mut req, res) = ask_again_with(&app, &rp, &[("prompt", "login")]).await;
    let res = app
        .sign_in_at(&b, &location(&res), EMAIL, Proof::Code)
        .await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(&app.id_token_verifier(&rp), &req.nonce)
        .unwrap();
    assert_eq!(
        claims.auth_time().map(|t| t.timestamp()),
        Some(app.clock_now())
    );
    assert_eq!(
        jwt_claims(&id_token.to_string())["amr"],
        serde_json::json!(["otp"])
    );
}

#[tokio::test]
async fn prompt_none_with_a_session_signs_in_without_any_page() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (_, req, res) = ask_again_with(&app, &rp, &[("prompt", "none")]).await;
    rp.code_from(&res, &req);
}

#[tokio::test]
async fn prompt_select_account_shows_the_signed_in_email_and_continues_with_it() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, mut req, res) = ask_again_with(&app, &rp, &[("prompt", "select_account")]).await;
    assert_eq!(res.status(), 200, "the account chooser");
    let page = res.text().await.unwrap();
    assert!(page.contains(EMAIL), "the chooser names {EMAIL}: {page}");
    let mut form = hidden_inputs(&page);
    // One submit button per account, named `account`, valued its session.
    let account = input_value(&page, "account").expect("a button for the account");
    form.push(("account".into(), account));
    let res = b
        .post(app.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&rp), &req.nonce)
        .unwrap()
        .clone();
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
}

// ---- consent --------------------------------------------------------------------

#[tokio::test]
async fn a_third_party_app_asks_for_consent_after_single_sign_on_and_remembers_it() {
    let app = spawn_oidc_app().await;
    let first = app.relying_party(&app.create_app(|_| {}).await).await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let (b, _, _) = app.signed_in(&first, EMAIL, &["email"]).await;

    let mut req = third.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "the consent screen");
    let page = res.text().await.unwrap();
    assert!(page.contains("Test App"), "{page}");
    let mut form = hidden_inputs(&page);
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let code = third.code_from(&res, &req);
    let tokens = third.exchange(&code, req.verifier.take()).await;
    tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&third), &req.nonce)
        .unwrap();

    // Granted once: the next authorization goes straight to the app.
    let req = third.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    third.code_from(&res, &req);
}

#[tokio::test]
async fn denying_consent_returns_access_denied_to_the_app() {
    let app = spawn_oidc_app().await;
    let first = app.relying_party(&app.create_app(|_| {}).await).await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let (b, _, _) = app.signed_in(&first, EMAIL, &["email"]).await;
    let req = third.auth_request(&["email"], &[]);
    let page = app.authorize(&b, &req.url).await.text().await.unwrap();
    let mut form = hidden_inputs(&page);
    form.push(("decision".into(), "deny".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let params = third.callback_params(&res, &req);
    assert_eq!(params["error"], "access_denied");
    assert!(!params.contains_key("code"));
}

// ---- logout ---------------------------------------------------------------------

#[tokio::test]
async fn logout_with_a_hint_returns_to_the_registered_uri_and_ends_single_sign_on() {
    let app = spawn_oidc_app().await;
    let signed_out = "https://app.example/signed-out";
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec![signed_out.to_owned()])
        .await;
    let rp = app.relying_party(&client).await;
    let (b, _, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let res = b
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", signed_out),
            ("state", "bye-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{signed_out}?state=bye-1"));

    let req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(&app.url("/login?")),
        "after logout the email is needed again, not {}",
        location(&res)
    );
}

// ---- discovery, JWKS and CORS -----------------------------------------------------

#[tokio::test]
async fn discovery_describes_every_endpoint_and_capability() {
    let app = spawn_oidc_app().await;
    let res = back_channel()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    let iss = app.address.as_str();
    for (field, value) in [
        ("issuer", iss.to_owned()),
        ("authorization_endpoint", format!("{iss}/authorize")),
        ("token_endpoint", format!("{iss}/token")),
        ("userinfo_endpoint", format!("{iss}/userinfo")),
        ("jwks_uri", format!("{iss}/jwks.json")),
        ("end_session_endpoint", format!("{iss}/logout")),
        ("revocation_endpoint", format!("{iss}/revoke")),
        ("introspection_endpoint", format!("{iss}/introspect")),
    ] {
        assert_eq!(doc[field], value, "{field}");
    }
    let list = |field: &str| -> Vec<String> {
        doc[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is a list: {doc}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    assert_eq!(list("response_types_supported"), ["code"]);
    let algs = list("id_token_signing_alg_values_supported");
    assert_eq!(algs[0], "RS256", "RS256 first: {algs:?}");
    for alg in ["EdDSA", "ES256"] {
        assert!(algs.iter().any(|a| a == alg), "{alg} in {algs:?}");
    }
    for (field, wanted) in [
        (
            "scopes_supported",
            &["openid", "email", "offline_access"][..],
        ),
        ("subject_types_supported", &["pairwise", "public"]),
        (
            "grant_types_supported",
            &["authorization_code", "refresh_token"],
        ),
        (
            "token_endpoint_auth_methods_supported",
            &["client_secret_basic", "client_secret_post", "none"],
        ),
        (
            "prompt_values_supported",
            &["none", "login", "consent", "select_account"],
        ),
        (
            "claims_supported",
            &[
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "sid",
                "email",
                "email_verified",
            ],
        ),
    ] {
        let got = list(field);
        for w in wanted {
            assert!(got.iter().any(|g| g == w), "{w} in {field}: {got:?}");
        }
    }
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    // And the library accepts it, issuer check included.
    app.discover().await;
}

#[tokio::test]
async fn the_jwks_is_cacheable_and_publishes_a_key_per_algorithm() {
    let app = spawn_oidc_app().await;
    let res = back_channel()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.contains("max-age="), "Cache-Control: {cache}");
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    for alg in ["RS256", "EdDSA", "ES256"] {
        assert!(keys.iter().any(|k| k["alg"] == alg), "{alg}: {jwks}");
    }
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "no private member {private}: {k}");
        }
    }
}

/// `Access-Control-Allow-Origin` of the answer, if any.
fn allowed_origin(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn browser_apps_may_call_the_jwks_and_token_endpoints_from_their_origin() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|s| s.public = true).await;
    let http = back_channel();
    let jwks = http
        .get(app.url("/jwks.json"))
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed_origin(&jwks).as_deref(),
        Some(APP_ORIGIN),
        "/jwks.json"
    );
    let token = http
        .post(app.url("/token"))
        .header("origin", APP_ORIGIN)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400, "a bad code is still refused");
    assert_eq!(
        allowed_origin(&token).as_deref(),
        Some(APP_ORIGIN),
        "/token"
    );
}

#[tokio::test]
async fn a_preflight_to_the_token_endpoint_is_answered_for_a_registered_origin() {
    let app = spawn_oidc_app().await;
    app.create_app(|s| s.public = true).await;
    let res = back_channel()
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", APP_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(allowed_origin(&res).as_deref(), Some(APP_ORIGIN));
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    };
    assert!(header("access-control-allow-methods").contains("post"));
    let allowed = header("access-control-allow-headers");
    assert!(
        allowed.contains("content-type") && allowed.contains("authorization"),
        "{allowed}"
    );
}

// ---- key rotation -----------------------------------------------------------------

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_still_verify_after_it() {
    use postern_web::keys::PUBLISH_BEFORE_USE;
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let new_kids = app.state.keys.rotate().await.unwrap();
    assert_eq!(new_kids.len(), 3, "one next key per algorithm");

    // Signed with the old keys while the new ones wait to be used.
    app.clock.advance(PUBLISH_BEFORE_USE - 300);
    let (b, req, before) = app.signed_in(&rp, EMAIL, &["email"]).await;
    let old_id_token = before.id_token().unwrap().clone();
    let old_kid = jwt_header(&old_id_token.to_string())["kid"].clone();
    assert!(!new_kids.iter().any(|k| *k == old_kid));

    app.clock.advance(300);
    app.state.keys.tick().await.unwrap();

    // New tokens carry a new key id.
    let mut again = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &again.url).await;
    let code = rp.code_from(&res, &again);
    let after = rp.exchange(&code, again.verifier.take()).await;
    let new_kid = jwt_header(&after.id_token().unwrap().to_string())["kid"].clone();
    assert!(new_kids.iter().any(|k| *k == new_kid), "{new_kid} is new");
    let access_kid = jwt_header(after.access_token().secret())["kid"].clone();
    assert!(
        new_kids.iter().any(|k| *k == access_kid),
        "{access_kid} is new"
    );

    // A relying party that refreshes the JWKS verifies old and new tokens.
    let refreshed = app.relying_party(&client).await;
    let verifier = app.id_token_verifier(&refreshed);
    old_id_token
        .claims(&verifier, &req.nonce)
        .unwrap_or_else(|e| panic!("the old ID token verifies: {}", describe(&e)));
    after
        .id_token()
        .unwrap()
        .claims(&verifier, &again.nonce)
        .unwrap_or_else(|e| panic!("the new ID token verifies: {}", describe(&e)));
    // And the old access token still works until it expires.
    let res = app.userinfo(before.access_token().secret()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

// ---- more of §3.2 ------------------------------------------------------------------

#[tokio::test]
async fn a_native_app_may_use_its_loopback_redirect_uri_on_any_port() {
    let app = spawn_oidc_app().await;
    let mut client = app
        .create_app(|s| {
            s.public = true;
            s.redirect_uris = vec!["http://127.0.0.1/callback".into()];
        })
        .await;
    // RFC 8252 §7.3: the port is chosen when the app runs.
    client.redirect_uri = "http://127.0.0.1:53127/callback".into();
    let rp = app.relying_party(&client).await;
    let (_, req, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&rp), &req.nonce)
        .unwrap();
}

#[tokio::test]
async fn without_the_email_scope_the_tokens_and_userinfo_carry_only_the_subject() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (_, req, tokens) = app.signed_in(&rp, EMAIL, &[]).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&rp), &req.nonce)
        .unwrap()
        .clone();
    assert!(claims.email().is_none());
    let res = app.userinfo(tokens.access_token().secret()).await;
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info, serde_json::json!({"sub": claims.subject().as_str()}));
}

#[tokio::test]
async fn authorize_logout_and_userinfo_also_accept_post() {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec!["https://app.example/bye".into()])
        .await;
    let rp = app.relying_party(&client).await;
    let (b, _, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;

    // POST /authorize with the request in the body (OIDC Core §3.1.2.1).
    let mut req = rp.auth_request(&["email"], &[]);
    let query: Vec<(String, String)> = url::Url::parse(&req.url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let res = b
        .post(app.url("/authorize"))
        .form(&query)
        .send()
        .await
        .unwrap();
    let code = rp.code_from(&res, &req);
    let tokens2 = rp.exchange(&code, req.verifier.take()).await;

    let res = back_channel()
        .post(app.url("/userinfo"))
        .form(&[("access_token", tokens2.access_token().secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "POST /userinfo with a body token");
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["email"], EMAIL);

    let res = b
        .post(app.url("/logout"))
        .form(&[
            (
                "id_token_hint",
                tokens.id_token().unwrap().to_string().as_str(),
            ),
            ("post_logout_redirect_uri", "https://app.example/bye"),
            ("state", "s 1/é"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let params = location_params(&res);
    assert_eq!(params["state"], "s 1/é");
}

#[tokio::test]
async fn logout_identifies_the_app_by_an_expired_hint_or_by_client_id() {
    let app = spawn_oidc_app().await;
    let bye = "https://app.example/bye";
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec![bye.into()])
        .await;
    let rp = app.relying_party(&client).await;
    let (b, _, tokens) = app.signed_in(&rp, EMAIL, &["email"]).await;
    // RP-Initiated Logout 1.0 §2: an expired ID token is still a valid hint.
    app.clock.advance(3600);
    let hint = tokens.id_token().unwrap().to_string();
    let res = b
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", bye),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "an expired hint");
    assert_eq!(location(&res), bye);

    let res = browser()
        .get(app.url("/logout"))
        .query(&[
            ("client_id", client.client_id.as_str()),
            ("post_logout_redirect_uri", bye),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "client_id instead of a hint");
    assert_eq!(location(&res), bye);
}

#[tokio::test]
async fn state_with_reserved_characters_comes_back_unchanged() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let state = "a b&c=d/é?#%20+";
    let (b, _, _) = app.signed_in(&rp, EMAIL, &["email"]).await;
    let req = rp.auth_request(&["email"], &[]);
    let url = req.url.replace(
        &format!("state={}", req.state.secret()),
        &format!(
            "state={}",
            url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ),
    );
    let res = app.authorize(&b, &url).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location_params(&res)["state"], state);
}

#[tokio::test]
async fn a_login_hint_prefills_the_email_form() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let req = rp.auth_request(&["email"], &[("login_hint", "carol@example.com")]);
    let b = browser();
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 303);
    let page = b
        .get(location(&res))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        input_value(&page, "email").as_deref(),
        Some("carol@example.com")
    );
}

#[tokio::test]
async fn prompt_consent_asks_again_even_after_a_grant() {
    let app = spawn_oidc_app().await;
    let first = app.relying_party(&app.create_app(|_| {}).await).await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let (b, _, _) = app.signed_in(&first, EMAIL, &["email"]).await;
    let req = third.auth_request(&["email"], &[]);
    let page = app.authorize(&b, &req.url).await.text().await.unwrap();
    let mut form = hidden_inputs(&page);
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    third.code_from(&res, &req);

    let req = third.auth_request(&["email"], &[("prompt", "consent")]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "the consent screen again");
    let page = res.text().await.unwrap();
    assert!(page.contains("name=\"decision\""), "{page}");
}

#[tokio::test]
async fn browser_apps_may_call_userinfo_and_revoke_from_their_origin() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|s| s.public = true).await;
    let http = back_channel();
    for (what, req) in [
        ("/userinfo", http.get(app.url("/userinfo")).bearer_auth("x")),
        (
            "/revoke",
            http.post(app.url("/revoke"))
                .form(&[("token", "prt_x"), ("client_id", client.client_id.as_str())]),
        ),
        (
            "/.well-known/openid-configuration",
            http.get(app.url("/.well-known/openid-configuration")),
        ),
    ] {
        let res = req.header("origin", APP_ORIGIN).send().await.unwrap();
        assert_eq!(allowed_origin(&res).as_deref(), Some(APP_ORIGIN), "{what}");
    }
}

#[tokio::test]
async fn a_third_party_app_asks_for_consent_right_after_a_fresh_sign_in() {
    let app = spawn_oidc_app().await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let b = browser();
    let mut req = third.auth_request(&["email", "offline_access"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, EMAIL, Proof::Link)
        .await;
    assert_eq!(res.status(), 200, "the consent screen");
    let page = res.text().await.unwrap();
    let mut form = hidden_inputs(&page);
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let code = third.code_from(&res, &req);
    let tokens = third.exchange(&code, req.verifier.take()).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&app.id_token_verifier(&third), &req.nonce)
        .unwrap()
        .clone();
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert!(tokens.refresh_token().is_some());
    // The consent form is spent.
    let again = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
}
