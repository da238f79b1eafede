//! The sign-in rules on a testkit database, without HTTP: code budgets,
//! remote approval, IP binding and headless confinement.

mod support;

use postern_auth::headless::{self, VerifyRequest};
use postern_auth::signin::{self, Confirmed, RemoteStatus, Requester, CODE_TRIES_PER_REQUEST};
use postern_auth::{AuthError, TokenProblem};
use postern_core::DevicePolicy;
use support::*;

fn problem(e: &AuthError) -> Option<TokenProblem> {
    match e.inner() {
        AuthError::Token { problem, .. } => Some(*problem),
        _ => None,
    }
}

#[tokio::test]
async fn a_request_survives_four_wrong_codes_and_dies_at_the_fifth() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let browser = Browser::at("192.0.2.1");
    let sent = env
        .request_link(&app, &browser, "ann@example.com", "openid")
        .await
        .unwrap();
    let (_, code) = env.last_link_and_code().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..CODE_TRIES_PER_REQUEST).rev() {
        let e = signin::redeem_code(&env.svc, &sent.login_id, wrong, &browser.who())
            .await
            .unwrap_err();
        assert!(
            matches!(e, AuthError::WrongCode { tries_left } if tries_left == left),
            "{left} tries left: {e:?}"
        );
    }
    let e = signin::redeem_code(&env.svc, &sent.login_id, wrong, &browser.who())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Used), "the fifth kills it");
    // The dead request offers the same sign-in again, in its language.
    let AuthError::Token {
        flow: Some(flow), ..
    } = e
    else {
        panic!("a way forward")
    };
    assert_eq!(flow.email, "ann@example.com");
    assert_eq!(flow.client_id, app.app.client_id);
    let e = signin::redeem_code(&env.svc, &sent.login_id, &code, &browser.who())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Used), "even the right code");
}

#[tokio::test]
async fn ten_wrong_codes_an_hour_stop_codes_for_the_address_but_a_right_one_gives_back() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let browser = Browser::at("192.0.2.1");
    // A right code gives its try back: it never counts against the budget.
    let sent = env
        .request_link(&app, &browser, "bob@example.com", "openid")
        .await
        .unwrap();
    let (_, code) = env.last_link_and_code().await;
    signin::redeem_code(&env.svc, &sent.login_id, &code, &browser.who())
        .await
        .expect("right code");
    // Two requests, four and four wrong tries, then two on a third: ten.
    let mut last = None;
    for tries in [4, 4, 2] {
        let sent = env
            .request_link(&app, &browser, "bob@example.com", "openid")
            .await
            .unwrap();
        let (_, code) = env.last_link_and_code().await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..tries {
            signin::redeem_code(&env.svc, &sent.login_id, wrong, &browser.who())
                .await
                .unwrap_err();
        }
        last = Some((sent.login_id, code));
    }
    let (login_id, code) = last.unwrap();
    let e = signin::redeem_code(&env.svc, &login_id, &code, &browser.who())
        .await
        .unwrap_err();
    assert_eq!(
        problem(&e),
        Some(TokenProblem::Used),
        "the address's hourly budget is spent: codes stop"
    );
}

#[tokio::test]
async fn only_the_asking_browser_may_type_a_code() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let asking = Browser::at("192.0.2.1");
    let sent = env
        .request_link(&app, &asking, "cy@example.com", "openid")
        .await
        .unwrap();
    let (_, code) = env.last_link_and_code().await;
    let other = Browser::at("192.0.2.1");
    let e = signin::redeem_code(&env.svc, &sent.login_id, &code, &other.who())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown));
    signin::redeem_code(&env.svc, &sent.login_id, &code, &asking.who())
        .await
        .expect("the asking browser may");
}

#[tokio::test]
async fn a_wrong_number_on_the_other_device_kills_a_remote_request() {
    let env = env().await;
    let app = env.app(|s| s.device_policy = DevicePolicy::Remote).await;
    let asking = Browser::at("192.0.2.1");
    let sent = env
        .request_link(&app, &asking, "dee@example.com", "openid")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let phone = Browser::at("198.51.100.7");
    let Confirmed::AskNumber(opened) = signin::confirm(&env.svc, &token, None, &phone.who())
        .await
        .unwrap()
    else {
        panic!("the other device is asked for the number");
    };
    let number = opened.request.remote_number.clone().expect("a number");
    let wrong = if number == "00" { "11" } else { "00" };
    let e = signin::confirm(&env.svc, &token, Some(wrong), &phone.who())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::WrongNumber));
    let status = signin::remote_status(&env.svc, &sent.login_id, Some(&asking.binding))
        .await
        .unwrap();
    assert_eq!(status, RemoteStatus::Dead, "link and code die with it");
}

#[tokio::test]
async fn the_right_number_approves_and_only_the_asking_browser_continues() {
    let env = env().await;
    let app = env.app(|s| s.device_policy = DevicePolicy::Remote).await;
    let asking = Browser::at("192.0.2.1");
    let sent = env
        .request_link(&app, &asking, "eve@example.com", "openid")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let phone = Browser::at("198.51.100.7");
    let number = signin::asked_by(&env.svc, &sent.login_id, Some(&asking.binding))
        .await
        .unwrap()
        .unwrap()
        .remote_number
        .unwrap();
    let approved = signin::confirm(&env.svc, &token, Some(&number), &phone.who())
        .await
        .unwrap();
    assert!(matches!(approved, Confirmed::Approved(_)), "{approved:?}");
    // The phone is not signed in, and cannot see the request.
    let e = signin::check(&env.svc, &sent.login_id, &phone.who(), vec![])
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown));
    let Ok(signin::Waiting::SignedIn(signed_in)) =
        signin::check(&env.svc, &sent.login_id, &asking.who(), vec![]).await
    else {
        panic!("the asking browser continues");
    };
    // Once: the request is consumed, and this browser holds its account.
    let here = vec![signed_in.session_secret];
    let e = signin::check(&env.svc, &sent.login_id, &asking.who(), here)
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Used));
    // Seen from a browser without that account, it finished elsewhere.
    let e = signin::check(&env.svc, &sent.login_id, &asking.who(), vec![])
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::FinishedElsewhere));
}

#[tokio::test]
async fn a_link_bound_to_an_ip_range_fails_from_elsewhere_and_works_nearby() {
    let env = env().await;
    let app = env.app(|s| s.bind_ip_range = true).await;
    let asking = Browser::at("192.0.2.1");
    env.request_link(&app, &asking, "fay@example.com", "openid")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let far = Browser::at("203.0.113.9");
    let e = signin::open_link(&env.svc, &token, far.ip)
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown), "another range");
    let near = "192.0.2.200".parse().unwrap();
    signin::open_link(&env.svc, &token, near)
        .await
        .expect("the same /24");
}

fn headless_who(ip: &str) -> Requester {
    Requester {
        ip: ip.parse().unwrap(),
        user_agent: None,
        accept_language: None,
        binding: None,
        ip_known: true,
        headless: true,
        passkey_lost: false,
    }
}

#[tokio::test]
async fn a_headless_link_is_redeemed_only_by_its_own_app_through_the_api() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    let params = signin::validate_auth_params(&env.svc, &env.raw_params(&app, "openid email"))
        .await
        .unwrap();
    let sent = signin::request_link(
        &env.svc,
        &params,
        "gus@example.com",
        &headless_who("192.0.2.5"),
    )
    .await
    .unwrap();
    let (token, code) = env.last_link_and_code().await;
    // Not in a browser: the hosted pages do not know it.
    let e = signin::open_link(&env.svc, &token, "192.0.2.5".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown));
    // Not by another app, with the token or the code.
    let by_token = VerifyRequest {
        token: Some(token.clone()),
        ..Default::default()
    };
    let e = headless::verify(
        &env.svc,
        &other.app,
        &by_token,
        "192.0.2.5".parse().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown));
    let by_code = VerifyRequest {
        login_id: Some(sent.login_id.clone()),
        code: Some(code),
        ..Default::default()
    };
    let e = headless::verify(&env.svc, &other.app, &by_code, "192.0.2.5".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(problem(&e), Some(TokenProblem::Unknown));
    // Its own app may.
    let issued = headless::verify(&env.svc, &app.app, &by_token, "192.0.2.5".parse().unwrap())
        .await
        .expect("its own app");
    assert_eq!(issued.user.email, "gus@example.com");
    // And only its own sessions are its to end.
    let e = headless::revoke_session(&env.svc, &other.app, &issued.session_id)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::NotFound), "{e:?}");
    headless::revoke_session(&env.svc, &app.app, &issued.session_id)
        .await
        .expect("its own session");
}

#[test]
fn a_flow_starts_again_with_its_destination_language_and_address() {
    let flow = postern_auth::Flow {
        client_id: "notes".to_owned(),
        redirect_uri: "https://notes.example/cb?x=1".to_owned(),
        scope: "openid email".to_owned(),
        state: Some("s t".to_owned()),
        nonce: None,
        code_challenge: Some("abc".to_owned()),
        locale: "de".to_owned(),
        email: "ann@example.com".to_owned(),
    };
    assert_eq!(
        flow.query(None, Some("ann@example.com")),
        "client_id=notes&redirect_uri=https%3A%2F%2Fnotes.example%2Fcb%3Fx%3D1\
         &scope=openid+email&state=s+t&code_challenge=abc&code_challenge_method=S256\
         &ui_locales=de&login_hint=ann%40example.com"
    );
    assert!(flow
        .query(Some(("response_type", "code")), None)
        .starts_with("response_type=code&client_id=notes&"));
    assert!(!flow.query(None, None).contains("login_hint"));
}

#[tokio::test]
async fn the_email_form_carries_the_validated_parameters_and_pkce_method() {
    let env = env().await;
    let app = env.app(|s| s.public = true).await;
    let params = signin::validate_auth_params(&env.svc, &env.raw_params(&app, "openid"))
        .await
        .unwrap();
    let fields = params.form_fields();
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method"
        ]
    );
    assert_eq!(fields[5].1, "S256");
}

#[test]
fn every_dead_link_has_its_own_words_in_every_language() {
    let all = [
        TokenProblem::Expired,
        TokenProblem::Used,
        TokenProblem::CodeUsed,
        TokenProblem::FinishedElsewhere,
        TokenProblem::TooManyTries,
        TokenProblem::StoppedByWrongNumber,
        TokenProblem::Unknown,
        TokenProblem::WrongNumber,
        TokenProblem::Missing,
    ];
    for lang in ["en", "de", "fr"] {
        let t = postern_core::i18n::strings(lang);
        let titles: std::collections::HashSet<_> = all.iter().map(|p| p.words(t).0).collect();
        assert_eq!(titles.len(), all.len(), "{lang}: one title per problem");
        assert_eq!(
            TokenProblem::Expired.words(t),
            (t.expired_title, t.expired_text)
        );
    }
}

#[tokio::test]
async fn the_check_page_counts_tries_left_and_the_wait_before_send_again() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let browser = Browser::at("192.0.2.1");
    let sent = env
        .request_link(&app, &browser, "ann@example.com", "openid")
        .await
        .unwrap();
    let (_, code) = env.last_link_and_code().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let _ = signin::redeem_code(&env.svc, &sent.login_id, wrong, &browser.who()).await;
    let (_, req) = signin::request_and_app(
        &env.svc,
        Some(&sent.login_id),
        Some(Some(browser.binding.as_str())),
    )
    .await
    .expect("the asking browser reads its request");
    assert_eq!(signin::tries_left(&req), CODE_TRIES_PER_REQUEST - 1);
    let made = req.created_at;
    assert_eq!(signin::resend_wait(&req, made), signin::RESEND_AFTER);
    assert_eq!(
        signin::resend_wait(&req, made + 10),
        signin::RESEND_AFTER - 10
    );
    assert_eq!(signin::resend_wait(&req, made + 600), 0, "never negative");
    assert_eq!(
        signin::resend_wait(&req, made - 5),
        signin::RESEND_AFTER,
        "clock skew"
    );
}
