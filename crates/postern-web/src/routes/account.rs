//! SPEC §3.3 `/account`: the person's sessions, sign-in history and
//! allowed apps, with sign-out, "sign out everywhere", revoking an app and
//! deleting the account. Every form is CSRF-protected; every answer is
//! `Cache-Control: no-store` (the security-headers middleware).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use postern_core::{ClientId, SessionId};
use serde::Deserialize;

use crate::cookies;
use crate::error::{AppError, Result};
use crate::extract::{accept_language, AppForm, AppQuery};
use crate::i18n::account::AccountStrings;
use crate::i18n::{self, fill, Strings};
use crate::pages::{self, Brand, SignedOutPage};
use crate::AppState;
use postern_auth::account::{self, FLOW_TTL};
use postern_auth::oidc::{self, BrowserAccount};

/// The lines of `/account` are the account service's (plain data in the
/// page's language), re-exported for the page's paths.
pub use postern_auth::account::{AppView, EventView, SessionView};

/// `/account`.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The account pages' words in that language.
    pub a: &'static AccountStrings,
    /// No app: Postern's own page.
    pub brand: Brand,
    /// "Signed in as …" (HTML: the address breaks only after `@` and `.`).
    pub signed_in_as: String,
    /// What the last action did ("That session was signed out.").
    pub notice: Option<String>,
    /// CSRF token for every form.
    pub csrf_token: String,
    /// Live sessions.
    pub sessions: Vec<SessionView>,
    /// Recent sign-ins.
    pub history: Vec<EventView>,
    /// Allowed apps.
    pub apps: Vec<AppView>,
    /// The person's passkeys (issue 15).
    pub passkeys: super::passkeys::AccountPasskeys,
}

/// `GET /account/delete`: "Delete {email}?".
#[derive(Template)]
#[template(path = "account_delete.html")]
pub struct AccountDeletePage {
    /// The page's language.
    pub t: &'static Strings,
    /// The account pages' words.
    pub a: &'static AccountStrings,
    /// No app.
    pub brand: Brand,
    /// "Delete you@example.com?".
    pub title: String,
    /// The same as HTML, the address breaking only after `@` and `.`.
    pub heading: String,
    /// CSRF token for the form.
    pub csrf_token: String,
}

/// After `POST /account/delete`.
#[derive(Template)]
#[template(path = "account_deleted.html")]
pub struct AccountDeletedPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The account pages' words.
    pub a: &'static AccountStrings,
    /// No app.
    pub brand: Brand,
}

/// The language of the account pages: `Accept-Language`, else English.
fn languages(headers: &HeaderMap) -> (&'static Strings, &'static AccountStrings) {
    let t = i18n::negotiate(None, accept_language(headers).as_deref(), "en");
    (t, i18n::account::strings(t.lang))
}

/// Sends the browser through `/authorize` as the built-in account app,
/// keeping `state` and the PKCE verifier in a short-lived cookie.
pub fn start_sign_in(state: &AppState, jar: CookieJar) -> Response {
    let started = account::start_own_sign_in(state);
    let jar = jar.add(cookies::build(
        state,
        cookies::ACCOUNT_FLOW,
        started.flow_secret,
        Some(FLOW_TTL),
    ));
    (jar, Redirect::to(&started.authorize_url)).into_response()
}

/// SPEC §3.3 `GET /account`: the signed-in person's page, or their sign-in
/// through Postern first.
pub async fn account_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(viewer) = crate::browser::viewer(&state, &jar).await? else {
        return Ok(start_sign_in(&state, jar));
    };
    oidc::touch(&state, &viewer.live.session).await?;
    let (t, a) = languages(&headers);
    let overview = account::overview(&state, &viewer.live.user.id).await?;
    let geoip = state.config.geoip.as_deref();
    let view = overview.view(t, &viewer.live.session.id, geoip);
    // What the form before did, said once.
    let notice = match cookies::get(&state, &jar, cookies::NOTICE) {
        Some(n) => account::notice(&state, t, &n).await,
        None => None,
    };
    let jar = if notice.is_some() {
        jar.add(cookies::build(
            &state,
            cookies::NOTICE,
            String::new(),
            Some(0),
        ))
    } else {
        jar
    };
    let passkeys = super::passkeys::account_section(&state, t, &viewer.live.user.id).await?;
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    let page = AccountPage {
        t,
        a,
        passkeys,
        brand: Brand::default(),
        signed_in_as: pages::with_address(a.signed_in_as, &viewer.live.user.email),
        notice,
        csrf_token,
        sessions: view.sessions,
        history: view.history,
        apps: view.apps,
    };
    Ok((jar, pages::render(&page)).into_response())
}

/// `GET /account/callback`: checks the answer against this browser's
/// sign-in, redeems the code in-process and remembers which session
/// `/account` shows.
pub async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    AppQuery(q): AppQuery<account::OwnCallback>,
) -> Result<Response> {
    let flow = cookies::get(&state, &jar, cookies::ACCOUNT_FLOW).unwrap_or_default();
    let live = account::finish_own_sign_in(&state, &q, &flow)
        .await
        .map_err(|e| AppError::from(e).with_retry("/account".to_owned()))?;
    // `/admin` signs in the same way and asks to come back to itself.
    let back = account::back_after_sign_in(cookies::get(&state, &jar, cookies::RETURN_TO));
    let jar = jar
        .add(cookies::build(
            &state,
            cookies::ACCOUNT_FLOW,
            String::new(),
            Some(0),
        ))
        .add(cookies::build(
            &state,
            cookies::RETURN_TO,
            String::new(),
            Some(0),
        ))
        .add(cookies::build(
            &state,
            cookies::ACCOUNT,
            live.session.id,
            None,
        ));
    Ok((jar, Redirect::to(&back)).into_response())
}

/// The forms of `/account`.
#[derive(Debug, Default, Deserialize)]
pub struct AccountForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// "Sign out": the session to end.
    pub session_id: Option<SessionId>,
    /// "Revoke": the app.
    pub client_id: Option<ClientId>,
}

/// The person a form of `/account` acts for, after its CSRF check.
async fn acting(
    state: &AppState,
    jar: &CookieJar,
    form: &AccountForm,
) -> Result<Option<BrowserAccount>> {
    if !cookies::csrf_ok(state, jar, form.csrf_token.as_deref()) {
        return Err(AppError::Csrf.with_retry("/account".to_owned()));
    }
    crate::browser::viewer(state, jar).await
}

fn required<'a, T: std::ops::Deref<Target = str>>(
    field: &str,
    v: &'a Option<T>,
) -> Result<&'a str> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::InvalidRequest(format!("{field} is required.")))
}

/// Drops `viewer` from this browser's accounts and forgets which account
/// `/account` shows.
async fn forget(state: &AppState, jar: CookieJar, viewer: &BrowserAccount) -> Result<CookieJar> {
    let rest: Vec<BrowserAccount> = crate::browser::accounts(state, &jar)
        .await?
        .into_iter()
        .filter(|a| a.live.user.id != viewer.live.user.id)
        .collect();
    Ok(jar
        .add(crate::browser::accounts_cookie(state, &rest))
        .add(cookies::build(
            state,
            cookies::ACCOUNT,
            String::new(),
            Some(0),
        )))
}

fn signed_out(headers: &HeaderMap, jar: CookieJar) -> Response {
    let (t, _) = languages(headers);
    let page = SignedOutPage {
        t,
        brand: Brand::default(),
    };
    (jar, pages::render(&page)).into_response()
}

/// `POST /account/sessions/sign-out` (`session_id`): ends one of the
/// person's sessions. Ending this browser's own signs it out here.
pub async fn sign_out_session(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppForm(form): AppForm<AccountForm>,
) -> Result<Response> {
    let Some(viewer) = acting(&state, &jar, &form).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let session_id = required("session_id", &form.session_id)?;
    if !account::sign_out_session(&state, &viewer.live.user.id, session_id).await? {
        return Err(
            AppError::InvalidRequest("There is no such session on this account.".into())
                .with_retry("/account".into()),
        );
    }
    if session_id == viewer.live.session.id {
        let jar = forget(&state, jar, &viewer).await?;
        return Ok(signed_out(&headers, jar));
    }
    let jar = jar.add(notice(&state, "signed-out".to_owned()));
    Ok((jar, Redirect::to("/account")).into_response())
}

/// `POST /account/sign-out-everywhere`: every session and refresh token of
/// the person, this browser's included (SPEC §2).
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppForm(form): AppForm<AccountForm>,
) -> Result<Response> {
    let Some(viewer) = acting(&state, &jar, &form).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    account::sign_out_everywhere(&state, &viewer.live.user.id).await?;
    let jar = forget(&state, jar, &viewer).await?;
    Ok(signed_out(&headers, jar))
}

/// `POST /account/apps/revoke` (`client_id`): forgets the person's consent
/// for the app and revokes its refresh tokens.
pub async fn revoke_app(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<AccountForm>,
) -> Result<Response> {
    let Some(viewer) = acting(&state, &jar, &form).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let client_id = required("client_id", &form.client_id)?;
    account::revoke_app(&state, &viewer.live.user.id, client_id).await?;
    let jar = jar.add(notice(&state, format!("revoked.{client_id}")));
    Ok((jar, Redirect::to("/account")).into_response())
}

/// The one-minute cookie that makes `/account` confirm what a form did.
fn notice(state: &AppState, what: String) -> axum_extra::extract::cookie::Cookie<'static> {
    cookies::build(state, cookies::NOTICE, what, Some(60))
}

/// `GET /account/delete`: asks before deleting.
pub async fn delete_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(viewer) = crate::browser::viewer(&state, &jar).await? else {
        return Ok(start_sign_in(&state, jar));
    };
    let (t, a) = languages(&headers);
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    let page = AccountDeletePage {
        t,
        a,
        brand: Brand::default(),
        title: fill(
            a.delete_confirm_title,
            &[("email", &viewer.live.user.email)],
        ),
        heading: pages::with_address(a.delete_confirm_title, &viewer.live.user.email),
        csrf_token,
    };
    Ok((jar, pages::render(&page)).into_response())
}

/// `POST /account/delete`: deletes the person's account and everything
/// that names them; this browser keeps its other accounts.
pub async fn delete_account(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppForm(form): AppForm<AccountForm>,
) -> Result<Response> {
    let Some(viewer) = acting(&state, &jar, &form).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    account::delete_account(&state, &viewer.live.user.id).await?;
    let jar = forget(&state, jar, &viewer).await?;
    let (t, a) = languages(&headers);
    let page = AccountDeletedPage {
        t,
        a,
        brand: Brand::default(),
    };
    Ok((jar, pages::render(&page)).into_response())
}
