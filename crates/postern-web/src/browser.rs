//! The browser's side of sessions: which accounts its session cookie holds,
//! and the cookie that holds them. The rules (which sessions are live, which
//! one a new sign-in replaces) are the services'; this only reads and
//! writes the cookie.

use axum_extra::extract::cookie::{Cookie, CookieJar};
use postern_auth::oidc::{self, BrowserAccount};

use crate::error::Result;
use crate::{cookies, AppState};

/// The accounts signed in on this browser, current first (see
/// [`oidc::browser_accounts`]).
pub async fn accounts(state: &AppState, jar: &CookieJar) -> Result<Vec<BrowserAccount>> {
    let secrets = cookies::session_secrets(state, jar);
    Ok(oidc::browser_accounts(state, secrets).await?)
}

/// The session cookie holding exactly `accounts`, in this order.
pub fn accounts_cookie(state: &AppState, accounts: &[BrowserAccount]) -> Cookie<'static> {
    let secrets: Vec<String> = accounts.iter().map(|a| a.secret.clone()).collect();
    cookies::sessions_cookie(state, &secrets, state.settings.session_idle_ttl)
}

/// Adds a new sign-in's session to the browser's accounts as the current
/// one (see [`oidc::remember_session`]); past [`cookies::MAX_ACCOUNTS`] the
/// least recent goes.
pub async fn remember_session(state: &AppState, jar: CookieJar, secret: &str) -> Result<CookieJar> {
    let secrets = cookies::session_secrets(state, &jar);
    let kept = oidc::remember_session(state, secrets, secret).await?;
    let ttl = state.settings.session_idle_ttl;
    Ok(jar.add(cookies::sessions_cookie(state, &kept, ttl)))
}

/// The account `/account` shows: the session the account callback
/// established (the [`cookies::ACCOUNT`] cookie), if it is still one of this
/// browser's live accounts.
pub async fn viewer(state: &AppState, jar: &CookieJar) -> Result<Option<BrowserAccount>> {
    let session_id = cookies::get(state, jar, cookies::ACCOUNT);
    let secrets = cookies::session_secrets(state, jar);
    Ok(postern_auth::account::viewer(state, secrets, session_id.as_deref()).await?)
}
