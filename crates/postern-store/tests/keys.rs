//! Store contract for signing keys, on whichever database
//! `POSTERN_TEST_BACKEND` names (SQLite by default, `postgres`).

use std::sync::Arc;

use postern_store::{KeyQueries, Store, StoreError, StoredKey};
use postern_testkit::TestDb;
use tokio::sync::Barrier;

const NOW: i64 = 1_700_000_000;

fn key(kid: &str, state: &str, created_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: "EdDSA".to_owned(),
        public_jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"{kid}"}}"#),
        private_key: "v1.c2VhbGVk".to_owned(),
        state: state.to_owned(),
        created_at,
        activated_at: (state == "active").then_some(created_at),
        retired_at: None,
    }
}

#[tokio::test]
async fn keys_are_stored_and_listed_oldest_first() {
    let (_db, store) = TestDb::store().await;
    let mut conn = store.conn().await.unwrap();
    assert!(conn.signing_keys().await.unwrap().is_empty());

    let hostile = r#"bob"e"i'o;aü"#;
    let mut second = key("k2", "next", NOW + 10);
    second.public_jwk = format!(r#"{{"note":"{}"}}"#, hostile.replace('"', "\\\""));
    second.alg = "RS256".to_owned();
    conn.insert_signing_key(&second).await.unwrap();
    let first = key("k1", "active", NOW);
    conn.insert_signing_key(&first).await.unwrap();

    assert_eq!(conn.signing_keys().await.unwrap(), vec![first, second]);
}

#[tokio::test]
async fn a_kid_is_stored_once() {
    let (_db, store) = TestDb::store().await;
    let mut conn = store.conn().await.unwrap();
    conn.insert_signing_key(&key("k1", "active", NOW))
        .await
        .unwrap();
    let again = conn.insert_signing_key(&key("k1", "next", NOW + 1)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
}

#[tokio::test]
async fn state_changes_are_conditional_and_record_their_time() {
    let (_db, store) = TestDb::store().await;
    let mut conn = store.conn().await.unwrap();
    conn.insert_signing_key(&key("old", "active", NOW))
        .await
        .unwrap();
    conn.insert_signing_key(&key("new", "next", NOW + 10))
        .await
        .unwrap();

    assert!(conn
        .set_signing_key_state("new", "active", NOW + 100, "next")
        .await
        .unwrap());
    assert!(conn
        .set_signing_key_state("old", "retired", NOW + 100, "active")
        .await
        .unwrap());
    // Already moved: the condition no longer holds.
    assert!(!conn
        .set_signing_key_state("new", "active", NOW + 200, "next")
        .await
        .unwrap());
    assert!(!conn
        .set_signing_key_state("old", "retired", NOW + 200, "active")
        .await
        .unwrap());
    assert!(!conn
        .set_signing_key_state("missing", "active", NOW, "next")
        .await
        .unwrap());

    let keys = conn.signing_keys().await.unwrap();
    let old = keys.iter().find(|k| k.kid == "old").unwrap();
    let new = keys.iter().find(|k| k.kid == "new").unwrap();
    assert_eq!(
        (old.state.as_str(), old.activated_at, old.retired_at),
        ("retired", Some(NOW), Some(NOW + 100))
    );
    assert_eq!(
        (new.state.as_str(), new.activated_at, new.retired_at),
        ("active", Some(NOW + 100), None)
    );
}

#[tokio::test]
async fn keys_can_be_deleted() {
    let (_db, store) = TestDb::store().await;
    let mut conn = store.conn().await.unwrap();
    conn.insert_signing_key(&key("k1", "retired", NOW))
        .await
        .unwrap();
    conn.insert_signing_key(&key("k2", "active", NOW))
        .await
        .unwrap();
    assert!(conn.delete_signing_key("k1").await.unwrap());
    assert!(!conn.delete_signing_key("k1").await.unwrap());
    let left: Vec<String> = conn
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(left, ["k2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_instances_promoting_one_key_at_once_exactly_one_wins() {
    let (db, store) = TestDb::store().await;
    store
        .conn()
        .await
        .unwrap()
        .insert_signing_key(&key("k1", "next", NOW))
        .await
        .unwrap();

    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        // One pool per racer, as separate server instances would have.
        let racer = Store::connect(&db.url).await.unwrap();
        let mut conn = racer.conn().await.unwrap();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            conn.set_signing_key_state("k1", "active", NOW + i as i64, "next")
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    let keys = store.conn().await.unwrap().signing_keys().await.unwrap();
    assert_eq!(keys[0].state, "active");
}
