//! The administration services on a testkit database: the one
//! authorization decision, the app shape's validation, and pagination.

mod support;

use postern_auth::admin::{self, apps, users, Actor, AppPatch, PageRequest, Principal, Target};
use postern_auth::AuthError;
use support::*;

/// A change to an app's settings, for tables of cases.
type SettingsChange = Box<dyn FnOnce(&mut postern_core::app::AppSettings)>;

fn owner_of(apps: &[&str]) -> Principal {
    Principal {
        actor: Actor::Owner {
            email: "owner@example.com".into(),
            apps: apps.iter().map(|s| s.to_string()).collect(),
        },
        ip: None,
    }
}

#[tokio::test]
async fn owners_reach_only_their_apps_and_never_server_wide_things() {
    let env = env().await;
    let mine = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    let owner = owner_of(&[&mine.app.client_id]);
    assert!(owner
        .authorize(&env.svc, Target::App(&mine.app.client_id))
        .await
        .is_ok());
    for target in [Target::App(&other.app.client_id), Target::Server] {
        assert!(matches!(
            owner.authorize(&env.svc, target).await,
            Err(AuthError::Forbidden(_))
        ));
    }
    assert!(Principal::cli()
        .authorize(&env.svc, Target::Server)
        .await
        .is_ok());
    // Lists are filtered by the same principal.
    let listed = apps::list(&env.svc, &owner).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, mine.app.client_id);
    assert!(matches!(
        admin::ops::keys(&env.svc, &owner).await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        admin::tokens::list(&env.svc, &owner).await,
        Err(AuthError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_person_is_the_owners_only_after_signing_in_to_their_app_and_their_account_never() {
    let env = env().await;
    let mine = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    let b = Browser::at("203.0.113.9");
    env.request_link(&other, &b, "pat@example.com", "openid email")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let opened = postern_auth::signin::open_link(&env.svc, &token, b.who().ip)
        .await
        .unwrap();
    postern_auth::signin::consume_link(&env.svc, &opened, &b.who())
        .await
        .unwrap();
    let user = users::search(&env.svc, &Principal::cli(), "pat@", &PageRequest::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let outsider = owner_of(&[&mine.app.client_id]);
    assert!(matches!(
        users::read(&env.svc, &outsider, &user.id).await,
        Err(AuthError::Forbidden(_))
    ));
    let page = users::search(&env.svc, &outsider, "", &PageRequest::default())
        .await
        .unwrap();
    assert!(page.items.is_empty(), "not their app's person");
    let insider = owner_of(&[&other.app.client_id]);
    assert_eq!(
        users::read(&env.svc, &insider, &user.id)
            .await
            .unwrap()
            .email,
        "pat@example.com"
    );
    // Their account is never the owner's: it signs in to every app.
    assert!(matches!(
        insider.authorize(&env.svc, Target::Account(&user.id)).await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        users::set_disabled(&env.svc, &insider, &user.id, true).await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        users::set_disabled(&env.svc, &insider, &user.id, false).await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        users::delete(&env.svc, &insider, &user.id).await,
        Err(AuthError::Forbidden(_))
    ));
    let kept = users::read(&env.svc, &Principal::cli(), &user.id)
        .await
        .expect("still there");
    assert!(!kept.disabled, "and still enabled");
    assert!(Principal::cli()
        .authorize(&env.svc, Target::Account(&user.id))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_patch_names_the_field_it_refuses_and_owners_cannot_change_owners() {
    let env = env().await;
    let mine = env.app(|_| {}).await;
    let owner = owner_of(&[&mine.app.client_id]);
    let err = apps::from_json::<AppPatch>(serde_json::json!({"brand": {}})).unwrap_err();
    assert!(err.to_string().contains("brand"), "{err}");
    let patch: AppPatch =
        apps::from_json(serde_json::json!({"owners": ["x@example.com"]})).unwrap();
    assert!(matches!(
        apps::update(&env.svc, &owner, &mine.app.client_id, patch).await,
        Err(AuthError::Forbidden(_))
    ));
    let patch: AppPatch = apps::from_json(serde_json::json!({"redirect_uris": []})).unwrap();
    let err = apps::update(&env.svc, &Principal::cli(), &mine.app.client_id, patch)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redirect_uris"), "{err}");
    let patch: AppPatch =
        apps::from_json(serde_json::json!({"owners": ["Boss@Example.com"]})).unwrap();
    let view = apps::update(&env.svc, &Principal::cli(), &mine.app.client_id, patch)
        .await
        .unwrap();
    assert_eq!(view.owners, ["boss@example.com"], "normalized");
}

#[test]
fn page_requests_check_limit_and_cursor() {
    let p = |cursor: Option<&str>, limit: Option<i64>| PageRequest {
        cursor: cursor.map(str::to_owned),
        limit,
    };
    assert_eq!(p(None, None).parse().unwrap().0, 50);
    assert!(p(None, Some(0)).parse().is_err());
    assert!(p(None, Some(201)).parse().is_err());
    assert_eq!(p(None, Some(200)).parse().unwrap().0, 200);
    assert!(p(Some("x"), None).parse().is_err());
    let (_, key) = p(Some("12.abc"), None).parse().unwrap();
    assert_eq!(key.unwrap().at, 12);
}

/// The app cache (`Store::app`, issue 13) never outlives an admin change:
/// on the instance that made it the very next request sees it; another
/// instance on the same database (its own cache) within `APP_CACHE_TTL`.
#[tokio::test]
async fn an_app_changed_through_the_admin_api_is_seen_at_once_here_and_within_the_cache_ttl_elsewhere(
) {
    let env = env().await;
    let app = env.app(|_| {}).await;
    let id = app.app.client_id.clone();
    // A second instance: the same services on a store of its own.
    let other_store = postern_store::Store::connect(&env.db.url).await.unwrap();
    let other = Env2 {
        svc: postern_auth::Services {
            store: other_store,
            ..env.svc.clone()
        },
    };
    let b = Browser::at("203.0.113.7");
    // Both instances cache the app.
    env.request_link(&app, &b, "amy@example.com", "openid")
        .await
        .unwrap();
    other
        .request_link(&env, &app, &b, "amy@example.com")
        .await
        .unwrap();

    // A new redirect URI works here at once.
    let new_uri = "https://app.example/new-callback";
    let patch: AppPatch = apps::from_json(serde_json::json!({
        "redirect_uris": [support::REDIRECT_URI, new_uri]
    }))
    .unwrap();
    apps::update(&env.svc, &Principal::cli(), &id, patch)
        .await
        .unwrap();
    let mut raw = env.raw_params(&app, "openid");
    raw.redirect_uri = Some(new_uri.to_owned());
    postern_auth::signin::validate_auth_params(&env.svc, &raw)
        .await
        .expect("the new redirect URI, on the instance that added it");

    // Disabled: refused here at once.
    let patch: AppPatch = apps::from_json(serde_json::json!({"enabled": false})).unwrap();
    apps::update(&env.svc, &Principal::cli(), &id, patch)
        .await
        .unwrap();
    assert!(matches!(
        env.request_link(&app, &b, "amy@example.com", "openid")
            .await
            .map_err(|e| e.into_inner()),
        Err(AuthError::AppDisabled)
    ));
    // Elsewhere within the cache's lifetime, and from then on.
    tokio::time::sleep(postern_store::APP_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert!(matches!(
        other
            .request_link(&env, &app, &b, "amy@example.com")
            .await
            .map_err(|e| e.into_inner()),
        Err(AuthError::AppDisabled)
    ));
    postern_auth::signin::validate_auth_params(&other.svc, &raw)
        .await
        .expect("the new redirect URI, on the other instance");

    // Deleted: unknown here at once.
    apps::delete(&env.svc, &Principal::cli(), &id)
        .await
        .unwrap();
    assert!(matches!(
        postern_auth::signin::app_named(&env.svc, Some(&id)).await,
        Err(AuthError::UnknownClient)
    ));
}

/// Another instance's services.
struct Env2 {
    svc: postern_auth::Services,
}

impl Env2 {
    async fn request_link(
        &self,
        env: &Env,
        app: &TestApp,
        browser: &Browser,
        email: &str,
    ) -> Result<postern_auth::signin::LinkSent, AuthError> {
        let params =
            postern_auth::signin::validate_auth_params(&self.svc, &env.raw_params(app, "openid"))
                .await?;
        postern_auth::signin::request_link(&self.svc, &params, email, &browser.who()).await
    }
}

/// A browser link an administrator issues has no asking browser and no
/// asking network: under `same_browser`, `remote` or `bind_ip_range` it
/// could never be used, so none is issued (and nothing is queued); the
/// headless flow and `device_policy = any` still get one.
#[tokio::test]
async fn a_browser_admin_link_is_refused_where_only_the_asking_browser_could_use_it() {
    use postern_auth::admin::users::{LinkFlow, SignInLinkRequest};
    use postern_core::app::DevicePolicy;

    let env = env().await;
    let b = Browser::at("203.0.113.9");
    let open = env.app(|_| {}).await;
    env.request_link(&open, &b, "ada@example.com", "openid email")
        .await
        .unwrap();
    let (token, _) = env.last_link_and_code().await;
    let opened = postern_auth::signin::open_link(&env.svc, &token, b.who().ip)
        .await
        .unwrap();
    postern_auth::signin::consume_link(&env.svc, &opened, &b.who())
        .await
        .unwrap();
    let user = users::search(&env.svc, &Principal::cli(), "ada@", &PageRequest::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let request = |client_id: &str, flow: LinkFlow| SignInLinkRequest {
        client_id: client_id.to_owned(),
        flow,
        redirect_uri: None,
        send: true,
    };
    let refused: [SettingsChange; 3] = [
        Box::new(|s| s.device_policy = DevicePolicy::SameBrowser),
        Box::new(|s| s.device_policy = DevicePolicy::Remote),
        Box::new(|s| s.bind_ip_range = true),
    ];
    for change in refused {
        let app = env.app(change).await;
        env.emails().await; // drained: each call returns what is new
        let outcome = users::sign_in_link(
            &env.svc,
            &Principal::cli(),
            &user.id,
            request(&app.app.client_id, LinkFlow::Browser),
        )
        .await;
        assert!(
            matches!(&outcome, Err(AuthError::Conflict(why)) if why.contains("device_policy")),
            "refused: {:?}",
            outcome.map(|_| ())
        );
        assert!(env.emails().await.is_empty(), "nothing queued");
        // The headless flow has no browser to bind: it still gets a link.
        users::sign_in_link(
            &env.svc,
            &Principal::cli(),
            &user.id,
            request(&app.app.client_id, LinkFlow::Headless),
        )
        .await
        .expect("a headless link is issued");
        assert_eq!(env.emails().await.len(), 1, "and emailed");
    }
    users::sign_in_link(
        &env.svc,
        &Principal::cli(),
        &user.id,
        request(&open.app.client_id, LinkFlow::Browser),
    )
    .await
    .expect("device_policy = any: a browser link is issued");
    assert_eq!(env.emails().await.len(), 1, "and emailed");
}
