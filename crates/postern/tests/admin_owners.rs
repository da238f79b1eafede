//! What an app owner may do with the people of their app (SPEC §3.5:
//! "only their own apps, their users' sessions and history in those apps,
//! never server-wide settings"): read them, see and end their sessions
//! there and send them a sign-in link — but never disable, enable or
//! delete their Postern account, which signs in to every app; not in the
//! API, not in the panel.

mod support;

use serde_json::json;
use support::admin::{admin_token, call, ok_json, signed_in_browser, spawn_admin_app, Who, OWNER};
use support::*;

const PATRON: &str = "patron@example.com";

#[tokio::test]
async fn owners_reach_their_peoples_sessions_and_links_but_never_their_accounts() {
    let app = spawn_admin_app().await;
    let t = admin_token(&app).await;
    let owned = app.create_app(|s| s.owners = vec![OWNER.to_owned()]).await;
    // A person signs in to the owner's app (a code is issued for it).
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &owned, PATRON)
        .await;
    let res = h
        .browser
        .get(app.local(sent.link.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in to the owned app");
    let id = app
        .rows(&format!("SELECT id FROM users WHERE email = '{PATRON}'"))
        .await[0][0]
        .clone();
    let owner = signed_in_browser(&app, OWNER).await;
    let user = format!("/users/{id}");

    // What the owner may do.
    let res = call(&app, Who::Browser(&owner), "get", &user, None).await;
    assert_eq!(ok_json(res, "read").await["email"], PATRON);
    let res = call(
        &app,
        Who::Browser(&owner),
        "post",
        &format!("{user}/sign-in-link"),
        Some(json!({"client_id": owned.client_id})),
    )
    .await;
    assert_eq!(ok_json(res, "sign-in link").await["sent"], true);

    // What the owner may not: the account itself, however it is asked.
    for (method, path) in [
        ("post", format!("{user}/disable")),
        ("post", format!("{user}/enable")),
        ("delete", user.clone()),
    ] {
        let body = (method == "post").then(|| json!({}));
        let res = call(&app, Who::Browser(&owner), method, &path, body).await;
        expect_error(
            res,
            403,
            "forbidden",
            &format!("{method} {path} by an owner"),
        )
        .await;
    }
    assert_eq!(
        app.rows(&format!("SELECT disabled_at FROM users WHERE id = '{id}'"))
            .await,
        vec![vec!["NULL".to_owned()]],
        "the person is still there and enabled"
    );
    let audited = app
        .rows("SELECT action FROM audit_log WHERE action LIKE 'user.%'")
        .await;
    assert_eq!(audited, vec![vec!["user.sign_in_link".to_owned()]]);

    // The panel shows the owner no account buttons and refuses the forms.
    let page = owner
        .get(app.url(&format!("/admin{user}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(PATRON), "their page");
    for action in ["/disable", "/enable", "/delete\""] {
        assert!(
            !page.contains(&format!("/admin{user}{action}")),
            "no {action} form for an owner"
        );
    }
    let csrf = input_value(&page, "csrf_token").expect("a csrf token");
    for action in ["disable", "delete"] {
        let res = owner
            .post(app.url(&format!("/admin{user}/{action}")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            403,
            "panel {action} by an owner: not even asked"
        );
    }
    // An administrator's page has them.
    let admin = signed_in_browser(&app, support::admin::ADMIN).await;
    let page = admin
        .get(app.url(&format!("/admin{user}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/admin{user}/disable")), "{page}");

    // Their sessions in the owner's app: listed and ended by the owner.
    let res = call(
        &app,
        Who::Browser(&owner),
        "get",
        &format!("/sessions?user_id={id}"),
        None,
    )
    .await;
    let sessions = ok_json(res, "sessions").await;
    let session_id = sessions["items"][0]["id"].as_str().expect("their session");
    let res = call(
        &app,
        Who::Browser(&owner),
        "delete",
        &format!("/sessions/{session_id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 204, "the owner ends it");

    // An administrator may disable the account.
    let res = call(
        &app,
        Who::Token(&t),
        "post",
        &format!("{user}/disable"),
        None,
    )
    .await;
    assert_eq!(ok_json(res, "admin disable").await["disabled"], true);
}
