//! SPEC §3.3 `/account`: a person's own page, signed in through Postern
//! itself. The page is the built-in public app [`ACCOUNT_CLIENT_ID`]: it
//! sends the browser through `/authorize` with PKCE like any app, and its
//! callback redeems the code in-process ([`crate::oidc::redeem_own_code`]).
//! What it shows and changes is the signed-in person's only: their
//! sessions, sign-in history and the apps they allowed. Handlers live in
//! `routes::account`.

use std::collections::HashMap;

use postern_core::i18n::{self, fill, Strings};
use postern_core::oauth::Scope;
use postern_store::{AccountQueries, Queries, Session, SessionQueries, UserGrant};

use postern_core::crypto::{constant_time_eq, random_token, sha256_b64};

use crate::error::{AuthError, Result};
use crate::geoip::GeoIp;
use crate::oidc::{self, BrowserAccount};
use crate::Services;

mod view;

pub use view::{notice, AccountView, AppView, EventView, SessionView};

/// The built-in app behind `/account` (public, first-party, redirect
/// `{public_url}/account/callback`), registered at start-up.
pub const ACCOUNT_CLIENT_ID: &str = "postern-account";
/// How long the sign-in to `/account` may take (its `state` cookie).
pub const FLOW_TTL: i64 = 600;
/// How many sign-ins the history shows.
pub const HISTORY_LENGTH: i64 = 50;

/// The redirect URI of the account app.
pub fn callback_uri(svc: &Services) -> String {
    svc.settings.url("/account/callback")
}

/// The account `/account` shows: the session the account callback
/// established (`session_id`, kept by the face), provided it is still one of
/// the browser's live accounts (`secrets`, its session cookie). `None`
/// means "sign in first".
pub async fn viewer(
    svc: &Services,
    secrets: Vec<String>,
    session_id: Option<&str>,
) -> Result<Option<BrowserAccount>> {
    let Some(session_id) = session_id else {
        return Ok(None);
    };
    Ok(oidc::browser_accounts(svc, secrets)
        .await?
        .into_iter()
        .find(|a| a.live.session.id == session_id))
}

/// Everything `/account` shows about a person.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Live sessions, most recently used first.
    pub sessions: Vec<Session>,
    /// Recent sign-ins, newest first, with the app names they were for.
    pub history: Vec<(postern_store::SignInEvent, Option<String>)>,
    /// Apps the person allowed.
    pub grants: Vec<UserGrant>,
    /// Names of the apps headless sessions belong to, by client id.
    pub app_names: HashMap<String, String>,
}

/// Reads what `/account` shows for `user_id`.
pub async fn overview(svc: &Services, user_id: &str) -> Result<Overview> {
    let now = svc.now();
    let mut conn = svc.store.conn().await?;
    let sessions: Vec<Session> = conn
        .user_sessions(user_id)
        .await?
        .into_iter()
        .filter(|s| s.expires_at > now && s.last_seen_at + svc.settings.session_idle_ttl > now)
        .collect();
    let events = conn.sign_in_events(user_id, HISTORY_LENGTH).await?;
    let mut app_names: HashMap<String, String> = HashMap::new();
    let wanted = events
        .iter()
        .map(|e| e.client_id.clone())
        .chain(sessions.iter().filter_map(|s| s.client_id.clone()));
    for client_id in wanted {
        if app_names.contains_key(&client_id) {
            continue;
        }
        if let Some(app) = conn.cached_app(&client_id).await? {
            app_names.insert(client_id, app.display_name().to_owned());
        }
    }
    let history = events
        .into_iter()
        .map(|e| {
            let name = app_names.get(&e.client_id).cloned();
            (e, name)
        })
        .collect();
    let grants = conn.user_grants(user_id).await?;
    Ok(Overview {
        sessions,
        history,
        grants,
        app_names,
    })
}

/// Where the account page's own sign-in lands: `/account`, or the
/// administration panel when it started the sign-in and asked to come back
/// (`return_to`, a path under `/admin`; nothing else, so it is no open
/// redirect).
pub fn back_after_sign_in(return_to: Option<String>) -> String {
    return_to
        .filter(|p| p == "/admin" || p.starts_with("/admin/"))
        .unwrap_or_else(|| "/account".to_owned())
}

/// What `/account` says of one live session, in the page's words; times
/// stay unix seconds for the page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLine {
    /// Public id (its sign-out form's `session_id`).
    pub id: String,
    /// "Firefox on Linux".
    pub browser: String,
    /// "through {app}" for a session an app holds through the headless API.
    pub through: Option<String>,
    /// "IP address 203.0.113.7", with "near Berlin, Germany" when the GeoIP
    /// database places it.
    pub ip: Option<String>,
    /// Last used.
    pub last_seen_at: i64,
    /// Began.
    pub created_at: i64,
    /// Whether it is the session of the browser asking.
    pub this_browser: bool,
}

/// What `/account` says of one sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// When, unix seconds.
    pub at: i64,
    /// The app's name ("Your account" for the account page's own, "a
    /// removed app" for one that is gone).
    pub app: String,
    /// "Email link", "Code", "Passkey", "Link from an admin"…
    pub method: &'static str,
    /// "Signed in" or "Refused".
    pub outcome: &'static str,
    /// "Firefox on Linux".
    pub browser: String,
}

impl Overview {
    /// The sessions and sign-ins as `/account` words them in `t`'s
    /// language, `this_session` marked as the asking browser's, each
    /// session's address placed by `geoip` when there is one.
    pub fn lines(
        &self,
        t: &Strings,
        this_session: &str,
        geoip: Option<&GeoIp>,
    ) -> (Vec<SessionLine>, Vec<EventLine>) {
        let a = i18n::account::strings(t.lang);
        let p = i18n::passkeys::strings(t.lang);
        let sessions = self
            .sessions
            .iter()
            .map(|s| SessionLine {
                id: s.id.clone(),
                browser: t.describe_browser(s.user_agent.as_deref()),
                through: s.client_id.as_ref().map(|c| {
                    let name = self.app_names.get(c).map_or(a.removed_app, |n| n);
                    fill(a.through_app, &[("app", name)])
                }),
                ip: s
                    .ip
                    .as_ref()
                    .map(|ip| match geoip.and_then(|g| g.place(ip.parse().ok()?)) {
                        Some(place) => fill(a.ip_address_place, &[("ip", ip), ("place", &place)]),
                        None => fill(a.ip_address, &[("ip", ip)]),
                    }),
                last_seen_at: s.last_seen_at,
                created_at: s.created_at,
                this_browser: s.id == this_session,
            })
            .collect();
        let history = self
            .history
            .iter()
            .map(|(e, name)| EventLine {
                at: e.at,
                app: if e.client_id == ACCOUNT_CLIENT_ID {
                    a.own_account_app.to_owned()
                } else {
                    name.clone().unwrap_or_else(|| a.removed_app.to_owned())
                },
                method: match e.method.as_str() {
                    "passkey" => p.method_passkey,
                    "link_passkey_lost" | "code_passkey_lost" => p.method_lost,
                    "code" => a.method_code,
                    "admin_link" => a.method_admin_link,
                    _ => a.method_link,
                },
                outcome: if e.outcome == "success" {
                    a.outcome_success
                } else {
                    a.outcome_failed
                },
                browser: t.describe_browser(e.user_agent.as_deref()),
            })
            .collect();
        (sessions, history)
    }
}

/// "Sign out" of one of the person's sessions (and its refresh tokens).
/// Sessions of other people are not found: false.
pub async fn sign_out_session(svc: &Services, user_id: &str, session_id: &str) -> Result<bool> {
    let mut tx = svc.store.begin().await?;
    let theirs = tx
        .session(session_id)
        .await?
        .is_some_and(|s| s.user_id == user_id);
    if !theirs {
        return Ok(false);
    }
    tx.revoke_session(session_id, svc.now()).await?;
    tx.commit().await?;
    Ok(true)
}

/// "Sign out everywhere": every session and refresh token of the person
/// (SPEC §2).
pub async fn sign_out_everywhere(svc: &Services, user_id: &str) -> Result<()> {
    let mut tx = svc.store.begin().await?;
    tx.revoke_user_sessions(user_id, svc.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes an app's access back: forgets the grant (the next authorization
/// asks again) and revokes the refresh tokens the app holds for the person.
pub async fn revoke_app(svc: &Services, user_id: &str, client_id: &str) -> Result<()> {
    let mut tx = svc.store.begin().await?;
    tx.delete_grant(user_id, client_id).await?;
    tx.revoke_app_refresh_tokens(user_id, client_id, svc.now())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// "Delete my account": the user, their sessions, grants, codes, refresh
/// tokens, history and login requests, in one transaction. Nothing that
/// names them is logged.
pub async fn delete_account(svc: &Services, user_id: &str) -> Result<()> {
    let mut tx = svc.store.begin().await?;
    tx.delete_user(user_id).await?;
    tx.commit().await?;
    tracing::info!("an account was deleted at its owner's request");
    Ok(())
}

/// The scopes of a grant, parsed.
pub fn grant_scope(g: &UserGrant) -> Scope {
    Scope::parse(Some(&g.scope))
}

/// The start of `/account`'s own sign-in: Postern's account page is an
/// OpenID client of Postern (authorization code + PKCE S256).
#[derive(Debug, Clone)]
pub struct OwnSignIn {
    /// `state` and the PKCE verifier, for the face to keep in the browser
    /// (a short-lived cookie) until the callback.
    pub flow_secret: String,
    /// Where to send the browser: this server's `/authorize`.
    pub authorize_url: String,
}

/// Starts `/account`'s sign-in through `/authorize` like any app.
pub fn start_own_sign_in(svc: &Services) -> OwnSignIn {
    let flow_state = random_token(32);
    let verifier = random_token(32);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", ACCOUNT_CLIENT_ID);
    q.append_pair("redirect_uri", &callback_uri(svc));
    q.append_pair("response_type", "code");
    q.append_pair("scope", "openid email");
    q.append_pair("state", &flow_state);
    q.append_pair("code_challenge", &sha256_b64(verifier.as_bytes()));
    q.append_pair("code_challenge_method", "S256");
    OwnSignIn {
        flow_secret: format!("{flow_state}.{verifier}"),
        authorize_url: svc.settings.url(&format!("/authorize?{}", q.finish())),
    }
}

/// The authorization response at `/account/callback` (OIDC Core
/// §3.1.2.5, RFC 9207).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct OwnCallback {
    /// The authorization code.
    pub code: Option<String>,
    /// Must be the one the sign-in sent.
    pub state: Option<String>,
    /// Must be this issuer.
    pub iss: Option<String>,
    /// Set when the authorization failed.
    pub error: Option<String>,
}

/// Finishes `/account`'s sign-in: `state` must match the browser's
/// `flow_secret`, the answer must be this issuer's, and the code is
/// redeemed in-process (client `postern-account`, its redirect URI, PKCE).
/// Returns the session `/account` shows.
pub async fn finish_own_sign_in(
    svc: &Services,
    answer: &OwnCallback,
    flow_secret: &str,
) -> Result<oidc::LiveSession> {
    let (expected, verifier) = flow_secret.split_once('.').unwrap_or_default();
    let state_ok = !expected.is_empty()
        && answer
            .state
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
    if !state_ok {
        return Err(AuthError::invalid(
            "The answer does not belong to a sign-in this browser started.",
        ));
    }
    if answer.error.is_some() {
        return Err(AuthError::invalid("The sign-in did not finish."));
    }
    if answer.iss.as_deref() != Some(svc.settings.issuer().as_str()) {
        return Err(AuthError::invalid(
            "The answer does not come from this server.",
        ));
    }
    let app = svc
        .store
        .app(ACCOUNT_CLIENT_ID)
        .await?
        .ok_or(AuthError::NotFound)?;
    let redirect_uri = callback_uri(svc);
    oidc::redeem_own_code(
        svc,
        &app,
        oidc::PresentedCode {
            code: answer.code.as_deref(),
            redirect_uri: Some(&redirect_uri),
            code_verifier: Some(verifier),
        },
    )
    .await
}
