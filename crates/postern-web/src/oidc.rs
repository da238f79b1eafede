//! The OpenID Provider of SPEC §3.2: discovery, sessions and SSO at
//! `/authorize`, the token endpoint, userinfo, revocation, introspection
//! and RP-initiated logout. Handlers live in `routes::oidc`.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use postern_core::crypto::{constant_time_eq, random_id, random_token, sha256_b64};
use postern_core::jose::Alg;
use postern_core::oauth::{pkce_matches, Scope};
use postern_core::{App, ClientId, SubjectType};
use postern_store::{
    AuthorizationCode, Queries, RefreshToken, Session, SessionQueries, StoreError, Tx, User,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{AppError, Result};
use crate::signin::purpose;
use crate::AppState;

/// ID and access tokens live 10 minutes (SPEC §2).
pub const TOKEN_TTL: i64 = 600;
/// Activity closer together than this does not rewrite `last_seen_at`.
const TOUCH_EVERY: i64 = 60;
/// JWT `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Longest JWT looked at; Postern's own are far shorter.
const MAX_JWT_LEN: usize = 8192;

/// OIDC Discovery 1.0 §3: the provider metadata, complete and truthful.
pub fn discovery(state: &AppState) -> Value {
    let iss = state.config.issuer();
    let url = |p: &str| format!("{iss}{p}");
    json!({
        "issuer": iss,
        "authorization_endpoint": url("/authorize"),
        "token_endpoint": url("/token"),
        "userinfo_endpoint": url("/userinfo"),
        "jwks_uri": url("/jwks.json"),
        "end_session_endpoint": url("/logout"),
        "revocation_endpoint": url("/revoke"),
        "introspection_endpoint": url("/introspect"),
        "scopes_supported": postern_core::oauth::KNOWN_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": ["RS256", "EdDSA", "ES256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid",
            "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": postern_core::locale::SUPPORTED,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}

// ---- sessions --------------------------------------------------------------

/// A live browser session and its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// Whether a browser session is live at `now`: not revoked, within the
/// absolute cap and the sliding inactivity limit.
pub fn browser_session_live(state: &AppState, s: &Session, now: i64) -> bool {
    s.revoked_at.is_none()
        && s.kind == "browser"
        && s.expires_at > now
        && s.last_seen_at + state.config.session_idle_ttl > now
}

/// The browser's session, if its cookie names one that is live: not
/// revoked, within the absolute cap and the sliding inactivity limit, and
/// its user not disabled. Records the activity (sliding).
pub async fn current_session(
    state: &AppState,
    secret: Option<&str>,
) -> Result<Option<LiveSession>> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    let Some(live) = resolve_session(state, secret).await? else {
        return Ok(None);
    };
    touch(state, &live.session).await?;
    Ok(Some(live))
}

/// The live session and user a cookie secret names, without recording
/// activity.
async fn resolve_session(state: &AppState, secret: &str) -> Result<Option<LiveSession>> {
    let now = state.now();
    let hash = state
        .secrets
        .keyed_hash(purpose::SESSION, secret.as_bytes());
    let mut conn = state.store.conn().await?;
    let Some(session) = conn.session_by_token(&hash).await? else {
        return Ok(None);
    };
    if !browser_session_live(state, &session, now) {
        return Ok(None);
    }
    let Some(user) = conn
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
    else {
        return Ok(None);
    };
    Ok(Some(LiveSession { session, user }))
}

/// Records that a session was used (sliding inactivity), at most once a
/// minute.
pub async fn touch(state: &AppState, s: &Session) -> Result<()> {
    let now = state.now();
    if now - s.last_seen_at >= TOUCH_EVERY {
        state.store.conn().await?.touch_session(&s.id, now).await?;
    }
    Ok(())
}

/// One of the accounts signed in on this browser.
#[derive(Debug, Clone)]
pub struct BrowserAccount {
    /// Its secret in the session cookie.
    pub secret: String,
    /// The live session and its user.
    pub live: LiveSession,
}

/// The accounts signed in on this browser, current first: every secret of
/// the session cookie whose session is live and whose user may sign in,
/// one per user (the most recent). Records no activity.
pub async fn browser_accounts(
    state: &AppState,
    jar: &axum_extra::extract::cookie::CookieJar,
) -> Result<Vec<BrowserAccount>> {
    let mut out: Vec<BrowserAccount> = Vec::new();
    for secret in crate::cookies::session_secrets(state, jar) {
        if let Some(live) = resolve_session(state, &secret).await? {
            if !out.iter().any(|a| a.live.user.id == live.user.id) {
                out.push(BrowserAccount { secret, live });
            }
        }
    }
    Ok(out)
}

/// The session cookie holding exactly `accounts`, in this order.
pub fn accounts_cookie(
    state: &AppState,
    accounts: &[BrowserAccount],
) -> axum_extra::extract::cookie::Cookie<'static> {
    let secrets: Vec<String> = accounts.iter().map(|a| a.secret.clone()).collect();
    crate::cookies::sessions_cookie(state, &secrets, state.config.session_idle_ttl)
}

/// Adds a new sign-in's session to the browser's accounts as the current
/// one. It replaces an earlier session of the same user in the cookie (that
/// session is not revoked: tokens an app holds from it keep working until
/// they end on their own or on "sign out everywhere"); ended sessions are
/// dropped, and past [`crate::cookies::MAX_ACCOUNTS`] the least recent goes.
pub async fn remember_session(
    state: &AppState,
    jar: axum_extra::extract::cookie::CookieJar,
    secret: &str,
) -> Result<axum_extra::extract::cookie::CookieJar> {
    let now = state.now();
    let hash = |s: &str| state.secrets.keyed_hash(purpose::SESSION, s.as_bytes());
    let mut conn = state.store.conn().await?;
    let user = conn
        .session_by_token(&hash(secret))
        .await?
        .map(|s| s.user_id);
    let mut kept = vec![secret.to_owned()];
    for old in crate::cookies::session_secrets(state, &jar) {
        if old == secret {
            continue;
        }
        let keep = conn.session_by_token(&hash(&old)).await?.is_some_and(|s| {
            browser_session_live(state, &s, now) && Some(&s.user_id) != user.as_ref()
        });
        if keep {
            kept.push(old);
        }
    }
    let ttl = state.config.session_idle_ttl;
    Ok(jar.add(crate::cookies::sessions_cookie(state, &kept, ttl)))
}

/// Whether a session may serve `app` from `ip`: within the app's shorter
/// session cap (SPEC §2) and, for apps that bind sessions to an IP range,
/// from the range the session was created in.
pub fn session_fits_app(state: &AppState, s: &Session, app: &App, ip: IpAddr) -> bool {
    let now = state.now();
    if app
        .settings
        .session_max_age
        .is_some_and(|cap| now - s.created_at > cap)
    {
        return false;
    }
    if app.settings.bind_ip_range {
        let created_from = s.ip.as_deref().and_then(|i| i.parse::<IpAddr>().ok());
        if !created_from.is_some_and(|c| postern_core::net::same_binding_range(c, ip)) {
            return false;
        }
    }
    true
}

/// The `sub` an app sees for a user: pairwise by default (an app cannot
/// correlate users with another app), the internal id when `public`.
pub fn subject(state: &AppState, app: &App, user_id: &str) -> String {
    match app.settings.subject_type {
        SubjectType::Public => user_id.to_owned(),
        SubjectType::Pairwise => state.secrets.keyed_hash(
            "pairwise-subject",
            format!("{}\n{user_id}", app.client_id).as_bytes(),
        ),
    }
}

/// Mints a single-use authorization code (60 s) for a signed-in user and
/// returns the code to put in the redirect.
pub async fn mint_code(state: &AppState, tx: &mut Tx, grant: CodeGrant<'_>) -> Result<String> {
    let now = state.now();
    let code = random_token(32);
    tx.insert_authorization_code(&AuthorizationCode {
        code_hash: state
            .secrets
            .keyed_hash(purpose::AUTHZ_CODE, code.as_bytes()),
        client_id: grant.client_id.to_owned(),
        user_id: grant.user_id.to_owned(),
        session_id: Some(grant.session_id.to_owned()),
        redirect_uri: grant.redirect_uri.to_owned(),
        code_challenge: grant.code_challenge.map(str::to_owned),
        nonce: grant.nonce.map(str::to_owned),
        scope: grant.scope.to_owned(),
        amr: grant.amr.to_owned(),
        auth_time: grant.auth_time,
        created_at: now,
        expires_at: now + crate::signin::AUTHORIZATION_CODE_TTL,
        consumed_at: None,
    })
    .await?;
    Ok(code)
}

/// Unredeemed codes one browser session may hold for one app at a time.
/// Codes live 60 s and an app redeems its code at once, so only a loop or
/// a flood reaches this; past it single sign-on answers
/// `temporarily_unavailable` and stores nothing.
pub const LIVE_CODES_PER_SESSION: i64 = 10;

/// Mints a code for a live session that is already signed in (single
/// sign-on, consent), unless the session holds [`LIVE_CODES_PER_SESSION`]
/// unredeemed codes for this app: then `None`, and nothing is stored.
pub async fn mint_sso_code(
    state: &AppState,
    tx: &mut Tx,
    grant: CodeGrant<'_>,
) -> Result<Option<String>> {
    let held = tx
        .live_codes(grant.session_id, grant.client_id, state.now())
        .await?;
    if held >= LIVE_CODES_PER_SESSION {
        tracing::debug!(client_id = %grant.client_id, "too many unredeemed codes for one session");
        return Ok(None);
    }
    mint_code(state, tx, grant).await.map(Some)
}

/// The redirect an app gets when a session holds too many unredeemed codes
/// (RFC 6749 §4.1.2.1 `temporarily_unavailable`).
pub fn too_many_codes(state: &AppState, redirect_uri: &str, client_state: Option<&str>) -> String {
    crate::signin::authorization_response(
        state,
        redirect_uri,
        client_state,
        &[
            ("error", "temporarily_unavailable"),
            (
                "error_description",
                "Too many unused authorization codes for this session. Please try again in a minute.",
            ),
        ],
    )
}

// ---- consent for a signed-in person ----------------------------------------

/// Context of the sealed consent request (AES-GCM associated data).
const PENDING_CONSENT: &str = "pending-consent";

/// An authorization request waiting on the consent screen of a person who
/// is already signed in. Nothing is stored for it: the consent form carries
/// it sealed (AES-256-GCM under the master key, so it can be neither read
/// nor changed), bound to the browser session it was shown to and valid for
/// [`crate::signin::CONSENT_WINDOW`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConsent {
    /// The app.
    pub client_id: String,
    /// Its exact, registered redirect URI.
    pub redirect_uri: String,
    /// Requested scope.
    pub scope: String,
    /// The app's `state`.
    pub state: Option<String>,
    /// The app's `nonce`.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// The only session that may answer.
    pub session_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl PendingConsent {
    /// The hidden form field.
    pub fn seal(&self, state: &AppState) -> String {
        let json = serde_json::to_vec(self).expect("a pending consent serializes");
        state.secrets.encrypt(PENDING_CONSENT, &json)
    }

    /// The request a form carried, if Postern sealed it and it has not expired.
    fn open(state: &AppState, sealed: &str) -> Option<Self> {
        if sealed.len() > 16_384 {
            return None;
        }
        let json = state.secrets.decrypt(PENDING_CONSENT, sealed).ok()?;
        serde_json::from_slice::<Self>(&json)
            .ok()
            .filter(|p| p.expires_at > state.now())
    }
}

/// Answers the consent screen shown at `/authorize` to someone already
/// signed in. Only a browser holding the session the screen was shown to
/// may answer, within the window. Allow adds the scopes to what the person
/// granted the app before and mints a code (subject to
/// [`LIVE_CODES_PER_SESSION`]); Deny returns `access_denied`. Returns the
/// redirect to the app.
pub async fn decide_pending_consent(
    state: &AppState,
    sealed: &str,
    session_secrets: &[String],
    decision: crate::signin::Decision,
) -> Result<String> {
    use crate::error::TokenProblem;
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    let pending = PendingConsent::open(state, sealed).ok_or_else(unknown)?;
    let mut answering = None;
    for secret in session_secrets {
        if let Some(live) = resolve_session(state, secret).await? {
            if live.session.id == pending.session_id {
                answering = Some(live);
                break;
            }
        }
    }
    let live = answering.ok_or_else(unknown)?;
    let app = state
        .store
        .conn()
        .await?
        .app(&pending.client_id)
        .await?
        .filter(|a| a.has_redirect_uri(&pending.redirect_uri))
        .ok_or_else(unknown)?;
    let respond = |params: &[(&str, &str)]| {
        crate::signin::authorization_response(
            state,
            &pending.redirect_uri,
            pending.state.as_deref(),
            params,
        )
    };
    if decision == crate::signin::Decision::Deny {
        return Ok(respond(&[
            ("error", "access_denied"),
            ("error_description", "The user denied access."),
        ]));
    }
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let code = mint_sso_code(
        state,
        &mut tx,
        CodeGrant {
            client_id: &app.client_id,
            user_id: &live.user.id,
            session_id: &live.session.id,
            redirect_uri: &pending.redirect_uri,
            code_challenge: pending.code_challenge.as_deref(),
            nonce: pending.nonce.as_deref(),
            scope: &pending.scope,
            amr: &live.session.amr,
            auth_time: live.session.auth_time,
        },
    )
    .await?;
    let Some(code) = code else {
        return Ok(too_many_codes(
            state,
            &pending.redirect_uri,
            pending.state.as_deref(),
        ));
    };
    // Grants accumulate: allowing `offline_access` today keeps the `email`
    // allowed last week.
    let before = tx
        .grant(&live.user.id, &app.client_id)
        .await?
        .unwrap_or_default();
    let scope = Scope::parse(Some(&format!("{before} {}", pending.scope)));
    tx.upsert_grant(&live.user.id, &app.client_id, &scope.to_string(), now)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(respond(&[("code", &code)]))
}

/// What an authorization code is bound to (OIDC Core §3.1.3.2).
#[derive(Debug, Clone, Copy)]
pub struct CodeGrant<'a> {
    /// App.
    pub client_id: &'a str,
    /// User.
    pub user_id: &'a str,
    /// Browser session.
    pub session_id: &'a str,
    /// Exact redirect URI.
    pub redirect_uri: &'a str,
    /// PKCE challenge.
    pub code_challenge: Option<&'a str>,
    /// Nonce for the ID token.
    pub nonce: Option<&'a str>,
    /// Granted scope.
    pub scope: &'a str,
    /// `email` or `otp`.
    pub amr: &'a str,
    /// When the person authenticated.
    pub auth_time: i64,
}

// ---- client authentication -------------------------------------------------

/// Credentials a client presented (RFC 6749 §2.3.1).
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// From Basic or the form.
    pub client_id: Option<String>,
    /// From Basic or the form.
    pub client_secret: Option<String>,
    /// Whether they came in an `Authorization: Basic` header.
    pub basic: bool,
}

fn form_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// Reads client credentials from `Authorization: Basic` (each part
/// form-urlencoded, RFC 6749 §2.3.1) or the form body; both at once is an
/// error (RFC 6749 §2.3).
pub fn client_credentials(
    authorization: Option<&str>,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials> {
    if let Some(h) = authorization {
        // RFC 7235 §2.1: the scheme is case-insensitive.
        let Some(b64) = h
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("basic "))
            .map(|_| &h[6..])
        else {
            return Err(AppError::ClientAuth);
        };
        let raw = STANDARD
            .decode(b64.trim())
            .map_err(|_| AppError::ClientAuth)?;
        let raw = String::from_utf8(raw).map_err(|_| AppError::ClientAuth)?;
        let (id, secret) = raw.split_once(':').ok_or(AppError::ClientAuth)?;
        if form_secret.is_some() {
            return Err(AppError::InvalidRequest(
                "Use one client authentication method, not two.".into(),
            ));
        }
        let id = form_decode(id).ok_or(AppError::ClientAuth)?;
        if form_id.is_some_and(|f| f != id) {
            return Err(AppError::ClientAuth);
        }
        return Ok(ClientCredentials {
            client_id: Some(id),
            client_secret: form_decode(secret),
            basic: true,
        });
    }
    Ok(ClientCredentials {
        client_id: form_id.map(str::to_owned),
        client_secret: form_secret.map(str::to_owned),
        basic: false,
    })
}

/// Authenticates a client: confidential clients by one of their secrets
/// (constant-time), public clients by their id alone (`none`, PKCE then
/// protects the code). Every failure is the same 401 `invalid_client`.
pub async fn authenticate_client(state: &AppState, creds: &ClientCredentials) -> Result<App> {
    // A client id that cannot exist fails like an unknown one (and never
    // reaches SQL).
    let id = creds.client_id.as_deref().map(ClientId::parse);
    let id = id.and_then(Result::ok).ok_or(AppError::ClientAuth)?;
    let mut conn = state.store.conn().await?;
    let app = conn.app(&id).await?.ok_or(AppError::ClientAuth)?;
    if app.settings.public {
        return if creds.client_secret.is_none() {
            Ok(app)
        } else {
            Err(AppError::ClientAuth)
        };
    }
    let secret = creds.client_secret.as_deref().ok_or(AppError::ClientAuth)?;
    let presented = sha256_b64(secret.as_bytes());
    let hashes = conn.app_secret_hashes(&app.client_id, state.now()).await?;
    // Compare with every stored hash, so timing does not say which matched.
    let ok = hashes.iter().fold(false, |ok, h| {
        constant_time_eq(presented.as_bytes(), h.as_bytes()) | ok
    });
    if ok {
        Ok(app)
    } else {
        Err(AppError::ClientAuth)
    }
}

// ---- the token endpoint ----------------------------------------------------

/// The `/token` form (RFC 6749 §4.1.3, §6).
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// Must equal the one of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// For the refresh grant.
    pub refresh_token: Option<String>,
    /// For the refresh grant: at most the original scope.
    pub scope: Option<String>,
    /// `client_secret_post` / `none`.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// JWT, `typ: at+jwt`, EdDSA.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// The ID token.
    pub id_token: String,
    /// With `offline_access`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope.
    pub scope: String,
}

fn invalid_grant(msg: &str) -> AppError {
    AppError::InvalidGrant(msg.to_owned())
}

/// `/token`: exchanges a code or a refresh token for tokens.
pub async fn token(state: &AppState, app: &App, req: &TokenRequest) -> Result<TokenResponse> {
    match req.grant_type.as_deref() {
        Some("authorization_code") => exchange_code(state, app, req).await,
        Some("refresh_token") => refresh(state, app, req).await,
        Some(_) => Err(AppError::UnsupportedGrantType),
        None => Err(AppError::InvalidRequest("grant_type is required.".into())),
    }
}

/// An authorization code as a client presents it (RFC 6749 §4.1.3).
#[derive(Debug, Clone, Copy)]
pub struct PresentedCode<'a> {
    /// The code.
    pub code: Option<&'a str>,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<&'a str>,
    /// PKCE verifier (RFC 7636 §4.5).
    pub code_verifier: Option<&'a str>,
}

/// Consumes an authorization code for `app` and checks what it is bound to:
/// the client, the exact redirect URI and the PKCE verifier (RFC 6749
/// §4.1.3, RFC 7636 §4.6, no downgrade per RFC 9700 §4.8.2). A code used
/// twice by its own client revokes what it issued. Returns the open transaction, the code's
/// hash and what the code grants.
async fn take_code(
    state: &AppState,
    app: &App,
    req: PresentedCode<'_>,
) -> Result<(Tx, String, AuthorizationCode)> {
    let code = req
        .code
        .filter(|c| !c.is_empty() && c.len() <= 100)
        .ok_or_else(|| AppError::InvalidRequest("code is required.".into()))?;
    let now = state.now();
    let hash = state
        .secrets
        .keyed_hash(purpose::AUTHZ_CODE, code.as_bytes());
    let mut tx = state.store.begin().await?;
    let Some(grant) = tx.consume_authorization_code(&hash, now).await? else {
        // RFC 6749 §4.1.2: a code used twice by its client revokes what it
        // issued. The session it came from ends too, which ends its access
        // tokens at userinfo and introspection. Another client's replay
        // revokes nothing: anyone who saw a used code could otherwise sign
        // its owner out.
        if let Some((session_id, family)) = tx.code_issued(&hash, &app.client_id).await? {
            if let Some(f) = family {
                tx.revoke_refresh_family(&f, now).await?;
            }
            if let Some(s) = session_id {
                tx.revoke_session(&s, now).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            tracing::warn!(client_id = %app.client_id, "authorization code replayed; its tokens were revoked");
        }
        return Err(invalid_grant(
            "The authorization code is invalid, expired or already used.",
        ));
    };
    if grant.client_id != app.client_id {
        return Err(invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if req.redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request.",
        ));
    }
    match (&grant.code_challenge, req.code_verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
        (Some(_), _) => return Err(invalid_grant("The PKCE code_verifier is missing or wrong.")),
        // RFC 9700 §4.8.2: no downgrade.
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent for a code issued without PKCE.",
            ))
        }
        (None, None) if app.settings.public => {
            return Err(invalid_grant("Public clients must use PKCE."))
        }
        (None, None) => {}
    }
    Ok((tx, hash, grant))
}

/// Redeems a code issued to Postern's own account page (`app`, the built-in
/// `postern-account`) without an HTTP round trip to itself: the same checks
/// as the token endpoint, then the live browser session the code came from.
pub async fn redeem_own_code(
    state: &AppState,
    app: &App,
    req: PresentedCode<'_>,
) -> Result<LiveSession> {
    let (mut tx, _, grant) = take_code(state, app, req).await?;
    let now = state.now();
    let session = tx
        .session(grant.session_id.as_deref().unwrap_or_default())
        .await?
        .filter(|s| browser_session_live(state, s, now))
        .ok_or_else(|| invalid_grant("The session behind this code has ended."))?;
    let user = tx
        .user(&grant.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| invalid_grant("The user is not available."))?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(LiveSession { session, user })
}

async fn exchange_code(state: &AppState, app: &App, req: &TokenRequest) -> Result<TokenResponse> {
    let presented = PresentedCode {
        code: req.code.as_deref(),
        redirect_uri: req.redirect_uri.as_deref(),
        code_verifier: req.code_verifier.as_deref(),
    };
    let (mut tx, hash, grant) = take_code(state, app, presented).await?;
    let now = state.now();
    let session_id = grant.session_id.clone().unwrap_or_default();
    let session = tx
        .session(&session_id)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .ok_or_else(|| invalid_grant("The session behind this code has ended."))?;
    let user = tx
        .user(&grant.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| invalid_grant("The user is not available."))?;
    let scope = Scope::parse(Some(&grant.scope));
    let family_id = random_id();
    let refresh_token = if scope.contains("offline_access") {
        tx.set_code_family(&hash, &family_id).await?;
        Some(new_refresh_token(state, &mut tx, &family_id, &session, app, &user.id, &scope).await?)
    } else {
        None
    };
    tx.commit().await.map_err(StoreError::from)?;
    let claims = IdentityClaims {
        app,
        user: &user,
        session: &session,
        scope: &scope,
        nonce: grant.nonce.as_deref(),
        amr: &grant.amr,
        auth_time: grant.auth_time,
    };
    issue_tokens(state, claims, refresh_token).await
}

/// Issues an opaque refresh token (`prt_` + 256 random bits, stored as a
/// keyed hash) in `family_id` for a session; used by `/token` and the
/// headless API.
pub(crate) async fn new_refresh_token(
    state: &AppState,
    tx: &mut Tx,
    family_id: &str,
    session: &Session,
    app: &App,
    user_id: &str,
    scope: &Scope,
) -> Result<String> {
    let token = format!("prt_{}", random_token(32));
    tx.insert_refresh_token(&RefreshToken {
        token_hash: state.secrets.keyed_hash(purpose::REFRESH, token.as_bytes()),
        family_id: family_id.to_owned(),
        session_id: session.id.clone(),
        client_id: app.client_id.clone(),
        user_id: user_id.to_owned(),
        scope: scope.to_string(),
        created_at: state.now(),
        used_at: None,
        revoked_at: None,
    })
    .await?;
    Ok(token)
}

async fn refresh(state: &AppState, app: &App, req: &TokenRequest) -> Result<TokenResponse> {
    let presented = req
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or_else(|| AppError::InvalidRequest("refresh_token is required.".into()))?;
    let now = state.now();
    let hash = state
        .secrets
        .keyed_hash(purpose::REFRESH, presented.as_bytes());
    let mut tx = state.store.begin().await?;
    let Some(old) = tx.use_refresh_token(&hash, now).await? else {
        // A used token presented again: someone holds a copy. Revoke the family.
        if let Some(t) = tx.refresh_token(&hash).await? {
            if t.client_id == app.client_id && t.revoked_at.is_none() {
                tx.revoke_refresh_family(&t.family_id, now).await?;
                tx.commit().await.map_err(StoreError::from)?;
                tracing::warn!(client_id = %app.client_id, "refresh token reused; its family was revoked");
            }
        }
        return Err(invalid_grant(
            "The refresh token is invalid, expired or already used.",
        ));
    };
    if old.client_id != app.client_id {
        return Err(invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    let session = tx
        .session(&old.session_id)
        .await?
        .filter(|s| {
            s.revoked_at.is_none()
                && s.expires_at > now
                && s.last_seen_at + state.config.session_idle_ttl > now
        })
        .ok_or_else(|| invalid_grant("The session has ended."))?;
    if !session_fits_app_at(&session, app, now) {
        return Err(invalid_grant("The session is older than this app allows."));
    }
    let user = tx
        .user(&old.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| invalid_grant("The user is not available."))?;
    let granted = Scope::parse(Some(&old.scope));
    let scope = match req.scope.as_deref() {
        Some(asked) => {
            let asked = Scope::parse(Some(asked));
            if !asked.is_subset_of(&granted) {
                return Err(AppError::InvalidScope);
            }
            asked
        }
        None => granted.clone(),
    };
    tx.touch_session(&session.id, now).await?;
    let next = new_refresh_token(
        state,
        &mut tx,
        &old.family_id,
        &session,
        app,
        &user.id,
        &granted,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let claims = IdentityClaims {
        app,
        user: &user,
        session: &session,
        scope: &scope,
        nonce: None,
        amr: &session.amr,
        auth_time: session.auth_time,
    };
    issue_tokens(state, claims, Some(next)).await
}

fn session_fits_app_at(s: &Session, app: &App, now: i64) -> bool {
    app.settings
        .session_max_age
        .is_none_or(|cap| now - s.created_at <= cap)
}

struct IdentityClaims<'a> {
    app: &'a App,
    user: &'a User,
    session: &'a Session,
    scope: &'a Scope,
    nonce: Option<&'a str>,
    amr: &'a str,
    auth_time: i64,
}

/// Claims of Postern's access tokens (RFC 9068 §2.2). Anyone holding one
/// can read them, so they carry no personal data unless the app opted in
/// with `token_email` (SPEC §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Pairwise subject.
    pub sub: String,
    /// The client (this token is for Postern's userinfo and the app).
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Session id.
    pub sid: String,
    /// How the person signed in: `email` (link) or `otp` (code).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The address, only for apps with `token_email` and the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

async fn issue_tokens(
    state: &AppState,
    c: IdentityClaims<'_>,
    refresh_token: Option<String>,
) -> Result<TokenResponse> {
    let now = state.now();
    let iss = state.config.issuer();
    let sub = subject(state, c.app, &c.user.id);
    let mut id = json!({
        "iss": iss,
        "sub": sub,
        "aud": c.app.client_id,
        "exp": now + TOKEN_TTL,
        "iat": now,
        "auth_time": c.auth_time,
        "amr": [c.amr],
        "sid": c.session.id,
        "azp": c.app.client_id,
    });
    if let Some(n) = c.nonce {
        id["nonce"] = json!(n);
    }
    if c.scope.contains("email") {
        id["email"] = json!(c.user.email);
        id["email_verified"] = json!(true);
    }
    let access = AccessClaims {
        iss: iss.clone(),
        sub,
        aud: c.app.client_id.clone(),
        exp: now + TOKEN_TTL,
        iat: now,
        jti: random_id(),
        client_id: c.app.client_id.clone(),
        scope: c.scope.to_string(),
        sid: c.session.id.clone(),
        amr: vec![c.amr.to_owned()],
        // SPEC §2: private unless the app asked for it, and never beyond
        // what the person granted.
        email: (c.app.settings.token_email && c.scope.contains("email"))
            .then(|| c.user.email.clone()),
    };
    let id_alg = Alg::from(c.app.settings.id_token_alg);
    let id_token = state
        .keys
        .sign(id_alg, "JWT", id)
        .await
        .map_err(AppError::internal)?;
    let access_token = state
        .keys
        .sign(Alg::EdDSA, ACCESS_TOKEN_TYP, access)
        .await
        .map_err(AppError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: TOKEN_TTL,
        id_token,
        refresh_token,
        scope: c.scope.to_string(),
    })
}

// ---- userinfo, introspection, revocation -----------------------------------

/// Verifies an access token and that its session is still live (online
/// check: sign-out is seen at once) and that it was not revoked at
/// `/revoke`. Returns its claims.
pub async fn verify_access_token(state: &AppState, token: &str) -> Result<AccessClaims> {
    Ok(verify_access_token_session(state, token).await?.0)
}

/// The signature and claims of an access token (RFC 9068 §4), without
/// asking the database.
fn access_token_claims(state: &AppState, token: &str, now: i64) -> Result<AccessClaims> {
    if token.len() > MAX_JWT_LEN {
        return Err(AppError::InvalidBearer);
    }
    let check = postern_core::jose::Check {
        issuer: &state.config.issuer(),
        audience: None,
        now,
        leeway: 0,
    };
    state
        .keys
        .keys()
        .verify(token, &[Alg::EdDSA], Some(ACCESS_TOKEN_TYP), &check)
        .map_err(|_| AppError::InvalidBearer)
}

/// [`verify_access_token`], also returning the live session: one query for
/// the session and the denylist together.
async fn verify_access_token_session(
    state: &AppState,
    token: &str,
) -> Result<(AccessClaims, Session)> {
    let now = state.now();
    let claims = access_token_claims(state, token, now)?;
    let session = state
        .store
        .conn()
        .await?
        .access_token_session(&claims.sid, &claims.jti)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .ok_or(AppError::InvalidBearer)?;
    Ok((claims, session))
}

/// OIDC Core §5.3: the claims of the access token's user.
pub async fn userinfo(state: &AppState, token: &str) -> Result<Value> {
    let (claims, session) = verify_access_token_session(state, token).await?;
    let user = state
        .store
        .conn()
        .await?
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or(AppError::InvalidBearer)?;
    let mut out = json!({ "sub": claims.sub });
    if Scope::parse(Some(&claims.scope)).contains("email") {
        out["email"] = json!(user.email);
        out["email_verified"] = json!(true);
    }
    Ok(out)
}

/// RFC 7662: what a token is, for the client it was issued to.
pub async fn introspect(state: &AppState, app: &App, token: &str) -> Result<Value> {
    let inactive = json!({ "active": false });
    if token.starts_with("prt_") {
        let hash = state.secrets.keyed_hash(purpose::REFRESH, token.as_bytes());
        let mut conn = state.store.conn().await?;
        let Some(t) = conn.refresh_token(&hash).await? else {
            return Ok(inactive);
        };
        let now = state.now();
        let session = conn.session(&t.session_id).await?;
        let active = t.client_id == app.client_id
            && t.used_at.is_none()
            && t.revoked_at.is_none()
            && session.as_ref().is_some_and(|s| {
                s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.last_seen_at + state.config.session_idle_ttl > now
            });
        if !active {
            return Ok(inactive);
        }
        let s = session.expect("checked above");
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": t.client_id,
            "scope": t.scope,
            "sub": subject(state, app, &t.user_id),
            "iss": state.config.issuer(),
            "iat": t.created_at,
            "exp": (s.last_seen_at + state.config.session_idle_ttl).min(s.expires_at),
            "sid": s.id,
        }));
    }
    match verify_access_token(state, token).await {
        Ok(c) if c.client_id == app.client_id => Ok(json!({
            "active": true,
            "token_type": "access_token",
            "client_id": c.client_id,
            "scope": c.scope,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
            "sid": c.sid,
        })),
        Ok(_) | Err(AppError::InvalidBearer) => Ok(inactive),
        Err(e) => Err(e),
    }
}

/// RFC 7009: revokes a refresh token and its whole family, or an access
/// token: its `jti` goes on a denylist in the database (every instance sees
/// it) until the token's `exp`, so `/userinfo` and `/introspect` refuse it
/// at once; its refresh tokens and session are untouched. Unknown, invalid
/// and expired tokens and tokens of other clients are ignored (the answer
/// is still 200, RFC 7009 §2.2).
pub async fn revoke(state: &AppState, app: &App, token: &str) -> Result<()> {
    let now = state.now();
    if !token.starts_with("prt_") {
        let Ok(claims) = access_token_claims(state, token, now) else {
            return Ok(());
        };
        if claims.client_id != app.client_id {
            return Ok(());
        }
        let mut tx = state.store.begin().await?;
        tx.revoke_access_token(&claims.jti, claims.exp, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(());
    }
    if token.len() > 200 {
        return Ok(());
    }
    let hash = state.secrets.keyed_hash(purpose::REFRESH, token.as_bytes());
    let mut tx = state.store.begin().await?;
    if let Some(t) = tx
        .refresh_token(&hash)
        .await?
        .filter(|t| t.client_id == app.client_id)
    {
        tx.revoke_refresh_family(&t.family_id, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// What `/logout` needs from an `id_token_hint`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    /// The client it was issued to.
    pub aud: String,
    /// The user, as that client sees them.
    pub sub: Option<String>,
    /// The session it was issued in.
    pub sid: Option<String>,
}

/// Verifies an ID token Postern issued, accepting expired ones
/// (RP-Initiated Logout 1.0 §2: the hint may have expired).
pub async fn verify_id_token_hint(state: &AppState, token: &str) -> Result<IdTokenHint> {
    if token.len() > 8192 {
        return Err(AppError::InvalidRequest(
            "id_token_hint is too long.".into(),
        ));
    }
    let check = postern_core::jose::Check {
        issuer: &state.config.issuer(),
        audience: None,
        now: state.now(),
        // Expired hints are fine: logout only needs to know who issued it.
        leeway: 10 * 365 * 86_400,
    };
    state
        .keys
        .keys()
        .verify::<IdTokenHint>(token, &Alg::ALL, Some("JWT"), &check)
        .map_err(|_| AppError::InvalidRequest("id_token_hint is not valid.".into()))
}
