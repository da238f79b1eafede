//! SPEC §3.1 sign-in endpoints and the hosted pages around them.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_core::{App, DevicePolicy, LoginId};
use postern_store::Queries;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, ErrorHint, Result, TokenProblem};
use crate::extract::{
    accept_language, wants_json, AppForm, AppQuery, ClientIp, JsonOrForm, UserAgent,
};
use crate::i18n::{self, fill, Strings};
use crate::pages::{
    self, ApprovedPage, Brand, CheckPage, ConfirmMode, ConfirmPage, ConsentPage, LoginPage,
};
use crate::signin::{self, Decision, Next, RawAuthParams, RemoteStatus, Requester, SignedIn};
use crate::AppState;
use crate::{cookies, oidc};

/// How long "send again" waits after a link was sent (the page's countdown).
pub const RESEND_AFTER: i64 = 30;

/// Body of `POST /request-magic-link` (JSON or form).
#[derive(Debug, Deserialize)]
pub struct RequestLinkBody {
    /// The address to sign in.
    pub email: Option<String>,
    /// Authorization parameters, validated as `/authorize` does.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// SPEC §3.1 success body.
#[derive(Debug, Serialize)]
pub struct LinkSentBody {
    /// Always "Magic link sent successfully".
    pub message: &'static str,
    /// The normalized address.
    pub email: String,
}

/// Whether a request comes from our own origin (SPEC §3.1: only then may
/// `/request-magic-link` bind the browser). `Sec-Fetch-Site` where the
/// browser sends it, else `Origin`; neither means not a browser page of ours.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let ours = state.config.public_url.origin().ascii_serialization();
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o == ours)
}

fn requester(
    ip: ClientIp,
    ua: UserAgent,
    headers: &HeaderMap,
    binding: Option<String>,
) -> Requester {
    Requester {
        ip: ip.0,
        user_agent: ua.0,
        accept_language: accept_language(headers),
        binding,
        ip_known: true,
        headless: false,
    }
}

/// The browser's binding secret, creating one (and its cookie) if needed.
fn ensure_binding(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    match cookies::get(state, &jar, cookies::BINDING) {
        Some(b) => (jar, b),
        None => {
            let b = postern_core::crypto::random_token(32);
            let jar = jar.add(cookies::build(
                state,
                cookies::BINDING,
                b.clone(),
                Some(86_400),
            ));
            (jar, b)
        }
    }
}

fn require<'a>(field: &'static str, v: &'a Option<String>) -> Result<&'a str> {
    v.as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AppError::InvalidRequest(format!("{field} is required.")))
}

/// SPEC §3.1 `POST /request-magic-link`.
pub async fn request_magic_link(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    JsonOrForm(body): JsonOrForm<RequestLinkBody>,
) -> Result<(CookieJar, Json<LinkSentBody>)> {
    let email = require("email", &body.email)?;
    require("client_id", &body.params.client_id)?;
    require("redirect_uri", &body.params.redirect_uri)?;
    let params = signin::validate_auth_params(&state, &body.params).await?;
    // A cross-site request is served but binds nothing (login CSRF).
    let (jar, binding) = if same_origin(&state, &headers) {
        let (jar, b) = ensure_binding(&state, jar);
        (jar, Some(b))
    } else {
        (jar, None)
    };
    let sent = signin::request_link(
        &state,
        &params,
        email,
        &requester(ip, ua, &headers, binding),
    )
    .await?;
    Ok((
        jar,
        Json(LinkSentBody {
            message: "Magic link sent successfully",
            email: sent.email.to_string(),
        }),
    ))
}

/// Query of `GET /login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Pre-fills the address.
    pub login_hint: Option<String>,
    /// `chooser` when "Use another account" led here: the page offers "Back".
    pub from: Option<String>,
    /// Authorization parameters.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// The authorization parameters as hidden form fields.
pub fn hidden_fields(p: &signin::AuthParams) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("client_id", p.app.client_id.clone()),
        ("redirect_uri", p.redirect_uri.clone()),
        ("scope", p.scope.to_string()),
    ];
    for (k, val) in [
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("code_challenge", &p.code_challenge),
        ("ui_locales", &p.ui_locales),
    ] {
        if let Some(val) = val {
            v.push((k, val.clone()));
        }
    }
    if p.code_challenge.is_some() {
        v.push(("code_challenge_method", "S256".to_owned()));
    }
    v
}

/// The language of the pages of an app's flow (SPEC §3.3): `ui_locales`,
/// then `Accept-Language`, then the app's default.
fn flow_strings(params: &signin::AuthParams, headers: &HeaderMap) -> &'static Strings {
    i18n::negotiate(
        params.ui_locales.as_deref(),
        accept_language(headers).as_deref(),
        &params.app.settings.locale,
    )
}

/// The chooser this form was reached from ("Use another account"), for
/// its "Back".
fn back_to_chooser(
    state: &AppState,
    params: &signin::AuthParams,
    from: Option<&str>,
) -> Option<String> {
    (from == Some("chooser")).then(|| {
        state.config.url(&format!(
            "/authorize?response_type=code&prompt=select_account&{}",
            params.login_query(None)
        ))
    })
}

/// The email form, with what was typed and, after a refused address, why
/// and a suggestion.
fn login_form(
    state: &AppState,
    jar: CookieJar,
    t: &'static Strings,
    params: &signin::AuthParams,
    email: String,
    from: Option<&str>,
    error: Option<&'static str>,
) -> Response {
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    let mut hidden = hidden_fields(params);
    if from == Some("chooser") {
        hidden.push(("from", "chooser".to_owned()));
    }
    let suggestion = error.and_then(|_| pages::Suggestion::of(t, &email, |_| String::new()));
    let page = LoginPage {
        t,
        brand: Brand::of(&params.app, &state.config, t),
        csrf_token,
        hidden,
        email,
        error: error.map(str::to_owned),
        suggestion,
        back: back_to_chooser(state, params, from),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (jar, pages::render_with(status, &page)).into_response()
}

/// `GET /login`: the email form, for an app and destination.
pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppQuery(q): AppQuery<LoginQuery>,
) -> Result<Response> {
    require("client_id", &q.params.client_id)?;
    let params = signin::validate_auth_params(&state, &q.params).await?;
    let email = q
        .login_hint
        .filter(|h| h.len() <= 254 && !h.chars().any(char::is_control))
        .unwrap_or_default();
    let t = flow_strings(&params, &headers);
    Ok(login_form(
        &state,
        jar,
        t,
        &params,
        email,
        q.from.as_deref(),
        None,
    ))
}

/// Form of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The address.
    pub email: Option<String>,
    /// `chooser` when the form was reached from the account chooser.
    pub from: Option<String>,
    /// Authorization parameters.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// `POST /login`: the hosted form. Binds this browser to the request and
/// shows "check your email". A browser's mistyped address comes back on the
/// same form, with why and a suggestion; JSON clients get the SPEC error.
pub async fn login_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<LoginForm>,
) -> Result<Response> {
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        // The way forward is the same form again, for the same app and
        // destination, with the address kept (when the fields still hold up).
        return Err(
            match signin::validate_auth_params(&state, &form.params).await {
                Ok(params) => AppError::Csrf
                    .with_retry(state.config.url(&format!(
                        "/login?{}",
                        params.login_query(form.email.as_deref())
                    )))
                    .for_app(&params.app),
                Err(_) => AppError::Csrf,
            },
        );
    }
    require("client_id", &form.params.client_id)?;
    let params = signin::validate_auth_params(&state, &form.params).await?;
    let app = params.app.clone();
    let back = state.config.url(&format!(
        "/login?{}",
        params.login_query(form.email.as_deref())
    ));
    if !wants_json(&headers) {
        let typed = form.email.as_deref().unwrap_or_default();
        if let Err(e) = postern_core::EmailAddress::parse(typed) {
            let t = flow_strings(&params, &headers);
            let message = match e {
                postern_core::email::EmailError::Empty => t.email_error_empty,
                _ => t.email_error_invalid,
            };
            let typed: String = typed.trim().chars().take(320).collect();
            let from = form.from.as_deref();
            return Ok(login_form(
                &state,
                jar,
                t,
                &params,
                typed,
                from,
                Some(message),
            ));
        }
    }
    let email =
        require("email", &form.email).map_err(|e| e.with_retry(back.clone()).for_app(&app))?;
    let (jar, binding) = ensure_binding(&state, jar);
    let sent = signin::request_link(
        &state,
        &params,
        email,
        &requester(ip, ua, &headers, Some(binding.clone())),
    )
    .await;
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            let e = match e.kind() {
                AppError::TooManyRequests { .. } => {
                    let hint = live_email_of(&state, &app, &binding).await;
                    let e = e.with_retry(back);
                    match hint {
                        Some(h) => e.with_hint(h),
                        None => e,
                    }
                }
                AppError::InvalidRequest(_) => e.with_retry(back),
                _ => e,
            };
            return Err(e.for_app(&app));
        }
    };
    Ok((
        jar,
        Redirect::to(&format!("/login/check?id={}", sent.login_id)),
    )
        .into_response())
}

/// The newest email this browser asked for the app that still works, for a
/// rate-limited page ("your newest email still works until 10:35").
async fn live_email_of(state: &AppState, app: &App, binding: &str) -> Option<ErrorHint> {
    let hash = signin::binding_hash(state, binding);
    let mut conn = state.store.conn().await.ok()?;
    let live = conn
        .live_request_for_browser(&app.client_id, &hash, state.now())
        .await
        .ok()??;
    Some(ErrorHint::LiveEmail {
        check_url: format!("/login/check?id={}", live.id),
        expires_at: live.expires_at,
    })
}

/// Query of `GET /login/check`.
#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    /// The login request.
    pub id: Option<String>,
    /// Set after "Send again": the page says when the new link went.
    pub resent: Option<String>,
}

/// The language of the pages about a login request: the one it was made
/// in (SPEC §3.3: `ui_locales`, then `Accept-Language`, then the app's
/// default, negotiated when it was made).
fn request_strings(req: &postern_store::LoginRequest, app_locale: &str) -> &'static Strings {
    i18n::negotiate(Some(&req.locale), None, app_locale)
}

/// Why the asking browser's request can no longer be used, as its pages
/// say it: stopped by wrong codes or by a wrong number on the other device,
/// used here ("already used"), or used by a sign-in elsewhere ("You
/// finished signing in on another device"). `used_here` is the problem to
/// name when this browser holds the account the request signed in.
async fn why_dead(
    state: &AppState,
    jar: &CookieJar,
    req: &postern_store::LoginRequest,
    used_here: TokenProblem,
) -> TokenProblem {
    match TokenProblem::of_dead_link(req) {
        TokenProblem::WrongNumber => return TokenProblem::StoppedByWrongNumber,
        TokenProblem::Used => {}
        other => return other,
    }
    // This browser signed in with it (or with a sibling since): its own
    // doing. Otherwise another device finished the sign-in.
    let accounts = oidc::browser_accounts(state, jar).await.unwrap_or_default();
    let here = accounts
        .iter()
        .any(|a| a.live.user.email == req.email && a.live.session.created_at >= req.created_at);
    if here {
        used_here
    } else {
        TokenProblem::FinishedElsewhere
    }
}

/// `GET /login/check`: "check your email" with code entry, for the browser
/// that asked. Under `device_policy = remote` it shows the number to type
/// on the other device, and once that device approved, the next GET
/// continues the sign-in exactly like a click on the link.
pub async fn check_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppQuery(q): AppQuery<CheckQuery>,
) -> Result<Response> {
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    let id = q.id.filter(|i| LoginId::parse(i).is_ok());
    let id = id.ok_or_else(unknown)?;
    let mut conn = state.store.conn().await?;
    let req = conn.login_request(&id).await?.ok_or_else(unknown)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    if !signin::is_asking_browser(&state, &req, binding.as_deref()) {
        return Err(unknown());
    }
    let app = conn.app(&req.client_id).await?.ok_or_else(unknown)?;
    let retry = signin::retry_url(&state, &req);
    let now = state.now();
    if req.consumed_at.is_some() {
        // "Send again" replaced it: the newest request's page, not a dead end.
        if let Some(b) = binding.as_deref() {
            let hash = signin::binding_hash(&state, b);
            if let Some(newer) = conn
                .live_request_for_browser(&app.client_id, &hash, now)
                .await?
                .filter(|n| n.created_at >= req.created_at && n.id != req.id)
            {
                return Ok(Redirect::to(&format!("/login/check?id={}", newer.id)).into_response());
            }
        }
        drop(conn);
        let problem = why_dead(&state, &jar, &req, TokenProblem::Used).await;
        return Err(AppError::InvalidToken(problem)
            .with_retry(retry)
            .for_app(&app));
    }
    if req.expires_at <= now {
        return Err(AppError::InvalidToken(TokenProblem::Expired)
            .with_retry(retry)
            .for_app(&app));
    }
    drop(conn);
    if req.approved_at.is_some() {
        let who = requester(ip, ua, &headers, binding);
        let signed_in = signin::continue_approved(&state, &app, &req, &who)
            .await
            .map_err(|e| e.for_app(&app))?;
        return signed_in_response(&state, jar, signed_in).await;
    }
    let page = CheckView {
        code: String::new(),
        error: None,
        resent: q.resent.is_some(),
    };
    Ok(check_view(&state, jar, &app, &req, page))
}

/// What a "check your email" page shows beyond its request.
struct CheckView {
    /// The code as typed (after a wrong one).
    code: String,
    /// Why the code was not taken.
    error: Option<String>,
    /// Whether the page follows "Send again".
    resent: bool,
}

/// Renders "check your email" for `req` (status 400 when it carries an
/// error: a wrong code answered in place).
fn check_view(
    state: &AppState,
    jar: CookieJar,
    app: &App,
    req: &postern_store::LoginRequest,
    view: CheckView,
) -> Response {
    let now = state.now();
    let t = request_strings(req, &app.settings.locale);
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    let another_address = signin::retry_url(state, req);
    let check_url = format!("/login/check?id={}", req.id);
    let suggestion = pages::Suggestion::of(t, &req.email, |suggested| {
        login_url_for(state, req, Some(suggested))
    });
    let status = if view.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = CheckPage {
        t,
        brand: Brand::of(app, &state.config, t),
        email: req.email.clone(),
        login_id: req.id.clone(),
        csrf_token,
        expires: fill(
            t.check_expires,
            &[("duration", &t.duration_down(req.expires_at - now))],
        ),
        resend_wait: (req.created_at + RESEND_AFTER - now).clamp(0, RESEND_AFTER),
        another_address,
        remote_number: req.remote_number.clone(),
        status_url: format!("/login/status?id={}", req.id),
        check_url,
        code: view.code,
        error: view.error,
        resent: view.resent.then(|| {
            let at = pages::moment_html(t, req.created_at, pages::MomentStyle::Clock);
            fill(&pages::escape(t.resent_at), &[("time", &at)])
        }),
        suggestion,
    };
    (jar, pages::render_with(status, &page)).into_response()
}

/// `/login` for the request's destination, with `email` filled in (or
/// none: "Use another account").
fn login_url_for(
    state: &AppState,
    req: &postern_store::LoginRequest,
    email: Option<&str>,
) -> String {
    let url = signin::retry_url(state, req);
    let Ok(mut parsed) = url::Url::parse(&url) else {
        return url;
    };
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "login_hint")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = parsed.query_pairs_mut();
        q.clear().extend_pairs(pairs);
        if let Some(e) = email {
            q.append_pair("login_hint", e);
        }
    }
    parsed.to_string()
}

/// Answer of `GET /login/status`.
#[derive(Debug, Serialize)]
pub struct StatusBody {
    /// `pending`, `approved` or `dead`.
    pub status: &'static str,
}

/// `GET /login/status?id=…`: where a `remote` request stands, polled by the
/// asking page's script. Only the asking browser (its binding cookie) gets
/// an answer; any other gets the same 404 as an unknown id.
pub async fn login_status(
    State(state): State<AppState>,
    jar: CookieJar,
    AppQuery(q): AppQuery<CheckQuery>,
) -> Result<Json<StatusBody>> {
    let id = q.id.filter(|i| LoginId::parse(i).is_ok());
    let id = id.ok_or(AppError::NotFound)?;
    let req = state
        .store
        .conn()
        .await?
        .login_request(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    if !signin::is_asking_browser(&state, &req, binding.as_deref()) {
        return Err(AppError::NotFound);
    }
    Ok(Json(StatusBody {
        status: RemoteStatus::of(&req, state.now()).as_str(),
    }))
}

/// Form of `POST /login/code` and `POST /login/resend`.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The login request.
    pub login_id: Option<String>,
    /// The 6-digit code.
    pub code: Option<String>,
}

/// The 403 of an expired code or "send again" form, with the way forward:
/// the "check your email" page it came from (which only the asking browser
/// can open, so naming it leaks nothing).
fn csrf_back_to_check(form: &CodeForm) -> AppError {
    let id = form.login_id.as_deref().filter(|id| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
    });
    match id {
        Some(id) => AppError::Csrf.with_retry(format!("/login/check?id={id}")),
        None => AppError::Csrf,
    }
}

/// The app of login request `login_id`, to dress an error page of its
/// flow; `binding` (when given) must be the browser that asked, so another
/// browser learns nothing from the page.
async fn app_of_request(
    state: &AppState,
    login_id: Option<&str>,
    binding: Option<Option<&str>>,
) -> Option<App> {
    // Only a well-formed id reaches the database (no control characters).
    let id = LoginId::parse(login_id?).ok()?;
    let mut conn = state.store.conn().await.ok()?;
    let req = conn.login_request(id.as_str()).await.ok()??;
    if let Some(b) = binding {
        if !signin::is_asking_browser(state, &req, b) {
            return None;
        }
    }
    conn.app(&req.client_id).await.ok()?
}

/// `e`, worn by `app` when there is one.
fn dressed(e: AppError, app: Option<App>) -> AppError {
    match app {
        Some(app) => e.for_app(&app),
        None => e,
    }
}

/// A code as people paste it ("123 456", "123-456", " 123456 "): the
/// digits and nothing between them. Other characters are kept, so that a
/// code with letters stays wrong.
pub fn clean_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '‑' | '–' | '—' | '.'))
        .collect()
}

/// SPEC §3.1 `POST /login/code`: same outcome as the link, from the asking
/// browser. In a browser, a wrong code is answered on the same page (status
/// 400), with the code kept and the tries left; JSON clients get the SPEC
/// error.
pub async fn submit_code(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        let binding = cookies::get(&state, &jar, cookies::BINDING);
        let app = app_of_request(&state, form.login_id.as_deref(), Some(binding.as_deref())).await;
        return Err(dressed(csrf_back_to_check(&form), app));
    }
    let login_id = require("login_id", &form.login_id)?;
    let typed = form.code.as_deref().unwrap_or_default();
    let code = clean_code(typed);
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let in_page = !wants_json(&headers);
    if in_page && (code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit())) {
        // Not a code at all: said on the page, and no try is spent.
        let shown: String = typed.trim().chars().take(16).collect();
        if let Some((app, req)) = live_request_of(&state, login_id, binding.as_deref()).await {
            let t = request_strings(&req, &app.settings.locale);
            let error = if code.is_empty() {
                t.code_error_empty
            } else {
                t.code_error_format
            };
            let view = CheckView {
                code: shown,
                error: Some(error.to_owned()),
                resent: false,
            };
            return Ok(check_view(&state, jar, &app, &req, view));
        }
    }
    if code.is_empty() {
        require("code", &None)?;
    }
    let who = requester(ip, ua, &headers, binding.clone());
    let signed_in = match signin::redeem_code(&state, login_id, &code, &who).await {
        Ok(signed_in) => signed_in,
        Err(e) => return code_refused(&state, jar, login_id, binding, e, typed, in_page).await,
    };
    signed_in_response(&state, jar, signed_in).await
}

/// A live request of the asking browser, with its app.
async fn live_request_of(
    state: &AppState,
    login_id: &str,
    binding: Option<&str>,
) -> Option<(App, postern_store::LoginRequest)> {
    if login_id.len() > 64 {
        return None;
    }
    let mut conn = state.store.conn().await.ok()?;
    let req = conn.login_request(login_id).await.ok()??;
    let live = req.consumed_at.is_none() && req.expires_at > state.now();
    if !live || !signin::is_asking_browser(state, &req, binding) {
        return None;
    }
    let app = conn.app(&req.client_id).await.ok()??;
    Some((app, req))
}

/// What a refused code becomes: in a browser, a wrong code is the same
/// page again (status 400) with the code kept and how many tries are left,
/// and a dead request says why; every error wears the app's brand.
async fn code_refused(
    state: &AppState,
    jar: CookieJar,
    login_id: &str,
    binding: Option<String>,
    e: AppError,
    typed: &str,
    in_page: bool,
) -> Result<Response> {
    // The request as it is now, read only by its asking browser.
    let read = async {
        let mut conn = state.store.conn().await.ok()?;
        let req = conn.login_request(login_id).await.ok()??;
        if !signin::is_asking_browser(state, &req, binding.as_deref()) {
            return None;
        }
        let app = conn.app(&req.client_id).await.ok()??;
        Some((app, req))
    };
    let Some((app, req)) = read.await else {
        return Err(e);
    };
    let retry = signin::retry_url(state, &req);
    Err(match e.kind() {
        AppError::InvalidCode if in_page => {
            let left = (signin::CODE_TRIES_PER_REQUEST - req.code_attempts).max(0);
            let t = request_strings(&req, &app.settings.locale);
            let tries = if left == 1 {
                t.tries_left_one.to_owned()
            } else {
                fill(t.tries_left, &[("n", &left.to_string())])
            };
            let view = CheckView {
                code: typed.trim().chars().take(16).collect(),
                error: Some(format!("{} {tries}", t.code_wrong)),
                resent: false,
            };
            return Ok(check_view(state, jar, &app, &req, view));
        }
        AppError::InvalidCode => e
            .with_retry(format!("/login/check?id={login_id}"))
            .for_app(&app),
        AppError::InvalidToken(TokenProblem::Used) if req.consumed_at.is_some() => {
            let problem = why_dead(state, &jar, &req, TokenProblem::CodeUsed).await;
            AppError::InvalidToken(problem)
                .with_retry(retry)
                .for_app(&app)
        }
        _ => e.for_app(&app),
    })
}

/// `POST /login/resend`: "send again" from the asking browser. Replaces its
/// earlier request with a new link and code.
pub async fn resend(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        let binding = cookies::get(&state, &jar, cookies::BINDING);
        let app = app_of_request(&state, form.login_id.as_deref(), Some(binding.as_deref())).await;
        return Err(dressed(csrf_back_to_check(&form), app));
    }
    let unknown = || AppError::InvalidToken(TokenProblem::Unknown);
    let login_id = require("login_id", &form.login_id)?;
    let login_id = LoginId::parse(login_id).map_err(|_| unknown())?;
    let req = state
        .store
        .conn()
        .await?
        .login_request(&login_id)
        .await?
        .ok_or_else(unknown)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    if !signin::is_asking_browser(&state, &req, binding.as_deref()) {
        return Err(unknown());
    }
    let raw = RawAuthParams {
        client_id: Some(req.client_id.clone()),
        redirect_uri: Some(req.redirect_uri.clone()),
        scope: Some(req.scope.clone()),
        state: req.state.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge.as_ref().map(|_| "S256".to_owned()),
        ui_locales: Some(req.locale.clone()),
    };
    let params = signin::validate_auth_params(&state, &raw).await?;
    let retry = signin::retry_url(&state, &req);
    let sent = signin::request_link(
        &state,
        &params,
        &req.email,
        &requester(ip, ua, &headers, binding),
    )
    .await
    .map_err(|e| {
        let lang = i18n::strings(&req.locale).lang;
        let now = state.now();
        match e.kind() {
            // The earlier link still works: the way forward is back to it.
            AppError::TooManyRequests { .. }
                if req.consumed_at.is_none() && req.expires_at > now =>
            {
                let check_url = format!("/login/check?id={}", req.id);
                e.with_retry(check_url.clone())
                    .with_hint(ErrorHint::LiveEmail {
                        check_url,
                        expires_at: req.expires_at,
                    })
            }
            _ => e.with_retry(retry),
        }
        .in_language(lang)
        .for_app(&params.app)
    })?;
    Ok(Redirect::to(&format!("/login/check?id={}&resent=1", sent.login_id)).into_response())
}

/// Query of `GET /verify-email`.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    /// The `pml_` token.
    pub token: Option<String>,
}

/// SPEC §3.1 `GET /verify-email`: consumes at once in the asking browser;
/// elsewhere shows a confirmation page and consumes nothing.
///
/// Another browser first gets the token moved out of the address bar
/// (history, screenshots, a shared screen): a short-lived cookie scoped to
/// this path takes it, and a 303 to the bare `/verify-email` renders the
/// page from that cookie.
pub async fn verify_get(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppQuery(q): AppQuery<VerifyQuery>,
) -> Result<Response> {
    let from_query = q.token.is_some();
    let token = match q.token.as_deref().map(ungarble) {
        Some(t) => t,
        None => cookies::link_token(&state, &jar).ok_or_else(|| {
            toward_account(&state, &jar, AppError::InvalidToken(TokenProblem::Missing))
        })?,
    };
    let opened = signin::open_link(&state, &token, ip.0)
        .await
        .map_err(|e| toward_account(&state, &jar, e))?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    if signin::is_asking_browser(&state, &opened.request, binding.as_deref()) {
        let who = requester(ip, ua, &headers, binding);
        let signed_in = signin::consume_link(&state, &opened, &who)
            .await
            .map_err(|e| e.for_app(&opened.app))?;
        let jar = forget_link(&state, jar, from_query);
        return signed_in_response(&state, jar, signed_in).await;
    }
    if from_query {
        let ttl = opened.request.expires_at - state.now();
        let jar = jar.add(cookies::link_cookie(&state, token, ttl));
        return Ok((jar, Redirect::to(cookies::LINK_PATH)).into_response());
    }
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    let mode = match opened.app.settings.device_policy {
        DevicePolicy::Any => ConfirmMode::Continue,
        // SPEC §3.1: under `same_browser` nothing this browser can do signs
        // anyone in, so the page says at once to use the code on the asking
        // device rather than offering a button that leads to that sentence.
        // The POST still answers the same (a scanner, an old page).
        DevicePolicy::SameBrowser => ConfirmMode::SameBrowser,
        // A request made where no page could show the number (a cross-site
        // JSON request) cannot be approved: use the code there instead.
        DevicePolicy::Remote if opened.request.remote_number.is_some() => ConfirmMode::Remote,
        DevicePolicy::Remote => ConfirmMode::SameBrowser,
    };
    Ok((jar, confirm_page(&state, &opened, token, csrf_token, mode)).into_response())
}

/// A link as it may arrive after an email program or a person mangled it:
/// what follows the token (`>`, `)`, `.`, a quote, a space) is dropped.
/// Tokens are base64url, so no character of the token itself is lost.
fn ungarble(token: &str) -> String {
    token
        .trim()
        .trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .to_owned()
}

/// An unknown or missing link has no app to go back to, except when this
/// browser is signing in to its own account page (the `/account` flow
/// cookie): then the way forward is `/account`, which starts again.
fn toward_account(state: &AppState, jar: &CookieJar, e: AppError) -> AppError {
    let unknown = matches!(
        e,
        AppError::InvalidToken(TokenProblem::Unknown | TokenProblem::Missing)
    );
    if unknown && cookies::get(state, jar, cookies::ACCOUNT_FLOW).is_some() {
        e.with_retry("/account".to_owned())
    } else {
        e
    }
}

/// Removes the link cookie once it has served (it was not set when the
/// token came in the query).
fn forget_link(state: &AppState, jar: CookieJar, from_query: bool) -> CookieJar {
    if from_query {
        jar
    } else {
        jar.add(cookies::link_cookie(state, String::new(), 0))
    }
}

fn confirm_page(
    state: &AppState,
    opened: &signin::OpenedLink,
    token: String,
    csrf_token: String,
    mode: ConfirmMode,
) -> Response {
    let req = &opened.request;
    let t = request_strings(req, &opened.app.settings.locale);
    pages::render(&ConfirmPage {
        t,
        brand: Brand::of(&opened.app, &state.config, t),
        email: req.email.clone(),
        asked_from: t.describe_browser(req.user_agent.as_deref()),
        asked_at: pages::moment_html(t, req.created_at, pages::MomentStyle::DateTime),
        mode,
        csrf_token,
        // Only a page with a form carries the token.
        token: if mode == ConfirmMode::SameBrowser {
            String::new()
        } else {
            token
        },
    })
}

/// Form of `POST /verify-email`.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The `pml_` token (else the link cookie's).
    pub token: Option<String>,
    /// `device_policy = remote`: the number the asking device shows.
    pub number: Option<String>,
}

/// SPEC §3.1 `POST /verify-email`: the confirmation page's button. What it
/// does follows the app's `device_policy`: `any` consumes and continues in
/// this browser; `same_browser` says to use the code on the asking device;
/// `remote` approves the asking browser's request when the number is right
/// (and signs in nobody here).
pub async fn verify_post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<VerifyForm>,
) -> Result<Response> {
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        // The link cookie still holds the token: the bare address shows the
        // confirmation page again, with a fresh form.
        return Err(match cookies::link_token(&state, &jar) {
            Some(token) => {
                let e = AppError::Csrf.with_retry(cookies::LINK_PATH.to_owned());
                match signin::open_link(&state, &ungarble(&token), ip.0).await {
                    Ok(opened) => e.for_app(&opened.app),
                    Err(_) => e,
                }
            }
            None => AppError::Csrf,
        });
    }
    let token = form
        .token
        .map(|t| ungarble(&t))
        .filter(|t| !t.is_empty())
        .or_else(|| cookies::link_token(&state, &jar))
        .unwrap_or_default();
    let opened = signin::open_link(&state, &token, ip.0).await?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let asking = signin::is_asking_browser(&state, &opened.request, binding.as_deref());
    let policy = opened.app.settings.device_policy;
    if !asking && policy == DevicePolicy::Remote && opened.request.remote_number.is_some() {
        let Some(number) = form.number.filter(|n| !n.trim().is_empty()) else {
            let (jar, csrf_token) = cookies::csrf_token(&state, jar);
            let page = confirm_page(&state, &opened, token, csrf_token, ConfirmMode::Remote);
            return Ok((jar, page).into_response());
        };
        let who = requester(ip, ua, &headers, binding);
        let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
        signin::approve_remote(&state, &opened, &number, &who)
            .await
            .map_err(|e| e.for_app(&opened.app))?;
        let t = request_strings(&opened.request, &opened.app.settings.locale);
        let page = ApprovedPage {
            t,
            brand: Brand::of(&opened.app, &state.config, t),
        };
        let jar = forget_link(&state, jar, false);
        return Ok((jar, pages::render(&page)).into_response());
    }
    if !asking && policy != DevicePolicy::Any {
        let (jar, csrf_token) = cookies::csrf_token(&state, jar);
        let page = confirm_page(
            &state,
            &opened,
            String::new(),
            csrf_token,
            ConfirmMode::SameBrowser,
        );
        return Ok((jar, page).into_response());
    }
    let who = requester(ip, ua, &headers, binding);
    let signed_in = signin::consume_link(&state, &opened, &who)
        .await
        .map_err(|e| e.for_app(&opened.app))?;
    let jar = forget_link(&state, jar, false);
    signed_in_response(&state, jar, signed_in).await
}

/// Sets the session cookie and goes on: the app, or the consent screen.
/// The new session joins the browser's accounts as the current one.
async fn signed_in_response(state: &AppState, jar: CookieJar, s: SignedIn) -> Result<Response> {
    let jar = crate::oidc::remember_session(state, jar, &s.session_secret).await?;
    Ok(match s.next {
        Next::Redirect(url) => (jar, Redirect::to(&url)).into_response(),
        Next::Consent {
            login_id,
            app,
            scope,
            locale,
            consent_token,
        } => {
            let (jar, csrf_token) = cookies::csrf_token(state, jar);
            let t = i18n::negotiate(Some(&locale), None, &app.settings.locale);
            // Who signs in and where they go next: the request tells.
            let req = state
                .store
                .conn()
                .await?
                .login_request(&login_id)
                .await?
                .ok_or_else(|| AppError::internal("the consented request is gone"))?;
            let page = ConsentPage {
                t,
                brand: Brand::of(&app, &state.config, t),
                items: ConsentPage::items(t, &scope, &req.email),
                email: req.email.clone(),
                returns_to: ConsentPage::returns_to(t, &req.redirect_uri),
                other_account: login_url_for(state, &req, None),
                login_id,
                csrf_token,
                consent_token,
                request: String::new(),
            };
            (jar, pages::render(&page)).into_response()
        }
    })
}

/// Form of `POST /consent`.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The login request being finished.
    pub login_id: Option<String>,
    /// Names the session that may answer (`signin::consent_token`).
    pub consent_token: Option<String>,
    /// Instead of `login_id` and `consent_token`, for someone who was
    /// already signed in: the sealed request (`oidc::PendingConsent`).
    pub request: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
}

/// `POST /consent`: Allow remembers the grant and continues; Deny returns
/// `access_denied` to the app.
pub async fn consent_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    AppForm(form): AppForm<ConsentForm>,
) -> Result<Response> {
    // The consent form names its request: its errors wear the app's brand.
    let app = app_of_request(&state, form.login_id.as_deref(), None).await;
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        return Err(dressed(AppError::Csrf, app));
    }
    let sealed = form.request.as_deref().filter(|r| !r.is_empty());
    let login_id = match sealed {
        Some(_) => "",
        None => require("login_id", &form.login_id)?,
    };
    let decision = match form.decision.as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return Err(AppError::InvalidRequest(
                "decision must be allow or deny.".into(),
            ))
        }
    };
    let sessions = cookies::session_secrets(&state, &jar);
    if let Some(sealed) = sealed {
        let url = crate::oidc::decide_pending_consent(&state, sealed, &sessions, decision).await?;
        return Ok(Redirect::to(&url).into_response());
    }
    let url = signin::decide_consent(
        &state,
        login_id,
        &sessions,
        form.consent_token.as_deref(),
        decision,
    )
    .await
    .map_err(|e| dressed(e, app))?;
    Ok(Redirect::to(&url).into_response())
}
