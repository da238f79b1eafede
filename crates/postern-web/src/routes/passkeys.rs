//! Issue 15 passkeys, in the browser: the offer after an email sign-in,
//! "Sign in with a passkey" on `/login` (a button and the browser's
//! autofill), the list on `/account`, and the page of an app that wants the
//! passkey. `/static/passkeys.js` runs the WebAuthn calls; every page works
//! without it (the passkey parts stay hidden), and every form is
//! CSRF-protected. Headless `POST /api/v1/passkeys/...` is out of scope.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_auth::passkeys::{self, Started};
use postern_auth::signin::{self, RawAuthParams};
use postern_auth::{AuthError, Flow};
use postern_core::net::local_path;
use serde::Deserialize;

use super::signin::{ensure_binding, requester};
use crate::cookies;
use crate::error::{AppError, Result};
use crate::extract::{accept_language, wants_json, AppForm, ClientIp, UserAgent};
use crate::i18n::passkeys::PasskeyStrings;
use crate::i18n::{self, Strings};
use crate::pages::{self, Brand};
use crate::{render, AppState};

/// Remembers the offer's answer in this browser: `later` ("Not now", for
/// [`NOT_NOW_TTL`]) or `made` (a passkey was made here).
pub const OFFER_COOKIE: &str = "postern_passkey_offer";
/// "I lost my passkey": for a few minutes, a link or code signs in even to
/// an app that wants a passkey.
pub const LOST_COOKIE: &str = "postern_passkey_lost";
/// "Not now" is remembered for 30 days (issue 15).
pub const NOT_NOW_TTL: i64 = 30 * 86_400;
/// How long "I lost my passkey" holds.
pub const LOST_TTL: i64 = 600;
/// How long "made here" is remembered.
const MADE_TTL: i64 = 400 * 86_400;

/// The passkey words in the language of `t`.
pub fn words(t: &Strings) -> &'static PasskeyStrings {
    i18n::passkeys::strings(t.lang)
}

/// Whether this browser said it lost its passkey a moment ago.
pub fn lost(state: &AppState, jar: &CookieJar) -> bool {
    cookies::get(state, jar, LOST_COOKIE).is_some()
}

fn json_ok(jar: CookieJar, started: Started) -> Response {
    (jar, [(header::CACHE_CONTROL, "no-store")], Json(started)).into_response()
}

/// Every passkey form starts here: its CSRF token, or 403 `invalid_csrf`.
fn csrf(state: &AppState, jar: &CookieJar, token: Option<&str>, retry: Option<&str>) -> Result<()> {
    let ok = cookies::csrf_ok(state, jar, token);
    ok.then_some(())
        .ok_or_else(|| offering(AppError::Csrf, retry))
}

/// `e`, with a way back to `retry` when there is one to offer.
fn offering(e: AppError, retry: Option<&str>) -> AppError {
    match retry {
        Some(back) => e.with_retry(back.to_owned()),
        None => e,
    }
}

/// The shape of the forms that change a person's passkeys: the CSRF token
/// and the person ([`maker`]: user id, session id; a failure of either
/// offers `retry`, if any), then the service's `change` for them, whose
/// refusal leads back to `back`.
async fn for_person<T>(
    state: &AppState,
    jar: &CookieJar,
    form: (Option<&str>, Option<&str>),
    retry: Option<&str>,
    back: String,
    change: impl AsyncFnOnce((String, String)) -> std::result::Result<T, AuthError>,
) -> Result<T> {
    let (token, from) = form;
    csrf(state, jar, token, retry)?;
    let person = maker(state, jar, from, retry).await?;
    change(person)
        .await
        .map_err(|e| AppError::from(e).with_retry(back))
}

/// Back to `/account`, saying `what` there once.
fn to_account(state: &AppState, jar: CookieJar, what: &str) -> Response {
    let jar = jar.add(notice(state, what));
    (jar, Redirect::to("/account")).into_response()
}

// ---- sign in with a passkey --------------------------------------------------

/// Form of `POST /passkeys/authenticate/start`.
#[derive(Debug, Deserialize)]
pub struct StartSignInForm {
    /// CSRF token of the `/login` page.
    pub csrf_token: Option<String>,
    /// The authorization request the sign-in answers.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// `POST /passkeys/authenticate/start`: the options for
/// `navigator.credentials.get` (discoverable credentials, conditional
/// mediation), bound to this browser.
pub async fn authenticate_start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<StartSignInForm>,
) -> Result<Response> {
    csrf(&state, &jar, form.csrf_token.as_deref(), None)?;
    let params = signin::validate_auth_params(&state, &form.params).await?;
    let (jar, binding) = ensure_binding(&state, jar);
    let who = requester(ip, ua, &headers, Some(binding));
    let started = passkeys::start_authentication(&state, &params, &who).await?;
    Ok(json_ok(jar, started))
}

/// Form of the `finish` endpoints: the browser's answer.
#[derive(Debug, Deserialize)]
pub struct FinishForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The ceremony.
    pub challenge_id: Option<String>,
    /// The credential, as JSON (binary fields base64url).
    pub credential: Option<String>,
    /// Registration: `offer` or `account`.
    pub from: Option<String>,
    /// Registration from the offer: where the sign-in goes on.
    pub next: Option<String>,
}

/// `POST /passkeys/authenticate/finish`: a passkey sign-in, finished like
/// any other (session, history, consent or the app's code); a refused one
/// is a clear page (or the JSON error) and signs no one in.
pub async fn authenticate_finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<FinishForm>,
) -> Result<Response> {
    csrf(&state, &jar, form.csrf_token.as_deref(), None)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let who = requester(ip, ua, &headers, binding);
    let signed_in = passkeys::finish_authentication(
        &state,
        form.challenge_id.as_deref().unwrap_or_default(),
        form.credential.as_deref().unwrap_or_default(),
        &who,
    )
    .await?;
    render::signed_in(&state, jar, signed_in).await
}

// ---- make a passkey ---------------------------------------------------------

/// Form of `POST /passkeys/register/start`.
#[derive(Debug, Deserialize)]
pub struct StartRegisterForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// `offer` (the browser's current account, just signed in) or
    /// `account` (the account `/account` shows).
    pub from: Option<String>,
}

/// Who is making a passkey (user id, session id): the account `/account`
/// shows, or, from the offer, the browser's current account (the one that
/// just signed in). Nobody signed in is `invalid_session`, offering
/// `retry` if any.
async fn maker(
    state: &AppState,
    jar: &CookieJar,
    from: Option<&str>,
    retry: Option<&str>,
) -> Result<(String, String)> {
    let account = if from == Some("account") {
        crate::browser::viewer(state, jar).await?
    } else {
        crate::browser::accounts(state, jar)
            .await?
            .into_iter()
            .next()
    };
    let nobody = || offering(AppError::Auth(AuthError::InvalidSession), retry);
    account
        .map(|a| (a.live.user.id, a.live.session.id))
        .ok_or_else(nobody)
}

/// `POST /passkeys/register/start`: the options for
/// `navigator.credentials.create` for the signed-in person.
pub async fn register_start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<StartRegisterForm>,
) -> Result<Response> {
    csrf(&state, &jar, form.csrf_token.as_deref(), None)?;
    let (user_id, _) = maker(&state, &jar, form.from.as_deref(), None).await?;
    let t = i18n::negotiate(None, accept_language(&headers).as_deref(), "en");
    let name = t.describe_browser(ua.0.as_deref());
    let (jar, binding) = ensure_binding(&state, jar);
    let who = requester(ip, ua, &headers, Some(binding));
    let started = passkeys::start_registration(&state, &user_id, &name, &who).await?;
    Ok(json_ok(jar, started))
}

/// `POST /passkeys/register/finish`: stores the new passkey, then goes on:
/// from the offer, to the sign-in it interrupted; from `/account`, back
/// there with a notice.
pub async fn register_finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<FinishForm>,
) -> Result<Response> {
    let from = form.from.as_deref();
    let back = if from == Some("account") {
        "/account".to_owned()
    } else {
        local_path(form.next.as_deref())
    };
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let who = requester(ip, ua, &headers, binding);
    let (challenge_id, credential) = (
        form.challenge_id.as_deref().unwrap_or_default(),
        form.credential.as_deref().unwrap_or_default(),
    );
    let token = form.csrf_token.as_deref();
    for_person(
        &state,
        &jar,
        (token, from),
        None,
        back,
        async |(user, session)| {
            passkeys::finish_registration(&state, &user, &session, challenge_id, credential, &who)
                .await
        },
    )
    .await?;
    let jar = jar.add(cookies::build(
        &state,
        OFFER_COOKIE,
        "made".to_owned(),
        Some(MADE_TTL),
    ));
    if from == Some("account") {
        return Ok(to_account(&state, jar, "passkey-added"));
    }
    Ok((jar, Redirect::to(&local_path(form.next.as_deref()))).into_response())
}

// ---- the offer --------------------------------------------------------------

/// The offer after an email sign-in.
#[derive(Template)]
#[template(path = "passkey_offer.html")]
pub struct OfferPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The passkey words.
    pub p: &'static PasskeyStrings,
    /// The app.
    pub brand: Brand,
    /// CSRF token.
    pub csrf_token: String,
    /// Where the sign-in goes on (`/authorize`, completing by the new
    /// session).
    pub next: String,
}

/// Set by `/static/passkeys.js` (not HttpOnly: the script writes it) when
/// the browser has a platform authenticator (fingerprint, face, screen
/// lock): only such a browser is offered a passkey.
pub const CAPABLE_COOKIE: &str = "postern_passkeys_ok";

/// Whether this browser may be offered a passkey: it can make one, and it
/// did not say "not now" lately nor make one here.
pub fn may_offer(state: &AppState, jar: &CookieJar) -> bool {
    jar.get(CAPABLE_COOKIE).is_some_and(|c| c.value() == "1")
        && cookies::get(state, jar, OFFER_COOKIE).is_none()
}

/// The offer page for a finished email sign-in of `flow`.
pub async fn offer_page(state: &AppState, jar: CookieJar, flow: &Flow) -> Result<Response> {
    let app = signin::app_named(state, Some(&flow.client_id)).await?;
    let t = i18n::negotiate(Some(&flow.locale), None, &app.settings.locale);
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    let page = OfferPage {
        t,
        p: words(t),
        brand: Brand::of(&app, &state.config, t),
        csrf_token,
        next: render::continue_url(flow),
    };
    Ok((jar, pages::render(&page)).into_response())
}

/// Form of "Not now" and "I lost my passkey".
#[derive(Debug, Deserialize)]
pub struct NextForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// Where to go on (a path on this server).
    pub next: Option<String>,
}

/// Remembers `cookie` (name, value, lifetime) in this browser, then goes
/// on to the form's `next`.
fn go_on(
    state: &AppState,
    jar: CookieJar,
    form: NextForm,
    cookie: (&'static str, &str, i64),
) -> Result<Response> {
    csrf(state, &jar, form.csrf_token.as_deref(), None)?;
    let (name, value, ttl) = cookie;
    let jar = jar.add(cookies::build(state, name, value.to_owned(), Some(ttl)));
    Ok((jar, Redirect::to(&local_path(form.next.as_deref()))).into_response())
}

/// `POST /passkeys/not-now`: no offer in this browser for 30 days; the
/// sign-in goes on.
pub async fn not_now(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<NextForm>,
) -> Result<Response> {
    go_on(&state, jar, form, (OFFER_COOKIE, "later", NOT_NOW_TTL))
}

/// `POST /passkeys/lost`: "I lost my passkey": for ten minutes this
/// browser's link or code signs in even to an app that wants a passkey
/// (and history says so); back to the link or code.
pub async fn lost_passkey(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<NextForm>,
) -> Result<Response> {
    go_on(&state, jar, form, (LOST_COOKIE, "1", LOST_TTL))
}

// ---- required_after_first_sign_in -----------------------------------------------

/// An app that wants the person's passkey refused their link or code.
#[derive(Template)]
#[template(path = "passkey_required.html")]
pub struct RequiredPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The passkey words.
    pub p: &'static PasskeyStrings,
    /// The app.
    pub brand: Brand,
    /// Why.
    pub text: String,
    /// `/login` for the same sign-in, to use the passkey.
    pub login_url: String,
    /// CSRF token.
    pub csrf_token: String,
    /// Back to the link or the code after "I lost my passkey".
    pub next: String,
}

/// When `e` says the app wants the passkey, its page (a way to use the
/// passkey, and "I lost my passkey" leading back to `next`); otherwise `e`.
pub fn required_or(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    e: AuthError,
    next: String,
) -> Result<Response> {
    let (app, flow) = match &e {
        AuthError::InApp { app, error } => match error.as_ref() {
            AuthError::PasskeyRequired { flow } => (app.clone(), flow.clone()),
            _ => return Err(e.into()),
        },
        _ => return Err(e.into()),
    };
    if wants_json(headers) {
        return Err(e.into());
    }
    let t = i18n::negotiate(Some(&flow.locale), None, &app.settings.locale);
    let brand = Brand::of(&app, &state.config, t);
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    let p = words(t);
    let page = RequiredPage {
        t,
        p,
        text: brand.fill(p.required_text),
        brand,
        login_url: render::login_url(state, &flow, None),
        csrf_token,
        next,
    };
    Ok((jar, pages::render_with(StatusCode::FORBIDDEN, &page)).into_response())
}

// ---- /account ---------------------------------------------------------------

/// The passkey part of `/account`, its notices and the error page's words
/// are the passkey service's (plain data in the page's language).
pub use postern_auth::passkeys::{
    account_notice, account_section, error_words, AccountPasskeys, PasskeyView,
};

fn notice(state: &AppState, what: &str) -> axum_extra::extract::cookie::Cookie<'static> {
    cookies::build(state, cookies::NOTICE, what.to_owned(), Some(60))
}

/// The forms of the passkey list.
#[derive(Debug, Deserialize)]
pub struct PasskeyForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The passkey.
    pub id: Option<String>,
    /// Rename: the new name.
    pub name: Option<String>,
}

/// `POST /account/passkeys/rename` (`id`, `name`).
pub async fn rename(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<PasskeyForm>,
) -> Result<Response> {
    let id = form.id.as_deref().unwrap_or_default();
    let name = form.name.as_deref().unwrap_or_default();
    let person = (form.csrf_token.as_deref(), Some("account"));
    let back = "/account".to_owned();
    for_person(
        &state,
        &jar,
        person,
        Some("/account"),
        back,
        async |(user_id, _)| passkeys::rename(&state, &user_id, id, name).await,
    )
    .await?;
    Ok(to_account(&state, jar, "passkey-renamed"))
}

/// `POST /account/passkeys/delete` (`id`): it signs no one in any more.
pub async fn delete(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<PasskeyForm>,
) -> Result<Response> {
    let id = form.id.as_deref().unwrap_or_default();
    let person = (form.csrf_token.as_deref(), Some("account"));
    let back = "/account".to_owned();
    for_person(
        &state,
        &jar,
        person,
        Some("/account"),
        back,
        async |(user_id, _)| passkeys::delete(&state, &user_id, id).await,
    )
    .await?;
    Ok(to_account(&state, jar, "passkey-deleted"))
}

/// `GET /static/passkeys.js`: the WebAuthn calls of the passkey pages.
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/passkeys.js"),
    )
}
