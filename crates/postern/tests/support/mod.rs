//! `spawn_app()`: a real Postern on port 0 with a fresh database, email
//! written to files, and a clock the test moves.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use postern::config::{load, Overrides};
use postern::serve::Application;
use postern_core::crypto::{random_token, sha256_b64};
use postern_core::{App, AppSettings, ManualClock};
use postern_store::Queries;
use postern_testkit::TestDb;
use postern_web::AppState;

pub mod admin;
mod flows;
// Each test binary uses some helpers only; a glob nobody uses is fine.
#[allow(unused_imports)]
pub use flows::*;
mod oidc;
#[allow(unused_imports)]
pub use oidc::*;
mod browser;
#[allow(unused_imports)]
pub use browser::*;

/// The master key every test server uses.
pub const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The public URL in every test server's configuration (links carry it).
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Everything the server logged, for tests that check secrets stay out of logs.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(
        &LOGS
            .get()
            .map(|l| l.lock().unwrap().clone())
            .unwrap_or_default(),
    )
    .into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=warn,h2=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// A running test server.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// Its database (dropped with the app).
    pub db: TestDb,
    /// The server's state (store, secrets, clock).
    pub state: AppState,
    /// Where the `file://` transport writes `.eml` files.
    pub mail_dir: PathBuf,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A test server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A test server with extra `POSTERN_*` settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new().await;
    let base = [
        ("POSTERN_BIND", "127.0.0.1:0"),
        ("POSTERN_PUBLIC_URL", PUBLIC_URL),
    ];
    spawn(db, &base, extra)
        .await
        .expect("build the application")
}

/// A test server whose public URL is the address it listens on, as an
/// OpenID Provider must be for relying parties that check the issuer
/// (OIDC Discovery §4.3): `POSTERN_BIND=127.0.0.1:<port>` and
/// `POSTERN_PUBLIC_URL=http://127.0.0.1:<port>` on a free port.
pub async fn spawn_oidc_app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut db = TestDb::new().await;
    // The free port is found by binding and releasing it; another process
    // may take it in between, so try a few.
    let mut last_error = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bind = format!("127.0.0.1:{port}");
        let public_url = format!("http://127.0.0.1:{port}");
        let base = [
            ("POSTERN_BIND", bind.as_str()),
            ("POSTERN_PUBLIC_URL", public_url.as_str()),
        ];
        match spawn(db, &base, extra).await {
            Ok(app) => return app,
            Err((returned, e)) => {
                db = returned;
                last_error = Some(e);
            }
        }
    }
    panic!("build the application: {:?}", last_error);
}

/// A test server at `http://localhost:<port>` (its public URL and the
/// address tests use): WebAuthn needs a domain as its relying party's id,
/// and browsers take `localhost` as a secure context.
pub async fn spawn_localhost_app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut db = TestDb::new().await;
    let mut last_error = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bind = format!("127.0.0.1:{port}");
        let public_url = format!("http://localhost:{port}");
        let base = [
            ("POSTERN_BIND", bind.as_str()),
            ("POSTERN_PUBLIC_URL", public_url.as_str()),
        ];
        match spawn(db, &base, extra).await {
            Ok(mut app) => {
                app.address = public_url;
                return app;
            }
            Err((returned, e)) => {
                db = returned;
                last_error = Some(e);
            }
        }
    }
    panic!("build the application: {:?}", last_error);
}

/// Builds and starts a server on `db` with the usual test environment,
/// `base` (bind address and public URL), then `extra`. On failure hands
/// the database back with the error.
async fn spawn(
    db: TestDb,
    base: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Result<TestApp, (TestDb, anyhow::Error)> {
    init_logs();
    let mail_dir = db.dir.path().join("mail");
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("POSTERN_DATABASE_URL", db.url.as_str()),
        ("POSTERN_MASTER_KEY", MASTER_KEY),
    ]
    .iter()
    .chain(base)
    {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env.insert(
        "POSTERN_MAIL".to_owned(),
        format!("file://{}", mail_dir.display()),
    );
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let (config, _warnings) =
        load(&Overrides::default(), &env, db.dir.path()).expect("test configuration");
    let clock = Arc::new(ManualClock::new());
    let app = match Application::build(&config, clock.clone(), db.dir.path()).await {
        Ok(app) => app,
        Err(e) => return Err((db, e)),
    };
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    Ok(TestApp {
        address,
        db,
        state,
        mail_dir,
        clock,
        shutdown: Some(tx),
        server: Some(server),
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A registered app, with its secret when confidential.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// A browser: keeps cookies, never follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A parsed email as the `file://` transport wrote it.
#[derive(Debug, Clone)]
pub struct Email {
    pub raw: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub link: Option<String>,
    pub code: Option<String>,
}

impl TestApp {
    /// Registers an app with `change` applied to default settings (first
    /// party unless changed, so no consent screen).
    pub async fn create_app(&self, change: impl FnOnce(&mut AppSettings)) -> TestClient {
        let redirect_uri = "https://app.example/callback".to_owned();
        let mut settings = AppSettings {
            redirect_uris: vec![redirect_uri.clone()],
            first_party: true,
            ..AppSettings::default()
        };
        change(&mut settings);
        App::validate("Test App", &mut settings).expect("valid test app");
        let now = self.clock_now();
        let app = App {
            client_id: random_token(16),
            name: "Test App".to_owned(),
            settings,
            created_at: now,
            updated_at: now,
        };
        let secret = (!app.settings.public).then(|| format!("pcs_{}", random_token(32)));
        self.state
            .store
            .conn()
            .await
            .unwrap()
            .insert_app(
                &app,
                secret
                    .as_deref()
                    .map(|s| sha256_b64(s.as_bytes()))
                    .as_deref(),
            )
            .await
            .unwrap();
        TestClient {
            client_id: app.client_id,
            secret,
            redirect_uri: app.settings.redirect_uris[0].clone(),
        }
    }

    pub fn clock_now(&self) -> i64 {
        use postern_core::Clock;
        self.clock.now()
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A link from an email, pointed at this server.
    pub fn local(&self, link: &str) -> String {
        link.replacen(PUBLIC_URL, &self.address, 1)
    }

    /// `POST /request-magic-link` with a JSON body.
    pub async fn request_link(
        &self,
        client: &reqwest::Client,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        client
            .post(self.url("/request-magic-link"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The standard JSON body for `app` and `email`.
    pub fn link_body(&self, app: &TestClient, email: &str) -> serde_json::Value {
        serde_json::json!({
            "email": email,
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": "openid email",
            "state": "st-123",
            "nonce": "n-456",
        })
    }

    /// Asks for a link as the asking browser would (same origin), returning
    /// the browser that holds the binding cookie.
    pub async fn request_link_in_browser(&self, app: &TestClient, email: &str) -> reqwest::Client {
        let b = browser();
        let res = b
            .post(self.url("/request-magic-link"))
            .header("origin", PUBLIC_URL)
            .json(&self.link_body(app, email))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        b
    }

    /// Every email written so far, oldest first.
    pub fn emails(&self) -> Vec<Email> {
        let Ok(dir) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| parse_email(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// Waits (up to 5 s) until `n` emails have been written.
    pub async fn wait_for_emails(&self, n: usize) -> Vec<Email> {
        for _ in 0..250 {
            let emails = self.emails();
            if emails.len() >= n {
                return emails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} emails, found {}", self.emails().len());
    }

    /// The newest email to `to`, waiting for it.
    pub async fn last_email_to(&self, to: &str) -> Email {
        for _ in 0..250 {
            if let Some(e) = self.emails().into_iter().rev().find(|e| e.to == to) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no email to {to}");
    }

    /// Rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.state.store.conn().await.unwrap();
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }

    /// Every stored value of every table, as text, for "never stored in plain" checks.
    pub async fn dump_database(&self) -> String {
        use sqlx::Row;
        let mut out = String::new();
        let mut conn = self.state.store.conn().await.unwrap();
        for table in [
            "apps",
            "app_secrets",
            "users",
            "login_requests",
            "sessions",
            "grants",
            "authorization_codes",
            "refresh_tokens",
            "sign_in_events",
            "signing_keys",
            "outbox",
            "rate_limits",
            "admin_tokens",
            "audit_log",
        ] {
            let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            for row in rows {
                for i in 0..row.columns().len() {
                    if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                        out.push_str(&s);
                        out.push('\n');
                    } else if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(i) {
                        out.push_str(&n.to_string());
                        out.push('\n');
                    }
                }
            }
        }
        // The SQLite files themselves, WAL included.
        for name in ["postern.db", "postern.db-wal"] {
            if let Ok(bytes) = std::fs::read(self.db.dir.path().join(name)) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        out
    }
}

/// Parses one `.eml`.
pub fn parse_email(raw: &[u8]) -> Email {
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable email");
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    let subject = msg.subject().unwrap_or_default().to_owned();
    let text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let html = msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/verify-email?token=pml_"))
        .map(|w| {
            w.trim_matches(|c: char| c == '<' || c == '>' || c == '"')
                .to_owned()
        });
    let code = subject
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned);
    Email {
        raw: String::from_utf8_lossy(raw).into_owned(),
        to,
        subject,
        text,
        html,
        link,
        code,
    }
}

/// The `pml_` token of a link.
pub fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(res: &reqwest::Response) -> BTreeMap<String, String> {
    let loc = res
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap();
    let url = url::Url::parse(loc).expect("an absolute Location");
    url.query_pairs().into_owned().collect()
}

/// The value of a hidden form field in an HTML page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
            .replace("&amp;", "&"),
    )
}
