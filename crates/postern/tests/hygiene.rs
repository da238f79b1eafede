//! Black-box tests of response hygiene (SPEC §3.1, §3.3, §3.5) and the
//! operations endpoints (SPEC §3.6, §5): caching, indexing, security
//! headers and cookie attributes on every sign-in response and every page
//! of the administration panel, CSRF on every panel form; health and
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

/// Asserts `s` may be neither cached nor indexed.
fn assert_never_cached_or_indexed(s: &Seen) {
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

/// Asserts the headers SPEC §3.3 asks of every response: no referrer, no
/// framing, no sniffing, a strict policy.
fn assert_security_headers(s: &Seen) {
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

/// Whether `s` is an HTML page; if so, asserts it loads nothing from
/// other sites than `origin` (the server's public URL) and runs no inline
/// script or style.
fn is_self_contained_page(s: &Seen, origin: &str) -> bool {
    let ct = s
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    if !ct.is_some_and(|ct| ct.starts_with("text/html")) {
        return false;
    }
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
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        "javascript:",
    ] {
        assert!(!s.body.contains(handler), "{}: {handler}", s.what);
    }
    for attr in [" src=\"", " href=\"", " action=\"", " formaction=\""] {
        for (i, _) in s.body.match_indices(attr) {
            let url = &s.body[i + attr.len()..];
            let ours = url.starts_with('/') || url.starts_with(origin);
            assert!(
                ours,
                "{}: refers elsewhere: {}",
                s.what,
                &url[..40.min(url.len())]
            );
        }
    }
    true
}

#[tokio::test]
async fn sign_in_responses_are_never_cached_or_indexed() {
    let app = spawn_app().await;
    for s in every_sign_in_response(&app).await {
        assert_never_cached_or_indexed(&s);
    }
}

#[tokio::test]
async fn every_sign_in_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for s in every_sign_in_response(&app).await {
        assert_security_headers(&s);
    }
}

#[tokio::test]
async fn pages_load_nothing_from_other_sites_and_run_no_inline_script() {
    let app = spawn_app().await;
    let mut pages = 0;
    for s in every_sign_in_response(&app).await {
        if is_self_contained_page(&s, PUBLIC_URL) {
            pages += 1;
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

// ---- the administration panel (SPEC §3.5: the hardening of §3.3, CSRF on every form) ----

use postern_admin_web::panel::ROUTES as PANEL_ROUTES;
use reqwest::Client;

const ADMIN: &str = "admin@example.com";
const OWNER: &str = "owner@example.com";
const ADA: &str = "ada@example.com";

/// A server whose panel has something on every page: an app with an
/// owner, Ada (signed in, with a passkey), an email the mail server
/// refused; and its administrator's browser, signed in.
struct Panel {
    app: TestApp,
    admin: Client,
    client_id: String,
    user_id: String,
    session_id: String,
    passkey_id: String,
    outbox_id: String,
}

async fn panel() -> Panel {
    let app = spawn_oidc_app_with(&[
        ("POSTERN_ADMIN_EMAILS", ADMIN),
        ("POSTERN_ADMIN_LINKS", "copy"),
    ])
    .await;
    let client = app.create_app(|s| s.owners = vec![OWNER.to_owned()]).await;
    let _ada = app.account_browser(ADA).await;
    let user_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{ADA}'"))
        .await[0][0]
        .clone();
    let session_id = app
        .rows(&format!(
            "SELECT id FROM sessions WHERE user_id = '{user_id}' AND revoked_at IS NULL"
        ))
        .await[0][0]
        .clone();
    let passkey_id = "pk00000000000000000001".to_owned();
    app.stored_passkey(&user_id, &passkey_id, "Phone").await;
    let outbox_id = app
        .failed_email("refused-msg", &client.client_id, "a***@example.com")
        .await;
    let admin = app.account_browser(ADMIN).await;
    Panel {
        app,
        admin,
        client_id: client.client_id,
        user_id,
        session_id,
        passkey_id,
        outbox_id,
    }
}

impl Panel {
    /// `route` of the panel's router with its `{…}` filled with this
    /// panel's ids (a new parameter needs a value here).
    fn path(&self, route: &str) -> String {
        route
            .split('/')
            .map(|segment| match segment {
                "{client_id}" => self.client_id.as_str(),
                "{user_id}" => self.user_id.as_str(),
                "{session_id}" => self.session_id.as_str(),
                "{id}" => self.outbox_id.as_str(),
                s if s.starts_with('{') => panic!("no value for {s} of {route}"),
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn url(&self, route: &str) -> String {
        self.app.url(&self.path(route))
    }

    /// The CSRF token of the forms `b` is shown (on the app's page, which
    /// administrators and its owner see).
    async fn csrf(&self, b: &Client) -> String {
        let res = b
            .get(self.url("/admin/apps/{client_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the app's page");
        input_value(&res.text().await.unwrap(), "csrf_token").expect("a CSRF token")
    }

    /// Every field some panel form takes, each with a value that makes its
    /// action happen (`confirmed=yes` skips the confirmation step).
    fn every_field(&self) -> Vec<(&'static str, String)> {
        vec![
            ("confirmed", "yes".to_owned()),
            ("name", "Renamed".to_owned()),
            ("redirect_uris", "https://renamed.example/cb".to_owned()),
            ("color", "#123456".to_owned()),
            ("to", "someone@example.com".to_owned()),
            ("client_id", self.client_id.clone()),
            ("user_id", self.user_id.clone()),
            ("passkey_id", self.passkey_id.clone()),
        ]
    }

    /// What the panel's forms change, counted.
    async fn state(&self) -> Vec<Vec<String>> {
        let mut state = self
            .app
            .rows(
                "SELECT (SELECT COUNT(*) FROM audit_log), (SELECT COUNT(*) FROM apps), \
                 (SELECT COUNT(*) FROM app_secrets WHERE expires_at IS NULL), \
                 (SELECT COUNT(*) FROM users WHERE disabled_at IS NULL), \
                 (SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL), \
                 (SELECT COUNT(*) FROM passkeys), (SELECT COUNT(*) FROM signing_keys), \
                 (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM outbox WHERE failed_at IS NULL)",
            )
            .await;
        state.extend(
            self.app
                .rows("SELECT client_id, name, settings FROM apps ORDER BY client_id")
                .await,
        );
        state
    }
}

/// Walks through every page of the panel once: each GET page as an
/// administrator (with something on it), the pages some forms answer
/// (secret shown once, link to copy, confirmation steps, a refused form),
/// an owner's view, the "no access" page and a signed-out visit.
async fn every_panel_response(p: &Panel) -> Vec<Seen> {
    let b = &p.admin;
    let csrf = p.csrf(b).await;
    let form = |extra: &[(&'static str, &str)]| {
        let mut form = vec![("csrf_token", csrf.clone())];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        form
    };
    let mut seen = Vec::new();
    for (what, route) in [
        ("GET /admin", "/admin"),
        ("GET /admin/apps", "/admin/apps"),
        ("GET /admin/apps/{client_id}", "/admin/apps/{client_id}"),
        ("GET /admin/users", "/admin/users"),
        ("GET /admin/users (search)", "/admin/users?q=ada"),
        ("GET /admin/users/{user_id}", "/admin/users/{user_id}"),
        ("GET /admin/history", "/admin/history"),
        ("GET /admin/history.csv", "/admin/history.csv"),
        ("GET /admin/keys", "/admin/keys"),
        ("GET /admin/outbox", "/admin/outbox?state=pending"),
        ("GET /admin/outbox (failed)", "/admin/outbox?state=failed"),
        ("GET /admin/audit", "/admin/audit"),
        (
            "GET /admin/apps/{client_id} (unknown)",
            "/admin/apps/no-such-app",
        ),
    ] {
        seen.push(see(what, b.get(p.url(route))).await);
    }
    let posts = [
        (
            "POST /admin/apps (the secret, once)",
            "/admin/apps",
            form(&[
                ("name", "Walk Notes"),
                ("redirect_uris", "https://walk.example/cb"),
            ]),
        ),
        (
            "POST /admin/users/{user_id}/sign-in-link (a link to copy)",
            "/admin/users/{user_id}/sign-in-link",
            form(&[("client_id", &p.client_id), ("copy", "yes")]),
        ),
        (
            "POST /admin/users/{user_id}/delete (asked first)",
            "/admin/users/{user_id}/delete",
            form(&[]),
        ),
        (
            "POST /admin/sessions/{session_id}/end (asked first)",
            "/admin/sessions/{session_id}/end",
            form(&[("user_id", &p.user_id)]),
        ),
        (
            "POST /admin/users/{user_id}/passkeys/delete (asked first)",
            "/admin/users/{user_id}/passkeys/delete",
            form(&[("passkey_id", &p.passkey_id)]),
        ),
        (
            "POST /admin/apps/{client_id}/secret (asked first)",
            "/admin/apps/{client_id}/secret",
            form(&[]),
        ),
        (
            "POST /admin/keys/rotate (no CSRF token)",
            "/admin/keys/rotate",
            vec![("confirmed", "yes".to_owned())],
        ),
    ];
    for (what, route, form) in posts {
        seen.push(see(what, b.post(p.url(route)).form(&form)).await);
    }
    let owner = p.app.account_browser(OWNER).await;
    seen.push(see("GET /admin (an owner)", owner.get(p.url("/admin"))).await);
    seen.push(
        see(
            "GET /admin/apps/{client_id} (its owner)",
            owner.get(p.url("/admin/apps/{client_id}")),
        )
        .await,
    );
    seen.push(
        see(
            "GET /admin/keys (an owner)",
            owner.get(p.url("/admin/keys")),
        )
        .await,
    );
    let nobody = p.app.account_browser("linus@example.com").await;
    seen.push(see("GET /admin (no access)", nobody.get(p.url("/admin"))).await);
    seen.push(see("GET /admin (signed out)", browser().get(p.url("/admin"))).await);
    seen
}

#[tokio::test]
async fn the_panel_walk_sees_every_page_it_means_to() {
    let p = panel().await;
    let seen = every_panel_response(&p).await;
    let statuses: Vec<(&str, u16)> = seen.iter().map(|s| (s.what, s.status)).collect();
    assert_eq!(
        statuses,
        [
            ("GET /admin", 200),
            ("GET /admin/apps", 200),
            ("GET /admin/apps/{client_id}", 200),
            ("GET /admin/users", 200),
            ("GET /admin/users (search)", 200),
            ("GET /admin/users/{user_id}", 200),
            ("GET /admin/history", 200),
            ("GET /admin/history.csv", 200),
            ("GET /admin/keys", 200),
            ("GET /admin/outbox", 200),
            ("GET /admin/outbox (failed)", 200),
            ("GET /admin/audit", 200),
            ("GET /admin/apps/{client_id} (unknown)", 404),
            ("POST /admin/apps (the secret, once)", 200),
            (
                "POST /admin/users/{user_id}/sign-in-link (a link to copy)",
                200
            ),
            ("POST /admin/users/{user_id}/delete (asked first)", 200),
            ("POST /admin/sessions/{session_id}/end (asked first)", 200),
            (
                "POST /admin/users/{user_id}/passkeys/delete (asked first)",
                200
            ),
            ("POST /admin/apps/{client_id}/secret (asked first)", 200),
            ("POST /admin/keys/rotate (no CSRF token)", 403),
            ("GET /admin (an owner)", 200),
            ("GET /admin/apps/{client_id} (its owner)", 200),
            ("GET /admin/keys (an owner)", 403),
            ("GET /admin (no access)", 403),
            ("GET /admin (signed out)", 303),
        ]
    );
    // The pages are what they claim to be, with the data on them.
    let body = |what: &str| &seen.iter().find(|s| s.what == what).unwrap().body;
    assert!(body("POST /admin/apps (the secret, once)").contains("pcs_"));
    assert!(
        body("POST /admin/users/{user_id}/sign-in-link (a link to copy)")
            .contains("/verify-email?token=")
    );
    assert!(
        body("GET /admin/users/{user_id}").contains("Phone"),
        "the passkey"
    );
    assert!(body("GET /admin/outbox (failed)").contains("a***@example.com"));
    for what in statuses
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| w.ends_with("(asked first)"))
    {
        assert!(body(what).contains("name=\"confirmed\""), "{what}");
    }
    // Every page the router has is in the walk, but the email preview: an
    // email in a sandboxed frame, with the inline styles emails need and
    // nothing else (the browser tests look at it).
    for (method, route) in PANEL_ROUTES {
        if *method != "get" || route.ends_with("/email-preview.html") {
            continue;
        }
        let what = format!("GET {route}");
        assert!(
            seen.iter()
                .any(|s| s.what == what || s.what.starts_with(&format!("{what} ("))),
            "{what} is not in the walk"
        );
    }
    let res = p
        .admin
        .get(p.url("/admin/apps/{client_id}/email-preview.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("sandbox;")
            && csp.contains("default-src 'none'")
            && !csp.contains("script-src"),
        "{csp}"
    );
}

#[tokio::test]
async fn every_panel_response_carries_the_security_headers_and_is_never_cached() {
    let p = panel().await;
    for s in every_panel_response(&p).await {
        assert_never_cached_or_indexed(&s);
        assert_security_headers(&s);
    }
}

#[tokio::test]
async fn panel_pages_load_nothing_from_other_sites_and_run_no_inline_script() {
    let p = panel().await;
    let mut pages = 0;
    for s in every_panel_response(&p).await {
        if is_self_contained_page(&s, &p.app.address) {
            pages += 1;
        }
    }
    assert!(pages >= 22, "only {pages} HTML pages seen");
}

/// SPEC §3.5 "CSRF on every form": every POST route of the panel's router,
/// posted by a signed-in administrator with every field its action needs
/// but without the page's CSRF token, with another person's, an altered
/// or an empty one, is refused with 403 and changes nothing. With the
/// token the same posts are not refused (so the refusals were the token's).
#[tokio::test]
async fn every_panel_form_refuses_a_post_without_its_csrf_token_and_changes_nothing() {
    let p = panel().await;
    let token = p.csrf(&p.admin).await;
    let owner = p.app.account_browser(OWNER).await;
    let someone_elses = p.csrf(&owner).await;
    assert_ne!(token, someone_elses);
    let altered = format!(
        "{}{}",
        if token.starts_with('A') { "B" } else { "A" },
        &token[1..]
    );
    let mut posts: Vec<&str> = PANEL_ROUTES
        .iter()
        .filter(|(method, _)| *method == "post")
        .map(|(_, route)| *route)
        .collect();
    assert!(posts.len() >= 13, "{posts:?}");
    let before = p.state().await;
    for route in &posts {
        for (case, csrf) in [
            ("no token", None),
            ("another person's token", Some(someone_elses.as_str())),
            ("an altered token", Some(altered.as_str())),
            ("an empty token", Some("")),
        ] {
            let mut form = p.every_field();
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf.to_owned()));
            }
            let res = p.admin.post(p.url(route)).form(&form).send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert_eq!(status, 403, "POST {route} with {case}: {body}");
        }
    }
    assert_eq!(p.state().await, before, "a refused form changed something");
    assert_eq!(p.app.count("audit_log").await, 0);

    // Deletions last, so every other form still has its target.
    posts.sort_by_key(|route| route.ends_with("/delete"));
    for route in &posts {
        let mut form = p.every_field();
        form.push(("csrf_token", token.clone()));
        let res = p.admin.post(p.url(route)).form(&form).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            status != 403 && !status.is_server_error(),
            "POST {route} with the page's token: {status} {body}"
        );
    }
    assert!(
        p.app.count("audit_log").await >= 8,
        "the accepted forms did their actions"
    );
}
