//! The magic-link sign-in of SPEC §2 and §3.1: requesting a link, opening
//! it, typing the code, and finishing with an authorization code.
//!
//! Handlers call these functions; the SQL lives in postern-store and the
//! token rules in postern-core. Every multi-step change runs in one
//! transaction, so a failure halfway changes nothing.

use std::net::IpAddr;

use postern_core::crypto::{constant_time_eq, random_digits, random_id, random_token};
use postern_core::oauth::{check_pkce, check_text, Scope};
use postern_core::{App, ClientId, EmailAddress, LoginId};
use postern_store::{LoginKind, LoginRequest, Queries, Session, SignInEvent, Tx};
use serde::Deserialize;
use url::Url;

use crate::error::{AppError, Result, TokenProblem};
use crate::AppState;

/// Wrong codes a request survives before it dies (SPEC §2).
pub const CODE_TRIES_PER_REQUEST: i64 = 5;
/// Wrong codes per email address per hour (SPEC §2).
pub const CODE_TRIES_PER_EMAIL_HOUR: i64 = 10;
/// Wrong codes per email address per day (SPEC §2).
pub const CODE_TRIES_PER_EMAIL_DAY: i64 = 30;
/// Wrong codes per IP per hour (SPEC §2).
pub const CODE_TRIES_PER_IP_HOUR: i64 = 50;
/// Authorization codes live 60 seconds (SPEC §2).
pub const AUTHORIZATION_CODE_TTL: i64 = 60;
/// How long after a sign-in the consent screen may still be answered.
pub const CONSENT_WINDOW: i64 = 600;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Key-hash purposes: one subkey each, so no hash is reusable elsewhere.
pub(crate) mod purpose {
    pub const REFRESH: &str = "refresh-token";
    pub const LINK: &str = "link-token";
    pub const CODE: &str = "one-time-code";
    pub const BINDING: &str = "binding-cookie";
    pub const SESSION: &str = "session";
    pub const AUTHZ_CODE: &str = "authorization-code";
    pub const RATE: &str = "rate-limit";
    pub const CONSENT: &str = "consent";
}

/// Authorization parameters as they arrive (query, JSON or form).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawAuthParams {
    /// Required.
    pub client_id: Option<String>,
    /// Required, exact match.
    pub redirect_uri: Option<String>,
    /// Space-separated.
    pub scope: Option<String>,
    /// Opaque, echoed back.
    pub state: Option<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// PKCE.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// Preferred languages.
    pub ui_locales: Option<String>,
}

/// Authorization parameters after validation against the app.
#[derive(Debug, Clone)]
pub struct AuthParams {
    /// The app.
    pub app: App,
    /// A registered redirect URI.
    pub redirect_uri: String,
    /// Known scopes, `openid` included.
    pub scope: Scope,
    /// Client state.
    pub state: Option<String>,
    /// Client nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Preferred languages.
    pub ui_locales: Option<String>,
}

impl AuthParams {
    /// The query string that brings a person back to `/login` for the same
    /// destination ("Send a new link").
    pub fn login_query(&self, email: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("client_id", &self.app.client_id);
        q.append_pair("redirect_uri", &self.redirect_uri);
        q.append_pair("scope", &self.scope.to_string());
        for (k, v) in [
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("ui_locales", &self.ui_locales),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        if self.code_challenge.is_some() {
            q.append_pair("code_challenge_method", "S256");
        }
        if let Some(e) = email {
            q.append_pair("login_hint", e);
        }
        q.finish()
    }
}

fn invalid(msg: impl Into<String>) -> AppError {
    AppError::InvalidRequest(msg.into())
}

/// Validates authorization parameters exactly as `/authorize` does: client
/// first, then the redirect URI (exact match), then the rest.
pub async fn validate_auth_params(state: &AppState, raw: &RawAuthParams) -> Result<AuthParams> {
    let client_id = raw
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("client_id is required."))?;
    // A client id that cannot exist is an unknown client (and never reaches SQL).
    let client_id = ClientId::parse(client_id).map_err(|_| AppError::InvalidClient)?;
    let app = state
        .store
        .conn()
        .await?
        .app(&client_id)
        .await?
        .ok_or(AppError::InvalidClient)?;
    let redirect_uri = raw
        .redirect_uri
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("redirect_uri is required.").for_app(&app))?;
    if !app.has_redirect_uri(redirect_uri) {
        return Err(AppError::InvalidRedirectUri.for_app(&app));
    }
    let code_challenge = check_pkce(
        app.settings.public,
        raw.code_challenge.as_deref(),
        raw.code_challenge_method.as_deref(),
    )
    .map_err(|e| invalid(format!("{e}.")).for_app(&app))?;
    let text = |name, v: &Option<String>, max| {
        check_text(name, v.as_deref(), max).map_err(|e| invalid(format!("{e}.")).for_app(&app))
    };
    Ok(AuthParams {
        redirect_uri: redirect_uri.to_owned(),
        scope: Scope::parse(raw.scope.as_deref()),
        state: text("state", &raw.state, 2048)?,
        nonce: text("nonce", &raw.nonce, 512)?,
        ui_locales: text("ui_locales", &raw.ui_locales, 100)?,
        code_challenge,
        app,
    })
}

/// Who is asking, for limits, history, binding and language.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The person's IP.
    pub ip: IpAddr,
    /// Their browser.
    pub user_agent: Option<String>,
    /// Their `Accept-Language`.
    pub accept_language: Option<String>,
    /// The browser's binding secret when this request may bind it (same
    /// origin or our own form); `None` for cross-site requests.
    pub binding: Option<String>,
    /// Whether `ip` is the person's (browser flows, or a headless app that
    /// passed it); the per-IP limit applies only then.
    pub ip_known: bool,
    /// A headless API request: the link goes to the app's redirect URI with
    /// `?token=` and only the API can redeem it (SPEC §3.4).
    pub headless: bool,
}

/// `auth_params` of a login request made through the headless API.
pub const HEADLESS_MARK: &str = r#"{"flow":"headless"}"#;

/// Whether a login request was made through the headless API.
pub fn is_headless(req: &LoginRequest) -> bool {
    req.auth_params.as_deref() == Some(HEADLESS_MARK)
}

/// What [`request_link`] did.
#[derive(Debug, Clone)]
pub struct LinkSent {
    /// The login request (the headless `login_id`).
    pub login_id: String,
    /// Normalized address.
    pub email: EmailAddress,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The row key of a limit's subject: its name and a keyed hash of the
/// subject (addresses and IPs are never stored in plain).
fn rate_key(state: &AppState, name: &str, subject: &str) -> String {
    format!(
        "{name}:{}",
        state.secrets.keyed_hash(purpose::RATE, subject.as_bytes())
    )
}

/// The start of the fixed window that holds `now`.
fn window_start(now: i64, window: i64) -> i64 {
    now - now.rem_euclid(window)
}

/// Counts one hit of a limit inside `tx`; a full window is a 429 and, since
/// the caller's transaction is dropped, counts nothing anywhere.
async fn hit_limit(
    state: &AppState,
    tx: &mut Tx,
    name: &str,
    subject: &str,
    limit: i64,
    window: i64,
) -> Result<String> {
    let now = state.now();
    let window_start = window_start(now, window);
    let key = rate_key(state, name, subject);
    if !tx.rate_hit(&key, window_start, limit).await? {
        return Err(AppError::TooManyRequests {
            retry_after: window_start + window - now,
        });
    }
    Ok(format!("{key}@{window_start}"))
}

/// A 429 when a limit's window is already full, counting nothing: the
/// cheap early answer. Only [`hit_limit`], inside the transaction that
/// stores the request, decides that a request is within its limits.
async fn peek_limit(
    state: &AppState,
    conn: &mut postern_store::Conn,
    name: &str,
    subject: &str,
    limit: i64,
    window: i64,
) -> Result<()> {
    let now = state.now();
    let window_start = window_start(now, window);
    let key = rate_key(state, name, subject);
    if conn.rate_count(&key, window_start).await? >= limit {
        return Err(AppError::TooManyRequests {
            retry_after: window_start + window - now,
        });
    }
    Ok(())
}

async fn release_limit(tx: &mut Tx, slot: &str) -> Result<()> {
    if let Some((key, start)) = slot.rsplit_once('@') {
        if let Ok(start) = start.parse() {
            tx.rate_release(key, start).await?;
        }
    }
    Ok(())
}

/// SPEC §3.1 `POST /request-magic-link` and §3.4 `POST /api/v1/magic-links`:
/// checks limits, stores the login request and its email in one
/// transaction, and wakes the mail worker. Known and unknown addresses take
/// the same path; where the app does not let this address in, the email
/// says so instead of carrying a link, and the request's code can never be
/// right (code entry then answers exactly as for a wrong code).
pub async fn request_link(
    state: &AppState,
    params: &AuthParams,
    email: &str,
    who: &Requester,
) -> Result<LinkSent> {
    let email = EmailAddress::parse(email).map_err(|e| invalid(format!("Invalid email: {e}.")))?;
    let app = &params.app;
    let cfg = &state.config;
    // SPEC §3.1: per person IP (when it is the person's) and per address.
    // SPEC §3.4: per app only for the headless API, where the app
    // authenticates; on the anonymous browser endpoints anyone could spend
    // it and lock the app's users out.
    // IPv6 clients are counted per /64 (SPEC §3.1).
    let ip = postern_core::net::rate_limit_subject(who.ip);
    let ip_limit = who
        .ip_known
        .then_some(("ip", ip.as_str(), cfg.rate_limit_ip_per_hour, HOUR));
    let email_limit = ("email", email.as_str(), cfg.rate_limit_email_per_hour, HOUR);
    let app_limit = who.headless.then(|| {
        let per_hour = i64::from(app.settings.link_requests_per_hour);
        ("app", app.client_id.as_str(), per_hour, HOUR)
    });
    let limits = || ip_limit.into_iter().chain([email_limit]).chain(app_limit);

    // Limits first: a request refused by a full window costs one read per
    // limit, and no user lookup, rendered email or write lock.
    let mut conn = state.store.conn().await?;
    for (name, subject, limit, window) in limits() {
        peek_limit(state, &mut conn, name, subject, limit, window).await?;
    }
    // Known and unknown addresses take this same path: one lookup, one
    // rendered email, one request row, one outbox row.
    let user = conn.user_by_email(email.as_str()).await?;
    drop(conn);
    let allowed = app.allows_domain(email.domain())
        && match &user {
            Some(u) => u.disabled_at.is_none(),
            None => app.settings.signup_allowed,
        };
    let kind = if allowed {
        LoginKind::Link
    } else {
        LoginKind::NoAccount
    };
    let id = random_id();
    let token = format!("pml_{}", random_token(32));
    let code = random_digits(6);
    let locale = postern_core::locale::negotiate(
        params.ui_locales.as_deref(),
        who.accept_language.as_deref(),
        &app.settings.locale,
    );
    let link = if who.headless {
        let mut url = url::Url::parse(&params.redirect_uri).map_err(AppError::internal)?;
        url.query_pairs_mut().append_pair("token", &token);
        if let Some(s) = &params.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        url.to_string()
    } else {
        format!("{}?token={token}", state.config.url("/verify-email"))
    };
    let email_message = crate::mail::sign_in_email(app, &email, kind, &link, &code, locale)?;

    let now = state.now();
    let expires_at = now + app.settings.link_ttl;
    // The hits decide (the windows may have filled since the peek); one that
    // trips drops the transaction, so a refused request counts in none.
    let mut tx = state.store.begin().await?;
    let mut email_slot = None;
    for (name, subject, limit, window) in limits() {
        let slot = hit_limit(state, &mut tx, name, subject, limit, window).await?;
        if name == email_limit.0 {
            email_slot = Some(slot);
        }
    }
    let binding_hash = who
        .binding
        .as_ref()
        .map(|b| state.secrets.keyed_hash(purpose::BINDING, b.as_bytes()));
    if let Some(b) = &binding_hash {
        // "Send again" from the same browser replaces its earlier request.
        tx.burn_browser_requests(&app.client_id, b, now).await?;
    }
    let request = LoginRequest {
        id: id.clone(),
        client_id: app.client_id.clone(),
        email: email.as_str().to_owned(),
        kind,
        token_hash: state.secrets.keyed_hash(purpose::LINK, token.as_bytes()),
        code_hash: match kind {
            LoginKind::Link => code_hash(state, &id, &code),
            // "No account": a keyed hash of fresh random bytes, the same
            // shape as a real one and matched by no code, so code entry
            // takes the same budgets and gives the same wrong-code answers
            // whether or not the address has an account.
            _ => state
                .secrets
                .keyed_hash(purpose::CODE, random_token(32).as_bytes()),
        },
        code_attempts: 0,
        redirect_uri: params.redirect_uri.clone(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        scope: params.scope.to_string(),
        locale: locale.to_owned(),
        auth_params: who.headless.then(|| HEADLESS_MARK.to_owned()),
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        binding_hash,
        // SPEC §3.1 `remote`: the asking page shows this number and another
        // device types it to approve. Two digits guard against a slip, not
        // an attacker: a wrong one kills the request. Only a request bound to
        // a browser has a page to show it on and a browser to continue in.
        remote_number: (app.settings.device_policy == postern_core::DevicePolicy::Remote
            && !who.headless
            && who.binding.is_some())
        .then(|| random_digits(2)),
        approved_at: None,
        completed_at: None,
        rate_slot: email_slot,
        created_at: now,
        expires_at,
        consumed_at: None,
    };
    tx.insert_login_request(&request).await?;
    crate::mail::enqueue(state, &mut tx, &email_message, now, expires_at).await?;
    tx.commit().await.map_err(postern_store::StoreError::from)?;
    state.mail_wake.notify_one();
    Ok(LinkSent {
        login_id: id,
        email,
        expires_at,
    })
}

fn code_hash(state: &AppState, login_id: &str, code: &str) -> String {
    state
        .secrets
        .keyed_hash(purpose::CODE, format!("{login_id}:{code}").as_bytes())
}

/// The keyed hash stored for a browser's binding cookie.
pub fn binding_hash(state: &AppState, binding: &str) -> String {
    state
        .secrets
        .keyed_hash(purpose::BINDING, binding.as_bytes())
}

/// Whether `binding` (the browser's cookie) is the one that asked for `req`.
pub fn is_asking_browser(state: &AppState, req: &LoginRequest, binding: Option<&str>) -> bool {
    match (&req.binding_hash, binding) {
        (Some(stored), Some(b)) => {
            constant_time_eq(binding_hash(state, b).as_bytes(), stored.as_bytes())
        }
        _ => false,
    }
}

/// A link's request and app, looked up without consuming anything.
#[derive(Debug, Clone)]
pub struct OpenedLink {
    /// The request.
    pub request: LoginRequest,
    /// Its app.
    pub app: App,
}

fn well_formed_token(token: &str) -> bool {
    token.len() <= 100
        && token.strip_prefix("pml_").is_some_and(|t| {
            t.len() >= 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Finds the live link request for `token`, or says why it cannot be used.
/// Consumes nothing: safe for mail scanners and link previews.
pub async fn open_link(state: &AppState, token: &str, ip: IpAddr) -> Result<OpenedLink> {
    if !well_formed_token(token) {
        return Err(AppError::InvalidToken(TokenProblem::Unknown));
    }
    let hash = state.secrets.keyed_hash(purpose::LINK, token.as_bytes());
    let mut conn = state.store.conn().await?;
    let request = conn
        .login_request_by_token(&hash)
        .await?
        .filter(|r| r.kind == LoginKind::Link && !is_headless(r))
        .ok_or(AppError::InvalidToken(TokenProblem::Unknown))?;
    let app = conn
        .app(&request.client_id)
        .await?
        .ok_or(AppError::InvalidToken(TokenProblem::Unknown))?;
    let retry = retry_url(state, &request);
    let problem = if request.consumed_at.is_some() {
        Some(TokenProblem::of_dead_link(&request))
    } else if request.expires_at <= state.now() {
        Some(TokenProblem::Expired)
    } else if !ip_allowed(&app, &request, ip) {
        Some(TokenProblem::Unknown)
    } else {
        None
    };
    match problem {
        Some(p) => Err(AppError::InvalidToken(p).with_retry(retry).for_app(&app)),
        None => Ok(OpenedLink { request, app }),
    }
}

/// Finds the live headless link request for `token` without consuming it.
pub async fn open_headless_link(state: &AppState, token: &str) -> Result<OpenedLink> {
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    if !well_formed_token(token) {
        return Err(unknown());
    }
    let hash = state.secrets.keyed_hash(purpose::LINK, token.as_bytes());
    let mut conn = state.store.conn().await?;
    let request = conn
        .login_request_by_token(&hash)
        .await?
        .filter(|r| r.kind == LoginKind::Link && is_headless(r))
        .ok_or_else(unknown)?;
    if request.consumed_at.is_some() {
        return Err(AppError::InvalidToken(TokenProblem::Used));
    }
    if request.expires_at <= state.now() {
        return Err(AppError::InvalidToken(TokenProblem::Expired));
    }
    let app = conn.app(&request.client_id).await?.ok_or_else(unknown)?;
    Ok(OpenedLink { request, app })
}

/// `/login` with the request's original destination: one click to a new link.
pub fn retry_url(state: &AppState, req: &LoginRequest) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", &req.client_id);
    q.append_pair("redirect_uri", &req.redirect_uri);
    q.append_pair("scope", &req.scope);
    for (k, v) in [
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("code_challenge", &req.code_challenge),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    if req.code_challenge.is_some() {
        q.append_pair("code_challenge_method", "S256");
    }
    q.append_pair("ui_locales", &req.locale);
    q.append_pair("login_hint", &req.email);
    state.config.url(&format!("/login?{}", q.finish()))
}

/// Whether a link may be used from `ip` under the app's `bind_ip_range`.
pub fn ip_allowed(app: &App, req: &LoginRequest, ip: IpAddr) -> bool {
    if !app.settings.bind_ip_range {
        return true;
    }
    req.ip
        .as_deref()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .is_some_and(|asked| postern_core::net::same_binding_range(asked, ip))
}

/// How a sign-in proved the address (the `amr` claim, SPEC §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Clicked the link.
    Link,
    /// Typed the code.
    Code,
}

impl Method {
    /// `link` or `code`, for history.
    pub fn event(self) -> &'static str {
        match self {
            Method::Link => "link",
            Method::Code => "code",
        }
    }
    /// `email` or `otp` (SPEC §3.2 `amr`).
    pub fn amr(self) -> &'static str {
        match self {
            Method::Link => "email",
            Method::Code => "otp",
        }
    }
}

/// Where a finished sign-in goes next.
#[derive(Debug)]
pub enum Next {
    /// 303 to the app with `code`, `state` and `iss`.
    Redirect(String),
    /// Show the consent screen for this (consumed) login request.
    Consent {
        /// The request being finished.
        login_id: String,
        /// Its app.
        app: Box<App>,
        /// Scopes asked.
        scope: Scope,
        /// The language the request was made in.
        locale: String,
        /// Binds the consent form to the session this sign-in created
        /// ([`consent_token`]).
        consent_token: String,
    },
}

/// A finished sign-in: the new browser session's cookie secret and what next.
#[derive(Debug)]
pub struct SignedIn {
    /// Secret for the session cookie.
    pub session_secret: String,
    /// Lifetime of the session cookie, seconds.
    pub session_ttl: i64,
    /// What comes next.
    pub next: Next,
}

/// Consumes the link (atomically: of concurrent clicks exactly one gets
/// here) and signs the person in.
pub async fn consume_link(
    state: &AppState,
    opened: &OpenedLink,
    who: &Requester,
) -> Result<SignedIn> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let request = tx
        .consume_login_request_by_token(&opened.request.token_hash, now)
        .await?
        .ok_or_else(|| {
            AppError::InvalidToken(TokenProblem::Used).with_retry(retry_url(state, &opened.request))
        })?;
    finish(state, tx, &opened.app, request, Method::Link, who).await
}

/// SPEC §2 code entry: only the asking browser may try, within the
/// per-request, per-address and per-IP budgets. A right code signs in.
pub async fn redeem_code(
    state: &AppState,
    login_id: &str,
    code: &str,
    who: &Requester,
) -> Result<SignedIn> {
    let (tx, app, request) = take_code(state, login_id, code, who, None).await?;
    finish(state, tx, &app, request, Method::Code, who).await
}

/// Checks a code for a login request and consumes the request when it is
/// right, returning the open transaction. Browser flows: only the asking
/// browser may try. Headless flows (`who.headless`): only the app named in
/// `only_client` may try, for its own requests. Budgets as SPEC §2.
pub async fn take_code(
    state: &AppState,
    login_id: &str,
    code: &str,
    who: &Requester,
    only_client: Option<&str>,
) -> Result<(Tx, App, LoginRequest)> {
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    if LoginId::parse(login_id).is_err() {
        return Err(unknown());
    }
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let request = tx.login_request(login_id).await?.ok_or_else(unknown)?;
    let may_try = if who.headless {
        is_headless(&request) && only_client == Some(request.client_id.as_str())
    } else {
        !is_headless(&request) && is_asking_browser(state, &request, who.binding.as_deref())
    };
    // A "no account" request goes on exactly like a link request: its code
    // hash matches no code, so every try is wrong, spends the same budgets
    // and gets the same answers; code entry never tells whether an address
    // has an account.
    let kind_ok = matches!(request.kind, LoginKind::Link | LoginKind::NoAccount);
    if !kind_ok || !may_try {
        return Err(unknown());
    }
    let retry = retry_url(state, &request);
    if request.consumed_at.is_some() {
        return Err(AppError::InvalidToken(TokenProblem::Used).with_retry(retry));
    }
    if request.expires_at <= now {
        return Err(AppError::InvalidToken(TokenProblem::Expired).with_retry(retry));
    }
    let app = tx.app(&request.client_id).await?.ok_or_else(unknown)?;
    if !ip_allowed(&app, &request, who.ip) {
        return Err(unknown());
    }
    // Every try spends the address's and the IP's budgets; a right code gives
    // them back. A spent budget stops codes, not links.
    let exhausted = |_| AppError::InvalidToken(TokenProblem::Used).with_retry(retry.clone());
    let slots = spend_code_budgets(state, &mut tx, &request.email, who)
        .await
        .map_err(exhausted)?;
    let code = code.trim();
    let right = code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && constant_time_eq(
            code_hash(state, login_id, code).as_bytes(),
            request.code_hash.as_bytes(),
        )
        // Never matched anyway (see `request_link`); said again so no code
        // can ever open a "no account" request.
        && request.kind == LoginKind::Link;
    if !right {
        let attempts = tx
            .record_wrong_code(login_id, CODE_TRIES_PER_REQUEST, now)
            .await?;
        tx.commit().await.map_err(postern_store::StoreError::from)?;
        return Err(match attempts {
            Some(n) if n < CODE_TRIES_PER_REQUEST => AppError::InvalidCode,
            _ => AppError::InvalidToken(TokenProblem::Used).with_retry(retry),
        });
    }
    for slot in &slots {
        release_limit(&mut tx, slot).await?;
    }
    let request = tx
        .consume_login_request(login_id, now)
        .await?
        .ok_or_else(|| AppError::InvalidToken(TokenProblem::Used).with_retry(retry))?;
    Ok((tx, app, request))
}

/// Where a `device_policy = remote` request stands, for the asking
/// browser's page (`GET /login/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteStatus {
    /// Waiting for the other device.
    Pending,
    /// The right number was typed: the asking browser may continue.
    Approved,
    /// Used, expired or killed: nothing more will happen.
    Dead,
}

impl RemoteStatus {
    /// `pending`, `approved` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteStatus::Pending => "pending",
            RemoteStatus::Approved => "approved",
            RemoteStatus::Dead => "dead",
        }
    }

    /// The status of `req` at `now`.
    pub fn of(req: &LoginRequest, now: i64) -> Self {
        if req.consumed_at.is_some() || req.expires_at <= now {
            RemoteStatus::Dead
        } else if req.approved_at.is_some() {
            RemoteStatus::Approved
        } else {
            RemoteStatus::Pending
        }
    }
}

/// SPEC §3.1 `device_policy = remote`: another device, holding the link,
/// approves the request by typing the number the asking page shows. Nothing
/// is consumed and this browser is not signed in; the asking browser then
/// continues by itself ([`continue_approved`]). Every try spends the code
/// budgets of SPEC §2 (a right one gives them back); a wrong number kills
/// the request, link included.
pub async fn approve_remote(
    state: &AppState,
    opened: &OpenedLink,
    number: &str,
    who: &Requester,
) -> Result<()> {
    let now = state.now();
    let request = &opened.request;
    let retry = retry_url(state, request);
    let Some(expected) = request.remote_number.as_deref() else {
        return Err(AppError::InvalidToken(TokenProblem::Unknown).with_retry(retry));
    };
    let mut tx = state.store.begin().await?;
    let exhausted = |_| AppError::InvalidToken(TokenProblem::Used).with_retry(retry.clone());
    let slots = spend_code_budgets(state, &mut tx, &request.email, who)
        .await
        .map_err(exhausted)?;
    let number = number.trim();
    let right = number.len() == expected.len()
        && number.bytes().all(|b| b.is_ascii_digit())
        && constant_time_eq(number.as_bytes(), expected.as_bytes());
    if !right {
        // A wrong number is one try too many: the request dies at once.
        tx.record_wrong_code(&request.id, 1, now).await?;
        tx.commit().await.map_err(postern_store::StoreError::from)?;
        return Err(AppError::InvalidToken(TokenProblem::WrongNumber).with_retry(retry));
    }
    for slot in &slots {
        release_limit(&mut tx, slot).await?;
    }
    if !tx.approve_remote(&request.id, now).await? {
        // Approved already (a second right answer changes nothing), or no
        // longer live.
        let current = tx.login_request(&request.id).await?;
        if !current.is_some_and(|r| RemoteStatus::of(&r, now) == RemoteStatus::Approved) {
            return Err(AppError::InvalidToken(TokenProblem::Used).with_retry(retry));
        }
    }
    tx.commit().await.map_err(postern_store::StoreError::from)?;
    Ok(())
}

/// The asking browser of an approved `remote` request continues exactly as
/// if it had opened the link: the request is consumed (once) and the person
/// signed in. The caller has checked that `who` is the asking browser.
pub async fn continue_approved(
    state: &AppState,
    app: &App,
    request: &LoginRequest,
    who: &Requester,
) -> Result<SignedIn> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let request = tx
        .consume_approved_login_request(&request.id, now)
        .await?
        .ok_or_else(|| {
            AppError::InvalidToken(TokenProblem::Used).with_retry(retry_url(state, request))
        })?;
    finish(state, tx, app, request, Method::Link, who).await
}

/// Spends one try of every code budget (SPEC §2): per address per hour and
/// per day, and per IP (an IPv6 /64) per hour when the IP is the person's
/// (a headless app that does not pass `ip` would otherwise let anyone
/// exhaust its server's budget for all its users). Returns the slots to
/// give back after a right answer.
async fn spend_code_budgets(
    state: &AppState,
    tx: &mut Tx,
    email: &str,
    who: &Requester,
) -> Result<Vec<String>> {
    let ip = postern_core::net::rate_limit_subject(who.ip);
    let mut budgets = vec![
        ("code-email-hour", email, CODE_TRIES_PER_EMAIL_HOUR, HOUR),
        ("code-email-day", email, CODE_TRIES_PER_EMAIL_DAY, DAY),
    ];
    if who.ip_known {
        budgets.push(("code-ip-hour", ip.as_str(), CODE_TRIES_PER_IP_HOUR, HOUR));
    }
    let mut slots = Vec::with_capacity(budgets.len());
    for (name, subject, limit, window) in budgets {
        slots.push(hit_limit(state, tx, name, subject, limit, window).await?);
    }
    Ok(slots)
}

/// The common part of every successful sign-in, inside the transaction that
/// consumed the request: burn the siblings, find or create the user, free
/// the rate slot, record history.
pub async fn sign_in_user(
    state: &AppState,
    tx: &mut Tx,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<postern_store::User> {
    let now = state.now();
    tx.burn_sibling_requests(&request.client_id, &request.email, now)
        .await?;
    let user = tx
        .upsert_user_sign_in(&random_id(), &request.email, now)
        .await?;
    if user.disabled_at.is_some() {
        return Err(AppError::InvalidToken(TokenProblem::Unknown));
    }
    if let Some(slot) = &request.rate_slot {
        release_limit(tx, slot).await?;
    }
    tx.insert_sign_in_event(&SignInEvent {
        id: random_id(),
        user_id: Some(user.id.clone()),
        client_id: app.client_id.clone(),
        at: now,
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        method: method.event().to_owned(),
        outcome: "success".to_owned(),
    })
    .await?;
    Ok(user)
}

/// The end of a browser sign-in: a session cookie, then consent or an
/// authorization code.
async fn finish(
    state: &AppState,
    mut tx: Tx,
    app: &App,
    request: LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<SignedIn> {
    let now = state.now();
    let user = sign_in_user(state, &mut tx, app, &request, method, who).await?;
    let session_secret = random_token(32);
    let session_id = random_id();
    tx.insert_session(&Session {
        id: session_id.clone(),
        token_hash: state
            .secrets
            .keyed_hash(purpose::SESSION, session_secret.as_bytes()),
        user_id: user.id.clone(),
        client_id: None,
        kind: "browser".to_owned(),
        amr: method.amr().to_owned(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.config.session_max_age,
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        revoked_at: None,
    })
    .await?;
    let scope = Scope::parse(Some(&request.scope));
    let granted = match tx.grant(&user.id, &app.client_id).await? {
        Some(g) => scope.is_subset_of(&Scope::parse(Some(&g))),
        None => false,
    };
    let next = if app.needs_consent() && !granted {
        Next::Consent {
            login_id: request.id.clone(),
            app: Box::new(app.clone()),
            scope,
            locale: request.locale.clone(),
            consent_token: consent_token(state, &request.id, &session_id),
        }
    } else {
        let session = (session_id.as_str(), method.amr(), now);
        Next::Redirect(issue_code(state, &mut tx, &request, session, &user.id).await?)
    };
    tx.commit().await.map_err(postern_store::StoreError::from)?;
    Ok(SignedIn {
        session_secret,
        session_ttl: state.config.session_idle_ttl,
        next,
    })
}

/// Issues a single-use authorization code for `request` (once: the request
/// is marked complete) and returns the redirect to the app (OIDC Core
/// §3.1.2.5, RFC 9207 `iss`).
async fn issue_code(
    state: &AppState,
    tx: &mut Tx,
    request: &LoginRequest,
    session: (&str, &str, i64),
    user_id: &str,
) -> Result<String> {
    let (session_id, amr, auth_time) = session;
    if !tx.complete_login_request(&request.id, state.now()).await? {
        return Err(AppError::InvalidToken(TokenProblem::Used));
    }
    let code = crate::oidc::mint_code(
        state,
        tx,
        crate::oidc::CodeGrant {
            client_id: &request.client_id,
            user_id,
            session_id,
            redirect_uri: &request.redirect_uri,
            code_challenge: request.code_challenge.as_deref(),
            nonce: request.nonce.as_deref(),
            scope: &request.scope,
            amr,
            auth_time,
        },
    )
    .await?;
    Ok(authorization_response(
        state,
        &request.redirect_uri,
        request.state.as_deref(),
        &[("code", &code)],
    ))
}

/// `redirect_uri` with `params`, `state` and `iss` added to its query.
pub fn authorization_response(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    params: &[(&str, &str)],
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = client_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.config.issuer());
    }
    url.to_string()
}

/// The person's answer on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allow: remember the grant and continue.
    Allow,
    /// Deny: back to the app with `access_denied`.
    Deny,
}

/// The token a consent form carries: it names the login request and the
/// session that may answer it, so only the browser holding that session
/// (not another session of the same person) can allow or deny.
pub fn consent_token(state: &AppState, login_id: &str, session_id: &str) -> String {
    state.secrets.keyed_hash(
        purpose::CONSENT,
        format!("{login_id}\n{session_id}").as_bytes(),
    )
}

/// Finishes a sign-in waiting on consent. Only the browser holding the
/// session that the sign-in created (named by `consent_token`, among the
/// browser's `session_secrets`) may answer, once, within 10 minutes. Allow
/// adds the scopes to what the person granted the app before.
pub async fn decide_consent(
    state: &AppState,
    login_id: &str,
    session_secrets: &[String],
    consent_token: Option<&str>,
    decision: Decision,
) -> Result<String> {
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    LoginId::parse(login_id).map_err(|_| unknown())?;
    let now = state.now();
    let token = consent_token
        .filter(|t| t.len() <= 100)
        .ok_or_else(unknown)?;
    let mut tx = state.store.begin().await?;
    let mut answering = None;
    for secret in session_secrets {
        let hash = state
            .secrets
            .keyed_hash(purpose::SESSION, secret.as_bytes());
        let Some(s) = tx.session_by_token(&hash).await? else {
            continue;
        };
        let message = format!("{login_id}\n{}", s.id);
        // Every secret is checked, in constant time each, so the answer
        // takes as long whichever session matches.
        let matches = state
            .secrets
            .verify_keyed_hash(purpose::CONSENT, message.as_bytes(), token);
        if matches && answering.is_none() && s.revoked_at.is_none() && s.expires_at > now {
            answering = Some(s);
        }
    }
    let session = answering.ok_or_else(unknown)?;
    let user = tx.user(&session.user_id).await?.ok_or_else(unknown)?;
    let request = tx
        .login_request(login_id)
        .await?
        .filter(|r| r.email == user.email && r.completed_at.is_none())
        .filter(|r| r.consumed_at.is_some_and(|c| c + CONSENT_WINDOW > now))
        .ok_or_else(unknown)?;
    let redirect = match decision {
        Decision::Allow => {
            // Grants accumulate: allowing `offline_access` today keeps the
            // `email` allowed last week.
            let before = tx
                .grant(&user.id, &request.client_id)
                .await?
                .unwrap_or_default();
            let scope = Scope::parse(Some(&format!("{before} {}", request.scope)));
            tx.upsert_grant(&user.id, &request.client_id, &scope.to_string(), now)
                .await?;
            let s = (session.id.as_str(), session.amr.as_str(), session.auth_time);
            issue_code(state, &mut tx, &request, s, &user.id).await?
        }
        Decision::Deny => {
            if !tx.complete_login_request(&request.id, now).await? {
                return Err(unknown());
            }
            authorization_response(
                state,
                &request.redirect_uri,
                request.state.as_deref(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "The user denied access."),
                ],
            )
        }
    };
    tx.commit().await.map_err(postern_store::StoreError::from)?;
    Ok(redirect)
}
