//! End-to-end tests in a real headless Chromium over WebDriver (SPEC §3.1,
//! §3.2, §3.3): an app's sign-in from `/authorize` through the hosted
//! pages, the emailed link and code, another browser, the error pages'
//! ways forward, sign-out, cookie attributes and CSRF; plus screenshots of
//! every page (`POSTERN_SCREENSHOTS=1` writes them to `docs/screenshots/`).
//!
//! Each test starts its own chromedriver and Chromium (support/browser.rs).
//! Without chromedriver they fail; `POSTERN_SKIP_BROWSER_TESTS=1` skips them.

mod support;

use postern_core::{AppSettings, DevicePolicy};
use support::*;

const EMAIL: &str = "ada@example.com";

/// A server whose public URL is its real address (links and redirects work
/// in the browser), an app registered with `change` whose redirect URI is a
/// live [`Callback`], and that callback.
async fn setup(change: impl FnOnce(&mut AppSettings)) -> (TestApp, TestClient, Callback) {
    let app = spawn_oidc_app_with(&[]).await;
    let callback = Callback::start().await;
    let uri = callback.redirect_uri.clone();
    let client = app
        .create_app(move |s| {
            s.redirect_uris = vec![uri];
            change(s);
        })
        .await;
    (app, client, callback)
}

/// The ID token's claims from a token response.
fn id_claims(tokens: &serde_json::Value) -> serde_json::Value {
    jwt_claims(tokens["id_token"].as_str().expect("an id_token"))
}

// ---- the whole sign-in ----------------------------------------------------------

#[tokio::test]
async fn a_third_party_app_signs_in_from_authorize_through_the_emailed_link_and_consent() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, callback) = setup(|s| s.first_party = false).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);

    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    assert!(
        b.has("form[action=\"/login/code\"] input[name=code]").await,
        "check your email offers code entry"
    );
    app.open_link(&b, &sent).await;
    assert!(
        b.has("form[action=\"/consent\"]").await,
        "a third-party app asks for consent:\n{}",
        b.text().await
    );
    app.allow(&b).await;
    let tokens = app.expect_back_at_app(&b, &client, &auth).await;

    let claims = id_claims(&tokens);
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["nonce"], auth.nonce.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["email"]));
    assert!(
        callback
            .hits()
            .iter()
            .any(|h| h.starts_with("/callback?code=")),
        "the app's server saw the redirect: {:?}",
        callback.hits()
    );
    b.quit().await;
}

#[tokio::test]
async fn the_code_typed_on_the_check_page_signs_in_too() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.first_party = false).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);

    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.type_code(&b, &sent).await;
    assert!(
        b.has("form[action=\"/consent\"]").await,
        "the code leads to consent:\n{}",
        b.text().await
    );
    app.allow(&b).await;
    let tokens = app.expect_back_at_app(&b, &client, &auth).await;
    assert_eq!(id_claims(&tokens)["amr"], serde_json::json!(["otp"]));
    b.quit().await;
}

// ---- another browser ---------------------------------------------------------------

#[tokio::test]
async fn another_browser_confirms_the_link_and_is_signed_in_there() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.device_policy = DevicePolicy::Any).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    let auth = app.authorization(&client, &[]);

    app.start_authorization(&asking, &auth).await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    app.open_link(&other, &sent).await;
    assert!(
        other.has("form[action=\"/verify-email\"]").await,
        "another browser gets the confirmation page:\n{}",
        other.text().await
    );
    assert_eq!(other.status().await, 200);
    app.confirm(&other).await;
    app.expect_back_at_app(&other, &client, &auth).await;

    // Signed in there: the next authorization needs no email.
    let again = app.authorization(&client, &[]);
    other.goto(&again.url).await;
    app.expect_back_at_app(&other, &client, &again).await;
    asking.quit().await;
    other.quit().await;
}

#[tokio::test]
async fn under_same_browser_another_browser_is_told_to_use_the_code() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.device_policy = DevicePolicy::SameBrowser).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    let auth = app.authorization(&client, &[]);

    app.start_authorization(&asking, &auth).await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    app.open_link(&other, &sent).await;
    // The page says at once to use the code there: no Continue that could
    // only lead to that sentence.
    assert_eq!(other.status().await, 200, "{}", other.text().await);
    assert!(!other.h1().await.is_empty());
    assert!(
        !other.has("form[action=\"/verify-email\"]").await,
        "no Continue under same_browser:\n{}",
        other.text().await
    );
    assert!(
        !other.cookies().await.contains_key("postern_session"),
        "the other browser is not signed in"
    );
    let code = sent.code.clone().unwrap();
    assert!(
        !other.text().await.contains(&code),
        "the page does not show the code"
    );

    // Nothing was consumed: the code still works where it was asked.
    app.type_code(&asking, &sent).await;
    app.expect_back_at_app(&asking, &client, &auth).await;
    asking.quit().await;
    other.quit().await;
}

/// The two-digit number the asking browser's "check your email" page shows
/// under `device_policy = remote`.
async fn remote_number(b: &Browser) -> String {
    let number = b
        .find("[data-status-url] #remote-number")
        .await
        .text()
        .await
        .expect("the number's text")
        .trim()
        .to_owned();
    assert!(
        number.len() == 2 && number.bytes().all(|c| c.is_ascii_digit()),
        "a two-digit number, not {number:?}"
    );
    number
}

#[tokio::test]
async fn under_remote_the_other_browser_types_the_number_and_the_asking_browser_continues_by_itself(
) {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.device_policy = DevicePolicy::Remote).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    let auth = app.authorization(&client, &[]);

    app.start_authorization(&asking, &auth).await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    let number = remote_number(&asking).await;

    app.open_link(&other, &sent).await;
    assert_eq!(other.status().await, 200, "{}", other.text().await);
    other
        .fill("form[action=\"/verify-email\"] input[name=number]", &number)
        .await;
    other
        .click("form[action=\"/verify-email\"] button[type=submit]")
        .await;
    assert_eq!(other.status().await, 200, "{}", other.text().await);
    assert!(!other.h1().await.is_empty());
    assert!(
        !other.has("form[action=\"/verify-email\"]").await,
        "approved: nothing more to type there:\n{}",
        other.text().await
    );
    assert!(
        !other.cookies().await.contains_key("postern_session"),
        "approving signs in nobody on the other browser"
    );

    // The asking page polls /login/status (postern.js) and goes on by
    // itself, within a few seconds, without anyone touching it.
    let tokens = app.expect_back_at_app(&asking, &client, &auth).await;
    assert_eq!(id_claims(&tokens)["email"], EMAIL);
    asking.quit().await;
    other.quit().await;
}

// ---- several accounts and the account page -------------------------------------------

const SECOND: &str = "grace@example.com";

#[tokio::test]
async fn with_two_accounts_the_chooser_continues_as_the_one_chosen() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let first = app.authorization(&client, &[]);
    app.start_authorization(&b, &first).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &first).await;

    // A second account through the chooser's "Use another account".
    let add = app.authorization(&client, &[("prompt", "select_account")]);
    b.goto(&add.url).await;
    b.wait_for_path("/authorize").await;
    b.click("a[href*=\"/login?\"]").await;
    let sent = app.sign_in_through_login(&b, SECOND).await;
    app.open_link(&b, &sent).await;
    let tokens = app.expect_back_at_app(&b, &client, &add).await;
    assert_eq!(id_claims(&tokens)["email"], SECOND);

    // Two accounts: /authorize asks which one; the newest comes first.
    let again = app.authorization(&client, &[]);
    b.goto(&again.url).await;
    b.wait_for_path("/authorize").await;
    let choices = b
        .find_all("form[action=\"/authorize\"] button[name=account]")
        .await;
    assert_eq!(
        choices.len(),
        2,
        "one button per account:\n{}",
        b.text().await
    );
    let second = choices.into_iter().nth(1).unwrap();
    assert!(
        second.text().await.unwrap().contains(EMAIL),
        "the second choice is the older account"
    );
    b.click_element(second, "the second account").await;
    let tokens = app.expect_back_at_app(&b, &client, &again).await;
    assert_eq!(
        id_claims(&tokens)["email"],
        EMAIL,
        "signed in as the one chosen"
    );
    b.quit().await;
}

#[tokio::test]
async fn signing_out_everywhere_from_the_account_page_makes_authorize_ask_for_the_email() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &auth).await;

    // Signed in already: /account needs no email.
    let sent_before = app.emails().len();
    app.open_account(&b, EMAIL).await;
    assert_eq!(
        app.emails().len(),
        sent_before,
        "single sign-on to the account page: no email"
    );
    b.click("form[action=\"/account/sign-out-everywhere\"] button[type=submit]")
        .await;
    assert_eq!(b.status().await, 200, "{}", b.text().await);
    assert!(!b.h1().await.is_empty());
    assert_eq!(
        app.rows("SELECT id FROM sessions WHERE revoked_at IS NULL")
            .await
            .len(),
        0,
        "every session ended"
    );

    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;
    b.quit().await;
}

#[tokio::test]
async fn deleting_the_account_from_the_account_page_forgets_the_person() {
    if browser_tests_skipped() {
        return;
    }
    let (app, _client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    // Not signed in: the account page signs in through Postern itself.
    app.open_account(&b, EMAIL).await;
    assert_eq!(app.count("users").await, 1);

    b.click("a[href=\"/account/delete\"]").await;
    b.wait_for_path("/account/delete").await;
    assert_eq!(app.count("users").await, 1, "asking deletes nothing");
    b.click("form[action=\"/account/delete\"] button[type=submit]")
        .await;
    assert_eq!(b.status().await, 200, "{}", b.text().await);
    assert!(!b.h1().await.is_empty());
    assert_eq!(app.count("users").await, 0, "the account is gone");
    assert_eq!(app.count("sessions").await, 0);

    // Afterwards the account page asks who is signing in.
    b.goto(&app.url("/account")).await;
    b.wait_for_path("/login").await;
    assert!(b.has("form[action=\"/login\"] input[name=email]").await);
    b.quit().await;
}

// ---- error pages and their way forward --------------------------------------------

/// Follows the error page's way forward: one click on "Send a new link"
/// sends a new link to `email` for the same destination and shows "check
/// your email"; the link to the form, with `email` filled in, stays for
/// another address.
async fn send_a_new_link_from_the_error_page(app: &TestApp, b: &Browser, email: &str) {
    assert_eq!(b.status().await, 400, "{}", b.text().await);
    assert!(!b.h1().await.is_empty());
    assert!(b.has("a[href*=\"/login?\"]").await, "{}", b.text().await);
    let before = app.inbox();
    b.click("form[action=\"/login\"] button[type=submit]").await;
    b.wait_for_path("/login/check").await;
    app.new_email_to(&before, email).await;
    assert!(
        b.text().await.contains(email),
        "the new link went to {email}: {}",
        b.text().await
    );
}

#[tokio::test]
async fn an_expired_link_offers_to_send_a_new_one_with_the_email_filled_in() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;

    app.clock.advance(16 * 60);
    app.open_link(&b, &sent).await;
    send_a_new_link_from_the_error_page(&app, &b, EMAIL).await;
    b.quit().await;
}

#[tokio::test]
async fn a_used_link_offers_to_send_a_new_one_with_the_email_filled_in() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &auth).await;

    app.open_link(&b, &sent).await;
    send_a_new_link_from_the_error_page(&app, &b, EMAIL).await;
    b.quit().await;
}

#[tokio::test]
async fn a_rate_limited_request_gets_a_page_that_leads_back_to_the_email_that_still_works() {
    if browser_tests_skipped() {
        return;
    }
    let app = spawn_oidc_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "1")]).await;
    let callback = Callback::start().await;
    let uri = callback.redirect_uri.clone();
    let client = app.create_app(|s| s.redirect_uris = vec![uri]).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    app.sign_in_through_login(&b, EMAIL).await;

    app.start_authorization(&b, &auth).await;
    app.submit_login_form(&b, EMAIL).await;
    assert_eq!(b.status().await, 429, "{}", b.text().await);
    assert!(!b.h1().await.is_empty());
    // The email sent first still works: the way forward is its code entry.
    b.click("a[href^=\"/login/check?id=\"]").await;
    b.wait_for_path("/login/check").await;
    assert!(b.has("form[action=\"/login/code\"] input[name=code]").await);
    b.quit().await;
}

// ---- sign-out ----------------------------------------------------------------------

#[tokio::test]
async fn after_sign_out_authorize_asks_for_the_email_again() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &auth).await;

    // Signed in: single sign-on skips the email.
    let sso = app.authorization(&client, &[]);
    b.goto(&sso.url).await;
    app.expect_back_at_app(&b, &client, &sso).await;

    b.goto(&app.url("/logout")).await;
    // Without an id_token_hint, Postern asks before signing out.
    b.click("form[action=\"/logout\"] button[type=submit]")
        .await;
    assert_eq!(b.status().await, 200);
    assert!(!b.h1().await.is_empty());
    assert!(
        !b.cookies().await.contains_key("postern_session"),
        "the session cookie is gone"
    );

    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;
    b.quit().await;
}

// ---- cookies and CSRF -----------------------------------------------------------------

#[tokio::test]
async fn every_cookie_is_http_only_same_site_lax_on_path_root() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &auth).await;

    // WebDriver shows no headers: read the cookies the browser kept.
    b.goto(&app.url("/login")).await;
    let cookies = b.cookies().await;
    for name in ["postern_csrf", "postern_binding", "postern_session"] {
        let c = cookies
            .get(name)
            .unwrap_or_else(|| panic!("no {name} cookie: {:?}", cookies.keys()));
        assert_eq!(c.http_only(), Some(true), "{name} is HttpOnly");
        assert_eq!(
            c.same_site().map(|s| s.to_string()).as_deref(),
            Some("Lax"),
            "{name} is SameSite=Lax"
        );
        assert_eq!(c.path(), Some("/"), "{name} has Path=/");
        assert_ne!(
            c.secure(),
            Some(true),
            "{name}: no Secure on an http public URL"
        );
    }
    assert_eq!(
        b.js("return document.cookie;").await,
        "",
        "scripts see no cookie"
    );
    b.quit().await;
}

/// Changes the CSRF token of the `/login` form the page shows.
const TAMPER_CSRF: &str =
    "document.querySelector('form[action=\"/login\"] input[name=csrf_token]').value = 'tampered';";

#[tokio::test]
async fn a_form_with_a_tampered_csrf_token_is_refused_with_the_403_page() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;
    b.js(TAMPER_CSRF).await;
    app.submit_login_form(&b, EMAIL).await;
    assert_eq!(b.status().await, 403, "{}", b.text().await);
    assert!(!b.h1().await.is_empty());
    assert_eq!(app.count("login_requests").await, 0, "nothing was asked");
    assert_eq!(app.count("outbox").await, 0, "nothing was sent");
    b.quit().await;
}

// ---- screenshots ------------------------------------------------------------------------

/// Asserts the page `b` shows answered `status` and has a heading, then
/// saves it as `{page}-{lang}-{device}` when screenshots are wanted.
async fn visit(b: &Browser, page: &str, lang: &str, device: &str, status: u16) {
    let name = format!("{page}-{lang}-{device}");
    assert_eq!(
        b.status().await,
        status,
        "{name} at {}:\n{}",
        b.url().await,
        b.text().await
    );
    assert!(!b.h1().await.trim().is_empty(), "{name} has a heading");
    let shown = b.lang().await;
    if shown != lang {
        eprintln!("{name}: <html lang=\"{shown}\">, asked for {lang}");
    }
    b.shot(&name).await;
}

/// Waits until the asking browser's page, which polls under `remote`,
/// leaves "check your email" by itself.
async fn wait_until_it_moves(b: &Browser) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while b.has("[data-status-url]").await {
        assert!(std::time::Instant::now() < deadline, "the page never moved");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    b.h1().await;
}

#[tokio::test]
async fn screenshots_of_every_page() {
    if browser_tests_skipped() {
        return;
    }
    // The development inbox needs the stdout transport on loopback.
    let dev = spawn_oidc_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    let callback = Callback::start().await;
    for lang in ["en", "de"] {
        for (device, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
            // A fresh server each time: its clock is the browser's, so the
            // times the pages show read "now", not "in 3 hours".
            let app = spawn_oidc_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "3")]).await;
            // The pages as a third-party app's users see them: "Acme
            // Notes", in green, with a note in its emails.
            let app_with = |policy: DevicePolicy, first_party: bool| {
                let uri = callback.redirect_uri.clone();
                app.create_app(move |s| {
                    s.redirect_uris = vec![uri];
                    s.first_party = first_party;
                    s.device_policy = policy;
                    s.locale = lang.to_owned();
                    s.branding.name = Some("Acme Notes".to_owned());
                    s.branding.color = Some("#0a7e3c".to_owned());
                    s.branding.email_note =
                        Some("Questions? Write to help@acme.example.".to_owned());
                })
            };
            let client = app_with(DevicePolicy::Any, false).await;
            let remote = app_with(DevicePolicy::Remote, true).await;
            let same_browser = app_with(DevicePolicy::SameBrowser, true).await;
            let opts = BrowserOptions {
                width,
                height,
                lang: lang.to_owned(),
            };
            let b = Browser::launch_with(opts.clone()).await;
            let other = Browser::launch_with(opts).await;
            assert_eq!(b.viewport().await, (width, height), "the viewport");
            let email = format!("{device}.{lang}@example.com");
            // A long address, as the chooser and the account page must fit.
            let second = format!(
                "maximiliane.hohenberg-wittelsbach.{device}.{lang}@abteilung.beispiel-konzern.example"
            );
            let locale = [("ui_locales", lang)];
            let choose = [("ui_locales", lang), ("prompt", "select_account")];

            // The sign-in: the email form (and a slip in the address), "check
            // your email" (a wrong code, "send again"), the link opened
            // elsewhere, consent, and the link used twice.
            let auth = app.authorization(&client, &locale);
            app.start_authorization(&b, &auth).await;
            visit(&b, "login", lang, device, 200).await;
            app.submit_login_form(&b, &format!("{device}.{lang}@gmail"))
                .await;
            visit(&b, "login-error", lang, device, 400).await;
            let first = app.sign_in_through_login(&b, &email).await;
            visit(&b, "check", lang, device, 200).await;
            b.fill(
                "form[action=\"/login/code\"] input[name=code]",
                &wrong_code(first.code.as_deref().unwrap()),
            )
            .await;
            b.click("form[action=\"/login/code\"] button[type=submit]")
                .await;
            visit(&b, "check-wrong-code", lang, device, 400).await;
            // "Send again" once its countdown is over.
            let id = b
                .value_of("form[action=\"/login/code\"] input[name=login_id]")
                .await;
            app.clock.advance(45);
            b.goto(&app.url(&format!("/login/check?id={id}"))).await;
            let before = app.inbox();
            b.click("form[action=\"/login/resend\"] button").await;
            b.wait_for_path("/login/check").await;
            let sent = app.new_email_to(&before, &email).await;
            visit(&b, "check-resent", lang, device, 200).await;

            app.open_link(&other, &sent).await;
            visit(&other, "confirm", lang, device, 200).await;

            app.open_link(&b, &sent).await;
            visit(&b, "consent", lang, device, 200).await;
            app.allow(&b).await;
            app.expect_back_at_app(&b, &client, &auth).await;

            app.open_link(&b, &sent).await;
            visit(&b, "error-used", lang, device, 400).await;

            // A second account through the chooser's "Use another account",
            // then the chooser with both.
            let add = app.authorization(&client, &choose);
            b.goto(&add.url).await;
            b.wait_for_path("/authorize").await;
            b.click("a[href*=\"/login?\"]").await;
            visit(&b, "login-another-account", lang, device, 200).await;
            let sent = app.sign_in_through_login(&b, &second).await;
            app.open_link(&b, &sent).await;
            app.allow(&b).await;
            app.expect_back_at_app(&b, &client, &add).await;
            b.goto(&app.authorization(&client, &choose).url).await;
            assert_eq!(
                b.find_all("form[action=\"/authorize\"] button[name=account]")
                    .await
                    .len(),
                2,
                "two accounts to choose from"
            );
            visit(&b, "chooser", lang, device, 200).await;

            b.goto(&app.url("/logout")).await;
            visit(&b, "logout-confirm", lang, device, 200).await;

            // The account page of the current (second) account: this
            // session, its sign-in and the app it allowed.
            app.open_account(&b, &second).await;
            visit(&b, "account", lang, device, 200).await;
            b.click("form[action=\"/account/apps/revoke\"] button")
                .await;
            b.wait_for_path("/account").await;
            visit(&b, "account-revoked", lang, device, 200).await;
            b.click("a[href=\"/account/delete\"]").await;
            visit(&b, "account-delete", lang, device, 200).await;
            b.click("form[action=\"/account/delete\"] button[type=submit]")
                .await;
            visit(&b, "account-deleted", lang, device, 200).await;

            b.goto(&app.url("/logout")).await;
            b.click("form[action=\"/logout\"] button[type=submit]")
                .await;
            visit(&b, "signed-out", lang, device, 200).await;

            b.goto(&app.url("/verify-email?token=pml_this-is-not-a-real-token"))
                .await;
            visit(&b, "error-unknown", lang, device, 400).await;
            b.goto(&app.url("/no-such-page")).await;
            visit(&b, "error-not-found", lang, device, 404).await;
            b.goto(&app.url(&format!(
                "/login?client_id={}&redirect_uri=https://evil.example/cb",
                client.client_id
            )))
            .await;
            visit(&b, "error-bad-request", lang, device, 400).await;

            // A request finished on another device: the asking browser's
            // page says so.
            let asked = app.authorization(&client, &locale);
            app.start_authorization(&other, &asked).await;
            let sent = app
                .sign_in_through_login(&other, &format!("elsewhere.{email}"))
                .await;
            app.open_link(&b, &sent).await;
            app.confirm(&b).await;
            other.goto(other.url().await.as_ref()).await;
            visit(&other, "error-finished", lang, device, 400).await;
            b.goto(&app.url("/logout")).await;
            b.click("form[action=\"/logout\"] button[type=submit]")
                .await;

            // device_policy = remote: the asking browser shows the number,
            // the other one asks for it, then says to go back.
            let asked = app.authorization(&remote, &locale);
            app.start_authorization(&other, &asked).await;
            let sent = app
                .sign_in_through_login(&other, &format!("remote.{email}"))
                .await;
            let number = remote_number(&other).await;
            visit(&other, "check-remote", lang, device, 200).await;
            app.open_link(&b, &sent).await;
            visit(&b, "confirm-remote", lang, device, 200).await;
            b.fill("form[action=\"/verify-email\"] input[name=number]", &number)
                .await;
            b.click("form[action=\"/verify-email\"] button[type=submit]")
                .await;
            visit(&b, "approved", lang, device, 200).await;
            app.expect_back_at_app(&other, &remote, &asked).await;

            // A wrong number stops the sign-in, on both devices.
            let again = [("ui_locales", lang), ("prompt", "login")];
            app.start_authorization(&other, &app.authorization(&remote, &again))
                .await;
            let sent = app
                .sign_in_through_login(&other, &format!("stop.{email}"))
                .await;
            let number = remote_number(&other).await;
            let wrong = if number == "00" { "01" } else { "00" };
            app.open_link(&b, &sent).await;
            b.fill("form[action=\"/verify-email\"] input[name=number]", wrong)
                .await;
            b.click("form[action=\"/verify-email\"] button[type=submit]")
                .await;
            visit(&b, "error-wrong-number", lang, device, 400).await;
            wait_until_it_moves(&other).await;
            visit(&other, "error-stopped", lang, device, 400).await;

            // device_policy = same_browser: the other browser is told to
            // use the code where the sign-in was asked for.
            app.start_authorization(&b, &app.authorization(&same_browser, &locale))
                .await;
            let sent = app
                .sign_in_through_login(&b, &format!("same.{email}"))
                .await;
            app.open_link(&other, &sent).await;
            visit(&other, "confirm-same-browser", lang, device, 200).await;

            app.start_authorization(&b, &app.authorization(&client, &locale))
                .await;
            b.js(TAMPER_CSRF).await;
            app.submit_login_form(&b, &email).await;
            visit(&b, "error-forbidden", lang, device, 403).await;

            // The README's first walkthrough, on a server with the
            // development inbox: /account sends you to sign in, the inbox
            // holds the link, and the link leads back to /account.
            b.goto(&dev.url("/account")).await;
            b.wait_for_path("/login").await;
            visit(&b, "account-login", lang, device, 200).await;
            dev.submit_login_form(&b, &email).await;
            b.wait_for_path("/login/check").await;
            b.goto(&dev.url("/_dev/mail")).await;
            assert!(b.has("a[href*=\"/verify-email?token=\"]").await);
            visit(&b, "dev-mail", lang, device, 200).await;
            // Newest first: the first link is the one just sent.
            b.click("a[href*=\"/verify-email?token=\"]").await;
            b.wait_for_path("/account").await;
            visit(&b, "account-first-visit", lang, device, 200).await;

            // The last steps move the clock: a request that is still live
            // when the per-address limit says no (the page says until when
            // its email works), then opened too late.
            // A second request in the other browser (signed in by now:
            // `prompt=login`), opened too late.
            let fresh = [("ui_locales", lang), ("prompt", "login")];
            app.start_authorization(&other, &app.authorization(&client, &fresh))
                .await;
            let late = app.sign_in_through_login(&other, &email).await;

            // Asking again until the per-address limit says no.
            for attempt in 0.. {
                assert!(attempt < 10, "never rate limited");
                app.start_authorization(&other, &app.authorization(&client, &fresh))
                    .await;
                app.submit_login_form(&other, &email).await;
                if other.path().await != "/login/check" {
                    break;
                }
            }
            visit(&other, "error-rate-limited", lang, device, 429).await;

            app.clock.advance(16 * 60);
            app.open_link(&other, &late).await;
            visit(&other, "error-expired", lang, device, 400).await;

            b.quit().await;
            other.quit().await;
        }
    }
}
