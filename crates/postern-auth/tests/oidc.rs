//! The OpenID Provider's rules on a testkit database, without HTTP: the
//! authorization decision (prompt, consent, accounts, session caps) and
//! refresh-token rotation and reuse.

mod support;

use postern_auth::oidc::{
    self, AuthorizeInput, AuthorizeOutcome, AuthorizeRequest, Chosen, TokenRequest,
};
use postern_auth::signin::{Decision, Next};
use postern_auth::{Answer, AuthError, GrantError};
use postern_core::ConsentMode;
use support::*;

fn input(env: &Env, app: &TestApp, prompt: Option<&str>) -> AuthorizeInput {
    AuthorizeInput {
        response_type: Some("code".to_owned()),
        prompt: prompt.map(str::to_owned),
        raw: env.raw_params(app, "openid email"),
        ..Default::default()
    }
}

async fn request(env: &Env, app: &TestApp, prompt: Option<&str>) -> AuthorizeRequest {
    oidc::authorize_request(&env.svc, &input(env, app, prompt))
        .await
        .expect("a valid request")
}

async fn decide(
    env: &Env,
    app: &TestApp,
    browser: &Browser,
    prompt: Option<&str>,
) -> Result<AuthorizeOutcome, AuthError> {
    let req = request(env, app, prompt).await;
    let accounts = env.accounts(browser).await;
    oidc::authorize(&env.svc, &req, &accounts, Chosen::Nobody, browser.ip).await
}

/// The error code an app gets at its redirect URI.
fn at_client(e: AuthError) -> &'static str {
    match e {
        AuthError::AtClient(r) => match r.answer {
            Answer::Error { error, .. } => error,
            Answer::Code(_) => panic!("a code is no error"),
        },
        other => panic!("not an answer to the app: {other:?}"),
    }
}

#[test]
fn prompt_values_parse_and_none_stands_alone() {
    use oidc::Prompt;
    assert_eq!(Prompt::parse(None), Some(Prompt::default()));
    let p = Prompt::parse(Some("login consent")).unwrap();
    assert!(p.login && p.consent && !p.none && !p.select_account);
    assert_eq!(Prompt::parse(Some("none login")), None, "none with another");
    assert_eq!(Prompt::parse(Some("sometimes")), None, "unknown value");
}

#[tokio::test]
async fn an_unknown_prompt_goes_back_to_the_app_as_invalid_request() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let e = oidc::authorize_request(&env.svc, &input(&env, &app, Some("none login")))
        .await
        .unwrap_err();
    assert_eq!(at_client(e), "invalid_request");
}

#[tokio::test]
async fn a_bad_redirect_uri_is_the_persons_error_never_a_redirect() {
    let env = env().await;
    let app = env.app(|s| s.locale = "de".to_owned()).await;
    let mut bad = input(&env, &app, None);
    bad.raw.redirect_uri = Some("https://evil.example/cb".to_owned());
    let e = oidc::authorize_request(&env.svc, &bad).await.unwrap_err();
    assert!(
        matches!(e.inner(), AuthError::RedirectUriNotRegistered),
        "{e:?}"
    );
    // The page that says so wears the app and speaks its language, no lookup.
    assert!(matches!(&e, AuthError::InApp { app, .. } if app.settings.locale == "de"));
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let e = decide(&env, &app, &Browser::at("192.0.2.1"), Some("none"))
        .await
        .unwrap_err();
    assert_eq!(at_client(e), "login_required");
}

#[tokio::test]
async fn nobody_signed_in_is_asked_for_an_address() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let outcome = decide(&env, &app, &Browser::at("192.0.2.1"), None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Login { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_signed_in_person_gets_a_code_for_a_first_party_app_at_once() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut browser, "ann@example.com").await;
    match decide(&env, &app, &browser, None).await.unwrap() {
        AuthorizeOutcome::Redirect { account, response } => {
            assert_eq!(account, 0);
            assert!(response.code_value().is_some(), "{response:?}");
            assert!(response.to_url().starts_with(REDIRECT_URI));
        }
        other => panic!("single sign-on: {other:?}"),
    }
}

#[tokio::test]
async fn prompt_login_asks_for_an_address_even_with_a_session() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut browser, "ann@example.com").await;
    let outcome = decide(&env, &app, &browser, Some("login")).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Login { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_third_party_app_asks_consent_until_it_is_granted() {
    let env = env().await;
    let app = env
        .app(|s| {
            s.first_party = false;
            s.consent = Some(ConsentMode::Required);
        })
        .await;
    let mut browser = Browser::at("192.0.2.1");
    // The sign-in itself stops at the consent screen.
    let signed_in = env.sign_in(&app, &mut browser, "bea@example.com").await;
    assert!(matches!(signed_in.next, Next::Consent { .. }));
    // So does a later authorization, and prompt=none may not ask.
    let pending = match decide(&env, &app, &browser, None).await.unwrap() {
        AuthorizeOutcome::Consent { pending, .. } => pending,
        other => panic!("consent first: {other:?}"),
    };
    let e = decide(&env, &app, &browser, Some("none"))
        .await
        .unwrap_err();
    assert_eq!(at_client(e), "consent_required");
    // Allowed once, never asked again for the same scope.
    let sealed = pending.seal(&env.svc);
    let answer =
        oidc::decide_pending_consent(&env.svc, &sealed, &browser.sessions, Decision::Allow)
            .await
            .unwrap();
    assert!(answer.code_value().is_some());
    let outcome = decide(&env, &app, &browser, Some("none")).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Redirect { .. }),
        "{outcome:?}"
    );
    // prompt=consent asks again all the same.
    let outcome = decide(&env, &app, &browser, Some("consent")).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Consent { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn only_the_session_the_consent_was_shown_to_may_answer_it() {
    let env = env().await;
    let app = env.app(|s| s.first_party = false).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut browser, "cal@example.com").await;
    let AuthorizeOutcome::Consent { pending, .. } =
        decide(&env, &app, &browser, None).await.unwrap()
    else {
        panic!("consent first");
    };
    let mut elsewhere = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut elsewhere, "cal@example.com").await;
    let e = oidc::decide_pending_consent(
        &env.svc,
        &pending.seal(&env.svc),
        &elsewhere.sessions,
        Decision::Allow,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AuthError::Token { .. }), "{e:?}");
}

#[tokio::test]
async fn several_accounts_show_the_chooser_and_prompt_none_cannot_choose() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&app, &mut browser, "one@example.com").await;
    env.sign_in(&app, &mut browser, "two@example.com").await;
    let outcome = decide(&env, &app, &browser, None).await.unwrap();
    assert!(
        matches!(&outcome, AuthorizeOutcome::Chooser(c) if c.len() == 2),
        "{outcome:?}"
    );
    let e = decide(&env, &app, &browser, Some("none"))
        .await
        .unwrap_err();
    assert_eq!(at_client(e), "account_selection_required");
    // The chooser's answer picks one; it becomes the current account.
    let req = request(&env, &app, None).await;
    let accounts = env.accounts(&browser).await;
    let second = accounts[1].live.session.id.clone();
    let outcome = oidc::authorize(
        &env.svc,
        &req,
        &accounts,
        Chosen::Session(second),
        browser.ip,
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Redirect { account: 1, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_session_older_than_the_apps_cap_cannot_serve_it() {
    let env = env().await;
    let strict = env.app(|s| s.session_max_age = Some(3600)).await;
    let lax = env.app(|_| {}).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&lax, &mut browser, "dot@example.com").await;
    env.clock.advance(3601);
    let outcome = decide(&env, &strict, &browser, None).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Login { .. }),
        "{outcome:?}"
    );
    let outcome = decide(&env, &lax, &browser, None).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Redirect { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_session_bound_to_an_ip_range_serves_only_from_that_range() {
    let env = env().await;
    let bound = env.app(|s| s.bind_ip_range = true).await;
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(&bound, &mut browser, "eli@example.com").await;
    let moved = Browser {
        ip: "203.0.113.4".parse().unwrap(),
        ..browser.clone()
    };
    let outcome = decide(&env, &bound, &moved, None).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Login { .. }),
        "{outcome:?}"
    );
    let outcome = decide(&env, &bound, &browser, None).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Redirect { .. }),
        "{outcome:?}"
    );
}

/// Signs in and exchanges a code with `offline_access`: the refresh token.
async fn refresh_token(env: &Env, app: &TestApp) -> String {
    let mut browser = Browser::at("192.0.2.1");
    env.sign_in(app, &mut browser, "fred@example.com").await;
    let mut input = input(env, app, None);
    input.raw.scope = Some("openid email offline_access".to_owned());
    let req = oidc::authorize_request(&env.svc, &input).await.unwrap();
    let accounts = env.accounts(&browser).await;
    let AuthorizeOutcome::Redirect { response, .. } =
        oidc::authorize(&env.svc, &req, &accounts, Chosen::Nobody, browser.ip)
            .await
            .unwrap()
    else {
        panic!("single sign-on");
    };
    let tokens = oidc::token(
        &env.svc,
        &app.app,
        &TokenRequest {
            grant_type: Some("authorization_code".to_owned()),
            code: response.code_value().map(str::to_owned),
            redirect_uri: Some(REDIRECT_URI.to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("the code exchanges");
    tokens
        .refresh_token
        .expect("offline_access gives a refresh token")
}

fn refresh(token: &str) -> TokenRequest {
    TokenRequest {
        grant_type: Some("refresh_token".to_owned()),
        refresh_token: Some(token.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_refresh_token_rotates_and_a_reused_one_revokes_its_family() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let first = refresh_token(&env, &app).await;
    let second = oidc::token(&env.svc, &app.app, &refresh(&first))
        .await
        .expect("rotates")
        .refresh_token
        .unwrap();
    assert_ne!(first, second);
    // The first presented again: someone holds a copy.
    let e = oidc::token(&env.svc, &app.app, &refresh(&first))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthError::Grant(GrantError::RefreshUnusable)),
        "{e:?}"
    );
    // ... so the whole family is gone, the newest token too.
    let e = oidc::token(&env.svc, &app.app, &refresh(&second))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthError::Grant(GrantError::RefreshUnusable)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_refresh_token_is_only_its_own_apps() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    let token = refresh_token(&env, &app).await;
    let e = oidc::token(&env.svc, &other.app, &refresh(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthError::Grant(GrantError::RefreshOfAnotherClient)),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_chooser_posts_back_the_whole_request_with_what_it_still_asks() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let mut input = input(&env, &app, Some("consent"));
    input.max_age = Some("300".to_owned());
    let req = oidc::authorize_request(&env.svc, &input).await.unwrap();
    let fields = req.form_fields();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("client_id"), Some(app.app.client_id.as_str()));
    assert_eq!(get("redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(get("scope"), Some("openid email"));
    assert_eq!(get("state"), Some("st"));
    assert_eq!(get("response_type"), Some("code"));
    assert_eq!(get("max_age"), Some("300"), "max_age still applies");
    assert_eq!(get("prompt"), Some("consent"), "consent is still asked");
    assert_eq!(get("nonce"), None, "no empty field for a missing value");
    let plain = request(&env, &app, None).await.form_fields();
    assert!(
        plain.iter().all(|(n, _)| *n != "prompt" && *n != "max_age"),
        "{plain:?}"
    );
}
