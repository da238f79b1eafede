//! The asking browser's side of a sign-in (SPEC §3.1): "check your email"
//! with code entry, the `remote` status poll, and "send again".

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_auth::signin::{self, Waiting};
use postern_auth::AuthError;
use postern_core::App;
use serde::{Deserialize, Serialize};

use super::signin::{request_strings, requester, require};
use crate::cookies;
use crate::error::{AppError, ErrorBody, ErrorHint, Result, TokenProblem};
use crate::extract::{wants_json, AppForm, AppQuery, ClientIp, UserAgent};
use crate::i18n;
use crate::pages::{self, Brand, CheckPage};
use crate::{render, AppState};

/// Query of `GET /login/check` and `GET /login/status`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// The login request.
    pub id: Option<String>,
    /// Set after "Send again": the page says when the new link went.
    pub resent: Option<String>,
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
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let who = requester(ip, ua, &headers, binding);
    let sessions = cookies::session_secrets(&state, &jar);
    let id = q.id.unwrap_or_default();
    let (app, req) = match signin::check(&state, &id, &who, sessions).await? {
        Waiting::Replaced(newer) => {
            return Ok(Redirect::to(&format!("/login/check?id={newer}")).into_response())
        }
        Waiting::SignedIn(signed_in) => return render::signed_in(&state, jar, signed_in).await,
        Waiting::Pending { request, app } => (app, request),
    };
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
    let another_address = login_url_for(state, req, Some(&req.email));
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
        expires: t.check_expires_in(req.expires_at - now),
        resend_wait: signin::resend_wait(req, now),
        another_address,
        remote_number: req.remote_number.clone(),
        status_url: format!("/login/status?id={}", req.id),
        check_url,
        code: view.code,
        error: view.error,
        resent: view
            .resent
            .then(|| postern_core::html::resent_at(t, req.created_at)),
        suggestion,
    };
    (jar, pages::render_with(status, &page)).into_response()
}

/// `/login` for the request's destination, with `email` filled in (or
/// none: "Use another account").
pub(crate) fn login_url_for(
    state: &AppState,
    req: &postern_store::LoginRequest,
    email: Option<&str>,
) -> String {
    render::login_url(state, &signin::flow_of(req), email)
}

/// Answer of `GET /login/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// `pending`, `approved` or `dead`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// `GET /login/status?id=…`: where a `remote` request stands, polled by the
/// asking page's script. Only the asking browser (its binding cookie) gets
/// an answer; any other gets the same 404 as an unknown id.
#[utoipa::path(
    get,
    path = "/login/status",
    tag = "sign-in",
    params(CheckQuery),
    responses(
        (status = 200, description = "Where the request stands.", body = StatusBody),
        (status = 400, description = "`invalid_request`: the query could not be read.", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown request, or not the asking browser.", body = ErrorBody),
    ),
)]
pub async fn login_status(
    State(state): State<AppState>,
    jar: CookieJar,
    AppQuery(q): AppQuery<CheckQuery>,
) -> Result<Json<StatusBody>> {
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let id = q.id.unwrap_or_default();
    let status = signin::remote_status(&state, &id, binding.as_deref()).await?;
    Ok(Json(StatusBody {
        status: status.as_str(),
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
    match form.login_id.as_deref().and_then(signin::check_url) {
        Some(url) => AppError::Csrf.with_retry(url),
        None => AppError::Csrf,
    }
}

/// `e`, worn by `app` when there is one.
pub(crate) fn dressed(e: AppError, app: Option<App>) -> AppError {
    match app {
        Some(app) => e.for_app(&app),
        None => e,
    }
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
        let app =
            signin::request_and_app(&state, form.login_id.as_deref(), Some(binding.as_deref()))
                .await
                .map(|(app, _)| app);
        return Err(dressed(csrf_back_to_check(&form), app));
    }
    let login_id = require("login_id", &form.login_id)?;
    let typed = form.code.as_deref().unwrap_or_default();
    let code = postern_core::code::clean(typed);
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let in_page = !wants_json(&headers);
    if in_page && !postern_core::code::is_code(&code) {
        // Not a code at all: said on the page, and no try is spent.
        let shown: String = typed.trim().chars().take(16).collect();
        if let Some((app, req)) =
            signin::live_request_of(&state, login_id, binding.as_deref()).await
        {
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
    let mut who = requester(ip, ua, &headers, binding.clone());
    who.passkey_lost = super::passkeys::lost(&state, &jar);
    let signed_in = match signin::redeem_code(&state, login_id, &code, &who).await {
        Ok(signed_in) => signed_in,
        Err(e) if super::verify::is_passkey_required(&e) => {
            let next = format!("/login/check?id={login_id}");
            return super::passkeys::required_or(&state, jar, &headers, e, next);
        }
        Err(e) => return code_refused(&state, jar, login_id, binding, e, typed, in_page).await,
    };
    render::signed_in(&state, jar, signed_in).await
}

/// What a refused code becomes: in a browser, a wrong code is the same
/// page again (status 400) with the code kept and how many tries are left,
/// and a dead request says why; every error wears the app's brand.
async fn code_refused(
    state: &AppState,
    jar: CookieJar,
    login_id: &str,
    binding: Option<String>,
    e: AuthError,
    typed: &str,
    in_page: bool,
) -> Result<Response> {
    // The request as it is now, read only by its asking browser.
    let read = signin::request_and_app(state, Some(login_id), Some(binding.as_deref())).await;
    let Some((app, req)) = read else {
        return Err(e.into());
    };
    let retry = login_url_for(state, &req, Some(&req.email));
    Err(match e.inner() {
        AuthError::WrongCode { .. } if in_page => {
            let t = request_strings(&req, &app.settings.locale);
            let view = CheckView {
                code: typed.trim().chars().take(16).collect(),
                error: Some(t.wrong_code(signin::tries_left(&req))),
                resent: false,
            };
            return Ok(check_view(state, jar, &app, &req, view));
        }
        AuthError::WrongCode { .. } => AppError::from(e)
            .with_retry(format!("/login/check?id={login_id}"))
            .for_app(&app),
        AuthError::Token {
            problem: TokenProblem::Used,
            ..
        } if req.consumed_at.is_some() => {
            let sessions = cookies::session_secrets(state, &jar);
            let problem = signin::why_dead(state, &req, sessions, TokenProblem::CodeUsed).await;
            AppError::token(problem).with_retry(retry).for_app(&app)
        }
        _ => AppError::from(e).for_app(&app),
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
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        let app =
            signin::request_and_app(&state, form.login_id.as_deref(), Some(binding.as_deref()))
                .await
                .map(|(app, _)| app);
        return Err(dressed(csrf_back_to_check(&form), app));
    }
    let login_id = require("login_id", &form.login_id)?;
    let req = signin::asked_by(&state, login_id, binding.as_deref())
        .await?
        .ok_or_else(|| AppError::token(TokenProblem::Unknown))?;
    let who = requester(ip, ua, &headers, binding);
    let sent = signin::resend(&state, &req, &who).await.map_err(|e| {
        let lang = i18n::strings(&req.locale).lang;
        let live = req.consumed_at.is_none() && req.expires_at > state.now();
        match e.inner() {
            // The earlier link still works: the way forward is back to it.
            AuthError::RateLimited { .. } if live => {
                let check_url = format!("/login/check?id={}", req.id);
                AppError::from(e)
                    .with_retry(check_url.clone())
                    .with_hint(ErrorHint::LiveEmail {
                        check_url,
                        expires_at: req.expires_at,
                    })
            }
            _ => AppError::from(e).with_retry(login_url_for(&state, &req, Some(&req.email))),
        }
        .in_language(lang)
    })?;
    Ok(Redirect::to(&format!("/login/check?id={}&resent=1", sent.login_id)).into_response())
}
