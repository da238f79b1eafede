//! SPEC §3.1 sign-in endpoints and the hosted pages around them.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use postern_auth::oidc;
use postern_auth::signin::{self, Decision, RawAuthParams, Requester, Waiting};
use postern_auth::AuthError;

use crate::cookies;
use crate::error::{AppError, Result, TokenProblem};
use crate::extract::{accept_language, AppForm, AppQuery, ClientIp, JsonOrForm, UserAgent};
use crate::i18n::{self, fill, Strings};
use crate::pages::{self, Brand, CheckPage, LoginPage};
use crate::{render, AppState};

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

pub(crate) fn requester(
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

pub(crate) fn require<'a>(field: &'static str, v: &'a Option<String>) -> Result<&'a str> {
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

/// `GET /login`: the email form, for an app and destination.
pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppQuery(q): AppQuery<LoginQuery>,
) -> Result<Response> {
    require("client_id", &q.params.client_id)?;
    let params = signin::validate_auth_params(&state, &q.params).await?;
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    let email = q
        .login_hint
        .filter(|h| h.len() <= 254 && !h.chars().any(char::is_control))
        .unwrap_or_default();
    let page = LoginPage {
        t: i18n::negotiate(
            params.ui_locales.as_deref(),
            accept_language(&headers).as_deref(),
            &params.app.settings.locale,
        ),
        brand: Brand::of(&params.app, &state.config),
        csrf_token,
        hidden: hidden_fields(&params),
        email,
    };
    Ok((jar, pages::render(&page)).into_response())
}

/// Form of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The address.
    pub email: Option<String>,
    /// Authorization parameters.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// `POST /login`: the hosted form. Binds this browser to the request and
/// shows "check your email".
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
                Ok(params) => {
                    let again = format!("/login?{}", params.login_query(form.email.as_deref()));
                    let csrf = AppError::Csrf.with_retry(state.config.url(&again));
                    AppError::ForApp(Box::new(csrf), params.app.settings.locale)
                }
                Err(_) => AppError::Csrf,
            },
        );
    }
    require("client_id", &form.params.client_id)?;
    let params = signin::validate_auth_params(&state, &form.params).await?;
    let back = state.config.url(&format!(
        "/login?{}",
        params.login_query(form.email.as_deref())
    ));
    let email = require("email", &form.email).map_err(|e| e.with_retry(back.clone()))?;
    let (jar, binding) = ensure_binding(&state, jar);
    let sent = signin::request_link(
        &state,
        &params,
        email,
        &requester(ip, ua, &headers, Some(binding)),
    )
    .await
    .map_err(|e| {
        let e = AppError::from(e);
        match e.auth() {
            Some(AuthError::InvalidRequest(_) | AuthError::RateLimited { .. }) => {
                e.with_retry(back)
            }
            _ => e,
        }
    })?;
    Ok((
        jar,
        Redirect::to(&format!("/login/check?id={}", sent.login_id)),
    )
        .into_response())
}

/// Query of `GET /login/check`.
#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    /// The login request.
    pub id: Option<String>,
}

/// The language of the pages about a login request: the one it was made
/// in (SPEC §3.3: `ui_locales`, then `Accept-Language`, then the app's
/// default, negotiated when it was made).
pub(crate) fn request_strings(
    req: &postern_store::LoginRequest,
    app_locale: &str,
) -> &'static Strings {
    i18n::negotiate(Some(&req.locale), None, app_locale)
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
    let id = q.id.unwrap_or_default();
    let (req, app) = match signin::check(&state, &id, &who).await? {
        Waiting::SignedIn(signed_in) => return render::signed_in(&state, jar, signed_in).await,
        Waiting::Pending { request, app } => (request, app),
    };
    let now = state.now();
    let t = request_strings(&req, &app.settings.locale);
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    let page = CheckPage {
        t,
        brand: Brand::of(&app, &state.config),
        email: req.email.clone(),
        login_id: req.id.clone(),
        csrf_token,
        expires: fill(
            t.check_expires,
            &[("duration", &t.duration_down(req.expires_at - now))],
        ),
        resend_wait: (req.created_at + RESEND_AFTER - now).clamp(0, RESEND_AFTER),
        another_address: render::login_url(&state, &signin::flow_of(&req)),
        remote_number: req.remote_number.clone(),
        status_url: format!("/login/status?id={}", req.id),
    };
    Ok((jar, pages::render(&page)).into_response())
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

/// SPEC §3.1 `POST /login/code`: same outcome as the link, from the asking browser.
pub async fn submit_code(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    ua: UserAgent,
    AppForm(form): AppForm<CodeForm>,
) -> Result<Response> {
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        return Err(csrf_back_to_check(&form));
    }
    let login_id = require("login_id", &form.login_id)?;
    let code = require("code", &form.code)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let who = requester(ip, ua, &headers, binding);
    let signed_in = signin::redeem_code(&state, login_id, code, &who)
        .await
        .map_err(|e| match e {
            AuthError::WrongCode { .. } => {
                AppError::from(e).with_retry(format!("/login/check?id={login_id}"))
            }
            other => other.into(),
        })?;
    render::signed_in(&state, jar, signed_in).await
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
        return Err(csrf_back_to_check(&form));
    }
    let login_id = require("login_id", &form.login_id)?;
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let req = signin::asked_by(&state, login_id, binding.as_deref())
        .await?
        .ok_or_else(|| AppError::token(TokenProblem::Unknown))?;
    let who = requester(ip, ua, &headers, binding);
    let sent = signin::resend(&state, &req, &who).await.map_err(|e| {
        let lang = i18n::strings(&req.locale).lang;
        match e {
            // The earlier link still works: the way forward is back to it.
            AuthError::RateLimited { .. } => {
                AppError::from(e).with_retry(format!("/login/check?id={}", req.id))
            }
            other => {
                AppError::from(other).with_retry(render::login_url(&state, &signin::flow_of(&req)))
            }
        }
        .in_language(lang)
    })?;
    Ok(Redirect::to(&format!("/login/check?id={}", sent.login_id)).into_response())
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
    if !cookies::csrf_ok(&state, &jar, form.csrf_token.as_deref()) {
        return Err(AppError::Csrf);
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
        let answer = oidc::decide_pending_consent(&state, sealed, &sessions, decision).await?;
        return Ok(Redirect::to(&answer.to_url()).into_response());
    }
    let answer = signin::decide_consent(
        &state,
        login_id,
        &sessions,
        form.consent_token.as_deref(),
        decision,
    )
    .await?;
    Ok(Redirect::to(&answer.to_url()).into_response())
}
