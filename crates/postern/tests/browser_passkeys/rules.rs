//! The rules around a passkey, in the browser (issue 15): an app that
//! requires the passkey is not opened by an email session of the same
//! browser; "Not now" is remembered; an app with passkeys off offers none;
//! a disabled or deleted person's passkey signs no one in, and a forged
//! answer learns nothing of the account; a synced passkey is `swk`; every
//! ending is counted in `/metrics`.

use postern_store::{AccountQueries, AdminQueries};

use super::*;

/// `postern_sign_ins_total{method="passkey",outcome=…}`, scraped from the
/// loopback and parsed as Prometheus text.
pub(super) async fn passkey_sign_ins(app: &TestApp, outcome: &str) -> f64 {
    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200, "/metrics answers the loopback");
    let text = res.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "postern_sign_ins_total"
                && s.labels.get("method") == Some("passkey")
                && s.labels.get("outcome") == Some(outcome)
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// An app of the test server for `callback`, changed by `change`.
async fn another_app(
    app: &TestApp,
    callback: &Callback,
    change: impl FnOnce(&mut AppSettings),
) -> TestClient {
    let uri = callback.redirect_uri.clone();
    app.create_app(move |s| {
        s.redirect_uris = vec![uri];
        s.first_party = true;
        change(s);
    })
    .await
}

/// An email sign-in for `auth` through the `/login` page of `plain` (an
/// app with passkeys off: no passkey script there, so the authenticator
/// does not sign in first), its fields rewritten to `auth`'s; the link is
/// opened in `b`.
async fn link_sign_in_from_plain(
    app: &TestApp,
    b: &Browser,
    plain: &TestClient,
    auth: &Authorization,
) {
    app.start_authorization(b, &app.authorization(plain, &[]))
        .await;
    let script = r#"
        var params = arguments[0];
        var form = document.querySelector('form[action="/login"]');
        Object.keys(params).forEach(function (k) {
          var i = form.querySelector('input[name="' + k + '"]');
          if (!i) { i = document.createElement('input'); i.type = 'hidden'; i.name = k; form.appendChild(i); }
          i.value = params[k];
        });
        return true;
    "#;
    b.client
        .execute(script, vec![auth_fields(auth)])
        .await
        .expect("the form is rewritten");
    let sent = app.sign_in_through_login(b, EMAIL).await;
    app.open_link(b, &sent).await;
}

/// The query of the app's redirect URI once `b` is back there.
async fn back_at(b: &Browser, client: &TestClient) -> std::collections::BTreeMap<String, String> {
    let url = b
        .wait_for_url(
            |u| u.as_str().starts_with(&format!("{}?", client.redirect_uri)),
            "the app's redirect URI",
        )
        .await;
    url.query_pairs().into_owned().collect()
}

fn amr(tokens: &Value) -> Value {
    jwt_claims(tokens["id_token"].as_str().unwrap())["amr"].clone()
}

#[tokio::test]
async fn an_email_session_does_not_open_an_app_that_requires_the_passkey_a_passkey_one_does() {
    if browser_tests_skipped() {
        return;
    }
    let (app, optional, callback) = setup(|_| {}).await;
    let required = another_app(&app, &callback, |s| {
        s.passkeys = PasskeyPolicy::RequiredAfterFirstSignIn
    })
    .await;
    let plain = another_app(&app, &callback, |s| s.passkeys = PasskeyPolicy::Off).await;
    let (b, _) = browser_with_authenticator(BrowserOptions::default()).await;

    // The session the passkey was made in stands for it: single sign-on.
    sign_in_and_make_passkey(&app, &b, &optional, None).await;
    let auth = app.authorization(&required, &[]);
    b.goto(&auth.url).await;
    let tokens = app.expect_back_at_app(&b, &required, &auth).await;
    assert_eq!(amr(&tokens), json!(["email"]));
    sign_out(&app, &b).await;

    // A link to the optional app in this browser, with a passkey on the
    // account: that app takes it.
    let auth = app.authorization(&optional, &[]);
    link_sign_in_from_plain(&app, &b, &plain, &auth).await;
    let tokens = app.expect_back_at_app(&b, &optional, &auth).await;
    assert_eq!(amr(&tokens), json!(["email"]));

    // The app that requires the passkey: nobody is signed in for it.
    let none = app.authorization(&required, &[("prompt", "none")]);
    b.goto(&none.url).await;
    let answer = back_at(&b, &required).await;
    assert_eq!(
        answer.get("error").map(String::as_str),
        Some("login_required"),
        "no code for an email session: {answer:?}"
    );
    assert!(!answer.contains_key("code"));

    // Without prompt=none: /login, where the passkey signs in.
    let auth = app.authorization(&required, &[]);
    passkey_sign_in(&app, &b, &auth).await;
    let tokens = app.expect_back_at_app(&b, &required, &auth).await;
    assert_eq!(
        amr(&tokens),
        json!(["hwk", "user"]),
        "a passkey sign-in, not the email session"
    );

    // That session opens it by single sign-on.
    let again = app.authorization(&required, &[("prompt", "none")]);
    b.goto(&again.url).await;
    let tokens = app.expect_back_at_app(&b, &required, &again).await;
    assert_eq!(amr(&tokens), json!(["hwk", "user"]));
    b.quit().await;
}

#[tokio::test]
async fn not_now_is_remembered_and_an_app_with_passkeys_off_offers_none() {
    if browser_tests_skipped() {
        return;
    }
    let (app, optional, callback) = setup(|_| {}).await;
    let plain = another_app(&app, &callback, |s| s.passkeys = PasskeyPolicy::Off).await;
    let (b, authenticator) = browser_with_authenticator(BrowserOptions::default()).await;

    // The script notes the platform authenticator on the optional app's /login…
    app.start_authorization(&b, &app.authorization(&optional, &[]))
        .await;
    login_ready(&b).await;
    // …and an app with passkeys off has no button and makes no offer.
    let auth = app.authorization(&plain, &[]);
    app.start_authorization(&b, &auth).await;
    assert!(!b.has("[data-passkey-signin]").await, "no passkey button");
    assert!(
        !b.has("script[src*=\"passkeys.js\"]").await,
        "no passkey script"
    );
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &plain, &auth).await;
    sign_out(&app, &b).await;

    // The optional app offers; "Not now" goes on to the app.
    let auth = app.authorization(&optional, &[]);
    app.start_authorization(&b, &auth).await;
    login_ready(&b).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    wait_visible(&b, "[data-passkey-offer] [data-passkey-go]").await;
    b.click("form[action=\"/passkeys/not-now\"] button[type=submit]")
        .await;
    app.expect_back_at_app(&b, &optional, &auth).await;
    sign_out(&app, &b).await;

    // The next email sign-in in this browser goes straight back.
    let auth = app.authorization(&optional, &[]);
    app.start_authorization(&b, &auth).await;
    login_ready(&b).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &optional, &auth).await;
    assert!(
        b.virtual_credentials(&authenticator).await.is_empty(),
        "no passkey was made"
    );
    b.quit().await;
}

#[tokio::test]
async fn a_disabled_or_deleted_persons_passkey_signs_no_one_in_and_a_forgery_learns_nothing() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, callback) = setup(|_| {}).await;
    let plain = another_app(&app, &callback, |s| s.passkeys = PasskeyPolicy::Off).await;
    let (a, _) = browser_with_authenticator(BrowserOptions::default()).await;
    sign_in_and_make_passkey(&app, &a, &client, None).await;
    sign_out(&app, &a).await;
    let user_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{EMAIL}'"))
        .await[0][0]
        .clone();
    let mut conn = app.state.store.conn().await.unwrap();
    conn.set_user_disabled(&user_id, Some(app.clock_now()))
        .await
        .unwrap();
    drop(conn);
    let live = "SELECT id FROM sessions WHERE revoked_at IS NULL";
    let refused = "SELECT id FROM sign_in_events WHERE method = 'passkey' AND outcome = 'refused'";

    // A forged signature hears that it did not verify, not whose it is.
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&a, &app.authorization(&plain, &[]))
        .await;
    let (id, answer) = answer_without_submitting(&a, &auth).await;
    let mut forged: Value = serde_json::from_str(&answer).unwrap();
    forged["response"]["signature"] = json!("A".repeat(96));
    submit_answer(&a, &id, &forged.to_string()).await;
    assert_eq!(a.status().await, 400);
    let text = a.text().await;
    assert!(
        text.contains("could not be checked") && !text.contains("disabled"),
        "{text}"
    );

    // Its true answer: refused for the disabled owner, nobody signed in.
    app.start_authorization(&a, &app.authorization(&plain, &[]))
        .await;
    let (id, answer) = answer_without_submitting(&a, &auth).await;
    submit_answer(&a, &id, &answer).await;
    assert_eq!(a.h1().await, "That passkey did not work");
    assert_eq!(a.status().await, 400);
    assert!(
        a.text().await.contains("This account is disabled."),
        "{}",
        a.text().await
    );
    assert!(!a.cookies().await.contains_key("postern_session"));
    assert!(app.rows(live).await.is_empty(), "no session");
    assert_eq!(
        app.rows(refused).await.len(),
        2,
        "both tries are in history"
    );

    // Deleted with its person: an unknown passkey.
    let mut conn = app.state.store.conn().await.unwrap();
    assert!(conn.delete_user(&user_id).await.unwrap());
    drop(conn);
    app.start_authorization(&a, &app.authorization(&plain, &[]))
        .await;
    let (id, answer) = answer_without_submitting(&a, &auth).await;
    submit_answer(&a, &id, &answer).await;
    assert_eq!(a.status().await, 400);
    assert!(
        a.text()
            .await
            .contains("This passkey is not registered here any more."),
        "{}",
        a.text().await
    );
    assert!(app.rows(live).await.is_empty(), "no session");

    // Each ending is counted, by what refused it.
    for outcome in ["rejected", "disabled", "unknown_passkey"] {
        assert_eq!(passkey_sign_ins(&app, outcome).await, 1.0, "{outcome}");
    }
    assert_eq!(passkey_sign_ins(&app, "success").await, 0.0);
    a.quit().await;
}

#[tokio::test]
async fn a_synced_passkey_signs_in_as_swk() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    // WebAuthn Level 3 §11.3: backup eligible and backed up, as a passkey
    // synced by a password manager is.
    let synced = json!({"defaultBackupEligibility": true, "defaultBackupState": true});
    let authenticator = b.add_virtual_authenticator_with(synced).await;
    sign_in_and_make_passkey(&app, &b, &client, None).await;
    assert_eq!(
        b.virtual_credentials(&authenticator).await.len(),
        1,
        "one passkey"
    );
    sign_out(&app, &b).await;
    let auth = app.authorization(&client, &[]);
    passkey_sign_in(&app, &b, &auth).await;
    let tokens = app.expect_back_at_app(&b, &client, &auth).await;
    assert_eq!(
        amr(&tokens),
        json!(["swk", "user"]),
        "a synced passkey (RFC 8176)"
    );
    assert_eq!(passkey_sign_ins(&app, "success").await, 1.0);
    let kind = app
        .rows("SELECT backup_eligible, backup_state FROM passkeys")
        .await;
    assert_eq!(kind, vec![vec!["1".to_owned(), "1".to_owned()]]);
    b.quit().await;
}
