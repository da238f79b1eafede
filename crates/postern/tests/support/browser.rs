//! A real headless Chromium driven over WebDriver (`fantoccini`), for the
//! end-to-end tests of the hosted pages: one `chromedriver` per [`Browser`],
//! started on a free port in its own process group and killed (with the
//! Chromium it started) when the browser is dropped; a fresh profile
//! directory per browser, so two browsers share no cookie.
//!
//! Selectors are form field names and form actions (`input[name=email]`,
//! `form[action="/login"] button[type=submit]`), never visible texts, so
//! the tests survive translations and redesigns of the pages.
//!
//! `chromedriver` missing fails the tests with a message saying what to
//! install; only `POSTERN_SKIP_BROWSER_TESTS=1` skips them, explicitly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Email, TestApp, TestClient};

/// How long a page may take to reach the state a test waits for.
const WAIT: Duration = Duration::from_secs(15);

/// Whether the browser tests are skipped: only when
/// `POSTERN_SKIP_BROWSER_TESTS=1` is set explicitly. Says so on stderr.
pub fn browser_tests_skipped() -> bool {
    let skip = std::env::var("POSTERN_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("POSTERN_SKIP_BROWSER_TESTS=1: this browser test is skipped");
    }
    skip
}

/// An executable named `name` on `PATH`, if any.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// `chromedriver`: `POSTERN_CHROMEDRIVER`, else the one on `PATH`.
/// Panics with what to do when there is none.
fn chromedriver_path() -> PathBuf {
    if let Some(p) = std::env::var_os("POSTERN_CHROMEDRIVER") {
        return PathBuf::from(p);
    }
    on_path("chromedriver").unwrap_or_else(|| {
        panic!(
            "the browser tests need chromedriver and Chromium, and chromedriver is not on PATH. \
             Install them (Debian: `apt-get install chromium chromium-driver`; .ci/run does so), \
             point POSTERN_CHROMEDRIVER at one, or set POSTERN_SKIP_BROWSER_TESTS=1 to skip \
             these tests explicitly."
        )
    })
}

/// The Chromium binary for chromedriver: `POSTERN_CHROMIUM`, else the first
/// of the usual names on `PATH`; `None` lets chromedriver look for itself.
fn chromium_path() -> Option<PathBuf> {
    std::env::var_os("POSTERN_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .find_map(|n| on_path(n))
        })
}

/// A free TCP port on loopback (bound then released: another process may
/// take it in between, so callers retry).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `chromedriver`, leader of its own process group so that
/// killing the group also ends the Chromium it started.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Self {
        let path = chromedriver_path();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&path);
            cmd.arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(if std::env::var_os("TEST_LOG").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                })
                .stderr(Stdio::inherit());
            // Its own process group: one kill ends chromedriver and Chromium.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
            let mut driver = Chromedriver {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver.wait_until_ready().await {
                Ok(()) => return driver,
                Err(e) => last = e,
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    /// Polls `/status` until chromedriver answers ready.
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited with {status}"));
            }
            if let Ok(res) = http.get(format!("{}/status", self.url)).send().await {
                if let Ok(v) = res.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no answer at {}/status", self.url))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a [`Browser`] is started.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Viewport width in CSS pixels.
    pub width: u32,
    /// Viewport height in CSS pixels.
    pub height: u32,
    /// The browser's language (`Accept-Language`), e.g. `"en"`, `"de"`.
    pub lang: String,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 800,
            lang: "en".to_owned(),
        }
    }
}

/// A headless Chromium with its own profile, driven over WebDriver.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    // Dropped in this order: the driver (and Chromium) first, then the profile.
    driver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A desktop-sized browser in English.
    pub async fn launch() -> Browser {
        Self::launch_with(BrowserOptions::default()).await
    }

    /// A browser with `opts`.
    pub async fn launch_with(opts: BrowserOptions) -> Browser {
        Self::launch_with_args(opts, Vec::new()).await
    }

    /// A browser with `opts` that reaches `host` (port 80) at `address`
    /// (`127.0.0.1:port`): a server can then have a public URL without a
    /// port in it, so screenshots stay the same from run to run.
    pub async fn launch_resolving(opts: BrowserOptions, host: &str, address: &str) -> Browser {
        Self::launch_with_args(
            opts,
            vec![format!("--host-resolver-rules=MAP {host} {address}")],
        )
        .await
    }

    async fn launch_with_args(opts: BrowserOptions, extra: Vec<String>) -> Browser {
        let driver = Chromedriver::start().await;
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            // Root (CI, containers) cannot use Chromium's sandbox.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            // No crash handler: it would leave chromedriver's process group.
            "--disable-breakpad".to_owned(),
            "--disable-crash-reporter".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", opts.width, opts.height),
            format!("--lang={}", opts.lang),
            format!("--accept-lang={}", opts.lang),
        ];
        args.extend(extra);
        let mut chrome = json!({
            "args": args,
            "prefs": { "intl.accept_languages": opts.lang },
        });
        if let Some(bin) = chromium_path() {
            chrome["binary"] = json!(bin.display().to_string());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), chrome);
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session with Chromium: {e}"));
        let browser = Browser {
            client,
            driver,
            _profile: profile,
        };
        browser.set_viewport(opts.width, opts.height).await;
        browser
    }

    /// Adds a WebDriver virtual authenticator (WebAuthn Level 2 §11.3:
    /// CTAP2, internal transport, resident keys, user verification that
    /// succeeds) to this browser, as a platform authenticator with a
    /// fingerprint would be. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        self.add_virtual_authenticator_with(json!({})).await
    }

    /// [`Browser::add_virtual_authenticator`] with the options of `extra`
    /// on top, e.g. `defaultBackupEligibility` for a synced passkey.
    pub async fn add_virtual_authenticator_with(&self, extra: Value) -> String {
        let mut options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        options
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let session = self
            .client
            .session_id()
            .await
            .expect("a WebDriver session")
            .expect("a session id");
        let url = format!(
            "{}/session/{session}/webauthn/authenticator",
            self.driver.url
        );
        let res: Value = reqwest::Client::new()
            .post(&url)
            .json(&options)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        res["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no virtual authenticator: {res}"))
            .to_owned()
    }

    /// The credentials a virtual authenticator holds (WebAuthn Level 2
    /// §11.7), as chromedriver lists them.
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let session = self
            .client
            .session_id()
            .await
            .expect("a WebDriver session")
            .expect("a session id");
        let url = format!(
            "{}/session/{session}/webauthn/authenticator/{authenticator}/credentials",
            self.driver.url
        );
        let res: Value = reqwest::get(&url)
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        res["value"].as_array().cloned().unwrap_or_default()
    }

    /// Sizes the window so that the viewport is `width`×`height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
        let (w, h) = self.viewport().await;
        if (w, h) != (width, height) {
            // The window has borders: grow it by what the viewport lacks.
            let ww = (2 * width).saturating_sub(w);
            let hh = (2 * height).saturating_sub(h);
            self.client
                .set_window_size(ww, hh)
                .await
                .expect("set the window size");
        }
    }

    /// The viewport's size in CSS pixels.
    pub async fn viewport(&self) -> (u32, u32) {
        let v = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("read the viewport size");
        let n = |i: usize| v[i].as_u64().unwrap_or(0) as u32;
        (n(0), n(1))
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver.
    pub async fn quit(self) {
        let Browser {
            client,
            driver,
            _profile,
        } = self;
        let _ = client.close().await;
        drop(driver);
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The address of the page shown now.
    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("the current URL")
    }

    /// The path of the page shown now.
    pub async fn path(&self) -> String {
        self.url().await.path().to_owned()
    }

    /// Waits until the page shown is at `path` (any query); returns its URL.
    pub async fn wait_for_path(&self, path: &str) -> url::Url {
        self.wait_for_url(|u| u.path() == path, &format!("a page at {path}"))
            .await
    }

    /// Waits until the address shown satisfies `ok`; `what` names it for
    /// the failure message.
    pub async fn wait_for_url(&self, ok: impl Fn(&url::Url) -> bool, what: &str) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if ok(&url) {
                return url;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited for {what}, the browser shows {url}:\n{}",
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element `css` selects, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            _ => panic!("no {css} on {}:\n{}", self.url().await, self.text().await),
        }
    }

    /// Whether the page has an element `css` selects (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|v| !v.is_empty())
    }

    /// Types `value` into the field `css` selects, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear the field");
        field.send_keys(value).await.expect("type into the field");
    }

    /// Clicks the element `css` selects — a submit button or a link — and
    /// waits until the page it leads to has loaded (a new document, even
    /// when the address stays the same, as for a POST answered in place).
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.click_element(element, css).await;
    }

    /// Every element `css` selects now, in document order (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// Clicks `element` (`what` names it in failure messages) and waits for
    /// the page it leads to, as [`Browser::click`] does.
    pub async fn click_element(&self, element: fantoccini::elements::Element, what: &str) {
        let css = what;
        // A mark on the current document: gone once another one is shown.
        self.js("window.__posternStale = true;").await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__posternStale !== true \
                     && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .is_ok_and(|v| v == true);
            if loaded {
                return;
            }
            if Instant::now() > deadline {
                panic!("clicking {css} on {} loaded no page", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `value` property of the field `css` selects.
    pub async fn value_of(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("read the value")
            .unwrap_or_default()
    }

    /// The page's visible text, for failure messages.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The text of the page's first `h1`, waiting for it.
    pub async fn h1(&self) -> String {
        self.find("h1").await.text().await.expect("the h1 text")
    }

    /// The HTTP status of the page shown now, from the Navigation Timing
    /// API (WebDriver shows no response headers or status).
    pub async fn status(&self) -> u16 {
        let v = self
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 return n ? n.responseStatus : 0;",
                vec![],
            )
            .await
            .expect("read the navigation status");
        v.as_u64().unwrap_or(0) as u16
    }

    /// The `lang` attribute of the page's `<html>`.
    pub async fn lang(&self) -> String {
        self.find("html")
            .await
            .attr("lang")
            .await
            .expect("read lang")
            .unwrap_or_default()
    }

    /// Runs `script` in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    /// Every cookie the browser holds for the page shown now, by name.
    pub async fn cookies(&self) -> BTreeMap<String, fantoccini::cookies::Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("read the cookies")
            .into_iter()
            .map(|c| (c.name().to_owned(), c))
            .collect()
    }

    /// Saves a screenshot as `docs/screenshots/{name}.png` when
    /// `POSTERN_SCREENSHOTS=1` (see [`shot`]).
    pub async fn shot(&self, name: &str) {
        shot(&self.client, name).await;
    }
}

/// Where screenshots go: `docs/screenshots/` at the repository root.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// Whether screenshots are wanted (`POSTERN_SCREENSHOTS=1`).
pub fn screenshots_wanted() -> bool {
    std::env::var("POSTERN_SCREENSHOTS").is_ok_and(|v| v == "1")
}

/// Saves the whole page `client` shows (the viewport's width, the page's
/// full height) as `docs/screenshots/{name}.png`, only when
/// `POSTERN_SCREENSHOTS=1`; otherwise does nothing.
pub async fn shot(client: &Client, name: &str) {
    if !screenshots_wanted() {
        return;
    }
    let dims = client
        .execute(
            "return [window.innerHeight, document.documentElement.scrollHeight];",
            vec![],
        )
        .await
        .expect("read the page height");
    let (inner, full) = (dims[0].as_u64().unwrap_or(0), dims[1].as_u64().unwrap_or(0));
    // WebDriver shoots the viewport only: stretch the window to the page.
    let restore = if full > inner {
        let (w, h) = client.get_window_size().await.expect("the window size");
        client
            .set_window_size(w as u32, (h + full - inner) as u32)
            .await
            .expect("stretch the window");
        Some((w as u32, h as u32))
    } else {
        None
    };
    let png = client.screenshot().await.expect("a screenshot");
    if let Some((w, h)) = restore {
        client
            .set_window_size(w, h)
            .await
            .expect("restore the window");
    }
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("create docs/screenshots");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
}

/// A tiny HTTP server standing in for an app's redirect URI, so the browser
/// can really load `http://127.0.0.1:<port>/callback`. It answers every
/// request with a small page and records the request targets.
pub struct Callback {
    /// `http://127.0.0.1:<port>/callback`.
    pub redirect_uri: String,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Callback {
    /// Starts listening on a free loopback port.
    pub async fn start() -> Callback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback listener");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16_384 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    if let Some(target) = head.split_whitespace().nth(1) {
                        seen.lock().unwrap().push(target.to_owned());
                    }
                    let body = "<!doctype html><title>App</title><h1>Back at the app</h1>";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Callback {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            hits,
            task,
        }
    }

    /// The request targets received so far (`/callback?code=...`).
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An `/authorize` request built by hand, as a relying party would: PKCE
/// S256, `state` and `nonce`.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The whole `/authorize` URL.
    pub url: String,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// The PKCE verifier (its S256 challenge is in the URL).
    pub verifier: String,
}

impl TestApp {
    /// An `/authorize` URL for `client` (scope `openid email`, PKCE S256,
    /// random `state` and `nonce`) plus `extra` parameters.
    pub fn authorization(&self, client: &TestClient, extra: &[(&str, &str)]) -> Authorization {
        use postern_core::crypto::{random_token, sha256_b64};
        let state = random_token(16);
        let nonce = random_token(16);
        let verifier = random_token(32);
        // RFC 7636 §4.2: S256 is BASE64URL(SHA256(verifier)), unpadded.
        let challenge = sha256_b64(verifier.as_bytes());
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "openid email"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        q.extend_from_slice(extra);
        let url = self.url(&format!(
            "/authorize?{}",
            serde_urlencoded::to_string(&q).unwrap()
        ));
        Authorization {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// Opens `auth` in `b` (no session there) and asserts that it lands on
    /// the email form.
    pub async fn start_authorization(&self, b: &Browser, auth: &Authorization) {
        b.goto(&auth.url).await;
        b.wait_for_path("/login").await;
        assert!(
            b.has("form[action=\"/login\"] input[name=email]").await,
            "/authorize without a session shows the email form:\n{}",
            b.text().await
        );
    }

    /// On the `/login` page `b` shows: types `email`, submits, and waits
    /// for "check your email". Returns the email that was sent.
    pub async fn sign_in_through_login(&self, b: &Browser, email: &str) -> Email {
        let before = self.inbox();
        self.submit_login_form(b, email).await;
        b.wait_for_path("/login/check").await;
        self.new_email_to(&before, email).await
    }

    /// On the `/login` page `b` shows: types `email` and submits, whatever
    /// the answer.
    pub async fn submit_login_form(&self, b: &Browser, email: &str) {
        b.wait_for_path("/login").await;
        b.fill("form[action=\"/login\"] input[name=email]", email)
            .await;
        // The form's own button: a "Did you mean …?" button inside it
        // belongs to another form (`form="suggested"`).
        b.click("form[action=\"/login\"] button[type=submit]:not([form])")
            .await;
    }

    /// Opens the link of `email` in `b`.
    pub async fn open_link(&self, b: &Browser, email: &Email) {
        let link = email.link.as_deref().expect("a link in the email");
        b.goto(&self.local(link)).await;
    }

    /// On "check your email" in `b`: types the code of `email` and submits.
    pub async fn type_code(&self, b: &Browser, email: &Email) {
        b.wait_for_path("/login/check").await;
        let code = email.code.as_deref().expect("a code in the subject");
        b.fill("form[action=\"/login/code\"] input[name=code]", code)
            .await;
        b.click("form[action=\"/login/code\"] button[type=submit]")
            .await;
    }

    /// Opens `/account` in `b` and waits until it shows: signing in as
    /// `email` through the email form and its link when Postern asks, and
    /// picking the current account when the chooser asks which one.
    pub async fn open_account(&self, b: &Browser, email: &str) {
        b.goto(&self.url("/account")).await;
        let at = b
            .wait_for_url(
                |u| ["/account", "/login", "/authorize"].contains(&u.path()),
                "the account page, the email form or the chooser",
            )
            .await;
        match at.path() {
            "/login" => {
                let sent = self.sign_in_through_login(b, email).await;
                self.open_link(b, &sent).await;
            }
            "/authorize" => {
                b.click("form[action=\"/authorize\"] button[name=account]")
                    .await;
            }
            _ => {}
        }
        b.wait_for_path("/account").await;
        assert!(
            b.has("form[action=\"/account/sign-out-everywhere\"]").await,
            "/account shows the account:\n{}",
            b.text().await
        );
    }

    /// On the consent page in `b`: clicks Allow.
    pub async fn allow(&self, b: &Browser) {
        b.click("form[action=\"/consent\"] button[name=decision][value=allow]")
            .await;
    }

    /// On the confirmation page of another browser: clicks Continue.
    pub async fn confirm(&self, b: &Browser) {
        b.click("form[action=\"/verify-email\"] button[type=submit]")
            .await;
    }

    /// Waits until `b` is back at `client`'s redirect URI, checks `state`
    /// and `iss` (RFC 9207) there, redeems the code with the PKCE verifier
    /// at `/token` and returns the token response.
    pub async fn expect_back_at_app(
        &self,
        b: &Browser,
        client: &TestClient,
        auth: &Authorization,
    ) -> Value {
        let url = b
            .wait_for_url(
                |u| u.as_str().starts_with(&format!("{}?", client.redirect_uri)),
                &format!("the app's redirect URI {}", client.redirect_uri),
            )
            .await;
        let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(
            params.get("state"),
            Some(&auth.state),
            "state is echoed: {url}"
        );
        assert_eq!(
            params.get("iss"),
            Some(&self.address),
            "iss is the issuer: {url}"
        );
        let code = params
            .get("code")
            .unwrap_or_else(|| panic!("no code: {url}"));
        let res = self.exchange_raw(client, code, Some(&auth.verifier)).await;
        assert_eq!(res.status(), 200, "the code is redeemed at /token");
        res.json().await.unwrap()
    }
}
