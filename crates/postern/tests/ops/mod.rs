//! Real processes for the operations tests: `postern serve` started from
//! the built binary, an SMTP sink that records every message it accepts
//! (and can hold a delivery half-way), a load generator that asks for
//! links, and a round-robin TCP proxy in front of several instances.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_core::crypto::random_token;
use postern_core::{App, AppSettings, Clock as _, SystemClock};
use postern_store::{Queries as _, Store};
use reqwest::{Client, Response};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const REDIRECT_URI: &str = "https://app.example/callback";

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub to: String,
    pub message_id: String,
    pub at: Instant,
    pub raw: String,
}

/// An SMTP server (RFC 5321, enough for lettre) that records what it
/// accepts. While `hold` is set, a message's DATA is read but never
/// answered: the delivery stays in flight until the client goes away.
pub struct Sink {
    pub addr: SocketAddr,
    pub arrivals: Mutex<Vec<Arrival>>,
    pub hold: AtomicBool,
    pub held: AtomicUsize,
}

impl Sink {
    pub async fn start() -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            arrivals: Mutex::new(Vec::new()),
            hold: AtomicBool::new(false),
            held: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&sink);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sink = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = sink.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Arrivals by recipient.
    pub fn by_recipient(&self) -> BTreeMap<String, Vec<Arrival>> {
        let mut out: BTreeMap<String, Vec<Arrival>> = BTreeMap::new();
        for a in self.arrivals() {
            out.entry(a.to.clone()).or_default().push(a);
        }
        out
    }

    /// Waits up to `secs` for a message to `to`.
    pub async fn wait_for(&self, to: &str, secs: u64) -> Option<Arrival> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(a) = self.arrivals().into_iter().find(|a| a.to == to) {
                return Some(a);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits up to `secs` until `n` deliveries are held half-way (with
    /// `hold` on); panics naming how many arrived.
    pub async fn wait_held(&self, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.held.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries reached the sink",
                self.held.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `secs` until every address in `to` has a message.
    pub async fn wait_for_all(&self, to: &HashSet<String>, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let got: HashSet<String> = self.arrivals().into_iter().map(|a| a.to).collect();
            if to.is_subset(&got) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write.write_all(b"220 ops-test sink\r\n").await?;
        let mut to = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let verb = line
                .split([' ', ':', '\r', '\n'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-ops-test\r\n250 8BITMIME\r\n",
                "HELO" | "MAIL" | "RSET" | "NOOP" => b"250 ok\r\n",
                "RCPT" => {
                    to = line
                        .split('<')
                        .nth(1)
                        .and_then(|s| s.split('>').next())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    b"250 ok\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 go on\r\n").await?;
                    let mut raw = String::new();
                    loop {
                        let mut l = String::new();
                        if reader.read_line(&mut l).await? == 0 {
                            return Ok(());
                        }
                        if l == ".\r\n" || l == ".\n" {
                            break;
                        }
                        raw.push_str(l.strip_prefix('.').unwrap_or(&l));
                    }
                    if self.hold.load(Ordering::SeqCst) {
                        // Never answered: in flight until the client dies.
                        self.held.fetch_add(1, Ordering::SeqCst);
                        let mut rest = String::new();
                        while reader.read_line(&mut rest).await? > 0 {}
                        return Ok(());
                    }
                    let message_id = raw
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("Message-ID:")
                                .or_else(|| l.strip_prefix("Message-Id:"))
                        })
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    self.arrivals.lock().unwrap().push(Arrival {
                        to: to.clone(),
                        message_id,
                        at: Instant::now(),
                        raw,
                    });
                    b"250 queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 no\r\n",
            };
            write.write_all(reply).await?;
        }
    }
}

/// `postern serve` as a child process.
pub struct Instance {
    pub port: u16,
    child: Option<Child>,
    pub started: Instant,
}

impl Instance {
    /// Starts `postern serve` on `db_url` in `dir`, listening on `port`
    /// (0: a free one), delivering to `smtp`, with `extra` settings.
    pub fn start(
        dir: &std::path::Path,
        db_url: &str,
        port: u16,
        smtp: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postern"));
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("POSTERN_DATABASE_URL", db_url)
            .env("POSTERN_MASTER_KEY", MASTER_KEY)
            .env("POSTERN_BIND", format!("127.0.0.1:{port}"))
            .env("POSTERN_PUBLIC_URL", "http://127.0.0.1:8080")
            .env("POSTERN_MAIL", smtp)
            .env("POSTERN_RATE_LIMIT_IP_PER_HOUR", "1000000")
            .env(
                "POSTERN_LOG",
                std::env::var("OPS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null());
        if std::env::var_os("OPS_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("postern serve starts");
        Self {
            port,
            child: Some(child),
            started: Instant::now(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn ready(&self, secs: u64) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "instance on {} never got ready",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (after [`Instance::term`]); returns how
    /// long it took, or None after `secs`.
    pub async fn exited_within(&mut self, secs: u64) -> Option<Duration> {
        let start = Instant::now();
        let child = self.child.as_mut()?;
        while start.elapsed() < Duration::from_secs(secs) {
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Registers a confidential first-party app; returns (client_id, secret).
pub async fn create_app(store: &Store) -> (String, String) {
    let mut settings = AppSettings {
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        first_party: true,
        ..AppSettings::default()
    };
    App::validate("Ops", &mut settings).unwrap();
    let now = SystemClock.now();
    let app = App {
        client_id: random_token(16),
        name: "Ops".to_owned(),
        settings,
        created_at: now,
        updated_at: now,
    };
    let secret = format!("pcs_{}", random_token(32));
    store
        .conn()
        .await
        .unwrap()
        .insert_app(
            &app,
            Some(postern_core::crypto::sha256_b64(secret.as_bytes()).as_str()),
        )
        .await
        .unwrap();
    (app.client_id, secret)
}

/// The JSON body of a link request.
pub fn link_body(client_id: &str, email: &str) -> serde_json::Value {
    serde_json::json!({
        "email": email,
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email",
        "state": "st",
        "nonce": "n",
    })
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Addresses whose request was answered 200 in full, with when.
    pub accepted: BTreeMap<String, Instant>,
    /// Requests that got no answer at all (connection refused or closed
    /// before any answer).
    pub unanswered: usize,
    /// Requests whose answer started but was cut off, or was not the JSON
    /// a link request answers.
    pub cut_off: usize,
    /// Answers other than 200.
    pub refused: usize,
}

/// `connections` clients asking for links to fresh addresses on `urls`
/// (round robin per client) for `secs` seconds.
pub async fn load(
    urls: Vec<String>,
    client_id: String,
    connections: usize,
    secs: f64,
    tag: &str,
) -> LoadResult {
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (urls, client_id, result, tag) = (
            urls.clone(),
            client_id.clone(),
            Arc::clone(&result),
            tag.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut i = 0usize;
            while Instant::now() < end {
                let email = format!("{tag}-{worker}-{i}@example.com");
                let url = &urls[i % urls.len()];
                i += 1;
                let sent = client
                    .post(format!("{url}/request-magic-link"))
                    .json(&link_body(&client_id, &email))
                    .send()
                    .await;
                let outcome = match sent {
                    Err(_) => None,
                    Ok(res) => {
                        let status = res.status();
                        Some((status, res.bytes().await))
                    }
                };
                let unanswered = outcome.is_none();
                {
                    let mut r = result.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        None => r.unanswered += 1,
                        Some((status, Ok(b))) if status == 200 => {
                            if serde_json::from_slice::<Value>(&b).is_ok() {
                                r.accepted.insert(email, Instant::now());
                            } else {
                                r.cut_off += 1;
                            }
                        }
                        Some((_, Ok(_))) => r.refused += 1,
                        Some((_, Err(_))) => r.cut_off += 1,
                    }
                }
                if unanswered {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(result).unwrap().into_inner().unwrap()
}

/// What became of the accepted requests' emails.
#[derive(Debug)]
pub struct Delivery {
    pub accepted: usize,
    pub lost: usize,
    pub twice: usize,
    /// Longest time from the answer to the email's arrival.
    pub slowest: Duration,
    pub later_than_15s: usize,
    /// Emails for requests that were not answered 200 in full.
    pub unaccounted: usize,
}

pub fn delivery(sink: &Sink, load: &LoadResult, tag: &str) -> Delivery {
    let got = sink.by_recipient();
    let mut d = Delivery {
        accepted: load.accepted.len(),
        lost: 0,
        twice: 0,
        slowest: Duration::ZERO,
        later_than_15s: 0,
        unaccounted: 0,
    };
    for (email, answered) in &load.accepted {
        match got.get(email) {
            None => d.lost += 1,
            Some(arrivals) => {
                let ids: HashSet<&str> = arrivals.iter().map(|a| a.message_id.as_str()).collect();
                assert_eq!(ids.len(), 1, "one Message-ID per request: {email}");
                if arrivals.len() > 1 {
                    d.twice += arrivals.len() - 1;
                }
                let late = arrivals[0].at.saturating_duration_since(*answered);
                d.slowest = d.slowest.max(late);
                if late > Duration::from_secs(15) {
                    d.later_than_15s += 1;
                }
            }
        }
    }
    d.unaccounted = got
        .keys()
        .filter(|to| to.starts_with(&format!("{tag}-")) && !load.accepted.contains_key(*to))
        .count();
    d
}

/// A round-robin TCP proxy on a free port in front of `backends`.
pub async fn round_robin(backends: Vec<u16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let n = next.fetch_add(1, Ordering::Relaxed);
            let backends = backends.clone();
            tokio::spawn(async move {
                // The next backend that answers (an instance may be down).
                for k in 0..backends.len() {
                    let port = backends[(n + k) % backends.len()];
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Undoes the HTML escaping of attribute values.
pub fn html_unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#38;", "&")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#x3d;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `value` of the (first) `<input>` named `name`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(html_unescape(&tag[v..v + len]))
}

/// Every `<input type="hidden">` of a page, in order.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input type=\"hidden\"") {
        let tag_end = rest[i..].find('>').map(|e| i + e).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        let attr = |a: &str| {
            let s = tag.find(&format!("{a}=\""))? + a.len() + 2;
            let len = tag[s..].find('"')?;
            Some(html_unescape(&tag[s..s + len]))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
        rest = &rest[tag_end..];
    }
    out
}

/// A browser that keeps cookies, follows no redirects and opens a new
/// connection for every request (so the proxy sends each to the next
/// instance).
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn location(res: &Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `/authorize` → `/login` → email → link or code, in `b`, on the server
/// at `base`; returns the authorization code the app receives.
pub async fn sign_in(
    base: &str,
    client_id: &str,
    sink: &Sink,
    b: &Client,
    email: &str,
    by_code: bool,
) -> String {
    let url = |path: &str| format!("{base}{path}");
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
    ])
    .unwrap();
    let res = b.get(url(&format!("/authorize?{q}"))).send().await.unwrap();
    assert_eq!(res.status(), 303, "/authorize");
    let login = location(&res);
    let login = if login.starts_with('/') {
        url(&login)
    } else {
        login
    };
    let page = b.get(&login).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET /login");
    let page = page.text().await.unwrap();
    let mut form = hidden_inputs(&page);
    assert!(
        form.iter().any(|(k, _)| k == "csrf_token"),
        "a csrf_token on /login"
    );
    form.push(("email".to_owned(), email.to_owned()));
    let res = b.post(url("/login")).form(&form).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "POST /login: {}",
        res.text().await.unwrap()
    );
    let check = location(&res);
    let mail = sink.wait_for(email, 15).await.expect("the sign-in email");
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.raw.as_bytes())
        .expect("a parsable email");
    let done = if by_code {
        let check = if check.starts_with('/') {
            url(&check)
        } else {
            check
        };
        let login_id = query_param(&check, "id").expect("/login/check?id=");
        let page = b.get(&check).send().await.unwrap().text().await.unwrap();
        let csrf = input_value(&page, "csrf_token").expect("a csrf_token on the check page");
        let code = parsed
            .subject()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a code in the subject")
            .to_owned();
        b.post(url("/login/code"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("login_id", login_id.as_str()),
                ("code", code.as_str()),
            ])
            .send()
            .await
            .unwrap()
    } else {
        let body = parsed
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let link = body
            .split_whitespace()
            .find(|w| w.contains("/verify-email?token=pml_"))
            .expect("a link")
            .trim_matches(|c: char| c == '<' || c == '>' || c == '"')
            .to_owned();
        b.get(&link).send().await.unwrap()
    };
    assert_eq!(done.status(), 303, "the proof ends the sign-in");
    let back = location(&done);
    assert!(back.starts_with(REDIRECT_URI), "back to the app: {back}");
    query_param(&back, "code").expect("a code for the app")
}

/// `POST /token` with the app's credentials.
pub async fn token(base: &str, client_id: &str, secret: &str, form: &[(&str, &str)]) -> Response {
    browser()
        .post(format!("{base}/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Exchanges `code` for tokens (must succeed).
pub async fn exchange(base: &str, client_id: &str, secret: &str, code: &str) -> Value {
    let res = token(
        base,
        client_id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(res.status(), 200, "code exchange");
    res.json().await.unwrap()
}

/// The `sub` claim of a JWT (not verified: the tests compare values).
pub fn jwt_sub(jwt: &str) -> String {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["sub"].as_str().expect("a sub").to_owned()
}
