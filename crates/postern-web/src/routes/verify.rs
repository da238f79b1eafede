//! SPEC §3.1 `/verify-email`: a link opened in the asking browser signs in
//! at once; anywhere else it consumes nothing and the person is asked,
//! under the app's `device_policy`. And `/consent`, the answer to the
//! consent screen.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use postern_auth::oidc;
use postern_auth::signin::{self, Confirmed, Decision, OtherDevice, Visit};
use postern_auth::AuthError;
use postern_core::crypto::ungarble_token;
use serde::Deserialize;

use super::check::dressed;
use super::signin::{request_strings, requester, require};
use crate::cookies;
use crate::error::{AppError, Result, TokenProblem};
use crate::extract::{AppForm, AppQuery, ClientIp, UserAgent};
use crate::pages::{self, ApprovedPage, Brand, ConfirmPage};
use crate::{render, AppState};

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
    let token = match q.token.as_deref().map(ungarble_token) {
        Some(t) => t,
        None => cookies::link_token(&state, &jar)
            .ok_or_else(|| toward_account(&state, &jar, AppError::token(TokenProblem::Missing)))?,
    };
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let mut who = requester(ip, ua, &headers, binding);
    who.passkey_lost = super::passkeys::lost(&state, &jar);
    let visit = match signin::visit(&state, &token, &who).await {
        Err(e @ AuthError::InApp { .. }) if is_passkey_required(&e) => {
            let next = format!("/verify-email?token={token}");
            return super::passkeys::required_or(&state, jar, &headers, e, next);
        }
        other => other.map_err(|e| toward_account(&state, &jar, e.into()))?,
    };
    let (opened, other) = match visit {
        Visit::SignedIn(signed_in) => {
            let jar = forget_link(&state, jar, from_query);
            return render::signed_in(&state, jar, signed_in).await;
        }
        Visit::Elsewhere(opened, other) => (opened, other),
    };
    if from_query {
        let ttl = opened.request.expires_at - state.now();
        let jar = jar.add(cookies::link_cookie(&state, token, ttl));
        return Ok((jar, Redirect::to(cookies::LINK_PATH)).into_response());
    }
    let (jar, csrf_token) = cookies::csrf_token(&state, jar);
    // SPEC §3.1: under `same_browser` nothing this browser can do signs
    // anyone in, so the page says at once to use the code on the asking
    // device rather than offering a button that leads to that sentence.
    // The POST still answers the same (a scanner, an old page).
    Ok((jar, confirm_page(&state, &opened, token, csrf_token, other)).into_response())
}

/// Whether `e` is an app's refusal of a link or code because the person
/// has a passkey (issue 15 `required_after_first_sign_in`).
pub(crate) fn is_passkey_required(e: &AuthError) -> bool {
    matches!(e.inner(), AuthError::PasskeyRequired { .. })
}

/// An unknown or missing link has no app to go back to, except when this
/// browser is signing in to its own account page (the `/account` flow
/// cookie): then the way forward is `/account`, which starts again.
fn toward_account(state: &AppState, jar: &CookieJar, e: AppError) -> AppError {
    let unknown = matches!(
        e.auth(),
        Some(AuthError::Token {
            problem: TokenProblem::Unknown | TokenProblem::Missing,
            ..
        })
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
    mode: OtherDevice,
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
        token: if mode == OtherDevice::UseCode {
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
                match signin::open_link(&state, &ungarble_token(&token), ip.0).await {
                    Ok(opened) => e.for_app(&opened.app),
                    Err(_) => e,
                }
            }
            None => AppError::Csrf,
        });
    }
    let token = form
        .token
        .map(|t| ungarble_token(&t))
        .filter(|t| !t.is_empty())
        .or_else(|| cookies::link_token(&state, &jar))
        .unwrap_or_default();
    let binding = cookies::get(&state, &jar, cookies::BINDING);
    let mut who = requester(ip, ua, &headers, binding);
    who.passkey_lost = super::passkeys::lost(&state, &jar);
    let number = form.number.as_deref();
    let page = |jar, opened: &signin::OpenedLink, token, mode| {
        let (jar, csrf_token) = cookies::csrf_token(&state, jar);
        Ok((jar, confirm_page(&state, opened, token, csrf_token, mode)).into_response())
    };
    let confirmed = match signin::confirm(&state, &token, number, &who).await {
        Err(e) if is_passkey_required(&e) => {
            let next = format!("/verify-email?token={token}");
            return super::passkeys::required_or(&state, jar, &headers, e, next);
        }
        other => other?,
    };
    match confirmed {
        Confirmed::SignedIn(signed_in) => {
            let jar = forget_link(&state, jar, false);
            render::signed_in(&state, jar, signed_in).await
        }
        Confirmed::AskNumber(opened) => page(jar, &opened, token, OtherDevice::TypeNumber),
        Confirmed::UseCode(opened) => page(jar, &opened, String::new(), OtherDevice::UseCode),
        Confirmed::Approved(opened) => {
            let t = request_strings(&opened.request, &opened.app.settings.locale);
            let page = ApprovedPage {
                t,
                brand: Brand::of(&opened.app, &state.config, t),
            };
            let jar = forget_link(&state, jar, false);
            Ok((jar, pages::render(&page)).into_response())
        }
    }
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
    let app = signin::request_and_app(&state, form.login_id.as_deref(), None)
        .await
        .map(|(app, _)| app);
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
    .await
    .map_err(|e| dressed(e.into(), app))?;
    Ok(Redirect::to(&answer.to_url()).into_response())
}
