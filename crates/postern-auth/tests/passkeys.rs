//! The passkey ceremonies' rules (issue 15) on a testkit database, without
//! HTTP: challenges bound to the browser, single use, five minutes; what a
//! refused answer records; the rule of `required_after_first_sign_in`; the
//! `amr` of each method. A whole ceremony with a real authenticator is in
//! the Chromium tests (`crates/postern/tests/browser_passkeys.rs`).

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use postern_auth::passkeys::{self, PasskeyProblem, CHALLENGE_TTL};
use postern_auth::signin::{self, Method, Visit};
use postern_auth::AuthError;
use postern_core::PasskeyPolicy;
use postern_store::{AdminQueries, PasskeyQueries, Queries, SessionQueries, StoredPasskey};
use serde_json::json;
use support::{env, Browser, Env, TestApp};

async fn params(env: &Env, app: &TestApp) -> signin::AuthParams {
    signin::validate_auth_params(&env.svc, &env.raw_params(app, "openid email"))
        .await
        .unwrap()
}

fn passkey_problem(e: &AuthError) -> Option<PasskeyProblem> {
    match e.inner() {
        AuthError::Passkey(p) => Some(*p),
        _ => None,
    }
}

/// An assertion that names `credential_id` and `handle` but whose
/// signature is nonsense: enough to be looked up, never to sign in.
fn forged_assertion(credential_id: &[u8], handle: &[u8]) -> String {
    let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
    json!({
        "id": b(credential_id),
        "rawId": b(credential_id),
        "type": "public-key",
        "extensions": {},
        "response": {
            "authenticatorData": b(&[0u8; 37]),
            "clientDataJSON": b(br#"{"type":"webauthn.get","challenge":"AAAA","origin":"https://evil.example"}"#),
            "signature": b(&[1u8; 64]),
            "userHandle": b(handle),
        }
    })
    .to_string()
}

/// A user with a stored passkey row (its public key is not real: the
/// rules around it are what is tested here). Returns the user id, the
/// credential id and the user handle.
async fn user_with_passkey(env: &Env, email: &str) -> (String, Vec<u8>, uuid_bytes::Handle) {
    let mut conn = env.svc.store.conn().await.unwrap();
    let user = conn
        .upsert_user_sign_in("u-passkey-1", email, env.now())
        .await
        .unwrap();
    let credential_id = vec![7u8; 16];
    let handle = uuid_bytes::Handle([9u8; 16]);
    conn.insert_passkey(&StoredPasskey {
        id: "pk-0000000000000001".to_owned(),
        user_id: user.id.clone(),
        credential_id: URL_SAFE_NO_PAD.encode(&credential_id),
        user_handle: handle.to_string(),
        passkey: "{}".to_owned(),
        sign_count: 0,
        backup_eligible: true,
        backup_state: true,
        transports: Some("internal,hybrid".to_owned()),
        name: "Chrome on Linux".to_owned(),
        created_at: env.now(),
        last_used_at: None,
    })
    .await
    .unwrap();
    (user.id, credential_id, handle)
}

/// The user handle as webauthn-rs prints it (a UUID), without naming the
/// uuid crate here.
mod uuid_bytes {
    pub struct Handle(pub [u8; 16]);
    impl std::fmt::Display for Handle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let h: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
            write!(
                f,
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
    }
}

#[tokio::test]
async fn a_sign_in_ceremony_is_bound_to_its_browser_single_use_and_short_lived() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let params = params(&env, &app).await;
    let mine = Browser::at("203.0.113.5");
    let other = Browser::at("203.0.113.6");

    let started = passkeys::start_authentication(&env.svc, &params, &mine.who())
        .await
        .unwrap();
    let pk = &started.options["publicKey"];
    assert_eq!(pk["rpId"], "id.example", "RP ID is the public URL's host");
    assert_eq!(pk["userVerification"], "required");
    assert_eq!(started.options["mediation"], "conditional");

    // Another browser presenting this ceremony is refused, and does not
    // spend it.
    let e = passkeys::finish_authentication(&env.svc, &started.challenge_id, "{}", &other.who())
        .await
        .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Challenge));

    // Its own browser may use it once: a bad answer spends it.
    let e = passkeys::finish_authentication(&env.svc, &started.challenge_id, "{}", &mine.who())
        .await
        .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Rejected));
    let e = passkeys::finish_authentication(&env.svc, &started.challenge_id, "{}", &mine.who())
        .await
        .unwrap_err();
    assert_eq!(
        passkey_problem(&e),
        Some(PasskeyProblem::Challenge),
        "a replayed ceremony is refused"
    );

    // Five minutes, then it is gone.
    let late = passkeys::start_authentication(&env.svc, &params, &mine.who())
        .await
        .unwrap();
    env.clock.advance(CHALLENGE_TTL + 1);
    let e = passkeys::finish_authentication(&env.svc, &late.challenge_id, "{}", &mine.who())
        .await
        .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Challenge));

    // A made-up id is the same answer.
    let e = passkeys::finish_authentication(&env.svc, "no-such-ceremony", "{}", &mine.who())
        .await
        .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Challenge));
}

#[tokio::test]
async fn unknown_and_forged_credentials_sign_no_one_in_and_are_recorded() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let params = params(&env, &app).await;
    let browser = Browser::at("203.0.113.5");
    let (user_id, credential_id, handle) = user_with_passkey(&env, "kim@example.com").await;

    // A credential nobody registered.
    let started = passkeys::start_authentication(&env.svc, &params, &browser.who())
        .await
        .unwrap();
    let e = passkeys::finish_authentication(
        &env.svc,
        &started.challenge_id,
        &forged_assertion(&[1u8; 16], &handle.0),
        &browser.who(),
    )
    .await
    .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::UnknownCredential));

    // A registered credential presented with another account's handle.
    let started = passkeys::start_authentication(&env.svc, &params, &browser.who())
        .await
        .unwrap();
    let e = passkeys::finish_authentication(
        &env.svc,
        &started.challenge_id,
        &forged_assertion(&credential_id, &[3u8; 16]),
        &browser.who(),
    )
    .await
    .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Rejected));
    let _ = handle;

    let events = env
        .svc
        .store
        .conn()
        .await
        .unwrap()
        .sign_in_events(&user_id, 10)
        .await
        .unwrap();
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.method == "passkey" && e.outcome == "refused")
        .collect();
    assert!(
        !refused.is_empty(),
        "refused passkey sign-ins of a known owner are in their history: {events:?}"
    );
    assert!(
        env.svc
            .store
            .conn()
            .await
            .unwrap()
            .user_sessions(&user_id)
            .await
            .unwrap()
            .is_empty(),
        "no session was made"
    );
}

#[tokio::test]
async fn an_app_without_passkeys_starts_no_ceremony() {
    let env = env().await;
    let app = env.app(|s| s.passkeys = PasskeyPolicy::Off).await;
    let params = params(&env, &app).await;
    let e = passkeys::start_authentication(&env.svc, &params, &Browser::at("203.0.113.5").who())
        .await
        .unwrap_err();
    assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Off));
}

#[tokio::test]
async fn required_after_first_sign_in_refuses_the_link_until_the_person_says_they_lost_it() {
    let env = env().await;
    let app = env
        .app(|s| s.passkeys = PasskeyPolicy::RequiredAfterFirstSignIn)
        .await;
    let mut browser = Browser::at("203.0.113.5");

    // No passkey yet: the link works, and a passkey is offered.
    let first = env.sign_in(&app, &mut browser, "kim@example.com").await;
    assert!(
        first.passkey_offer.is_some(),
        "an email sign-in offers a passkey"
    );
    let user = env
        .svc
        .store
        .conn()
        .await
        .unwrap()
        .user_by_email("kim@example.com")
        .await
        .unwrap()
        .unwrap();
    env.svc
        .store
        .conn()
        .await
        .unwrap()
        .insert_passkey(&StoredPasskey {
            id: "pk-0000000000000002".to_owned(),
            user_id: user.id.clone(),
            credential_id: "AQID".to_owned(),
            user_handle: "x".to_owned(),
            passkey: "{}".to_owned(),
            sign_count: 0,
            backup_eligible: false,
            backup_state: false,
            transports: None,
            name: "Key".to_owned(),
            created_at: env.now(),
            last_used_at: None,
        })
        .await
        .unwrap();

    // Now the link alone is refused, and the link stays usable.
    env.request_link(&app, &browser, "kim@example.com", "openid email")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let e = signin::visit(&env.svc, &token, &browser.who())
        .await
        .unwrap_err();
    assert!(
        matches!(e.inner(), AuthError::PasskeyRequired { .. }),
        "refused: {e:?}"
    );

    // "I lost my passkey": the same link signs in, and history says so.
    let mut who = browser.who();
    who.passkey_lost = true;
    let Visit::SignedIn(_) = signin::visit(&env.svc, &token, &who).await.unwrap() else {
        panic!("the asking browser signs in");
    };
    let events = env
        .svc
        .store
        .conn()
        .await
        .unwrap()
        .sign_in_events(&user.id, 10)
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.method == "link" && e.outcome == "refused"));
    assert!(events
        .iter()
        .any(|e| e.method == "link_passkey_lost" && e.outcome == "success"));

    // An optional app never asks.
    let optional = env.app(|_| {}).await;
    env.sign_in(&optional, &mut browser, "kim@example.com")
        .await;
}

#[tokio::test]
async fn a_persons_passkeys_are_listed_renamed_and_deleted_only_by_them() {
    let env = env().await;
    let (user_id, _, _) = user_with_passkey(&env, "kim@example.com").await;
    let list = passkeys::list_for_user(&env.svc, &user_id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Chrome on Linux");
    assert_eq!(list[0].device, passkeys::DeviceKind::Synced);
    let id = list[0].id.clone();

    passkeys::rename(&env.svc, &user_id, &id, "  Laptop\u{7}  ")
        .await
        .unwrap();
    assert_eq!(
        passkeys::list_for_user(&env.svc, &user_id).await.unwrap()[0].name,
        "Laptop"
    );
    let e = passkeys::delete(&env.svc, "someone-else", &id)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::NotFound));
    passkeys::delete(&env.svc, &user_id, &id).await.unwrap();
    assert!(passkeys::list_for_user(&env.svc, &user_id)
        .await
        .unwrap()
        .is_empty());
}

#[test]
fn amr_says_hardware_or_software_key_and_user_verification() {
    let pk = |hardware, verified| Method::Passkey { hardware, verified }.amr();
    assert_eq!(pk(true, true), "hwk user");
    assert_eq!(pk(false, true), "swk user");
    assert_eq!(pk(true, false), "hwk");
    assert_eq!(
        Method::Passkey {
            hardware: false,
            verified: true
        }
        .event(),
        "passkey"
    );
    assert_eq!(Method::Link.amr(), "email");
    assert_eq!(Method::LinkPasskeyLost.amr(), "email");
    assert_eq!(Method::CodePasskeyLost.event(), "code_passkey_lost");
}

#[tokio::test]
async fn making_a_passkey_is_bound_to_its_person_and_browser_single_use_and_short_lived() {
    let env = env().await;
    let mut conn = env.svc.store.conn().await.unwrap();
    let kim = conn
        .upsert_user_sign_in("u-kim", "kim@example.com", env.now())
        .await
        .unwrap();
    let lea = conn
        .upsert_user_sign_in("u-lea", "lea@example.com", env.now())
        .await
        .unwrap();
    drop(conn);
    let mine = Browser::at("203.0.113.5");
    let other = Browser::at("203.0.113.6");
    let mine_who = mine.who();
    let start = || passkeys::start_registration(&env.svc, &kim.id, "Firefox on Linux", &mine_who);

    let started = start().await.unwrap();
    let pk = &started.options["publicKey"];
    assert_eq!(
        pk["rp"]["id"], "id.example",
        "RP ID is the public URL's host"
    );
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(
        pk["attestation"], "none",
        "no attestation is asked: any authenticator will do"
    );
    assert_ne!(
        pk["user"]["id"].as_str().unwrap(),
        URL_SAFE_NO_PAD.encode(kim.id.as_bytes()),
        "the user handle is derived, not the internal id"
    );
    let finish = |id: String, who: signin::Requester, user: String| {
        let svc = env.svc.clone();
        async move { passkeys::finish_registration(&svc, &user, "s", &id, "{}", &who).await }
    };
    let problem = |r: Result<passkeys::PasskeyInfo, AuthError>| passkey_problem(&r.unwrap_err());

    // Another browser, or another person in this browser: refused, and the
    // ceremony stays usable by its own.
    let id = started.challenge_id.clone();
    assert_eq!(
        problem(finish(id.clone(), other.who(), kim.id.clone()).await),
        Some(PasskeyProblem::Challenge)
    );
    assert_eq!(
        problem(finish(id.clone(), mine.who(), lea.id.clone()).await),
        Some(PasskeyProblem::Challenge)
    );
    // Its own browser and person: a bad answer spends it; again is a replay.
    assert_eq!(
        problem(finish(id.clone(), mine.who(), kim.id.clone()).await),
        Some(PasskeyProblem::Rejected)
    );
    assert_eq!(
        problem(finish(id, mine.who(), kim.id.clone()).await),
        Some(PasskeyProblem::Challenge),
        "a replayed ceremony is refused"
    );
    // A sign-in ceremony is not a registration one.
    let app = env.app(|_| {}).await;
    let params = params(&env, &app).await;
    let signin = passkeys::start_authentication(&env.svc, &params, &mine.who())
        .await
        .unwrap();
    assert_eq!(
        problem(finish(signin.challenge_id, mine.who(), kim.id.clone()).await),
        Some(PasskeyProblem::Challenge)
    );
    // Five minutes.
    let late = start().await.unwrap();
    env.clock.advance(CHALLENGE_TTL + 1);
    assert_eq!(
        problem(finish(late.challenge_id, mine.who(), kim.id.clone()).await),
        Some(PasskeyProblem::Challenge)
    );
    // Nothing was stored.
    assert!(passkeys::list_for_user(&env.svc, &kim.id)
        .await
        .unwrap()
        .is_empty());

    // A disabled person makes none.
    env.svc
        .store
        .conn()
        .await
        .unwrap()
        .set_user_disabled(&kim.id, Some(env.now()))
        .await
        .unwrap();
    assert_eq!(
        passkey_problem(&start().await.unwrap_err()),
        Some(PasskeyProblem::UserDisabled)
    );
}

#[tokio::test]
async fn failed_passkey_sign_ins_spend_the_code_entry_budget_of_the_ip() {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let params = params(&env, &app).await;
    let browser = Browser::at("203.0.113.5");
    for _ in 0..signin::CODE_TRIES_PER_IP_HOUR {
        let started = passkeys::start_authentication(&env.svc, &params, &browser.who())
            .await
            .unwrap();
        let e = passkeys::finish_authentication(
            &env.svc,
            &started.challenge_id,
            "not json",
            &browser.who(),
        )
        .await
        .unwrap_err();
        assert_eq!(passkey_problem(&e), Some(PasskeyProblem::Rejected));
    }
    // The IP's budget is spent: the next answer is not even looked at.
    let started = passkeys::start_authentication(&env.svc, &params, &browser.who())
        .await
        .unwrap();
    let e = passkeys::finish_authentication(&env.svc, &started.challenge_id, "{}", &browser.who())
        .await
        .unwrap_err();
    assert!(
        matches!(e.inner(), AuthError::RateLimited { .. }),
        "429 once the IP spent its budget: {e:?}"
    );
}

#[test]
fn every_passkey_problem_is_named_by_its_description_and_has_words() {
    use postern_auth::passkeys::{DeviceKind, PasskeyProblem};
    let p = postern_core::i18n::passkeys::strings("fr");
    for problem in PasskeyProblem::ALL {
        assert_eq!(PasskeyProblem::named_by(problem.describe()), Some(problem));
        assert!(!problem.words(p).is_empty(), "{problem:?}");
    }
    assert_eq!(PasskeyProblem::named_by("The code is wrong."), None);
    assert_eq!(
        PasskeyProblem::TooMany.words(p),
        PasskeyProblem::Duplicate.words(p)
    );
    assert_eq!(DeviceKind::Synced.words(p), Some(p.kind_synced));
    assert_eq!(
        DeviceKind::Unknown.words(p),
        None,
        "nothing said, nothing shown"
    );
}

// Sessions and an app that requires the passkey: in a module of this test
// binary, so each file stays short.
#[path = "passkeys/sessions.rs"]
mod sessions;
