//! Black-box tests of SPEC §2 and §3.1: asking for a link, the email it
//! sends, opening the link in the asking browser and in others, and what a
//! sign-in leaves behind. Codes and the hosted pages are in
//! `signin_hosted.rs`, bad input in `signin_input.rs`, limits in
//! `signin_limits.rs`.

mod support;

use postern_core::{AppSettings, DevicePolicy};
use serde_json::json;
use support::*;

const INVALID_LINK: &str = "The magic link has expired or is invalid.";

// ---- POST /request-magic-link ------------------------------------------------

#[tokio::test]
async fn a_link_request_answers_with_the_normalized_address() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let res = app
        .request_link(&browser(), &app.link_body(&client, "  Alice@Example.COM "))
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": "Magic link sent successfully", "email": "alice@example.com"})
    );
    let email = app.last_email_to("alice@example.com").await;
    assert!(
        email.subject.starts_with("Sign in to Test App"),
        "{}",
        email.subject
    );
    assert!(email.link.is_some() && email.code.is_some());
}

#[tokio::test]
async fn addresses_are_normalized_before_anything_else() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let cases = [
        (
            "surrounding spaces and capitals",
            "  Alice@Example.COM ",
            "alice@example.com",
        ),
        ("a tab", "\tbob@example.com", "bob@example.com"),
        (
            "an IDN domain, in punycode",
            "carl@Bücher.Example",
            "carl@xn--bcher-kva.example",
        ),
    ];
    for (case, given, normalized) in cases {
        let res = app
            .request_link(&browser(), &app.link_body(&client, given))
            .await;
        assert_eq!(res.status(), 200, "{case}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["email"], normalized, "{case}");
        assert!(app.last_email_to(normalized).await.link.is_some(), "{case}");
    }
}

#[tokio::test]
async fn a_form_link_request_answers_like_a_json_one() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let res = app
        .request_link_form(
            &browser(),
            &[
                ("email", "  Carol@Example.COM "),
                ("client_id", &client.client_id),
                ("redirect_uri", &client.redirect_uri),
                ("state", "st-123"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "Magic link sent successfully", "email": "carol@example.com"})
    );
    let email = app.last_email_to("carol@example.com").await;
    assert!(email.link.is_some(), "{}", email.text);
}

#[tokio::test]
async fn the_sign_in_email_carries_the_link_the_code_and_the_expiry() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.request_link(&browser(), &app.link_body(&client, "dana@example.com"))
        .await;
    let email = app.last_email_to("dana@example.com").await;
    let code = email.code.clone().expect("a 6-digit code in the subject");
    assert!(
        code.bytes().all(|b| b.is_ascii_digit()) && code.len() == 6,
        "{code}"
    );
    assert!(
        email.subject.starts_with("Sign in to Test App") && email.subject.ends_with(&code),
        "subject: {}",
        email.subject
    );
    let link = email.link.clone().expect("a link in the text part");
    let token = link
        .strip_prefix("http://127.0.0.1:8080/verify-email?token=pml_")
        .unwrap_or_else(|| panic!("link: {link}"));
    assert!(
        token.len() >= 43,
        "256 bits of base64url need 43 characters: {token}"
    );
    for needle in [
        link.as_str(),
        code.as_str(),
        "This link will expire in 15 minutes.",
        "If you didn't request this, you can safely ignore this email.",
    ] {
        assert!(
            email.text.contains(needle),
            "the text part lacks {needle:?}:\n{}",
            email.text
        );
    }
    assert!(
        email
            .raw
            .to_ascii_lowercase()
            .contains("multipart/alternative"),
        "{}",
        email.raw
    );
    assert!(
        email.html.contains(token) && email.html.contains(&code),
        "html part: {}",
        email.html
    );
}

// ---- GET /verify-email in the asking browser ---------------------------------

#[tokio::test]
async fn the_asking_browser_is_signed_in_by_the_link_once() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "bob@example.com")
        .await;
    let email = app.last_email_to("bob@example.com").await;
    let link = app.local(email.link.as_deref().unwrap());
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let params = location_params(&res);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&client.redirect_uri));
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], PUBLIC_URL);
    assert!(params["code"].len() >= 43);
    let again = b
        .get(&link)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["error_description"],
        "The magic link has expired or is invalid."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_clicks_exactly_one_signs_in() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "race@example.com")
        .await;
    let link = app.link_for("race@example.com").await;
    let clicks: Vec<_> = (0..20)
        .map(|_| {
            let (b, link) = (b.clone(), link.clone());
            tokio::spawn(async move {
                let res = b
                    .get(&link)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                (status, res.text().await.unwrap())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for click in clicks {
        outcomes.push(click.await.unwrap());
    }
    let signed_in = outcomes.iter().filter(|(s, _)| *s == 303).count();
    let refused = outcomes
        .iter()
        .filter(|(s, body)| *s == 400 && body.contains("\"invalid_token\""))
        .count();
    assert_eq!((signed_in, refused), (1, 19), "{outcomes:?}");
    assert_eq!(app.count("authorization_codes").await, 1);
}

#[tokio::test]
async fn a_link_still_works_a_second_before_it_expires() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "late@example.com")
        .await;
    let link = app.link_for("late@example.com").await;
    app.clock.advance(15 * 60 - 1);
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn an_apps_link_lifetime_sets_the_expiry_and_the_email_says_so() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.link_ttl = 10 * 60).await;
    let b = app
        .request_link_in_browser(&client, "ten@example.com")
        .await;
    let email = app.last_email_to("ten@example.com").await;
    assert!(
        email.text.contains("This link will expire in 10 minutes."),
        "{}",
        email.text
    );
    app.clock.advance(10 * 60 + 1);
    let link = app.local(&email.link.unwrap());
    expect_error(
        app.get_json(&b, &link).await,
        400,
        "invalid_token",
        "after 10 minutes",
    )
    .await;
}

#[tokio::test]
async fn the_state_comes_back_to_the_app_unchanged() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let hostile = r#"bob"e"i'o;aü &code=forged#frag<script>"#;
    let mut body = app.link_body(&client, "state@example.com");
    body["state"] = json!(hostile);
    let b = browser();
    let res = b
        .post(app.url("/request-magic-link"))
        .header("origin", PUBLIC_URL)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = b
        .get(&app.link_for("state@example.com").await)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let loc = url::Url::parse(&location(&res)).unwrap();
    let pairs: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    let states: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str())
        .collect();
    let codes = pairs.iter().filter(|(k, _)| k == "code").count();
    assert_eq!(
        (states.as_slice(), codes),
        ([hostile].as_slice(), 1),
        "{loc}"
    );
    assert_eq!(loc.fragment(), None, "{loc}");
}

#[tokio::test]
async fn an_expired_link_gets_invalid_token() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "slow@example.com")
        .await;
    let link = app.link_for("slow@example.com").await;
    app.clock.advance(15 * 60 + 1);
    let body = expect_error(
        app.get_json(&b, &link).await,
        400,
        "invalid_token",
        "expired link",
    )
    .await;
    assert_eq!(body["error_description"], INVALID_LINK);
}

#[tokio::test]
async fn tampered_unknown_and_malformed_tokens_get_invalid_token() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "eve@example.com")
        .await;
    let link = app.link_for("eve@example.com").await;
    let token = token_of(&link);
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = format!("pml_{}", postern_core::crypto::random_token(32));
    let cases = [
        ("one character changed", tampered),
        ("a well-formed token nobody was sent", unknown),
        (
            "without the pml_ prefix",
            token.trim_start_matches("pml_").to_owned(),
        ),
        ("empty", String::new()),
        ("5 KB long", format!("pml_{}", "a".repeat(5 * 1024))),
    ];
    for (case, bad) in cases {
        let url = app.url(&format!("/verify-email?token={bad}"));
        let body = expect_error(app.get_json(&b, &url).await, 400, "invalid_token", case).await;
        assert_eq!(body["error_description"], INVALID_LINK, "{case}");
    }
    let res = app.get_json(&b, &app.url("/verify-email")).await;
    expect_error(res, 400, "invalid_token", "no token parameter at all").await;
    // None of that touched the real link.
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_dead_link_opened_in_a_browser_offers_a_new_link_to_the_same_destination() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    // Used: the asking browser signs in, then opens the link again.
    let used_browser = app.sign_in(&client, "used@example.com").await;
    let used_link = app.link_for("used@example.com").await;
    // Expired: never opened, and the clock moves past its lifetime.
    let expired_browser = app
        .request_link_in_browser(&client, "expired@example.com")
        .await;
    let expired_link = app.link_for("expired@example.com").await;
    app.clock.advance(15 * 60 + 1);
    let cases = [
        ("used", used_browser, used_link, "already used"),
        ("expired", expired_browser, expired_link, "expired"),
    ];
    for (case, b, link, says) in cases {
        let res = b
            .get(&link)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{case}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{case}: {ct}");
        let page = html_unescape(&res.text().await.unwrap());
        assert!(
            page.contains(says),
            "{case}: the page should say {says:?}: {page}"
        );
        assert!(page.contains("Send a new link"), "{case}: {page}");
        let href_start = page
            .find("href=\"http://127.0.0.1:8080/login?")
            .unwrap_or_else(|| panic!("{case}: no link back to /login: {page}"))
            + "href=\"".len();
        let href = &page[href_start..href_start + page[href_start..].find('"').unwrap()];
        let params: std::collections::BTreeMap<String, String> = url::Url::parse(href)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(params["client_id"], client.client_id, "{case}: {href}");
        assert_eq!(
            params["redirect_uri"], client.redirect_uri,
            "{case}: {href}"
        );
        assert_eq!(params["state"], "st-123", "{case}: {href}");
    }
}

#[tokio::test]
async fn an_invalid_link_opened_in_a_browser_gets_an_html_error_page() {
    let app = spawn_app().await;
    let res = browser()
        .get(app.url("/verify-email?token=pml_nope"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains("not valid"), "{page}");
}

// ---- GET /verify-email in another browser ------------------------------------

#[tokio::test]
async fn the_confirmation_page_says_which_browser_asked_and_when() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let res = browser()
        .post(app.url("/request-magic-link"))
        .header("origin", PUBLIC_URL)
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .json(&app.link_body(&client, "ua@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = app.link_for("ua@example.com").await;
    let page = open_elsewhere(&app, &browser(), &link)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Firefox on Linux"), "{page}");
    let year = civil_year(app.clock_now());
    assert!(page.contains(&year), "the page says when ({year}): {page}");
}

/// The calendar year of a unix time, as text (Howard Hinnant's civil-from-days).
fn civil_year(unix: i64) -> String {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    (yoe + era * 400 + i64::from(mp >= 10)).to_string()
}

#[tokio::test]
async fn another_browser_sees_a_confirmation_page_and_consumes_nothing() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let asking = app
        .request_link_in_browser(&client, "fay@example.com")
        .await;
    let link = app.link_for("fay@example.com").await;
    let scanner = browser();
    for attempt in ["first", "second"] {
        let res = open_elsewhere(&app, &scanner, &link).await;
        assert_eq!(res.status(), 200, "{attempt} look");
        let page = res.text().await.unwrap();
        assert!(
            page.contains("Test App") && text_of(&page).contains("fay@example.com"),
            "{attempt}: {page}"
        );
        assert!(
            input_value(&page, "csrf_token").is_some(),
            "{attempt}: a confirmation form: {page}"
        );
    }
    assert_eq!(app.count("authorization_codes").await, 0);
    let res = asking.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "the asking browser can still use it");
}

/// Opens `link` in `b`, which is not the asking browser: the token moves
/// from the address bar into a cookie (a 303 to the bare `/verify-email`,
/// no token in the `Location`), and the confirmation page is shown from
/// there. Returns the answer to that second GET.
async fn open_elsewhere(app: &TestApp, b: &reqwest::Client, link: &str) -> reqwest::Response {
    let res = b.get(link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "/verify-email", "the token leaves the URL");
    b.get(app.url("/verify-email")).send().await.unwrap()
}

/// Opens `link` in a fresh browser and posts its confirmation form.
async fn confirm_in_other_browser(app: &TestApp, link: &str) -> reqwest::Response {
    let other = browser();
    let page = open_elsewhere(app, &other, link)
        .await
        .text()
        .await
        .unwrap();
    let form = [
        (
            "csrf_token",
            input_value(&page, "csrf_token").expect("csrf_token"),
        ),
        ("token", input_value(&page, "token").expect("token")),
    ];
    other
        .post(app.url("/verify-email"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn another_browser_signs_in_by_confirming_under_device_policy_any() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let asking = app
        .request_link_in_browser(&client, "gil@example.com")
        .await;
    let link = app.link_for("gil@example.com").await;
    let res = confirm_in_other_browser(&app, &link).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with(&client.redirect_uri));
    let params = location_params(&res);
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-123", PUBLIC_URL)
    );
    assert!(params.contains_key("code"));
    let res = app.get_json(&asking, &link).await;
    expect_error(
        res,
        400,
        "invalid_token",
        "the link was consumed by the confirmation",
    )
    .await;
}

#[tokio::test]
async fn under_same_browser_policy_confirming_elsewhere_says_to_use_the_code() {
    let app = spawn_app().await;
    let client = app
        .create_app(|s| s.device_policy = DevicePolicy::SameBrowser)
        .await;
    let asking = app
        .request_link_in_browser(&client, "hal@example.com")
        .await;
    let link = app.link_for("hal@example.com").await;

    // The page says it at once: no Continue, so no form and no token.
    let other = browser();
    let res = open_elsewhere(&app, &other, &link).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("6-digit code"), "{page}");
    assert!(
        !page.contains("pml_"),
        "the page does not carry the token: {page}"
    );
    assert_eq!(input_value(&page, "token"), None, "{page}");

    // A POST of the token anyway (an old page, a scanner) says the same.
    let csrf = app.csrf_of(&other, &client).await;
    let res = other
        .post(app.url("/verify-email"))
        .form(&[("csrf_token", csrf), ("token", token_of(&link))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookie(res.headers(), "postern_session"), None);
    let page = res.text().await.unwrap();
    assert!(page.contains("6-digit code"), "{page}");
    assert!(!page.contains("pml_"), "{page}");
    assert_eq!(app.count("authorization_codes").await, 0);
    assert_eq!(app.count("sessions").await, 0);

    let res = asking.get(&link).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "nothing was consumed: the asking browser can still use the link"
    );
}

#[tokio::test]
async fn confirming_without_a_valid_csrf_token_is_forbidden() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.request_link_in_browser(&client, "ian@example.com")
        .await;
    let link = app.link_for("ian@example.com").await;
    let other = browser();
    let page = open_elsewhere(&app, &other, &link)
        .await
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "token").unwrap();
    let foreign = browser();
    let foreign_page = open_elsewhere(&app, &foreign, &link)
        .await
        .text()
        .await
        .unwrap();
    let foreign_csrf = input_value(&foreign_page, "csrf_token").unwrap();
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("no csrf_token", vec![("token", &token)]),
        (
            "a made-up csrf_token",
            vec![("csrf_token", "x"), ("token", &token)],
        ),
        (
            "another browser's csrf_token",
            vec![("csrf_token", &foreign_csrf), ("token", &token)],
        ),
    ];
    for (case, form) in cases {
        let res = other
            .post(app.url("/verify-email"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(res, case).await.0, 403, "{case}");
    }
    assert_eq!(app.count("authorization_codes").await, 0);
    let csrf = input_value(&page, "csrf_token").unwrap();
    let res = other
        .post(app.url("/verify-email"))
        .form(&[("csrf_token", csrf.as_str()), ("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "with its own csrf_token the same form works"
    );
}

#[tokio::test]
async fn with_ip_range_binding_a_link_only_works_near_where_it_was_asked() {
    let app = spawn_app_with(&[("POSTERN_TRUSTED_PROXIES", "127.0.0.1/32, ::1/128")]).await;
    let client = app.create_app(|s| s.bind_ip_range = true).await;
    let b = browser();
    let res = b
        .post(app.url("/request-magic-link"))
        .header("origin", PUBLIC_URL)
        .header("x-forwarded-for", "198.51.100.7")
        .json(&app.link_body(&client, "near@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = app.link_for("near@example.com").await;
    let far = b
        .get(&link)
        .header("accept", "application/json")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    expect_error(far, 400, "invalid_token", "from another network").await;
    let near = b
        .get(&link)
        .header("x-forwarded-for", "198.51.100.200")
        .send()
        .await
        .unwrap();
    assert_eq!(near.status(), 303, "from the same /24");
}

// ---- The binding cookie ------------------------------------------------------

#[tokio::test]
async fn a_cross_site_link_request_is_served_but_binds_nothing() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (
            "Origin of another site",
            &[("origin", "https://evil.example")],
        ),
        (
            "Sec-Fetch-Site: cross-site",
            &[("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site: cross-site beats our Origin",
            &[("sec-fetch-site", "cross-site"), ("origin", PUBLIC_URL)],
        ),
        ("neither Origin nor Sec-Fetch-Site", &[]),
    ];
    for (i, (case, headers)) in cases.into_iter().enumerate() {
        let mut req = browser()
            .post(app.url("/request-magic-link"))
            .json(&app.link_body(&client, &format!("cross{i}@example.com")));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{case}");
        assert_eq!(set_cookie(res.headers(), "postern_binding"), None, "{case}");
    }
}

#[tokio::test]
async fn a_same_origin_link_request_binds_the_browser_with_a_safe_cookie() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let cases = [
        ("Origin of our public URL", ("origin", PUBLIC_URL)),
        (
            "Sec-Fetch-Site: same-origin",
            ("sec-fetch-site", "same-origin"),
        ),
    ];
    for (i, (case, (k, v))) in cases.into_iter().enumerate() {
        let email = format!("same{i}@example.com");
        let b = browser();
        let res = b
            .post(app.url("/request-magic-link"))
            .header(k, v)
            .json(&app.link_body(&client, &email))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{case}");
        let cookie = set_cookie(res.headers(), "postern_binding")
            .unwrap_or_else(|| panic!("{case}: no binding cookie"));
        assert!(cookie.contains("HttpOnly"), "{case}: {cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{case}: {cookie}");
        // The cookie is what makes this browser the asking one.
        let res = b.get(&app.link_for(&email).await).send().await.unwrap();
        assert_eq!(res.status(), 303, "{case}");
    }
}

#[tokio::test]
async fn a_link_requested_cross_site_only_gets_the_confirmation_page() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    let res = b
        .post(app.url("/request-magic-link"))
        .header("origin", "https://evil.example")
        .json(&app.link_body(&client, "victim@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = open_elsewhere(&app, &b, &app.link_for("victim@example.com").await).await;
    assert_eq!(
        res.status(),
        200,
        "a confirmation page, not a redirect to the app"
    );
    assert!(res.headers().get("location").is_none());
    assert_eq!(app.count("authorization_codes").await, 0);
}

// ---- Siblings and replacements -----------------------------------------------

#[tokio::test]
async fn a_sign_in_burns_the_other_links_of_the_same_address_and_app() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let first = app.request_link_in_browser(&client, "jo@example.com").await;
    let first_link = app.link_for("jo@example.com").await;
    let inbox = app.inbox();
    let second = app.request_link_in_browser(&client, "jo@example.com").await;
    let second_link = app.local(
        &app.new_email_to(&inbox, "jo@example.com")
            .await
            .link
            .unwrap(),
    );
    let res = first.get(&first_link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = app.get_json(&second, &second_link).await;
    expect_error(res, 400, "invalid_token", "the sibling link").await;
}

#[tokio::test]
async fn a_sign_in_leaves_links_for_other_apps_alive() {
    let app = spawn_app().await;
    let one = app.create_app(|_| {}).await;
    let two = app.create_app(|_| {}).await;
    let b1 = app.request_link_in_browser(&one, "kim@example.com").await;
    let link1 = app.link_for("kim@example.com").await;
    let inbox = app.inbox();
    let b2 = app.request_link_in_browser(&two, "kim@example.com").await;
    let link2 = app.local(
        &app.new_email_to(&inbox, "kim@example.com")
            .await
            .link
            .unwrap(),
    );
    assert_eq!(b1.get(&link1).send().await.unwrap().status(), 303);
    assert_eq!(b2.get(&link2).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn a_second_request_from_the_same_browser_replaces_the_first() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "lou@example.com")
        .await;
    let first_link = app.link_for("lou@example.com").await;
    let inbox = app.inbox();
    let res = app
        .request_link_same_origin(&b, &client, "lou@example.com")
        .await;
    assert_eq!(res.status(), 200);
    let second_link = app.local(
        &app.new_email_to(&inbox, "lou@example.com")
            .await
            .link
            .unwrap(),
    );
    let res = app.get_json(&b, &first_link).await;
    expect_error(res, 400, "invalid_token", "the replaced link").await;
    assert_eq!(b.get(&second_link).send().await.unwrap().status(), 303);
}

// ---- Sign-up and allowed domains ---------------------------------------------

#[tokio::test]
async fn an_address_the_app_does_not_let_in_gets_an_email_without_a_link() {
    let app = spawn_app().await;
    type Change = fn(&mut AppSettings);
    let cases: [(&str, Change); 2] = [
        ("sign-up disabled", |s| s.signup_allowed = false),
        ("outside the allowed domains", |s| {
            s.allowed_domains = vec!["corp.example".to_owned()]
        }),
    ];
    for (i, (case, change)) in cases.into_iter().enumerate() {
        let client = app.create_app(change).await;
        let email = format!("stranger{i}@example.com");
        let res = app
            .request_link(&browser(), &app.link_body(&client, &email))
            .await;
        assert_eq!(res.status(), 200, "{case}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body,
            json!({"message": "Magic link sent successfully", "email": email}),
            "{case}"
        );
        let sent = app.last_email_to(&email).await;
        assert_eq!(
            (sent.link.as_deref(), sent.code.as_deref()),
            (None, None),
            "{case}: {}",
            sent.text
        );
        assert!(!sent.raw.contains("pml_"), "{case}: {}", sent.raw);
        assert!(
            sent.text.contains("no account"),
            "{case}: the email says why: {}",
            sent.text
        );
    }
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn an_existing_user_still_gets_a_link_after_sign_up_is_closed() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.sign_in(&client, "old@example.com").await;
    app.update_app(&client, |s| s.signup_allowed = false).await;
    let b = browser();
    let inbox = app.inbox();
    let res = app
        .request_link_same_origin(&b, &client, "old@example.com")
        .await;
    assert_eq!(res.status(), 200);
    let sent = app.new_email_to(&inbox, "old@example.com").await;
    let link = app.local(
        sent.link
            .as_deref()
            .unwrap_or_else(|| panic!("no link: {}", sent.text)),
    );
    assert_eq!(b.get(&link).send().await.unwrap().status(), 303);
}

// ---- What a sign-in leaves behind --------------------------------------------

#[tokio::test]
async fn the_first_sign_in_creates_the_user_and_later_ones_reuse_it() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.request_link(&browser(), &app.link_body(&client, "Max@Example.com"))
        .await;
    app.last_email_to("max@example.com").await;
    assert_eq!(
        app.count("users").await,
        0,
        "asking for a link creates no user"
    );
    app.sign_in(&client, "max@example.com").await;
    assert_eq!(
        app.rows("SELECT email FROM users").await,
        [["max@example.com"]]
    );
    app.sign_in(&client, "max@example.com").await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn a_link_sign_in_is_recorded_as_a_successful_link_event() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.sign_in(&client, "ned@example.com").await;
    let rows = app
        .rows("SELECT e.method, e.outcome, e.client_id, u.email FROM sign_in_events e JOIN users u ON u.id = e.user_id")
        .await;
    assert_eq!(
        rows,
        [[
            "link",
            "success",
            client.client_id.as_str(),
            "ned@example.com"
        ]]
    );
}

#[tokio::test]
async fn the_authorization_code_lives_sixty_seconds() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.sign_in(&client, "olga@example.com").await;
    let rows = app
        .rows("SELECT expires_at - created_at FROM authorization_codes")
        .await;
    assert_eq!(rows, [["60"]]);
}

// ---- Secrets at rest and in logs ---------------------------------------------

/// Whether `haystack` holds `digits` as a whole number (not inside a longer one).
fn holds_number(haystack: &str, digits: &str) -> bool {
    haystack.match_indices(digits).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn the_link_and_code_are_stored_and_logged_only_as_hashes() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = app
        .request_link_in_browser(&client, "pat@example.com")
        .await;
    let email = app.last_email_to("pat@example.com").await;
    let link = email.link.clone().unwrap();
    let token = token_of(&link);
    let secret_part = token.trim_start_matches("pml_").to_owned();
    let code = email.code.clone().unwrap();
    assert!(
        email.text.contains(&token) && email.text.contains(&code),
        "the dev transport writes them"
    );
    let check = |what: &str, text: &str| {
        assert!(!text.contains(&secret_part), "{what} holds the link token");
        assert!(!holds_number(text, &code), "{what} holds the code {code}");
    };
    check("the database before sign-in", &app.dump_database().await);
    assert_eq!(b.get(app.local(&link)).send().await.unwrap().status(), 303);
    check("the database after sign-in", &app.dump_database().await);
    // Log lines start with a timestamp whose fraction could look like a code.
    let logs: String = captured_logs()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n");
    check("the logs", &logs);
}
