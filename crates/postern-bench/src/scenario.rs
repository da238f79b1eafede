//! The scenarios: what one virtual browser does, again and again, until the
//! run ends. Every iteration is a new person (a fresh address) in a fresh
//! browser (an empty cookie jar) on the browser's kept-alive connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::ValueEnum;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use serde_json::json;
use tokio::sync::oneshot;
use url::Url;

use crate::browser::{Answer, Browser, Failure, Jar};
use crate::sink::Sink;
use crate::stats::Recorder;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The whole browser sign-in: same-origin link request (binding cookie),
    /// the link from the email, the same browser's GET /verify-email (303
    /// with a code), then POST /token (client_secret_basic + PKCE) for an
    /// ID token and an access token.
    Signin,
    /// Same-origin link requests alone (the emails go to the sink).
    Links,
    /// The asking browser's GET /verify-email alone, on links requested
    /// (and delivered) before the clock starts.
    Verify,
    /// The headless API: POST /api/v1/magic-links, the token from the
    /// email, POST /api/v1/magic-links/verify.
    Headless,
    /// GET /.well-known/openid-configuration and GET /jwks.json.
    Discovery,
}

impl Scenario {
    /// The steps measured, in order; the last one is what the scenario
    /// counts (the exit status says whether it ever succeeded).
    pub fn steps(self) -> &'static [&'static str] {
        match self {
            Scenario::Signin => &[
                "`POST /request-magic-link` (same-origin)",
                "email in the sink, after the answer",
                "`GET /verify-email` by the asking browser (303)",
                "`POST /token` (code + PKCE → ID and access token)",
                "whole sign-in",
            ],
            Scenario::Links => &["`POST /request-magic-link` (same-origin)"],
            Scenario::Verify => &["`GET /verify-email` by the asking browser (303)"],
            Scenario::Headless => &[
                "`POST /api/v1/magic-links`",
                "email in the sink, after the answer",
                "`POST /api/v1/magic-links/verify`",
                "whole headless sign-in",
            ],
            Scenario::Discovery => &[
                "`GET /.well-known/openid-configuration`",
                "`GET /jwks.json`",
            ],
        }
    }

    /// What the progress bar counts.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::Signin | Scenario::Headless => "sign-ins",
            Scenario::Links => "link requests",
            Scenario::Verify => "verifications",
            Scenario::Discovery => "discovery + JWKS pairs",
        }
    }

    /// Whether the scenario's emails are read from the sink.
    pub fn needs_mail(self) -> bool {
        !matches!(self, Scenario::Discovery)
    }

    /// Whether it calls as the app (needs `--client-secret`).
    pub fn needs_secret(self) -> bool {
        matches!(self, Scenario::Signin | Scenario::Headless)
    }
}

/// What every virtual browser shares.
pub struct Ctx {
    /// The instances, in the order browsers go round them.
    pub urls: Arc<Vec<Url>>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
    pub sink: Arc<Sink>,
    /// Per-request timeout, and how long an email may take.
    pub timeout: Duration,
    /// Whether each person's requests carry an address of their own
    /// (`--client-addresses per-person`).
    pub per_person_ip: bool,
    /// Makes this run's addresses unlike any earlier run's.
    run_id: String,
    next_address: AtomicU64,
    /// Iterations completed (any time), for the progress bar.
    pub finished: AtomicU64,
}

impl Ctx {
    /// Shared state for a run.
    pub fn new(
        urls: Vec<Url>,
        client_id: String,
        client_secret: Option<String>,
        redirect_uri: String,
        sink: Arc<Sink>,
        timeout: Duration,
        per_person_ip: bool,
    ) -> Self {
        Self {
            per_person_ip,
            urls: Arc::new(urls),
            client_id,
            client_secret,
            redirect_uri,
            sink,
            timeout,
            run_id: hex(&random::<4>()),
            next_address: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// An address no run has used: per-address limits and "send again"
    /// never come into play, and every sign-in creates a user.
    fn fresh_address(&self) -> (String, u64) {
        let n = self.next_address.fetch_add(1, Ordering::Relaxed);
        (format!("bench-{}-{n}@bench.example", self.run_id), n)
    }

    /// A new person in `b`: an empty cookie jar, a fresh email address and,
    /// with `--client-addresses per-person`, a client address of their own
    /// (10.0.0.0/8, one per person, 16.7 million before they repeat).
    fn new_person(&self, b: &mut Browser) -> String {
        let (address, n) = self.fresh_address();
        b.jar = Jar::default();
        b.client_ip = self.per_person_ip.then(|| {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 | (n as u32 & 0x00ff_ffff));
            HeaderValue::from_str(&ip.to_string()).expect("an IPv4 address is a header value")
        });
        address
    }

    fn basic_auth(&self) -> String {
        // RFC 6749 §2.3.1: each part form-urlencoded, then Basic.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let secret = self.client_secret.as_deref().unwrap_or_default();
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&self.client_id),
                enc(secret)
            ))
        )
    }

    /// The `pml_` token of the email `mail` brings, whose link holds
    /// `marker` right before it.
    async fn token_from_email(
        &self,
        b: &Browser,
        address: &str,
        mail: oneshot::Receiver<Vec<u8>>,
        marker: &str,
    ) -> Result<String, Failure> {
        // Waiting for an email past the end of the run would measure nothing.
        let until = (Instant::now() + self.timeout).min(b.stop_at());
        let raw = match tokio::time::timeout_at(until.into(), mail).await {
            Ok(Ok(raw)) => raw,
            _ => {
                self.sink.forget(address);
                if Instant::now() >= b.stop_at() {
                    return Err(Failure::run_ended());
                }
                return Err(Failure(format!(
                    "no email within {} s",
                    self.timeout.as_secs()
                )));
            }
        };
        token_in_email(&raw, marker).ok_or_else(|| Failure("no link in the email".into()))
    }
}

/// The `pml_…` token after `marker` in the email's text part (decoded from
/// quoted-printable or base64 by mail-parser), or its HTML part.
pub fn token_in_email(raw: &[u8], marker: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let find = |text: &str| {
        text.match_indices(marker).find_map(|(at, _)| {
            let token: String = text[at + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            (token.starts_with("pml_") && token.len() > 4).then_some(token)
        })
    };
    message
        .body_text(0)
        .and_then(|t| find(&t))
        .or_else(|| message.body_html(0).and_then(|h| find(&h)))
}

/// `N` random bytes from the OS generator.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random generator works");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1–4.2).
fn pkce() -> (String, String) {
    let verifier = b64url(&random::<32>());
    let challenge =
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// Whether a virtual browser goes on.
pub enum Flow {
    Next,
    /// Nothing left to do (the prepared links ran out).
    Done,
}

/// Links requested and delivered before the verify scenario's clock starts.
pub struct Pool {
    /// How many to prepare.
    pub target: usize,
    claimed: AtomicUsize,
    ready: Mutex<Vec<Prepared>>,
    items: OnceLock<Vec<Prepared>>,
    next: AtomicUsize,
}

/// One prepared link and the browser that asked for it.
#[derive(Clone)]
struct Prepared {
    jar: Jar,
    client_ip: Option<HeaderValue>,
    token: String,
    state: String,
}

impl Pool {
    /// An empty pool to fill with `target` links.
    pub fn new(target: usize) -> Self {
        Self {
            target,
            claimed: AtomicUsize::new(0),
            ready: Mutex::new(Vec::with_capacity(target)),
            items: OnceLock::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// Links ready so far.
    pub fn ready(&self) -> usize {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Ends preparation: the links are handed out in order from now on.
    pub fn seal(&self) {
        let ready = std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = self.items.set(ready);
    }

    /// Links prepared (once sealed).
    pub fn len(&self) -> usize {
        self.items.get().map_or(0, Vec::len)
    }
}

/// Preparation for the verify scenario: request a link in a fresh
/// browser and keep the browser with the token its email brings.
pub async fn prepare(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder, pool: &Pool) -> Flow {
    if pool.claimed.fetch_add(1, Ordering::Relaxed) >= pool.target {
        return Flow::Done;
    }
    let address = ctx.new_person(b);
    let state = b64url(&random::<12>());
    let mail = ctx.sink.expect(&address);
    let t = Instant::now();
    let sent = request_link(ctx, b, &address, None, &state).await;
    if rec.done(0, t, sent).is_none() {
        ctx.sink.forget(&address);
        pool.claimed.fetch_sub(1, Ordering::Relaxed);
        return Flow::Next;
    }
    let t = Instant::now();
    let token = ctx
        .token_from_email(b, &address, mail, "/verify-email?token=")
        .await;
    let Some(token) = rec.done(1, t, token) else {
        pool.claimed.fetch_sub(1, Ordering::Relaxed);
        return Flow::Next;
    };
    pool.ready
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Prepared {
            jar: b.jar.clone(),
            client_ip: b.client_ip.clone(),
            token,
            state,
        });
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    Flow::Next
}

/// One iteration of `scenario`.
pub async fn iteration(
    scenario: Scenario,
    ctx: &Ctx,
    b: &mut Browser,
    rec: &mut Recorder,
    pool: Option<&Pool>,
) -> Flow {
    match scenario {
        Scenario::Signin => signin(ctx, b, rec).await,
        Scenario::Links => links(ctx, b, rec).await,
        Scenario::Verify => match pool {
            Some(pool) => verify(ctx, b, rec, pool).await,
            None => Flow::Done,
        },
        Scenario::Headless => headless(ctx, b, rec).await,
        Scenario::Discovery => discovery(ctx, b, rec).await,
    }
}

async fn signin(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder) -> Flow {
    let address = ctx.new_person(b);
    let (verifier, challenge) = pkce();
    let state = b64url(&random::<12>());
    let mail = ctx.sink.expect(&address);
    let start = Instant::now();
    let sent = request_link(ctx, b, &address, Some(&challenge), &state).await;
    if rec.done(0, start, sent).is_none() {
        ctx.sink.forget(&address);
        return Flow::Next;
    }
    let t = Instant::now();
    let token = ctx
        .token_from_email(b, &address, mail, "/verify-email?token=")
        .await;
    let Some(token) = rec.done(1, t, token) else {
        return Flow::Next;
    };
    let t = Instant::now();
    let code = verify_in_asking_browser(b, &token, &state).await;
    let Some(code) = rec.done(2, t, code) else {
        return Flow::Next;
    };
    let t = Instant::now();
    let tokens = exchange_code(ctx, b, &code, &verifier).await;
    if rec.done(3, t, tokens).is_some() {
        rec.done(4, start, Ok(()));
        ctx.finished.fetch_add(1, Ordering::Relaxed);
    }
    Flow::Next
}

async fn links(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder) -> Flow {
    let address = ctx.new_person(b);
    let state = b64url(&random::<12>());
    let t = Instant::now();
    let sent = request_link(ctx, b, &address, None, &state).await;
    if rec.done(0, t, sent).is_some() {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
    }
    Flow::Next
}

async fn verify(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder, pool: &Pool) -> Flow {
    let items = pool.items.get().map_or(&[][..], Vec::as_slice);
    // The warm-up may use a fifth of the links at most: on a fast machine
    // it would otherwise spend them all before the clock starts.
    let measure_from = rec.measure_from();
    if Instant::now() < measure_from && pool.next.load(Ordering::Relaxed) >= items.len() / 5 {
        tokio::time::sleep_until(measure_from.into()).await;
    }
    let Some(link) = items.get(pool.next.fetch_add(1, Ordering::Relaxed)) else {
        return Flow::Done;
    };
    b.jar = link.jar.clone();
    b.client_ip = link.client_ip.clone();
    let t = Instant::now();
    let code = verify_in_asking_browser(b, &link.token, &link.state).await;
    if rec.done(0, t, code).is_some() {
        ctx.finished.fetch_add(1, Ordering::Relaxed);
    }
    Flow::Next
}

async fn headless(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder) -> Flow {
    let (address, _) = ctx.fresh_address();
    let mail = ctx.sink.expect(&address);
    let start = Instant::now();
    let url = b.next_url("/api/v1/magic-links");
    let req = b
        .http()
        .post(url.clone())
        .header(AUTHORIZATION, ctx.basic_auth())
        .json(&json!({
            "email": address,
            "redirect_uri": ctx.redirect_uri,
            "state": "bench",
        }));
    let sent = back_channel(b, &url, req).await.and_then(|a| a.expect(202));
    if rec.done(0, start, sent).is_none() {
        ctx.sink.forget(&address);
        return Flow::Next;
    }
    let t = Instant::now();
    // SPEC §3.4: the headless link is `redirect_uri?token=pml_…`.
    let token = ctx.token_from_email(b, &address, mail, "token=").await;
    let Some(token) = rec.done(1, t, token) else {
        return Flow::Next;
    };
    let t = Instant::now();
    let url = b.next_url("/api/v1/magic-links/verify");
    let req = b
        .http()
        .post(url.clone())
        .header(AUTHORIZATION, ctx.basic_auth())
        .json(&json!({ "token": token }));
    let session = back_channel(b, &url, req).await.and_then(|a| {
        a.expect(200)?;
        match a.json()?.get("session_token") {
            Some(serde_json::Value::String(_)) => Ok(()),
            _ => Err(Failure("200 without a session_token".into())),
        }
    });
    if rec.done(2, t, session).is_some() {
        rec.done(3, start, Ok(()));
        ctx.finished.fetch_add(1, Ordering::Relaxed);
    }
    Flow::Next
}

async fn discovery(ctx: &Ctx, b: &mut Browser, rec: &mut Recorder) -> Flow {
    for (step, path, field) in [
        (0, "/.well-known/openid-configuration", "jwks_uri"),
        (1, "/jwks.json", "keys"),
    ] {
        let t = Instant::now();
        let url = b.next_url(path);
        let req = b.http().get(url.clone());
        let got = back_channel(b, &url, req).await.and_then(|a| {
            a.expect(200)?;
            match a.json()?.get(field) {
                Some(_) => Ok(()),
                None => Err(Failure(format!("200 without `{field}`"))),
            }
        });
        if rec.done(step, t, got).is_none() {
            return Flow::Next;
        }
    }
    ctx.finished.fetch_add(1, Ordering::Relaxed);
    Flow::Next
}

/// SPEC §3.1 `POST /request-magic-link` as Postern's own page sends it
/// (`Sec-Fetch-Site: same-origin`), so the answer binds this browser.
async fn request_link(
    ctx: &Ctx,
    b: &mut Browser,
    address: &str,
    challenge: Option<&str>,
    state: &str,
) -> Result<(), Failure> {
    let url = b.next_url("/request-magic-link");
    let mut body = json!({
        "email": address,
        "client_id": ctx.client_id,
        "redirect_uri": ctx.redirect_uri,
        "scope": "openid email",
        "state": state,
        "nonce": b64url(&random::<12>()),
    });
    if let Some(c) = challenge {
        body["code_challenge"] = c.into();
        body["code_challenge_method"] = "S256".into();
    }
    let req = b
        .http()
        .post(url.clone())
        .header("sec-fetch-site", "same-origin")
        .header(ACCEPT, "application/json")
        .json(&body);
    b.send(&url, req).await?.expect(200)?;
    if !b.jar.has("postern_binding") {
        return Err(Failure("200 without a binding cookie".into()));
    }
    Ok(())
}

/// SPEC §3.1 `GET /verify-email?token=` in the browser that asked: a 303
/// to the redirect URI with a code and our `state`; returns the code.
async fn verify_in_asking_browser(
    b: &mut Browser,
    token: &str,
    state: &str,
) -> Result<String, Failure> {
    let url = b.next_url(&format!("/verify-email?token={token}"));
    let req = b.http().get(url.clone()).header(ACCEPT, "text/html");
    let answer = b.send(&url, req).await?;
    answer.expect(303)?;
    let to = answer
        .location()
        .and_then(|l| url.join(l).ok())
        .ok_or_else(|| Failure("303 without a Location".into()))?;
    let mut code = None;
    let mut state_ok = false;
    for (k, v) in to.query_pairs() {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "state" => state_ok = v == state,
            _ => {}
        }
    }
    match code {
        Some(code) if state_ok => Ok(code),
        Some(_) => Err(Failure("303 with another state".into())),
        // A 303 elsewhere: to a consent page (the app is not first-party),
        // or to an error.
        None => Err(Failure(format!("303 to {} without a code", to.path()))),
    }
}

/// OIDC Core §3.1.3 `POST /token` with `client_secret_basic` and the PKCE
/// verifier, as the app's server sends it.
async fn exchange_code(
    ctx: &Ctx,
    b: &mut Browser,
    code: &str,
    verifier: &str,
) -> Result<(), Failure> {
    let url = b.next_url("/token");
    let req = b
        .http()
        .post(url.clone())
        .header(AUTHORIZATION, ctx.basic_auth())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &ctx.redirect_uri),
            ("code_verifier", verifier),
        ]);
    let answer = back_channel(b, &url, req).await?;
    answer.expect(200)?;
    let body = answer.json()?;
    for field in ["id_token", "access_token"] {
        if !body.get(field).is_some_and(|v| v.is_string()) {
            return Err(Failure(format!("200 without {field}")));
        }
    }
    Ok(())
}

/// A call from the app's server (or a client library): no browser cookies.
async fn back_channel(
    b: &mut Browser,
    url: &Url,
    req: reqwest::RequestBuilder,
) -> Result<Answer, Failure> {
    let jar = std::mem::take(&mut b.jar);
    let answer = b.send(url, req).await;
    b.jar = jar;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_a_quoted_printable_email() {
        let raw = b"From: a@b\r\nTo: c@d\r\nSubject: Sign in\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Sign in: http://127.0.0.1:8080/verify-email?token=3Dpml_abc-DEF_12=\r\n3456 now.\r\n";
        // `=3D` decodes to `=`, the soft line break `=\r\n` joins the token.
        assert_eq!(
            token_in_email(raw, "/verify-email?token=").as_deref(),
            Some("pml_abc-DEF_123456")
        );
        assert_eq!(token_in_email(raw, "/other?token="), None);
    }

    #[test]
    fn the_pkce_challenge_is_the_verifiers_s256() {
        // RFC 7636 Appendix B.
        let challenge = b64url(
            aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            )
            .as_ref(),
        );
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let (v, c) = pkce();
        assert_eq!(v.len(), 43);
        assert_eq!(c.len(), 43);
    }
}
