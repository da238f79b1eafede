//! Black-box tests of the administration API (SPEC §3.5, §3.6 disabled
//! apps, §4 admin tokens): who may call which route — a table built from
//! the router's own route list, so a new route without a rule fails here —
//! and what each change does, through real HTTP on both databases.

mod support;

use openidconnect::OAuth2TokenResponse;
use postern_admin_web::api::{PREFIX, ROUTES};
use postern_auth::admin::{tokens, Principal};
use reqwest::{Client, Response};
use serde_json::{json, Value};
use support::*;

use support::admin::{
    admin_token as token, call, create_api_app as create_app, ok_json, signed_in_browser,
    spawn_admin_app as spawn, Who, ADMIN, NOBODY, OWNER, PERSON,
};

// ---- the authorization table -----------------------------------------------------

/// What an owner gets on a route, for an id outside their apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerRule {
    /// Administrators only: 403 for every owner.
    AdminOnly,
    /// About one app or its people: 403 outside their apps.
    Scoped,
    /// A list the owner sees filtered to their apps; naming another app's
    /// `client_id` is 403.
    Filtered,
}

/// Every admin route's rule. A route missing here fails the test.
fn rule(method: &str, path: &str) -> Option<OwnerRule> {
    use OwnerRule::*;
    Some(match (method, path) {
        ("get", "/apps") => Filtered,
        ("post", "/apps") => AdminOnly,
        ("get" | "patch" | "delete", "/apps/{client_id}") => Scoped,
        ("post", "/apps/{client_id}/secrets") => Scoped,
        ("get", "/apps/{client_id}/email-preview") => Scoped,
        ("post", "/apps/{client_id}/test-email") => Scoped,
        ("get", "/users") => Filtered,
        ("get", "/users/{user_id}") => Scoped,
        ("post", "/users/{user_id}/sign-in-link") => Scoped,
        // A person's account signs in to every app, not only an owner's:
        // owners never disable, enable or delete it, nor its passkeys
        // (admin_owners.rs checks this inside the owner's own app).
        ("delete", "/users/{user_id}") => AdminOnly,
        ("post", "/users/{user_id}/disable" | "/users/{user_id}/enable") => AdminOnly,
        ("delete", "/users/{user_id}/passkeys/{passkey_id}") => AdminOnly,
        ("get", "/sessions") => Filtered,
        ("delete", "/sessions/{session_id}") => Scoped,
        ("get", "/events" | "/events.csv") => Filtered,
        ("get", "/keys") | ("post", "/keys/rotate") => AdminOnly,
        ("get", "/outbox") | ("post", "/outbox/{id}/retry") | ("get", "/audit") => AdminOnly,
        _ => return None,
    })
}

#[tokio::test]
async fn every_admin_route_refuses_strangers_non_admins_and_owners_outside_their_apps() {
    let app = spawn().await;
    let t = token(&app).await;
    let theirs = create_app(&app, &t, "Owned", &[OWNER]).await;
    let other = create_app(&app, &t, "Other", &[]).await;
    let other_id = other["client_id"].as_str().unwrap();
    let theirs_id = theirs["client_id"].as_str().unwrap();
    // A person who signed in only to the other app, and their session.
    let person = browser();
    let res = person
        .get(app.url(&format!(
            "/authorize?client_id={other_id}&redirect_uri=https://app.example/cb\
             &response_type=code&scope=openid%20email&state=s&nonce=n"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "to /login");
    let res = app
        .sign_in_at(&person, &location(&res), PERSON, Proof::Link)
        .await;
    assert_eq!(res.status(), 303, "back to the app with a code");
    let person_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{PERSON}'"))
        .await[0][0]
        .clone();
    let session_id = app
        .rows(&format!(
            "SELECT id FROM sessions WHERE user_id = '{person_id}'"
        ))
        .await[0][0]
        .clone();
    let nobody = signed_in_browser(&app, NOBODY).await;
    let owner = signed_in_browser(&app, OWNER).await;

    let fill = |path: &str| {
        path.replace("{client_id}", other_id)
            .replace("{user_id}", &person_id)
            .replace("{session_id}", &session_id)
            .replace("{passkey_id}", "no-such-passkey")
            .replace("{id}", "no-such-message")
    };
    let body = |method: &str, path: &str| -> Option<Value> {
        (method != "get" && method != "delete").then(|| match path {
            "/apps" => json!({"name": "X", "redirect_uris": ["https://x.example/cb"]}),
            p if p.ends_with("/test-email") => json!({"to": "t@example.com"}),
            p if p.ends_with("/sign-in-link") => json!({"client_id": other_id}),
            _ => json!({}),
        })
    };
    assert!(!ROUTES.is_empty());
    for &(method, path) in ROUTES {
        let r = rule(method, path)
            .unwrap_or_else(|| panic!("{method} {path} has no authorization rule in this test"));
        let p = fill(path);
        let what = format!("{method} {path}");

        let res = call(&app, Who::Nobody, method, &p, body(method, path)).await;
        assert_eq!(res.status(), 401, "{what} without credentials");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}: WWW-Authenticate: Bearer"
        );
        expect_error(res, 401, "invalid_token", &what).await;

        let res = call(
            &app,
            Who::Token("pat_wrong"),
            method,
            &p,
            body(method, path),
        )
        .await;
        assert_eq!(res.status(), 401, "{what} with a bad token");

        let res = call(&app, Who::Browser(&nobody), method, &p, body(method, path)).await;
        expect_error(res, 403, "forbidden", &format!("{what} as a non-admin")).await;

        // An owner, outside their apps.
        let outside = match r {
            OwnerRule::Filtered if path == "/apps" || path == "/users" => None,
            OwnerRule::Filtered => Some(format!("{p}?client_id={other_id}")),
            _ => Some(p.clone()),
        };
        match outside {
            Some(q) => {
                let res = call(&app, Who::Browser(&owner), method, &q, body(method, path)).await;
                expect_error(
                    res,
                    403,
                    "forbidden",
                    &format!("{what} as an owner outside"),
                )
                .await;
            }
            None => {
                let res = call(&app, Who::Browser(&owner), method, &p, None).await;
                let list = ok_json(res, &what).await;
                let text = list.to_string();
                assert!(
                    !text.contains(other_id),
                    "{what}: the owner sees only theirs: {text}"
                );
                assert!(
                    !text.contains(PERSON),
                    "{what}: not other apps' people: {text}"
                );
                if path == "/apps" {
                    assert_eq!(list["items"][0]["client_id"], theirs_id);
                }
            }
        }
    }
    // Nothing changed: every refused call left the data alone.
    assert_eq!(
        app.rows(
            "SELECT action FROM audit_log WHERE action NOT IN ('app.create', 'admin_token.create')"
        )
        .await,
        Vec::<Vec<String>>::new()
    );
    // An owner in their own app may read and change it, but not its owners.
    let res = call(
        &app,
        Who::Browser(&owner),
        "get",
        &format!("/apps/{theirs_id}"),
        None,
    )
    .await;
    assert_eq!(ok_json(res, "own app").await["name"], "Owned");
    let res = call(
        &app,
        Who::Browser(&owner),
        "patch",
        &format!("/apps/{theirs_id}"),
        Some(json!({"branding": {"color": "#0a7e3c"}})),
    )
    .await;
    assert_eq!(
        ok_json(res, "owner patch").await["branding"]["color"],
        "#0a7e3c"
    );
    let res = call(
        &app,
        Who::Browser(&owner),
        "patch",
        &format!("/apps/{theirs_id}"),
        Some(json!({"owners": [OWNER, "friend@example.com"]})),
    )
    .await;
    expect_error(res, 403, "forbidden", "an owner's PATCH of owners").await;
    // A cookie-authenticated write from another origin is refused.
    let res = owner
        .patch(app.url(&format!("{PREFIX}/apps/{theirs_id}")))
        .header("origin", "https://evil.example")
        .json(&json!({"name": "Pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "cross-origin write");
    // An administrator signed in through Postern may do everything.
    let admin = signed_in_browser(&app, ADMIN).await;
    let res = call(&app, Who::Browser(&admin), "get", "/keys", None).await;
    assert!(!ok_json(res, "keys").await["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

// ---- apps ---------------------------------------------------------------------------

#[tokio::test]
async fn apps_are_created_changed_and_deleted_with_one_validation_and_an_audit_trail() {
    let app = spawn().await;
    let t = token(&app).await;
    app.clock.advance(1);
    let created = create_app(&app, &t, "Shop", &[]).await;
    app.clock.advance(1);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert!(created["client_secret"]
        .as_str()
        .unwrap()
        .starts_with("pcs_"));
    assert_eq!(created["settings"]["link_ttl"], "15m");
    assert_eq!(created["enabled"], true);

    let path = format!("/apps/{id}");
    let res = call(&app, Who::Token(&t), "get", &path, None).await;
    let shown = ok_json(res, "read").await;
    assert!(
        shown.get("client_secret").is_none(),
        "a secret is shown only once"
    );
    let keys: Vec<&str> = shown
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "client_id",
        "name",
        "public",
        "first_party",
        "enabled",
        "owners",
        "redirect_uris",
        "post_logout_redirect_uris",
        "initiate_login_uri",
        "settings",
        "branding",
        "created_at",
    ] {
        assert!(keys.contains(&k), "{k} in {shown}");
    }

    // A PATCH merges nested objects.
    let res = call(
        &app,
        Who::Token(&t),
        "patch",
        &path,
        Some(json!({
            "settings": {"link_ttl": "30m"},
            "branding": {"email_note": "Questions? help@shop.example"},
            "initiate_login_uri": "https://app.example/login",
        })),
    )
    .await;
    let changed = ok_json(res, "patch").await;
    assert_eq!(changed["settings"]["link_ttl"], "30m");
    assert_eq!(changed["settings"]["locale"], "en", "unnamed settings stay");
    assert_eq!(
        changed["branding"]["email_note"],
        "Questions? help@shop.example"
    );
    assert_eq!(changed["initiate_login_uri"], "https://app.example/login");

    // Bad input: 400 naming the field, nothing changed.
    for (body, field) in [
        (json!({"colour": "#fff"}), "colour"),
        (json!({"branding": {"colour": "#fff"}}), "colour"),
        (json!({"redirect_uris": []}), "redirect_uris"),
        (json!({"settings": {"link_ttl": "2d"}}), "link_ttl"),
        (
            json!({"branding": {"email_note": "n".repeat(501)}}),
            "email_note",
        ),
        (json!({"owners": ["not an address"]}), "owners"),
        (json!({"public": true}), "public"),
    ] {
        let res = call(&app, Who::Token(&t), "patch", &path, Some(body.clone())).await;
        let err = expect_error(res, 400, "invalid_request", &body.to_string()).await;
        let said = err["error_description"].as_str().unwrap();
        assert!(said.contains(field), "{body}: {said}");
    }
    let res = call(&app, Who::Token(&t), "get", &path, None).await;
    assert_eq!(ok_json(res, "read").await, changed, "nothing half-applied");

    // The built-in app cannot be deleted.
    let res = call(
        &app,
        Who::Token(&t),
        "delete",
        "/apps/postern-account",
        None,
    )
    .await;
    expect_error(res, 409, "conflict", "delete the built-in app").await;

    // Deleting an app ends its sessions, grants and refresh tokens.
    app.clock.advance(1);
    let res = call(&app, Who::Token(&t), "delete", &path, None).await;
    assert_eq!(res.status(), 204);
    let res = call(&app, Who::Token(&t), "get", &path, None).await;
    expect_error(res, 404, "not_found", "a deleted app").await;

    let res = call(&app, Who::Token(&t), "get", "/audit", None).await;
    let audit = ok_json(res, "audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "app.delete",
            "app.update",
            "app.create",
            "admin_token.create"
        ],
        "newest first, refused changes not recorded"
    );
    assert_eq!(audit["items"][0]["actor"], "token:ci");
    assert_eq!(audit["items"][0]["target"], id.as_str());
    assert_eq!(audit["items"][0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn lists_page_by_cursor_and_refuse_bad_limits() {
    let app = spawn().await;
    let t = token(&app).await;
    app.clock.advance(1);
    for i in 0..5 {
        create_app(&app, &t, &format!("App {i}"), &[]).await;
        app.clock.advance(1);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let res = call(
            &app,
            Who::Token(&t),
            "get",
            &format!("/apps?limit=2&cursor={cursor}"),
            None,
        )
        .await;
        let page = ok_json(res, "page").await;
        for a in page["items"].as_array().unwrap() {
            seen.push(a["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    // The built-in account app was made at start-up, before these.
    assert_eq!(&seen[..5], ["App 4", "App 3", "App 2", "App 1", "App 0"]);
    for bad in ["limit=0", "limit=201", "cursor=garbage"] {
        let res = call(&app, Who::Token(&t), "get", &format!("/audit?{bad}"), None).await;
        expect_error(res, 400, "invalid_request", bad).await;
    }
}

// ---- secret rotation through real client authentication -------------------------

/// What `/token` says to this client id and secret: 401 when client
/// authentication fails, 400 `invalid_grant` when it passes (the code is bogus).
async fn token_status(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    back_channel()
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "bogus"),
            ("redirect_uri", "https://app.example/cb"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rotated_secret_ends_at_once_or_after_its_overlap() {
    let app = spawn().await;
    let t = token(&app).await;
    let created = create_app(&app, &t, "Rotating", &[]).await;
    let id = created["client_id"].as_str().unwrap();
    let first = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        token_status(&app, id, &first).await,
        400,
        "the first secret works"
    );

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/apps/{id}/secrets"),
        Some(json!({"previous_valid_for": "1h"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let second = ok_json(res, "rotate").await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        token_status(&app, id, &first).await,
        400,
        "the old one, in its overlap"
    );
    assert_eq!(token_status(&app, id, &second).await, 400, "the new one");

    // Without an overlap, the current secret ends at once; the first keeps
    // its own end.
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/apps/{id}/secrets"),
        None,
    )
    .await;
    let third = ok_json(res, "rotate").await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token_status(&app, id, &second).await, 401, "ended at once");
    assert_eq!(
        token_status(&app, id, &first).await,
        400,
        "still in its own grace"
    );
    assert_eq!(token_status(&app, id, &third).await, 400);
    app.clock.advance(3601);
    assert_eq!(
        token_status(&app, id, &first).await,
        401,
        "its grace is over"
    );

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/apps/{id}/secrets"),
        Some(json!({"previous_valid_for": "31d"})),
    )
    .await;
    expect_error(res, 400, "invalid_request", "more than 30 days").await;
    assert_eq!(
        token_status(&app, id, &third).await,
        400,
        "a refused rotation changes nothing"
    );
}

// ---- users --------------------------------------------------------------------------

#[tokio::test]
async fn disabling_a_person_ends_their_oidc_refresh_token_at_once() {
    let app = spawn().await;
    let t = token(&app).await;
    let client = app.create_app(|_| {}).await;
    let rp = app.relying_party(&client).await;
    let b = browser();
    let mut req = rp.auth_request(&["email", "offline_access"], &[]);
    let res = app
        .sign_in_through_authorize(&b, &req, PERSON, Proof::Link)
        .await;
    let code = rp.code_from(&res, &req);
    let tokens = rp.exchange(&code, req.verifier.take()).await;
    let refresh_token = tokens.refresh_token().expect("offline_access gives one");
    let user_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{PERSON}'"))
        .await[0][0]
        .clone();

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/disable"),
        None,
    )
    .await;
    assert_eq!(ok_json(res, "disable").await["disabled"], true);

    let refreshed = rp
        .oidc
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&rp.http)
        .await;
    assert!(
        refreshed.is_err(),
        "the OIDC refresh token ended with the disable"
    );
}

#[tokio::test]
async fn disabling_a_person_ends_their_headless_session_at_once_and_refuses_their_sign_in() {
    let app = spawn().await;
    let t = token(&app).await;
    let created = create_app(&app, &t, "Headless", &[]).await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let api = back_channel();
    let before = app.inbox();
    let res = api
        .post(app.url("/api/v1/magic-links"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"email": PERSON, "redirect_uri": "https://app.example/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let email = app.new_email_to(&before, PERSON).await;
    let token: String = email
        .text
        .split("token=")
        .nth(1)
        .expect("a link with a token")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    let res = api
        .post(app.url("/api/v1/magic-links/verify"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let session = ok_json(res, "verify").await;
    let session_token = session["session_token"].as_str().unwrap().to_owned();
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let user_id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{PERSON}'"))
        .await[0][0]
        .clone();

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/disable"),
        None,
    )
    .await;
    let shown = ok_json(res, "disable").await;
    assert_eq!(shown["disabled"], true);
    assert_eq!(shown["live_sessions"], 0);

    let res = api
        .post(app.url("/api/v1/sessions/verify"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"session_token": session_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the session ended at once");
    let res = api
        .post(app.url("/api/v1/sessions/refresh"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_client_error(),
        "the refresh token ended too"
    );

    // A disabled person gets the "no account" email, no link.
    let before = app.inbox();
    let res = api
        .post(app.url("/api/v1/magic-links"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"email": PERSON, "redirect_uri": "https://app.example/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let email = app.new_email_to(&before, PERSON).await;
    assert!(
        !email.text.contains("token="),
        "no link for a disabled person: {}",
        email.text
    );
    let res = call(
        &app,
        Who::Token(&t),
        "get",
        &format!("/events?user_id={user_id}&outcome=refused"),
        None,
    )
    .await;
    assert_eq!(
        ok_json(res, "events").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/enable"),
        None,
    )
    .await;
    assert_eq!(ok_json(res, "enable").await["disabled"], false);
    let res = call(&app, Who::Token(&t), "get", "/users?q=PERSON@", None).await;
    let found = ok_json(res, "search").await;
    assert_eq!(
        found["items"][0]["email"], PERSON,
        "prefix search, case-insensitive"
    );
}

// ---- disabled apps (SPEC §3.6) ------------------------------------------------------

#[tokio::test]
async fn a_disabled_app_signs_no_one_in_and_sends_nothing() {
    let app = spawn().await;
    let t = token(&app).await;
    let created = create_app(&app, &t, "Paused", &[]).await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let res = call(
        &app,
        Who::Token(&t),
        "patch",
        &format!("/apps/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(ok_json(res, "disable app").await["enabled"], false);
    let outbox_before = app.count("outbox").await;
    let res = back_channel()
        .post(app.url("/request-magic-link"))
        .json(&json!({"email": PERSON, "client_id": id, "redirect_uri": "https://app.example/cb"}))
        .send()
        .await
        .unwrap();
    let err = expect_error(res, 400, "invalid_client", "request-magic-link").await;
    assert_eq!(err["error_description"], "This app is disabled.");
    let res = back_channel()
        .post(app.url("/api/v1/magic-links"))
        .basic_auth(&id, Some(created["client_secret"].as_str().unwrap()))
        .json(&json!({"email": PERSON, "redirect_uri": "https://app.example/cb"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_client", "headless").await;
    assert_eq!(app.count("outbox").await, outbox_before, "nothing sent");
    let res = browser()
        .get(app.url(&format!(
            "/authorize?client_id={id}&redirect_uri=https://app.example/cb&response_type=code&scope=openid"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "/authorize shows an error page");
}

// ---- outbox, keys, tokens ----------------------------------------------------------

#[tokio::test]
async fn outbox_items_never_show_the_address_link_or_code_and_a_failed_one_can_be_retried() {
    let app = spawn().await;
    let t = token(&app).await;
    let created = create_app(&app, &t, "Mailer", &[]).await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/apps/{id}/test-email"),
        Some(json!({"to": "jane.doe@example.com"})),
    )
    .await;
    assert_eq!(res.status(), 202);
    let _queued = ok_json(res, "test email").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The worker delivers it at once: wait, then queue one like it that the
    // SMTP server refused, in one transaction the worker never sees half of.
    app.wait_for_emails(1).await;
    let msg = "refused-msg".to_owned();
    {
        use postern_store::{AdminQueries, Queries};
        let now = app.clock_now();
        let mut tx = app.state.store.begin().await.unwrap();
        tx.insert_outbox(&msg, "<m@x>", "sealed", now, now + 900)
            .await
            .unwrap();
        tx.set_outbox_meta(&msg, Some(&id), "j***@example.com")
            .await
            .unwrap();
        tx.outbox_failed(&msg, now, "550 5.1.1 <jane.doe@example.com> unknown")
            .await
            .unwrap();
        // And one still waiting, due tomorrow.
        tx.insert_outbox("waiting-msg", "<w@x>", "sealed", now + 86_400, now + 90_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let res = call(&app, Who::Token(&t), "get", "/outbox?state=failed", None).await;
    let list = ok_json(res, "failed").await;
    let text = list.to_string();
    assert_eq!(list["items"][0]["id"], msg.as_str(), "{text}");
    assert_eq!(list["items"][0]["to"], "j***@example.com");
    assert_eq!(list["items"][0]["client_id"], id.as_str());
    assert!(!text.contains("jane.doe"), "never the local part: {text}");
    assert!(!text.contains("pml_") && !text.contains("123456"), "{text}");

    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/outbox/{msg}/retry"),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        "/outbox/waiting-msg/retry",
        None,
    )
    .await;
    expect_error(res, 409, "conflict", "retry of a pending message").await;

    let res = call(
        &app,
        Who::Token(&t),
        "get",
        &format!("/apps/{id}/email-preview?locale=de"),
        None,
    )
    .await;
    let preview = ok_json(res, "preview").await;
    assert!(preview["html"].as_str().unwrap().contains("<"), "{preview}");
    assert!(!preview["subject"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn admin_tokens_are_stored_only_as_keyed_hashes_and_stop_when_revoked() {
    let app = spawn().await;
    let created = tokens::create(&app.state, &Principal::cli(), "deploy", Some(3600))
        .await
        .unwrap();
    assert!(created.token.starts_with("pat_"));
    let dump = app.dump_database().await;
    assert!(
        !dump.contains(created.token.trim_start_matches("pat_")),
        "never in plain"
    );
    let res = call(&app, Who::Token(&created.token), "get", "/keys", None).await;
    let keys = ok_json(res, "keys").await;
    let text = keys.to_string();
    assert!(
        !text.contains("private") && !text.contains("\"d\""),
        "{text}"
    );

    let res = call(
        &app,
        Who::Token(&created.token),
        "post",
        "/keys/rotate",
        None,
    )
    .await;
    assert_eq!(res.status(), 202);

    tokens::revoke(&app.state, &Principal::cli(), &created.id)
        .await
        .unwrap();
    let res = call(&app, Who::Token(&created.token), "get", "/keys", None).await;
    expect_error(res, 401, "invalid_token", "a revoked token").await;

    let other = tokens::create(&app.state, &Principal::cli(), "short", Some(60))
        .await
        .unwrap();
    app.clock.advance(61);
    let res = call(&app, Who::Token(&other.token), "get", "/keys", None).await;
    expect_error(res, 401, "invalid_token", "an expired token").await;
}

// ---- admin-issued sign-in links (SPEC §3.5) ---------------------------------------

/// The person's user id, after signing them in once so they exist.
async fn existing_person(app: &TestApp) -> String {
    signed_in_browser(app, PERSON).await;
    app.rows(&format!("SELECT id FROM users WHERE email = '{PERSON}'"))
        .await[0][0]
        .clone()
}

/// Opens an admin-issued browser link in a fresh browser (there is no
/// asking browser) and confirms it, as device policy `any` lets any
/// browser do. Returns the browser and the answer to the confirmation.
async fn use_admin_link(app: &TestApp, link: &str) -> (Client, Response) {
    let b = browser();
    let res = b.get(link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "/verify-email", "the token leaves the URL");
    let page = b
        .get(app.url("/verify-email"))
        .send()
        .await
        .unwrap()
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
    let res = b
        .post(app.url("/verify-email"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (b, res)
}

/// `/account` opens in `b` by single sign-on (the built-in app's
/// `/authorize` finds the Postern session): no `/login`, no email. Returns
/// the page's text.
async fn assert_account_by_sso(app: &TestApp, b: &Client) -> String {
    let outbox = app.count("outbox").await;
    let mut url = app.url("/account");
    for _ in 0..5 {
        let res = b.get(&url).send().await.unwrap();
        if res.status() == 200 {
            assert!(url.ends_with("/account"), "ended at {url}");
            let page = res.text().await.unwrap();
            assert!(
                text_of(&page).contains(PERSON),
                "the account page is the person's: {page}"
            );
            assert_eq!(app.count("outbox").await, outbox, "no email asked for");
            return text_of(&page);
        }
        assert_eq!(res.status(), 303, "GET {url}");
        let next = location(&res);
        assert!(!next.contains("/login"), "asked to sign in again: {next}");
        url = if next.starts_with('/') {
            app.url(&next)
        } else {
            next
        };
    }
    panic!("/account did not open by single sign-on");
}

/// The person's history items.
async fn events_of(app: &TestApp, t: &str, user_id: &str) -> Vec<Value> {
    let res = call(
        app,
        Who::Token(t),
        "get",
        &format!("/events?user_id={user_id}"),
        None,
    )
    .await;
    ok_json(res, "events").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_emailed_admin_link_signs_the_person_in_once_and_goes_on_to_the_app() {
    let app = spawn().await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let id = create_app(&app, &t, "Linked", &[]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(
        &app,
        Who::Token(&t),
        "patch",
        &format!("/apps/{id}"),
        Some(json!({"initiate_login_uri": "https://app.example/start"})),
    )
    .await;
    ok_json(res, "set initiate_login_uri").await;

    let before = app.inbox();
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/sign-in-link"),
        Some(json!({"client_id": id})),
    )
    .await;
    let answer = ok_json(res, "sign-in-link").await;
    assert_eq!(answer["sent"], true);
    assert!(answer.get("link").is_none(), "a sent link is not shown");
    assert!(answer["expires_at"].as_i64().unwrap() > app.clock_now());
    let email = app.new_email_to(&before, PERSON).await;
    let link = app.local(&email.link.expect("a link in the email"));
    assert!(link.contains("/verify-email?token=pml_"), "{link}");

    let (b, res) = use_admin_link(&app, &link).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "https://app.example/start");
    assert!(set_cookie(res.headers(), "postern_session").is_some());
    assert_account_by_sso(&app, &b).await;

    let res = app.get_json(&browser(), &link).await;
    expect_error(res, 400, "invalid_token", "a second use").await;

    let events = events_of(&app, &t, &user_id).await;
    assert!(
        events.iter().any(|e| e["method"] == "admin_link"
            && e["outcome"] == "success"
            && e["client_id"] == id.as_str()),
        "history shows admin_link: {events:?}"
    );
    let res = call(&app, Who::Token(&t), "get", "/audit", None).await;
    let audit = ok_json(res, "audit").await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.sign_in_link")
        .cloned()
        .expect("an audit entry");
    assert_eq!(entry["actor"], "token:ci");
    assert_eq!(entry["target"], user_id.as_str());
}

#[tokio::test]
async fn a_copied_admin_link_works_once_and_lands_on_account_without_initiate_login_uri() {
    let app = spawn().await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let id = create_app(&app, &t, "Plain", &[]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outbox = app.count("outbox").await;
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/sign-in-link"),
        Some(json!({"client_id": id, "flow": "browser", "send": false})),
    )
    .await;
    let answer = ok_json(res, "copy").await;
    assert_eq!(
        app.count("outbox").await,
        outbox,
        "a copied link is not sent"
    );
    assert!(answer["expires_at"].as_i64().unwrap() > app.clock_now());
    let link = app.local(answer["link"].as_str().expect("the link"));

    let (b, res) = use_admin_link(&app, &link).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).ends_with("/account"), "{}", location(&res));
    let page = assert_account_by_sso(&app, &b).await;
    assert!(
        page.contains("Link from an admin"),
        "the person's history names the admin's link: {page}"
    );
    let res = app.get_json(&browser(), &link).await;
    expect_error(res, 400, "invalid_token", "a second use").await;
    let events = events_of(&app, &t, &user_id).await;
    let admin_links = events
        .iter()
        .filter(|e| e["method"] == "admin_link" && e["outcome"] == "success")
        .count();
    assert_eq!(admin_links, 1, "{events:?}");
}

#[tokio::test]
async fn a_headless_admin_link_is_redeemed_once_by_the_apps_server() {
    let app = spawn().await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let created = create_app(&app, &t, "Server", &[]).await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/sign-in-link"),
        Some(json!({"client_id": id, "flow": "headless", "send": false})),
    )
    .await;
    let answer = ok_json(res, "headless copy").await;
    let link = answer["link"].as_str().unwrap();
    let token = link
        .strip_prefix("https://app.example/cb?token=")
        .unwrap_or_else(|| panic!("redirect_uri?token=: {link}"))
        .to_owned();
    let verify = || {
        back_channel()
            .post(app.url("/api/v1/magic-links/verify"))
            .basic_auth(&id, Some(&secret))
            .json(&json!({"token": token}))
            .send()
    };
    let session = ok_json(verify().await.unwrap(), "verify").await;
    assert_eq!(session["user"]["email"], PERSON);
    assert!(verify().await.unwrap().status().is_client_error(), "once");
    // Not a browser link: /verify-email knows nothing of it.
    let res = app
        .get_json(
            &browser(),
            &app.url(&format!("/verify-email?token={token}")),
        )
        .await;
    expect_error(res, 400, "invalid_token", "headless token in a browser").await;
    let events = events_of(&app, &t, &user_id).await;
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "admin_link" && e["client_id"] == id.as_str()),
        "{events:?}"
    );
}

#[tokio::test]
async fn copying_an_admin_link_is_refused_unless_postern_admin_links_is_copy() {
    let app = spawn_oidc_app_with(&[("POSTERN_ADMIN_EMAILS", ADMIN)]).await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let id = create_app(&app, &t, "NoCopy", &[]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let requests = app.count("login_requests").await;
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/sign-in-link"),
        Some(json!({"client_id": id, "send": false})),
    )
    .await;
    expect_error(
        res,
        403,
        "forbidden",
        "copy without POSTERN_ADMIN_LINKS=copy",
    )
    .await;
    assert_eq!(
        app.count("login_requests").await,
        requests,
        "nothing issued"
    );
    // Sending still works under the default.
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("/users/{user_id}/sign-in-link"),
        Some(json!({"client_id": id})),
    )
    .await;
    assert_eq!(ok_json(res, "send").await["sent"], true);
}

// ---- passkeys (issue 15) ---------------------------------------------------------------

#[tokio::test]
async fn an_apps_passkeys_setting_is_read_and_changed_in_its_one_shape() {
    let app = spawn().await;
    let t = token(&app).await;
    let created = create_app(&app, &t, "Vault", &[]).await;
    assert_eq!(created["settings"]["passkeys"], "optional", "the default");
    let path = format!("/apps/{}", created["client_id"].as_str().unwrap());
    let res = call(
        &app,
        Who::Token(&t),
        "patch",
        &path,
        Some(json!({"settings": {"passkeys": "required_after_first_sign_in"}})),
    )
    .await;
    let changed = ok_json(res, "patch passkeys").await;
    assert_eq!(
        changed["settings"]["passkeys"],
        "required_after_first_sign_in"
    );
    assert_eq!(changed["settings"]["link_ttl"], "15m", "the rest merged");
    let res = call(
        &app,
        Who::Token(&t),
        "patch",
        &path,
        Some(json!({"settings": {"passkeys": "sometimes"}})),
    )
    .await;
    expect_error(res, 400, "invalid_request", "an unknown passkeys value").await;
    let res = call(&app, Who::Token(&t), "get", &path, None).await;
    assert_eq!(
        ok_json(res, "read").await["settings"]["passkeys"],
        "required_after_first_sign_in",
        "the refused PATCH changed nothing"
    );
}

#[tokio::test]
async fn a_persons_passkeys_are_shown_and_an_administrator_deletes_one_with_an_audit_record() {
    use postern_store::{PasskeyQueries as _, StoredPasskey};
    let app = spawn().await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let now = app.clock_now();
    app.state
        .store
        .conn()
        .await
        .unwrap()
        .insert_passkey(&StoredPasskey {
            id: "pk00000000000000000001".to_owned(),
            user_id: user_id.clone(),
            credential_id: "Y3JlZGVudGlhbA".to_owned(),
            user_handle: "00000000-0000-0000-0000-000000000000".to_owned(),
            passkey: "{}".to_owned(),
            sign_count: 3,
            backup_eligible: true,
            backup_state: true,
            transports: Some("internal,hybrid".to_owned()),
            name: "Phone".to_owned(),
            created_at: now,
            last_used_at: Some(now),
        })
        .await
        .unwrap();
    let user_path = format!("/users/{user_id}");
    let res = call(&app, Who::Token(&t), "get", &user_path, None).await;
    let shown = ok_json(res, "user").await;
    let passkeys = shown["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1, "{shown}");
    assert_eq!(passkeys[0]["name"], "Phone");
    assert_eq!(passkeys[0]["device"], "synced");
    assert_eq!(passkeys[0]["last_used_at"], now);
    assert!(
        !shown.to_string().contains("Y3JlZGVudGlhbA"),
        "never the credential itself: {shown}"
    );

    let one = format!("{user_path}/passkeys/pk00000000000000000001");
    let res = call(&app, Who::Token(&t), "delete", &one, None).await;
    assert_eq!(res.status(), 204);
    let res = call(&app, Who::Token(&t), "delete", &one, None).await;
    expect_error(res, 404, "not_found", "deleting it again").await;
    let res = call(&app, Who::Token(&t), "get", &user_path, None).await;
    assert_eq!(ok_json(res, "user").await["passkeys"], json!([]));
    assert_eq!(
        app.rows("SELECT action, target FROM audit_log WHERE action = 'user.passkey_delete'")
            .await,
        vec![vec!["user.passkey_delete".to_owned(), user_id.clone()]]
    );
}

/// An app that signs in only the asking browser, or binds sessions to the
/// asking network, gets no browser link from an administrator (it could
/// never be used: there is no asking browser); the headless flow still
/// works, and nothing is issued by the refusal.
#[tokio::test]
async fn a_browser_admin_link_is_refused_where_the_device_policy_could_not_use_it() {
    let app = spawn().await;
    let t = token(&app).await;
    let user_id = existing_person(&app).await;
    let id = create_app(&app, &t, "Strict", &[]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for settings in [
        json!({"settings": {"device_policy": "same_browser"}}),
        json!({"settings": {"device_policy": "remote"}}),
        json!({"settings": {"device_policy": "any", "bind_ip_range": true}}),
    ] {
        let res = call(
            &app,
            Who::Token(&t),
            "patch",
            &format!("/apps/{id}"),
            Some(settings.clone()),
        )
        .await;
        ok_json(res, "patch").await;
        let (requests, outbox) = (app.count("login_requests").await, app.count("outbox").await);
        let res = call(
            &app,
            Who::Token(&t),
            "post",
            &format!("/users/{user_id}/sign-in-link"),
            Some(json!({"client_id": id, "flow": "browser"})),
        )
        .await;
        expect_error(res, 409, "conflict", &settings.to_string()).await;
        assert_eq!(app.count("login_requests").await, requests);
        assert_eq!(app.count("outbox").await, outbox);
        let res = call(
            &app,
            Who::Token(&t),
            "post",
            &format!("/users/{user_id}/sign-in-link"),
            Some(json!({"client_id": id, "flow": "headless"})),
        )
        .await;
        assert_eq!(ok_json(res, "headless").await["sent"], true);
    }
}
