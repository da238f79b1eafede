//! Passkeys end to end (issue 15) in a real headless Chromium with the
//! WebDriver virtual authenticator (CTAP2, resident keys, user
//! verification): made when offered after an email sign-in, used to sign
//! in with no email, listed and deleted on `/account`; an app that wants
//! the passkey refuses the link alone; a ceremony answered from another
//! browser is refused. Screenshots (`POSTERN_SCREENSHOTS=1`) of the offer,
//! the button on `/login` and the list on `/account`.
//!
//! The server's public URL is `http://localhost:<port>`: a WebAuthn relying
//! party is a domain, never an IP address.

mod support;

use postern_core::{AppSettings, PasskeyPolicy};
use serde_json::{json, Value};
use support::*;

const EMAIL: &str = "ada@example.com";

async fn setup(change: impl FnOnce(&mut AppSettings)) -> (TestApp, TestClient, Callback) {
    // Ada administers the server too: her page in /admin lists her passkeys.
    let app = spawn_localhost_app_with(&[("POSTERN_ADMIN_EMAILS", EMAIL)]).await;
    let callback = Callback::start().await;
    let uri = callback.redirect_uri.clone();
    let client = app
        .create_app(move |s| {
            s.redirect_uris = vec![uri];
            s.first_party = true;
            change(s);
        })
        .await;
    (app, client, callback)
}

/// A browser with a platform authenticator (fingerprint) and its id.
async fn browser_with_authenticator(opts: BrowserOptions) -> (Browser, String) {
    let b = Browser::launch_with(opts).await;
    let id = b.add_virtual_authenticator().await;
    (b, id)
}

/// Waits until the script has revealed the element `css` (the passkey
/// parts are hidden until it runs).
async fn wait_visible(b: &Browser, css: &str) {
    let script = format!(
        "var e = document.querySelector({}); return !!e && !e.closest('[hidden]');",
        json!(css)
    );
    for _ in 0..100 {
        if b.js(&script).await == json!(true) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css} never showed:\n{}", b.text().await);
}

/// On `/login`: waits for the passkey button and for the script to have
/// noted the platform authenticator (the offer depends on it).
async fn login_ready(b: &Browser) {
    wait_visible(b, "[data-passkey-signin] [data-passkey-go]").await;
    for _ in 0..50 {
        if b.js("return document.cookie.indexOf('postern_passkeys_ok=1') >= 0;")
            .await
            == json!(true)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the script did not note the platform authenticator");
}

/// From `/authorize`, an email sign-in through the link, the passkey made
/// on the offer, and back at the app; returns the token response.
async fn sign_in_and_make_passkey(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    shots: Option<(&str, &str)>,
) -> Value {
    let auth = app.authorization(client, &[]);
    app.start_authorization(b, &auth).await;
    login_ready(b).await;
    if let Some((lang, device)) = shots {
        b.shot(&format!("passkey-login-{lang}-{device}")).await;
    }
    let sent = app.sign_in_through_login(b, EMAIL).await;
    app.open_link(b, &sent).await;
    wait_visible(b, "[data-passkey-offer] [data-passkey-go]").await;
    assert!(
        b.has("form[action=\"/passkeys/not-now\"]").await,
        "the offer has \"Not now\""
    );
    if let Some((lang, device)) = shots {
        b.shot(&format!("passkey-offer-{lang}-{device}")).await;
    }
    b.click("[data-passkey-offer] [data-passkey-go]").await;
    let tokens = app.expect_back_at_app(b, client, &auth).await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["email"]),
        "the sign-in the passkey was made after was an email one"
    );
    tokens
}

async fn sign_out(app: &TestApp, b: &Browser) {
    b.goto(&app.url("/logout")).await;
    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;
    // The answer is the "signed out" page, still at /logout.
    for _ in 0..100 {
        if !b.has("form[action=\"/logout\"]").await
            && !b.cookies().await.contains_key("postern_session")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("not signed out:\n{}", b.text().await);
}

/// On `/login` of a new authorization: "Sign in with a passkey", or the
/// browser's autofill (conditional mediation), which the virtual
/// authenticator answers at once when the page loads: whichever comes
/// first. Returns once the page has left `/login`.
async fn passkey_sign_in(app: &TestApp, b: &Browser, auth: &Authorization) {
    b.goto(&auth.url).await;
    for _ in 0..100 {
        let url = b.url().await;
        let on_login = url.path() == "/login" && url.as_str().starts_with(&app.address);
        if !on_login && url.path() != "/authorize" {
            return;
        }
        if on_login
            && b.js(
                "var e = document.querySelector('[data-passkey-signin] [data-passkey-go]');\
                     return !!e && !e.closest('[hidden]');",
            )
            .await
                == json!(true)
        {
            // The click may race the autofill's own answer: either way the
            // page leaves /login.
            let _ = b
                .client
                .execute(
                    "var e = document.querySelector('[data-passkey-signin] [data-passkey-go]');\
                     if (e) e.click();",
                    vec![],
                )
                .await;
            b.wait_for_url(|u| u.path() != "/login", "the passkey sign-in")
                .await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no passkey sign-in:\n{}", b.text().await);
}

#[tokio::test]
async fn a_passkey_made_when_offered_signs_in_without_email_and_stops_once_deleted() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let (b, authenticator) = browser_with_authenticator(BrowserOptions::default()).await;

    sign_in_and_make_passkey(&app, &b, &client, None).await;
    let creds = b.virtual_credentials(&authenticator).await;
    assert_eq!(
        creds.len(),
        1,
        "one passkey on the authenticator: {creds:?}"
    );
    assert_eq!(
        creds[0]["isResidentCredential"],
        json!(true),
        "discoverable"
    );

    sign_out(&app, &b).await;
    let before = app.rows("SELECT id FROM outbox").await.len();
    let auth = app.authorization(&client, &[]);
    passkey_sign_in(&app, &b, &auth).await;
    let tokens = app.expect_back_at_app(&b, &client, &auth).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        claims["amr"],
        json!(["hwk", "user"]),
        "a device-bound passkey with user verification (RFC 8176)"
    );
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(
        app.rows("SELECT id FROM outbox").await.len(),
        before,
        "no email was queued"
    );
    let events = app
        .rows("SELECT method, outcome FROM sign_in_events ORDER BY at, method")
        .await;
    assert!(
        events.contains(&vec!["passkey".to_owned(), "success".to_owned()]),
        "history has the passkey sign-in: {events:?}"
    );
    assert_eq!(
        rules::passkey_sign_ins(&app, "success").await,
        1.0,
        "/metrics counts the passkey sign-in"
    );

    // /account lists it (name, created, last used, kind) and deletes it.
    app.open_account(&b, EMAIL).await;
    let items = b.find_all(".passkey-list > li").await;
    assert_eq!(
        items.len(),
        1,
        "/account lists the passkey:\n{}",
        b.text().await
    );
    let text = b.text().await;
    assert!(text.contains("Chrome"), "named after the browser:\n{text}");
    assert!(text.contains("On one device only"), "its kind:\n{text}");
    assert!(
        !text.contains("Last used: never"),
        "it was used to sign in:\n{text}"
    );
    b.fill(".passkey-list form.rename input[name=name]", "Work laptop")
        .await;
    b.click(".passkey-list form.rename button[type=submit]")
        .await;
    b.wait_for_path("/account").await;
    assert!(b.text().await.contains("Work laptop"), "renamed");

    // The admin panel shows it on her page.
    let user_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{EMAIL}'"))
        .await[0][0]
        .clone();
    b.goto(&app.url(&format!("/admin/users/{user_id}"))).await;
    b.wait_for_path(&format!("/admin/users/{user_id}")).await;
    let text = b.text().await;
    assert!(
        text.contains("Passkeys") && text.contains("Work laptop") && text.contains("this_device"),
        "the panel lists her passkey:\n{text}"
    );
    assert!(
        b.has("form[action$=\"/passkeys/delete\"]").await,
        "and can delete it"
    );
    app.open_account(&b, EMAIL).await;
    b.click("form[action=\"/account/passkeys/delete\"] button[type=submit]")
        .await;
    b.wait_for_path("/account").await;
    let text = b.text().await;
    assert!(
        text.contains("That passkey was deleted") && text.contains("You have no passkeys yet."),
        "deleted:\n{text}"
    );

    // The authenticator still holds it, but it signs no one in any more.
    sign_out(&app, &b).await;
    let auth = app.authorization(&client, &[]);
    passkey_sign_in(&app, &b, &auth).await;
    b.wait_for_path("/passkeys/authenticate/finish").await;
    assert_eq!(b.h1().await, "That passkey did not work");
    assert!(
        b.text()
            .await
            .contains("This passkey is not registered here any more."),
        "{}",
        b.text().await
    );
    assert_eq!(b.status().await, 400);
    let refused = app
        .rows("SELECT outcome FROM sign_in_events WHERE method = 'passkey' AND outcome = 'refused'")
        .await;
    // The button and the autofill may both have tried: one row each.
    assert!(!refused.is_empty(), "the refused try is in history");
    assert!(
        rules::passkey_sign_ins(&app, "unknown_passkey").await >= 1.0,
        "/metrics counts the refused try"
    );
    b.quit().await;
}

#[tokio::test]
async fn an_app_that_wants_the_passkey_refuses_the_link_alone_until_it_is_lost() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) =
        setup(|s| s.passkeys = PasskeyPolicy::RequiredAfterFirstSignIn).await;
    // The first sign-in by link works (no passkey yet) and makes one.
    let (a, _) = browser_with_authenticator(BrowserOptions::default()).await;
    sign_in_and_make_passkey(&app, &a, &client, None).await;
    a.quit().await;

    // On another device (no authenticator), the link alone is refused.
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    assert_eq!(
        b.h1().await,
        "Sign in with your passkey",
        "{}",
        b.text().await
    );
    assert_eq!(b.status().await, 403);
    assert!(
        b.has("a[href*=\"/login?\"]").await,
        "a way to use the passkey instead"
    );
    let sessions = app
        .rows("SELECT id FROM sessions WHERE revoked_at IS NULL")
        .await;
    assert_eq!(
        sessions.len(),
        1,
        "the link alone made no session (only A's)"
    );

    // "I lost my passkey": the same link works, and history marks it.
    b.click("form[action=\"/passkeys/lost\"] button[type=submit]")
        .await;
    let tokens = app.expect_back_at_app(&b, &client, &auth).await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["email"])
    );
    let events = app
        .rows("SELECT method, outcome FROM sign_in_events ORDER BY at")
        .await;
    assert!(
        events.contains(&vec!["link".to_owned(), "refused".to_owned()])
            && events.contains(&vec!["link_passkey_lost".to_owned(), "success".to_owned()]),
        "{events:?}"
    );
    b.quit().await;
}

/// The parameters of an `/authorize` URL, as the hidden fields of the
/// `/login` form carry them.
fn auth_fields(auth: &Authorization) -> Value {
    let url = url::Url::parse(&auth.url).unwrap();
    let fields: serde_json::Map<String, Value> = url
        .query_pairs()
        .filter(|(k, _)| k != "response_type")
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(fields)
}

/// On a `/login` page without the passkey script (an app with passkeys
/// off, so no autofill answers first): starts a passkey sign-in for
/// `auth` and lets the authenticator answer, without submitting. The
/// ceremony's id and the answer.
async fn answer_without_submitting(b: &Browser, auth: &Authorization) -> (String, String) {
    let script = r#"
        var params = arguments[0];
        var done = arguments[arguments.length - 1];
        var csrf = document.querySelector('form[action="/login"] input[name=csrf_token]').value;
        var fields = [['csrf_token', csrf]];
        Object.keys(params).forEach(function (k) { fields.push([k, params[k]]); });
        function b64(buf) {
          var bytes = new Uint8Array(buf), s = '';
          for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
          return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        }
        function unb64(s) {
          s = s.replace(/-/g, '+').replace(/_/g, '/');
          while (s.length % 4) s += '=';
          var bin = atob(s), out = new Uint8Array(bin.length);
          for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
          return out.buffer;
        }
        fetch('/passkeys/authenticate/start', { method: 'POST', credentials: 'same-origin',
            headers: { 'Accept': 'application/json' }, body: new URLSearchParams(fields) })
          .then(function (r) { return r.json(); })
          .then(function (started) {
            var pk = started.options.publicKey;
            var req = { challenge: unb64(pk.challenge), rpId: pk.rpId,
                        userVerification: pk.userVerification, allowCredentials: [] };
            return navigator.credentials.get({ publicKey: req }).then(function (c) {
              var r = c.response;
              done([started.challenge_id, JSON.stringify({ id: c.id, rawId: b64(c.rawId),
                type: c.type, extensions: {}, response: {
                  authenticatorData: b64(r.authenticatorData),
                  clientDataJSON: b64(r.clientDataJSON), signature: b64(r.signature),
                  userHandle: b64(r.userHandle) } })]);
            });
          })
          .catch(function (e) { done(['', String(e)]); });
    "#;
    let v = b
        .client
        .execute_async(script, vec![auth_fields(auth)])
        .await
        .expect("the ceremony runs");
    let id = v[0].as_str().unwrap_or_default().to_owned();
    let answer = v[1].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "the ceremony ran: {answer}");
    (id, answer)
}

/// Posts a ceremony's answer from the `/login` page `b` shows, with its
/// own CSRF token, as the passkey script would.
async fn submit_answer(b: &Browser, id: &str, answer: &str) {
    let script = format!(
        "var csrf = document.querySelector('form[action=\"/login\"] input[name=csrf_token]').value;\
         var f = document.createElement('form');\
         f.method = 'post'; f.action = '/passkeys/authenticate/finish';\
         [['csrf_token', csrf], ['challenge_id', {}], ['credential', {}]].forEach(function (p) {{\
           var i = document.createElement('input'); i.type = 'hidden';\
           i.name = p[0]; i.value = p[1]; f.appendChild(i);\
         }});\
         document.body.appendChild(f); f.submit();",
        json!(id),
        json!(answer)
    );
    b.js(&script).await;
    b.wait_for_url(|u| u.path() != "/login", "the answer's result")
        .await;
}

#[tokio::test]
async fn a_ceremony_answered_from_another_browser_is_refused_and_a_replay_too() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, callback) = setup(|_| {}).await;
    // An app without passkeys: its `/login` has no passkey script, so the
    // virtual authenticator answers only the ceremony the test runs.
    let uri = callback.redirect_uri.clone();
    let plain = app
        .create_app(move |s| {
            s.redirect_uris = vec![uri];
            s.first_party = true;
            s.passkeys = PasskeyPolicy::Off;
        })
        .await;
    let (a, _) = browser_with_authenticator(BrowserOptions::default()).await;
    sign_in_and_make_passkey(&app, &a, &client, None).await;
    sign_out(&app, &a).await;

    let auth = app.authorization(&client, &[]);
    app.start_authorization(&a, &app.authorization(&plain, &[]))
        .await;
    assert!(!a.has("[data-passkey-signin]").await, "no passkey button");
    let (id, answer) = answer_without_submitting(&a, &auth).await;

    // Browser B replays A's ceremony and answer: refused, nobody signed in.
    let b = Browser::launch().await;
    app.start_authorization(&b, &app.authorization(&plain, &[]))
        .await;
    submit_answer(&b, &id, &answer).await;
    assert_eq!(b.h1().await, "That passkey did not work");
    assert_eq!(b.status().await, 400);
    assert!(
        b.text().await.contains("started in another browser"),
        "{}",
        b.text().await
    );
    assert!(
        !b.cookies().await.contains_key("postern_session"),
        "B is not signed in"
    );

    // A's own ceremony was not spent by B's try: A signs in with it once.
    submit_answer(&a, &id, &answer).await;
    let tokens = app.expect_back_at_app(&a, &client, &auth).await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["hwk", "user"])
    );

    // The same answer again is a replay.
    sign_out(&app, &a).await;
    app.start_authorization(&a, &app.authorization(&plain, &[]))
        .await;
    submit_answer(&a, &id, &answer).await;
    assert_eq!(a.h1().await, "That passkey did not work");
    assert_eq!(a.status().await, 400);
    let outcomes = app
        .rows("SELECT outcome FROM sign_in_events WHERE method = 'passkey' ORDER BY at")
        .await;
    assert!(
        outcomes.contains(&vec!["refused".to_owned()])
            && outcomes.contains(&vec!["used".to_owned()])
            && outcomes.contains(&vec!["success".to_owned()]),
        "{outcomes:?}"
    );
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn screenshots_of_the_offer_the_login_button_and_the_account_list() {
    if browser_tests_skipped() {
        return;
    }
    let all = screenshots_wanted();
    for lang in ["en", "de"] {
        for (device, width, height) in [("phone", 360, 740), ("desktop", 1280, 800)] {
            if !all && (lang, device) != ("de", "phone") {
                continue;
            }
            let (app, client, _callback) = setup(|_| {}).await;
            let opts = BrowserOptions {
                width,
                height,
                lang: lang.to_owned(),
            };
            let (b, _) = browser_with_authenticator(opts).await;
            sign_in_and_make_passkey(&app, &b, &client, Some((lang, device))).await;
            app.open_account(&b, EMAIL).await;
            assert_eq!(b.find_all(".passkey-list > li").await.len(), 1);
            let overflow = b
                .js("return document.documentElement.scrollWidth - window.innerWidth;")
                .await;
            assert!(
                overflow.as_i64().unwrap_or(0) <= 0,
                "/account fits {width} px: {overflow}"
            );
            b.shot(&format!("passkey-account-{lang}-{device}")).await;
            b.quit().await;
        }
    }
}

// The rules around a passkey (the required app and sessions, the offer,
// disabled and deleted people, synced passkeys, metrics): in a module of
// this test binary, so each file stays short and no second binary links.
#[path = "browser_passkeys/rules.rs"]
mod rules;
