//! Black-box tests of the SPEC §3.1 rate limits on link requests: per
//! address and per IP, each tripping at its configured count with an honest
//! 429, and what frees or resets a slot. The per-app limit belongs to the
//! headless API only (SPEC §3.4; tests in headless.rs and hardening_signin.rs).

mod support;

use support::*;

const TOO_MANY: &str = "Too many magic link requests. Please try again later.";

/// Asserts the SPEC §3.1 429 and returns its `Retry-After` seconds.
async fn expect_throttled(res: reqwest::Response, case: &str) -> i64 {
    let retry_after = res
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{case}: no Retry-After"))
        .to_str()
        .unwrap()
        .to_owned();
    let body = expect_error(res, 429, "too_many_requests", case).await;
    assert_eq!(body["error_description"], TOO_MANY, "{case}");
    let secs: i64 = retry_after.parse().unwrap_or_else(|_| {
        panic!("{case}: Retry-After {retry_after:?} is not a number of seconds")
    });
    assert!((1..=3600).contains(&secs), "{case}: Retry-After {secs}");
    secs
}

#[tokio::test]
async fn the_address_limit_refuses_the_request_after_the_configured_count() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "3")]).await;
    let client = app.create_app(|_| {}).await;
    for n in 1..=3 {
        let res = app
            .request_link(&browser(), &app.link_body(&client, "lim@example.com"))
            .await;
        assert_eq!(res.status(), 200, "request {n}");
    }
    let res = app
        .request_link(&browser(), &app.link_body(&client, "LIM@example.com"))
        .await;
    expect_throttled(res, "the 4th request for the address").await;
    assert_eq!(app.count("login_requests").await, 3);
    // Another address is not affected, and its email is the 4th and last.
    let res = app
        .request_link(&browser(), &app.link_body(&client, "other@example.com"))
        .await;
    assert_eq!(res.status(), 200);
    let to: Vec<String> = app
        .wait_for_emails(4)
        .await
        .into_iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(
        to.iter().filter(|t| *t == "lim@example.com").count(),
        3,
        "{to:?}"
    );
    assert_eq!(app.count("outbox").await, 4);
}

#[tokio::test]
async fn the_ip_limit_counts_requests_across_addresses() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_IP_PER_HOUR", "3")]).await;
    let client = app.create_app(|_| {}).await;
    for n in 1..=3 {
        let res = app
            .request_link(
                &browser(),
                &app.link_body(&client, &format!("ip{n}@example.com")),
            )
            .await;
        assert_eq!(res.status(), 200, "request {n}");
    }
    let res = app
        .request_link(&browser(), &app.link_body(&client, "ip4@example.com"))
        .await;
    expect_throttled(res, "the 4th request from the IP").await;
    assert_eq!(app.count("login_requests").await, 3);
}

#[tokio::test]
async fn a_completed_sign_in_frees_its_slot_in_the_address_count() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "2")]).await;
    let client = app.create_app(|_| {}).await;
    app.request_link_in_browser(&client, "free@example.com")
        .await;
    app.last_email_to("free@example.com").await;
    let inbox = app.inbox();
    let b = app
        .request_link_in_browser(&client, "free@example.com")
        .await;
    let link = app.local(
        &app.new_email_to(&inbox, "free@example.com")
            .await
            .link
            .unwrap(),
    );
    assert_eq!(b.get(&link).send().await.unwrap().status(), 303);
    let res = app
        .request_link(&browser(), &app.link_body(&client, "free@example.com"))
        .await;
    assert_eq!(res.status(), 200, "the sign-in gave its slot back");
    let res = app
        .request_link(&browser(), &app.link_body(&client, "free@example.com"))
        .await;
    expect_throttled(res, "only one slot was freed").await;
}

#[tokio::test]
async fn the_limit_resets_when_retry_after_has_passed() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "3")]).await;
    let client = app.create_app(|_| {}).await;
    let body = app.link_body(&client, "wait@example.com");
    for _ in 1..=3 {
        assert_eq!(app.request_link(&browser(), &body).await.status(), 200);
    }
    let retry_after =
        expect_throttled(app.request_link(&browser(), &body).await, "the 4th request").await;
    app.clock.advance(retry_after - 1);
    expect_throttled(
        app.request_link(&browser(), &body).await,
        "a second before Retry-After",
    )
    .await;
    app.clock.advance(1);
    assert_eq!(
        app.request_link(&browser(), &body).await.status(),
        200,
        "after Retry-After"
    );
}

#[tokio::test]
async fn the_hosted_form_tells_a_throttled_person_when_to_try_again() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "1")]).await;
    let client = app.create_app(|_| {}).await;
    app.hosted_request(&client, "page@example.com").await;
    let res = app
        .submit_login(&browser(), &client, "page@example.com")
        .await;
    assert_eq!(res.status(), 429);
    let retry_after: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = html_unescape(&res.text().await.unwrap());
    // Retry-After in words, rounded up to whole minutes.
    let minutes = (retry_after + 59) / 60;
    let when = match minutes {
        1 => "1 minute".to_owned(),
        60 => "1 hour".to_owned(),
        m => format!("{m} minutes"),
    };
    assert!(
        page.contains(&format!("You can try again in {when}.")),
        "{page}"
    );
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_ip_limit() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_IP_PER_HOUR", "2")]).await;
    let client = app.create_app(|_| {}).await;
    let mut statuses = Vec::new();
    for (n, forwarded) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .into_iter()
        .enumerate()
    {
        let res = browser()
            .post(app.url("/request-magic-link"))
            .header("x-forwarded-for", forwarded)
            .json(&app.link_body(&client, &format!("xff{n}@example.com")))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_address_limit_holds_under_concurrent_requests() {
    let app = spawn_app_with(&[("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "3")]).await;
    let client = app.create_app(|_| {}).await;
    let body = app.link_body(&client, "burst@example.com");
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let (url, body) = (app.url("/request-magic-link"), body.clone());
            tokio::spawn(async move {
                browser()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429, 429, 429, 429, 429, 429, 429]
    );
    assert_eq!(app.count("login_requests").await, 3);
}

#[tokio::test]
async fn a_refused_request_spends_no_other_limit() {
    let app = spawn_app_with(&[
        ("POSTERN_RATE_LIMIT_EMAIL_PER_HOUR", "1"),
        ("POSTERN_RATE_LIMIT_IP_PER_HOUR", "3"),
    ])
    .await;
    let client = app.create_app(|_| {}).await;
    let mut statuses = Vec::new();
    for email in [
        "a@example.com",
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ] {
        let res = app
            .request_link(&browser(), &app.link_body(&client, email))
            .await;
        statuses.push((email, res.status().as_u16()));
    }
    // The refused second request for a@ did not use one of the IP's 3 slots.
    assert_eq!(
        statuses,
        [
            ("a@example.com", 200),
            ("a@example.com", 429),
            ("b@example.com", 200),
            ("c@example.com", 200),
            ("d@example.com", 429),
        ]
    );
}
