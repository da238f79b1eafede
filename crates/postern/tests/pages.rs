//! Black-box tests of the hosted pages as people meet them (SPEC §3.1,
//! §3.3): their language, the app's branding, the "check your email" page,
//! the token-free confirmation page, `device_policy = remote` between two
//! browsers, and the policy that keeps every page free of inline code.

mod support;

use postern_core::DevicePolicy;
use reqwest::Client;
use serde_json::json;
use support::*;

/// `<html lang="…">` of a page.
fn html_lang(page: &str) -> Option<&str> {
    let start = page.find("<html lang=\"")? + "<html lang=\"".len();
    let len = page[start..].find('"')?;
    Some(&page[start..start + len])
}

/// The text of a page's `<h1>`, unescaped.
fn heading(page: &str) -> String {
    let start = page.find("<h1>").expect("an <h1>") + 4;
    let end = start + page[start..].find("</h1>").expect("a closed <h1>");
    html_unescape(&page[start..end])
}

/// Asserts a page's language and heading.
fn assert_page(page: &str, lang: &str, title: &str, context: &str) {
    assert_eq!(html_lang(page), Some(lang), "{context}: {page}");
    assert_eq!(heading(page), title, "{context}: {page}");
}

/// `GET url` in `b` with extra headers; status and body.
async fn get_page(b: &Client, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = b.get(url).header("accept", "text/html");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Opens `link` in `b`, which did not ask for it: the 303 that moves the
/// token into a cookie, then the confirmation page. Returns the page.
async fn open_elsewhere(app: &TestApp, b: &Client, link: &str) -> String {
    let res = b.get(link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "/verify-email");
    let res = b.get(app.url("/verify-email")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The hosted flow up to "check your email" in a new browser, with
/// `extra` `/login` parameters (`ui_locales`); returns the browser, the
/// login id and the email sent.
async fn hosted_with(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    extra: &[(&str, &str)],
) -> (Client, String, Email) {
    let b = browser();
    let page = app.login_page(&b, client, extra).await;
    let mut form = hidden_inputs(&page);
    form.push(("email".to_owned(), email.to_owned()));
    let before = app.inbox();
    let res = b.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let login_id = location(&res)
        .strip_prefix("/login/check?id=")
        .expect("to the check page")
        .to_owned();
    let sent = app.new_email_to(&before, email).await;
    (b, login_id, sent)
}

/// "check your email" of `login_id` in `b`.
async fn check_page(app: &TestApp, b: &Client, login_id: &str) -> reqwest::Response {
    b.get(app.url(&format!("/login/check?id={login_id}")))
        .send()
        .await
        .unwrap()
}

// ---- Languages -----------------------------------------------------------------

/// A case of the language tables: what, app, `/login` parameters, request
/// headers, the `lang` and the heading expected.
type LanguageCase<'a> = (
    &'a str,
    &'a TestClient,
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a str,
);

#[tokio::test]
async fn the_login_page_speaks_ui_locales_then_accept_language_then_the_apps_language() {
    let app = spawn_app().await;
    let english_app = app.create_app(|_| {}).await;
    let german_app = app.create_app(|s| s.locale = "de".into()).await;
    let cases: [LanguageCase; 6] = [
        (
            "nothing asked",
            &english_app,
            &[],
            &[],
            "en",
            "Sign in to Test App",
        ),
        (
            "ui_locales=de",
            &english_app,
            &[("ui_locales", "de")],
            &[],
            "de",
            "Bei Test App anmelden",
        ),
        (
            "Accept-Language: fr",
            &english_app,
            &[],
            &[("accept-language", "fr-CH, fr;q=0.9, en;q=0.5")],
            "fr",
            "Connexion à Test App",
        ),
        (
            "ui_locales beats Accept-Language",
            &english_app,
            &[("ui_locales", "fr")],
            &[("accept-language", "de")],
            "fr",
            "Connexion à Test App",
        ),
        (
            "the app's default locale",
            &german_app,
            &[],
            &[],
            "de",
            "Bei Test App anmelden",
        ),
        (
            "Accept-Language beats the app's default",
            &german_app,
            &[],
            &[("accept-language", "en-GB")],
            "en",
            "Sign in to Test App",
        ),
    ];
    for (case, client, query, headers, lang, title) in cases {
        let url = app.url(&format!("/login?{}", app.login_query(client, query)));
        let (status, page) = get_page(&browser(), &url, headers).await;
        assert_eq!(status, 200, "{case}");
        assert_page(&page, lang, title, case);
    }
}

#[tokio::test]
async fn the_check_page_speaks_the_language_the_sign_in_started_in() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, login_id, sent) =
        hosted_with(&app, &client, "de@example.com", &[("ui_locales", "de")]).await;
    assert!(
        sent.subject.starts_with("Bei Test App anmelden"),
        "{}",
        sent.subject
    );
    let res = check_page(&app, &b, &login_id).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert_page(&page, "de", "Prüfen Sie Ihr Postfach", "check page");
    let text = text_of(&page);
    for words in [
        "de@example.com",
        "6-stelliger Code",
        "Spam",
        "Erneut senden",
    ] {
        assert!(text.contains(words), "{words}: {page}");
    }
}

#[tokio::test]
async fn the_confirmation_page_speaks_the_language_the_sign_in_started_in() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let mut body = app.link_body(&client, "fr@example.com");
    body["ui_locales"] = json!("fr");
    let res = app.request_link(&browser(), &body).await;
    assert_eq!(res.status(), 200);
    let link = app.link_for("fr@example.com").await;
    let other = browser();
    let res = other.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let (status, page) = get_page(
        &other,
        &app.url("/verify-email"),
        &[("accept-language", "de")],
    )
    .await;
    assert_eq!(status, 200);
    assert_page(
        &page,
        "fr",
        "Se connecter à Test App\u{a0}?",
        "confirmation page",
    );
    let text = html_unescape(&page);
    assert!(text.contains("Demandé depuis"), "{page}");
    assert!(text.contains("Continuer vers Test App"), "{page}");
}

#[tokio::test]
async fn error_pages_speak_the_language_of_the_request_the_browser_or_the_app() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let german_app = app.create_app(|s| s.locale = "de".into()).await;

    // An expired link asked for in German: the request's language.
    let b = browser();
    let mut body = app.link_body(&client, "old@example.com");
    body["ui_locales"] = json!("de");
    let res = b
        .post(app.url("/request-magic-link"))
        .header("origin", PUBLIC_URL)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = app.link_for("old@example.com").await;
    app.clock.advance(15 * 60 + 1);
    let (status, page) = get_page(&b, &link, &[("accept-language", "fr")]).await;
    assert_eq!(status, 400);
    assert_page(&page, "de", "Dieser Link ist abgelaufen", "expired link");
    let text = html_unescape(&page);
    assert!(text.contains("Neuen Link senden"), "{page}");
    assert!(
        text.contains("ui_locales=de"),
        "the way forward keeps the language: {page}"
    );
    assert!(text.contains("login_hint=old%40example.com"), "{page}");

    // An unknown link: the browser's language.
    let (status, page) = get_page(
        &browser(),
        &app.url("/verify-email?token=pml_nope"),
        &[("accept-language", "fr")],
    )
    .await;
    assert_eq!(status, 400);
    assert_page(&page, "fr", "Ce lien n’est pas valide", "unknown link");

    // A bad request for an app whose default is German.
    let url = app.url(&format!(
        "/login?client_id={}&redirect_uri=https://evil.example/cb",
        german_app.client_id
    ));
    let (status, page) = get_page(&browser(), &url, &[]).await;
    assert_eq!(status, 400);
    assert_page(&page, "de", "Etwas stimmt nicht", "bad redirect_uri");
    assert!(
        page.contains("lang=\"en\""),
        "the English detail is marked: {page}"
    );
}

#[tokio::test]
async fn a_rate_limited_person_is_told_in_words_when_to_try_again() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "1")]).await;
    let client = app.create_app(|_| {}).await;
    let asked_at = app.clock_now();
    let (b, login_id, _) =
        hosted_with(&app, &client, "wait@example.com", &[("ui_locales", "fr")]).await;
    let page = check_page(&app, &b, &login_id).await.text().await.unwrap();
    let res = b
        .post(app.url("/login/resend"))
        .form(&[
            ("csrf_token", input_value(&page, "csrf_token").unwrap()),
            ("login_id", login_id.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let page = res.text().await.unwrap();
    // The email sent before still works: the page says until when (UTC
    // without the script, the browser's time with it) and leads back to it.
    assert_page(
        &page,
        "fr",
        "Votre dernier e-mail fonctionne encore",
        "rate limited",
    );
    let minutes = (retry_after + 59) / 60;
    // The hourly window may be about to end: under a minute left reads
    // "1 minute".
    let when = match minutes {
        60 => "1 heure".to_owned(),
        1 => "1 minute".to_owned(),
        _ => format!("{minutes} minutes"),
    };
    // The link was made between `asked_at` and now; a minute boundary may
    // fall in between, so either minute is the right expiry.
    let until = |at: i64| {
        let expires = at + 15 * 60;
        format!(
            "jusqu’à {:02}:{:02} UTC.",
            expires.rem_euclid(86_400) / 3600,
            expires.rem_euclid(3600) / 60
        )
    };
    let (first, last) = (until(asked_at), until(app.clock_now()));
    let text = text_of(&page);
    assert!(
        text.contains(&first) || text.contains(&last),
        "{first} or {last}: {text}"
    );
    assert!(
        text.contains(&format!("en demander un nouveau dans {when}.")),
        "{text}"
    );
    assert!(
        page.contains(&format!("href=\"/login/check?id={login_id}\"")),
        "back to the link that still works: {page}"
    );
}

// ---- Branding ------------------------------------------------------------------

#[tokio::test]
async fn an_apps_colour_comes_from_its_own_cacheable_stylesheet_never_inline() {
    let app = spawn_app().await;
    let branded = app
        .create_app(|s| {
            s.branding.color = Some("#0A7E3C".into());
            s.branding.logo_url = Some("https://app.example/logo.png".into());
            s.branding.name = Some("Green Grocer".into());
        })
        .await;
    let plain = app.create_app(|_| {}).await;
    let page = app.login_page(&browser(), &branded, &[]).await;
    assert_eq!(heading(&page), "Sign in to Green Grocer");
    let href = format!("/static/brand/{}.css?v=0a7e3c", branded.client_id);
    assert!(
        page.contains(&format!("<link rel=\"stylesheet\" href=\"{href}\">")),
        "{page}"
    );
    // SPEC §3.3: no third-party images on any page; the logo on another
    // origin is left out (emails still show it).
    assert!(!page.contains("app.example/logo.png"), "{page}");
    assert!(
        !page.contains(" style=") && !page.contains("<style"),
        "{page}"
    );

    let res = browser().get(app.url(&href)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let header = |n: &str| res.headers()[n].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/css"));
    assert!(
        header("cache-control").starts_with("public, max-age="),
        "{}",
        header("cache-control")
    );
    let css = res.text().await.unwrap();
    assert!(css.contains("--accent: #0a7e3c;"), "{css}");
    assert!(css.contains("--on-accent: #"), "{css}");

    let page = app.login_page(&browser(), &plain, &[]).await;
    assert!(
        !page.contains("/static/brand/"),
        "no colour, no stylesheet: {page}"
    );
    let cases = [
        (
            "an app without a colour",
            format!("/static/brand/{}.css", plain.client_id),
        ),
        ("an unknown app", "/static/brand/nope.css".to_owned()),
        (
            "not a stylesheet",
            format!("/static/brand/{}", branded.client_id),
        ),
    ];
    for (case, path) in cases {
        let res = browser().get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{case}");
    }
}

#[tokio::test]
async fn every_page_keeps_a_strict_policy_with_our_script_only() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, login_id, _) = hosted_with(&app, &client, "csp@example.com", &[]).await;
    let res = check_page(&app, &b, &login_id).await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for must in [
        "script-src 'self'",
        "style-src 'self'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(must), "{must}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<script src=\"/static/postern.js\" defer></script>"),
        "{page}"
    );
    let res = browser()
        .get(app.url("/static/postern.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let script = res.text().await.unwrap();
    assert!(script.contains("data-resend-wait") && script.contains("data-status-url"));
}

// ---- Check your email ------------------------------------------------------------

#[tokio::test]
async fn the_check_page_says_where_the_link_went_and_what_to_do_when_nothing_arrives() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, login_id, _) = hosted_with(&app, &client, "help@example.com", &[]).await;
    let page = check_page(&app, &b, &login_id).await.text().await.unwrap();
    assert_page(&page, "en", "Check your email", "check page");
    let text = text_of(&page);
    for words in [
        "We sent a sign-in link for Test App to",
        "help@example.com",
        "6-digit code",
        "expire in 15 minutes",
        "Nothing arrived?",
        "spam",
        "Use another address",
        "Send again",
    ] {
        assert!(text.contains(words), "{words}: {page}");
    }
    // The countdown is the script's; without it the button is simply there.
    assert!(page.contains("data-resend-wait=\"30\""), "{page}");
    assert!(!page.contains("disabled"), "{page}");
    app.clock.advance(45);
    let page = check_page(&app, &b, &login_id).await.text().await.unwrap();
    assert!(page.contains("data-resend-wait=\"0\""), "{page}");
    // No remote number and no refresh unless the app asks for remote approval.
    assert!(!page.contains("http-equiv=\"refresh\"") && !page.contains("remote-number"));
}

// ---- The confirmation page without a token in the address bar -----------------------

#[tokio::test]
async fn another_browser_sees_the_confirmation_page_at_a_url_without_the_token() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let asking = app
        .request_link_in_browser(&client, "clean@example.com")
        .await;
    let link = app.link_for("clean@example.com").await;
    let token = token_of(&link);
    let other = browser();
    let res = other.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let loc = location(&res);
    assert_eq!(loc, "/verify-email");
    assert!(!loc.contains("pml_") && !loc.contains(&token));
    let cookie = set_cookie(res.headers(), "postern_link").expect("the link cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/verify-email"] {
        assert!(cookie.contains(attr), "{attr}: {cookie}");
    }
    let max_age: i64 = cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .expect("a Max-Age")
        .parse()
        .unwrap();
    assert!(
        (1..=15 * 60).contains(&max_age),
        "no longer than the link: {max_age}"
    );

    for look in ["first", "second"] {
        let (status, page) = get_page(&other, &app.url("/verify-email"), &[]).await;
        assert_eq!(status, 200, "{look}");
        assert_page(&page, "en", "Sign in to Test App?", look);
        assert!(text_of(&page).contains("clean@example.com"), "{look}");
    }
    assert_eq!(
        app.count("authorization_codes").await,
        0,
        "looking consumes nothing"
    );

    // The button still works, from the page's form.
    let page = open_elsewhere(&app, &other, &link).await;
    let res = other
        .post(app.url("/verify-email"))
        .form(&hidden_inputs(&page))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with(&client.redirect_uri));
    let cleared = set_cookie(res.headers(), "postern_link").expect("the cookie is removed");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    expect_error(
        app.get_json(&asking, &link).await,
        400,
        "invalid_token",
        "used",
    )
    .await;
}

#[tokio::test]
async fn a_bare_verify_url_without_the_cookie_says_to_open_the_link_again() {
    let app = spawn_app().await;
    let (status, page) = get_page(&browser(), &app.url("/verify-email"), &[]).await;
    assert_eq!(status, 400);
    assert_page(&page, "en", "Open the link again", "no cookie");
}

#[tokio::test]
async fn an_unknown_link_says_where_to_ask_and_leads_back_to_the_account_page_when_that_was_it() {
    let app = spawn_app().await;
    let garbage = app.url("/verify-email?token=pml_this-is-not-a-real-token");

    // Nothing known: a sentence saying where to ask, no dead-end button.
    let (status, page) = get_page(&browser(), &garbage, &[]).await;
    assert_eq!(status, 400);
    assert_page(&page, "en", "This link is not valid", "unknown link");
    assert!(page.contains("ask for a new link there"), "{page}");
    assert!(!page.contains("class=\"button\""), "{page}");

    // Signing in to the account page: the way forward is that page again.
    let b = browser();
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303, "/account starts its sign-in");
    let (status, page) = get_page(&b, &garbage, &[]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("<a class=\"button\" href=\"/account\">"),
        "{page}"
    );
}

#[tokio::test]
async fn an_expired_form_offers_the_same_form_again_with_the_address_kept() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    let page = app.login_page(&b, &client, &[]).await;
    let mut form: Vec<(String, String)> = hidden_inputs(&page)
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .collect();
    form.push(("csrf_token".into(), "expired".into()));
    form.push(("email".into(), "kim@example.com".into()));
    let res = b
        .post(app.url("/login"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let page = html_unescape(&res.text().await.unwrap());
    assert_page(&page, "en", "This form has expired", "tampered CSRF token");
    let again = format!("{PUBLIC_URL}/login?");
    assert!(
        page.contains(&format!("<a class=\"button\" href=\"{again}")),
        "a way forward to the same form: {page}"
    );
    assert!(page.contains(&client.client_id), "{page}");
    assert!(page.contains("login_hint=kim%40example.com"), "{page}");
    assert_eq!(app.count("login_requests").await, 0, "nothing was asked");
}

#[tokio::test]
async fn a_mail_scanner_that_opens_and_submits_the_link_signs_no_one_in_under_same_browser() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::SameBrowser)
        .await;
    let asking = app
        .request_link_in_browser(&client, "scan@example.com")
        .await;
    let link = app.link_for("scan@example.com").await;

    // A scanner without cookies: the redirect leads nowhere.
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let res = cookieless.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 400, "followed to a page without the link");

    // A scanner that keeps cookies and runs the page finds no form to
    // submit: the page says at once to use the code on the asking device.
    let scanner = browser();
    let page = open_elsewhere(&app, &scanner, &link).await;
    assert!(page.contains("6-digit code"), "{page}");
    assert!(
        !hidden_inputs(&page).iter().any(|(k, _)| k == "token"),
        "{page}"
    );
    // One that posts the token anyway, with a CSRF token of its own, gets
    // the same sentence.
    let csrf = app.csrf_of(&scanner, &client).await;
    let res = scanner
        .post(app.url("/verify-email"))
        .form(&[("csrf_token", csrf), ("token", token_of(&link))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookie(res.headers(), "postern_session"), None);
    let page = html_unescape(&res.text().await.unwrap());
    assert!(page.contains("6-digit code"), "{page}");
    assert_eq!(app.count("authorization_codes").await, 0);
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(app.count("sign_in_events").await, 0);

    let res = asking.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "the person who asked still signs in");
    assert!(location(&res).starts_with(&client.redirect_uri));
}

// ---- device_policy = remote --------------------------------------------------------

/// The two-digit number on a check page.
fn remote_number(page: &str) -> String {
    let start = page.find("id=\"remote-number\">").expect("a remote number") + 19;
    let number = &page[start..start + 2];
    assert!(number.bytes().all(|b| b.is_ascii_digit()), "{page}");
    number.to_owned()
}

/// `GET /login/status?id=` from `b`: status and body.
async fn status(app: &TestApp, b: &Client, login_id: &str) -> (u16, serde_json::Value) {
    let res = b
        .get(app.url(&format!("/login/status?id={login_id}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Posts the number on the confirmation page `other` shows for `link`.
async fn type_number(app: &TestApp, other: &Client, link: &str, number: &str) -> reqwest::Response {
    let page = open_elsewhere(app, other, link).await;
    assert!(page.contains("name=\"number\""), "a number field: {page}");
    let mut form = hidden_inputs(&page);
    form.push(("number".to_owned(), number.to_owned()));
    other
        .post(app.url("/verify-email"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn under_remote_the_other_device_approves_with_the_number_and_the_asking_browser_continues() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::Remote)
        .await;
    let (asking, login_id, sent) = hosted_with(&app, &client, "two@example.com", &[]).await;
    let page = check_page(&app, &asking, &login_id)
        .await
        .text()
        .await
        .unwrap();
    let number = remote_number(&page);
    assert!(
        html_unescape(&page).contains("Your confirmation number"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<noscript><meta http-equiv=\"refresh\" content=\"5;url=/login/check?id={login_id}\"></noscript>"
        )),
        "works without JavaScript: {page}"
    );
    assert!(page.contains(&format!("data-status-url=\"/login/status?id={login_id}\"")));
    assert_eq!(
        status(&app, &asking, &login_id).await,
        (200, json!({"status": "pending"}))
    );

    let other = browser();
    let link = app.local(sent.link.as_deref().unwrap());
    let page = open_elsewhere(&app, &other, &link).await;
    assert!(html_unescape(&page).contains("two-digit number"), "{page}");
    let res = type_number(&app, &other, &link, &number).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        set_cookie(res.headers(), "postern_session"),
        None,
        "the other device is not signed in"
    );
    let page = res.text().await.unwrap();
    assert_page(&page, "en", "Confirmed", "approved");
    assert_eq!(app.count("authorization_codes").await, 0);
    assert_eq!(
        status(&app, &asking, &login_id).await,
        (200, json!({"status": "approved"}))
    );
    let spent = app
        .rows("SELECT count FROM rate_limits WHERE key LIKE 'code-%'")
        .await;
    assert!(
        spent.iter().all(|r| r[0] == "0"),
        "a right number spends no budget: {spent:?}"
    );

    // The asking browser's next look at its page continues like a click.
    let res = check_page(&app, &asking, &login_id).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with(&client.redirect_uri));
    let params = location_params(&res);
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-123", PUBLIC_URL)
    );
    assert!(set_cookie(res.headers(), "postern_session").is_some());
    assert_eq!(app.count("authorization_codes").await, 1);
    assert_eq!(
        status(&app, &asking, &login_id).await,
        (200, json!({"status": "dead"}))
    );
    let res = check_page(&app, &asking, &login_id).await;
    assert_eq!(res.status(), 400, "once");
    expect_error(
        app.get_json(&other, &link).await,
        400,
        "invalid_token",
        "the link",
    )
    .await;
}

#[tokio::test]
async fn under_remote_an_approved_sign_in_that_needs_consent_shows_the_consent_screen() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| {
            s.device_policy = DevicePolicy::Remote;
            s.first_party = false;
        })
        .await;
    let (asking, login_id, sent) =
        hosted_with(&app, &client, "ask@example.com", &[("ui_locales", "de")]).await;
    let page = check_page(&app, &asking, &login_id)
        .await
        .text()
        .await
        .unwrap();
    let link = app.local(sent.link.as_deref().unwrap());
    let res = type_number(&app, &browser(), &link, &remote_number(&page)).await;
    assert_eq!(res.status(), 200);
    let res = check_page(&app, &asking, &login_id).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert_page(
        &page,
        "de",
        "Darf Test App erfahren, wer Sie sind?",
        "consent",
    );
    assert!(page.contains("value=\"allow\""), "{page}");
}

#[tokio::test]
async fn under_remote_a_wrong_number_kills_the_request_and_spends_the_code_budget() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::Remote)
        .await;
    let (asking, login_id, sent) = hosted_with(&app, &client, "kill@example.com", &[]).await;
    let page = check_page(&app, &asking, &login_id)
        .await
        .text()
        .await
        .unwrap();
    let number = remote_number(&page);
    let wrong = format!("{:02}", (number.parse::<u32>().unwrap() + 1) % 100);
    let link = app.local(sent.link.as_deref().unwrap());
    let other = browser();
    let res = type_number(&app, &other, &link, &wrong).await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert_page(&page, "en", "That number was not right", "wrong number");
    assert!(html_unescape(&page).contains("Send a new link"), "{page}");
    let spent = app
        .rows("SELECT count FROM rate_limits WHERE key LIKE 'code-email-hour:%'")
        .await;
    assert_eq!(spent, [["1"]], "one try of the address's code budget");

    assert_eq!(
        status(&app, &asking, &login_id).await,
        (200, json!({"status": "dead"}))
    );
    let res = check_page(&app, &asking, &login_id).await;
    assert_eq!(res.status(), 400);
    expect_error(
        app.get_json(&asking, &link).await,
        400,
        "invalid_token",
        "the link",
    )
    .await;
    let h = Hosted {
        browser: asking.clone(),
        login_id: login_id.clone(),
        csrf: input_value(&app.login_page(&asking, &client, &[]).await, "csrf_token").unwrap(),
    };
    let code = sent.code.unwrap();
    expect_error(
        app.submit_code(&h, &code).await,
        400,
        "invalid_token",
        "the code",
    )
    .await;
    assert_eq!(app.count("authorization_codes").await, 0);
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn the_status_of_a_sign_in_is_only_told_to_the_browser_that_asked() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::Remote)
        .await;
    let (asking, login_id, _) = hosted_with(&app, &client, "who@example.com", &[]).await;
    assert_eq!(status(&app, &asking, &login_id).await.0, 200);
    let other_asker = hosted_with(&app, &client, "else@example.com", &[]).await.0;
    let cases = [
        ("a browser without cookies", browser(), login_id.clone()),
        (
            "a browser that asked for another sign-in",
            other_asker,
            login_id.clone(),
        ),
        ("an unknown id", asking.clone(), "nope".to_owned()),
        ("a very long id", asking.clone(), "x".repeat(100)),
    ];
    for (case, b, id) in cases {
        let res = b
            .get(app.url(&format!("/login/status?id={id}")))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        expect_error(res, 404, "not_found", case).await;
    }
}

#[tokio::test]
async fn under_remote_the_asking_browser_can_still_use_the_link_or_the_code_itself() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::Remote)
        .await;
    let (asking, _, sent) = hosted_with(&app, &client, "self@example.com", &[]).await;
    let link = app.local(sent.link.as_deref().unwrap());
    let res = asking.get(&link).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "the asking browser's GET consumes at once"
    );
    assert!(location(&res).starts_with(&client.redirect_uri));
}

#[tokio::test]
async fn under_remote_a_link_asked_for_cross_site_has_no_number_to_approve() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::Remote)
        .await;
    let body = app.link_body(&client, "cross@example.com");
    assert_eq!(app.request_link(&browser(), &body).await.status(), 200);
    assert_eq!(
        app.rows("SELECT remote_number FROM login_requests").await,
        [["NULL"]],
        "no page will ever show a number"
    );
    let link = app.link_for("cross@example.com").await;
    let page = open_elsewhere(&app, &browser(), &link).await;
    assert!(!page.contains("name=\"number\""), "{page}");
    assert!(!page.contains("pml_"), "no form, no token: {page}");
    assert!(html_unescape(&page).contains("6-digit code"), "{page}");
    assert_eq!(app.count("authorization_codes").await, 0);
}

// ---- Errors on the form, and what the emails say (issue 16) ---------------------------

#[tokio::test]
async fn a_mistyped_address_is_answered_on_the_form_for_browsers_and_in_json_for_apps() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    let page = app.login_page(&b, &client, &[]).await;
    let mut form = hidden_inputs(&page);
    form.push(("email".to_owned(), "jens@gmail".to_owned()));
    let res = b
        .post(app.url("/login"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert_page(&page, "en", "Sign in to Test App", "the same form");
    assert_eq!(input_value(&page, "email").as_deref(), Some("jens@gmail"));
    let text = text_of(&page);
    assert!(
        text.contains("This is not a complete email address."),
        "{text}"
    );
    assert!(text.contains("Did you mean jens@gmail.com?"), "{text}");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");

    let res = b
        .post(app.url("/login"))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_request", "a JSON client").await;
    assert_eq!(app.count("login_requests").await, 0, "nothing was asked");
}

#[tokio::test]
async fn wrong_codes_in_a_browser_count_down_on_the_check_page_then_stop() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (b, login_id, sent) = hosted_with(&app, &client, "count@example.com", &[]).await;
    let page = check_page(&app, &b, &login_id).await.text().await.unwrap();
    let csrf = input_value(&page, "csrf_token").unwrap();
    let wrong = wrong_code(sent.code.as_deref().unwrap());
    let post = |code: String| {
        let form = [
            ("csrf_token", csrf.clone()),
            ("login_id", login_id.clone()),
            ("code", code),
        ];
        b.post(app.url("/login/code"))
            .header("accept", "text/html")
            .form(&form)
            .send()
    };
    // Not a code at all: said in place, and no try is spent.
    let res = post("12a".to_owned()).await.unwrap();
    assert_eq!(res.status(), 400);
    let text = text_of(&res.text().await.unwrap());
    assert!(text.contains("The code has 6 digits."), "{text}");
    for left in ["4 tries", "3 tries", "2 tries", "1 try"] {
        let res = post(format!("{} {}", &wrong[..3], &wrong[3..]))
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let page = res.text().await.unwrap();
        assert_page(&page, "en", "Check your email", left);
        let text = text_of(&page);
        assert!(
            text.contains(&format!("That code is not right. You have {left} left.")),
            "{left}: {text}"
        );
        assert_eq!(
            input_value(&page, "code").as_deref(),
            Some(&*format!("{} {}", &wrong[..3], &wrong[3..]))
        );
    }
    let res = post(wrong.clone()).await.unwrap();
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert_page(&page, "en", "Stopped: too many wrong codes", "the fifth");
}

#[tokio::test]
async fn a_branded_apps_email_comes_from_its_name_with_its_note_in_every_language() {
    let app = spawn_app().await;
    let note = "Questions? <help@acme.example>\nThe Acme team";
    let branded = app
        .create_app(|s| {
            s.branding.name = Some("Acme Notes".into());
            s.branding.color = Some("#0a7e3c".into());
            s.branding.email_note = Some(note.into());
        })
        .await;
    for (lang, subject) in [
        ("en", "Sign in to Acme Notes"),
        ("de", "Bei Acme Notes anmelden"),
        ("fr", "Connexion à Acme Notes"),
    ] {
        let email = format!("note.{lang}@example.com");
        let (_, _, sent) = hosted_with(&app, &branded, &email, &[("ui_locales", lang)]).await;
        assert!(
            sent.subject.starts_with(subject),
            "{lang}: {}",
            sent.subject
        );
        let from = sent
            .raw
            .lines()
            .find(|l| l.starts_with("From:"))
            .expect("a From header");
        assert!(from.contains("Acme Notes"), "{lang}: {from}");
        // The wire has CRLF line ends.
        let text = sent.text.replace("\r\n", "\n");
        assert!(text.contains(note), "{lang}: {text}");
        assert!(
            sent.html
                .contains("Questions? &#60;help@acme.example&#62;<br>The Acme team"),
            "{lang}: {}",
            sent.html
        );
        assert!(sent.html.contains(">Acme Notes</td>"), "the brand header");
    }
    // A sender name wins; an app without branding keeps the configured From.
    let named = app
        .create_app(|s| {
            s.branding.name = Some("Acme Notes".into());
            s.branding.sender_name = Some("Acme Sign-in".into());
        })
        .await;
    let (_, _, sent) = hosted_with(&app, &named, "named@example.com", &[]).await;
    let from = sent.raw.lines().find(|l| l.starts_with("From:")).unwrap();
    assert!(from.contains("Acme Sign-in"), "{from}");
    let plain = app.create_app(|_| {}).await;
    let (_, _, sent) = hosted_with(&app, &plain, "plain@example.com", &[]).await;
    let from = sent.raw.lines().find(|l| l.starts_with("From:")).unwrap();
    assert!(!from.contains("Test App"), "{from}");
}

#[tokio::test]
async fn the_account_pages_own_sign_in_reads_your_postern_account_in_every_language() {
    let app = spawn_oidc_app_with(&[]).await;
    for (lang, title) in [
        ("en", "Sign in to your Postern account"),
        ("de", "Bei Ihrem Postern-Konto anmelden"),
        ("fr", "Connexion à votre compte Postern"),
    ] {
        let b = browser();
        let res = b.get(app.url("/account")).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let res = b.get(location(&res)).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let (status, page) = get_page(&b, &location(&res), &[("accept-language", lang)]).await;
        assert_eq!(status, 200);
        assert_page(&page, lang, title, lang);
    }
}

#[tokio::test]
async fn every_error_page_of_an_apps_flow_links_the_apps_stylesheet() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "1")]).await;
    let client = app
        .create_app(|s| {
            s.branding.name = Some("Acme Notes".into());
            s.branding.color = Some("#0a7e3c".into());
        })
        .await;
    let brand = format!("/static/brand/{}.css?v=0a7e3c", client.client_id);
    let (b, login_id, sent) = hosted_with(&app, &client, "brand@example.com", &[]).await;
    let page = check_page(&app, &b, &login_id).await.text().await.unwrap();
    let csrf = input_value(&page, "csrf_token").unwrap();
    let post = |path: &str, form: Vec<(&str, String)>| {
        b.post(app.url(path))
            .header("accept", "text/html")
            .form(&form)
            .send()
    };
    let mut cases = Vec::new();
    // A form whose CSRF token is off, for the code and for "send again".
    for path in ["/login/code", "/login/resend"] {
        let res = post(
            path,
            vec![
                ("csrf_token", "tampered".to_owned()),
                ("login_id", login_id.clone()),
                ("code", "000000".to_owned()),
            ],
        )
        .await
        .unwrap();
        cases.push((
            path.to_owned(),
            res.status().as_u16(),
            res.text().await.unwrap(),
        ));
    }
    // "Send again" over the limit.
    let res = post(
        "/login/resend",
        vec![("csrf_token", csrf.clone()), ("login_id", login_id.clone())],
    )
    .await
    .unwrap();
    cases.push((
        "rate limited".to_owned(),
        res.status().as_u16(),
        res.text().await.unwrap(),
    ));
    // The link, expired.
    app.clock.advance(16 * 60);
    let (status, page) = get_page(&b, &app.local(sent.link.as_deref().unwrap()), &[]).await;
    cases.push(("expired".to_owned(), status, page));
    for (case, status, page) in cases {
        assert!(status >= 400, "{case}: {status}");
        assert!(
            page.contains(&format!("<link rel=\"stylesheet\" href=\"{brand}\">")),
            "{case}: the app's colour: {page}"
        );
        assert!(
            page.contains("<p class=\"brand\">"),
            "{case}: the app's name: {page}"
        );
    }
}
