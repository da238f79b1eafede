//! The administration panel `/admin` (SPEC §3.5, issue 12) in a real
//! headless Chromium: an administrator signs in with Postern itself,
//! creates an app, changes its colour and sees the email preview follow,
//! rotates its secret, finds a person and ends their session; an owner sees
//! only their app; anyone else gets the "no access" page. With
//! `POSTERN_SCREENSHOTS=1` every panel page is saved at phone and desktop
//! width into docs/screenshots (with an owner's view and a German set).
//!
//! Each test starts its own chromedriver and Chromium (support/browser.rs).
//! Without chromedriver they fail; `POSTERN_SKIP_BROWSER_TESTS=1` skips them.

mod support;

use support::*;

const ADMIN: &str = "admin@example.com";
const OWNER: &str = "owner@example.com";
const ADA: &str = "ada@example.com";

/// A server whose administrator is [`ADMIN`].
async fn server() -> TestApp {
    spawn_oidc_app_with(&[("POSTERN_ADMIN_EMAILS", ADMIN)]).await
}

/// Opens `path` of the panel in `b`, signing in as `email` through Postern
/// when it asks (the same sign-in as `/account`), and waits until the
/// panel (or its "no access" page) shows at `path`.
async fn open_panel(app: &TestApp, b: &Browser, email: &str, path: &str) {
    b.goto(&app.url(path)).await;
    let at = b
        .wait_for_url(
            |u| [path, "/login", "/authorize"].contains(&u.path()),
            "the panel, the email form or the chooser",
        )
        .await;
    match at.path() {
        "/login" => {
            let sent = app.sign_in_through_login(b, email).await;
            app.open_link(b, &sent).await;
        }
        "/authorize" => {
            b.click("form[action=\"/authorize\"] button[name=account]")
                .await;
        }
        _ => {}
    }
    b.wait_for_path(path).await;
}

/// Clicks the submit button `css` selects and waits for the next page.
async fn submit(b: &Browser, css: &str) {
    b.js("window.__posternStale = true;").await;
    b.click(css).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let loaded = b
            .js("return window.__posternStale !== true && document.readyState === 'complete';")
            .await;
        if loaded == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{css} loaded no page");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The `Cookie` header of `b`'s cookies, for fetching what the page shows.
async fn cookie_header(b: &Browser) -> String {
    b.cookies()
        .await
        .values()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The HTML the email preview frame of the app page shows now.
async fn preview_html(app: &TestApp, b: &Browser) -> String {
    let src = b
        .find("#email-preview")
        .await
        .attr("src")
        .await
        .unwrap()
        .expect("the preview frame has a source");
    let res = browser()
        .get(app.url(&src))
        .header("cookie", cookie_header(b).await)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the preview of {src}");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("sandbox;"),
        "the preview is sandboxed: {csp}"
    );
    res.text().await.unwrap()
}

/// Whether `client_id:secret` authenticates at `/introspect`.
async fn secret_works(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let res = browser()
        .post(app.url("/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", "nothing")])
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("/introspect answered {other}"),
    }
}

#[tokio::test]
async fn an_admin_creates_an_app_brands_it_rotates_its_secret_and_ends_a_persons_session() {
    if browser_tests_skipped() {
        return;
    }
    let app = server().await;
    // Ada is signed in somewhere else: her own browser.
    let ada = Browser::launch().await;
    app.open_account(&ada, ADA).await;
    assert_eq!(
        app.rows("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await[0][0],
        "1"
    );

    let b = Browser::launch().await;
    open_panel(&app, &b, ADMIN, "/admin").await;
    assert_eq!(b.h1().await, "Overview");
    assert!(b.has("svg.chart").await, "the 48-hour chart");
    assert!(
        b.has("nav a[href=\"/admin/audit\"]").await,
        "an administrator sees the whole menu"
    );

    // Create an app: its secret is shown once.
    b.goto(&app.url("/admin/apps")).await;
    b.fill("#new-name", "Acme Notes").await;
    b.fill("#new-uris", "https://acme.example/callback").await;
    submit(&b, "form[action=\"/admin/apps\"] button[type=submit]").await;
    let first_secret = b.find("#secret").await.text().await.unwrap();
    assert!(first_secret.starts_with("pcs_"), "{}", b.text().await);
    let client_id = b.find(".facts code").await.text().await.unwrap();
    assert!(secret_works(&app, &client_id, &first_secret).await);

    // Its page: the colour changes and the preview follows before saving.
    b.click("main a.button").await;
    b.wait_for_path(&format!("/admin/apps/{client_id}")).await;
    assert_eq!(b.h1().await, "Acme Notes");
    let before = preview_html(&app, &b).await;
    assert!(before.contains("Acme Notes"), "the preview names the app");
    assert!(!before.contains("#0a7e3c"));
    b.fill("#b-color", "#0a7e3c").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let src = b
            .find("#email-preview")
            .await
            .attr("src")
            .await
            .unwrap()
            .unwrap_or_default();
        if src.contains("%230a7e3c") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the preview did not follow the colour: {src}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        preview_html(&app, &b).await.contains("#0a7e3c"),
        "the previewed email wears the new colour"
    );
    // The German preview, too.
    b.js(
        "var s = document.getElementById('b-locale'); s.value = 'de'; \
          s.dispatchEvent(new Event('change', { bubbles: true }));",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let src = b
        .find("#email-preview")
        .await
        .attr("src")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(src.contains("preview_locale=de"), "{src}");
    let german = preview_html(&app, &b).await;
    assert!(
        german.contains("lang=\"de\"") || german.contains("Anmeld"),
        "{german}"
    );
    // Saved, it stays.
    submit(&b, "#branding-form button[type=submit]:not([formmethod])").await;
    assert_eq!(b.find(".notice").await.text().await.unwrap(), "Saved.");
    assert_eq!(b.value_of("#b-color").await, "#0a7e3c");
    assert!(preview_html(&app, &b).await.contains("#0a7e3c"));

    // Rotate the secret: asked first, then shown once; the old one ends.
    submit(&b, "form[action$=\"/secret\"] button[type=submit]").await;
    assert_eq!(b.h1().await, "Are you sure?");
    assert!(
        secret_works(&app, &client_id, &first_secret).await,
        "not yet"
    );
    submit(&b, "form[action$=\"/secret\"] button.danger").await;
    let second_secret = b.find("#secret").await.text().await.unwrap();
    assert_ne!(second_secret, first_secret);
    assert!(secret_works(&app, &client_id, &second_secret).await);
    assert!(!secret_works(&app, &client_id, &first_secret).await);

    // Find Ada and end her session.
    b.goto(&app.url("/admin/users")).await;
    b.fill("#q", "ada").await;
    submit(&b, "form.search button[type=submit]").await;
    b.click(".user-list a").await;
    b.wait_for_url(|u| u.path().starts_with("/admin/users/"), "Ada's page")
        .await;
    assert!(b.text().await.contains(ADA));
    assert_eq!(b.find_all(".sessions > li").await.len(), 1);
    submit(&b, "form[action$=\"/end\"] button[type=submit]").await;
    assert_eq!(b.h1().await, "Are you sure?");
    submit(&b, "form[action$=\"/end\"] button.danger").await;
    assert_eq!(
        b.find(".notice").await.text().await.unwrap(),
        "The session was ended."
    );
    assert!(!b.has(".sessions > li").await, "{}", b.text().await);
    assert_eq!(
        app.rows("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE email = 'ada@example.com')")
            .await[0][0],
        "0",
        "Ada's session ended"
    );
    ada.quit().await;

    // Everything above is in the audit log, with the admin's address.
    b.goto(&app.url("/admin/audit")).await;
    let audit = b.text().await;
    for action in [
        "app.create",
        "app.update",
        "app.rotate_secret",
        "session.end",
    ] {
        assert!(
            audit.contains(action),
            "{action} in the audit log:\n{audit}"
        );
    }
    assert!(audit.contains(ADMIN));
    b.quit().await;
}

#[tokio::test]
async fn an_owner_sees_only_their_app_and_no_server_pages() {
    if browser_tests_skipped() {
        return;
    }
    let app = server().await;
    let mine = app.create_app(|s| s.owners = vec![OWNER.to_owned()]).await;
    let other = app.create_app(|_| {}).await;
    let b = Browser::launch().await;
    open_panel(&app, &b, OWNER, "/admin").await;
    assert_eq!(b.status().await, 200);
    assert_eq!(b.h1().await, "Overview");
    assert!(b.text().await.contains("App owner"));
    for hidden in ["/admin/keys", "/admin/outbox", "/admin/audit"] {
        assert!(
            !b.has(&format!("nav a[href=\"{hidden}\"]")).await,
            "no {hidden} in an owner's menu"
        );
    }
    b.goto(&app.url("/admin/apps")).await;
    let links = b.find_all(".app-list a").await;
    assert_eq!(links.len(), 1, "{}", b.text().await);
    assert_eq!(
        links[0].attr("href").await.unwrap().unwrap(),
        format!("/admin/apps/{}", mine.client_id)
    );
    assert!(
        !b.has("form[action=\"/admin/apps\"]").await,
        "owners create no apps"
    );
    b.goto(&app.url(&format!("/admin/apps/{}", mine.client_id)))
        .await;
    assert_eq!(b.status().await, 200);
    assert!(
        b.has("#s-owners[readonly]").await,
        "owners cannot change the owners"
    );
    b.goto(&app.url(&format!("/admin/apps/{}", other.client_id)))
        .await;
    assert_eq!(b.status().await, 403, "another app: {}", b.text().await);
    b.goto(&app.url("/admin/keys")).await;
    assert_eq!(b.status().await, 403);
    b.quit().await;
}

/// With `POSTERN_ADMIN_LINKS=copy` the person's page makes a link to hand
/// over instead of emailing it: shown once, nothing sent, and it signs the
/// person in (in her own browser) once.
#[tokio::test]
async fn an_admin_copies_a_sign_in_link_that_works_once_for_the_person() {
    if browser_tests_skipped() {
        return;
    }
    let app = spawn_oidc_app_with(&[
        ("POSTERN_ADMIN_EMAILS", ADMIN),
        ("POSTERN_ADMIN_LINKS", "copy"),
    ])
    .await;
    let notes = app.create_app(|_| {}).await;
    let ada = Browser::launch().await;
    app.open_account(&ada, ADA).await;
    ada.quit().await;

    let b = Browser::launch().await;
    open_panel(&app, &b, ADMIN, "/admin/users").await;
    b.fill("#q", "ada").await;
    submit(&b, "form.search button[type=submit]").await;
    b.click(".user-list a").await;
    b.wait_for_url(|u| u.path().starts_with("/admin/users/"), "Ada's page")
        .await;
    b.js(&format!(
        "document.querySelector('#link-app').value = '{}';",
        notes.client_id
    ))
    .await;
    let outbox = app.count("outbox").await;
    submit(&b, "form[action$=\"/sign-in-link\"] button[name=copy]").await;
    assert_eq!(b.h1().await, "A sign-in link to hand over");
    let text = b.text().await;
    assert!(text.contains(ADA) && text.contains("Test App"), "{text}");
    let link = app.local(&b.find("#link").await.text().await.unwrap());
    assert!(link.contains("/verify-email?token="), "{link}");
    assert_eq!(app.count("outbox").await, outbox, "nothing emailed");
    b.quit().await;

    // Ada opens it in a fresh browser and confirms: signed in, on her
    // account page; the same link a second time is refused.
    let ada = Browser::launch().await;
    ada.goto(&link).await;
    ada.wait_for_path("/verify-email").await;
    submit(&ada, "form[action=\"/verify-email\"] button[type=submit]").await;
    ada.wait_for_path("/account").await;
    assert!(ada.text().await.contains(ADA));
    ada.goto(&link).await;
    assert_eq!(ada.status().await, 400, "{}", ada.text().await);
    ada.quit().await;
    assert_eq!(
        app.rows(&format!(
            "SELECT COUNT(*) FROM sign_in_events WHERE method = 'admin_link' AND outcome = 'success' AND client_id = '{}'",
            notes.client_id
        ))
        .await[0][0],
        "1"
    );
}

#[tokio::test]
async fn a_signed_in_person_who_administers_nothing_gets_the_no_access_page() {
    if browser_tests_skipped() {
        return;
    }
    let app = server().await;
    let b = Browser::launch_with(BrowserOptions {
        lang: "de".to_owned(),
        ..BrowserOptions::default()
    })
    .await;
    open_panel(&app, &b, ADA, "/admin").await;
    assert_eq!(b.status().await, 403);
    assert_eq!(b.h1().await, "Kein Zugang");
    assert!(b.text().await.contains(ADA), "it says who is signed in");
    assert!(!b.has("nav.admin-nav").await, "no menu");
    b.goto(&app.url("/admin/users")).await;
    assert_eq!(b.status().await, 403);
    b.quit().await;
}

/// The host of the screenshot server's public URL, without a port, so the
/// email preview's sample link reads the same in every run (a loopback
/// name: Postern takes plain http only there).
const SHOWN_HOST: &str = "localhost";

/// A server whose public URL is `http://`[`SHOWN_HOST`] (its browsers
/// reach it through a host mapping), with an administrator and copied
/// sign-in links; and the address it really listens on.
async fn shown_server() -> (TestApp, String) {
    let public_url = format!("http://{SHOWN_HOST}");
    let mut app = spawn_app_with(&[
        ("POSTERN_ADMIN_EMAILS", ADMIN),
        ("POSTERN_ADMIN_LINKS", "copy"),
        ("POSTERN_PUBLIC_URL", &public_url),
    ])
    .await;
    let listening = app.address.trim_start_matches("http://").to_owned();
    app.address = public_url;
    (app, listening)
}

/// A browser in `lang` that reaches [`SHOWN_HOST`] at `listening`.
async fn shown_browser(listening: &str, lang: &str) -> Browser {
    let opts = BrowserOptions {
        lang: lang.to_owned(),
        ..BrowserOptions::default()
    };
    Browser::launch_resolving(opts, SHOWN_HOST, listening).await
}

/// Asserts the page `b` shows (`what`) does not scroll sideways.
async fn fits(b: &Browser, what: &str, width: u32) {
    let overflow = b
        .js("return document.documentElement.scrollWidth - window.innerWidth;")
        .await
        .as_i64()
        .unwrap_or(0);
    assert!(
        overflow <= 0,
        "{what} scrolls sideways by {overflow} px at {width} px"
    );
}

/// The smallest label of the dashboard's chart as drawn, in CSS pixels:
/// its font size in SVG units times the scale of the drawing shown.
async fn chart_label_px(b: &Browser) -> f64 {
    let px = b
        .js("var shown = Array.from(document.querySelectorAll('svg.chart')).filter(function (s) { \
               return s.getBoundingClientRect().width > 0; }); \
             if (shown.length !== 1) { return -shown.length; } \
             var svg = shown[0]; \
             var scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; \
             return Math.min.apply(null, Array.from(svg.querySelectorAll('text.axis')).map(function (t) { \
               return parseFloat(getComputedStyle(t).fontSize) * scale; }));")
        .await;
    px.as_f64().unwrap_or(-99.0)
}

/// Every panel page at phone (360 px) and desktop width, saved with
/// `POSTERN_SCREENSHOTS=1`: in English as an administrator (with a failed
/// email, a person with a passkey, the secret shown once and a sign-in
/// link to copy), an owner's view, the dashboard and an app in German,
/// "no access". Without it the pages are still opened and checked to fit
/// a phone without sideways scrolling, with a chart whose labels are at
/// least 11 px at either width.
#[tokio::test]
async fn every_panel_page_fits_a_phone_and_a_desktop() {
    if browser_tests_skipped() {
        return;
    }
    let (app, listening) = shown_server().await;
    let notes = app
        .create_app(|s| {
            s.branding.name = Some("Acme Notes".to_owned());
            s.branding.color = Some("#0a7e3c".to_owned());
            s.branding.email_note = Some("Questions? Write to help@acme.example.".to_owned());
            s.owners = vec![OWNER.to_owned()];
        })
        .await;
    // Some history: Ada signs in with her own browser.
    let ada = shown_browser(&listening, "en").await;
    app.open_account(&ada, ADA).await;
    ada.quit().await;
    let ada_id = app
        .rows("SELECT id FROM users WHERE email = 'ada@example.com'")
        .await[0][0]
        .clone();
    app.stored_passkey(&ada_id, "pk00000000000000000001", "Pixel 8")
        .await;
    app.failed_email("refused-msg", &notes.client_id, "b***@example.com")
        .await;

    let b = shown_browser(&listening, "en").await;
    open_panel(&app, &b, ADMIN, "/admin").await;
    let app_page = format!("/admin/apps/{}", notes.client_id);
    let user_page = format!("/admin/users/{ada_id}");
    let pages = [
        ("dashboard", "/admin".to_owned()),
        ("apps", "/admin/apps".to_owned()),
        ("app", app_page.clone()),
        ("users", "/admin/users?q=".to_owned()),
        ("user", user_page.clone()),
        ("history", "/admin/history".to_owned()),
        ("keys", "/admin/keys".to_owned()),
        ("outbox", "/admin/outbox?state=failed".to_owned()),
        ("audit", "/admin/audit".to_owned()),
    ];
    const SIZES: [(u32, u32, &str); 2] = [(360, 740, "phone"), (1280, 800, "desktop")];
    for (width, height, size) in SIZES {
        b.set_viewport(width, height).await;
        b.goto(&app.url("/admin")).await;
        let label = chart_label_px(&b).await;
        assert!(
            label >= 11.0,
            "the chart's labels are {label:.1} px at {width} px"
        );
        b.goto(&app.url(&user_page)).await;
        assert!(b.text().await.contains("Pixel 8"), "the passkey is shown");
        b.goto(&app.url("/admin/outbox?state=failed")).await;
        assert!(
            b.text().await.contains("b***@example.com"),
            "the failed email"
        );

        // A confirmation step.
        b.goto(&app.url(&user_page)).await;
        submit(&b, "form[action$=\"/delete\"] button[type=submit]").await;
        assert_eq!(b.h1().await, "Are you sure?");
        fits(&b, "the confirmation", width).await;
        b.shot(&format!("admin-confirm-en-{size}")).await;

        // A new secret for the app, shown once.
        b.goto(&app.url(&app_page)).await;
        submit(&b, "form[action$=\"/secret\"] button[type=submit]").await;
        submit(&b, "form[action$=\"/secret\"] button.danger").await;
        assert!(b.has("#secret").await, "{}", b.text().await);
        fits(&b, "the secret", width).await;
        b.shot(&format!("admin-secret-en-{size}")).await;

        // A sign-in link to hand over.
        b.goto(&app.url(&user_page)).await;
        b.js(&format!(
            "document.querySelector('#link-app').value = '{}';",
            notes.client_id
        ))
        .await;
        submit(&b, "form[action$=\"/sign-in-link\"] button[name=copy]").await;
        assert_eq!(b.h1().await, "A sign-in link to hand over");
        let link = b.find("#link").await.text().await.unwrap();
        assert!(
            link.starts_with(&format!("http://{SHOWN_HOST}/verify-email?token=")),
            "{link}"
        );
        fits(&b, "the link to copy", width).await;
        b.shot(&format!("admin-link-en-{size}")).await;

        // Every page, after the actions above, so the audit log has some.
        for (name, path) in &pages {
            b.goto(&app.url(path)).await;
            assert_eq!(b.status().await, 200, "{path}: {}", b.text().await);
            fits(&b, path, width).await;
            b.shot(&format!("admin-{name}-en-{size}")).await;
        }
    }
    b.quit().await;

    // An owner's view: their app only, no server pages.
    let b = shown_browser(&listening, "en").await;
    open_panel(&app, &b, OWNER, "/admin").await;
    for (width, height, size) in SIZES {
        b.set_viewport(width, height).await;
        for (name, path) in [("dashboard", "/admin"), ("app", app_page.as_str())] {
            b.goto(&app.url(path)).await;
            assert_eq!(b.status().await, 200, "{path}: {}", b.text().await);
            fits(&b, path, width).await;
            b.shot(&format!("admin-owner-{name}-en-{size}")).await;
        }
    }
    b.quit().await;

    // In German.
    let b = shown_browser(&listening, "de").await;
    open_panel(&app, &b, ADMIN, "/admin").await;
    assert_eq!(b.lang().await, "de");
    for (width, height, size) in SIZES {
        b.set_viewport(width, height).await;
        for (name, path) in [("dashboard", "/admin"), ("app", app_page.as_str())] {
            b.goto(&app.url(path)).await;
            assert_eq!(b.status().await, 200, "{path}: {}", b.text().await);
            fits(&b, path, width).await;
            b.shot(&format!("admin-{name}-de-{size}")).await;
        }
    }
    b.quit().await;

    // The "no access" page.
    let b = shown_browser(&listening, "en").await;
    for (width, height, size) in SIZES {
        b.set_viewport(width, height).await;
        open_panel(&app, &b, "linus@example.com", "/admin").await;
        assert_eq!(b.status().await, 403);
        b.shot(&format!("admin-no-access-en-{size}")).await;
    }
    b.quit().await;
}
