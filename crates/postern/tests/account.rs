//! Black-box tests of several accounts on one browser (the account chooser,
//! `prompt=none` and hints), Postern's own `/account` page (signed in
//! through Postern itself), the logout confirmation of RP-Initiated Logout
//! 1.0 §2, and the rules of consent: grants accumulate, and only the
//! session a sign-in created may answer its consent screen.

mod support;

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::{Client, Response};
use support::*;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

// ---- helpers --------------------------------------------------------------------

/// The `sub` of a token response's ID token (unverified: the library
/// verified it in `exchange`).
fn sub_of(tokens: &openidconnect::core::CoreTokenResponse) -> String {
    let claims = jwt_claims(&tokens.id_token().expect("an ID token").to_string());
    claims["sub"].as_str().expect("a sub").to_owned()
}

/// The email claim of a token response's ID token.
fn email_of(tokens: &openidconnect::core::CoreTokenResponse) -> String {
    let claims = jwt_claims(&tokens.id_token().expect("an ID token").to_string());
    claims["email"].as_str().unwrap_or_default().to_owned()
}

/// The value of the chooser button that continues as `email`.
fn choice_for(page: &str, email: &str) -> String {
    let at = page
        .find(&format!("{email}</span></button>"))
        .unwrap_or_else(|| panic!("no button for {email}: {page}"));
    let before = &page[..at];
    let needle = "name=\"account\" value=\"";
    let v = before.rfind(needle).expect("an account button") + needle.len();
    let len = before[v..].find('"').unwrap();
    html_unescape(&before[v..v + len])
}

/// The `href` of the first link whose target starts with `prefix`.
fn link_starting(page: &str, prefix: &str) -> String {
    let needle = "href=\"";
    let mut rest = page;
    while let Some(i) = rest.find(needle) {
        let start = i + needle.len();
        let len = rest[start..].find('"').unwrap();
        let href = html_unescape(&rest[start..start + len]);
        if href.starts_with(prefix) {
            return href;
        }
        rest = &rest[start + len..];
    }
    panic!("no link to {prefix}…: {page}");
}

/// Posts the chooser's form, continuing as `email`.
async fn choose(app: &TestApp, b: &Client, page: &str, email: &str) -> Response {
    let mut form = hidden_inputs(page);
    form.push(("account".into(), choice_for(page, email)));
    b.post(app.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A browser with two accounts for `rp`: Alice first, then Bob through the
/// chooser's "Use another account". Returns the browser and both subjects.
async fn two_accounts(app: &TestApp, rp: &RelyingParty) -> (Client, String, String) {
    let (b, _, tokens) = app.signed_in(rp, ALICE, &["email"]).await;
    let alice = sub_of(&tokens);

    let mut req = rp.auth_request(&["email"], &[("prompt", "select_account")]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "the chooser");
    let page = res.text().await.unwrap();
    assert!(page.contains(ALICE), "{page}");
    // "Use another account" keeps the destination: this request's.
    let another = link_starting(&page, &app.url("/login?"));
    app.clock.advance(60);
    let res = app.sign_in_at(&b, &another, BOB, Proof::Link).await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    assert_eq!(email_of(&tokens), BOB);
    (b, alice, sub_of(&tokens))
}

/// `/account` in `b`, signing in as `email` where Postern asks. Returns the
/// page.
async fn account_page(app: &TestApp, b: &Client, email: &str) -> String {
    let res = b.get(app.url("/account")).send().await.unwrap();
    if res.status() == 200 {
        return res.text().await.unwrap();
    }
    assert_eq!(res.status(), 303, "GET /account");
    let authorize = location(&res);
    assert!(
        authorize.starts_with(&app.url("/authorize?")),
        "/account signs in through /authorize, not {authorize}"
    );
    let res = b.get(&authorize).send().await.unwrap();
    let res = match res.status().as_u16() {
        303 if location(&res).starts_with(&app.url("/login?")) => {
            app.sign_in_at(b, &location(&res), email, Proof::Link).await
        }
        303 => res,
        200 => {
            let page = res.text().await.unwrap();
            choose(app, b, &page, email).await
        }
        s => panic!("/authorize for /account answered {s}"),
    };
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(
        callback.starts_with(&app.url("/account/callback?")),
        "back at the account page's callback, not {callback}"
    );
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "/account");
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "no-store",
        "the account page is never cached"
    );
    res.text().await.unwrap()
}

/// Posts one of `/account`'s forms: the CSRF token from `page` plus `fields`.
async fn account_post(
    app: &TestApp,
    b: &Client,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Response {
    let csrf = input_value(page, "csrf_token").expect("a csrf_token on /account");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post(app.url(path)).form(&form).send().await.unwrap()
}

/// The id of a user, by address.
async fn user_id(app: &TestApp, email: &str) -> Option<String> {
    app.rows(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await
        .first()
        .map(|r| r[0].clone())
}

// ---- several accounts on one browser -------------------------------------------

#[tokio::test]
async fn a_browser_with_two_accounts_shows_both_and_continues_as_the_one_chosen() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, alice, bob) = two_accounts(&app, &rp).await;
    assert_ne!(alice, bob);

    let mut req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "two accounts: the chooser");
    let page = res.text().await.unwrap();
    assert!(page.contains(ALICE) && page.contains(BOB), "{page}");
    assert!(page.contains("Use another account"), "{page}");

    // The choice is a CSRF-protected POST.
    let mut forged = hidden_inputs(&page);
    forged.retain(|(k, _)| k != "csrf_token");
    forged.push(("csrf_token".into(), "forged".into()));
    forged.push(("account".into(), choice_for(&page, BOB)));
    let res = b
        .post(app.url("/authorize"))
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a choice without the CSRF token");

    let res = choose(&app, &b, &page, BOB).await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    assert_eq!(sub_of(&tokens), bob, "continued as Bob");
    assert_eq!(email_of(&tokens), BOB);

    let mut req = rp.auth_request(&["email"], &[]);
    let page = app.authorize(&b, &req.url).await.text().await.unwrap();
    let res = choose(&app, &b, &page, ALICE).await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    assert_eq!(sub_of(&tokens), alice, "and as Alice when she is chosen");
}

#[tokio::test]
async fn prompt_none_with_two_accounts_needs_a_choice_unless_a_hint_names_one() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, alice, bob) = two_accounts(&app, &rp).await;

    let req = rp.auth_request(&["email"], &[("prompt", "none")]);
    let res = app.authorize(&b, &req.url).await;
    let params = rp.callback_params(&res, &req);
    assert_eq!(params["error"], "account_selection_required");
    assert!(!params.contains_key("code"));

    let mut req = rp.auth_request(&["email"], &[("prompt", "none"), ("login_hint", BOB)]);
    let res = app.authorize(&b, &req.url).await;
    let tokens = rp
        .exchange(&rp.code_from(&res, &req), req.verifier.take())
        .await;
    assert_eq!(sub_of(&tokens), bob, "login_hint picks Bob");
    let bob_hint = tokens.id_token().unwrap().to_string();

    let mut req = rp.auth_request(&["email"], &[("prompt", "none"), ("login_hint", ALICE)]);
    let res = app.authorize(&b, &req.url).await;
    let tokens = rp
        .exchange(&rp.code_from(&res, &req), req.verifier.take())
        .await;
    assert_eq!(sub_of(&tokens), alice, "login_hint picks Alice");
    let alice_hint = tokens.id_token().unwrap().to_string();

    // An ID token names its account too.
    for (who, hint, sub) in [("Alice", &alice_hint, &alice), ("Bob", &bob_hint, &bob)] {
        let mut req = rp.auth_request(&["email"], &[("prompt", "none"), ("id_token_hint", hint)]);
        let res = app.authorize(&b, &req.url).await;
        let tokens = rp
            .exchange(&rp.code_from(&res, &req), req.verifier.take())
            .await;
        assert_eq!(&sub_of(&tokens), sub, "id_token_hint picks {who}");
    }

    // A hint for someone not signed in here: prompt=none cannot sign them in.
    let req = rp.auth_request(
        &["email"],
        &[("prompt", "none"), ("login_hint", "carol@example.com")],
    );
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(rp.callback_params(&res, &req)["error"], "login_required");
}

#[tokio::test]
async fn a_browser_holds_five_accounts_and_a_sixth_drops_the_least_recent() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let b = browser();
    let people: Vec<String> = (1..=6).map(|i| format!("person{i}@example.com")).collect();
    for email in &people {
        let req = rp.auth_request(&["email"], &[("prompt", "login")]);
        let res = app
            .sign_in_through_authorize(&b, &req, email, Proof::Link)
            .await;
        rp.code_from(&res, &req);
        app.clock.advance(60);
    }
    let req = rp.auth_request(&["email"], &[]);
    let page = app.authorize(&b, &req.url).await.text().await.unwrap();
    assert!(!page.contains(&people[0]), "the first is dropped: {page}");
    for email in &people[1..] {
        assert!(page.contains(email.as_str()), "{email} is offered: {page}");
    }
    let live = app
        .rows("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
        .await;
    assert_eq!(
        live[0][0], "6",
        "dropping an account from the cookie revokes nothing"
    );

    // Signing in again as someone already there replaces their session.
    let req = rp.auth_request(&["email"], &[("prompt", "login")]);
    let res = app
        .sign_in_through_authorize(&b, &req, &people[3], Proof::Link)
        .await;
    rp.code_from(&res, &req);
    let req = rp.auth_request(&["email"], &[]);
    let page = app.authorize(&b, &req.url).await.text().await.unwrap();
    assert_eq!(page.matches("name=\"account\"").count(), 5, "{page}");
    let newest = page.find(&people[3]).unwrap();
    assert!(
        people[1..]
            .iter()
            .all(|e| page.find(e.as_str()).unwrap() >= newest),
        "the newest sign-in is offered first: {page}"
    );
}

// ---- /account --------------------------------------------------------------------

#[tokio::test]
async fn the_account_page_signs_in_through_postern_and_shows_this_session_and_history() {
    let app = spawn_oidc_app().await;
    let b = browser();
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let flow = set_cookie(res.headers(), "postern_account_flow").expect("a flow cookie");
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    let authorize = url::Url::parse(&location(&res)).unwrap();
    let q: std::collections::BTreeMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "postern-account");
    assert_eq!(q["redirect_uri"], app.url("/account/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 43 && q["code_challenge"].len() == 43);

    let page = account_page(&app, &b, ALICE).await;
    let text = text_of(&page);
    assert!(text.contains(&format!("Signed in as {ALICE}")), "{text}");
    assert!(
        text.contains("This browser"),
        "this session is marked: {text}"
    );
    assert!(text.contains("Email link"), "the sign-in by link: {text}");
    assert!(
        text.contains("Postern account"),
        "the app it was for: {text}"
    );
    assert!(text.contains("IP address 127.0.0.1"), "{text}");
    assert_eq!(
        hidden_inputs(&page)
            .iter()
            .filter(|(k, _)| k == "session_id")
            .count(),
        1,
        "one session to sign out"
    );
    // Every form carries the CSRF token.
    assert_eq!(
        page.matches("<form").count(),
        page.matches("name=\"csrf_token\"").count(),
        "{page}"
    );

    // A second look needs no sign-in.
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// A browser like [`browser`] whose every request comes through the
/// trusted proxy on behalf of `client_ip` (`X-Forwarded-For`).
fn browser_at(client_ip: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client_ip.parse().unwrap());
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Writes the test GeoIP database (`tests/make_geoip_db.py`, with the PyPI
/// package mmdb-writer that scripts/test installs) into `dir`.
fn geoip_database(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("test-city.mmdb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/make_geoip_db.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .expect("run python3 (scripts/test installs mmdb-writer)");
    assert!(
        out.status.success(),
        "{script} failed (is mmdb-writer installed? python3 -m pip install mmdb-writer): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[tokio::test]
async fn the_account_page_shows_where_each_session_is_with_a_geoip_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = geoip_database(dir.path());
    let app = spawn_oidc_app_with(&[
        ("POSTERN_GEOIP_DB", db.to_str().unwrap()),
        ("POSTERN_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    // The same person signs in from Berlin, from somewhere in France (a
    // country but no city), and from this machine (no place at all).
    account_page(&app, &browser_at("198.51.100.9"), ALICE).await;
    account_page(&app, &browser(), ALICE).await;
    let page = account_page(&app, &browser_at("203.0.113.7"), ALICE).await;
    let text = html_unescape(&page);
    assert!(
        text.contains("IP address 203.0.113.7, near Berlin, Germany"),
        "{text}"
    );
    assert!(
        text.contains("IP address 198.51.100.9, near France"),
        "{text}"
    );
    assert!(text.contains("IP address 127.0.0.1 "), "{text}");
    assert!(!text.contains("127.0.0.1, near"), "{text}");

    // The place follows the reader's language like the rest of the page.
    let de = browser_at("203.0.113.7");
    account_page(&app, &de, ALICE).await;
    let page = de
        .get(app.url("/account"))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html_unescape(&page).contains("IP-Adresse 203.0.113.7, in der Nähe von Berlin, Germany"),
        "{page}"
    );
}

#[tokio::test]
async fn a_callback_that_does_not_belong_to_this_browser_is_refused() {
    let app = spawn_oidc_app().await;
    let b = browser();
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    for (what, query) in [
        ("a wrong state", "code=abc&state=wrong&iss=x"),
        ("no state", "code=abc"),
    ] {
        let res = b
            .get(app.url(&format!("/account/callback?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{what}");
        let page = res.text().await.unwrap();
        assert!(page.contains("<html"), "{what}: an HTML page: {page}");
        assert!(
            page.contains("href=\"/account\""),
            "{what}: a way back: {page}"
        );
    }
    // Without the flow cookie at all (another browser).
    let res = browser()
        .get(app.url("/account/callback?code=abc&state=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn signing_out_one_session_from_the_account_page() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (elsewhere, _, _) = app.signed_in(&rp, ALICE, &["email"]).await;
    let theirs = app.rows("SELECT id FROM sessions").await[0][0].clone();
    app.clock.advance(60);
    let b = browser();
    let page = account_page(&app, &b, ALICE).await;
    let sessions: Vec<String> = hidden_inputs(&page)
        .into_iter()
        .filter(|(k, _)| k == "session_id")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(sessions.len(), 2, "both browsers: {page}");
    let mine = sessions.iter().find(|s| **s != theirs).unwrap().clone();
    // "This browser" marks this browser's session, not the other.
    let marked = page
        .split("<li>")
        .find(|item| item.contains("This browser"))
        .expect("a marked session");
    assert!(
        marked.contains(&mine) && !marked.contains(&theirs),
        "{marked}"
    );

    let res = account_post(
        &app,
        &b,
        &page,
        "/account/sessions/sign-out",
        &[("session_id", &theirs)],
    )
    .await;
    assert_eq!(res.status(), 303);
    // Back to the page, which confirms what happened, once.
    assert_eq!(location(&res), "/account");
    let res = b.get(app.url(&location(&res))).send().await.unwrap();
    let confirmed = text_of(&res.text().await.unwrap());
    assert!(
        confirmed.contains("That session was signed out."),
        "{confirmed}"
    );
    let again = text_of(&account_page(&app, &b, ALICE).await);
    assert!(!again.contains("was signed out"), "said once: {again}");
    // A link cannot make the page say it.
    let res = b
        .get(app.url("/account?done=signed-out"))
        .send()
        .await
        .unwrap();
    assert!(!text_of(&res.text().await.unwrap()).contains("was signed out"));
    let req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&elsewhere, &req.url).await;
    assert!(
        location(&res).starts_with(&app.url("/login?")),
        "the other browser is signed out"
    );
    let page = account_page(&app, &b, ALICE).await;
    assert_eq!(
        hidden_inputs(&page)
            .iter()
            .filter(|(k, _)| k == "session_id")
            .count(),
        1
    );

    // A session of someone else is not found.
    let (_, _, _) = app.signed_in(&rp, BOB, &["email"]).await;
    let bobs = app
        .rows("SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'bob@example.com'")
        .await;
    let res = account_post(
        &app,
        &b,
        &page,
        "/account/sessions/sign-out",
        &[("session_id", &bobs[0][0])],
    )
    .await;
    assert_eq!(res.status(), 400, "not Alice's session");
    assert_eq!(
        app.rows(&format!(
            "SELECT revoked_at FROM sessions WHERE id = '{}'",
            bobs[0][0]
        ))
        .await[0][0],
        "NULL"
    );

    // Signing out this browser's own session signs it out here.
    let res = account_post(
        &app,
        &b,
        &page,
        "/account/sessions/sign-out",
        &[("session_id", &mine)],
    )
    .await;
    assert_eq!(res.status(), 200, "the signed-out page");
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out: /account asks again");
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_and_refresh_token() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let (elsewhere, _, tokens) = app.signed_in(&rp, ALICE, &["offline_access"]).await;
    let refresh = tokens
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();
    let b = browser();
    let page = account_page(&app, &b, ALICE).await;
    let res = account_post(&app, &b, &page, "/account/sign-out-everywhere", &[]).await;
    assert_eq!(res.status(), 200, "the signed-out page");

    let res = app.refresh_raw(&client, &refresh).await;
    expect_error(
        res,
        400,
        "invalid_grant",
        "refresh after sign out everywhere",
    )
    .await;
    assert_bearer_refused_status(&app, tokens.access_token().secret()).await;
    let req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&elsewhere, &req.url).await;
    assert!(location(&res).starts_with(&app.url("/login?")));
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.count("sessions").await,
        app.rows("SELECT id FROM sessions WHERE revoked_at IS NOT NULL")
            .await
            .len() as i64,
        "every session is revoked"
    );
}

async fn assert_bearer_refused_status(app: &TestApp, access: &str) {
    assert_eq!(app.userinfo(access).await.status(), 401);
}

#[tokio::test]
async fn revoking_an_app_asks_for_consent_again_and_ends_its_refresh_tokens() {
    let app = spawn_oidc_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let third = app.relying_party(&client).await;
    let b = browser();
    let mut req = third.auth_request(&["email", "offline_access"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, ALICE, Proof::Link)
        .await;
    assert_eq!(res.status(), 200, "the consent screen");
    let mut form = hidden_inputs(&res.text().await.unwrap());
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let tokens = third
        .exchange(&third.code_from(&res, &req), req.verifier.take())
        .await;
    let refresh = tokens.refresh_token().unwrap().secret().clone();

    let page = account_page(&app, &b, ALICE).await;
    let text = html_unescape(&page);
    assert!(
        text.contains("Apps you allowed") && text.contains("Test App"),
        "{text}"
    );
    let res = account_post(
        &app,
        &b,
        &page,
        "/account/apps/revoke",
        &[("client_id", &client.client_id)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let confirmed = b
        .get(app.url(&location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text_of(&confirmed).contains("Test App can no longer see your account."),
        "the page confirms the revocation: {confirmed}"
    );
    let page = account_page(&app, &b, ALICE).await;
    assert!(
        html_unescape(&page).contains("You have not allowed any app yet."),
        "{page}"
    );

    let res = app.refresh_raw(&client, &refresh).await;
    expect_error(res, 400, "invalid_grant", "refresh after revoking the app").await;
    let req = third.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "consent is asked again");
    assert!(res.text().await.unwrap().contains("name=\"decision\""));
}

#[tokio::test]
async fn deleting_the_account_forgets_the_person_and_a_new_sign_in_is_a_new_user() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (_, _, tokens) = app.signed_in(&rp, ALICE, &["email"]).await;
    let first_sub = sub_of(&tokens);
    app.signed_in(&rp, BOB, &["email"]).await;
    let id = user_id(&app, ALICE).await.expect("Alice exists");
    let b = browser();
    let page = account_page(&app, &b, ALICE).await;
    assert!(page.contains("href=\"/account/delete\""), "{page}");

    let res = b.get(app.url("/account/delete")).send().await.unwrap();
    assert_eq!(res.status(), 200, "asked first");
    let confirm = res.text().await.unwrap();
    assert!(
        text_of(&confirm).contains(&format!("Delete {ALICE}?")),
        "{confirm}"
    );
    assert_eq!(user_id(&app, ALICE).await.as_deref(), Some(id.as_str()));
    let res = b
        .post(app.url("/account/delete"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the deletion is CSRF-protected");
    let res = b
        .post(app.url("/account/delete"))
        .form(&hidden_inputs(&confirm))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Your account was deleted"));

    assert_eq!(user_id(&app, ALICE).await, None, "the user row is gone");
    for table in [
        "sessions",
        "grants",
        "authorization_codes",
        "refresh_tokens",
        "sign_in_events",
    ] {
        let left = app
            .rows(&format!(
                "SELECT COUNT(*) FROM {table} WHERE user_id = '{id}'"
            ))
            .await;
        assert_eq!(left[0][0], "0", "{table} still names the deleted user");
    }
    let dump = app.dump_database().await;
    let rows_dump = {
        // The database's rows (not the SQLite file, whose free pages may keep
        // old bytes until they are reused).
        let mut out = String::new();
        for table in [
            "users",
            "login_requests",
            "sessions",
            "sign_in_events",
            "grants",
        ] {
            for r in app.rows(&format!("SELECT * FROM {table}")).await {
                out.push_str(&r.join("\n"));
            }
        }
        out
    };
    assert!(!rows_dump.contains(ALICE), "nothing stored names her");
    assert!(dump.contains(BOB), "Bob is untouched");
    assert!(user_id(&app, BOB).await.is_some());
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "this browser is signed out of her account"
    );

    let (_, _, again) = app.signed_in(&rp, ALICE, &["email"]).await;
    let new_id = user_id(&app, ALICE).await.expect("a new user");
    assert_ne!(new_id, id);
    assert_ne!(sub_of(&again), first_sub, "a new pairwise subject");
}

// ---- logout confirmation -----------------------------------------------------------

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_with_a_hint_signs_out_at_once() {
    let app = spawn_oidc_app().await;
    let client = app
        .create_app(|s| s.post_logout_redirect_uris = vec!["https://app.example/bye".into()])
        .await;
    let rp = app.relying_party(&client).await;
    let (b, _, tokens) = app.signed_in(&rp, ALICE, &["email"]).await;
    let access = tokens.access_token().secret().clone();

    // A cross-site GET or POST signs no one out: the page asks.
    let res = b
        .get(app.url("/logout"))
        .query(&[
            ("client_id", client.client_id.as_str()),
            ("post_logout_redirect_uri", "https://app.example/bye"),
            ("state", "s-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the confirmation page");
    let page = res.text().await.unwrap();
    assert!(
        html_unescape(&page).contains("Sign out of Postern?"),
        "{page}"
    );
    assert!(text_of(&page).contains(ALICE), "it says who: {page}");
    assert_eq!(app.userinfo(&access).await.status(), 200, "still signed in");
    let res = b
        .post(app.url("/logout"))
        .form(&[("confirm", "yes"), ("client_id", client.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "without the CSRF token: asked again");
    assert_eq!(app.userinfo(&access).await.status(), 200, "still signed in");

    // The page's own button signs out and goes back to the app.
    let res = b
        .post(app.url("/logout"))
        .form(&hidden_inputs(&page))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "https://app.example/bye?state=s-1");
    assert_eq!(app.userinfo(&access).await.status(), 401);

    // With a valid hint of this browser's account: at once.
    let (b, _, tokens) = app.signed_in(&rp, ALICE, &["email"]).await;
    let access = tokens.access_token().secret().clone();
    let res = b
        .get(app.url("/logout"))
        .query(&[("id_token_hint", tokens.id_token().unwrap().to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(html_unescape(&res.text().await.unwrap()).contains("signed out"));
    assert_eq!(app.userinfo(&access).await.status(), 401);
}

#[tokio::test]
async fn a_hint_signs_out_only_its_account_and_a_strangers_hint_asks_first() {
    let app = spawn_oidc_app().await;
    let rp = app.relying_party(&app.create_app(|_| {}).await).await;
    let (b, _, _) = two_accounts(&app, &rp).await;
    // Bob's ID token from this browser.
    let mut req = rp.auth_request(&["email"], &[("login_hint", BOB)]);
    let res = app.authorize(&b, &req.url).await;
    let bob = rp
        .exchange(&rp.code_from(&res, &req), req.verifier.take())
        .await;
    // Someone else's ID token, from another browser.
    let (_, _, carol) = app.signed_in(&rp, "carol@example.com", &["email"]).await;

    let res = b
        .get(app.url("/logout"))
        .query(&[("id_token_hint", carol.id_token().unwrap().to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("action=\"/logout\""),
        "a hint for an account not on this browser asks first: {page}"
    );

    let res = b
        .get(app.url("/logout"))
        .query(&[("id_token_hint", bob.id_token().unwrap().to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.userinfo(bob.access_token().secret()).await.status(),
        401
    );
    // Alice is still signed in on this browser: SSO without a chooser.
    let mut req = rp.auth_request(&["email"], &[]);
    let res = app.authorize(&b, &req.url).await;
    let tokens = rp
        .exchange(&rp.code_from(&res, &req), req.verifier.take())
        .await;
    assert_eq!(email_of(&tokens), ALICE);
}

// ---- consent rules ---------------------------------------------------------------------

#[tokio::test]
async fn grants_accumulate_over_consents() {
    let app = spawn_oidc_app().await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let b = browser();
    let req = third.auth_request(&["email"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, ALICE, Proof::Link)
        .await;
    let mut form = hidden_inputs(&res.text().await.unwrap());
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    third.code_from(&res, &req);

    let req = third.auth_request(&["offline_access"], &[]);
    let res = app.authorize(&b, &req.url).await;
    assert_eq!(res.status(), 200, "new scope: consent again");
    let mut form = hidden_inputs(&res.text().await.unwrap());
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    third.code_from(&res, &req);

    let grant = app.rows("SELECT scope FROM grants").await;
    assert_eq!(grant, [["openid email offline_access"]], "both remembered");
    let req = third.auth_request(&["email", "offline_access"], &[("prompt", "none")]);
    let res = app.authorize(&b, &req.url).await;
    third.code_from(&res, &req);
}

#[tokio::test]
async fn consent_is_answered_only_by_the_session_the_sign_in_created() {
    let app = spawn_oidc_app().await;
    let first = app.relying_party(&app.create_app(|_| {}).await).await;
    let third = app
        .relying_party(&app.create_app(|s| s.first_party = false).await)
        .await;
    let b = browser();
    let req = third.auth_request(&["email"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, ALICE, Proof::Link)
        .await;
    assert_eq!(res.status(), 200, "the consent screen");
    let consent = hidden_inputs(&res.text().await.unwrap());
    assert!(
        consent.iter().any(|(k, _)| k == "consent_token"),
        "{consent:?}"
    );

    // Alice's other browser, with its own live session, cannot answer it.
    let (other, _, _) = app.signed_in(&first, ALICE, &["email"]).await;
    let csrf = app.csrf_of(&other, &first.app).await;
    let mut stolen: Vec<(String, String)> = consent
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    stolen.push(("csrf_token".into(), csrf));
    stolen.push(("decision".into(), "allow".into()));
    let res = other
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&stolen)
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "consent from another session").await;
    assert_eq!(app.count("grants").await, 0);

    // Nor can the right browser without the token.
    let mut tokenless: Vec<(String, String)> = consent
        .iter()
        .filter(|(k, _)| k != "consent_token")
        .cloned()
        .collect();
    tokenless.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&tokenless)
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "consent without its token").await;

    let mut form = consent.clone();
    form.push(("decision".into(), "allow".into()));
    let res = b
        .post(app.url("/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    third.code_from(&res, &req);
    assert_eq!(app.count("grants").await, 1);
}
