//! The admin API's people, sessions and history routes that change or
//! export something (SPEC §3.5): deleting a person, listing and ending a
//! session, and the history as CSV — what each does, through real HTTP.

mod support;

use reqwest::Client;
use serde_json::Value;
use support::admin::{
    admin_token, call, ok_json, sign_in_browser, signed_in_browser, spawn_admin_app, Who, ADMIN,
    OWNER, PERSON,
};
use support::*;

/// A browser with its own `User-Agent`, keeping cookies.
fn browser_as(user_agent: &str) -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.rows(&format!("SELECT id FROM users WHERE email = '{email}'"))
        .await[0][0]
        .clone()
}

/// Signs `email` in to `client` through its `/login` page in `b`, with
/// the emailed link.
async fn sign_in_hosted(app: &TestApp, b: &Client, client: &TestClient, email: &str) {
    let (h, sent) = app.hosted_request_with_email(b, client, email).await;
    let link = app.local(sent.link.as_deref().expect("a link"));
    let res = h.browser.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303, "{email} signed in");
}

/// The audit entries of `action`.
async fn audited(app: &TestApp, t: &str, action: &str) -> Vec<Value> {
    let res = call(app, Who::Token(t), "get", "/audit", None).await;
    ok_json(res, "audit").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn deleting_a_person_removes_them_and_their_sessions_with_an_audit_record() {
    let app = spawn_admin_app().await;
    let t = admin_token(&app).await;
    let person = signed_in_browser(&app, PERSON).await;
    let id = user_id(&app, PERSON).await;
    let res = person.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 200, "signed in before");

    let res = call(
        &app,
        Who::Token(&t),
        "delete",
        &format!("/users/{id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);

    let res = call(&app, Who::Token(&t), "get", &format!("/users/{id}"), None).await;
    expect_error(res, 404, "not_found", "the deleted person").await;
    assert_eq!(app.count("users").await, 0, "the person is gone");
    let left = app
        .rows(&format!("SELECT id FROM sessions WHERE user_id = '{id}'"))
        .await;
    assert!(left.is_empty(), "their sessions are gone: {left:?}");
    let res = person.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303, "their browser is signed out");
    let entries = audited(&app, &t, "user.delete").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "token:ci");
    assert_eq!(entries[0]["target"], id.as_str());
    // Again: nothing left to delete.
    let res = call(
        &app,
        Who::Token(&t),
        "delete",
        &format!("/users/{id}"),
        None,
    )
    .await;
    expect_error(res, 404, "not_found", "deleted twice").await;
}

#[tokio::test]
async fn a_live_session_is_listed_with_its_browser_and_ends_when_deleted() {
    let app = spawn_admin_app().await;
    let t = admin_token(&app).await;
    let admin = browser_as("SessionTest/1.0 (Firefox)");
    let signed_in_at = app.clock_now();
    sign_in_browser(&app, &admin, ADMIN).await;
    let id = user_id(&app, ADMIN).await;
    let res = call(&app, Who::Browser(&admin), "get", "/keys", None).await;
    assert_eq!(res.status(), 200, "the session works");

    let res = call(
        &app,
        Who::Token(&t),
        "get",
        &format!("/sessions?user_id={id}"),
        None,
    )
    .await;
    let page = ok_json(res, "sessions").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let s = &items[0];
    assert_eq!(s["user_id"], id.as_str());
    assert_eq!(s["kind"], "browser");
    assert_eq!(s["ip"], "127.0.0.1");
    assert_eq!(s["user_agent"], "SessionTest/1.0 (Firefox)");
    assert_eq!(s["created_at"], signed_in_at);
    assert!(s["last_seen_at"].as_i64().unwrap() >= signed_in_at, "{s}");
    let session_id = s["id"].as_str().unwrap().to_owned();
    // Another person's filter does not show it.
    let res = call(
        &app,
        Who::Token(&t),
        "get",
        "/sessions?user_id=nobody",
        None,
    )
    .await;
    assert_eq!(ok_json(res, "none").await["items"], serde_json::json!([]));

    let path = format!("/sessions/{session_id}");
    let res = call(&app, Who::Token(&t), "delete", &path, None).await;
    assert_eq!(res.status(), 204);
    let res = call(&app, Who::Browser(&admin), "get", "/keys", None).await;
    expect_error(res, 401, "invalid_token", "the ended session").await;
    let res = call(
        &app,
        Who::Token(&t),
        "get",
        &format!("/sessions?user_id={id}"),
        None,
    )
    .await;
    assert_eq!(ok_json(res, "after").await["items"], serde_json::json!([]));
    let entries = audited(&app, &t, "session.end").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["target"], session_id.as_str());
    let res = call(
        &app,
        Who::Token(&t),
        "delete",
        "/sessions/no-such-session",
        None,
    )
    .await;
    expect_error(res, 404, "not_found", "an unknown session").await;
}

/// `GET /events.csv` as `who`.
async fn csv(app: &TestApp, who: Who<'_>, query: &str) -> (String, Vec<Vec<String>>) {
    let res = call(app, who, "get", &format!("/events.csv{query}"), None).await;
    assert_eq!(res.status(), 200, "events.csv{query}");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = res.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,user_id,client_id,ip,user_agent,method,outcome"),
        "the header row"
    );
    // No field of these events holds a comma or a quote: a plain split.
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>();
    for row in &rows {
        assert_eq!(row.len(), 8, "{row:?}");
    }
    (text, rows)
}

#[tokio::test]
async fn history_exports_as_csv_filtered_defused_and_limited_to_an_owners_apps() {
    let app = spawn_admin_app().await;
    let t = admin_token(&app).await;
    let owned = app.create_app(|s| s.owners = vec![OWNER.to_owned()]).await;
    let other = app.create_app(|_| {}).await;
    // A person signs in to the owned app with a formula as their browser.
    sign_in_hosted(&app, &browser_as("=1+1"), &owned, "formula@example.com").await;
    // A wrong code there, and a sign-in to the other app.
    let (h, sent) = app
        .hosted_request_with_email(&browser(), &owned, "typo@example.com")
        .await;
    let res = app
        .submit_code(&h, &wrong_code(sent.code.as_deref().unwrap()))
        .await;
    assert!(res.status().is_client_error());
    sign_in_hosted(&app, &browser(), &other, "else@example.com").await;
    let owner = signed_in_browser(&app, OWNER).await;

    // Every event, one line each, as the JSON list has them.
    let res = call(&app, Who::Token(&t), "get", "/events", None).await;
    let all = ok_json(res, "events").await["items"]
        .as_array()
        .unwrap()
        .len();
    let (text, rows) = csv(&app, Who::Token(&t), "").await;
    assert_eq!(rows.len(), all, "{text}");
    assert!(all >= 4, "{text}");
    // A value starting with `=` is defused.
    assert!(
        rows.iter().any(|r| r[5] == "'=1+1"),
        "the user agent, defused: {text}"
    );
    assert!(rows.iter().flatten().all(|f| !f.starts_with('=')), "{text}");
    // Filters apply.
    let q = format!("?client_id={}&outcome=success", owned.client_id);
    let (text, rows) = csv(&app, Who::Token(&t), &q).await;
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0][3], as_cell(&owned.client_id));
    assert_eq!(rows[0][7], "success");
    let (text, rows) = csv(&app, Who::Token(&t), "?outcome=wrong_code").await;
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0][6], "code");
    let (text, rows) = csv(&app, Who::Token(&t), "?until=1").await;
    assert!(rows.is_empty(), "{text}");

    // An owner sees only their app's rows, and nothing of another app.
    let (text, rows) = csv(&app, Who::Browser(&owner), "").await;
    assert_eq!(rows.len(), 2, "success and wrong_code: {text}");
    for r in &rows {
        assert_eq!(r[3], as_cell(&owned.client_id), "{text}");
    }
    assert!(!text.contains(&other.client_id));
    let res = call(
        &app,
        Who::Browser(&owner),
        "get",
        &format!("/events.csv?client_id={}", other.client_id),
        None,
    )
    .await;
    expect_error(res, 403, "forbidden", "another app's history").await;
    let res = call(
        &app,
        Who::Token(&t),
        "get",
        "/events.csv?outcome=lost",
        None,
    )
    .await;
    expect_error(res, 400, "invalid_request", "an unknown outcome").await;
}

/// `value` as the CSV export writes it: a cell a spreadsheet would read as
/// a formula (`=`, `+`, `-`, `@` first) gets a leading `'`. Client ids are
/// random base64url and start with `-` once in 64.
fn as_cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}
