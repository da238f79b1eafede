//! SPEC §3.1 sign-in endpoints: asking for a link (JSON and the hosted
//! email form). "Check your email" and code entry are in `check`, the link
//! itself in `verify`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_auth::signin::{self, RawAuthParams, Requester};
use postern_auth::AuthError;
use serde::{Deserialize, Serialize};

use crate::cookies;
use crate::error::{AppError, ErrorBody, ErrorHint, Result};
use crate::extract::{
    accept_language, wants_json, AppForm, AppQuery, ClientIp, JsonOrForm, UserAgent,
};
use crate::i18n::{self, Strings};
use crate::pages::{self, Brand, LoginPage};
use crate::AppState;

/// How long "send again" waits (the rule is the sign-in service's).
pub use postern_auth::signin::RESEND_AFTER;

/// Body of `POST /request-magic-link` (JSON or form).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RequestLinkBody {
    /// The address to sign in.
    #[schema(value_type = String, required = true)]
    pub email: Option<String>,
    /// Authorization parameters, validated as `/authorize` does.
    #[serde(flatten)]
    pub params: RawAuthParams,
}

/// SPEC §3.1 success body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkSentBody {
    /// Always "Magic link sent successfully".
    #[schema(value_type = String)]
    pub message: &'static str,
    /// The normalized address.
    pub email: String,
}

/// Whether a request comes from our own origin (SPEC §3.1: only then may
/// `/request-magic-link` bind the browser). `Sec-Fetch-Site` where the
/// browser sends it, else `Origin`; neither means not a browser page of ours.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
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
        passkey_lost: false,
    }
}

/// The browser's binding secret, creating one (and its cookie) if needed.
pub(crate) fn ensure_binding(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
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
#[utoipa::path(
    post,
    path = "/request-magic-link",
    tag = "sign-in",
    request_body(content(
        (RequestLinkBody = "application/json"),
        (RequestLinkBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The same answer whether or not the address has an account.", body = LinkSentBody),
        (status = 400, description = "`invalid_request` (malformed email, missing field), `invalid_client` (unknown or disabled app), `invalid_redirect_uri` (not registered).", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: a limit per address or per IP is spent.", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed."))),
    ),
)]
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
    let mut hidden = params.form_fields();
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
        passkey: (params.app.settings.passkeys != postern_core::PasskeyPolicy::Off
            && postern_auth::passkeys::available(state))
        .then(|| crate::routes::passkeys::words(t)),
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
            let message = t.email_error(&e);
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
            let e = match e.inner() {
                AuthError::RateLimited { .. } => {
                    // "Your newest email still works until 10:35."
                    let live = signin::live_email(&state, &app.client_id, &binding).await;
                    let e = AppError::from(e).with_retry(back);
                    match live {
                        Some(l) => e.with_hint(ErrorHint::LiveEmail {
                            check_url: l.check_url,
                            expires_at: l.expires_at,
                        }),
                        None => e,
                    }
                }
                AuthError::InvalidRequest(_) => AppError::from(e).with_retry(back),
                _ => e.into(),
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

/// The language of the pages about a login request: the one it was made
/// in (SPEC §3.3: `ui_locales`, then `Accept-Language`, then the app's
/// default, negotiated when it was made).
pub(crate) fn request_strings(
    req: &postern_store::LoginRequest,
    app_locale: &str,
) -> &'static Strings {
    i18n::negotiate(Some(&req.locale), None, app_locale)
}
