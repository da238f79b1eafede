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
/// The browser session (SPEC §2).
pub const SESSION: &str = "postern_session";
/// Double-submit CSRF secret for forms.
pub const CSRF: &str = "postern_csrf";

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
