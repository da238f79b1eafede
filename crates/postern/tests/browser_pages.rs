//! The hosted pages as a person meets them, in a real headless Chromium
//! (issue 16): errors stay on the form, every page of an app's flow wears
//! the app's brand, dead ends say what happened and lead on, consent says
//! what is shared with whom, and the small things (the chooser on a phone,
//! 44 px targets, an HTML 404) hold.
//!
//! Each test starts its own chromedriver and Chromium (support/browser.rs).
//! Without chromedriver they fail; `POSTERN_SKIP_BROWSER_TESTS=1` skips them.

mod support;

use postern_core::{AppSettings, DevicePolicy};
use support::*;

const EMAIL: &str = "ada@example.com";
/// The brand of the app these tests sign in to.
const ACME: &str = "Acme Notes";
/// Its colour, `#0a7e3c`, as a computed style says it.
const ACME_GREEN: &str = "rgb(10, 126, 60)";

/// A server whose public URL is its real address, a third-party app
/// branded "Acme Notes" in green with `change` applied, and its live
/// redirect URI.
async fn setup(change: impl FnOnce(&mut AppSettings)) -> (TestApp, TestClient, Callback) {
    let app = spawn_oidc_app_with(&[]).await;
    let callback = Callback::start().await;
    let uri = callback.redirect_uri.clone();
    let client = app
        .create_app(move |s| {
            s.redirect_uris = vec![uri];
            s.first_party = false;
            s.branding.name = Some(ACME.to_owned());
            s.branding.color = Some("#0a7e3c".to_owned());
            change(s);
        })
        .await;
    (app, client, callback)
}

/// A browser in `lang` at desktop size.
async fn browser_in(lang: &str) -> Browser {
    Browser::launch_with(BrowserOptions {
        lang: lang.to_owned(),
        ..BrowserOptions::default()
    })
    .await
}

/// The computed `property` of the first element `css` selects.
async fn style_of(b: &Browser, css: &str, property: &str) -> String {
    b.find(css).await;
    let script = format!(
        "return getComputedStyle(document.querySelector({})).getPropertyValue({});",
        serde_json::to_string(css).unwrap(),
        serde_json::to_string(property).unwrap()
    );
    b.js(&script).await.as_str().unwrap_or_default().to_owned()
}

/// The `id` of the element that has the focus.
async fn focused_id(b: &Browser) -> String {
    b.js("return document.activeElement ? document.activeElement.id : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Presses Enter in the field `css` selects and waits for the page the
/// form leads to.
async fn press_enter(b: &Browser, css: &str) {
    let field = b.find(css).await;
    b.js("window.__posternStale = true;").await;
    field.send_keys("\u{E007}").await.expect("press Enter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let loaded = b
            .js("return window.__posternStale !== true && document.readyState === 'complete';")
            .await;
        if loaded == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "Enter loaded no page");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Asserts the page `b` shows wears Acme's brand: its name at the top and
/// its green on the card's edge (and on the page's main button, if any).
async fn assert_acme_brand(b: &Browser, what: &str) {
    let brand = b.find("main .brand").await.text().await.unwrap();
    assert_eq!(brand.trim(), ACME, "{what}: the brand's name");
    assert_eq!(
        style_of(b, "main.card", "border-top-color").await,
        ACME_GREEN,
        "{what}: the brand's colour, not Postern's blue"
    );
    let primary = "main button[type=submit]:not(.secondary):not(.inline):not(.account)";
    if b.has(primary).await {
        assert_eq!(
            style_of(b, primary, "background-color").await,
            ACME_GREEN,
            "{what}: the main button"
        );
    }
}

// ---- 1. errors stay on the form --------------------------------------------------------

#[tokio::test]
async fn a_mistyped_address_stays_on_the_german_form_with_what_was_typed_and_a_suggestion() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.locale = "de".to_owned()).await;
    let b = browser_in("de").await;
    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;

    app.submit_login_form(&b, "jens@gmail").await;
    assert_eq!(b.status().await, 400, "{}", b.text().await);
    assert_eq!(b.lang().await, "de");
    assert_eq!(b.h1().await, "Bei Acme Notes anmelden", "the same form");
    assert_eq!(
        b.value_of("form[action=\"/login\"] input[name=email]")
            .await,
        "jens@gmail",
        "what was typed is kept"
    );
    assert_eq!(focused_id(&b).await, "email", "the focus is on the field");
    let error = b.find("#email-error").await.text().await.unwrap();
    assert_eq!(
        error,
        "Das ist keine vollständige E-Mail-Adresse. Prüfen Sie sie und versuchen Sie es erneut."
    );
    assert_eq!(
        b.find("input[name=email]")
            .await
            .attr("aria-describedby")
            .await
            .unwrap()
            .as_deref(),
        Some("email-error"),
        "the error is the field's description"
    );
    let suggestion = b.find(".suggestion").await.text().await.unwrap();
    assert_eq!(suggestion, "Meinten Sie jens@gmail.com?");
    assert!(
        !b.text().await.contains("Something is not right")
            && !b.text().await.contains("Etwas stimmt nicht"),
        "no full-page error"
    );
    assert_acme_brand(&b, "the form with its error").await;
    assert_eq!(app.count("login_requests").await, 0, "nothing was sent");

    // Pressing Enter sends what is in the field, not the suggestion.
    b.fill("form[action=\"/login\"] input[name=email]", "a@b")
        .await;
    press_enter(&b, "form[action=\"/login\"] input[name=email]").await;
    assert_eq!(b.status().await, 400);
    assert_eq!(
        b.value_of("input[name=email]").await,
        "a@b",
        "the new value is kept"
    );
    assert!(!b.has(".suggestion").await, "nothing to suggest for a@b");

    // One click on a suggestion sends the link there.
    b.fill(
        "form[action=\"/login\"] input[name=email]",
        "jens@gmial.com",
    )
    .await;
    // A valid address with a slip is sent: the check page asks "Did you mean …?".
    b.click("form[action=\"/login\"] button.wide").await;
    b.wait_for_path("/login/check").await;
    assert!(
        b.text().await.contains("Meinten Sie jens@gmail.com?"),
        "{}",
        b.text().await
    );
    b.goto(&app.authorization(&client, &[]).url).await;
    app.submit_login_form(&b, "jens@gmail").await;
    let before = app.inbox();
    b.click(".suggestion button").await;
    b.wait_for_path("/login/check").await;
    app.new_email_to(&before, "jens@gmail.com").await;
    b.quit().await;
}

#[tokio::test]
async fn a_wrong_code_stays_on_the_check_page_with_the_tries_left_and_pasted_codes_work() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    let code = sent.code.clone().expect("a code");
    let wrong = wrong_code(&code);

    let field = "form[action=\"/login/code\"] input[name=code]";
    b.fill(field, &wrong).await;
    b.click("form[action=\"/login/code\"] button[type=submit]")
        .await;
    assert_eq!(b.status().await, 400, "{}", b.text().await);
    assert_eq!(b.h1().await, "Check your email", "the same page");
    assert_eq!(
        b.find("#code-error").await.text().await.unwrap(),
        "That code is not right. You have 4 tries left."
    );
    assert_eq!(b.value_of(field).await, wrong, "the code is kept");
    assert_eq!(focused_id(&b).await, "code", "the focus is on the field");
    assert_acme_brand(&b, "the check page with its error").await;

    // The script keeps the digits of what is typed or pasted.
    b.fill(field, "123 456").await;
    assert_eq!(b.value_of(field).await, "123456", "typed with a space");
    b.fill(field, "").await;
    let paste = format!(
        "const f = document.querySelector('{}'); f.value = '{}-{}'; \
         f.dispatchEvent(new Event('paste')); f.dispatchEvent(new Event('input'));",
        "input[name=code]",
        &code[..3],
        &code[3..]
    );
    b.js(&paste).await;
    assert_eq!(b.value_of(field).await, code, "pasted with a dash");

    // The server does the same for a browser without the script.
    b.js(&format!(
        "document.querySelector('input[name=code]').value = ' {} {} ';",
        &code[..3],
        &code[3..]
    ))
    .await;
    b.click("form[action=\"/login/code\"] button[type=submit]")
        .await;
    assert!(
        b.has("form[action=\"/consent\"]").await,
        "{}",
        b.text().await
    );
    b.quit().await;
}

// ---- 2. the app's look on every page of its flow ---------------------------------------

#[tokio::test]
async fn every_error_page_of_a_branded_apps_flow_wears_its_colour() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    assert_acme_brand(&b, "the email form").await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    assert_acme_brand(&b, "check your email").await;

    // Expired.
    app.clock.advance(16 * 60);
    app.open_link(&b, &sent).await;
    assert_eq!(b.status().await, 400);
    assert_eq!(b.h1().await, "This link has expired");
    assert_acme_brand(&b, "the expired link").await;

    // A bad request of the app's flow (an unregistered redirect URI).
    let bad = format!(
        "/login?client_id={}&redirect_uri=https://evil.example/cb",
        client.client_id
    );
    b.goto(&app.url(&bad)).await;
    assert_eq!(b.status().await, 400);
    assert_acme_brand(&b, "a bad request").await;

    // Used: a link opened twice.
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    app.allow(&b).await;
    app.expect_back_at_app(&b, &client, &auth).await;
    app.open_link(&b, &sent).await;
    assert_eq!(b.status().await, 400);
    assert_acme_brand(&b, "the used link").await;
    b.quit().await;
}

// ---- 3. messages that say what happened ------------------------------------------------

/// Asserts the page `b` shows says `title`, and never the old sentence that
/// reads like someone else used the link.
async fn assert_says(b: &Browser, title: &str) {
    assert_eq!(b.h1().await, title, "{}", b.text().await);
    assert!(
        !b.text().await.contains("If it wasn't you"),
        "no account-takeover warning: {}",
        b.text().await
    );
}

#[tokio::test]
async fn the_asking_browser_hears_that_the_sign_in_finished_on_another_device() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.first_party = true).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&asking, &auth).await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    app.open_link(&other, &sent).await;
    app.confirm(&other).await;
    app.expect_back_at_app(&other, &client, &auth).await;

    // The code typed on the asking device afterwards.
    app.type_code(&asking, &sent).await;
    assert_eq!(asking.status().await, 400);
    assert_says(&asking, "You finished signing in on another device").await;
    assert_acme_brand(&asking, "finished elsewhere").await;
    // Reloading the check page says the same.
    asking.js("window.history.back();").await;
    asking.wait_for_path("/login/check").await;
    asking.goto(asking.url().await.as_ref()).await;
    assert_says(&asking, "You finished signing in on another device").await;
    // And one click signs in here too.
    let before = app.inbox();
    asking
        .click("form[action=\"/login\"] button[type=submit]")
        .await;
    asking.wait_for_path("/login/check").await;
    app.new_email_to(&before, EMAIL).await;
    asking.quit().await;
    other.quit().await;
}

#[tokio::test]
async fn under_remote_the_asking_browser_hears_that_a_wrong_number_stopped_it() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.device_policy = DevicePolicy::Remote).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&asking, &auth).await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    let number = asking
        .find("#remote-number")
        .await
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned();
    let wrong = if number == "00" { "01" } else { "00" };
    app.open_link(&other, &sent).await;
    other
        .fill("form[action=\"/verify-email\"] input[name=number]", wrong)
        .await;
    other
        .click("form[action=\"/verify-email\"] button[type=submit]")
        .await;
    assert_says(&other, "That number was not right").await;
    assert_acme_brand(&other, "the wrong number, where it was typed").await;

    // The asking page notices by itself (postern.js polls) and says why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while asking.h1().await == "Check your email" {
        assert!(std::time::Instant::now() < deadline, "the page never moved");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_says(
        &asking,
        "Stopped: a wrong number was typed on your other device",
    )
    .await;
    assert_acme_brand(&asking, "stopped by a wrong number").await;
    asking.quit().await;
    other.quit().await;
}

#[tokio::test]
async fn a_code_typed_again_after_signing_in_was_already_used() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.first_party = true).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    let login_id = b
        .value_of("form[action=\"/login/code\"] input[name=login_id]")
        .await;
    let csrf = b
        .value_of("form[action=\"/login/code\"] input[name=csrf_token]")
        .await;
    app.type_code(&b, &sent).await;
    app.expect_back_at_app(&b, &client, &auth).await;

    // The same form sent once more from a page of Postern's (as a second
    // tap, or the back button, would).
    b.goto(&app.url("/no-such-page")).await;
    let resend = format!(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/login/code'; \
         for (const [k, v] of [['csrf_token', '{csrf}'], ['login_id', '{login_id}'], ['code', '{}']]) {{ \
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }} \
         document.body.appendChild(f); f.submit();",
        sent.code.as_deref().unwrap()
    );
    b.js(&resend).await;
    b.wait_for_path("/login/code").await;
    assert_says(&b, "This code was already used").await;
    assert_eq!(b.status().await, 400);
    assert_acme_brand(&b, "the used code").await;
    b.quit().await;
}

#[tokio::test]
async fn the_expired_page_sends_a_new_link_in_one_click() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let asking = Browser::launch().await;
    let other = Browser::launch().await;
    app.start_authorization(&asking, &app.authorization(&client, &[]))
        .await;
    let sent = app.sign_in_through_login(&asking, EMAIL).await;
    app.clock.advance(16 * 60);
    // Opened late on another device: one click there sends a new link to
    // the same address, and that device is the one that signs in.
    app.open_link(&other, &sent).await;
    assert_says(&other, "This link has expired").await;
    assert!(other.text().await.contains("it takes one click"));
    assert!(other.text().await.contains(EMAIL), "it says where it goes");
    let before = app.inbox();
    other
        .click("form[action=\"/login\"] button[type=submit]")
        .await;
    other.wait_for_path("/login/check").await;
    let fresh = app.new_email_to(&before, EMAIL).await;
    app.type_code(&other, &fresh).await;
    assert!(other.has("form[action=\"/consent\"]").await);
    asking.quit().await;
    other.quit().await;
}

// ---- 4. the email comes from the app ---------------------------------------------------

#[tokio::test]
async fn the_development_inbox_shows_the_html_email_in_a_sandboxed_frame() {
    if browser_tests_skipped() {
        return;
    }
    let app = spawn_oidc_app_with(&[("POSTERN_MAIL", "stdout")]).await;
    let callback = Callback::start().await;
    let uri = callback.redirect_uri.clone();
    let client = app
        .create_app(move |s| {
            s.redirect_uris = vec![uri];
            s.branding.name = Some(ACME.to_owned());
            s.branding.color = Some("#0a7e3c".to_owned());
            s.branding.email_note = Some("Questions? Write to help@acme.example.".to_owned());
        })
        .await;
    let b = Browser::launch().await;
    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;
    app.submit_login_form(&b, EMAIL).await;
    b.wait_for_path("/login/check").await;
    b.goto(&app.url("/_dev/mail")).await;
    let frame = b.find("iframe.mail-html").await;
    assert_eq!(
        frame.attr("sandbox").await.unwrap().as_deref(),
        Some(""),
        "a sandbox that allows nothing"
    );
    b.client
        .enter_frame(0)
        .await
        .expect("enter the email's frame");
    let body = b.find("body").await.text().await.unwrap();
    assert!(body.contains(ACME), "the brand header: {body}");
    assert!(body.contains("Sign in to Acme Notes"), "{body}");
    assert!(
        body.contains("Questions? Write to help@acme.example."),
        "the email note: {body}"
    );
    b.client.enter_parent_frame().await.unwrap();
    b.quit().await;
}

// ---- 5. consent says what is shared and with whom ----------------------------------------

#[tokio::test]
async fn the_consent_page_shows_the_address_the_app_and_where_it_goes_back() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    app.open_link(&b, &sent).await;
    b.find("form[action=\"/consent\"]").await;
    let text = b.text().await;
    assert_eq!(b.h1().await, "Allow Acme Notes to know who you are?");
    assert!(text.contains(&format!("Signed in as {EMAIL}")), "{text}");
    assert!(
        text.contains(&format!("Your email address: {EMAIL}")),
        "the address that will be shared: {text}"
    );
    assert!(
        text.contains("You will go back to 127.0.0.1."),
        "the redirect host: {text}"
    );
    assert!(text.contains("Not you?"), "{text}");
    assert_acme_brand(&b, "consent").await;
    b.click("a[href*=\"/login?\"]").await;
    b.wait_for_path("/login").await;
    assert_eq!(
        b.value_of("input[name=email]").await,
        "",
        "another account starts empty"
    );
    b.quit().await;
}

// ---- 6. the smaller things -----------------------------------------------------------------

/// A 90-character address.
fn long_address() -> String {
    let local = "maximiliane.hohenberg-wittelsbach.von-und-zu";
    let domain = "sehr-lange-abteilung.beispiel-konzern.example";
    let address = format!("{local}@{domain}");
    assert_eq!(address.chars().count(), 90, "{address}");
    address
}

#[tokio::test]
async fn the_chooser_fits_a_phone_with_a_90_character_address_and_every_target_is_44_px() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.first_party = true).await;
    let b = Browser::launch_with(BrowserOptions {
        width: 390,
        height: 844,
        lang: "en".to_owned(),
    })
    .await;
    let long = long_address();
    for email in [EMAIL, long.as_str()] {
        let auth = app.authorization(&client, &[("prompt", "login")]);
        b.goto(&auth.url).await;
        let sent = app.sign_in_through_login(&b, email).await;
        app.open_link(&b, &sent).await;
        app.expect_back_at_app(&b, &client, &auth).await;
    }
    b.goto(
        &app.authorization(&client, &[("prompt", "select_account")])
            .url,
    )
    .await;
    b.wait_for_path("/authorize").await;
    assert_eq!(
        b.find_all("button[name=account]").await.len(),
        2,
        "{}",
        b.text().await
    );
    assert_acme_brand(&b, "the chooser").await;

    let overflow = b
        .js("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "no horizontal overflow: {overflow}"
    );
    let small = b
        .js(
            "return Array.from(document.querySelectorAll('a, button, input, summary'))\
             .filter(e => e.type !== 'hidden' && e.offsetParent !== null)\
             .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])\
             .filter(([_, r]) => r.width < 44 || r.height < 44)\
             .map(([h, r]) => h + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));",
        )
        .await;
    assert_eq!(
        small,
        serde_json::json!([]),
        "every target is 44 px at least"
    );
    // The long address is cut with an ellipsis, and whole on hover (its title).
    let row = "button[name=account][title=\"".to_owned() + &long + "\"]";
    assert!(b.has(&row).await, "the full address is the row's title");
    assert_eq!(
        style_of(&b, &format!("{row} .who"), "text-overflow").await,
        "ellipsis"
    );
    // Rows are left aligned, in the secondary style (no accent fill).
    assert_eq!(style_of(&b, &row, "text-align").await, "left");
    assert_ne!(
        style_of(&b, &row, "background-color").await,
        ACME_GREEN,
        "not a stack of primary buttons"
    );

    // "Use another account" leads to the form, which has a way back.
    b.click("a[href*=\"/login?\"]").await;
    b.wait_for_path("/login").await;
    b.click("a.back").await;
    b.wait_for_path("/authorize").await;
    assert_eq!(b.find_all("button[name=account]").await.len(), 2);
    b.quit().await;
}

#[tokio::test]
async fn a_browser_gets_an_html_404_page_and_a_json_client_the_json_shape() {
    if browser_tests_skipped() {
        return;
    }
    let app = spawn_oidc_app_with(&[]).await;
    let b = browser_in("de").await;
    b.goto(&app.url("/no-such-page")).await;
    assert_eq!(b.status().await, 404);
    assert_eq!(b.lang().await, "de");
    assert_eq!(b.h1().await, "Seite nicht gefunden");
    b.quit().await;

    let res = reqwest::Client::new()
        .get(app.url("/no-such-page"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "not_found", "a JSON client").await;
}

#[tokio::test]
async fn send_again_says_when_the_new_link_went_and_waits_visibly_disabled() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|_| {}).await;
    let b = Browser::launch().await;
    app.start_authorization(&b, &app.authorization(&client, &[]))
        .await;
    app.sign_in_through_login(&b, EMAIL).await;
    let resend = "form[action=\"/login/resend\"] button";
    assert_eq!(
        b.find(resend)
            .await
            .prop("disabled")
            .await
            .unwrap()
            .as_deref(),
        Some("true"),
        "the countdown runs"
    );
    assert_eq!(style_of(&b, resend, "cursor").await, "not-allowed");
    assert_eq!(
        style_of(&b, resend, "border-top-style").await,
        "dashed",
        "it looks disabled"
    );
    app.clock.advance(45);
    b.goto(b.url().await.as_ref()).await;
    let before = app.inbox();
    b.click(resend).await;
    b.wait_for_path("/login/check").await;
    app.new_email_to(&before, EMAIL).await;
    let notice = b.find(".notice").await.text().await.unwrap();
    assert!(notice.starts_with("New link sent at "), "{notice}");
    assert!(
        !notice.contains("UTC"),
        "the script shows the browser's time: {notice}"
    );
    b.quit().await;
}

#[tokio::test]
async fn a_link_with_trailing_punctuation_still_works() {
    if browser_tests_skipped() {
        return;
    }
    let (app, client, _callback) = setup(|s| s.first_party = true).await;
    let b = Browser::launch().await;
    let auth = app.authorization(&client, &[]);
    app.start_authorization(&b, &auth).await;
    let sent = app.sign_in_through_login(&b, EMAIL).await;
    let link = app.local(sent.link.as_deref().unwrap());
    b.goto(&format!("{link}%3E).")).await;
    app.expect_back_at_app(&b, &client, &auth).await;
    b.quit().await;
}
