//! `Store::write`: a write transaction as one async function. On a SQLite
//! file it runs on the writer thread with other callers' functions in one
//! group commit (each in a savepoint of its own); on PostgreSQL it is
//! awaited in place over a transaction of its own. Either way an `Err` keeps nothing of its own
//! writes and nothing else's, and an answer means the commit happened.

use std::sync::Arc;

use postern_core::crypto::random_id;
use postern_store::{
    AuthorizationCode, Consume, Defer, LoginKind, LoginRequest, NewOutboxRow, Queries,
    RefreshToken, Session, SessionQueries, SignInEvent, Store, StoreError, Writes,
};
use postern_testkit::TestDb;
use tokio::sync::Barrier;

const NOW: i64 = 1_700_000_000;

fn event(id: &str) -> SignInEvent {
    SignInEvent {
        id: id.to_owned(),
        user_id: None,
        client_id: "app".to_owned(),
        at: NOW,
        ip: None,
        user_agent: None,
        method: "link".to_owned(),
        outcome: "refused".to_owned(),
    }
}

async fn events(store: &Store) -> Vec<String> {
    let mut conn = store.conn().await.unwrap();
    sqlx::query_scalar("SELECT id FROM sign_in_events ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// The app every login request and event refers to.
async fn with_app(store: &Store) {
    let app = postern_core::App {
        client_id: "app".to_owned(),
        name: "App".to_owned(),
        settings: postern_core::AppSettings {
            redirect_uris: vec!["https://app.example/cb".to_owned()],
            ..Default::default()
        },
        created_at: NOW,
        updated_at: NOW,
    };
    store
        .conn()
        .await
        .unwrap()
        .insert_app(&app, None)
        .await
        .unwrap();
}

/// What a write function may stop with in these tests.
#[derive(Debug)]
enum Stop {
    Decided,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_and_a_stopped_one_keeps_nothing_of_its_own() {
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    let tasks = 48;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .write(async move |w: &mut Writes<'_>| {
                    // Every function counts a hit of one shared limit of 40
                    // and writes its event; every third then stops.
                    let counted = w.rate_hits(&[("shared", NOW, 40)]).await?;
                    w.defer_sign_in_event(&event(&format!("e{i:02}")));
                    if i % 3 == 0 {
                        return Err(Stop::Decided);
                    }
                    Ok(counted[0])
                })
                .await
        }));
    }
    let mut kept = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.await.unwrap() {
            Ok(counted) => {
                assert!(counted, "below the limit every hit counts");
                kept.push(format!("e{i:02}"));
            }
            Err(Stop::Decided) => assert_eq!(i % 3, 0),
            Err(Stop::Store(e)) => panic!("write {i}: {e}"),
        }
    }
    assert_eq!(kept.len(), 32);
    // Exactly the functions that returned Ok left their rows and their hits.
    assert_eq!(events(&store).await, kept);
    let count = store
        .conn()
        .await
        .unwrap()
        .rate_counts(&[("shared", NOW)])
        .await
        .unwrap();
    assert_eq!(count, vec![32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_exactly_across_grouped_writes() {
    let (_db, store) = TestDb::store().await;
    let tasks = 40;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .write(async |w: &mut Writes<'_>| {
                    let counted = w.rate_hits(&[("a", NOW, 10), ("b", NOW, 1000)]).await?;
                    if counted.contains(&false) {
                        return Err(Stop::Decided);
                    }
                    Ok(())
                })
                .await
        }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Stop::Decided) => {}
            Err(Stop::Store(e)) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 10, "exactly the limit's worth of writes went through");
    let counts = store
        .conn()
        .await
        .unwrap()
        .rate_counts(&[("a", NOW), ("b", NOW)])
        .await
        .unwrap();
    // A refused write counted in neither limit.
    assert_eq!(counts, vec![10, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_panics_fails_alone() {
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    let panicking = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(async |w: &mut Writes<'_>| -> Result<(), StoreError> {
                    w.defer_sign_in_event(&event("never"));
                    w.rate_hits(&[("p", NOW, 5)]).await?;
                    panic!("a bug in a write function");
                })
                .await
        })
    };
    let fine = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(async |w: &mut Writes<'_>| {
                    w.defer_sign_in_event(&event("kept"));
                    Ok::<(), StoreError>(())
                })
                .await
        })
    };
    // On SQLite's writer thread the panic is caught and its caller hears
    // an error; elsewhere the function runs in the caller's task, whose
    // panic rolls the transaction back as it unwinds.
    match panicking.await {
        Ok(answer) => assert!(answer.is_err()),
        Err(join) => assert!(join.is_panic()),
    }
    fine.await.unwrap().unwrap();
    assert_eq!(events(&store).await, vec!["kept".to_owned()]);
    let count = store
        .conn()
        .await
        .unwrap()
        .rate_counts(&[("p", NOW)])
        .await
        .unwrap();
    assert_eq!(
        count,
        vec![0],
        "the panicking function's hit was rolled back"
    );
    // The writer still works afterwards.
    store
        .write(async |w: &mut Writes<'_>| {
            w.defer_sign_in_event(&event("after"));
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        events(&store).await,
        vec!["after".to_owned(), "kept".to_owned()]
    );
}

fn request(email: &str, token_hash: &str) -> LoginRequest {
    LoginRequest {
        id: random_id(),
        client_id: "app".to_owned(),
        email: email.to_owned(),
        kind: LoginKind::Link,
        headless: false,
        admin_issued: false,
        token_hash: token_hash.to_owned(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_is_consumed_by_exactly_one_of_many_writes_and_its_sibling_burns() {
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    store
        .write(async |w: &mut Writes<'_>| {
            w.defer_login_request(&request("jo@example.com", "t1"));
            w.defer_login_request(&request("jo@example.com", "t2"));
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap();
    let tasks = 12;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .write(async |w: &mut Writes<'_>| {
                    if !w
                        .consume_burning_siblings(Consume::Token("t1"), NOW + 1)
                        .await?
                    {
                        return Ok(None);
                    }
                    let user = w
                        .upsert_user_sign_in(&random_id(), "jo@example.com", NOW + 1)
                        .await?;
                    Ok::<_, StoreError>(Some(user))
                })
                .await
                .unwrap()
        }));
    }
    let mut users = Vec::new();
    for h in handles {
        users.extend(h.await.unwrap());
    }
    assert_eq!(users.len(), 1, "one write consumed the link");
    assert_eq!(users[0].email, "jo@example.com");
    assert_eq!(users[0].last_sign_in_at, Some(NOW + 1));
    let mut c = store.conn().await.unwrap();
    let t2 = c.login_request_by_token("t2").await.unwrap().unwrap();
    assert_eq!(t2.consumed_at, Some(NOW + 1), "the sibling burnt with it");
    let stored = c.user_by_email("jo@example.com").await.unwrap().unwrap();
    assert_eq!(stored.id, users[0].id);
}

fn code(hash: &str, user_id: &str, session_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash.to_owned(),
        client_id: "app".to_owned(),
        user_id: user_id.to_owned(),
        session_id: Some(session_id.to_owned()),
        redirect_uri: "https://app.example/cb".to_owned(),
        code_challenge: None,
        nonce: Some("n".to_owned()),
        scope: "openid offline_access".to_owned(),
        amr: "email".to_owned(),
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW + 60,
        consumed_at: None,
    }
}

/// The token endpoint's transaction: a code consumed, its session and
/// person read, a refresh token and the code's family written after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_redeemed_by_exactly_one_of_many_writes_with_its_session_and_person() {
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    let user = store
        .write(async |w: &mut Writes<'_>| {
            let user = w
                .upsert_user_sign_in(&random_id(), "kim@example.com", NOW)
                .await?;
            let session = Session {
                id: "s1".to_owned(),
                token_hash: "sh1".to_owned(),
                user_agent: Some("Firefox".to_owned()),
                passkey_ok: true,
                ..postern_testkit::session(&user.id, NOW)
            };
            w.defer_session(&session);
            w.defer_authorization_code(&code("c1", &user.id, "s1"));
            w.defer_authorization_code(&code("c2", &user.id, "s1"));
            Ok::<_, StoreError>(user)
        })
        .await
        .unwrap();

    // A redemption that decides to stop keeps the code unused.
    let stopped = store
        .write(async |w: &mut Writes<'_>| {
            let grant = w.consume_authorization_code("c2", NOW + 1).await?;
            assert!(grant.is_some(), "c2 is live");
            Err::<(), Stop>(Stop::Decided)
        })
        .await;
    assert!(matches!(stopped, Err(Stop::Decided)));

    let tasks = 12;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .write(async move |w: &mut Writes<'_>| {
                    let Some(grant) = w.consume_authorization_code("c1", NOW + 2).await? else {
                        return Ok(None);
                    };
                    let session = w.session(grant.session_id.as_deref().unwrap()).await?;
                    let person = w.user(&grant.user_id).await?;
                    w.defer_code_family("c1", &format!("f{i}"));
                    w.defer_refresh_token(&RefreshToken {
                        token_hash: format!("r{i}"),
                        family_id: format!("f{i}"),
                        session_id: grant.session_id.clone().unwrap(),
                        client_id: "app".to_owned(),
                        user_id: grant.user_id.clone(),
                        scope: grant.scope.clone(),
                        created_at: NOW + 2,
                        used_at: None,
                        revoked_at: None,
                    });
                    Ok::<_, StoreError>(Some((i, grant, session, person)))
                })
                .await
                .unwrap()
        }));
    }
    let mut won = Vec::new();
    for h in handles {
        won.extend(h.await.unwrap());
    }
    assert_eq!(won.len(), 1, "one write redeemed the code");
    let (i, grant, session, person) = won.pop().unwrap();
    assert_eq!(grant.consumed_at, Some(NOW + 2));
    assert_eq!(grant.nonce.as_deref(), Some("n"));
    let session = session.expect("its session");
    assert_eq!(session.user_agent.as_deref(), Some("Firefox"));
    assert!(session.passkey_ok);
    assert_eq!(person, Some(user.clone()));

    let mut c = store.conn().await.unwrap();
    let refresh = c.refresh_token(&format!("r{i}")).await.unwrap();
    assert_eq!(refresh.map(|t| t.family_id), Some(format!("f{i}")));
    assert_eq!(
        c.code_issued("c1", "app").await.unwrap(),
        Some((Some("s1".to_owned()), Some(format!("f{i}"))))
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.consume_authorization_code("c2", NOW + 3)
            .await
            .unwrap()
            .is_some(),
        "the stopped redemption gave c2 back"
    );
    assert!(tx
        .consume_authorization_code("c1", NOW + 3)
        .await
        .unwrap()
        .is_none());
}

/// The headless API's sign-in: the session goes in with the app's subject
/// and its first refresh token, deferred together with the person's
/// creation before them (one statement on PostgreSQL).
#[tokio::test]
async fn a_headless_session_is_written_with_its_subject_and_refresh_token() {
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    let user = store
        .write(async |w: &mut Writes<'_>| {
            let user = w
                .upsert_user_sign_in(&random_id(), "kim@example.com", NOW)
                .await?;
            let session = Session {
                id: "hs1".to_owned(),
                token_hash: "hsh1".to_owned(),
                client_id: Some("app".to_owned()),
                kind: "headless".to_owned(),
                ..postern_testkit::session(&user.id, NOW)
            };
            w.defer_headless_session(&session, "sub-of-kim");
            w.defer_refresh_token(&RefreshToken {
                token_hash: "hr1".to_owned(),
                family_id: "hs1".to_owned(),
                session_id: "hs1".to_owned(),
                client_id: "app".to_owned(),
                user_id: user.id.clone(),
                scope: "openid email".to_owned(),
                created_at: NOW,
                used_at: None,
                revoked_at: None,
            });
            Ok::<_, StoreError>(user)
        })
        .await
        .unwrap();

    let mut c = store.conn().await.unwrap();
    let session = c.session("hs1").await.unwrap().expect("the session");
    assert_eq!(session.user_id, user.id);
    let refresh = c.refresh_token("hr1").await.unwrap().expect("its token");
    assert_eq!(
        (refresh.family_id.as_str(), refresh.user_id.as_str()),
        ("hs1", user.id.as_str())
    );
    drop(c);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.revoke_subject_sessions("app", "someone-else", NOW + 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        tx.revoke_subject_sessions("app", "sub-of-kim", NOW + 1)
            .await
            .unwrap(),
        1,
        "the session carries the app's subject"
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_outbox_row_is_written_leased_or_not_and_a_duplicate_is_a_conflict() {
    let (_db, store) = TestDb::store().await;
    let row = |id: &str, lease: Option<(String, i64)>| NewOutboxRow {
        id: id.to_owned(),
        message_id: format!("<{id}@x>"),
        payload: "sealed".to_owned(),
        now: NOW,
        expires_at: NOW + 900,
        lease,
        meta: Some((Some("app".to_owned()), "j…@example.com".to_owned())),
    };
    let (leased, free) = (
        row("m1", Some(("me".to_owned(), NOW + 10))),
        row("m2", None),
    );
    store
        .write(async move |w: &mut Writes<'_>| {
            w.defer_outbox(&leased);
            w.defer_outbox(&free);
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap();
    let hint: Option<String> = {
        let mut conn = store.conn().await.unwrap();
        sqlx::query_scalar("SELECT recipient_hint FROM outbox WHERE id = 'm1'")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(
        hint.as_deref(),
        Some("j…@example.com"),
        "the metadata went in with the row"
    );
    // Only the unleased one is due for a worker now.
    let claimed = store
        .claim_outbox(NOW, "other", NOW + 10, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m2"]);
    assert_eq!(claimed[0].attempts, 1);
    let again = row("m1", None);
    let err = store
        .write(async move |w: &mut Writes<'_>| {
            w.defer_outbox(&again);
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(
        store.conn().await.unwrap().outbox_pending().await.unwrap(),
        2
    );
}

#[tokio::test]
async fn on_the_sqlite_writer_a_function_that_awaits_anything_but_the_database_keeps_nothing() {
    if postern_testkit::backend() != postern_store::Backend::Sqlite {
        return;
    }
    let (_db, store) = TestDb::store().await;
    with_app(&store).await;
    let answer = store
        .write(async |w: &mut Writes<'_>| {
            w.defer_sign_in_event(&event("never"));
            // Not a statement: on the writer thread nothing else may be
            // waited for (it would stall every other sign-in).
            tokio::task::yield_now().await;
            Ok::<(), StoreError>(())
        })
        .await;
    assert!(answer.is_err());
    assert!(events(&store).await.is_empty());
}
