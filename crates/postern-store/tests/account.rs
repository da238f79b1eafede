//! The store contract of the account page (`AccountQueries`), run against
//! whichever database `POSTERN_TEST_BACKEND` names (SQLite by default,
//! `postgres` for PostgreSQL). Both must pass.

use postern_core::crypto::random_id;
use postern_core::{App, AppSettings, Branding};
use postern_store::{
    AccountQueries, AuthorizationCode, Conn, LoginKind, LoginRequest, Queries, RefreshToken,
    Session, SessionQueries, SignInEvent, Store, User,
};
use postern_testkit::TestDb;

const NOW: i64 = 1_700_000_000;

async fn conn(store: &Store) -> Conn {
    store.conn().await.expect("a pooled connection")
}

async fn seed_app(store: &Store, client_id: &str, brand: Option<&str>) {
    let app = App {
        client_id: client_id.to_owned(),
        name: format!("App {client_id}"),
        settings: AppSettings {
            redirect_uris: vec!["https://app.example/cb".to_owned()],
            branding: Branding {
                name: brand.map(str::to_owned),
                ..Branding::default()
            },
            ..AppSettings::default()
        },
        created_at: NOW,
        updated_at: NOW,
    };
    conn(store)
        .await
        .insert_app(&app, None)
        .await
        .expect("insert app");
}

async fn seed_user(store: &Store, email: &str) -> User {
    conn(store)
        .await
        .upsert_user_sign_in(&random_id(), email, NOW)
        .await
        .expect("upsert user")
}

fn session(user_id: &str) -> Session {
    postern_testkit::session(user_id, NOW)
}

fn refresh(session: &Session, client_id: &str) -> RefreshToken {
    RefreshToken {
        token_hash: random_id(),
        family_id: random_id(),
        session_id: session.id.clone(),
        client_id: client_id.to_owned(),
        user_id: session.user_id.clone(),
        scope: "openid offline_access".to_owned(),
        created_at: NOW,
        used_at: None,
        revoked_at: None,
    }
}

fn event(user_id: &str, client_id: &str) -> SignInEvent {
    SignInEvent {
        id: random_id(),
        user_id: Some(user_id.to_owned()),
        client_id: client_id.to_owned(),
        at: NOW,
        ip: Some("2001:db8::1".to_owned()),
        user_agent: Some("Mozilla/5.0".to_owned()),
        method: "link".to_owned(),
        outcome: "success".to_owned(),
    }
}

fn login_request(client_id: &str, email: &str) -> LoginRequest {
    LoginRequest {
        id: random_id(),
        client_id: client_id.to_owned(),
        email: email.to_owned(),
        kind: LoginKind::Link,
        headless: false,
        admin_issued: false,
        token_hash: random_id(),
        code_hash: random_id(),
        code_attempts: 0,
        redirect_uri: "https://app.example/cb".to_owned(),
        state: None,
        nonce: None,
        code_challenge: None,
        scope: "openid email".to_owned(),
        locale: "en".to_owned(),
        ip: None,
        user_agent: None,
        binding_hash: None,
        remote_number: None,
        approved_at: None,
        completed_at: None,
        rate_slot: None,
        created_at: NOW,
        expires_at: NOW + 900,
        consumed_at: None,
    }
}

fn code(client_id: &str, user_id: &str, session_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: random_id(),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        session_id: Some(session_id.to_owned()),
        redirect_uri: "https://app.example/cb".to_owned(),
        code_challenge: None,
        nonce: None,
        scope: "openid".to_owned(),
        amr: "email".to_owned(),
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW + 60,
        consumed_at: None,
    }
}

/// Rows of `table` whose `column` equals `value`.
async fn count_where(store: &Store, table: &str, column: &str, value: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"))
        .bind(value)
        .fetch_one(&mut *conn(store).await)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_users_grants_are_listed_with_their_apps_newest_change_first() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "calendar", Some("Calendar")).await;
    seed_app(&store, "notes", None).await;
    seed_app(&store, "unused", None).await;
    let alice = seed_user(&store, "alice@example.com").await;
    let bob = seed_user(&store, "bob@example.com").await;
    let mut c = conn(&store).await;
    c.upsert_grant(&alice.id, "calendar", "openid email", NOW)
        .await
        .unwrap();
    c.upsert_grant(&alice.id, "notes", "openid", NOW + 10)
        .await
        .unwrap();
    c.upsert_grant(&bob.id, "unused", "openid", NOW)
        .await
        .unwrap();

    let grants = c.user_grants(&alice.id).await.unwrap();
    let listed: Vec<(&str, &str, &str, i64)> = grants
        .iter()
        .map(|g| {
            (
                g.app.client_id.as_str(),
                g.app.display_name(),
                g.scope.as_str(),
                g.updated_at,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("notes", "App notes", "openid", NOW + 10),
            ("calendar", "Calendar", "openid email", NOW),
        ],
        "only alice's grants, with app names, newest change first"
    );
    assert_eq!(grants[1].created_at, NOW);
    assert!(c.user_grants("nobody").await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_a_grant_forgets_only_that_app_for_that_user() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "calendar", None).await;
    seed_app(&store, "notes", None).await;
    let alice = seed_user(&store, "alice@example.com").await;
    let bob = seed_user(&store, "bob@example.com").await;
    let mut c = conn(&store).await;
    for (user, app) in [(&alice, "calendar"), (&alice, "notes"), (&bob, "calendar")] {
        c.upsert_grant(&user.id, app, "openid", NOW).await.unwrap();
    }
    assert!(c.delete_grant(&alice.id, "calendar").await.unwrap());
    assert!(
        !c.delete_grant(&alice.id, "calendar").await.unwrap(),
        "a second delete finds nothing"
    );
    assert_eq!(c.grant(&alice.id, "calendar").await.unwrap(), None);
    assert!(c.grant(&alice.id, "notes").await.unwrap().is_some());
    assert!(c.grant(&bob.id, "calendar").await.unwrap().is_some());
}

#[tokio::test]
async fn revoking_an_apps_refresh_tokens_spares_other_apps_and_users() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "calendar", None).await;
    seed_app(&store, "notes", None).await;
    let alice = seed_user(&store, "alice@example.com").await;
    let bob = seed_user(&store, "bob@example.com").await;
    let mut c = conn(&store).await;
    let (sa, sb) = (session(&alice.id), session(&bob.id));
    c.insert_session(&sa).await.unwrap();
    c.insert_session(&sb).await.unwrap();
    let mine = refresh(&sa, "calendar");
    let mine_used = RefreshToken {
        used_at: Some(NOW),
        ..refresh(&sa, "calendar")
    };
    let other_app = refresh(&sa, "notes");
    let other_user = refresh(&sb, "calendar");
    for t in [&mine, &mine_used, &other_app, &other_user] {
        c.insert_refresh_token(t).await.unwrap();
    }
    assert_eq!(
        c.revoke_app_refresh_tokens(&alice.id, "calendar", NOW + 5)
            .await
            .unwrap(),
        2
    );
    let revoked_at = |t: &RefreshToken| t.token_hash.clone();
    for (t, revoked) in [
        (&mine, true),
        (&mine_used, true),
        (&other_app, false),
        (&other_user, false),
    ] {
        let stored = c.refresh_token(&revoked_at(t)).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at.is_some(), revoked, "{t:?}");
    }
    assert!(
        c.use_refresh_token(&mine.token_hash, NOW + 6)
            .await
            .unwrap()
            .is_none(),
        "a revoked token cannot be used"
    );
    assert_eq!(
        c.revoke_app_refresh_tokens(&alice.id, "calendar", NOW + 7)
            .await
            .unwrap(),
        0,
        "already revoked ones keep their time"
    );
    // The session itself lives on: only the app lost its access.
    assert!(c
        .session(&sa.id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
}

#[tokio::test]
async fn deleting_a_user_removes_everything_that_names_them_and_nothing_else() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "calendar", None).await;
    let hostile = r#"bob"e"i'o;aü@example.com"#;
    let alice = seed_user(&store, hostile).await;
    let bob = seed_user(&store, "bob@example.com").await;
    let mut tx = store.begin().await.unwrap();
    for user in [&alice, &bob] {
        let s = session(&user.id);
        tx.insert_session(&s).await.unwrap();
        tx.insert_refresh_token(&refresh(&s, "calendar"))
            .await
            .unwrap();
        tx.insert_authorization_code(&code("calendar", &user.id, &s.id))
            .await
            .unwrap();
        tx.upsert_grant(&user.id, "calendar", "openid", NOW)
            .await
            .unwrap();
        tx.insert_sign_in_event(&event(&user.id, "calendar"))
            .await
            .unwrap();
        tx.insert_login_request(&login_request("calendar", &user.email))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_user(&alice.id).await.unwrap());
    tx.commit().await.unwrap();

    for (table, column) in [
        ("users", "id"),
        ("sessions", "user_id"),
        ("refresh_tokens", "user_id"),
        ("authorization_codes", "user_id"),
        ("grants", "user_id"),
        ("sign_in_events", "user_id"),
    ] {
        assert_eq!(
            count_where(&store, table, column, &alice.id).await,
            0,
            "{table} still names the deleted user"
        );
        assert_eq!(
            count_where(&store, table, column, &bob.id).await,
            1,
            "{table} lost another user's row"
        );
    }
    assert_eq!(
        count_where(&store, "login_requests", "email", hostile).await,
        0
    );
    assert_eq!(
        count_where(&store, "login_requests", "email", "bob@example.com").await,
        1
    );
    let mut c = conn(&store).await;
    assert_eq!(c.user_by_email(hostile).await.unwrap(), None);
    assert!(
        !c.delete_user(&alice.id).await.unwrap(),
        "deleting again finds nothing"
    );

    // The address may sign up again: a new user with a new id.
    let again = c
        .upsert_user_sign_in(&random_id(), hostile, NOW + 60)
        .await
        .unwrap();
    assert_ne!(again.id, alice.id);
    assert_eq!(again.created_at, NOW + 60);
}

#[tokio::test]
async fn a_rolled_back_deletion_changes_nothing() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "calendar", None).await;
    let alice = seed_user(&store, "alice@example.com").await;
    let mut c = conn(&store).await;
    c.insert_sign_in_event(&event(&alice.id, "calendar"))
        .await
        .unwrap();
    drop(c);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_user(&alice.id).await.unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(count_where(&store, "users", "id", &alice.id).await, 1);
    assert_eq!(
        count_where(&store, "sign_in_events", "user_id", &alice.id).await,
        1
    );
}
