//! Signing keys across instances and through a whole rotation, on the
//! backend `POSTERN_TEST_BACKEND` names.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use postern_auth::keys::{KeyError, KeyManager, PUBLISH_BEFORE_USE, RETIRED_KEEP, ROTATE_AFTER};
use postern_core::jose::{Alg, Check, JoseError, KeyState};
use postern_core::{Clock, ManualClock, MasterKey, Secrets};
use postern_store::{KeyQueries, Store, StoredKey};
use postern_testkit::TestDb;
use serde_json::{json, Value};

const ISS: &str = "https://id.example";

fn secrets() -> Arc<Secrets> {
    Arc::new(Secrets::new(
        &MasterKey::from_hex(&"ab".repeat(32)).unwrap(),
    ))
}

async fn manager(store: &Store, clock: &Arc<ManualClock>) -> KeyManager {
    KeyManager::load(store.clone(), secrets(), clock.clone())
        .await
        .expect("load keys")
}

async fn stored(store: &Store) -> Vec<StoredKey> {
    store.conn().await.unwrap().signing_keys().await.unwrap()
}

fn jwks_kids(keys: &KeyManager) -> BTreeSet<String> {
    keys.keys().jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn signer(keys: &KeyManager, alg: Alg) -> String {
    keys.keys().signer(alg).expect("an active key").kid.clone()
}

/// Claims valid for a year, so only the keys decide whether they verify.
fn claims(clock: &ManualClock) -> Value {
    json!({ "iss": ISS, "aud": "app", "sub": "u", "iat": clock.now(), "exp": clock.now() + 365 * 86_400 })
}

fn verify(keys: &KeyManager, clock: &ManualClock, token: &str) -> Result<Value, JoseError> {
    let check = Check {
        issuer: ISS,
        audience: Some("app"),
        now: clock.now(),
        leeway: 0,
    };
    keys.keys().verify(token, &Alg::ALL, Some("JWT"), &check)
}

#[tokio::test]
async fn the_first_start_creates_one_active_key_per_algorithm() {
    let (_db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let keys = manager(&store, &clock).await;

    let rows = stored(&store).await;
    assert_eq!(rows.len(), 3);
    for alg in Alg::ALL {
        let row = rows.iter().find(|k| k.alg == alg.as_str()).unwrap();
        assert_eq!(
            (row.state.as_str(), row.activated_at),
            ("active", Some(clock.now()))
        );
        assert_eq!(signer(&keys, alg), row.kid);
        let token = keys.sign(alg, "JWT", claims(&clock)).await.unwrap();
        assert_eq!(verify(&keys, &clock, &token).unwrap(), claims(&clock));
    }
    assert_eq!(jwks_kids(&keys).len(), 3);
}

#[tokio::test]
async fn instances_share_their_keys() {
    let (db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let first = manager(&store, &clock).await;
    let other_store = Store::connect(&db.url).await.unwrap();
    let second = manager(&other_store, &clock).await;

    assert_eq!(jwks_kids(&first), jwks_kids(&second));
    assert_eq!(
        stored(&store).await.len(),
        3,
        "the second instance made no keys"
    );
    let token = first.sign(Alg::RS256, "JWT", claims(&clock)).await.unwrap();
    assert!(verify(&second, &clock, &token).is_ok());
}

#[tokio::test]
async fn a_rotation_publishes_first_signs_later_and_forgets_at_last() {
    let (db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let keys = manager(&store, &clock).await;
    let other = manager(&Store::connect(&db.url).await.unwrap(), &clock).await;
    let old: Vec<String> = Alg::ALL.iter().map(|&a| signer(&keys, a)).collect();
    let before: Vec<String> = {
        let mut tokens = Vec::new();
        for alg in Alg::ALL {
            tokens.push(keys.sign(alg, "JWT", claims(&clock)).await.unwrap());
        }
        tokens
    };

    // Published at once, not signing yet.
    let new = keys.rotate().await.unwrap();
    assert_eq!(new.len(), 3);
    assert!(
        keys.rotate().await.unwrap().is_empty(),
        "a rotation is already under way"
    );
    assert_eq!(jwks_kids(&keys).len(), 6);
    assert!(new.iter().all(|kid| jwks_kids(&keys).contains(kid)));
    let still: Vec<String> = Alg::ALL.iter().map(|&a| signer(&keys, a)).collect();
    assert_eq!(still, old);
    other.tick().await.unwrap();
    assert_eq!(
        jwks_kids(&other),
        jwks_kids(&keys),
        "other instances publish it at their next tick"
    );

    // Not before it has been published long enough.
    clock.advance(PUBLISH_BEFORE_USE - 1);
    keys.tick().await.unwrap();
    assert_eq!(
        Alg::ALL
            .iter()
            .map(|&a| signer(&keys, a))
            .collect::<Vec<_>>(),
        old
    );

    // Then the new keys sign, the old ones are retired but still published.
    clock.advance(1);
    keys.tick().await.unwrap();
    other.refresh().await.unwrap();
    for (i, alg) in Alg::ALL.into_iter().enumerate() {
        assert!(new.contains(&signer(&keys, alg)), "{alg}");
        assert_eq!(signer(&other, alg), signer(&keys, alg), "{alg}");
        let token = keys.sign(alg, "JWT", claims(&clock)).await.unwrap();
        assert!(verify(&other, &clock, &token).is_ok(), "{alg}");
        assert!(
            verify(&keys, &clock, &before[i]).is_ok(),
            "{alg}: a token signed before still verifies"
        );
    }
    let rows = stored(&store).await;
    for kid in &old {
        let row = rows.iter().find(|k| &k.kid == kid).unwrap();
        assert_eq!(
            (row.state.as_str(), row.retired_at),
            ("retired", Some(clock.now()))
        );
        assert!(jwks_kids(&keys).contains(kid));
    }
    // Ticks that find nothing to do change nothing.
    other.tick().await.unwrap();
    assert_eq!(stored(&store).await, rows);

    // Gone once they have been retired long enough.
    clock.advance(RETIRED_KEEP);
    other.tick().await.unwrap();
    keys.refresh().await.unwrap();
    assert_eq!(jwks_kids(&keys), new.iter().cloned().collect());
    for token in &before {
        assert_eq!(
            verify(&keys, &clock, token).unwrap_err(),
            JoseError::UnknownKey
        );
    }
}

#[tokio::test]
async fn keys_rotate_by_themselves_when_old() {
    let (_db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let keys = manager(&store, &clock).await;
    let old = signer(&keys, Alg::EdDSA);

    clock.advance(ROTATE_AFTER - 1);
    keys.tick().await.unwrap();
    assert_eq!(stored(&store).await.len(), 3);

    clock.advance(1);
    keys.tick().await.unwrap();
    keys.tick().await.unwrap();
    let next: Vec<_> = keys
        .keys()
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Next)
        .map(|k| k.alg)
        .collect();
    assert_eq!(next.len(), 3, "one next key per algorithm, made once");

    clock.advance(PUBLISH_BEFORE_USE);
    keys.tick().await.unwrap();
    assert_ne!(signer(&keys, Alg::EdDSA), old);
}

#[tokio::test]
async fn of_two_keys_made_at_once_all_instances_sign_with_the_same() {
    let (_db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let keys = manager(&store, &clock).await;
    // As if a second instance had created its first keys at the same moment.
    let other = manager(&store, &clock).await;
    let mut duplicate = stored(&store)
        .await
        .into_iter()
        .find(|k| k.alg == "ES256")
        .unwrap();
    let copy = keys.keys().signer(Alg::ES256).unwrap().clone();
    duplicate.kid = format!("{}x", copy.kid);
    let pkcs8 = secrets()
        .decrypt(&format!("signing-key:{}", copy.kid), &duplicate.private_key)
        .unwrap();
    duplicate.private_key = secrets().encrypt(&format!("signing-key:{}", duplicate.kid), &pkcs8);
    store
        .conn()
        .await
        .unwrap()
        .insert_signing_key(&duplicate)
        .await
        .unwrap();

    keys.refresh().await.unwrap();
    other.refresh().await.unwrap();
    assert_eq!(signer(&keys, Alg::ES256), signer(&other, Alg::ES256));
    keys.tick().await.unwrap();
    let active = stored(&store)
        .await
        .into_iter()
        .filter(|k| k.alg == "ES256" && k.state == "active")
        .count();
    assert_eq!(active, 1, "the tick retires all but the newest");
}

#[tokio::test]
async fn private_keys_are_stored_encrypted() {
    let (_db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let _keys = manager(&store, &clock).await;
    for row in stored(&store).await {
        assert!(row.private_key.starts_with("v1."), "{}", row.alg);
        let der = secrets()
            .decrypt(&format!("signing-key:{}", row.kid), &row.private_key)
            .unwrap();
        for plain in [URL_SAFE_NO_PAD.encode(&der), STANDARD.encode(&der)] {
            assert!(!row.private_key.contains(&plain[4..40]), "{}", row.alg);
        }
        assert!(!row.public_jwk.contains("\"d\""), "{}", row.alg);
        // Bound to its own row: moved to another kid, it does not open.
        assert!(secrets()
            .decrypt("signing-key:other", &row.private_key)
            .is_err());
    }
}

#[tokio::test]
async fn keys_that_cannot_be_opened_are_skipped() {
    let (_db, store) = TestDb::store().await;
    let clock = Arc::new(ManualClock::new());
    let keys = manager(&store, &clock).await;
    let mut broken = stored(&store).await.remove(0);
    broken.kid = "broken".to_owned();
    broken.state = "next".to_owned();
    store
        .conn()
        .await
        .unwrap()
        .insert_signing_key(&broken)
        .await
        .unwrap();
    keys.refresh().await.unwrap();
    assert_eq!(jwks_kids(&keys).len(), 3);

    // Another master key opens nothing and adds no keys of its own.
    let stranger = Arc::new(Secrets::new(&MasterKey::generate()));
    let lost = KeyManager::load(store.clone(), stranger, clock.clone())
        .await
        .unwrap();
    assert!(lost.keys().keys.is_empty());
    assert!(matches!(
        lost.sign(Alg::EdDSA, "JWT", json!({})).await,
        Err(KeyError::Jose(JoseError::NoSigningKey(Alg::EdDSA)))
    ));
    assert_eq!(stored(&store).await.len(), 4);
}
