//! The cookies Postern sets: names, attributes and their CSRF tokens.
//!
//! Every cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`; on https it is also
//! `Secure` and carries the `__Host-` prefix, which browsers only accept
//! from a secure origin for the exact host.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use crate::AppState;

/// Binds a login request to the browser that asked for it (SPEC §3.1).
pub const BINDING: &str = "postern_binding";
/// The browser's signed-in accounts (SPEC §2, §3.3 account chooser): up to
/// [`MAX_ACCOUNTS`] session secrets joined by `.`, the current account
/// first. One secret is the single-account case, so the name and format of
/// a browser with one account are unchanged.
pub const SESSION: &str = "postern_session";
/// How many accounts one browser holds at once; signing in a sixth drops
/// the one used least recently.
pub const MAX_ACCOUNTS: usize = 5;
/// Which of this browser's sessions `/account` shows (a public session id,
/// set by `/account/callback`; it must also be one of [`SESSION`]'s).
pub const ACCOUNT: &str = "postern_account";
/// `state` and PKCE verifier of `/account`'s own sign-in, between the
/// redirect to `/authorize` and `/account/callback`.
pub const ACCOUNT_FLOW: &str = "postern_account_flow";
/// What the last form of `/account` did ("signed-out", or "revoked." and
/// the app's client id), shown once by the page it redirects to. A cookie,
/// not a query parameter, so a link cannot make the page claim something.
pub const NOTICE: &str = "postern_notice";
/// Where the account sign-in returns after `/account/callback` when it was
/// started by `/admin` (only `/admin` paths are honoured; default `/account`).
pub const RETURN_TO: &str = "postern_return";
/// Double-submit CSRF secret for forms.
pub const CSRF: &str = "postern_csrf";
/// A link token opened in another browser, kept out of the address bar
/// while its confirmation page is shown (SPEC §3.1). Scoped to
/// [`LINK_PATH`], so it is not `__Host-` but `__Secure-` prefixed on https.
pub const LINK: &str = "postern_link";
/// The only path the [`LINK`] cookie is sent to.
pub const LINK_PATH: &str = "/verify-email";

/// The cookie's name on this server (`__Host-` prefixed on https).
pub fn name(state: &AppState, base: &str) -> String {
    if state.config.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of one of our cookies, if the browser sent it.
pub fn get(state: &AppState, jar: &CookieJar, base: &str) -> Option<String> {
    jar.get(&name(state, base))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A cookie with our attributes; `max_age` in seconds (`None`: browser session).
pub fn build(state: &AppState, base: &str, value: String, max_age: Option<i64>) -> Cookie<'static> {
    let mut c = Cookie::new(name(state, base), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(state.config.secure_cookies());
    if let Some(age) = max_age {
        c.set_max_age(Duration::seconds(age));
    }
    c
}

/// The CSRF token for forms on this browser, creating the cookie if needed.
/// The form carries `HMAC(cookie)`: a cross-site page can neither read the
/// cookie nor compute the token, and `SameSite=Lax` keeps the cookie off
/// cross-site posts anyway.
pub fn csrf_token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let (jar, secret) = match get(state, &jar, CSRF) {
        Some(secret) => (jar, secret),
        None => {
            let secret = postern_core::crypto::random_token(32);
            (jar.add(build(state, CSRF, secret.clone(), None)), secret)
        }
    };
    let token = state.secrets.keyed_hash("csrf", secret.as_bytes());
    (jar, token)
}

/// Whether `token` is the CSRF token of this browser's cookie (constant time).
pub fn csrf_ok(state: &AppState, jar: &CookieJar, token: Option<&str>) -> bool {
    match (get(state, jar, CSRF), token) {
        (Some(secret), Some(token)) => {
            state
                .secrets
                .verify_keyed_hash("csrf", secret.as_bytes(), token)
        }
        _ => false,
    }
}

fn link_name(state: &AppState) -> String {
    if state.config.secure_cookies() {
        format!("__Secure-{LINK}")
    } else {
        LINK.to_owned()
    }
}

/// The link token this browser was sent to the confirmation page with.
pub fn link_token(state: &AppState, jar: &CookieJar) -> Option<String> {
    jar.get(&link_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The [`LINK`] cookie holding `token` for `max_age` seconds (at most the
/// link's remaining lifetime; zero removes it). `HttpOnly`, `SameSite=Lax`
/// and only sent to `/verify-email`.
pub fn link_cookie(state: &AppState, token: String, max_age: i64) -> Cookie<'static> {
    let mut c = Cookie::new(link_name(state), token);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path(LINK_PATH);
    c.set_secure(state.config.secure_cookies());
    c.set_max_age(Duration::seconds(max_age.max(0)));
    c
}

/// Whether `s` could be a secret Postern made (base64url, sane length).
fn token_shaped(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The session secrets of [`SESSION`], current first: at most
/// [`MAX_ACCOUNTS`], each well formed, no repeats. Whether each is live is
/// the database's answer (`oidc::browser_sessions`).
pub fn session_secrets(state: &AppState, jar: &CookieJar) -> Vec<String> {
    let Some(c) = jar.get(&name(state, SESSION)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for s in c.value().split('.').filter(|s| token_shaped(s)) {
        if out.len() == MAX_ACCOUNTS {
            break;
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// The [`SESSION`] cookie holding `secrets` (current first, at most
/// [`MAX_ACCOUNTS`]) for `max_age` seconds; none left removes it.
pub fn sessions_cookie(state: &AppState, secrets: &[String], max_age: i64) -> Cookie<'static> {
    let kept: Vec<&str> = secrets
        .iter()
        .take(MAX_ACCOUNTS)
        .map(String::as_str)
        .collect();
    if kept.is_empty() {
        build(state, SESSION, String::new(), Some(0))
    } else {
        build(state, SESSION, kept.join("."), Some(max_age))
    }
}
