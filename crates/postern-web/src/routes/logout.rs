//! RP-Initiated Logout 1.0: `/logout`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use postern_auth::oidc::{self, BrowserAccount, LogoutInput, LogoutOutcome, LogoutRequest};

use crate::error::{AppError, Result};
use crate::extract::{accept_language, AppForm, AppQuery};
use crate::i18n;
use crate::pages::{self, filters, Brand, SignedOutPage};
use crate::{browser, cookies, AppState};

/// `/logout` without a valid `id_token_hint` for this browser's account:
/// "Sign out of Postern?" (RP-Initiated Logout 1.0 §2, §6).
#[derive(askama::Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage {
    /// The page's language.
    pub t: &'static i18n::Strings,
    /// The account pages' words in that language.
    pub a: &'static i18n::account::AccountStrings,
    /// No app.
    pub brand: Brand,
    /// The addresses that will be signed out.
    pub accounts: Vec<String>,
    /// The logout request, posted back with the answer.
    pub hidden: Vec<(&'static str, String)>,
    /// CSRF token for the form.
    pub csrf_token: String,
}

/// `GET /logout`.
pub async fn logout_get(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppQuery(p): AppQuery<LogoutInput>,
) -> Result<Response> {
    logout(state, jar, &headers, p, false).await
}

/// `POST /logout`.
pub async fn logout_post(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppForm(p): AppForm<LogoutInput>,
) -> Result<Response> {
    logout(state, jar, &headers, p, true).await
}

/// RP-Initiated Logout 1.0 (the rules are [`oidc::logout`]'s): signs out
/// this browser's accounts the request names, or asks first; then back to
/// a registered `post_logout_redirect_uri`, or "signed out".
async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: &HeaderMap,
    p: LogoutInput,
    posted: bool,
) -> Result<Response> {
    let req = oidc::logout_request(&state, &p).await?;
    let accounts = browser::accounts(&state, &jar).await?;
    let confirmed =
        posted && p.confirm.is_some() && cookies::csrf_ok(&state, &jar, p.csrf_token.as_deref());
    match oidc::logout(&state, &req, &accounts, confirmed).await? {
        LogoutOutcome::Confirm => Ok(confirm(&state, jar, headers, &p, &req, &accounts)),
        LogoutOutcome::SignedOut(ended) => {
            let remaining: Vec<BrowserAccount> = (0..accounts.len())
                .filter(|i| !ended.contains(i))
                .map(|i| accounts[i].clone())
                .collect();
            let mut jar = jar.add(browser::accounts_cookie(&state, &remaining));
            if remaining.is_empty() {
                jar = jar.add(cookies::build(
                    &state,
                    cookies::ACCOUNT,
                    String::new(),
                    Some(0),
                ));
            }
            signed_out(jar, headers, &p, req.redirect)
        }
    }
}

/// "Sign out of Postern?", with the request posted back.
fn confirm(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    p: &LogoutInput,
    req: &LogoutRequest,
    accounts: &[BrowserAccount],
) -> Response {
    let t = i18n::negotiate(
        None,
        accept_language(headers).as_deref(),
        req.app
            .as_ref()
            .map_or("en", |a| a.settings.locale.as_str()),
    );
    let mut hidden: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in [
        ("id_token_hint", &p.id_token_hint),
        ("client_id", &req.client_id),
        ("post_logout_redirect_uri", &req.redirect),
        ("state", &p.state),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            hidden.push((name, v.clone()));
        }
    }
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    let page = LogoutConfirmPage {
        t,
        a: i18n::account::strings(t.lang),
        brand: Brand::default(),
        accounts: accounts.iter().map(|a| a.live.user.email.clone()).collect(),
        hidden,
        csrf_token,
    };
    (jar, pages::render(&page)).into_response()
}

/// Back to the app's registered post-logout URI with its `state`, or the
/// "signed out" page.
fn signed_out(
    jar: CookieJar,
    headers: &HeaderMap,
    p: &LogoutInput,
    redirect: Option<String>,
) -> Result<Response> {
    match redirect {
        Some(uri) => {
            let mut url = url::Url::parse(&uri).map_err(AppError::internal)?;
            if let Some(s) = p.state.as_deref().filter(|s| s.len() <= 2048) {
                url.query_pairs_mut().append_pair("state", s);
            }
            Ok((jar, Redirect::to(url.as_str())).into_response())
        }
        None => {
            let page = SignedOutPage {
                t: i18n::negotiate(None, accept_language(headers).as_deref(), "en"),
                brand: Brand::default(),
            };
            Ok((jar, pages::render(&page)).into_response())
        }
    }
}
