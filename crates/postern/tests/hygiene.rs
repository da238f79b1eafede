//! Black-box tests of response hygiene (SPEC §3.1, §3.3) and the
//! operations endpoints (SPEC §3.6, §5): caching, indexing, security
//! headers and cookie attributes on every sign-in response; health and
//! readiness.

mod support;

use reqwest::header::HeaderMap;
use reqwest::RequestBuilder;
use support::*;

/// One response seen while walking through the sign-in pages.
struct Seen {
    what: &'static str,
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn see(what: &'static str, req: RequestBuilder) -> Seen {
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    Seen {
        what,
        status,
        headers,
        body: res.text().await.unwrap(),
    }
}

/// Walks through every sign-in page and endpoint once, keeping each answer.
async fn every_sign_in_response(app: &TestApp) -> Vec<Seen> {
    let first_party = app.create_app(|_| {}).await;
    let third_party = app.create_app(|s| s.first_party = false).await;
    let b = browser();
    let mut seen = Vec::new();

    let login = see(
        "GET /login",
        b.get(app.url(&format!("/login?{}", app.login_query(&first_party, &[])))),
    )
    .await;
    let mut form = hidden_inputs(&login.body);
    form.push(("email".to_owned(), "walk@example.com".to_owned()));
    seen.push(login);
    let submitted = see("POST /login", b.post(app.url("/login")).form(&form)).await;
    let check_url = submitted.headers["location"].to_str().unwrap().to_owned();
    seen.push(submitted);
    let check = see("GET /login/check", b.get(app.url(&check_url))).await;
    let code_form = [
        (
            "csrf_token",
            input_value(&check.body, "csrf_token").unwrap(),
        ),
        ("login_id", input_value(&check.body, "login_id").unwrap()),
        ("code", "abc".to_owned()),
    ];
    seen.push(check);
    seen.push(
        see(
            "POST /login/code (wrong)",
            b.post(app.url("/login/code")).form(&code_form),
        )
        .await,
    );
    let link = app.link_for("walk@example.com").await;
    let other = browser();
    seen.push(see("GET /verify-email (another browser)", other.get(&link)).await);
    seen.push(
        see(
            "GET /verify-email (confirmation page)",
            other.get(app.url("/verify-email")),
        )
        .await,
    );
    seen.push(see("GET /verify-email (asking browser)", b.get(&link)).await);
    seen.push(see("GET /verify-email (used link)", b.get(&link)).await);
    seen.push(
        see(
            "GET /verify-email (malformed)",
            b.get(app.url("/verify-email?token=x")),
        )
        .await,
    );

    let json = browser();
    seen.push(
        see(
            "POST /request-magic-link",
            json.post(app.url("/request-magic-link"))
                .header("origin", PUBLIC_URL)
                .json(&app.link_body(&third_party, "json@example.com")),
        )
        .await,
    );
    seen.push(
        see(
            "POST /request-magic-link (bad)",
            json.post(app.url("/request-magic-link"))
                .json(&serde_json::json!({})),
        )
        .await,
    );
    let link = app.link_for("json@example.com").await;
    seen.push(see("GET /verify-email (consent page)", json.get(&link)).await);
    seen.push(see("GET /no-such-page", json.get(app.url("/no-such-page"))).await);
    seen
}

#[tokio::test]
async fn the_walk_sees_the_pages_it_means_to() {
    let app = spawn_app().await;
    let statuses: Vec<(&str, u16)> = every_sign_in_response(&app)
        .await
        .iter()
        .map(|s| (s.what, s.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("GET /login", 200),
            ("POST /login", 303),
            ("GET /login/check", 200),
            ("POST /login/code (wrong)", 400),
            ("GET /verify-email (another browser)", 303),
            ("GET /verify-email (confirmation page)", 200),
            ("GET /verify-email (asking browser)", 303),
            ("GET /verify-email (used link)", 400),
            ("GET /verify-email (malformed)", 400),
            ("POST /request-magic-link", 200),
            ("POST /request-magic-link (bad)", 400),
            ("GET /verify-email (consent page)", 200),
            ("GET /no-such-page", 404),
        ]
    );
}

#[tokio::test]
async fn sign_in_responses_are_never_cached_or_indexed() {
    let app = spawn_app().await;
    for s in every_sign_in_response(&app).await {
        let header = |name: &str| s.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("cache-control").as_deref(),
            Some("no-store"),
            "{}",
            s.what
        );
        assert_eq!(
            header("x-robots-tag").as_deref(),
            Some("noindex"),
            "{}",
            s.what
        );
    }
}

#[tokio::test]
async fn every_sign_in_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for s in every_sign_in_response(&app).await {
        let header = |name: &str| s.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{}",
            s.what
        );
        assert_eq!(
            header("x-frame-options").as_deref(),
            Some("DENY"),
            "{}",
            s.what
        );
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{}",
            s.what
        );
        let csp = header("content-security-policy").unwrap_or_else(|| panic!("{}: no CSP", s.what));
        assert!(
            !csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"),
            "{}: {csp}",
            s.what
        );
        assert!(
            csp.contains("default-src 'none'") || csp.contains("default-src 'self'"),
            "{}: {csp}",
            s.what
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{}: {csp}", s.what);
    }
}

#[tokio::test]
async fn pages_load_nothing_from_other_sites_and_run_no_inline_script() {
    let app = spawn_app().await;
    let mut pages = 0;
    for s in every_sign_in_response(&app).await {
        let ct = s
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        if !ct.is_some_and(|ct| ct.starts_with("text/html")) {
            continue;
        }
        pages += 1;
        // Scripts only by reference to our origin, never inline.
        for (i, _) in s.body.match_indices("<script") {
            let tag = &s.body[i..];
            let end = tag.find('>').unwrap_or(tag.len());
            assert!(
                tag[..end].contains(" src=\"/static/") && tag[end..].starts_with("></script>"),
                "{}: an inline script: {}",
                s.what,
                &tag[..80.min(tag.len())]
            );
        }
        assert!(!s.body.contains(" style=\""), "{}: inline style", s.what);
        assert!(!s.body.contains("<style"), "{}: a style block", s.what);
        for attr in [" src=\"", " href=\"", " action=\""] {
            for (i, _) in s.body.match_indices(attr) {
                let url = &s.body[i + attr.len()..];
                let ours = url.starts_with('/') || url.starts_with(PUBLIC_URL);
                assert!(
                    ours,
                    "{}: refers elsewhere: {}",
                    s.what,
                    &url[..40.min(url.len())]
                );
            }
        }
    }
    assert!(pages >= 7, "only {pages} HTML pages seen");
}

#[tokio::test]
async fn every_cookie_is_http_only_and_same_site_lax() {
    let app = spawn_app().await;
    let mut names = Vec::new();
    for s in every_sign_in_response(&app).await {
        for cookie in s.headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            let name = cookie.split('=').next().unwrap().to_owned();
            assert!(cookie.contains("HttpOnly"), "{}: {cookie}", s.what);
            assert!(cookie.contains("SameSite=Lax"), "{}: {cookie}", s.what);
            assert!(cookie.contains("Path=/"), "{}: {cookie}", s.what);
            assert!(
                !cookie.contains("Secure"),
                "{}: Secure needs an https public URL: {cookie}",
                s.what
            );
            names.push(name);
        }
    }
    for expected in ["postern_binding", "postern_csrf", "postern_session"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} was never set: {names:?}"
        );
    }
}

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let res = browser().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn readyz_answers_when_the_database_is_reachable() {
    let app = spawn_app().await;
    let res = browser().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn without_the_database_readyz_and_link_requests_answer_503() {
    let app = spawn_app().await;
    let client = app.create_app(|_| {}).await;
    app.state.store.close().await;
    let b = browser();
    let cases = [
        ("GET /readyz", b.get(app.url("/readyz"))),
        (
            "POST /request-magic-link",
            b.post(app.url("/request-magic-link"))
                .json(&app.link_body(&client, "x@example.com")),
        ),
    ];
    for (case, req) in cases {
        let res = req.send().await.unwrap();
        let body = expect_error(res, 503, "temporarily_unavailable", case).await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("Reference"), "{case}: {description}");
        assert!(
            !description.to_lowercase().contains("pool"),
            "{case}: no internals: {description}"
        );
    }
    let res = browser().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the process is still up");
}

#[tokio::test]
async fn on_https_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(&[("POSTERN_PUBLIC_URL", "https://login.example")]).await;
    let client = app.create_app(|_| {}).await;
    let res = browser()
        .get(app.url(&format!("/login?{}", app.login_query(&client, &[]))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie =
        set_cookie(res.headers(), "__Host-postern_csrf").expect("a __Host- prefixed CSRF cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr}: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
}
