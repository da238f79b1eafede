//! The store contract: every behaviour the rest of Postern relies on, run
//! against whichever database `POSTERN_TEST_BACKEND` names (SQLite by
//! default, `postgres` for PostgreSQL). Both must pass.
//!
//! Each test gets a fresh, migrated database. Concurrency tests open one pool
//! per racer (as separate server instances would) and release all racers at
//! once with a barrier.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use postern_core::crypto::random_id;
use postern_core::{
    App, AppSettings, Branding, ConsentMode, DevicePolicy, IdTokenAlg, SubjectType,
};
use postern_store::{
    AuthorizationCode, Backend, Conn, LoginKind, LoginRequest, OutboxBacklog, Purged, Queries,
    RateSlot, RefreshToken, Session, SessionQueries, SignInEvent, Store, StoreError, User,
};
use postern_testkit::TestDb;
use tokio::sync::Barrier;

/// A fixed "now" (unix seconds) so expiry arithmetic is explicit.
const NOW: i64 = 1_700_000_000;

// ---- helpers ---------------------------------------------------------------

async fn conn(store: &Store) -> Conn {
    store.conn().await.expect("a pooled connection")
}

/// An app with default settings and one redirect URI.
fn app(client_id: &str, created_at: i64) -> App {
    App {
        client_id: client_id.to_owned(),
        name: format!("App {client_id}"),
        settings: AppSettings {
            redirect_uris: vec!["https://app.example/cb".to_owned()],
            ..AppSettings::default()
        },
        created_at,
        updated_at: created_at,
    }
}

async fn seed_app(store: &Store, client_id: &str) {
    conn(store)
        .await
        .insert_app(&app(client_id, NOW), None)
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

/// A live link request (15 minutes left) with random hashes and no optional
/// fields; override fields with struct update syntax.
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

async fn insert_request(store: &Store, req: &LoginRequest) {
    conn(store)
        .await
        .insert_login_request(req)
        .await
        .expect("insert login request");
}

async fn request_by_id(store: &Store, id: &str) -> LoginRequest {
    conn(store)
        .await
        .login_request(id)
        .await
        .expect("read login request")
        .expect("request exists")
}

/// A live authorization code (60 seconds left).
fn authorization_code(client_id: &str, user_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: random_id(),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        session_id: Some(random_id()),
        redirect_uri: "https://app.example/cb".to_owned(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        scope: "openid email".to_owned(),
        amr: "email".to_owned(),
        auth_time: NOW - 5,
        created_at: NOW,
        expires_at: NOW + 60,
        consumed_at: None,
    }
}

/// A live browser session (30 days left).
fn session(user_id: &str) -> Session {
    postern_testkit::session(user_id, NOW)
}

fn sign_in_event(user_id: &str, at: i64) -> SignInEvent {
    SignInEvent {
        id: random_id(),
        user_id: Some(user_id.to_owned()),
        client_id: "app".to_owned(),
        at,
        ip: Some("2001:db8::1".to_owned()),
        user_agent: Some("Mozilla/5.0".to_owned()),
        method: "link".to_owned(),
        outcome: "success".to_owned(),
    }
}

async fn insert_outbox(store: &Store, id: &str, now: i64) {
    conn(store)
        .await
        .insert_outbox(
            id,
            &format!("<{id}@postern.test>"),
            &format!("sealed:{id}"),
            now,
            now + 900,
        )
        .await
        .expect("insert outbox");
}

async fn claim(
    store: &Store,
    now: i64,
    owner: &str,
    limit: i64,
) -> Vec<postern_store::OutboxMessage> {
    store
        .claim_outbox(now, owner, now + 60, limit)
        .await
        .expect("claim outbox")
}

async fn count_rows(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *conn(store).await)
        .await
        .expect("count rows")
}

/// Runs `n` copies of an operation at the same moment, each on its own
/// connection from its own pool (as `n` server instances would), and returns
/// their results in order.
async fn race<T, Fut>(db: &TestDb, n: usize, op: impl Fn(usize, Conn) -> Fut) -> Vec<T>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let store = Store::connect(&db.url).await.expect("connect racer");
        conns.push(store.conn().await.expect("racer connection"));
    }
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let barrier = barrier.clone();
            let fut = op(i, c);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.expect("racer task"));
    }
    out
}

/// Strings that break naive quoting, encodings or length assumptions.
fn hostile_strings() -> Vec<String> {
    vec![
        r#"bob"e"i'o;aü"#.to_owned(),
        "'); DROP TABLE users; --".to_owned(),
        "Robert'); DELETE FROM login_requests WHERE ('1'='1".to_owned(),
        r"back\slash \' $1 ?1 ? :name @p1 %s {}".to_owned(),
        "100% _wild_ *cards* [a-z]".to_owned(),
        "👩‍💻🔑✉️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 日本語 \u{202e}rtl".to_owned(),
        "line\nbreak\r\ttab\u{7f}".to_owned(),
        String::new(),
        " leading and trailing spaces ".to_owned(),
        "ü".repeat(5_120), // 10 KB of two-byte characters
    ]
}

/// Short hostile strings, for indexed columns (an email address is at most
/// 254 characters once validated).
fn short_hostile_strings() -> Vec<String> {
    hostile_strings()
        .into_iter()
        .filter(|s| s.len() <= 254)
        .collect()
}

// ---- store -----------------------------------------------------------------

#[tokio::test]
async fn migrating_twice_is_harmless_and_the_store_is_ready() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    store.migrate().await.expect("second migrate");
    assert!(store.ready().await.expect("ready"));
    assert!(
        conn(&store).await.app("app").await.unwrap().is_some(),
        "migrating again kept the data"
    );
}

#[tokio::test]
async fn a_store_that_was_never_migrated_is_not_ready() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.expect("connect");
    assert!(!matches!(store.ready().await, Ok(true)));
    store.migrate().await.expect("migrate");
    assert!(store.ready().await.expect("ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_migrating_at_once_all_succeed() {
    let db = TestDb::new().await;
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(Store::connect(&db.url).await.expect("connect"));
    }
    let barrier = Arc::new(Barrier::new(instances.len()));
    let tasks: Vec<_> = instances
        .iter()
        .cloned()
        .map(|store| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.migrate().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every instance migrates");
    }
    assert!(instances[0].ready().await.unwrap());
}

#[tokio::test]
async fn the_store_reports_the_backend_it_runs_on() {
    let (_db, store) = TestDb::store().await;
    assert_eq!(store.backend(), postern_testkit::backend());
}

#[tokio::test]
async fn a_committed_transaction_is_seen_by_others_only_after_commit() {
    let (_db, store) = TestDb::store().await;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_app(&app("app", NOW), None)
        .await
        .expect("insert in tx");
    assert!(
        tx.app("app").await.unwrap().is_some(),
        "a transaction sees its own writes"
    );
    assert!(
        conn(&store).await.app("app").await.unwrap().is_none(),
        "others do not see uncommitted writes"
    );
    tx.commit().await.expect("commit");
    assert!(conn(&store).await.app("app").await.unwrap().is_some());
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing_behind() {
    let (_db, store) = TestDb::store().await;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_app(&app("app", NOW), Some("hash"))
        .await
        .expect("insert in tx");
    tx.rollback().await.expect("rollback");
    assert!(conn(&store).await.app("app").await.unwrap().is_none());
    assert_eq!(count_rows(&store, "app_secrets").await, 0);
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back() {
    let (_db, store) = TestDb::store().await;
    {
        let mut tx = store.begin().await.expect("begin");
        tx.insert_app(&app("app", NOW), None)
            .await
            .expect("insert in tx");
    }
    assert!(conn(&store).await.app("app").await.unwrap().is_none());
}

#[tokio::test]
async fn times_after_2038_round_trip() {
    // Unix seconds past i32::MAX must survive every time column (BIGINT on PostgreSQL).
    let far = 4_102_444_800; // 2100-01-01
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    let a = app("app", far);
    c.insert_app(&a, Some("hash")).await.unwrap();
    assert_eq!(c.app("app").await.unwrap(), Some(a));
    assert_eq!(c.app_secret_hashes("app", far - 1).await.unwrap(), ["hash"]);
    let user = c
        .upsert_user_sign_in("u", "a@example.com", far)
        .await
        .unwrap();
    assert_eq!(
        c.user("u").await.unwrap().unwrap().last_sign_in_at,
        Some(far)
    );
    let req = LoginRequest {
        created_at: far,
        expires_at: far + 900,
        approved_at: Some(far + 1),
        ..login_request("app", "a@example.com")
    };
    c.insert_login_request(&req).await.unwrap();
    assert_eq!(c.login_request(&req.id).await.unwrap(), Some(req.clone()));
    assert!(c
        .consume_login_request_by_token(&req.token_hash, far + 899)
        .await
        .unwrap()
        .is_some());
    let sess = Session {
        auth_time: far,
        created_at: far,
        last_seen_at: far,
        expires_at: far * 2,
        ..session(&user.id)
    };
    c.insert_session(&sess).await.unwrap();
    assert_eq!(
        c.session_by_token(&sess.token_hash).await.unwrap(),
        Some(sess)
    );
    let event = sign_in_event(&user.id, far);
    c.insert_sign_in_event(&event).await.unwrap();
    assert_eq!(c.sign_in_events(&user.id, 1).await.unwrap(), [event]);
    assert!(c.rate_hit("k", far, 1).await.unwrap());
    assert_eq!(c.rate_count("k", far).await.unwrap(), 1);
    c.insert_outbox("m", "<m@x>", "sealed", far, far + 900)
        .await
        .unwrap();
    let claimed = store.claim_outbox(far, "w", far + 60, 1).await.unwrap();
    assert_eq!(claimed.first().map(|m| m.expires_at), Some(far + 900));
}

// ---- apps ------------------------------------------------------------------

#[tokio::test]
async fn an_app_round_trips_with_every_setting_changed_from_its_default() {
    let (_db, store) = TestDb::store().await;
    let defaults = AppSettings::default();
    let settings = AppSettings {
        redirect_uris: vec![
            "https://a.example/cb".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ],
        post_logout_redirect_uris: vec!["https://a.example/bye".to_owned()],
        public: !defaults.public,
        first_party: !defaults.first_party,
        link_ttl: 3_600,
        session_max_age: Some(86_400),
        device_policy: DevicePolicy::Remote,
        passkeys: postern_core::PasskeyPolicy::RequiredAfterFirstSignIn,
        consent: Some(ConsentMode::Skip),
        signup_allowed: !defaults.signup_allowed,
        allowed_domains: vec!["example.com".to_owned(), "xn--bcher-kva.example".to_owned()],
        bind_ip_range: !defaults.bind_ip_range,
        subject_type: SubjectType::Public,
        id_token_alg: IdTokenAlg::ES256,
        token_email: !defaults.token_email,
        locale: "de-ch".to_owned(),
        link_requests_per_hour: 7,
        branding: Branding {
            name: Some("Bücher & Co".to_owned()),
            logo_url: Some("https://a.example/logo.png".to_owned()),
            color: Some("#1a2b3c".to_owned()),
            sender_name: Some("Bücher Sign-in".to_owned()),
            email_note: Some("Fragen? <hilfe@bücher.example>\nDanke!".to_owned()),
        },
        enabled: false,
        owners: vec!["owner@a.example".to_owned()],
        initiate_login_uri: Some("https://a.example/login".to_owned()),
    };
    assert_ne!(settings.link_ttl, defaults.link_ttl);
    assert_ne!(settings.device_policy, defaults.device_policy);
    assert_ne!(settings.passkeys, defaults.passkeys);
    assert_ne!(settings.subject_type, defaults.subject_type);
    assert_ne!(settings.id_token_alg, defaults.id_token_alg);
    assert_ne!(settings.locale, defaults.locale);
    assert_ne!(
        settings.link_requests_per_hour,
        defaults.link_requests_per_hour
    );
    let stored = App {
        settings,
        name: "Bücher".to_owned(),
        ..app("books", NOW)
    };
    let mut c = conn(&store).await;
    c.insert_app(&stored, Some("secret-hash"))
        .await
        .expect("insert");
    assert_eq!(c.app("books").await.unwrap(), Some(stored));
}

#[tokio::test]
async fn updating_an_app_replaces_its_name_and_settings() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_app(&app("app", NOW), None).await.unwrap();
    let mut changed = app("app", NOW);
    changed.name = "Renamed".to_owned();
    changed.settings.device_policy = DevicePolicy::SameBrowser;
    changed
        .settings
        .redirect_uris
        .push("https://app.example/other".to_owned());
    changed.updated_at = NOW + 10;
    assert!(c.update_app(&changed).await.unwrap());
    assert_eq!(c.app("app").await.unwrap(), Some(changed));
}

#[tokio::test]
async fn updating_an_unknown_app_changes_nothing() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    assert!(!c.update_app(&app("ghost", NOW)).await.unwrap());
    assert!(c.apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_app_is_none() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    assert_eq!(
        conn(&store).await.app("APP").await.unwrap(),
        None,
        "client ids are case-sensitive"
    );
    assert_eq!(conn(&store).await.app("nope").await.unwrap(), None);
}

#[tokio::test]
async fn a_second_app_with_the_same_client_id_is_a_conflict() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_app(&app("app", NOW), None).await.unwrap();
    let again = App {
        name: "Other".to_owned(),
        ..app("app", NOW + 1)
    };
    assert!(matches!(
        c.insert_app(&again, None).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        c.app("app").await.unwrap().unwrap().name,
        "App app",
        "the first app is untouched"
    );
}

#[tokio::test]
async fn a_confidential_app_lists_its_secret_hashes_newest_first() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_app(&app("app", NOW), Some("first")).await.unwrap();
    c.add_app_secret("app", "second", NOW + 100).await.unwrap();
    assert_eq!(
        c.app_secret_hashes("app", NOW + 200).await.unwrap(),
        ["second", "first"]
    );
    assert!(c.app_secret_hashes("other", NOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_public_app_has_no_secret_hashes() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_app(&app("spa", NOW), None).await.unwrap();
    assert!(c.app_secret_hashes("spa", NOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_secret_hashes_are_not_listed() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_app(&app("app", NOW), Some("old")).await.unwrap();
    c.add_app_secret("app", "new", NOW + 1).await.unwrap();
    // Rotation sets expires_at on the old secret; no store method does it yet.
    sqlx::query("UPDATE app_secrets SET expires_at = $1 WHERE secret_hash = $2")
        .bind(NOW + 50)
        .bind("old")
        .execute(&mut *c)
        .await
        .unwrap();
    assert_eq!(
        c.app_secret_hashes("app", NOW + 49).await.unwrap(),
        ["new", "old"]
    );
    assert_eq!(
        c.app_secret_hashes("app", NOW + 50).await.unwrap(),
        ["new"],
        "expiry is exclusive"
    );
}

#[tokio::test]
async fn apps_are_listed_oldest_first() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    for (id, at) in [
        ("c", NOW + 2),
        ("a", NOW + 3),
        ("b", NOW + 1),
        ("d", NOW + 2),
    ] {
        c.insert_app(&app(id, at), None).await.unwrap();
    }
    let ids: Vec<_> = c
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.client_id)
        .collect();
    assert_eq!(ids, ["b", "c", "d", "a"]);
}

// ---- hostile strings ---------------------------------------------------------

#[tokio::test]
async fn hostile_strings_round_trip_unchanged_in_apps() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    for (i, s) in hostile_strings().into_iter().enumerate() {
        let mut a = app(&format!("app-{i}"), NOW + i as i64);
        a.name = s.clone();
        a.settings.branding.name = Some(s.clone());
        a.settings.allowed_domains = vec![s.clone()];
        c.insert_app(&a, Some(&s)).await.unwrap();
        assert_eq!(
            c.app(&a.client_id).await.unwrap().as_ref(),
            Some(&a),
            "{s:?}"
        );
        assert_eq!(
            c.app_secret_hashes(&a.client_id, NOW).await.unwrap(),
            std::slice::from_ref(&s)
        );
    }
    for s in short_hostile_strings() {
        let a = app(&s, NOW);
        c.insert_app(&a, None)
            .await
            .unwrap_or_else(|e| panic!("client id {s:?}: {e}"));
        assert_eq!(c.app(&s).await.unwrap(), Some(a), "client id {s:?}");
    }
}

#[tokio::test]
async fn hostile_strings_round_trip_unchanged_in_login_requests() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let mut c = conn(&store).await;
    for s in hostile_strings() {
        let short = if s.len() <= 254 {
            s.clone()
        } else {
            "long@example.com".to_owned()
        };
        let req = LoginRequest {
            state: Some(s.clone()),
            nonce: Some(s.clone()),
            user_agent: Some(s.clone()),
            redirect_uri: s.clone(),
            scope: s.clone(),
            locale: s.clone(),
            code_challenge: Some(short.clone()),
            binding_hash: Some(short.clone()),
            ip: Some(short.clone()),
            ..login_request("app", &short)
        };
        c.insert_login_request(&req).await.unwrap();
        assert_eq!(
            c.login_request(&req.id).await.unwrap().as_ref(),
            Some(&req),
            "{s:?}"
        );
        let consumed = c
            .consume_login_request_by_token(&req.token_hash, NOW)
            .await
            .unwrap();
        assert_eq!(
            consumed,
            Some(LoginRequest {
                consumed_at: Some(NOW),
                ..req
            }),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn hostile_email_like_strings_identify_users_unchanged() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    let mut ids = HashSet::new();
    for s in short_hostile_strings() {
        for email in [s.clone(), format!("{s}@example.com")] {
            let user = c
                .upsert_user_sign_in(&random_id(), &email, NOW)
                .await
                .unwrap();
            assert_eq!(user.email, email);
            assert_eq!(
                c.user_by_email(&email).await.unwrap(),
                Some(user.clone()),
                "{email:?}"
            );
            assert!(ids.insert(user.id), "{email:?} got its own user");
        }
    }
}

#[tokio::test]
async fn hostile_strings_round_trip_unchanged_in_sessions_history_grants_and_outbox() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let mut c = conn(&store).await;
    for (i, s) in hostile_strings().into_iter().enumerate() {
        let sess = Session {
            user_agent: Some(s.clone()),
            ip: Some(s.clone()),
            amr: s.clone(),
            ..session(&user.id)
        };
        c.insert_session(&sess).await.unwrap();
        assert_eq!(
            c.session_by_token(&sess.token_hash).await.unwrap(),
            Some(sess),
            "{s:?}"
        );

        let event = SignInEvent {
            user_agent: Some(s.clone()),
            outcome: s.clone(),
            ..sign_in_event(&user.id, NOW + i as i64)
        };
        c.insert_sign_in_event(&event).await.unwrap();
        assert_eq!(
            c.sign_in_events(&user.id, 1).await.unwrap(),
            [event],
            "{s:?}"
        );

        c.upsert_grant(&user.id, "app", &s, NOW).await.unwrap();
        assert_eq!(c.grant(&user.id, "app").await.unwrap(), Some(s.clone()));

        let code = AuthorizationCode {
            nonce: Some(s.clone()),
            scope: s.clone(),
            ..authorization_code("app", &user.id)
        };
        c.insert_authorization_code(&code).await.unwrap();
        let got = c
            .consume_authorization_code(&code.code_hash, NOW)
            .await
            .unwrap();
        assert_eq!(
            got,
            Some(AuthorizationCode {
                consumed_at: Some(NOW),
                ..code
            }),
            "{s:?}"
        );

        let id = format!("m{i}");
        c.insert_outbox(&id, &s, &s, NOW + i as i64, NOW + 10_000)
            .await
            .unwrap();
        let claimed = store
            .claim_outbox(NOW + 100, "w", NOW + 200, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            (claimed[0].message_id.as_str(), claimed[0].payload.as_str()),
            (s.as_str(), s.as_str())
        );
        c.outbox_retry(&id, NOW + 999_999, &s).await.unwrap();
        let last_error: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM outbox WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *c)
                .await
                .unwrap();
        assert_eq!(last_error, Some(s.clone()));
    }
    for s in short_hostile_strings() {
        assert!(c.rate_hit(&s, NOW, 1).await.unwrap(), "{s:?}");
        assert_eq!(c.rate_count(&s, NOW).await.unwrap(), 1, "{s:?}");
    }
}

#[tokio::test]
async fn a_nul_character_is_refused_or_kept_but_never_panics() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    let a = App {
        name: "nul\u{0}inside".to_owned(),
        ..app("app", NOW)
    };
    match c.insert_app(&a, None).await {
        Ok(()) => {
            // SQLite stores text with an explicit length, so NUL survives.
            assert_eq!(
                store.backend(),
                Backend::Sqlite,
                "PostgreSQL text cannot hold NUL"
            );
            assert_eq!(c.app("app").await.unwrap(), Some(a));
        }
        Err(e) => {
            assert!(matches!(e, StoreError::Database(_)), "{e:?}");
            assert_eq!(c.app("app").await.unwrap(), None);
        }
    }
}

// ---- users -----------------------------------------------------------------

#[tokio::test]
async fn a_first_sign_in_creates_the_user() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    assert_eq!(c.user_by_email("a@example.com").await.unwrap(), None);
    let user = c
        .upsert_user_sign_in("u1", "a@example.com", NOW)
        .await
        .unwrap();
    let expected = User {
        id: "u1".into(),
        email: "a@example.com".into(),
        created_at: NOW,
        last_sign_in_at: Some(NOW),
        disabled_at: None,
    };
    assert_eq!(user, expected);
    assert_eq!(c.user("u1").await.unwrap(), Some(expected.clone()));
    assert_eq!(
        c.user_by_email("a@example.com").await.unwrap(),
        Some(expected)
    );
    assert_eq!(c.user("u2").await.unwrap(), None);
}

#[tokio::test]
async fn a_later_sign_in_keeps_the_user_and_updates_its_last_sign_in() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.upsert_user_sign_in("u1", "a@example.com", NOW)
        .await
        .unwrap();
    let again = c
        .upsert_user_sign_in("u2", "a@example.com", NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.created_at, again.last_sign_in_at),
        ("u1", NOW, Some(NOW + 60))
    );
    assert_eq!(
        c.user("u2").await.unwrap(),
        None,
        "the spare id was not used"
    );
    assert_eq!(c.user("u1").await.unwrap(), Some(again));
    assert_eq!(count_rows(&store, "users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_sign_ins_of_one_address_create_one_user() {
    let (db, store) = TestDb::store().await;
    let users = race(&db, 10, |i, mut c| async move {
        c.upsert_user_sign_in(&format!("u{i}"), "race@example.com", NOW + i as i64)
            .await
            .expect("upsert")
    })
    .await;
    let ids: HashSet<_> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids.len(), 1, "every racer got the same user: {ids:?}");
    assert_eq!(count_rows(&store, "users").await, 1);
}

// ---- login requests ----------------------------------------------------------

#[tokio::test]
async fn a_login_request_round_trips_by_id_and_by_token() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = LoginRequest {
        state: Some("st".into()),
        nonce: Some("no".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        headless: true,
        ip: Some("198.51.100.4".into()),
        user_agent: Some("curl/8".into()),
        binding_hash: Some("bind".into()),
        remote_number: Some("07".into()),
        approved_at: Some(NOW + 1),
        completed_at: Some(NOW + 2),
        rate_slot: Some(RateSlot {
            key: "email:abc".into(),
            window_start: 1_699_999_200,
        }),
        code_attempts: 2,
        locale: "fr".into(),
        ..login_request("app", "a@example.com")
    };
    let mut c = conn(&store).await;
    c.insert_login_request(&req).await.unwrap();
    assert_eq!(c.login_request(&req.id).await.unwrap().as_ref(), Some(&req));
    assert_eq!(
        c.login_request_by_token(&req.token_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&req)
    );
    assert_eq!(c.login_request("unknown").await.unwrap(), None);
    assert_eq!(c.login_request_by_token("unknown").await.unwrap(), None);
}

#[tokio::test]
async fn reading_a_request_by_token_does_not_consume_it() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    c.login_request_by_token(&req.token_hash).await.unwrap();
    assert!(c
        .consume_login_request_by_token(&req.token_hash, NOW)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn two_requests_with_one_token_hash_are_a_conflict() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let first = login_request("app", "a@example.com");
    insert_request(&store, &first).await;
    let second = LoginRequest {
        token_hash: first.token_hash.clone(),
        ..login_request("app", "b@example.com")
    };
    assert!(matches!(
        conn(&store).await.insert_login_request(&second).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn a_login_request_for_an_unknown_app_is_refused() {
    let (_db, store) = TestDb::store().await;
    let result = conn(&store)
        .await
        .insert_login_request(&login_request("ghost", "a@example.com"))
        .await;
    assert!(result.is_err(), "foreign keys are enforced");
}

#[tokio::test]
async fn a_link_is_consumed_exactly_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    let first = c
        .consume_login_request_by_token(&req.token_hash, NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        first,
        Some(LoginRequest {
            consumed_at: Some(NOW + 10),
            ..req.clone()
        })
    );
    assert_eq!(
        c.consume_login_request_by_token(&req.token_hash, NOW + 11)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.consume_login_request(&req.id, NOW + 12).await.unwrap(),
        None,
        "nor by id afterwards"
    );
    assert_eq!(
        request_by_id(&store, &req.id).await.consumed_at,
        Some(NOW + 10)
    );
}

#[tokio::test]
async fn an_unknown_token_consumes_nothing() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    assert_eq!(
        conn(&store)
            .await
            .consume_login_request_by_token("nope", NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(request_by_id(&store, &req.id).await.consumed_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_is_consumed_exactly_once_under_concurrency() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let hash = req.token_hash.clone();
    let results = race(&db, 20, |_, mut c| {
        let hash = hash.clone();
        async move {
            c.consume_login_request_by_token(&hash, NOW)
                .await
                .expect("consume")
        }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_some()).count(),
        1,
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_is_consumed_exactly_once_by_link_or_code_under_concurrency() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let (id, hash) = (req.id.clone(), req.token_hash.clone());
    let results = race(&db, 20, |i, mut c| {
        let (id, hash) = (id.clone(), hash.clone());
        async move {
            if i % 2 == 0 {
                c.consume_login_request(&id, NOW)
                    .await
                    .expect("consume by id")
            } else {
                c.consume_login_request_by_token(&hash, NOW)
                    .await
                    .expect("consume by token")
            }
        }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_some()).count(),
        1,
        "{results:?}"
    );
}

#[tokio::test]
async fn an_expired_link_cannot_be_consumed() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let at_expiry = LoginRequest {
        expires_at: NOW,
        ..login_request("app", "a@example.com")
    };
    let past_expiry = LoginRequest {
        expires_at: NOW - 1,
        ..login_request("app", "a@example.com")
    };
    let mut c = conn(&store).await;
    for req in [&at_expiry, &past_expiry] {
        c.insert_login_request(req).await.unwrap();
        assert_eq!(
            c.consume_login_request_by_token(&req.token_hash, NOW)
                .await
                .unwrap(),
            None
        );
        assert_eq!(c.consume_login_request(&req.id, NOW).await.unwrap(), None);
        assert_eq!(
            c.login_request(&req.id).await.unwrap().unwrap().consumed_at,
            None
        );
    }
}

#[tokio::test]
async fn a_no_account_notice_cannot_be_consumed() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = LoginRequest {
        kind: LoginKind::NoAccount,
        ..login_request("app", "nobody@example.com")
    };
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    assert_eq!(
        c.login_request(&req.id).await.unwrap().unwrap().kind,
        LoginKind::NoAccount
    );
    assert_eq!(
        c.consume_login_request_by_token(&req.token_hash, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(c.consume_login_request(&req.id, NOW).await.unwrap(), None);
}

#[tokio::test]
async fn an_admin_issued_request_keeps_its_flag_and_its_channel() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    for headless in [false, true] {
        let req = LoginRequest {
            headless,
            admin_issued: true,
            ..login_request("app", "a@example.com")
        };
        insert_request(&store, &req).await;
        let mut c = conn(&store).await;
        let read = c.login_request(&req.id).await.unwrap().unwrap();
        assert_eq!(read, req, "headless: {headless}");
        assert!(read.admin_issued);
        assert_eq!(read.headless, headless);
    }
    // A person's own request is not admin-issued.
    let own = login_request("app", "b@example.com");
    insert_request(&store, &own).await;
    let read = conn(&store).await.login_request(&own.id).await.unwrap();
    assert!(!read.unwrap().admin_issued);
}

#[tokio::test]
async fn a_headless_request_is_stored_in_the_form_earlier_versions_read() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    for kind in [LoginKind::Link, LoginKind::NoAccount] {
        let req = LoginRequest {
            kind,
            headless: true,
            ..login_request("app", "a@example.com")
        };
        insert_request(&store, &req).await;
        let mut c = conn(&store).await;
        // Earlier versions marked a headless request in `auth_params`; old
        // and new instances must keep reading each other's rows.
        let (stored, mark): (String, Option<String>) =
            sqlx::query_as("SELECT kind, auth_params FROM login_requests WHERE id = $1")
                .bind(&req.id)
                .fetch_one(&mut *c)
                .await
                .unwrap();
        assert_eq!(
            stored,
            if kind == LoginKind::Link {
                "link"
            } else {
                "no_account"
            }
        );
        assert_eq!(mark.as_deref(), Some(r#"{"flow":"headless"}"#));
        assert_eq!(c.login_request(&req.id).await.unwrap(), Some(req.clone()));
    }
}

#[tokio::test]
async fn a_rate_slot_in_the_earlier_text_form_reads_back_as_a_slot() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    sqlx::query("UPDATE login_requests SET rate_slot = $1 WHERE id = $2")
        .bind("email:k@y@1699999200")
        .bind(&req.id)
        .execute(&mut *c)
        .await
        .unwrap();
    assert_eq!(
        c.login_request(&req.id).await.unwrap().unwrap().rate_slot,
        Some(RateSlot {
            key: "email:k@y".into(),
            window_start: 1_699_999_200
        })
    );
}

#[tokio::test]
async fn a_request_is_consumed_by_id_exactly_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    let got = c.consume_login_request(&req.id, NOW + 5).await.unwrap();
    assert_eq!(
        got,
        Some(LoginRequest {
            consumed_at: Some(NOW + 5),
            ..req.clone()
        })
    );
    assert_eq!(
        c.consume_login_request(&req.id, NOW + 6).await.unwrap(),
        None
    );
    assert_eq!(
        c.consume_login_request_by_token(&req.token_hash, NOW + 6)
            .await
            .unwrap(),
        None,
        "the link burns too"
    );
    assert_eq!(c.consume_login_request("unknown", NOW).await.unwrap(), None);
}

#[tokio::test]
async fn a_consumed_request_is_completed_exactly_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    assert!(
        !c.complete_login_request(&req.id, NOW).await.unwrap(),
        "a live request cannot be completed"
    );
    assert_eq!(request_by_id(&store, &req.id).await.completed_at, None);
    c.consume_login_request(&req.id, NOW)
        .await
        .unwrap()
        .expect("consumed");
    assert!(c.complete_login_request(&req.id, NOW + 1).await.unwrap());
    assert!(!c.complete_login_request(&req.id, NOW + 2).await.unwrap());
    assert_eq!(
        request_by_id(&store, &req.id).await.completed_at,
        Some(NOW + 1)
    );
    assert!(!c.complete_login_request("unknown", NOW).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumed_request_is_completed_exactly_once_under_concurrency() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = LoginRequest {
        consumed_at: Some(NOW),
        ..login_request("app", "a@example.com")
    };
    insert_request(&store, &req).await;
    let id = req.id.clone();
    let results = race(&db, 20, |i, mut c| {
        let id = id.clone();
        async move {
            c.complete_login_request(&id, NOW + i as i64)
                .await
                .expect("complete")
        }
    })
    .await;
    assert_eq!(results.iter().filter(|&&done| done).count(), 1);
}

#[tokio::test]
async fn wrong_codes_are_counted_and_the_request_dies_at_the_limit() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let mut c = conn(&store).await;
    for n in 1..5 {
        assert_eq!(
            c.record_wrong_code(&req.id, 5, NOW + n).await.unwrap(),
            Some(n)
        );
        assert_eq!(
            c.login_request(&req.id).await.unwrap().unwrap().consumed_at,
            None,
            "alive after {n}"
        );
    }
    assert_eq!(
        c.record_wrong_code(&req.id, 5, NOW + 5).await.unwrap(),
        Some(5)
    );
    let dead = c.login_request(&req.id).await.unwrap().unwrap();
    assert_eq!((dead.code_attempts, dead.consumed_at), (5, Some(NOW + 5)));
    assert_eq!(
        c.record_wrong_code(&req.id, 5, NOW + 6).await.unwrap(),
        None
    );
    assert_eq!(
        c.login_request(&req.id)
            .await
            .unwrap()
            .unwrap()
            .code_attempts,
        5,
        "not counted once dead"
    );
    assert_eq!(
        c.consume_login_request_by_token(&req.token_hash, NOW + 7)
            .await
            .unwrap(),
        None,
        "the link died too"
    );
}

#[tokio::test]
async fn a_wrong_code_for_a_request_that_is_not_live_is_not_counted() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let used = LoginRequest {
        consumed_at: Some(NOW - 1),
        ..login_request("app", "a@example.com")
    };
    let expired = LoginRequest {
        expires_at: NOW,
        ..login_request("app", "a@example.com")
    };
    let mut c = conn(&store).await;
    for req in [&used, &expired] {
        c.insert_login_request(req).await.unwrap();
        assert_eq!(c.record_wrong_code(&req.id, 5, NOW).await.unwrap(), None);
        assert_eq!(
            c.login_request(&req.id)
                .await
                .unwrap()
                .unwrap()
                .code_attempts,
            0
        );
    }
    assert_eq!(c.record_wrong_code("unknown", 5, NOW).await.unwrap(), None);
}

#[tokio::test]
async fn a_remote_approval_is_given_once_and_only_an_approved_request_continues() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = LoginRequest {
        remote_number: Some("42".into()),
        ..login_request("app", "a@example.com")
    };
    let used = LoginRequest {
        consumed_at: Some(NOW - 1),
        ..login_request("app", "a@example.com")
    };
    let expired = LoginRequest {
        expires_at: NOW,
        ..login_request("app", "a@example.com")
    };
    let mut c = conn(&store).await;
    for r in [&req, &used, &expired] {
        c.insert_login_request(r).await.unwrap();
    }
    assert_eq!(
        c.consume_approved_login_request(&req.id, NOW)
            .await
            .unwrap(),
        None,
        "not approved yet"
    );
    assert!(c.approve_remote(&req.id, NOW + 1).await.unwrap());
    assert!(
        !c.approve_remote(&req.id, NOW + 2).await.unwrap(),
        "approved once"
    );
    for dead in [&used, &expired] {
        assert!(!c.approve_remote(&dead.id, NOW).await.unwrap());
    }
    assert!(!c.approve_remote("unknown", NOW).await.unwrap());
    let approved = request_by_id(&store, &req.id).await;
    assert_eq!(
        (approved.approved_at, approved.consumed_at),
        (Some(NOW + 1), None)
    );
    let consumed = c
        .consume_approved_login_request(&req.id, NOW + 3)
        .await
        .unwrap()
        .expect("the approved request is consumed");
    assert_eq!(consumed.consumed_at, Some(NOW + 3));
    assert_eq!(
        c.consume_approved_login_request(&req.id, NOW + 4)
            .await
            .unwrap(),
        None,
        "consumed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_never_pass_the_limit() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let req = login_request("app", "a@example.com");
    insert_request(&store, &req).await;
    let id = req.id.clone();
    let results = race(&db, 12, |_, mut c| {
        let id = id.clone();
        async move { c.record_wrong_code(&id, 5, NOW).await.expect("record") }
    })
    .await;
    let mut counted: Vec<_> = results.into_iter().flatten().collect();
    counted.sort();
    assert_eq!(counted, [1, 2, 3, 4, 5]);
    let dead = request_by_id(&store, &req.id).await;
    assert_eq!((dead.code_attempts, dead.consumed_at), (5, Some(NOW)));
}

#[tokio::test]
async fn burning_siblings_only_touches_live_requests_of_the_same_app_and_address() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    seed_app(&store, "other").await;
    let live = [
        login_request("app", "a@example.com"),
        login_request("app", "a@example.com"),
    ];
    let expired = LoginRequest {
        expires_at: NOW - 1,
        ..login_request("app", "a@example.com")
    };
    let used = LoginRequest {
        consumed_at: Some(NOW - 10),
        ..login_request("app", "a@example.com")
    };
    let other_app = login_request("other", "a@example.com");
    let other_email = login_request("app", "b@example.com");
    for r in live
        .iter()
        .chain([&expired, &used, &other_app, &other_email])
    {
        insert_request(&store, r).await;
    }
    assert_eq!(
        conn(&store)
            .await
            .burn_sibling_requests("app", "a@example.com", NOW)
            .await
            .unwrap(),
        2
    );
    for r in &live {
        assert_eq!(request_by_id(&store, &r.id).await.consumed_at, Some(NOW));
    }
    assert_eq!(
        request_by_id(&store, &expired.id).await.consumed_at,
        None,
        "expired stays expired, not used"
    );
    assert_eq!(
        request_by_id(&store, &used.id).await.consumed_at,
        Some(NOW - 10),
        "used keeps its time"
    );
    assert_eq!(request_by_id(&store, &other_app.id).await.consumed_at, None);
    assert_eq!(
        request_by_id(&store, &other_email.id).await.consumed_at,
        None
    );
}

#[tokio::test]
async fn burning_a_browsers_requests_only_touches_that_browser_and_app() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    seed_app(&store, "other").await;
    let mine = LoginRequest {
        binding_hash: Some("mine".into()),
        ..login_request("app", "a@example.com")
    };
    let mine_other_email = LoginRequest {
        binding_hash: Some("mine".into()),
        ..login_request("app", "b@example.com")
    };
    let mine_expired = LoginRequest {
        binding_hash: Some("mine".into()),
        expires_at: NOW - 1,
        ..login_request("app", "a@example.com")
    };
    let mine_other_app = LoginRequest {
        binding_hash: Some("mine".into()),
        ..login_request("other", "a@example.com")
    };
    let theirs = LoginRequest {
        binding_hash: Some("theirs".into()),
        ..login_request("app", "a@example.com")
    };
    let unbound = login_request("app", "a@example.com");
    for r in [
        &mine,
        &mine_other_email,
        &mine_expired,
        &mine_other_app,
        &theirs,
        &unbound,
    ] {
        insert_request(&store, r).await;
    }
    assert_eq!(
        conn(&store)
            .await
            .burn_browser_requests("app", "mine", NOW)
            .await
            .unwrap(),
        2
    );
    assert_eq!(request_by_id(&store, &mine.id).await.consumed_at, Some(NOW));
    assert_eq!(
        request_by_id(&store, &mine_other_email.id)
            .await
            .consumed_at,
        Some(NOW)
    );
    for r in [&mine_expired, &mine_other_app, &theirs, &unbound] {
        assert_eq!(
            request_by_id(&store, &r.id).await.consumed_at,
            None,
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn a_browsers_newest_live_request_is_found() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    seed_app(&store, "other").await;
    let bound = |client: &str, created_at: i64| LoginRequest {
        binding_hash: Some("mine".into()),
        created_at,
        ..login_request(client, "a@example.com")
    };
    let older = bound("app", NOW - 20);
    let newest = bound("app", NOW - 10);
    let newer_but_used = LoginRequest {
        consumed_at: Some(NOW - 1),
        ..bound("app", NOW - 5)
    };
    let newer_but_expired = LoginRequest {
        expires_at: NOW,
        ..bound("app", NOW - 4)
    };
    let other_app = bound("other", NOW - 3);
    let other_browser = LoginRequest {
        binding_hash: Some("theirs".into()),
        ..bound("app", NOW - 2)
    };
    for r in [
        &older,
        &newest,
        &newer_but_used,
        &newer_but_expired,
        &other_app,
        &other_browser,
    ] {
        insert_request(&store, r).await;
    }
    let mut c = conn(&store).await;
    assert_eq!(
        c.live_request_for_browser("app", "mine", NOW)
            .await
            .unwrap(),
        Some(newest)
    );
    assert_eq!(
        c.live_request_for_browser("app", "nobody", NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.live_request_for_browser("app", "mine", NOW + 10_000)
            .await
            .unwrap(),
        None,
        "all expired by then"
    );
}

// ---- authorization codes -------------------------------------------------------

#[tokio::test]
async fn an_authorization_code_is_consumed_exactly_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let code = AuthorizationCode {
        session_id: None,
        code_challenge: None,
        nonce: None,
        ..authorization_code("app", &user.id)
    };
    let mut c = conn(&store).await;
    c.insert_authorization_code(&code).await.unwrap();
    let got = c
        .consume_authorization_code(&code.code_hash, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(AuthorizationCode {
            consumed_at: Some(NOW + 1),
            ..code.clone()
        })
    );
    assert_eq!(
        c.consume_authorization_code(&code.code_hash, NOW + 2)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.consume_authorization_code("unknown", NOW).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_reused_authorization_code_hash_is_a_conflict() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let code = authorization_code("app", &user.id);
    let mut c = conn(&store).await;
    c.insert_authorization_code(&code).await.unwrap();
    assert!(matches!(
        c.insert_authorization_code(&code).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_authorization_code_is_consumed_exactly_once_under_concurrency() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let code = authorization_code("app", &user.id);
    conn(&store)
        .await
        .insert_authorization_code(&code)
        .await
        .unwrap();
    let hash = code.code_hash.clone();
    let results = race(&db, 20, |_, mut c| {
        let hash = hash.clone();
        async move {
            c.consume_authorization_code(&hash, NOW)
                .await
                .expect("consume")
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 1);
}

#[tokio::test]
async fn an_expired_authorization_code_is_refused() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let code = authorization_code("app", &user.id);
    let mut c = conn(&store).await;
    c.insert_authorization_code(&code).await.unwrap();
    assert_eq!(
        c.consume_authorization_code(&code.code_hash, code.expires_at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.consume_authorization_code(&code.code_hash, code.expires_at - 1)
            .await
            .unwrap()
            .map(|c| c.consumed_at),
        Some(Some(code.expires_at - 1))
    );
}

// ---- grants ------------------------------------------------------------------

#[tokio::test]
async fn a_grant_is_recorded_and_widened() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    seed_app(&store, "other").await;
    let user = seed_user(&store, "a@example.com").await;
    let mut c = conn(&store).await;
    assert_eq!(c.grant(&user.id, "app").await.unwrap(), None);
    c.upsert_grant(&user.id, "app", "openid", NOW)
        .await
        .unwrap();
    assert_eq!(
        c.grant(&user.id, "app").await.unwrap().as_deref(),
        Some("openid")
    );
    c.upsert_grant(&user.id, "app", "email openid profile", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        c.grant(&user.id, "app").await.unwrap().as_deref(),
        Some("email openid profile")
    );
    assert_eq!(
        c.grant(&user.id, "other").await.unwrap(),
        None,
        "grants are per app"
    );
    assert_eq!(count_rows(&store, "grants").await, 1);
}

// ---- sessions ----------------------------------------------------------------

#[tokio::test]
async fn a_session_is_found_by_its_token_hash() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let browser = session(&user.id);
    let headless = Session {
        client_id: Some("app".into()),
        kind: "headless".into(),
        amr: "otp".into(),
        ip: None,
        user_agent: None,
        revoked_at: Some(NOW + 7),
        ..session(&user.id)
    };
    let mut c = conn(&store).await;
    for s in [&browser, &headless] {
        c.insert_session(s).await.unwrap();
        assert_eq!(
            c.session_by_token(&s.token_hash).await.unwrap().as_ref(),
            Some(s)
        );
    }
    assert_eq!(c.session_by_token("unknown").await.unwrap(), None);
}

#[tokio::test]
async fn a_session_with_a_reused_token_hash_is_a_conflict() {
    let (_db, store) = TestDb::store().await;
    let user = seed_user(&store, "a@example.com").await;
    let first = session(&user.id);
    let mut c = conn(&store).await;
    c.insert_session(&first).await.unwrap();
    let second = Session {
        token_hash: first.token_hash.clone(),
        ..session(&user.id)
    };
    assert!(matches!(
        c.insert_session(&second).await,
        Err(StoreError::Conflict)
    ));
}

// ---- sessions and refresh tokens (SessionQueries) ----------------------------------

fn refresh_token(session: &Session, family_id: &str) -> RefreshToken {
    RefreshToken {
        token_hash: random_id(),
        family_id: family_id.to_owned(),
        session_id: session.id.clone(),
        client_id: "app".to_owned(),
        user_id: session.user_id.clone(),
        scope: "openid offline_access".to_owned(),
        created_at: NOW,
        used_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn a_users_live_sessions_are_listed_most_recently_seen_first() {
    let (_db, store) = TestDb::store().await;
    let user = seed_user(&store, "a@example.com").await;
    let other = seed_user(&store, "b@example.com").await;
    let older = Session {
        last_seen_at: NOW - 10,
        ..session(&user.id)
    };
    let newer = Session {
        last_seen_at: NOW - 5,
        ..session(&user.id)
    };
    let revoked = Session {
        revoked_at: Some(NOW - 1),
        ..session(&user.id)
    };
    let someone_else = session(&other.id);
    let mut c = conn(&store).await;
    for s in [&older, &newer, &revoked, &someone_else] {
        c.insert_session(s).await.unwrap();
    }
    assert_eq!(
        c.session(&revoked.id).await.unwrap().as_ref(),
        Some(&revoked)
    );
    assert_eq!(c.session("unknown").await.unwrap(), None);
    assert_eq!(c.user_sessions(&user.id).await.unwrap(), [newer, older]);
}

#[tokio::test]
async fn touching_a_session_only_moves_its_last_sight_forward() {
    let (_db, store) = TestDb::store().await;
    let user = seed_user(&store, "a@example.com").await;
    let s = session(&user.id);
    let mut c = conn(&store).await;
    c.insert_session(&s).await.unwrap();
    c.touch_session(&s.id, NOW + 100).await.unwrap();
    assert_eq!(
        c.session(&s.id).await.unwrap().unwrap().last_seen_at,
        NOW + 100
    );
    c.touch_session(&s.id, NOW + 50).await.unwrap();
    assert_eq!(
        c.session(&s.id).await.unwrap().unwrap().last_seen_at,
        NOW + 100
    );
}

#[tokio::test]
async fn revoking_a_session_ends_it_and_its_refresh_tokens_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let (ended, kept) = (session(&user.id), session(&user.id));
    let mut c = conn(&store).await;
    c.insert_session(&ended).await.unwrap();
    c.insert_session(&kept).await.unwrap();
    let (its_token, other_token) = (refresh_token(&ended, "f1"), refresh_token(&kept, "f2"));
    c.insert_refresh_token(&its_token).await.unwrap();
    c.insert_refresh_token(&other_token).await.unwrap();
    assert!(c.revoke_session(&ended.id, NOW + 1).await.unwrap());
    assert!(
        !c.revoke_session(&ended.id, NOW + 2).await.unwrap(),
        "already ended"
    );
    assert_eq!(
        c.session(&ended.id).await.unwrap().unwrap().revoked_at,
        Some(NOW + 1)
    );
    assert_eq!(
        c.refresh_token(&its_token.token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 1)
    );
    assert_eq!(
        c.use_refresh_token(&its_token.token_hash, NOW + 3)
            .await
            .unwrap(),
        None
    );
    assert_eq!(c.session(&kept.id).await.unwrap().unwrap().revoked_at, None);
    assert_eq!(
        c.refresh_token(&other_token.token_hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_and_refresh_token_of_the_user() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let other = seed_user(&store, "b@example.com").await;
    let mine = [session(&user.id), session(&user.id)];
    let theirs = session(&other.id);
    let mut c = conn(&store).await;
    for s in mine.iter().chain([&theirs]) {
        c.insert_session(s).await.unwrap();
        c.insert_refresh_token(&refresh_token(s, &s.id))
            .await
            .unwrap();
    }
    assert_eq!(c.revoke_user_sessions(&user.id, NOW).await.unwrap(), 2);
    assert!(c.user_sessions(&user.id).await.unwrap().is_empty());
    let live_tokens: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM refresh_tokens WHERE revoked_at IS NULL")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    assert_eq!(live_tokens, std::slice::from_ref(&other.id));
    assert_eq!(c.user_sessions(&other.id).await.unwrap(), [theirs]);
}

#[tokio::test]
async fn a_refresh_token_is_used_exactly_once() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let s = session(&user.id);
    let token = refresh_token(&s, "family");
    let mut c = conn(&store).await;
    c.insert_session(&s).await.unwrap();
    c.insert_refresh_token(&token).await.unwrap();
    assert_eq!(
        c.refresh_token(&token.token_hash).await.unwrap().as_ref(),
        Some(&token)
    );
    let used = c
        .use_refresh_token(&token.token_hash, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        used,
        Some(RefreshToken {
            used_at: Some(NOW + 1),
            ..token.clone()
        })
    );
    assert_eq!(
        c.use_refresh_token(&token.token_hash, NOW + 2)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.refresh_token(&token.token_hash)
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(NOW + 1)
    );
    assert_eq!(c.use_refresh_token("unknown", NOW).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_is_used_exactly_once_under_concurrency() {
    let (db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let s = session(&user.id);
    let token = refresh_token(&s, "family");
    conn(&store).await.insert_session(&s).await.unwrap();
    conn(&store)
        .await
        .insert_refresh_token(&token)
        .await
        .unwrap();
    let hash = token.token_hash.clone();
    let results = race(&db, 20, |_, mut c| {
        let hash = hash.clone();
        async move { c.use_refresh_token(&hash, NOW).await.expect("use") }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 1);
}

#[tokio::test]
async fn revoking_a_family_revokes_only_its_tokens() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let s = session(&user.id);
    let mut c = conn(&store).await;
    c.insert_session(&s).await.unwrap();
    let family = [refresh_token(&s, "f1"), refresh_token(&s, "f1")];
    let stranger = refresh_token(&s, "f2");
    for t in family.iter().chain([&stranger]) {
        c.insert_refresh_token(t).await.unwrap();
    }
    assert_eq!(c.revoke_refresh_family("f1", NOW).await.unwrap(), 2);
    assert_eq!(c.revoke_refresh_family("f1", NOW + 1).await.unwrap(), 0);
    for t in &family {
        assert_eq!(c.use_refresh_token(&t.token_hash, NOW).await.unwrap(), None);
    }
    assert!(c
        .use_refresh_token(&stranger.token_hash, NOW)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_consumed_code_tells_its_own_client_which_session_and_family_it_produced() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let code = authorization_code("app", &user.id);
    let mut c = conn(&store).await;
    c.insert_authorization_code(&code).await.unwrap();
    assert_eq!(
        c.code_issued(&code.code_hash, "app").await.unwrap(),
        None,
        "not consumed yet"
    );
    c.consume_authorization_code(&code.code_hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.code_issued(&code.code_hash, "app").await.unwrap(),
        Some((code.session_id.clone(), None))
    );
    c.set_code_family(&code.code_hash, "fam").await.unwrap();
    assert_eq!(
        c.code_issued(&code.code_hash, "app").await.unwrap(),
        Some((code.session_id.clone(), Some("fam".to_owned())))
    );
    assert_eq!(
        c.code_issued(&code.code_hash, "other").await.unwrap(),
        None,
        "another client learns nothing"
    );
    assert_eq!(c.code_issued("unknown", "app").await.unwrap(), None);
}

#[tokio::test]
async fn live_codes_counts_a_sessions_unredeemed_unexpired_codes_for_one_app() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    seed_app(&store, "other").await;
    let user = seed_user(&store, "a@example.com").await;
    let mut c = conn(&store).await;
    let session_id = random_id();
    let mut codes = Vec::new();
    for (client, expires_at) in [
        ("app", NOW + 60),
        ("app", NOW + 60),
        ("app", NOW + 60),
        ("app", NOW),
        ("other", NOW + 60),
    ] {
        let mut code = authorization_code(client, &user.id);
        code.session_id = Some(session_id.clone());
        code.expires_at = expires_at;
        c.insert_authorization_code(&code).await.unwrap();
        codes.push(code);
    }
    let mut elsewhere = authorization_code("app", &user.id);
    elsewhere.session_id = Some(random_id());
    c.insert_authorization_code(&elsewhere).await.unwrap();
    assert_eq!(c.live_codes(&session_id, "app", NOW).await.unwrap(), 3);
    c.consume_authorization_code(&codes[0].code_hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.live_codes(&session_id, "app", NOW).await.unwrap(), 2);
    assert_eq!(c.live_codes(&session_id, "other", NOW).await.unwrap(), 1);
    assert_eq!(c.live_codes(&session_id, "app", NOW + 60).await.unwrap(), 0);
}

// ---- revoked access tokens ----------------------------------------------------------

#[tokio::test]
async fn a_revoked_access_token_no_longer_finds_its_session_and_is_purged_after_its_expiry() {
    let (_db, store) = TestDb::store().await;
    let user = seed_user(&store, "a@example.com").await;
    let live = session(&user.id);
    let mut c = conn(&store).await;
    c.insert_session(&live).await.unwrap();
    for jti in ["revoked", "other", "hostile\"'; --"] {
        assert_eq!(
            c.access_token_session(&live.id, jti)
                .await
                .unwrap()
                .as_ref(),
            Some(&live),
            "{jti} is not revoked yet"
        );
    }
    c.revoke_access_token("revoked", NOW + 600, NOW)
        .await
        .unwrap();
    c.revoke_access_token("revoked", NOW + 600, NOW + 1)
        .await
        .expect("revoking twice is fine (RFC 7009 §2.2)");
    c.revoke_access_token("hostile\"'; --", NOW + 60, NOW)
        .await
        .unwrap();
    for jti in ["revoked", "hostile\"'; --"] {
        assert_eq!(c.access_token_session(&live.id, jti).await.unwrap(), None);
    }
    assert_eq!(
        c.access_token_session(&live.id, "other")
            .await
            .unwrap()
            .as_ref(),
        Some(&live),
        "only the revoked jti"
    );
    assert_eq!(
        c.access_token_session("unknown", "other").await.unwrap(),
        None
    );

    // Kept until an hour past the token's expiry, then purged.
    let purged = c.purge_expired(NOW + 600 + 3600, 0).await.unwrap();
    assert_eq!(
        purged.revoked_access_tokens, 1,
        "the one that expired first"
    );
    assert_eq!(
        c.access_token_session(&live.id, "revoked").await.unwrap(),
        None,
        "still revoked within the grace hour"
    );
    let purged = c.purge_expired(NOW + 600 + 3601, 0).await.unwrap();
    assert_eq!(purged.revoked_access_tokens, 1);
    assert_eq!(
        c.access_token_session(&live.id, "revoked")
            .await
            .unwrap()
            .as_ref(),
        Some(&live),
        "purged: the token itself expired long ago"
    );
}

// ---- sign-in history -------------------------------------------------------------

#[tokio::test]
async fn sign_in_history_is_newest_first_and_limited() {
    let (_db, store) = TestDb::store().await;
    let user = seed_user(&store, "a@example.com").await;
    let mut c = conn(&store).await;
    let events: Vec<_> = [NOW + 2, NOW, NOW + 3, NOW + 1]
        .into_iter()
        .map(|at| sign_in_event(&user.id, at))
        .collect();
    for e in &events {
        c.insert_sign_in_event(e).await.unwrap();
    }
    let someone_else = SignInEvent {
        user_id: Some("other".into()),
        ..sign_in_event("x", NOW + 9)
    };
    c.insert_sign_in_event(&someone_else).await.unwrap();
    let unknown_user = SignInEvent {
        user_id: None,
        outcome: "denied".into(),
        ..sign_in_event("x", NOW + 9)
    };
    c.insert_sign_in_event(&unknown_user).await.unwrap();

    let ats: Vec<_> = c
        .sign_in_events(&user.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(ats, [NOW + 3, NOW + 2, NOW + 1, NOW]);
    let top = c.sign_in_events(&user.id, 2).await.unwrap();
    assert_eq!(top, [events[2].clone(), events[0].clone()]);
    assert_eq!(count_rows(&store, "sign_in_events").await, 6);
}

// ---- rate limits ---------------------------------------------------------------

#[tokio::test]
async fn a_rate_limit_allows_exactly_limit_hits_per_window() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 0);
    for n in 1..=3 {
        assert!(c.rate_hit("email:a", NOW, 3).await.unwrap(), "hit {n}");
        assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), n);
    }
    assert!(!c.rate_hit("email:a", NOW, 3).await.unwrap());
    assert!(!c.rate_hit("email:a", NOW, 3).await.unwrap());
    assert_eq!(
        c.rate_count("email:a", NOW).await.unwrap(),
        3,
        "refused hits are not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_holds_under_concurrency() {
    let (db, store) = TestDb::store().await;
    let results = race(&db, 30, |_, mut c| async move {
        c.rate_hit("ip:x", NOW, 10).await.expect("hit")
    })
    .await;
    assert_eq!(results.iter().filter(|&&ok| ok).count(), 10);
    assert_eq!(
        conn(&store).await.rate_count("ip:x", NOW).await.unwrap(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_holds_under_concurrency_inside_transactions() {
    let (db, store) = TestDb::store().await;
    let racers: Vec<Store> = {
        let mut v = Vec::new();
        for _ in 0..12 {
            v.push(Store::connect(&db.url).await.unwrap());
        }
        v
    };
    let barrier = Arc::new(Barrier::new(racers.len()));
    let tasks: Vec<_> = racers
        .into_iter()
        .map(|s| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = s.begin().await.expect("begin");
                let ok = tx.rate_hit("ip:tx", NOW, 4).await.expect("hit");
                tx.commit().await.expect("commit");
                ok
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 4);
    assert_eq!(
        conn(&store).await.rate_count("ip:tx", NOW).await.unwrap(),
        4
    );
}

#[tokio::test]
async fn rate_limit_windows_and_keys_are_independent() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    assert!(c.rate_hit("email:a", NOW, 1).await.unwrap());
    assert!(!c.rate_hit("email:a", NOW, 1).await.unwrap());
    assert!(
        c.rate_hit("email:a", NOW + 3600, 1).await.unwrap(),
        "next window"
    );
    assert!(c.rate_hit("email:b", NOW, 1).await.unwrap(), "other key");
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 1);
    assert_eq!(c.rate_count("email:a", NOW + 3600).await.unwrap(), 1);
    assert_eq!(c.rate_count("email:b", NOW).await.unwrap(), 1);
}

#[tokio::test]
async fn releasing_a_hit_frees_a_slot_but_never_goes_below_zero() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.rate_release("email:a", NOW).await.unwrap(); // nothing to release: no error
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 0);
    assert!(c.rate_hit("email:a", NOW, 2).await.unwrap());
    assert!(c.rate_hit("email:a", NOW, 2).await.unwrap());
    assert!(!c.rate_hit("email:a", NOW, 2).await.unwrap());
    c.rate_release("email:a", NOW).await.unwrap();
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 1);
    assert!(
        c.rate_hit("email:a", NOW, 2).await.unwrap(),
        "the freed slot is usable"
    );
    for _ in 0..5 {
        c.rate_release("email:a", NOW).await.unwrap();
    }
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 0);
    assert!(c.rate_hit("email:a", NOW, 2).await.unwrap());
    assert!(c.rate_hit("email:a", NOW, 2).await.unwrap());
    assert!(
        !c.rate_hit("email:a", NOW, 2).await.unwrap(),
        "releasing below zero bought no extra hits"
    );
}

#[tokio::test]
async fn a_rolled_back_hit_is_not_counted() {
    let (_db, store) = TestDb::store().await;
    assert!(conn(&store)
        .await
        .rate_hit("email:a", NOW, 5)
        .await
        .unwrap());
    let mut tx = store.begin().await.unwrap();
    assert!(tx.rate_hit("email:a", NOW, 5).await.unwrap());
    assert!(tx.rate_hit("email:new", NOW, 5).await.unwrap());
    assert_eq!(tx.rate_count("email:a", NOW).await.unwrap(), 2);
    tx.rollback().await.unwrap();
    let mut c = conn(&store).await;
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 1);
    assert_eq!(c.rate_count("email:new", NOW).await.unwrap(), 0);
}

// ---- outbox ----------------------------------------------------------------------

#[tokio::test]
async fn a_claimed_message_carries_its_payload_and_counts_an_attempt() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    let claimed = claim(&store, NOW, "worker-a", 10).await;
    assert_eq!(claimed.len(), 1);
    let m = &claimed[0];
    assert_eq!(
        (
            m.id.as_str(),
            m.message_id.as_str(),
            m.payload.as_str(),
            m.attempts,
            m.expires_at
        ),
        ("m1", "<m1@postern.test>", "sealed:m1", 1, NOW + 900)
    );
    let (owner, until): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT lease_owner, lease_until FROM outbox WHERE id = $1")
            .bind("m1")
            .fetch_one(&mut *conn(&store).await)
            .await
            .unwrap();
    assert_eq!(
        (owner.as_deref(), until),
        (Some("worker-a"), Some(NOW + 60))
    );
}

#[tokio::test]
async fn a_message_is_not_claimed_before_it_is_due() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    assert!(claim(&store, NOW - 1, "w", 10).await.is_empty());
    assert_eq!(claim(&store, NOW, "w", 10).await.len(), 1);
}

#[tokio::test]
async fn claiming_takes_at_most_limit_messages_oldest_due_first() {
    let (_db, store) = TestDb::store().await;
    for (id, at) in [("c", NOW - 1), ("a", NOW - 3), ("d", NOW), ("b", NOW - 2)] {
        insert_outbox(&store, id, at).await;
    }
    let mut first: Vec<_> = claim(&store, NOW, "w", 2)
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    first.sort();
    assert_eq!(first, ["a", "b"]);
    let mut rest: Vec<_> = claim(&store, NOW, "w", 10)
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    rest.sort();
    assert_eq!(rest, ["c", "d"]);
}

#[tokio::test]
async fn a_leased_message_is_taken_over_only_after_its_lease_runs_out() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    assert_eq!(
        store
            .claim_outbox(NOW, "a", NOW + 60, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .claim_outbox(NOW + 1, "b", NOW + 61, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store
            .claim_outbox(NOW + 60, "b", NOW + 120, 10)
            .await
            .unwrap()
            .is_empty(),
        "lease still holds at its end"
    );
    // Worker "a" crashed: once its lease has passed, "b" takes the message over.
    let taken = store
        .claim_outbox(NOW + 61, "b", NOW + 121, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (
            taken[0].id.as_str(),
            taken[0].attempts,
            taken[0].payload.as_str()
        ),
        ("m1", 2, "sealed:m1")
    );
}

#[tokio::test]
async fn a_sent_message_loses_its_payload_and_is_never_claimed_again() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    claim(&store, NOW, "w", 10).await;
    let mut c = conn(&store).await;
    c.outbox_sent("m1", NOW + 1).await.unwrap();
    let (payload, sent_at, lease): (Option<String>, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT payload, sent_at, lease_until FROM outbox WHERE id = $1")
            .bind("m1")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    assert_eq!((payload, sent_at, lease), (None, Some(NOW + 1), None));
    assert!(claim(&store, NOW + 10_000, "w", 10).await.is_empty());
    assert_eq!(c.outbox_pending().await.unwrap(), 0);
}

/// `id, payload, sent_at, lease_owner` of an outbox row.
type OutboxRow = (String, Option<String>, Option<i64>, Option<String>);

#[tokio::test]
async fn messages_sent_together_lose_their_payloads_in_one_statement_and_others_keep_theirs() {
    let (_db, store) = TestDb::store().await;
    for id in ["a", "b", "c"] {
        insert_outbox(&store, id, NOW).await;
    }
    claim(&store, NOW, "w", 10).await;
    let mut c = conn(&store).await;
    c.outbox_sent_all(&[], NOW + 1).await.unwrap();
    c.outbox_sent_all(&["a", "c"], NOW + 1).await.unwrap();
    let rows: Vec<OutboxRow> =
        sqlx::query_as("SELECT id, payload, sent_at, lease_owner FROM outbox ORDER BY id")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("a".to_owned(), None, Some(NOW + 1), None),
            (
                "b".to_owned(),
                Some("sealed:b".to_owned()),
                None,
                Some("w".to_owned())
            ),
            ("c".to_owned(), None, Some(NOW + 1), None),
        ]
    );
    assert_eq!(c.outbox_pending().await.unwrap(), 1);
}

#[tokio::test]
async fn a_retried_message_waits_until_its_next_attempt() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    claim(&store, NOW, "w", 10).await;
    let mut c = conn(&store).await;
    c.outbox_retry("m1", NOW + 300, "421 try later")
        .await
        .unwrap();
    let (error, lease): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT last_error, lease_until FROM outbox WHERE id = $1")
            .bind("m1")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    assert_eq!((error.as_deref(), lease), (Some("421 try later"), None));
    assert!(
        claim(&store, NOW + 299, "w", 10).await.is_empty(),
        "not due yet"
    );
    assert_eq!(c.outbox_pending().await.unwrap(), 1);
    let again = claim(&store, NOW + 300, "w", 10).await;
    assert_eq!(
        (again.len(), again[0].attempts, again[0].payload.as_str()),
        (1, 2, "sealed:m1")
    );
}

#[tokio::test]
async fn a_failed_message_is_given_up_and_keeps_its_sealed_payload_for_a_retry() {
    let (_db, store) = TestDb::store().await;
    insert_outbox(&store, "m1", NOW).await;
    claim(&store, NOW, "w", 10).await;
    let mut c = conn(&store).await;
    c.outbox_failed("m1", NOW + 5, "550 no such user")
        .await
        .unwrap();
    let (payload, failed_at, error): (Option<String>, Option<i64>, Option<String>) =
        sqlx::query_as("SELECT payload, failed_at, last_error FROM outbox WHERE id = $1")
            .bind("m1")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    assert_eq!(
        (payload.as_deref(), failed_at, error.as_deref()),
        (Some("sealed:m1"), Some(NOW + 5), Some("550 no such user"))
    );
    assert!(claim(&store, NOW + 10_000, "w", 10).await.is_empty());
    assert_eq!(c.outbox_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn pending_counts_messages_neither_sent_nor_given_up() {
    let (_db, store) = TestDb::store().await;
    for id in ["a", "b", "c", "d"] {
        insert_outbox(&store, id, NOW).await;
    }
    let mut c = conn(&store).await;
    assert_eq!(c.outbox_pending().await.unwrap(), 4);
    claim(&store, NOW, "w", 1).await; // leased is still pending
    c.outbox_sent("a", NOW).await.unwrap();
    c.outbox_failed("b", NOW, "boom").await.unwrap();
    c.outbox_retry("c", NOW + 60, "later").await.unwrap();
    assert_eq!(c.outbox_pending().await.unwrap(), 2);
}

#[tokio::test]
async fn the_backlog_counts_waiting_messages_and_dates_the_oldest() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    assert_eq!(
        c.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 0,
            oldest_created_at: None
        }
    );
    insert_outbox(&store, "old", NOW - 100).await;
    insert_outbox(&store, "mid", NOW - 50).await;
    insert_outbox(&store, "new", NOW).await;
    c.outbox_retry("mid", NOW + 60, "later").await.unwrap();
    assert_eq!(
        c.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 3,
            oldest_created_at: Some(NOW - 100)
        },
        "a message waiting for its retry is still pending"
    );
    c.outbox_sent("old", NOW).await.unwrap();
    assert_eq!(
        c.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 2,
            oldest_created_at: Some(NOW - 50)
        }
    );
    c.outbox_failed("mid", NOW, "550").await.unwrap();
    c.outbox_sent("new", NOW).await.unwrap();
    assert_eq!(c.outbox_backlog().await.unwrap().pending, 0);
}

#[tokio::test]
async fn pool_stats_count_connections_lent_out() {
    let (_db, store) = TestDb::store().await;
    assert_eq!(store.pool_stats().waiting, 0);
    let a = conn(&store).await;
    let b = conn(&store).await;
    let during = store.pool_stats();
    assert!(during.in_use >= 2, "{during:?}");
    assert!(during.max >= during.in_use + during.idle, "{during:?}");
    drop((a, b));
    // A returned connection goes back to the pool's idle list in the
    // background.
    let mut after = store.pool_stats();
    for _ in 0..100 {
        if after.in_use + 2 <= during.in_use {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        after = store.pool_stats();
    }
    assert!(after.in_use + 2 <= during.in_use, "{during:?} {after:?}");
    assert!(after.idle >= 2, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_claimers_never_get_the_same_message() {
    let (db, store) = TestDb::store().await;
    {
        let mut tx = store.begin().await.unwrap();
        for i in 0..200 {
            tx.insert_outbox(
                &format!("m{i:03}"),
                "<x@y>",
                "sealed",
                NOW - 200 + i,
                NOW + 900,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for owner in ["a", "b"] {
        let instance = Store::connect(&db.url).await.unwrap();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut got = Vec::new();
            loop {
                let batch = instance
                    .claim_outbox(NOW, owner, NOW + 60, 10)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return got;
                }
                assert!(batch.len() <= 10);
                got.extend(batch.into_iter().map(|m| m.id));
            }
        }));
    }
    let a = tasks.remove(0).await.unwrap();
    let b = tasks.remove(0).await.unwrap();
    let all: Vec<_> = a.iter().chain(&b).cloned().collect();
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a message was claimed twice ({} by a, {} by b)",
        a.len(),
        b.len()
    );
    assert_eq!(distinct.len(), 200);
    let claimed_once: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE attempts = 1")
        .fetch_one(&mut *conn(&store).await)
        .await
        .unwrap();
    assert_eq!(
        claimed_once, 200,
        "each message counted exactly one attempt"
    );
}

// ---- housekeeping ----------------------------------------------------------------

#[tokio::test]
async fn purging_removes_only_what_is_expired_or_past_retention() {
    let (_db, store) = TestDb::store().await;
    seed_app(&store, "app").await;
    let user = seed_user(&store, "a@example.com").await;
    let long_ago = NOW - 2 * 3600;
    let mut c = conn(&store).await;

    // Login requests and codes: kept for an hour after expiry, then removed.
    let stale_request = LoginRequest {
        created_at: long_ago - 900,
        expires_at: long_ago,
        ..login_request("app", "a@example.com")
    };
    let recently_expired = LoginRequest {
        expires_at: NOW - 60,
        ..login_request("app", "a@example.com")
    };
    let used_live = LoginRequest {
        consumed_at: Some(NOW - 1),
        ..login_request("app", "a@example.com")
    };
    let live = login_request("app", "a@example.com");
    for r in [&stale_request, &recently_expired, &used_live, &live] {
        c.insert_login_request(r).await.unwrap();
    }
    let stale_code = AuthorizationCode {
        expires_at: long_ago,
        ..authorization_code("app", &user.id)
    };
    let live_code = authorization_code("app", &user.id);
    for code in [&stale_code, &live_code] {
        c.insert_authorization_code(code).await.unwrap();
    }
    // Sessions: removed once past their cap or revoked long enough ago.
    let expired_session = Session {
        expires_at: long_ago,
        ..session(&user.id)
    };
    let revoked_session = Session {
        revoked_at: Some(long_ago),
        ..session(&user.id)
    };
    let just_revoked = Session {
        revoked_at: Some(NOW - 1),
        ..session(&user.id)
    };
    let live_session = session(&user.id);
    for s in [
        &expired_session,
        &revoked_session,
        &just_revoked,
        &live_session,
    ] {
        c.insert_session(s).await.unwrap();
    }
    // Outbox: delivered or given-up rows go; waiting ones stay.
    for id in ["sent-old", "failed-old", "waiting-old", "sent-new"] {
        let at = if id.ends_with("old") { long_ago } else { NOW };
        c.insert_outbox(id, "<x@y>", "sealed", at, NOW + 900)
            .await
            .unwrap();
    }
    c.outbox_sent("sent-old", long_ago).await.unwrap();
    c.outbox_failed("failed-old", long_ago, "550")
        .await
        .unwrap();
    c.outbox_sent("sent-new", NOW).await.unwrap();
    // Rate-limit windows: old ones go.
    c.rate_hit("email:a", NOW - 3 * 86_400, 5).await.unwrap();
    c.rate_hit("email:a", NOW - 86_400, 5).await.unwrap();
    c.rate_hit("email:a", NOW, 5).await.unwrap();
    // History: kept for the retention period.
    let retain_before = NOW - 90 * 86_400;
    let old_event = sign_in_event(&user.id, retain_before - 1);
    let kept_event = sign_in_event(&user.id, retain_before);
    for e in [&old_event, &kept_event] {
        c.insert_sign_in_event(e).await.unwrap();
    }

    let purged = c.purge_expired(NOW, retain_before).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            login_requests: 1,
            authorization_codes: 1,
            sessions: 2,
            refresh_tokens: 0,
            outbox: 2,
            rate_limits: 1,
            sign_in_events: 1,
            revoked_access_tokens: 0,
        }
    );
    assert_eq!(c.login_request(&stale_request.id).await.unwrap(), None);
    for r in [&recently_expired, &used_live, &live] {
        assert!(c.login_request(&r.id).await.unwrap().is_some(), "{r:?}");
    }
    assert!(c
        .consume_authorization_code(&live_code.code_hash, NOW)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        c.session_by_token(&expired_session.token_hash)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        c.session_by_token(&revoked_session.token_hash)
            .await
            .unwrap(),
        None
    );
    assert!(c
        .session_by_token(&just_revoked.token_hash)
        .await
        .unwrap()
        .is_some());
    assert!(c
        .session_by_token(&live_session.token_hash)
        .await
        .unwrap()
        .is_some());
    let mut outbox: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    outbox.sort();
    assert_eq!(outbox, ["sent-new", "waiting-old"]);
    assert_eq!(c.rate_count("email:a", NOW - 3 * 86_400).await.unwrap(), 0);
    assert_eq!(
        c.rate_count("email:a", NOW - 86_400).await.unwrap(),
        1,
        "a day-long window still counts"
    );
    assert_eq!(c.rate_count("email:a", NOW).await.unwrap(), 1);
    assert_eq!(c.sign_in_events(&user.id, 10).await.unwrap(), [kept_event]);
    assert!(
        c.user(&user.id).await.unwrap().is_some(),
        "users are never purged"
    );
    assert!(c.app("app").await.unwrap().is_some());

    assert_eq!(
        c.purge_expired(NOW, retain_before).await.unwrap(),
        Purged::default(),
        "purging again finds nothing"
    );
}

#[tokio::test]
async fn purging_removes_undelivered_messages_long_past_their_expiry() {
    let (_db, store) = TestDb::store().await;
    let mut c = conn(&store).await;
    c.insert_outbox("stale", "<x@y>", "sealed", NOW - 3 * 3600, NOW - 2 * 3600)
        .await
        .unwrap();
    c.insert_outbox("live", "<x@y>", "sealed", NOW - 3 * 3600, NOW + 60)
        .await
        .unwrap();
    assert_eq!(c.purge_expired(NOW, 0).await.unwrap().outbox, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    assert_eq!(left, ["live"]);
}
