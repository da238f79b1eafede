//! The store's folded statements (issue 13): several rate limits in one
//! upsert, consuming a request and burning its siblings in one update,
//! writes deferred to the commit, and the app cache. Same guarantees as
//! the one-at-a-time statements they replace, on SQLite and PostgreSQL.

use std::sync::Arc;

use postern_core::crypto::random_id;
use postern_core::{App, AppSettings};
use postern_store::{
    AuthorizationCode, Consume, Defer, LoginKind, LoginRequest, Queries, RateSlot, Session,
    SignInEvent, Store,
};
use postern_testkit::TestDb;
use tokio::sync::Barrier;

const NOW: i64 = 1_700_000_000;

fn app(client_id: &str) -> App {
    App {
        client_id: client_id.to_owned(),
        name: format!("App {client_id}"),
        settings: AppSettings {
            redirect_uris: vec!["https://app.example/cb".to_owned()],
            ..AppSettings::default()
        },
        created_at: NOW,
        updated_at: NOW,
    }
}

fn request(client_id: &str, email: &str) -> LoginRequest {
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
        binding_hash: Some("binding".to_owned()),
        remote_number: None,
        approved_at: None,
        completed_at: None,
        rate_slot: None,
        created_at: NOW,
        expires_at: NOW + 900,
        consumed_at: None,
    }
}

async fn seeded() -> (TestDb, Store) {
    let (db, store) = TestDb::store().await;
    let mut c = store.conn().await.unwrap();
    c.insert_app(&app("app"), None).await.unwrap();
    c.insert_app(&app("other"), None).await.unwrap();
    (db, store)
}

async fn consumed(store: &Store, id: &str) -> bool {
    let r = store.conn().await.unwrap().login_request(id).await.unwrap();
    r.expect("exists").consumed_at.is_some()
}

// ---- several rate limits in one statement ---------------------------------

#[tokio::test]
async fn rate_hits_count_each_limit_once_and_name_the_full_ones() {
    let (_db, store) = TestDb::store().await;
    let mut c = store.conn().await.unwrap();
    let hits = [("ip:a", NOW, 2), ("email:a", NOW, 1), ("app:a", NOW, 5)];
    assert_eq!(c.rate_hits(&hits).await.unwrap(), [true, true, true]);
    // email:a is full now; the others still count (the caller drops its
    // transaction when any is refused).
    assert_eq!(c.rate_hits(&hits).await.unwrap(), [true, false, true]);
    assert_eq!(c.rate_hits(&hits).await.unwrap(), [false, false, true]);
    let counts = c
        .rate_counts(&[
            ("ip:a", NOW),
            ("email:a", NOW),
            ("app:a", NOW),
            ("none", NOW),
        ])
        .await
        .unwrap();
    assert_eq!(counts, [2, 1, 3, 0], "refused hits are not counted");
    // Another window of the same key is another counter.
    assert_eq!(
        c.rate_hits(&[("email:a", NOW + 3600, 1)]).await.unwrap(),
        [true]
    );
    assert_eq!(c.rate_counts(&[("email:a", NOW)]).await.unwrap(), [1]);
    // A limit of zero refuses, counting nothing.
    assert_eq!(
        c.rate_hits(&[("zero", NOW, 0), ("ip:b", NOW, 3)])
            .await
            .unwrap(),
        [false, true]
    );
    assert_eq!(c.rate_counts(&[("zero", NOW)]).await.unwrap(), [0]);
    // The same key twice still counts twice, one at a time.
    assert_eq!(
        c.rate_hits(&[("ip:c", NOW, 1), ("ip:c", NOW, 1)])
            .await
            .unwrap(),
        [true, false]
    );
}

#[tokio::test]
async fn rate_releases_give_back_one_hit_each_never_below_zero() {
    let (_db, store) = TestDb::store().await;
    let mut c = store.conn().await.unwrap();
    c.rate_hits(&[("a", NOW, 5), ("b", NOW, 5)]).await.unwrap();
    c.rate_hits(&[("a", NOW, 5)]).await.unwrap();
    let slot = |key: &str| RateSlot {
        key: key.to_owned(),
        window_start: NOW,
    };
    let (a, b, none) = (slot("a"), slot("b"), slot("none"));
    c.rate_releases(&[&a, &b, &none]).await.unwrap();
    assert_eq!(
        c.rate_counts(&[("a", NOW), ("b", NOW)]).await.unwrap(),
        [1, 0]
    );
    c.rate_releases(&[&a, &b]).await.unwrap();
    c.rate_releases(&[&a, &b]).await.unwrap();
    assert_eq!(
        c.rate_counts(&[("a", NOW), ("b", NOW)]).await.unwrap(),
        [0, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_hits_hold_under_concurrency_inside_transactions() {
    let (db, store) = TestDb::store().await;
    // Twelve instances each count an IP and an address in one statement
    // and keep their transaction only when both counted, as a link
    // request does. The keys come in different orders: no deadlock.
    let mut racers = Vec::new();
    for _ in 0..12 {
        racers.push(Store::connect(&db.url).await.unwrap());
    }
    let barrier = Arc::new(Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = s.begin().await.expect("begin");
                let mut hits = vec![("ip:t", NOW, 4), ("email:t", NOW, 6)];
                if i % 2 == 1 {
                    hits.reverse();
                }
                let counted = tx.rate_hits(&hits).await.expect("hits");
                let all = counted.iter().all(|ok| *ok);
                if all {
                    tx.commit().await.expect("commit");
                }
                all
            })
        })
        .collect();
    let mut kept = 0;
    for t in tasks {
        kept += usize::from(t.await.unwrap());
    }
    assert_eq!(kept, 4, "the IP limit lets exactly four through");
    let counts = store
        .conn()
        .await
        .unwrap()
        .rate_counts(&[("ip:t", NOW), ("email:t", NOW)])
        .await
        .unwrap();
    assert_eq!(counts, [4, 4], "a refused request counts in no limit");
}

// ---- consuming a request burns its siblings --------------------------------

#[tokio::test]
async fn consuming_burns_the_live_requests_of_the_same_address_and_app_only() {
    let (_db, store) = seeded().await;
    let mut c = store.conn().await.unwrap();
    let target = request("app", "a@example.com");
    let sibling = request("app", "a@example.com");
    let other_address = request("app", "b@example.com");
    let other_app = request("other", "a@example.com");
    for r in [&target, &sibling, &other_address, &other_app] {
        c.insert_login_request(r).await.unwrap();
    }
    let got = c
        .consume_burning_siblings(Consume::Token(&target.token_hash), NOW + 10)
        .await
        .unwrap()
        .expect("the live request is consumed");
    assert_eq!(got.id, target.id);
    assert_eq!(got.consumed_at, Some(NOW + 10));
    assert!(consumed(&store, &sibling.id).await, "sibling burnt");
    assert!(!consumed(&store, &other_address.id).await);
    assert!(!consumed(&store, &other_app.id).await);
    // Used now: a second try changes nothing.
    assert!(c
        .consume_burning_siblings(Consume::Token(&target.token_hash), NOW + 11)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_request_that_is_not_live_is_not_consumed_and_burns_nothing() {
    let (_db, store) = seeded().await;
    let mut c = store.conn().await.unwrap();
    let expired = LoginRequest {
        expires_at: NOW - 1,
        ..request("app", "a@example.com")
    };
    let no_account = LoginRequest {
        kind: LoginKind::NoAccount,
        ..request("app", "a@example.com")
    };
    let unapproved = request("app", "a@example.com");
    let sibling = request("app", "a@example.com");
    for r in [&expired, &no_account, &unapproved, &sibling] {
        c.insert_login_request(r).await.unwrap();
    }
    for which in [
        Consume::Token(&expired.token_hash),
        Consume::Id(&no_account.id),
        Consume::Approved(&unapproved.id),
        Consume::Token("unknown"),
        Consume::Id("unknown"),
    ] {
        assert!(c
            .consume_burning_siblings(which, NOW)
            .await
            .unwrap()
            .is_none());
    }
    assert!(!consumed(&store, &sibling.id).await, "nothing burnt");
    assert!(!consumed(&store, &unapproved.id).await);
    // Approved, it is consumed by id (and burns the others).
    assert!(c.approve_remote(&unapproved.id, NOW).await.unwrap());
    let got = c
        .consume_burning_siblings(Consume::Approved(&unapproved.id), NOW)
        .await
        .unwrap()
        .expect("approved and live");
    assert_eq!(got.id, unapproved.id);
    assert!(consumed(&store, &sibling.id).await);
    assert!(consumed(&store, &no_account.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_consumers_exactly_one_gets_the_request() {
    let (db, store) = seeded().await;
    let target = request("app", "a@example.com");
    let siblings: Vec<LoginRequest> = (0..3).map(|_| request("app", "a@example.com")).collect();
    {
        let mut c = store.conn().await.unwrap();
        c.insert_login_request(&target).await.unwrap();
        for s in &siblings {
            c.insert_login_request(s).await.unwrap();
        }
    }
    let mut racers = Vec::new();
    for _ in 0..10 {
        racers.push(Store::connect(&db.url).await.unwrap());
    }
    let barrier = Arc::new(Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let barrier = barrier.clone();
            let (hash, id) = (target.token_hash.clone(), target.id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = s.begin().await.expect("begin");
                let which = if i % 2 == 0 {
                    Consume::Token(&hash)
                } else {
                    Consume::Id(&id)
                };
                let got = tx
                    .consume_burning_siblings(which, NOW)
                    .await
                    .expect("consume");
                tx.commit().await.expect("commit");
                got.is_some()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    for s in &siblings {
        assert!(consumed(&store, &s.id).await);
    }
}

// ---- writes deferred to the commit ------------------------------------------

#[tokio::test]
async fn deferred_writes_land_with_the_commit_and_vanish_with_a_rollback() {
    let (_db, store) = seeded().await;
    let user = store
        .conn()
        .await
        .unwrap()
        .upsert_user_sign_in(&random_id(), "a@example.com", NOW)
        .await
        .unwrap();
    let slot = RateSlot {
        key: "email:a".to_owned(),
        window_start: NOW,
    };
    store
        .conn()
        .await
        .unwrap()
        .rate_hits(&[("email:a", NOW, 5), ("email:a2", NOW, 5)])
        .await
        .unwrap();
    let writes = |tx: &mut postern_store::Tx| {
        let req = request("app", "a@example.com");
        let session = Session {
            user_agent: Some("Mozilla/5.0 (\"quoted\"; $1 ;)".to_owned()),
            ..postern_testkit::session(&user.id, NOW)
        };
        // The code names the session inserted in the same round trip.
        let code = AuthorizationCode {
            code_hash: random_id(),
            client_id: "app".to_owned(),
            user_id: user.id.clone(),
            session_id: Some(session.id.clone()),
            redirect_uri: "https://app.example/cb".to_owned(),
            code_challenge: None,
            nonce: Some("n $2".to_owned()),
            scope: "openid".to_owned(),
            amr: "email".to_owned(),
            auth_time: NOW,
            created_at: NOW,
            expires_at: NOW + 60,
            consumed_at: None,
        };
        let event = SignInEvent {
            id: random_id(),
            user_id: Some(user.id.clone()),
            client_id: "app".to_owned(),
            at: NOW,
            ip: None,
            user_agent: None,
            method: "link".to_owned(),
            outcome: "success".to_owned(),
        };
        tx.defer_burn_browser_requests("app", "binding", NOW);
        tx.defer_login_request(&req);
        tx.defer_rate_release(&slot);
        tx.defer_sign_in_event(&event);
        tx.defer_session(&session);
        tx.defer_authorization_code(&code);
        (req, session, code)
    };

    // Dropped: nothing was sent.
    let earlier = request("app", "a@example.com");
    store
        .conn()
        .await
        .unwrap()
        .insert_login_request(&earlier)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    let (req, session, _) = writes(&mut tx);
    drop(tx);
    let mut c = store.conn().await.unwrap();
    assert!(c.login_request(&req.id).await.unwrap().is_none());
    assert!(c
        .session_by_token(&session.token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(!consumed(&store, &earlier.id).await);
    assert_eq!(c.rate_counts(&[("email:a", NOW)]).await.unwrap(), [1]);

    // Committed: all of it, in order (the earlier request of this browser
    // burnt, the new one live).
    let mut tx = store.begin().await.unwrap();
    let (req, session, code) = writes(&mut tx);
    tx.commit().await.unwrap();
    let stored = c.login_request(&req.id).await.unwrap().expect("stored");
    assert_eq!(stored, req);
    assert!(consumed(&store, &earlier.id).await);
    assert_eq!(
        c.session_by_token(&session.token_hash).await.unwrap(),
        Some(session)
    );
    let redeemed = c
        .consume_authorization_code(&code.code_hash, NOW)
        .await
        .unwrap()
        .expect("the code was stored");
    assert_eq!(redeemed.nonce.as_deref(), Some("n $2"));
    assert_eq!(c.sign_in_events(&user.id, 10).await.unwrap().len(), 1);
    assert_eq!(
        c.rate_counts(&[("email:a", NOW), ("email:a2", NOW)])
            .await
            .unwrap(),
        [0, 1]
    );
}

#[tokio::test]
async fn a_deferred_write_that_fails_fails_the_commit() {
    let (_db, store) = seeded().await;
    let req = request("app", "a@example.com");
    store
        .conn()
        .await
        .unwrap()
        .insert_login_request(&req)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    let fresh = request("app", "b@example.com");
    tx.defer_login_request(&fresh);
    // Same id as a stored request: the unique constraint refuses it.
    tx.defer_login_request(&LoginRequest {
        token_hash: random_id(),
        ..req.clone()
    });
    assert!(tx.commit().await.is_err());
    let mut c = store.conn().await.unwrap();
    assert!(
        c.login_request(&fresh.id).await.unwrap().is_none(),
        "the whole transaction rolled back"
    );
    // The store still writes afterwards.
    let mut tx = store.begin().await.unwrap();
    tx.defer_login_request(&fresh);
    tx.commit().await.unwrap();
    assert!(c.login_request(&fresh.id).await.unwrap().is_some());
}

// ---- the app cache ------------------------------------------------------------

#[tokio::test]
async fn cached_apps_follow_writes_through_the_store_and_apps_changed() {
    let (db, store) = seeded().await;
    let named = |s: &str| App {
        name: s.to_owned(),
        ..app("app")
    };
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "App app");
    assert!(store.app("missing").await.unwrap().is_none());

    // Through a pooled connection: seen at once.
    let mut c = store.conn().await.unwrap();
    assert!(c.update_app(&named("one")).await.unwrap());
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "one");

    // In a transaction: seen once it commits, not before, not if dropped.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.update_app(&named("two")).await.unwrap());
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "one");
    drop(tx);
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "one");
    let mut tx = store.begin().await.unwrap();
    assert!(tx.update_app(&named("two")).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "two");

    // A new app is found as soon as it exists.
    c.insert_app(&app("new"), None).await.unwrap();
    assert!(store.app("new").await.unwrap().is_some());

    // Another instance's write: seen after `apps_changed` (or the TTL).
    let elsewhere = Store::connect(&db.url).await.unwrap();
    assert!(elsewhere
        .conn()
        .await
        .unwrap()
        .update_app(&named("three"))
        .await
        .unwrap());
    store.apps_changed();
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "three");
    assert!(elsewhere
        .conn()
        .await
        .unwrap()
        .update_app(&named("four"))
        .await
        .unwrap());
    tokio::time::sleep(postern_store::APP_CACHE_TTL).await;
    assert_eq!(store.app("app").await.unwrap().unwrap().name, "four");
}
