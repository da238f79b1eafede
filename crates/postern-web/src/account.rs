//! SPEC §3.3 `/account`: a person's own page, signed in through Postern
//! itself. The page is the built-in public app [`ACCOUNT_CLIENT_ID`]: it
//! sends the browser through `/authorize` with PKCE like any app, and its
//! callback redeems the code in-process ([`crate::oidc::redeem_own_code`]).
//! What it shows and changes is the signed-in person's only: their
//! sessions, sign-in history and the apps they allowed. Handlers live in
//! `routes::account`.

use std::collections::HashMap;

use axum_extra::extract::cookie::CookieJar;
use postern_core::oauth::Scope;
use postern_store::{AccountQueries, Queries, Session, SessionQueries, UserGrant};

use crate::cookies;
use crate::error::Result;
use crate::oidc::{self, BrowserAccount};
use crate::AppState;

/// The built-in app behind `/account` (public, first-party, redirect
/// `{public_url}/account/callback`), registered at start-up.
pub const ACCOUNT_CLIENT_ID: &str = "postern-account";
/// How long the sign-in to `/account` may take (its `state` cookie).
pub const FLOW_TTL: i64 = 600;
/// How many sign-ins the history shows.
pub const HISTORY_LENGTH: i64 = 50;

/// The redirect URI of the account app.
pub fn callback_uri(state: &AppState) -> String {
    state.config.url("/account/callback")
}

/// The account `/account` shows: the session the callback established
/// (the [`cookies::ACCOUNT`] cookie), provided it is still one of this
/// browser's live accounts. `None` means "sign in first".
pub async fn viewer(state: &AppState, jar: &CookieJar) -> Result<Option<BrowserAccount>> {
    let Some(session_id) = cookies::get(state, jar, cookies::ACCOUNT) else {
        return Ok(None);
    };
    Ok(oidc::browser_accounts(state, jar)
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
pub async fn overview(state: &AppState, user_id: &str) -> Result<Overview> {
    let now = state.now();
    let mut conn = state.store.conn().await?;
    let sessions: Vec<Session> = conn
        .user_sessions(user_id)
        .await?
        .into_iter()
        .filter(|s| s.expires_at > now && s.last_seen_at + state.config.session_idle_ttl > now)
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
        if let Some(app) = conn.app(&client_id).await? {
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

/// "Sign out" of one of the person's sessions (and its refresh tokens).
/// Sessions of other people are not found: false.
pub async fn sign_out_session(state: &AppState, user_id: &str, session_id: &str) -> Result<bool> {
    let mut tx = state.store.begin().await?;
    let theirs = tx
        .session(session_id)
        .await?
        .is_some_and(|s| s.user_id == user_id);
    if !theirs {
        return Ok(false);
    }
    tx.revoke_session(session_id, state.now()).await?;
    tx.commit().await?;
    Ok(true)
}

/// "Sign out everywhere": every session and refresh token of the person
/// (SPEC §2).
pub async fn sign_out_everywhere(state: &AppState, user_id: &str) -> Result<()> {
    let mut tx = state.store.begin().await?;
    tx.revoke_user_sessions(user_id, state.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes an app's access back: forgets the grant (the next authorization
/// asks again) and revokes the refresh tokens the app holds for the person.
pub async fn revoke_app(state: &AppState, user_id: &str, client_id: &str) -> Result<()> {
    let mut tx = state.store.begin().await?;
    tx.delete_grant(user_id, client_id).await?;
    tx.revoke_app_refresh_tokens(user_id, client_id, state.now())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// "Delete my account": the user, their sessions, grants, codes, refresh
/// tokens, history and login requests, in one transaction. Nothing that
/// names them is logged.
pub async fn delete_account(state: &AppState, user_id: &str) -> Result<()> {
    let mut tx = state.store.begin().await?;
    tx.delete_user(user_id).await?;
    tx.commit().await?;
    tracing::info!("an account was deleted at its owner's request");
    Ok(())
}

/// The scopes of a grant, parsed.
pub fn grant_scope(g: &UserGrant) -> Scope {
    Scope::parse(Some(&g.scope))
}
