//! Black-box tests of the OpenID Provider's hardening (issue 10, items 4,
//! 5 and 7), each reproducing an attack on the running server: a logout
//! with someone else's ID token, a flood of `/authorize` requests that
//! would fill the database, and a used code replayed by another client.

mod support;

use postern_store::Backend;
use reqwest::{Client, Response};
use serde_json::Value;
use support::*;

const VICTIM: &str = "victim@example.com";
const ATTACKER: &str = "mallory@example.com";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const BYE: &str = "https://app.example/bye";
/// The built-in public client of Postern's own account page.
const ACCOUNT_CLIENT: &str = "postern-account";

/// The JSON of a successful token response.
async fn tokens(res: Response, context: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{context}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// `email` signs in to `client` in a new browser with `offline_access` and
/// the app exchanges the code: the browser and the token response.
async fn signed_in(app: &TestApp, client: &TestClient, email: &str) -> (Client, Value) {
    let (b, code) = app
        .raw_code(
            client,
            email,
            "openid email offline_access",
            Some(CHALLENGE),
        )
        .await;
    let t = tokens(
        app.exchange_raw(client, &code, Some(VERIFIER)).await,
        "the first exchange",
    )
    .await;
    (b, t)
}

/// An `/authorize` URL for `client` with these extra parameters.
fn authorize_url(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid email"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    q.extend_from_slice(extra);
    app.url(&format!(
        "/authorize?{}",
        serde_urlencoded::to_string(&q).unwrap()
    ))
}

/// Whether browser `b` still has single sign-on at `client`: `/authorize`
/// answers with a code at once, no email asked. Returns the code.
async fn sso_code(app: &TestApp, b: &Client, client: &TestClient) -> String {
    let res = b
        .get(authorize_url(app, client, &[("state", "sso")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "GET /authorize");
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{}?", client.redirect_uri)),
        "single sign-on goes straight back to the app, not to {to}"
    );
    location_params(&res)
        .get("code")
        .unwrap_or_else(|| panic!("no code: {to}"))
        .clone()
}

/// Asserts that a refresh token still works (and returns its successor).
async fn refreshes(
    app: &TestApp,
    client: &TestClient,
    refresh_token: &str,
    context: &str,
) -> String {
    let t = tokens(app.refresh_raw(client, refresh_token).await, context).await;
    str_of(&t, "refresh_token").to_owned()
}

/// Bytes of database pages in use: on SQLite the pages not on the free
/// list, on PostgreSQL the total size of the tables (indexes and TOAST
/// included).
async fn bytes_in_use(app: &TestApp) -> i64 {
    let mut conn = app.state.store.conn().await.unwrap();
    match app.state.store.backend() {
        Backend::Sqlite => {
            let mut pragma = Vec::new();
            for name in ["page_count", "freelist_count", "page_size"] {
                let v = sqlx::query_scalar::<_, i64>(&format!("PRAGMA {name}"))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                pragma.push(v);
            }
            (pragma[0] - pragma[1]) * pragma[2]
        }
        Backend::Postgres => sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap(),
    }
}

// ---- item 4: /logout ends only sessions of this browser ------------------------------

#[tokio::test]
async fn a_cookieless_logout_with_a_victims_id_token_leaves_their_sso_and_refresh_token_working() {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec![BYE.into()])
        .await;
    let (victim, t) = signed_in(&app, &client, VICTIM).await;
    let hint = str_of(&t, "id_token").to_owned();
    let mut refresh = str_of(&t, "refresh_token").to_owned();

    // The attacker saw the ID token once and has no cookies.
    let attacker = back_channel();
    let res = attacker
        .get(app.url("/logout"))
        .query(&[("id_token_hint", hint.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "GET /logout: {}", res.status());
    let res = attacker
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", BYE),
            ("state", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "with a registered redirect");
    assert_eq!(location(&res), format!("{BYE}?state=x"));
    let res = attacker
        .post(app.url("/logout"))
        .form(&[("id_token_hint", hint.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "POST /logout: {}", res.status());

    refresh = refreshes(&app, &client, &refresh, "the victim's refresh token").await;
    let access = str_of(&t, "access_token");
    assert_eq!(app.userinfo(access).await.status(), 200, "access token");
    let code = sso_code(&app, &victim, &client).await;
    tokens(
        app.exchange_raw(&client, &code, Some(VERIFIER)).await,
        "the SSO code",
    )
    .await;
    refreshes(&app, &client, &refresh, "the refresh token afterwards").await;
}

#[tokio::test]
async fn a_logout_with_a_victims_id_token_from_the_attackers_own_browser_signs_out_only_the_attacker(
) {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec![BYE.into()])
        .await;
    let (victim, t) = signed_in(&app, &client, VICTIM).await;
    let hint = str_of(&t, "id_token").to_owned();
    let (attacker, mine) = signed_in(&app, &client, ATTACKER).await;

    // The hint names no account of this browser: the page asks, for the
    // attacker's own account only.
    let res = attacker
        .get(app.url("/logout"))
        .query(&[("id_token_hint", hint.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let text = html_unescape(&page).replace("</span><span>", "");
    assert!(text.contains("Sign out of Postern?"), "{page}");
    assert!(text.contains(ATTACKER), "{page}");
    assert!(
        !text.contains(VICTIM),
        "the victim is not this browser's: {page}"
    );
    // Confirming it, with the victim's hint still in the form.
    let form = hidden_inputs(&page);
    assert!(form.iter().any(|(k, _)| k == "id_token_hint"), "{form:?}");
    let res = attacker
        .post(app.url("/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "POST /logout: {}", res.status());
    assert_eq!(
        app.userinfo(str_of(&mine, "access_token")).await.status(),
        401,
        "the attacker's own account is signed out"
    );

    refreshes(
        &app,
        &client,
        str_of(&t, "refresh_token"),
        "the victim's refresh token",
    )
    .await;
    sso_code(&app, &victim, &client).await;
}

// ---- item 5: /authorize stores nothing unbounded ----------------------------------------

/// `state`, `nonce` and `User-Agent` at the longest `/authorize` accepts
/// (2048 and 512 characters; a longer user agent is cut to 512).
fn longest(n: usize, tag: usize) -> String {
    let unit = format!("{tag:08}-");
    unit.repeat(n / unit.len() + 1)[..n].to_owned()
}

#[tokio::test]
async fn six_hundred_consent_screens_with_the_longest_parameters_store_under_a_megabyte() {
    let app = spawn_oidc_app().await;
    let first = app.create_app(|_| {}).await;
    let third = app.create_app(|s| s.first_party = false).await;
    let (b, _) = signed_in(&app, &first, VICTIM).await;
    let user_agent = longest(512, 0);
    let before = bytes_in_use(&app).await;

    let mut last_page = None;
    let mut last_state = String::new();
    let mut refused = 0;
    for i in 0..600 {
        let state = longest(2048, i);
        let nonce = longest(512, i);
        let res = b
            .get(authorize_url(
                &app,
                &third,
                &[("state", state.as_str()), ("nonce", nonce.as_str())],
            ))
            .header("user-agent", &user_agent)
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => {
                last_page = Some(res.text().await.unwrap());
                last_state = state;
            }
            429 => refused += 1,
            other => panic!("GET /authorize #{i}: {other}"),
        }
    }
    let grown = bytes_in_use(&app).await - before;
    assert!(
        grown < 1 << 20,
        "600 consent screens added {grown} bytes ({refused} refused)"
    );

    // The last consent screen still works.
    let page = last_page.expect("at least one consent screen");
    assert!(page.contains("name=\"decision\""), "{page}");
    let mut form = hidden_inputs(&page);
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "POST /consent");
    let params = location_params(&res);
    assert_eq!(params.get("state"), Some(&last_state), "state is echoed");
    let code = params.get("code").unwrap_or_else(|| panic!("{params:?}"));
    let t = tokens(
        app.exchange_raw(&third, code, Some(VERIFIER)).await,
        "the consented code",
    )
    .await;
    let claims = jwt_claims(str_of(&t, "id_token"));
    assert_eq!(claims["nonce"].as_str(), Some(longest(512, 599).as_str()));
}

#[tokio::test]
async fn a_consent_form_is_answered_only_by_the_browser_it_was_shown_to() {
    let app = spawn_oidc_app().await;
    let first = app.create_app(|_| {}).await;
    let third = app.create_app(|s| s.first_party = false).await;
    let (b, _) = signed_in(&app, &first, VICTIM).await;
    let res = b
        .get(authorize_url(&app, &third, &[("state", "s-1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the consent screen");
    let consent = hidden_inputs(&res.text().await.unwrap());
    let request = consent
        .iter()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.clone())
        .expect("the sealed request");

    // The same person in another browser, with its own session and CSRF token.
    let (other, _) = signed_in(&app, &first, VICTIM).await;
    let csrf = app.csrf_of(&other, &first).await;
    let res = other
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("request", request.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "consent from another browser").await;

    // A changed request is refused.
    let mut tampered: Vec<(String, String)> = consent
        .iter()
        .map(|(k, v)| {
            let v = if k == "request" {
                // One character in the middle of the ciphertext.
                let mut chars: Vec<char> = v.chars().collect();
                let i = chars.len() / 2;
                chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
                chars.into_iter().collect()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    tampered.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&tampered)
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "a tampered request").await;
    assert_eq!(app.count("grants").await, 0);

    // After ten minutes it has expired.
    app.clock.advance(601);
    let mut late = consent.clone();
    late.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&late)
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "an expired consent form").await;
    assert_eq!(app.count("grants").await, 0);
}

#[tokio::test]
async fn six_hundred_single_sign_on_requests_store_a_bounded_number_of_codes() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, _) = signed_in(&app, &client, VICTIM).await;
    let user_agent = longest(512, 0);
    let codes_before = app.count("authorization_codes").await;
    let before = bytes_in_use(&app).await;

    let (mut issued, mut refused) = (Vec::new(), 0);
    for i in 0..600 {
        let state = longest(2048, i);
        let nonce = longest(512, i);
        let res = b
            .get(authorize_url(
                &app,
                &client,
                &[("state", state.as_str()), ("nonce", nonce.as_str())],
            ))
            .header("user-agent", &user_agent)
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            refused += 1;
            continue;
        }
        assert_eq!(res.status(), 303, "GET /authorize #{i}");
        let params = location_params(&res);
        assert_eq!(params.get("state"), Some(&state), "state is echoed");
        match params.get("code") {
            Some(code) => issued.push(code.clone()),
            None => {
                assert_eq!(params["error"], "temporarily_unavailable", "{params:?}");
                refused += 1;
            }
        }
    }
    let grown = bytes_in_use(&app).await - before;
    assert!(
        grown < 1 << 20,
        "600 SSO requests added {grown} bytes ({} codes)",
        issued.len()
    );
    let stored = app.count("authorization_codes").await - codes_before;
    assert!(
        stored <= 10,
        "{stored} codes stored for one session ({refused} refused)"
    );
    assert_eq!(issued.len() as i64, stored);

    // Codes still work: one the flood got, and a new one once the
    // unredeemed ones have expired.
    tokens(
        app.exchange_raw(&client, &issued[0], Some(VERIFIER)).await,
        "a code of the flood",
    )
    .await;
    app.clock.advance(61);
    let code = sso_code(&app, &b, &client).await;
    tokens(
        app.exchange_raw(&client, &code, Some(VERIFIER)).await,
        "a code after the flood",
    )
    .await;
}

// ---- item 7: a used code replayed by another client revokes nothing ---------------------

#[tokio::test]
async fn a_used_code_replayed_by_another_client_revokes_nothing_but_its_own_clients_replay_does() {
    let app = spawn_oidc_app().await;
    let a = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let (b, code) = app
        .raw_code(&a, VICTIM, "openid email offline_access", Some(CHALLENGE))
        .await;
    let t = tokens(
        app.exchange_raw(&a, &code, Some(VERIFIER)).await,
        "the exchange by A",
    )
    .await;

    // As the public postern-account client, with A's redirect URI and the
    // verifier (the attacker saw the whole callback).
    let res = back_channel()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", a.redirect_uri.as_str()),
            ("code_verifier", VERIFIER),
            ("client_id", ACCOUNT_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_grant", "replay as postern-account").await;
    // As another confidential client.
    let res = app.exchange_raw(&other, &code, Some(VERIFIER)).await;
    expect_error(res, 400, "invalid_grant", "replay by another app").await;

    let refresh = refreshes(&app, &a, str_of(&t, "refresh_token"), "A's refresh token").await;
    assert_eq!(
        app.userinfo(str_of(&t, "access_token")).await.status(),
        200,
        "A's access token"
    );
    sso_code(&app, &b, &a).await;

    // A's own replay means the code leaked: everything it issued ends.
    let res = app.exchange_raw(&a, &code, Some(VERIFIER)).await;
    expect_error(res, 400, "invalid_grant", "replay by A").await;
    let res = app.refresh_raw(&a, &refresh).await;
    expect_error(
        res,
        400,
        "invalid_grant",
        "A's refresh token after A's replay",
    )
    .await;
    assert_eq!(
        app.userinfo(str_of(&t, "access_token")).await.status(),
        401,
        "A's access token after A's replay"
    );
}

#[tokio::test]
async fn an_unused_code_presented_by_another_client_stays_usable_by_its_own() {
    let app = spawn_oidc_app().await;
    let a = app.create_app(|_| {}).await;
    let other = app.create_app(|_| {}).await;
    let (_, code) = app
        .raw_code(&a, VICTIM, "openid email offline_access", Some(CHALLENGE))
        .await;
    let res = app.exchange_raw(&other, &code, Some(VERIFIER)).await;
    expect_error(res, 400, "invalid_grant", "A's code at another app").await;
    let t = tokens(
        app.exchange_raw(&a, &code, Some(VERIFIER)).await,
        "the exchange by A",
    )
    .await;
    refreshes(&app, &a, str_of(&t, "refresh_token"), "A's refresh token").await;
}
