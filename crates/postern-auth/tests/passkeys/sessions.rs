//! `required_after_first_sign_in` at `/authorize` (issue 15): a session the
//! browser already holds opens such an app only if it stands for the
//! passkey once the person has one; otherwise nobody is signed in there.

use postern_auth::oidc::{self, AuthorizeInput, AuthorizeOutcome, Chosen};
use postern_auth::Answer;

use super::*;

async fn decide(
    env: &Env,
    app: &TestApp,
    browser: &Browser,
    prompt: Option<&str>,
) -> Result<AuthorizeOutcome, AuthError> {
    let input = AuthorizeInput {
        response_type: Some("code".to_owned()),
        prompt: prompt.map(str::to_owned),
        raw: env.raw_params(app, "openid email"),
        ..Default::default()
    };
    let req = oidc::authorize_request(&env.svc, &input).await.unwrap();
    let accounts = env.accounts(browser).await;
    oidc::authorize(&env.svc, &req, &accounts, Chosen::Nobody, browser.ip).await
}

/// Single sign-on: a code for the app.
fn sso(outcome: Result<AuthorizeOutcome, AuthError>) -> bool {
    matches!(outcome, Ok(AuthorizeOutcome::Redirect { .. }))
}

/// Nobody usable: the email form, or `login_required` for `prompt=none`.
async fn nobody_for(env: &Env, app: &TestApp, browser: &Browser) -> bool {
    let login = matches!(
        decide(env, app, browser, None).await,
        Ok(AuthorizeOutcome::Login { .. })
    );
    let required = match decide(env, app, browser, Some("none")).await {
        Err(AuthError::AtClient(r)) => {
            matches!(
                r.answer,
                Answer::Error {
                    error: "login_required",
                    ..
                }
            )
        }
        _ => false,
    };
    login && required
}

#[tokio::test]
async fn an_email_session_opens_an_app_that_requires_the_passkey_only_if_it_stands_for_one() {
    let env = env().await;
    let optional = env.app(|_| {}).await;
    let required = env
        .app(|s| s.passkeys = PasskeyPolicy::RequiredAfterFirstSignIn)
        .await;
    let email = "kim@example.com";
    let mut browser = Browser::at("203.0.113.5");

    // A link to the app that does not ask; no passkey yet: the required
    // app takes the session too (the first sign-in may be by email).
    env.sign_in(&optional, &mut browser, email).await;
    assert!(sso(decide(&env, &required, &browser, None).await));

    // With a passkey on the account, the email session is nobody there;
    // the optional app still takes it.
    user_with_passkey(&env, email).await;
    assert!(nobody_for(&env, &required, &browser).await);
    assert!(sso(decide(&env, &optional, &browser, None).await));

    // A passkey made in this session: it stands for the passkey.
    let session = env.accounts(&browser).await[0].live.session.clone();
    let mut conn = env.svc.store.conn().await.unwrap();
    conn.mark_session_passkey_ok(&session.id, "someone-else")
        .await
        .unwrap();
    drop(conn);
    assert!(
        nobody_for(&env, &required, &browser).await,
        "only its own person marks a session"
    );
    let mut conn = env.svc.store.conn().await.unwrap();
    conn.mark_session_passkey_ok(&session.id, &session.user_id)
        .await
        .unwrap();
    drop(conn);
    assert!(sso(decide(&env, &required, &browser, None).await));

    // Another browser: a link to the optional app is nobody for the
    // required one; a "lost passkey" sign-in there stands for the passkey.
    let mut other = Browser::at("203.0.113.6");
    env.sign_in(&optional, &mut other, email).await;
    assert!(nobody_for(&env, &required, &other).await);
    env.request_link(&required, &other, email, "openid email")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let mut who = other.who();
    who.passkey_lost = true;
    let Visit::SignedIn(lost) = signin::visit(&env.svc, &token, &who).await.unwrap() else {
        panic!("the asking browser signs in");
    };
    other.sessions = oidc::remember_session(&env.svc, other.sessions.clone(), &lost.session_secret)
        .await
        .unwrap();
    assert!(sso(decide(&env, &required, &other, None).await));
}
