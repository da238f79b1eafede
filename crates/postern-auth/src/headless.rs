//! The headless API of SPEC §3.4: apps that draw their own screens send
//! links, redeem them, and hold sessions as signed tokens they verify
//! offline. Every call is authenticated as the app (HTTP Basic), and an app
//! only ever sees and touches its own users' sessions.

use std::net::IpAddr;

use postern_core::crypto::{random_id, random_token};
use postern_core::jose::Alg;
use postern_core::{App, SessionId, Subject};
use postern_store::{
    Defer, LoginKind, Queries, RefreshToken, Session, SessionQueries, Tx, User, Writes,
};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Result, TokenProblem};
use crate::signin::{self, is_headless, purpose, FinishStop, Method, RawAuthParams, Requester};
use crate::Services;

/// JWT `typ` of headless session tokens: distinct from ID and access
/// tokens, so one can never be passed off as another.
pub const SESSION_TOKEN_TYP: &str = "postern-session+jwt";
/// Session tokens live 10 minutes (SPEC §2).
pub const SESSION_TOKEN_TTL: i64 = 600;

/// `POST /api/v1/magic-links` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct LinkRequest {
    /// The person's address.
    #[schema(value_type = String, required = true)]
    pub email: Option<String>,
    /// A registered redirect URI: the link is `redirect_uri?token=…`.
    #[schema(value_type = String, required = true)]
    pub redirect_uri: Option<String>,
    /// Echoed on the link.
    pub state: Option<String>,
    /// The person's IP (limits, IP binding, history).
    pub ip: Option<String>,
    /// The person's browser.
    pub user_agent: Option<String>,
    /// The person's language.
    pub locale: Option<String>,
}

/// `POST /api/v1/magic-links` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkCreated {
    /// Keep it in the asking browser for `same_browser` apps and codes.
    pub login_id: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// The person's details as an app sees them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
// The admin API has a `UserView` of its own; schema names are global.
#[schema(as = AppUser)]
pub struct UserView {
    /// The app's pairwise subject for the user.
    pub id: String,
    /// Normalized address.
    pub email: String,
}

/// A new or refreshed headless session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionIssued {
    /// Who signed in.
    pub user: UserView,
    /// The session.
    pub session_id: String,
    /// EdDSA JWT, 10 minutes, verifiable offline against `/jwks.json`.
    pub session_token: String,
    /// Opaque; rotates on every use.
    pub refresh_token: String,
    /// RFC 3339 of the session's end if it stays idle.
    pub expires_at: String,
}

/// `POST /api/v1/sessions/verify` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The session.
    pub session_id: String,
    /// Its user.
    pub user: UserView,
    /// RFC 3339.
    pub expires_at: String,
}

/// RFC 3339 of a unix time.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_ip(ip: Option<&str>) -> Result<Option<IpAddr>> {
    match ip.filter(|s| !s.is_empty()) {
        None => Ok(None),
        // Canonical, as for browsers: `::ffff:192.0.2.1` is stored, limited
        // and bound as the IPv4 address it carries.
        Some(s) => s
            .parse::<IpAddr>()
            .map(|ip| Some(ip.to_canonical()))
            .map_err(|_| AuthError::invalid("ip is not an IP address.")),
    }
}

fn person(
    ip: Option<IpAddr>,
    server_ip: IpAddr,
    user_agent: Option<&str>,
    locale: Option<&str>,
) -> Requester {
    Requester {
        ip: ip.unwrap_or(server_ip),
        user_agent: user_agent.map(|u| u.chars().filter(|c| !c.is_control()).take(512).collect()),
        accept_language: locale.map(|l| l.chars().take(100).collect()),
        binding: None,
        ip_known: ip.is_some(),
        headless: true,
        passkey_lost: false,
    }
}

/// The app calling the headless API: HTTP Basic only (RFC 6749 §2.3.1),
/// and only confidential apps (a public app has no secret to prove who
/// it is). Every failure is [`AuthError::ClientAuth`].
pub async fn authenticate_app(
    svc: &Services,
    creds: &crate::oidc::ClientCredentials,
) -> Result<App> {
    if !creds.basic {
        return Err(AuthError::ClientAuth);
    }
    let app = crate::oidc::authenticate_client(svc, creds).await?;
    if app.settings.public {
        return Err(AuthError::ClientAuth);
    }
    Ok(app)
}

/// SPEC §3.4 `POST /api/v1/magic-links`.
pub async fn request_link(
    svc: &Services,
    app: &App,
    req: &LinkRequest,
    server_ip: IpAddr,
) -> Result<LinkCreated> {
    let email = req
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| AuthError::missing("email"))?;
    if req.redirect_uri.as_deref().is_none_or(str::is_empty) {
        return Err(AuthError::missing("redirect_uri"));
    }
    let ip = parse_ip(req.ip.as_deref())?;
    let raw = RawAuthParams {
        client_id: Some(app.client_id.clone()),
        redirect_uri: req.redirect_uri.clone(),
        scope: Some("openid email".into()),
        state: req.state.clone(),
        ..RawAuthParams::default()
    };
    let params = signin::validate_auth_params(svc, &raw).await?;
    let who = person(
        ip,
        server_ip,
        req.user_agent.as_deref(),
        req.locale.as_deref(),
    );
    let sent = signin::request_link(svc, &params, email, &who).await?;
    Ok(LinkCreated {
        login_id: sent.login_id,
        expires_at: rfc3339(sent.expires_at),
    })
}

/// `POST /api/v1/magic-links/verify` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    /// The `pml_` token from the link.
    pub token: Option<String>,
    /// The login id (with a code, or with the token for `same_browser` apps).
    pub login_id: Option<String>,
    /// The 6-digit code.
    pub code: Option<String>,
    /// The person's IP.
    pub ip: Option<String>,
    /// The person's browser.
    pub user_agent: Option<String>,
}

/// SPEC §3.4 `POST /api/v1/magic-links/verify`: a token (plus the login id
/// under `same_browser`) or a login id and code. Only this app's requests.
pub async fn verify(
    svc: &Services,
    app: &App,
    req: &VerifyRequest,
    server_ip: IpAddr,
) -> Result<SessionIssued> {
    let issued = verify_uncounted(svc, app, req, server_ip).await;
    let method = match (&req.token, &req.code) {
        (Some(_), None) => Some(Method::Link),
        (None, Some(_)) => Some(Method::Code),
        // Neither or both: a malformed request, no sign-in attempt.
        _ => None,
    };
    if let Some(method) = method {
        svc.metrics.sign_in(method, &issued, |_| true);
    }
    issued
}

async fn verify_uncounted(
    svc: &Services,
    app: &App,
    req: &VerifyRequest,
    server_ip: IpAddr,
) -> Result<SessionIssued> {
    let ip = parse_ip(req.ip.as_deref())?;
    let who = person(ip, server_ip, req.user_agent.as_deref(), None);
    let unknown = || AuthError::token(TokenProblem::Unknown);
    let (mut tx, request, method) = match (&req.token, &req.login_id, &req.code) {
        (Some(token), login_id, None) => {
            let opened = signin::open_headless_link(svc, app, token, &who).await?;
            let r = &opened.request;
            if !is_headless(r) {
                return Err(unknown());
            }
            let same_browser = app.settings.device_policy != postern_core::DevicePolicy::Any;
            if same_browser && login_id.as_deref() != Some(r.id.as_str()) {
                return Err(unknown());
            }
            if !signin::ip_allowed(app, r, who.ip) || (app.settings.bind_ip_range && ip.is_none()) {
                return Err(unknown());
            }
            if r.kind != LoginKind::Link {
                return Err(unknown());
            }
            return finish_link(svc, app, r, &who).await;
        }
        (None, Some(login_id), Some(code)) => {
            let (tx, _, request) =
                signin::take_code(svc, login_id, code, &who, Some(&app.client_id)).await?;
            (tx, request, Method::Code)
        }
        _ => {
            return Err(AuthError::invalid(
                "Send either token (and login_id for same-browser apps) or login_id and code.",
            ))
        }
    };
    if request.kind != LoginKind::Link {
        return Err(unknown());
    }
    let user = signin::sign_in_user(svc, &mut tx, app, &request, method, &who).await?;
    let issued = open_session(svc, &mut tx, app, &user, method, &who).await?;
    tx.commit().await?;
    Ok(issued)
}

/// A headless link sign-in in one transaction on the store's writer:
/// consumes the link (of concurrent calls exactly one gets here) and burns
/// its siblings, finds or creates the person, and writes the history row,
/// the session with the app's subject and its first refresh token, all
/// made before the transaction but for the person's id. The code path
/// ([`signin::take_code`]) keeps its transaction: it counts the attempt.
async fn finish_link(
    svc: &Services,
    app: &App,
    request: &postern_store::LoginRequest,
    who: &Requester,
) -> Result<SessionIssued> {
    let method = Method::Link;
    let mut new = NewSession::new(svc, app, method, who);
    let mut event = signin::success_event(app, request, method, who, new.session.created_at, "");
    let link = signin::LinkClaim::new(request, new.session.created_at);
    let rate_slot = request.rate_slot.clone();
    let (secrets, subject_app) = (std::sync::Arc::clone(&svc.secrets), app.clone());
    let written = svc
        .store
        .write(async move |w: &mut Writes<'_>| {
            let user = link.claim(w).await?;
            if let Some(slot) = &rate_slot {
                w.defer_rate_release(slot);
            }
            event.user_id = Some(user.id.clone());
            w.defer_sign_in_event(&event);
            let subject = crate::oidc::subject_with(&secrets, &subject_app, &user.id);
            new.write(w, &user.id, &subject);
            Ok((new, user, subject))
        })
        .await;
    match written {
        Ok((new, user, subject)) => {
            issue(svc, app, &user, &new.session, subject, new.refresh_token).await
        }
        Err(FinishStop::LostRace) => {
            // Another call consumed it since the open: history says so.
            let tx = svc.store.begin().await?;
            Err(signin::lost_race(svc, tx, request, who).await)
        }
        Err(FinishStop::Disabled) => Err(AuthError::token(TokenProblem::Unknown)),
        Err(FinishStop::Store(e)) => Err(e.into()),
    }
}

/// A headless session and its first refresh token, made before the
/// transaction that stores them ([`NewSession::write`]) but for the
/// person's id and subject.
struct NewSession {
    session: Session,
    refresh: RefreshToken,
    refresh_token: String,
}

impl NewSession {
    fn new(svc: &Services, app: &App, method: Method, who: &Requester) -> Self {
        let session = new_session(svc, app, "", method, who);
        let refresh_token = format!("prt_{}", random_token(32));
        let refresh = RefreshToken {
            token_hash: svc
                .secrets
                .keyed_hash(purpose::REFRESH, refresh_token.as_bytes()),
            // A headless session's refresh tokens form one family named
            // after it.
            family_id: session.id.clone(),
            session_id: session.id.clone(),
            client_id: app.client_id.clone(),
            user_id: String::new(),
            scope: refresh_scope().to_string(),
            created_at: session.created_at,
            used_at: None,
            revoked_at: None,
        };
        Self {
            session,
            refresh,
            refresh_token,
        }
    }

    /// The session and its refresh token for `user_id`, deferred to the
    /// commit.
    fn write(&mut self, d: &mut impl Defer, user_id: &str, subject: &str) {
        self.session.user_id = user_id.to_owned();
        d.defer_headless_session(&self.session, subject);
        self.refresh.user_id = user_id.to_owned();
        d.defer_refresh_token(&self.refresh);
    }
}

/// The scope of a headless session's refresh tokens.
fn refresh_scope() -> postern_core::oauth::Scope {
    postern_core::oauth::Scope::parse(Some("openid email"))
}

/// A new headless session of `user_id` for `app`.
fn new_session(
    svc: &Services,
    app: &App,
    user_id: &str,
    method: Method,
    who: &Requester,
) -> Session {
    let now = svc.now();
    let max_age = app
        .settings
        .session_max_age
        .map_or(svc.settings.session_max_age, |cap| {
            cap.min(svc.settings.session_max_age)
        });
    Session {
        id: random_id(),
        // Headless sessions have no cookie: this hash matches nothing.
        token_hash: svc
            .secrets
            .keyed_hash("unusable-session", random_token(32).as_bytes()),
        user_id: user_id.to_owned(),
        client_id: Some(app.client_id.clone()),
        kind: "headless".to_owned(),
        amr: method.amr().to_owned(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + max_age,
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        revoked_at: None,
        passkey_ok: false,
    }
}

/// Creates a headless session with its first refresh token, inside `tx`.
async fn open_session(
    svc: &Services,
    tx: &mut Tx,
    app: &App,
    user: &User,
    method: Method,
    who: &Requester,
) -> Result<SessionIssued> {
    let session = new_session(svc, app, &user.id, method, who);
    tx.insert_session(&session).await?;
    let subject = crate::oidc::subject(svc, app, &user.id);
    tx.set_session_subject(&session.id, &subject).await?;
    let refresh_token = new_refresh_token(svc, tx, &session, app, &user.id).await?;
    issue(svc, app, user, &session, subject, refresh_token).await
}

/// A headless session's refresh tokens form one family named after it.
async fn new_refresh_token(
    svc: &Services,
    tx: &mut Tx,
    session: &Session,
    app: &App,
    user_id: &str,
) -> Result<String> {
    crate::oidc::new_refresh_token(
        svc,
        tx,
        &session.id,
        session,
        app,
        user_id,
        &refresh_scope(),
    )
    .await
}

/// Claims of a headless session token. Anyone holding one can read them,
/// so they carry no personal data unless the app opted in with
/// `token_email` (SPEC §2); the JSON answers carry `user.email` instead.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Issuer.
    pub iss: String,
    /// The app's pairwise subject.
    pub sub: String,
    /// The app's client id.
    pub aud: String,
    /// Expiry (10 minutes).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Session id.
    pub sid: String,
    /// Unique id of this token.
    #[serde(default)]
    pub jti: String,
    /// The address, only for apps with `token_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email` or `otp`.
    pub amr: Vec<String>,
}

/// When a session ends if it stays idle: the sliding limit, the cap fixed at
/// sign-in, and the app's current cap counted from sign-in (SPEC §2: a
/// session older than the app's cap must sign in again, even when the app
/// lowered its cap later, as `oidc::session_fits_app` does for browsers).
fn session_end(svc: &Services, app: &App, s: &Session) -> i64 {
    let app_cap = app
        .settings
        .session_max_age
        .map_or(i64::MAX, |cap| s.created_at.saturating_add(cap));
    (s.last_seen_at + svc.settings.session_idle_ttl)
        .min(s.expires_at)
        .min(app_cap)
}

async fn issue(
    svc: &Services,
    app: &App,
    user: &User,
    session: &Session,
    subject: String,
    refresh_token: String,
) -> Result<SessionIssued> {
    let now = svc.now();
    let claims = SessionClaims {
        iss: svc.settings.issuer(),
        sub: subject.clone(),
        aud: app.client_id.clone(),
        exp: now + SESSION_TOKEN_TTL,
        iat: now,
        sid: session.id.clone(),
        jti: random_id(),
        email: app.settings.token_email.then(|| user.email.clone()),
        amr: session.amr.split_whitespace().map(str::to_owned).collect(),
    };
    let session_token = svc
        .keys
        .sign(Alg::EdDSA, SESSION_TOKEN_TYP, claims)
        .await
        .map_err(AuthError::internal)?;
    Ok(SessionIssued {
        user: UserView {
            id: subject,
            email: user.email.clone(),
        },
        session_id: session.id.clone(),
        session_token,
        refresh_token,
        expires_at: rfc3339(session_end(svc, app, session)),
    })
}

fn live(svc: &Services, s: &Session, app: &App) -> bool {
    let now = svc.now();
    s.revoked_at.is_none()
        && s.kind == "headless"
        && s.client_id.as_deref() == Some(app.client_id.as_str())
        && session_end(svc, app, s) > now
}

/// SPEC §3.4 `POST /api/v1/sessions/refresh`: rotates the refresh token and
/// keeps the session alive; a reused refresh token revokes the session.
pub async fn refresh(svc: &Services, app: &App, token: &str) -> Result<SessionIssued> {
    let invalid = || AuthError::token(TokenProblem::Unknown);
    if !token.starts_with("prt_") || token.len() > 200 {
        return Err(invalid());
    }
    let now = svc.now();
    let hash = svc.secrets.keyed_hash(purpose::REFRESH, token.as_bytes());
    let mut tx = svc.store.begin().await?;
    let Some(old) = tx.use_refresh_token(&hash, now).await? else {
        if let Some(t) = tx.refresh_token(&hash).await? {
            if t.client_id == app.client_id && t.used_at.is_some() {
                // Someone holds a copy: end the session (SPEC §3.4).
                tx.revoke_session(&t.session_id, now).await?;
                tx.commit().await?;
                tracing::warn!(client_id = %app.client_id, "headless refresh token reused; session revoked");
            }
        }
        return Err(invalid());
    };
    if old.client_id != app.client_id {
        return Err(invalid());
    }
    let session = tx
        .session(&old.session_id)
        .await?
        .filter(|s| live(svc, s, app))
        .ok_or_else(invalid)?;
    let user = tx
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(invalid)?;
    tx.touch_session(&session.id, now).await?;
    let session = Session {
        last_seen_at: now,
        ..session
    };
    let next = new_refresh_token(svc, &mut tx, &session, app, &user.id).await?;
    tx.commit().await?;
    let subject = crate::oidc::subject(svc, app, &user.id);
    issue(svc, app, &user, &session, subject, next).await
}

/// SPEC §3.4 `POST /api/v1/sessions/verify`: the token's signature and
/// claims, then the session in the database (revocation is seen at once).
pub async fn verify_session(svc: &Services, app: &App, token: &str) -> Result<SessionInfo> {
    let check = postern_core::jose::Check {
        issuer: &svc.settings.issuer(),
        audience: Some(&app.client_id),
        now: svc.now(),
        leeway: 0,
    };
    let claims: SessionClaims = svc
        .keys
        .keys()
        .verify(token, &[Alg::EdDSA], Some(SESSION_TOKEN_TYP), &check)
        .map_err(|_| AuthError::InvalidSession)?;
    let mut conn = svc.store.conn().await?;
    let session = conn
        .session(&claims.sid)
        .await?
        .filter(|s| live(svc, s, app))
        .ok_or(AuthError::InvalidSession)?;
    let user = conn
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or(AuthError::InvalidSession)?;
    Ok(SessionInfo {
        session_id: session.id.clone(),
        user: UserView {
            id: claims.sub,
            email: user.email,
        },
        expires_at: rfc3339(session_end(svc, app, &session)),
    })
}

/// SPEC §3.4 `DELETE /api/v1/sessions/{id}`: only the app's own sessions;
/// any other id is 404.
pub async fn revoke_session(svc: &Services, app: &App, session_id: &str) -> Result<()> {
    if SessionId::parse(session_id).is_err() {
        return Err(AuthError::NotFound);
    }
    let mut tx = svc.store.begin().await?;
    let session = tx
        .session(session_id)
        .await?
        .filter(|s| s.kind == "headless" && s.client_id.as_deref() == Some(app.client_id.as_str()))
        .ok_or(AuthError::NotFound)?;
    tx.revoke_session(&session.id, svc.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// SPEC §3.4 `POST /api/v1/users/{user_id}/sessions/revoke`: signs the user
/// out of this app everywhere (sessions and refresh tokens).
pub async fn revoke_user(svc: &Services, app: &App, subject: &str) -> Result<()> {
    if Subject::parse(subject).is_err() {
        return Err(AuthError::NotFound);
    }
    let mut tx = svc.store.begin().await?;
    tx.revoke_subject_sessions(&app.client_id, subject, svc.now())
        .await?;
    tx.commit().await?;
    Ok(())
}
