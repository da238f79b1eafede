//! Black-box tests of the hosted sign-in pages (SPEC §3.3) and the
//! one-time code (SPEC §2, §3.1 `POST /login/code`): the `/login` form,
//! "check your email", code entry and its budgets, "send again", and the
//! consent screen.

mod support;

use std::collections::BTreeMap;

use support::*;

// ---- GET /login --------------------------------------------------------------

#[tokio::test]
async fn the_login_page_shows_a_form_for_the_app_with_a_csrf_token() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let page = app.login_page(&browser(), &client, &[]).await;
    assert!(page.contains("Test App"), "{page}");
    assert!(
        input_value(&page, "csrf_token").is_some_and(|t| t.len() >= 20),
        "{page}"
    );
    let hidden: BTreeMap<String, String> = hidden_inputs(&page).into_iter().collect();
    assert_eq!(hidden["client_id"], client.client_id);
    assert_eq!(hidden["redirect_uri"], client.redirect_uri);
    assert_eq!(hidden["state"], "st-123");
    assert_eq!(
        input_value(&page, "email").as_deref(),
        Some(""),
        "empty without login_hint"
    );
}

#[tokio::test]
async fn login_hint_prefills_the_email_field() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let page = app
        .login_page(&browser(), &client, &[("login_hint", "hint@example.com")])
        .await;
    assert_eq!(
        input_value(&page, "email").as_deref(),
        Some("hint@example.com"),
        "{page}"
    );
}

#[tokio::test]
async fn the_login_page_refuses_bad_parameters_with_a_page_never_a_redirect() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let cases = [
        (
            "an unknown client",
            format!("client_id=nope&redirect_uri={}", client.redirect_uri),
        ),
        (
            "an unregistered redirect_uri",
            format!(
                "client_id={}&redirect_uri=https://evil.example/callback",
                client.client_id
            ),
        ),
        (
            "no client_id",
            format!("redirect_uri={}", client.redirect_uri),
        ),
        ("no redirect_uri", format!("client_id={}", client.client_id)),
    ];
    for (case, query) in cases {
        let res = browser()
            .get(app.url(&format!("/login?{query}")))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{case}");
        assert!(
            res.headers().get("location").is_none(),
            "{case}: never a redirect"
        );
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{case}: {ct}");
    }
}

// ---- POST /login, the check page and POST /login/code --------------------------

#[tokio::test]
async fn the_hosted_form_signs_in_with_the_code_from_the_email() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    let res = app.submit_login(&b, &client, "Ron@Example.com").await;
    assert_eq!(res.status(), 303);
    let check_url = location(&res);
    assert!(check_url.starts_with("/login/check?id="), "{check_url}");
    let res = b.get(app.url(&check_url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        text_of(&page).contains("ron@example.com"),
        "the page shows the address: {page}"
    );
    let form = [
        (
            "csrf_token",
            input_value(&page, "csrf_token").expect("csrf_token"),
        ),
        (
            "login_id",
            input_value(&page, "login_id").expect("login_id"),
        ),
        ("code", app.code_for("ron@example.com").await),
    ];
    let res = b
        .post(app.url("/login/code"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with(&client.redirect_uri));
    let params = location_params(&res);
    assert!(params["code"].len() >= 43);
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-123", PUBLIC_URL)
    );
}

#[tokio::test]
async fn the_check_page_is_only_for_the_asking_browser() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let h = app.hosted_request(&client, "sue@example.com").await;
    let url = app.url(&format!("/login/check?id={}", h.login_id));
    assert_eq!(h.browser.get(&url).send().await.unwrap().status(), 200);
    let res = app.get_json(&browser(), &url).await;
    expect_error(res, 400, "invalid_token", "another browser").await;
}

#[tokio::test]
async fn the_login_form_without_a_valid_csrf_token_is_forbidden_and_sends_nothing() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    let page = app.login_page(&b, &client, &[]).await;
    let params: Vec<(String, String)> = hidden_inputs(&page)
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .chain([("email".to_owned(), "tom@example.com".to_owned())])
        .collect();
    let cases = [("no csrf_token", None), ("a made-up csrf_token", Some("x"))];
    for (case, csrf) in cases {
        let mut form = params.clone();
        if let Some(t) = csrf {
            form.push(("csrf_token".to_owned(), t.to_owned()));
        }
        let res = b
            .post(app.url("/login"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(res, case).await.0, 403, "{case}");
        assert_eq!(app.count("login_requests").await, 0, "{case}");
        assert_eq!(app.count("outbox").await, 0, "{case}: an email was queued");
    }
    assert_eq!(
        app.submit_login(&b, &client, "tom@example.com")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_wrong_code_gets_invalid_code_and_the_right_one_still_works() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "una@example.com")
        .await;
    let code = sent.code.unwrap();
    let body = expect_error(
        app.submit_code(&h, &wrong_code(&code)).await,
        400,
        "invalid_code",
        "wrong code",
    )
    .await;
    assert_eq!(body["error_description"], "The code is not correct.");
    let res = app.submit_code(&h, &code).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn the_fifth_wrong_code_kills_the_request_and_its_link() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "vic@example.com")
        .await;
    let code = sent.code.unwrap();
    for n in 1..=4 {
        let res = app.submit_code(&h, &wrong_code(&code)).await;
        expect_error(res, 400, "invalid_code", &format!("wrong code {n}")).await;
    }
    let res = app.submit_code(&h, &wrong_code(&code)).await;
    expect_error(res, 400, "invalid_token", "wrong code 5").await;
    expect_error(
        app.submit_code(&h, &code).await,
        400,
        "invalid_token",
        "the right code afterwards",
    )
    .await;
    let link = app.local(&sent.link.unwrap());
    expect_error(
        app.get_json(&h.browser, &link).await,
        400,
        "invalid_token",
        "the link afterwards",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_still_get_only_five_tries() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "rush@example.com")
        .await;
    let code = sent.code.unwrap();
    let base: u32 = code.parse().unwrap();
    let url = app.url("/login/code");
    let guesses: Vec<_> = (1..=20u32)
        .map(|i| {
            let guess = format!("{:06}", (base + i) % 1_000_000);
            let (h, url) = (h.clone(), url.clone());
            tokio::spawn(async move {
                let form = [
                    ("csrf_token", h.csrf.as_str()),
                    ("login_id", h.login_id.as_str()),
                    ("code", &guess),
                ];
                let res = h
                    .browser
                    .post(url)
                    .header("accept", "application/json")
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                let body: serde_json::Value = res.json().await.unwrap();
                body["error"].as_str().unwrap_or("none").to_owned()
            })
        })
        .collect();
    let mut errors = Vec::new();
    for g in guesses {
        errors.push(g.await.unwrap());
    }
    let wrong = errors.iter().filter(|e| *e == "invalid_code").count();
    let dead = errors.iter().filter(|e| *e == "invalid_token").count();
    assert_eq!((wrong, dead), (4, 16), "{errors:?}");
    expect_error(
        app.submit_code(&h, &code).await,
        400,
        "invalid_token",
        "the right code afterwards",
    )
    .await;
}

#[tokio::test]
async fn the_code_expires_with_the_link() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "old@example.com")
        .await;
    app.clock.advance(15 * 60 + 1);
    let res = app.submit_code(&h, &sent.code.unwrap()).await;
    expect_error(res, 400, "invalid_token", "a code past the link's lifetime").await;
}

#[tokio::test]
async fn redeeming_the_code_burns_the_link() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "wes@example.com")
        .await;
    assert_eq!(
        app.submit_code(&h, sent.code.as_deref().unwrap())
            .await
            .status(),
        303
    );
    let link = app.local(&sent.link.unwrap());
    expect_error(
        app.get_json(&h.browser, &link).await,
        400,
        "invalid_token",
        "the link",
    )
    .await;
    let res = app.submit_code(&h, sent.code.as_deref().unwrap()).await;
    expect_error(res, 400, "invalid_token", "the code again").await;
}

#[tokio::test]
async fn redeeming_the_link_burns_the_code() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "xan@example.com")
        .await;
    let link = app.local(sent.link.as_deref().unwrap());
    assert_eq!(h.browser.get(&link).send().await.unwrap().status(), 303);
    let res = app.submit_code(&h, sent.code.as_deref().unwrap()).await;
    expect_error(res, 400, "invalid_token", "the code").await;
}

#[tokio::test]
async fn another_browser_cannot_try_codes_for_a_request() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "yul@example.com")
        .await;
    let code = sent.code.unwrap();
    let other = browser();
    let intruder = Hosted {
        csrf: app.csrf_of(&other, &client).await,
        browser: other,
        login_id: h.login_id.clone(),
    };
    expect_error(
        app.submit_code(&intruder, &code).await,
        400,
        "invalid_token",
        "another browser",
    )
    .await;
    assert_eq!(
        app.submit_code(&h, &code).await.status(),
        303,
        "the asking browser still can"
    );
}

#[tokio::test]
async fn a_code_sign_in_is_recorded_as_a_successful_code_event() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &client, "zed@example.com")
        .await;
    assert_eq!(app.submit_code(&h, &sent.code.unwrap()).await.status(), 303);
    let rows = app
        .rows("SELECT e.method, e.outcome, u.email FROM sign_in_events e JOIN users u ON u.id = e.user_id")
        .await;
    assert_eq!(rows, [["code", "success", "zed@example.com"]]);
}

// ---- Code budgets across requests ---------------------------------------------

/// Asks for a link in `b` and spends all five tries of the request on wrong codes.
async fn burn_five_wrong_codes(
    app: &TestApp,
    b: &reqwest::Client,
    client: &TestClient,
    email: &str,
) {
    let (h, sent) = app.hosted_request_with_email(b, client, email).await;
    let wrong = wrong_code(sent.code.as_deref().unwrap());
    for n in 1..=5 {
        let res = app.submit_code(&h, &wrong).await;
        let expected = if n < 5 {
            "invalid_code"
        } else {
            "invalid_token"
        };
        expect_error(res, 400, expected, &format!("{email}: wrong code {n}")).await;
    }
}

/// A new request for `email` in a new browser: its right code is refused
/// (a budget is spent) while its link still signs in.
async fn assert_codes_stopped_but_links_work(app: &TestApp, client: &TestClient, email: &str) {
    let (h, sent) = app
        .hosted_request_with_email(&browser(), client, email)
        .await;
    let res = app.submit_code(&h, sent.code.as_deref().unwrap()).await;
    expect_error(
        res,
        400,
        "invalid_token",
        "the right code with the budget spent",
    )
    .await;
    let res = h
        .browser
        .get(app.local(&sent.link.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the link still works");
}

#[tokio::test]
async fn ten_wrong_codes_per_address_per_hour_stop_codes_but_not_links() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    for _ in 0..2 {
        burn_five_wrong_codes(&app, &b, &client, "guess@example.com").await;
    }
    assert_codes_stopped_but_links_work(&app, &client, "guess@example.com").await;
}

#[tokio::test]
async fn the_address_budget_comes_back_after_an_hour() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    for _ in 0..2 {
        burn_five_wrong_codes(&app, &b, &client, "patient@example.com").await;
    }
    app.clock.advance(3600);
    let (h, sent) = app
        .hosted_request_with_email(&b, &client, "patient@example.com")
        .await;
    assert_eq!(app.submit_code(&h, &sent.code.unwrap()).await.status(), 303);
}

#[tokio::test]
async fn thirty_wrong_codes_per_address_per_day_stop_codes_but_not_links() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    // Start at the beginning of a day so the next four hours share one.
    let now = app.clock_now();
    app.clock.advance(86_400 - now.rem_euclid(86_400));
    let b = browser();
    for _ in 0..3 {
        for _ in 0..2 {
            burn_five_wrong_codes(&app, &b, &client, "daily@example.com").await;
        }
        app.clock.advance(3600);
    }
    assert_codes_stopped_but_links_work(&app, &client, "daily@example.com").await;
}

#[tokio::test]
async fn fifty_wrong_codes_per_ip_per_hour_stop_codes_but_not_links() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let b = browser();
    for n in 0..5 {
        for _ in 0..2 {
            burn_five_wrong_codes(&app, &b, &client, &format!("spray{n}@example.com")).await;
        }
    }
    assert_codes_stopped_but_links_work(&app, &client, "fresh@example.com").await;
}

// ---- Send again --------------------------------------------------------------

#[tokio::test]
async fn send_again_replaces_the_earlier_request() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    let (h, first) = app
        .hosted_request_with_email(&browser(), &client, "amy@example.com")
        .await;
    let inbox = app.inbox();
    let res = h
        .browser
        .post(app.url("/login/resend"))
        .form(&[
            ("csrf_token", h.csrf.as_str()),
            ("login_id", h.login_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The new request's page, which says when the new link went.
    let new_id = location(&res)
        .strip_prefix("/login/check?id=")
        .and_then(|rest| rest.strip_suffix("&resent=1"))
        .expect("back to the check page")
        .to_owned();
    assert_ne!(new_id, h.login_id);
    let second = app.new_email_to(&inbox, "amy@example.com").await;
    let old_link = app.local(&first.link.unwrap());
    expect_error(
        app.get_json(&h.browser, &old_link).await,
        400,
        "invalid_token",
        "the old link",
    )
    .await;
    let res = app.submit_code(&h, &first.code.unwrap()).await;
    expect_error(res, 400, "invalid_token", "the old code").await;
    let renewed = Hosted {
        login_id: new_id,
        ..h
    };
    assert_eq!(
        app.submit_code(&renewed, &second.code.unwrap())
            .await
            .status(),
        303
    );
}

// ---- Consent -----------------------------------------------------------------

/// Signs `email` in to a third-party app through the link and returns the
/// browser and the consent page it was shown.
async fn consent_page(
    app: &TestApp,
    client: &TestClient,
    email: &str,
) -> (reqwest::Client, String) {
    let before = app.inbox();
    let b = app.request_link_in_browser(client, email).await;
    let link = app.local(&app.new_email_to(&before, email).await.link.unwrap());
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200, "a consent page, not a redirect");
    (b, res.text().await.unwrap())
}

/// `POST /consent` with the page's hidden fields and `decision`.
async fn decide(
    app: &TestApp,
    b: &reqwest::Client,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    let mut form = hidden_inputs(page);
    form.push(("decision".to_owned(), decision.to_owned()));
    b.post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_third_party_app_asks_for_consent_after_the_link() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (_, page) = consent_page(&app, &client, "bea@example.com").await;
    assert!(page.contains("Test App"), "{page}");
    assert!(
        page.contains("value=\"allow\"") && page.contains("value=\"deny\""),
        "{page}"
    );
    assert_eq!(app.count("authorization_codes").await, 0);
}

#[tokio::test]
async fn allowing_continues_to_the_app_with_a_code() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "cal@example.com").await;
    let res = decide(&app, &b, &page, "allow").await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with(&client.redirect_uri));
    let params = location_params(&res);
    assert!(params["code"].len() >= 43);
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-123", PUBLIC_URL)
    );
}

#[tokio::test]
async fn a_second_sign_in_skips_the_consent_it_remembers() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "dot@example.com").await;
    assert_eq!(decide(&app, &b, &page, "allow").await.status(), 303);
    app.sign_in(&client, "dot@example.com").await;
}

#[tokio::test]
async fn denying_returns_access_denied_to_the_app() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "eli@example.com").await;
    let res = decide(&app, &b, &page, "deny").await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(&client.redirect_uri));
    let params = location_params(&res);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-123", PUBLIC_URL)
    );
    assert!(!params.contains_key("code"));
    assert_eq!(app.count("grants").await, 0, "nothing remembered");
}

#[tokio::test]
async fn a_consent_answer_without_a_valid_csrf_token_is_forbidden() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "flo@example.com").await;
    let login_id = input_value(&page, "login_id").unwrap();
    let cases = [("no csrf_token", None), ("a made-up csrf_token", Some("x"))];
    for (case, csrf) in cases {
        let mut form = vec![("login_id", login_id.as_str()), ("decision", "allow")];
        if let Some(t) = csrf {
            form.push(("csrf_token", t));
        }
        let res = b
            .post(app.url("/consent"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(res, case).await.0, 403, "{case}");
    }
    assert_eq!(app.count("authorization_codes").await, 0);
    assert_eq!(decide(&app, &b, &page, "allow").await.status(), 303);
}

#[tokio::test]
async fn a_replayed_allow_gets_no_second_code() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "gus@example.com").await;
    assert_eq!(decide(&app, &b, &page, "allow").await.status(), 303);
    let res = decide(&app, &b, &page, "allow").await;
    expect_error(res, 400, "invalid_token", "the replayed Allow").await;
    assert_eq!(app.count("authorization_codes").await, 1);
}

#[tokio::test]
async fn only_the_browser_that_signed_in_can_answer_the_consent() {
    let app = spawn_app().await;
    let client = app.create_app(|s| s.first_party = false).await;
    let (b, page) = consent_page(&app, &client, "hip@example.com").await;
    let other = browser();
    let csrf = app.csrf_of(&other, &client).await;
    let login_id = input_value(&page, "login_id").unwrap();
    let res = other
        .post(app.url("/consent"))
        .header("accept", "application/json")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("login_id", &login_id),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_token", "another browser").await;
    assert_eq!(decide(&app, &b, &page, "allow").await.status(), 303);
}
