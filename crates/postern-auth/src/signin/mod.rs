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
use postern_store::{
    Consume, Defer, LoginKind, LoginRequest, Queries, RateSlot, Session, SignInEvent, Tx, Writes,
};
use serde::Deserialize;

use crate::error::{AuthError, Flow, Result, TokenProblem};
use crate::response::AuthorizationResponse;
use crate::Services;

mod admin;
mod browser;
mod finish;
mod limits;
mod redeem;

pub use admin::*;
pub use browser::*;
pub use finish::*;
pub(crate) use limits::*;
pub use redeem::*;

/// Wrong codes a request survives before it dies (SPEC §2).
pub const CODE_TRIES_PER_REQUEST: i64 = 5;

/// How long "send again" waits after a link was sent (the check page's
/// countdown).
pub const RESEND_AFTER: i64 = 30;

/// Wrong codes `req` still survives.
pub fn tries_left(req: &postern_store::LoginRequest) -> i64 {
    (CODE_TRIES_PER_REQUEST - req.code_attempts).max(0)
}

/// Seconds until "send again" is offered for `req`, at `now`.
pub fn resend_wait(req: &postern_store::LoginRequest, now: i64) -> i64 {
    (req.created_at + RESEND_AFTER - now).clamp(0, RESEND_AFTER)
}

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

pub(crate) const HOUR: i64 = 3600;

pub(crate) const DAY: i64 = 86_400;

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
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
pub struct RawAuthParams {
    /// Required.
    #[schema(value_type = String, required = true)]
    pub client_id: Option<String>,
    /// Required, exact match.
    #[schema(value_type = String, required = true)]
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
    /// Client svc.
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

    /// The same parameters as `(name, value)` pairs, for a form that
    /// posts them back (the email form, the account chooser).
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("client_id", self.app.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scope.to_string()),
        ];
        for (k, val) in [
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("ui_locales", &self.ui_locales),
        ] {
            if let Some(val) = val {
                v.push((k, val.clone()));
            }
        }
        if self.code_challenge.is_some() {
            v.push(("code_challenge_method", "S256".to_owned()));
        }
        v
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::invalid(msg.into())
}

/// Looks up the app a request names: a client id that cannot exist is an
/// unknown client (and never reaches SQL).
pub async fn app_named(svc: &Services, client_id: Option<&str>) -> Result<App> {
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or(AuthError::missing("client_id"))?;
    let client_id = ClientId::parse(client_id).map_err(|_| AuthError::UnknownClient)?;
    svc.store
        .app(&client_id)
        .await?
        .ok_or(AuthError::UnknownClient)
}

/// Validates authorization parameters exactly as `/authorize` does: client
/// first, then the redirect URI (exact match), then the rest.
pub async fn validate_auth_params(svc: &Services, raw: &RawAuthParams) -> Result<AuthParams> {
    let app = app_named(svc, raw.client_id.as_deref()).await?;
    check_auth_params(app.clone(), raw).map_err(|e| AuthError::in_app(&app, e))
}

/// The checks of [`validate_auth_params`] once the app is known.
pub(crate) fn check_auth_params(app: App, raw: &RawAuthParams) -> Result<AuthParams> {
    let redirect_uri = raw
        .redirect_uri
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or(AuthError::missing("redirect_uri"))?;
    if !app.has_redirect_uri(redirect_uri) {
        return Err(AuthError::RedirectUriNotRegistered);
    }
    let code_challenge = check_pkce(
        app.settings.public,
        raw.code_challenge.as_deref(),
        raw.code_challenge_method.as_deref(),
    )
    .map_err(|e| invalid(format!("{e}.")))?;
    let text = |name, v: &Option<String>, max| {
        check_text(name, v.as_deref(), max).map_err(|e| invalid(format!("{e}.")))
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
    /// The person said they lost their passkey: a link or code signs them
    /// in even to an app that wants a passkey once they have one.
    pub passkey_lost: bool,
}

/// Whether a login request was made through the headless API.
pub fn is_headless(req: &LoginRequest) -> bool {
    req.headless
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

/// SPEC §3.1 `POST /request-magic-link` and §3.4 `POST /api/v1/magic-links`:
/// checks limits, stores the login request and its email in one
/// transaction, and wakes the mail worker. Known and unknown addresses take
/// the same path; where the app does not let this address in, the email
/// says so instead of carrying a link, and the request's code can never be
/// right (code entry then answers exactly as for a wrong code).
pub async fn request_link(
    svc: &Services,
    params: &AuthParams,
    email: &str,
    who: &Requester,
) -> Result<LinkSent> {
    let email = EmailAddress::parse(email).map_err(|e| invalid(format!("Invalid email: {e}.")))?;
    let app = &params.app;
    if !app.settings.enabled {
        // SPEC §3.6: a disabled app signs no one in; nothing is sent.
        record_refused(svc, app, None, who).await?;
        return Err(AuthError::in_app(app, AuthError::AppDisabled));
    }
    let cfg = &svc.settings;
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
    let limits: Vec<Limit> = ip_limit
        .into_iter()
        .chain([email_limit])
        .chain(app_limit)
        .collect();

    // Limits first: a request refused by a full window costs one read, and
    // no user lookup, rendered email or write lock.
    let mut conn = svc.store.conn().await?;
    peek_limits(svc, &mut conn, &limits, |name| {
        svc.metrics.link_refused(name)
    })
    .await?;
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
        let mut url = url::Url::parse(&params.redirect_uri).map_err(AuthError::internal)?;
        url.query_pairs_mut().append_pair("token", &token);
        if let Some(s) = &params.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        url.to_string()
    } else {
        format!("{}?token={token}", svc.settings.url("/verify-email"))
    };
    let email_message = crate::mail::sign_in_email(app, &email, kind, &link, &code, locale)?;

    let now = svc.now();
    let expires_at = now + app.settings.link_ttl;
    let hits = LimitHits::new(svc, &limits);
    let email_index = limits.iter().position(|l| l.0 == email_limit.0);
    let binding_hash = who
        .binding
        .as_ref()
        .map(|b| svc.secrets.keyed_hash(purpose::BINDING, b.as_bytes()));
    let mut request = LoginRequest {
        id: id.clone(),
        client_id: app.client_id.clone(),
        email: email.as_str().to_owned(),
        kind,
        headless: who.headless,
        admin_issued: false,
        token_hash: svc.secrets.keyed_hash(purpose::LINK, token.as_bytes()),
        code_hash: match kind {
            LoginKind::Link => code_hash(svc, &id, &code),
            // "No account": a keyed hash of fresh random bytes, the same
            // shape as a real one and matched by no code, so code entry
            // takes the same budgets and gives the same wrong-code answers
            // whether or not the address has an account.
            _ => svc
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
        rate_slot: None,
        created_at: now,
        expires_at,
        consumed_at: None,
    };
    // History names every refusal (SPEC §3.5 `refused`): disabled person,
    // sign-up closed, domain not allowed.
    let refused =
        (!allowed).then(|| refused_event(app, user.as_ref().map(|u| u.id.clone()), who, now));
    let (queued, mut outbox_row) = svc
        .mail_wake
        .prepare(
            &svc.secrets,
            &email_message,
            now,
            expires_at,
            &svc.settings.mail_from_domain,
        )
        .map_err(AuthError::internal)?;
    outbox_row.meta = Some((
        Some(app.client_id.clone()),
        crate::admin::ops::mask_address(email.as_str()),
    ));
    request.rate_slot = email_index.map(|i| hits.slot(i).clone());
    // One transaction on the store's writer: the hits decide (the windows
    // may have filled since the peek), and one that trips stops it, so a
    // refused request counts in none and nothing of it is written.
    let write = svc.store.write(async move |w: &mut Writes<'_>| {
        // The writes that need no answer go first, in one go; the counters
        // last. Every request from one address (or through one proxy)
        // updates the same counter row, and on PostgreSQL its lock is held
        // from that update to the commit: the shorter, the more requests
        // per second that row lets through (docs/PERFORMANCE.md, round
        // four). A refusal still rolls all of it back.
        w.defer_outbox(&outbox_row);
        if let Some(b) = &request.binding_hash {
            // "Send again" from the same browser replaces its earlier
            // request.
            w.defer_burn_browser_requests(&request.client_id, b, now);
        }
        w.defer_login_request(&request);
        if let Some(event) = &refused {
            w.defer_sign_in_event(event);
        }
        w.flush().await?;
        let counted = w.rate_hits(&hits.hits()).await?;
        hits.decide(&counted).map_err(LinkStop::Limited)?;
        Ok::<(), LinkStop>(())
    });
    match write.await {
        Ok(()) => {}
        Err(LinkStop::Limited((i, e))) => {
            svc.metrics.link_refused(limits[i].0);
            return Err(e);
        }
        Err(LinkStop::Store(e)) => return Err(e.into()),
    }
    svc.mail_wake.hand_over(queued);
    Ok(LinkSent {
        login_id: id,
        email,
        expires_at,
    })
}

/// Why a link request's transaction stopped: a limit that did not count
/// (its index and 429), or the database.
#[derive(Debug)]
enum LinkStop {
    Limited((usize, AuthError)),
    Store(postern_store::StoreError),
}

impl From<postern_store::StoreError> for LinkStop {
    fn from(e: postern_store::StoreError) -> Self {
        LinkStop::Store(e)
    }
}

fn refused_event(
    app: &App,
    user_id: Option<String>,
    who: &Requester,
    now: i64,
) -> postern_store::SignInEvent {
    postern_store::SignInEvent {
        id: random_id(),
        user_id,
        client_id: app.client_id.clone(),
        at: now,
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        method: "link".to_owned(),
        outcome: "refused".to_owned(),
    }
}

/// Records a sign-in that did not happen (SPEC §3.5 outcomes
/// `wrong_code`, `expired`, `used`) in the history of the request's person.
pub(crate) async fn record_outcome<C: Queries>(
    conn: &mut C,
    request: &LoginRequest,
    ip: Option<String>,
    user_agent: Option<String>,
    method: &str,
    outcome: &str,
    now: i64,
) -> Result<()> {
    let user_id = conn.user_by_email(&request.email).await?.map(|u| u.id);
    conn.insert_sign_in_event(&SignInEvent {
        id: random_id(),
        user_id,
        client_id: request.client_id.clone(),
        at: now,
        ip,
        user_agent,
        method: method.to_owned(),
        outcome: outcome.to_owned(),
    })
    .await?;
    Ok(())
}

async fn record_refused(
    svc: &Services,
    app: &App,
    user_id: Option<String>,
    who: &Requester,
) -> Result<()> {
    let mut tx = svc.store.begin().await?;
    tx.insert_sign_in_event(&refused_event(app, user_id, who, svc.now()))
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) fn code_hash(svc: &Services, login_id: &str, code: &str) -> String {
    svc.secrets
        .keyed_hash(purpose::CODE, format!("{login_id}:{code}").as_bytes())
}

/// The keyed hash stored for a browser's binding cookie.
pub fn binding_hash(svc: &Services, binding: &str) -> String {
    svc.secrets.keyed_hash(purpose::BINDING, binding.as_bytes())
}

/// Whether `binding` (the browser's cookie) is the one that asked for `req`.
pub fn is_asking_browser(svc: &Services, req: &LoginRequest, binding: Option<&str>) -> bool {
    match (&req.binding_hash, binding) {
        (Some(stored), Some(b)) => {
            constant_time_eq(binding_hash(svc, b).as_bytes(), stored.as_bytes())
        }
        _ => false,
    }
}

/// The sign-in `req` belonged to, for a face to offer it again ("send a
/// new link" to the same destination, in the same language).
pub fn flow_of(req: &LoginRequest) -> Flow {
    Flow {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        state: req.state.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        locale: req.locale.clone(),
        email: req.email.clone(),
    }
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

/// How a sign-in proved who it is (the `amr` claim, SPEC §3.2; RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Clicked the link.
    Link,
    /// Typed the code.
    Code,
    /// Clicked the link after saying the passkey was lost.
    LinkPasskeyLost,
    /// Typed the code after saying the passkey was lost.
    CodePasskeyLost,
    /// Used a passkey (issue 15).
    Passkey {
        /// A key that stays on one device (`hwk`); a synced one is `swk`.
        hardware: bool,
        /// The authenticator verified the person (`user`).
        verified: bool,
    },
}

impl Method {
    /// `link`, `code`, `passkey`, or `link_passkey_lost` /
    /// `code_passkey_lost`, for history.
    pub fn event(self) -> &'static str {
        match self {
            Method::Link => "link",
            Method::Code => "code",
            Method::LinkPasskeyLost => "link_passkey_lost",
            Method::CodePasskeyLost => "code_passkey_lost",
            Method::Passkey { .. } => "passkey",
        }
    }
    /// `email` or `otp` (SPEC §3.2 `amr`); a passkey is `hwk` or `swk`,
    /// plus `user` when the person was verified (RFC 8176), stored space
    /// separated and issued as one `amr` entry each.
    pub fn amr(self) -> &'static str {
        match self {
            Method::Link | Method::LinkPasskeyLost => "email",
            Method::Code | Method::CodePasskeyLost => "otp",
            Method::Passkey {
                hardware: true,
                verified: true,
            } => "hwk user",
            Method::Passkey {
                hardware: true,
                verified: false,
            } => "hwk",
            Method::Passkey {
                hardware: false,
                verified: true,
            } => "swk user",
            Method::Passkey {
                hardware: false,
                verified: false,
            } => "swk",
        }
    }
}
