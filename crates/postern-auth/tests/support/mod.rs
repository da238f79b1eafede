//! The services on a fresh testkit database, without HTTP: a manual clock,
//! real signing keys, and the real outbox read back to find a link.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;

use postern_auth::oidc::{self, BrowserAccount};
use postern_auth::signin::{self, Requester, SignedIn, Visit};
use postern_auth::{KeyManager, Services, Settings};
use postern_core::crypto::{random_token, sha256_b64};
use postern_core::{App, AppSettings, ManualClock, MasterKey, Secrets};
use postern_mail::OutgoingEmail;
use postern_store::Queries;
use postern_testkit::TestDb;

/// Where an app's browser sends people back.
pub const REDIRECT_URI: &str = "https://app.example/callback";

/// The services on their own database.
pub struct Env {
    /// The database (dropped last).
    pub db: TestDb,
    /// What the faces call.
    pub svc: Services,
    /// The clock the services read.
    pub clock: Arc<ManualClock>,
}

/// Services on a fresh database, with one server-wide limit changed by
/// `settings`.
pub async fn env_with(settings: impl FnOnce(&mut Settings)) -> Env {
    let (db, store) = TestDb::store().await;
    let secrets = Arc::new(Secrets::new(
        &MasterKey::from_hex(&"ab".repeat(32)).unwrap(),
    ));
    let clock = Arc::new(ManualClock::new());
    let keys = KeyManager::load(store.clone(), secrets.clone(), clock.clone())
        .await
        .expect("signing keys");
    let mut s = Settings {
        public_url: url::Url::parse("https://id.example").unwrap(),
        rate_limit_email_per_hour: 100,
        rate_limit_ip_per_hour: 1000,
        session_idle_ttl: 14 * 86_400,
        session_max_age: 30 * 86_400,
        mail_from_domain: "id.example".to_owned(),
        admin_emails: vec!["admin@example.com".to_owned()],
        admin_links: postern_auth::AdminLinks::Copy,
    };
    settings(&mut s);
    let svc = Services {
        settings: Arc::new(s),
        store,
        secrets,
        clock: clock.clone(),
        keys,
        mail_wake: Default::default(),
        metrics: Default::default(),
    };
    Env { db, svc, clock }
}

/// Services with the default settings.
pub async fn env() -> Env {
    env_with(|_| {}).await
}

/// A registered app.
pub struct TestApp {
    /// Its registration.
    pub app: App,
    /// Its secret (confidential apps).
    pub secret: Option<String>,
}

/// A person's browser (or a headless app's caller).
#[derive(Clone)]
pub struct Browser {
    /// Its binding secret (the binding cookie).
    pub binding: String,
    /// Its IP.
    pub ip: IpAddr,
    /// Its session cookie's secrets, current first.
    pub sessions: Vec<String>,
}

impl Browser {
    /// A new browser at `ip`.
    pub fn at(ip: &str) -> Self {
        Browser {
            binding: random_token(32),
            ip: ip.parse().unwrap(),
            sessions: Vec::new(),
        }
    }

    /// Who is asking, as the hosted pages say it.
    pub fn who(&self) -> Requester {
        Requester {
            ip: self.ip,
            user_agent: Some("test".to_owned()),
            accept_language: None,
            binding: Some(self.binding.clone()),
            ip_known: true,
            headless: false,
            passkey_lost: false,
        }
    }
}

impl Env {
    /// Now, on the services' clock.
    pub fn now(&self) -> i64 {
        postern_core::Clock::now(&*self.clock)
    }

    /// Registers an app (first-party, one redirect URI) changed by `change`.
    pub async fn app(&self, change: impl FnOnce(&mut AppSettings)) -> TestApp {
        let mut settings = AppSettings {
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            first_party: true,
            ..AppSettings::default()
        };
        change(&mut settings);
        App::validate("Test App", &mut settings).expect("valid test app");
        let now = self.now();
        let app = App {
            client_id: random_token(16),
            name: "Test App".to_owned(),
            settings,
            created_at: now,
            updated_at: now,
        };
        let secret = (!app.settings.public).then(|| format!("pcs_{}", random_token(32)));
        let hash = secret.as_deref().map(|s| sha256_b64(s.as_bytes()));
        self.svc
            .store
            .conn()
            .await
            .unwrap()
            .insert_app(&app, hash.as_deref())
            .await
            .unwrap();
        TestApp { app, secret }
    }

    /// Authorization parameters for `app` (PKCE for public apps).
    pub fn raw_params(&self, app: &TestApp, scope: &str) -> signin::RawAuthParams {
        let public = app.app.settings.public;
        signin::RawAuthParams {
            client_id: Some(app.app.client_id.clone()),
            redirect_uri: Some(REDIRECT_URI.to_owned()),
            scope: Some(scope.to_owned()),
            state: Some("st".to_owned()),
            code_challenge: public
                .then(|| sha256_b64(b"verifier-verifier-verifier-verifier-verifier")),
            code_challenge_method: public.then(|| "S256".to_owned()),
            ..Default::default()
        }
    }

    /// Asks for a link as the hosted form does, from `browser`.
    pub async fn request_link(
        &self,
        app: &TestApp,
        browser: &Browser,
        email: &str,
        scope: &str,
    ) -> Result<signin::LinkSent, postern_auth::AuthError> {
        let params = signin::validate_auth_params(&self.svc, &self.raw_params(app, scope)).await?;
        signin::request_link(&self.svc, &params, email, &browser.who()).await
    }

    /// Every email queued so far, decrypted from the real outbox, oldest
    /// first (each is claimed, so each is returned once).
    pub async fn emails(&self) -> Vec<OutgoingEmail> {
        let now = self.now();
        let claimed = self
            .svc
            .store
            .claim_outbox(now + 1, "test", now + 60, 100)
            .await
            .unwrap();
        claimed
            .iter()
            .map(|m| {
                let json = self
                    .svc
                    .secrets
                    .decrypt(&format!("outbox:{}", m.id), &m.payload)
                    .unwrap();
                serde_json::from_slice(&json).unwrap()
            })
            .collect()
    }

    /// The link and code of the newest email.
    pub async fn last_link_and_code(&self) -> (String, String) {
        let mail = self.emails().await.pop().expect("an email");
        let token: String = mail
            .text
            .split("token=")
            .nth(1)
            .expect("a link with a token")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .collect();
        // The code stands on a line of its own.
        let code = mail
            .text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .expect("a 6-digit code")
            .to_owned();
        (token, code)
    }

    /// Signs `email` in to `app` in `browser` through a link opened there,
    /// keeping the new session in the browser.
    pub async fn sign_in(&self, app: &TestApp, browser: &mut Browser, email: &str) -> SignedIn {
        self.request_link(app, browser, email, "openid email")
            .await
            .expect("link sent");
        let (token, _) = self.last_link_and_code().await;
        let Visit::SignedIn(signed_in) = signin::visit(&self.svc, &token, &browser.who())
            .await
            .expect("the link works")
        else {
            panic!("the asking browser signs in at once");
        };
        browser.sessions = oidc::remember_session(
            &self.svc,
            browser.sessions.clone(),
            &signed_in.session_secret,
        )
        .await
        .unwrap();
        signed_in
    }

    /// The browser's live accounts, current first.
    pub async fn accounts(&self, browser: &Browser) -> Vec<BrowserAccount> {
        oidc::browser_accounts(&self.svc, browser.sessions.clone())
            .await
            .unwrap()
    }
}
