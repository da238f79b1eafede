//! The OpenID Provider of SPEC §3.2: discovery, sessions and SSO at
//! `/authorize`, the token endpoint, userinfo, revocation, introspection
//! and RP-initiated logout. Handlers live in `routes::oidc`.

use std::net::IpAddr;

use postern_core::crypto::{constant_time_eq, random_id, random_token, sha256_b64, Secrets};
use postern_core::jose::Alg;
use postern_core::oauth::{pkce_matches, Scope};
use postern_core::{App, ClientId, SubjectType};
use postern_store::{
    AuthorizationCode, Defer as _, Queries, RefreshToken, Session, SessionQueries, Tx, User, Writes,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{AuthError, GrantError, Result};
use crate::response::AuthorizationResponse;
use crate::signin::purpose;
use crate::Services;

mod access;
mod authorize;
mod consent;
mod logout;
mod origins;
pub mod schema;
mod sessions;
mod token;

pub use access::*;
pub use authorize::*;
pub use consent::*;
pub use logout::*;
pub use origins::{Origins, ORIGINS_TTL};
pub use sessions::*;
pub use token::*;

/// ID and access tokens live 10 minutes (SPEC §2).
pub const TOKEN_TTL: i64 = 600;

/// Activity closer together than this does not rewrite `last_seen_at`.
pub(crate) const TOUCH_EVERY: i64 = 60;

/// JWT `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest JWT looked at; Postern's own are far shorter.
pub(crate) const MAX_JWT_LEN: usize = 8192;

/// OIDC Discovery 1.0 §3: the provider metadata, complete and truthful.
pub fn discovery(svc: &Services) -> Value {
    let iss = svc.settings.issuer();
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

/// The `sub` an app sees for a user: pairwise by default (an app cannot
/// correlate users with another app), the internal id when `public`.
pub fn subject(svc: &Services, app: &App, user_id: &str) -> String {
    subject_with(&svc.secrets, app, user_id)
}

/// [`subject`] with the secrets alone (inside a write function, which
/// cannot borrow the services).
pub(crate) fn subject_with(secrets: &Secrets, app: &App, user_id: &str) -> String {
    match app.settings.subject_type {
        SubjectType::Public => user_id.to_owned(),
        SubjectType::Pairwise => secrets.keyed_hash(
            "pairwise-subject",
            format!("{}\n{user_id}", app.client_id).as_bytes(),
        ),
    }
}

/// Mints a single-use authorization code (60 s) for a signed-in user and
/// returns the code to put in the redirect.
pub async fn mint_code(svc: &Services, tx: &mut Tx, grant: CodeGrant<'_>) -> Result<String> {
    let (code, row) = new_code(svc, grant);
    tx.insert_authorization_code(&row).await?;
    Ok(code)
}

/// A fresh code for `grant` and its row (the code itself is never stored).
pub(crate) fn new_code(svc: &Services, grant: CodeGrant<'_>) -> (String, AuthorizationCode) {
    let now = svc.now();
    let code = random_token(32);
    let row = AuthorizationCode {
        code_hash: svc.secrets.keyed_hash(purpose::AUTHZ_CODE, code.as_bytes()),
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
    };
    (code, row)
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
    svc: &Services,
    tx: &mut Tx,
    grant: CodeGrant<'_>,
) -> Result<Option<String>> {
    let held = tx
        .live_codes(grant.session_id, grant.client_id, svc.now())
        .await?;
    if held >= LIVE_CODES_PER_SESSION {
        tracing::debug!(client_id = %grant.client_id, "too many unredeemed codes for one session");
        return Ok(None);
    }
    mint_code(svc, tx, grant).await.map(Some)
}

/// The redirect an app gets when a session holds too many unredeemed codes
/// (RFC 6749 §4.1.2.1 `temporarily_unavailable`).
pub fn too_many_codes(
    svc: &Services,
    redirect_uri: &str,
    client_state: Option<&str>,
) -> AuthorizationResponse {
    AuthorizationResponse::error(
        redirect_uri,
        client_state,
        svc.settings.issuer(),
        "temporarily_unavailable",
        "Too many unused authorization codes for this session. Please try again in a minute.",
    )
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

/// Authenticates a client: confidential clients by one of their secrets
/// (constant-time), public clients by their id alone (`none`, PKCE then
/// protects the code). Every failure is the same 401 `invalid_client`.
pub async fn authenticate_client(svc: &Services, creds: &ClientCredentials) -> Result<App> {
    // A client id that cannot exist fails like an unknown one (and never
    // reaches SQL).
    let id = creds.client_id.as_deref().map(ClientId::parse);
    let id = id.and_then(Result::ok).ok_or(AuthError::ClientAuth)?;
    let app = svc.store.app(&id).await?.ok_or(AuthError::ClientAuth)?;
    if app.settings.public {
        return if creds.client_secret.is_none() {
            Ok(app)
        } else {
            Err(AuthError::ClientAuth)
        };
    }
    let secret = creds
        .client_secret
        .as_deref()
        .ok_or(AuthError::ClientAuth)?;
    let presented = sha256_b64(secret.as_bytes());
    let hashes = svc
        .store
        .conn()
        .await?
        .app_secret_hashes(&app.client_id, svc.now())
        .await?;
    // Compare with every stored hash, so timing does not say which matched.
    let ok = hashes.iter().fold(false, |ok, h| {
        constant_time_eq(presented.as_bytes(), h.as_bytes()) | ok
    });
    if ok {
        Ok(app)
    } else {
        Err(AuthError::ClientAuth)
    }
}

/// The origins of every app's registered redirect URIs: the only origins
/// browser apps may call the token, userinfo and revocation endpoints from
/// (SPEC §3.2 CORS).
pub async fn app_origins(svc: &Services) -> Result<std::collections::HashSet<String>> {
    let apps = svc.store.conn().await?.apps().await?;
    Ok(apps
        .iter()
        .flat_map(|a| a.settings.redirect_uris.iter())
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect())
}
