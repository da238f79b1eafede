//! SPEC §3.2 OpenID Connect endpoints.

use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_core::oauth::Scope;
use postern_core::{App, ClientId};
use postern_store::{Queries, SessionQueries};
use serde::Deserialize;
use serde_json::Value;

use crate::cookies;
use crate::error::{AppError, Result};
use crate::extract::{accept_language, AppForm, AppQuery, ClientIp};
use crate::i18n;
use crate::oidc::{self, BrowserAccount, LiveSession, TokenRequest};
use crate::pages::{self, filters, Brand, ChooserPage, ConsentPage, SignedOutPage};
use crate::signin::{self, authorization_response, RawAuthParams};
use crate::AppState;

/// OIDC Discovery 1.0 §4: `GET /.well-known/openid-configuration`.
pub async fn discovery(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(oidc::discovery(&state)),
    )
        .into_response()
}

/// RFC 7517: `GET /jwks.json`, the active, next and recently retired keys.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            format!("public, max-age={}", crate::keys::JWKS_MAX_AGE),
        )],
        Json(state.keys.keys().jwks()),
    )
        .into_response()
}

/// The parameters of an authorization request (OIDC Core §3.1.2.1).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Must be `query` when given.
    pub response_mode: Option<String>,
    /// `none`, `login`, `consent`, `select_account`.
    pub prompt: Option<String>,
    /// Seconds since the last authentication.
    pub max_age: Option<String>,
    /// Pre-fills `/login`.
    pub login_hint: Option<String>,
    /// Not supported (OIDC Core §6).
    pub request: Option<String>,
    /// Not supported (OIDC Core §6).
    pub request_uri: Option<String>,
    /// An ID token Postern issued, naming the account the app expects.
    pub id_token_hint: Option<String>,
    /// Chosen on the account chooser: a session id of this browser.
    pub account: Option<String>,
    /// CSRF token of the chooser form.
    pub csrf_token: Option<String>,
    /// The rest.
    #[serde(flatten)]
    pub raw: RawAuthParams,
}

/// OIDC Core §3.1.2: `GET /authorize`.
pub async fn authorize_get(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    AppQuery(params): AppQuery<AuthorizeParams>,
) -> Result<Response> {
    authorize(state, jar, &headers, ip, params, false).await
}

/// OIDC Core §3.1.2.1: `POST /authorize` (form-encoded), also the account
/// chooser's "Continue".
pub async fn authorize_post(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    AppForm(params): AppForm<AuthorizeParams>,
) -> Result<Response> {
    authorize(state, jar, &headers, ip, params, true).await
}

struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
    select_account: bool,
}

fn parse_prompt(p: Option<&str>) -> Option<Prompt> {
    let mut out = Prompt {
        none: false,
        login: false,
        consent: false,
        select_account: false,
    };
    for v in p.unwrap_or("").split_ascii_whitespace() {
        match v {
            "none" => out.none = true,
            "login" => out.login = true,
            "consent" => out.consent = true,
            "select_account" => out.select_account = true,
            _ => return None,
        }
    }
    // OIDC Core §3.1.2.1: `none` with any other value is an error.
    if out.none && (out.login || out.consent || out.select_account) {
        return None;
    }
    Some(out)
}

async fn authorize(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: &HeaderMap,
    ip: ClientIp,
    p: AuthorizeParams,
    posted: bool,
) -> Result<Response> {
    // Client and redirect URI first: until both are valid, errors are pages
    // and never redirects (OIDC Core §3.1.2.6, RFC 6749 §4.1.2.1).
    let client_id = p.raw.client_id.as_deref().filter(|c| !c.is_empty());
    let client_id =
        client_id.ok_or_else(|| AppError::InvalidRequest("client_id is required.".into()))?;
    // A client id that cannot exist is an unknown client (and never reaches SQL).
    let app = if ClientId::parse(client_id).is_err() {
        None
    } else {
        state.store.conn().await?.app(client_id).await?
    };
    let app = app.ok_or(AppError::InvalidClient)?;
    let redirect_uri = p.raw.redirect_uri.clone().filter(|r| !r.is_empty());
    let redirect_uri = redirect_uri.ok_or_else(|| {
        AppError::InvalidRequest("redirect_uri is required.".into()).for_app(&app)
    })?;
    if !app.has_redirect_uri(&redirect_uri) {
        return Err(AppError::InvalidRedirectUri.for_app(&app));
    }
    let client_state = p
        .raw
        .state
        .as_deref()
        .filter(|s| s.len() <= 2048 && !s.chars().any(char::is_control));
    let fail = |code: &str, description: &str| -> Result<Response> {
        let url = authorization_response(
            &state,
            &redirect_uri,
            client_state,
            &[("error", code), ("error_description", description)],
        );
        Ok(Redirect::to(&url).into_response())
    };
    if p.request.is_some() {
        return fail(
            "request_not_supported",
            "Request objects are not supported.",
        );
    }
    if p.request_uri.is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported.");
    }
    if p.response_type.as_deref() != Some("code") {
        return fail(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        );
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return fail("invalid_request", "Only response_mode=query is supported.");
    }
    let Some(prompt) = parse_prompt(p.prompt.as_deref()) else {
        return fail(
            "invalid_request",
            "prompt has an unknown value or combines none with another.",
        );
    };
    let max_age = match p.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return fail("invalid_request", "max_age must be a non-negative integer."),
        },
    };
    let params = match signin::validate_auth_params(&state, &p.raw).await {
        Ok(params) => params,
        Err(e) => match e.kind() {
            AppError::InvalidRequest(msg) => return fail("invalid_request", msg),
            _ => return Err(e),
        },
    };

    // The accounts signed in on this browser, current first; ended ones
    // leave the cookie.
    let now = state.now();
    let mut accounts = oidc::browser_accounts(&state, &jar).await?;
    let mut jar = if accounts.len() != cookies::session_secrets(&state, &jar).len() {
        jar.add(oidc::accounts_cookie(&state, &accounts))
    } else {
        jar
    };
    let fresh_enough = |s: &LiveSession| max_age.is_none_or(|m| now - s.session.auth_time <= m);
    let usable = |a: &BrowserAccount| {
        oidc::session_fits_app(&state, &a.live.session, &app, ip.0) && fresh_enough(&a.live)
    };

    // The account chooser's answer: a CSRF-protected POST naming one of
    // this browser's sessions.
    let chosen = match p.account.as_deref().filter(|a| posted && !a.is_empty()) {
        None => None,
        Some(_) if !cookies::csrf_ok(&state, &jar, p.csrf_token.as_deref()) => {
            // The way forward is the chooser again, for the same request.
            let again = format!(
                "/authorize?response_type=code&prompt=select_account&{}",
                params.login_query(None)
            );
            return Err(AppError::Csrf
                .with_retry(state.config.url(&again))
                .for_app(&app));
        }
        Some("current") => accounts.iter().position(&usable),
        Some(id) => accounts
            .iter()
            .position(|a| a.live.session.id == id && usable(a)),
    };

    // OIDC Core §3.1.2.1 hints narrow the accounts to the one the app means.
    let id_hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => match oidc::verify_id_token_hint(&state, h).await {
            Ok(hint) if hint.aud == app.client_id => Some(hint),
            _ => {
                return fail(
                    "invalid_request",
                    "id_token_hint is not valid for this client.",
                )
            }
        },
    };
    let hinted_email = p
        .login_hint
        .as_deref()
        .filter(|h| h.len() <= 254)
        .and_then(|h| postern_core::EmailAddress::parse(h).ok());
    let named = |a: &BrowserAccount| match (&id_hint, &hinted_email) {
        (Some(h), _) => {
            h.sub.as_deref() == Some(oidc::subject(&state, &app, &a.live.user.id).as_str())
        }
        (None, Some(e)) => a.live.user.email == e.as_str(),
        (None, None) => true,
    };
    let candidates: Vec<usize> = (0..accounts.len())
        .filter(|&i| usable(&accounts[i]) && named(&accounts[i]))
        .collect();

    let picked = match chosen {
        Some(i) => Some(i),
        None if prompt.login => None,
        None if candidates.len() == 1 && !prompt.select_account => Some(candidates[0]),
        None if candidates.is_empty() => None,
        // OIDC Core §3.1.2.6: several accounts and no way to ask.
        None if prompt.none => {
            return fail(
                "account_selection_required",
                "Several accounts are signed in; the user must choose one.",
            )
        }
        None => {
            let t = i18n::negotiate(
                params.ui_locales.as_deref(),
                accept_language(headers).as_deref(),
                &app.settings.locale,
            );
            let (jar, csrf_token) = cookies::csrf_token(&state, jar);
            let mut hidden = crate::routes::signin::hidden_fields(&params);
            hidden.push(("response_type", "code".to_owned()));
            if let Some(m) = max_age {
                hidden.push(("max_age", m.to_string()));
            }
            if prompt.consent {
                hidden.push(("prompt", "consent".to_owned()));
            }
            let page = ChooserPage {
                t,
                brand: Brand::of(&app, &state.config, t),
                accounts: candidates
                    .iter()
                    .map(|&i| pages::ChooserAccount {
                        session_id: accounts[i].live.session.id.clone(),
                        email: accounts[i].live.user.email.clone(),
                    })
                    .collect(),
                hidden,
                csrf_token,
                // "Use another account" leads to the email form, which
                // offers "Back" to this chooser.
                other_account: state
                    .config
                    .url(&format!("/login?{}&from=chooser", params.login_query(None))),
            };
            return Ok((jar, pages::render(&page)).into_response());
        }
    };
    let Some(picked) = picked else {
        if prompt.none {
            return fail("login_required", "The user is not signed in.");
        }
        let hint = p.login_hint.as_deref().filter(|h| h.len() <= 254);
        let url = state
            .config
            .url(&format!("/login?{}", params.login_query(hint)));
        return Ok((jar, Redirect::to(&url)).into_response());
    };
    // The account used last is the browser's current one.
    if picked != 0 {
        let used = accounts.remove(picked);
        accounts.insert(0, used);
        jar = jar.add(oidc::accounts_cookie(&state, &accounts));
    }
    let live = accounts[0].live.clone();
    oidc::touch(&state, &live.session).await?;

    // SPEC §3.3: `ui_locales`, then `Accept-Language`, then the app's default.
    let t = i18n::negotiate(
        params.ui_locales.as_deref(),
        accept_language(headers).as_deref(),
        &app.settings.locale,
    );

    let granted = match state
        .store
        .conn()
        .await?
        .grant(&live.user.id, &app.client_id)
        .await?
    {
        Some(g) => params.scope.is_subset_of(&Scope::parse(Some(&g))),
        None => false,
    };
    let needs_consent = app.needs_consent() && (!granted || prompt.consent);
    if needs_consent && prompt.none {
        return fail(
            "consent_required",
            "The user has not granted this app access yet.",
        );
    }
    if needs_consent {
        // Nothing is stored until the person answers: the form carries the
        // request sealed (docs/decisions.md, "Consent for a signed-in person").
        let pending = oidc::PendingConsent {
            client_id: app.client_id.clone(),
            redirect_uri: params.redirect_uri.clone(),
            scope: params.scope.to_string(),
            state: params.state.clone(),
            nonce: params.nonce.clone(),
            code_challenge: params.code_challenge.clone(),
            session_id: live.session.id.clone(),
            expires_at: state.now() + signin::CONSENT_WINDOW,
        };
        let (jar, csrf_token) = cookies::csrf_token(&state, jar);
        let page = ConsentPage {
            t,
            brand: Brand::of(&app, &state.config, t),
            items: ConsentPage::items(t, &params.scope, &live.user.email),
            email: live.user.email.clone(),
            returns_to: ConsentPage::returns_to(t, &params.redirect_uri),
            other_account: state
                .config
                .url(&format!("/login?{}", params.login_query(None))),
            login_id: String::new(),
            csrf_token,
            consent_token: String::new(),
            request: pending.seal(&state),
        };
        return Ok((jar, pages::render(&page)).into_response());
    }
    // Single sign-on: the live session signs the person in, keeping its
    // auth_time. A session holds a bounded number of unredeemed codes.
    let mut tx = state.store.begin().await?;
    let code = oidc::mint_sso_code(
        &state,
        &mut tx,
        oidc::CodeGrant {
            client_id: &app.client_id,
            user_id: &live.user.id,
            session_id: &live.session.id,
            redirect_uri: &params.redirect_uri,
            code_challenge: params.code_challenge.as_deref(),
            nonce: params.nonce.as_deref(),
            scope: &params.scope.to_string(),
            amr: &live.session.amr,
            auth_time: live.session.auth_time,
        },
    )
    .await?;
    let url = match code {
        Some(code) => {
            tx.commit().await.map_err(postern_store::StoreError::from)?;
            authorization_response(
                &state,
                &params.redirect_uri,
                params.state.as_deref(),
                &[("code", &code)],
            )
        }
        None => oidc::too_many_codes(&state, &params.redirect_uri, params.state.as_deref()),
    };
    Ok((jar, Redirect::to(&url)).into_response())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    // RFC 7235 §2.1: the scheme is case-insensitive.
    let t = h
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| &h[7..])?;
    Some(t.trim().to_owned())
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// OIDC Core §3.1.3 / RFC 6749 §4.1.3, §6: `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(req): AppForm<TokenRequest>,
) -> Result<Response> {
    let creds = oidc::client_credentials(
        authorization(&headers),
        req.client_id.as_deref(),
        req.client_secret.as_deref(),
    )?;
    let app = oidc::authenticate_client(&state, &creds).await?;
    let tokens = oidc::token(&state, &app, &req).await?;
    Ok(([(header::PRAGMA, "no-cache")], Json(tokens)).into_response())
}

/// OIDC Core §5.3: `GET /userinfo` with a Bearer token.
pub async fn userinfo_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let token = bearer(&headers).ok_or(AppError::NoBearer)?;
    Ok(Json(oidc::userinfo(&state, &token).await?))
}

/// OIDC Core §5.3.1: `POST /userinfo`, the token in the `Authorization`
/// header (any body, an empty one included) or as the form field
/// `access_token` of an `application/x-www-form-urlencoded` body (RFC 6750
/// §2.2; other bodies are not read). Both at once is 400 `invalid_request`
/// (RFC 6750 §2: one method per request).
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>> {
    let body = body.map_err(|e| match e.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        _ => AppError::InvalidRequest("The body could not be read.".into()),
    })?;
    let from_form = if is_form(&headers) {
        form_access_token(&body)?
    } else {
        None
    };
    let token = match (bearer(&headers), from_form) {
        (Some(_), Some(_)) => return Err(AppError::InvalidRequest(
            "Send the access token either in the Authorization header or in the form, not both."
                .into(),
        )),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(AppError::NoBearer),
    };
    Ok(Json(oidc::userinfo(&state, &token).await?))
}

/// Whether the body is `application/x-www-form-urlencoded`.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The `access_token` field of a form body; more than one is 400.
fn form_access_token(body: &[u8]) -> Result<Option<String>> {
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        if name == "access_token" {
            if found.is_some() {
                return Err(AppError::InvalidRequest(
                    "access_token is given more than once.".into(),
                ));
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}

/// Form of `/revoke` and `/introspect`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    /// The token.
    pub token: Option<String>,
    /// Ignored hint (RFC 7009 §2.1).
    pub token_type_hint: Option<String>,
    /// `client_secret_post`.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
}

async fn token_endpoint_client(
    state: &AppState,
    headers: &HeaderMap,
    f: &TokenForm,
) -> Result<App> {
    let creds = oidc::client_credentials(
        authorization(headers),
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    )?;
    oidc::authenticate_client(state, &creds).await
}

/// RFC 7009: `POST /revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(form): AppForm<TokenForm>,
) -> Result<Response> {
    let app = token_endpoint_client(&state, &headers, &form).await?;
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| AppError::InvalidRequest("token is required.".into()))?;
    oidc::revoke(&state, &app, token).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// RFC 7662: `POST /introspect` (confidential clients).
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(form): AppForm<TokenForm>,
) -> Result<Json<Value>> {
    let app = token_endpoint_client(&state, &headers, &form).await?;
    if app.settings.public {
        return Err(AppError::ClientAuth);
    }
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| AppError::InvalidRequest("token is required.".into()))?;
    Ok(Json(oidc::introspect(&state, &app, token).await?))
}

/// RP-Initiated Logout 1.0 §2 parameters.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutParams {
    /// An ID token Postern issued (expired ones are accepted).
    pub id_token_hint: Option<String>,
    /// Registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// The client, when no hint is given.
    pub client_id: Option<String>,
    /// The confirmation page's CSRF token.
    pub csrf_token: Option<String>,
    /// Set by the confirmation page's button.
    pub confirm: Option<String>,
}

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
    AppQuery(p): AppQuery<LogoutParams>,
) -> Result<Response> {
    logout(state, jar, &headers, p, false).await
}

/// `POST /logout`.
pub async fn logout_post(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    AppForm(p): AppForm<LogoutParams>,
) -> Result<Response> {
    logout(state, jar, &headers, p, true).await
}

/// RP-Initiated Logout 1.0. Only this browser's accounts (its session
/// cookie) are ever signed out: the hint selects among them and never ends
/// a session by itself, so an ID token someone saw once signs no one out.
/// With a valid `id_token_hint` naming an account of this browser, that
/// account's session ends at once (every instance sees the revocation in
/// the database) and the other accounts stay. Otherwise, when the browser
/// has accounts, the person is asked first (§2: a request without a hint
/// may come from any site): the confirmation's CSRF-protected POST signs
/// out every account of this browser. Then back to a registered
/// `post_logout_redirect_uri`, or "signed out".
async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: &HeaderMap,
    p: LogoutParams,
    posted: bool,
) -> Result<Response> {
    let hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some(oidc::verify_id_token_hint(&state, h).await.map_err(|_| {
            AppError::InvalidRequest("id_token_hint is not an ID token issued by Postern.".into())
        })?),
        None => None,
    };
    let client_id = match (&hint, p.client_id.as_deref()) {
        (Some(h), Some(c)) if h.aud != c => {
            return Err(AppError::InvalidRequest(
                "client_id does not match id_token_hint.".into(),
            ))
        }
        (Some(h), _) => Some(h.aud.clone()),
        (None, c) => c.map(str::to_owned),
    };
    let app = match &client_id {
        Some(c) if ClientId::parse(c).is_ok() => state.store.conn().await?.app(c).await?,
        _ => None,
    };
    let redirect = match p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => match &app {
            Some(app) if app.has_post_logout_redirect_uri(uri) => Some(uri.to_owned()),
            _ => {
                return Err(AppError::InvalidRequest(
                    "post_logout_redirect_uri is not registered for this client.".into(),
                ))
            }
        },
    };
    let accounts = oidc::browser_accounts(&state, &jar).await?;
    let confirmed =
        posted && p.confirm.is_some() && cookies::csrf_ok(&state, &jar, p.csrf_token.as_deref());
    // The browser's accounts the hint names: its session, or its user.
    let named = |a: &BrowserAccount| match (&hint, &app) {
        (Some(h), app) => {
            h.sid.as_deref() == Some(a.live.session.id.as_str())
                || app.as_ref().is_some_and(|app| {
                    h.sub.as_deref() == Some(oidc::subject(&state, app, &a.live.user.id).as_str())
                })
        }
        (None, _) => false,
    };
    let ending: Vec<&BrowserAccount> = if confirmed {
        accounts.iter().collect()
    } else {
        accounts.iter().filter(|a| named(a)).collect()
    };
    if !confirmed && ending.is_empty() && !accounts.is_empty() {
        let t = i18n::negotiate(
            None,
            accept_language(headers).as_deref(),
            app.as_ref().map_or("en", |a| a.settings.locale.as_str()),
        );
        let mut hidden: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in [
            ("id_token_hint", &p.id_token_hint),
            ("client_id", &client_id),
            ("post_logout_redirect_uri", &redirect),
            ("state", &p.state),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                hidden.push((name, v.clone()));
            }
        }
        let (jar, csrf_token) = cookies::csrf_token(&state, jar);
        let page = LogoutConfirmPage {
            t,
            a: i18n::account::strings(t.lang),
            brand: Brand::default(),
            accounts: accounts.iter().map(|a| a.live.user.email.clone()).collect(),
            hidden,
            csrf_token,
        };
        return Ok((jar, pages::render(&page)).into_response());
    }
    // With no account on this browser there is nothing to end: the hint's
    // session belongs to another browser and stays.
    if !ending.is_empty() {
        let now = state.now();
        let mut tx = state.store.begin().await?;
        for a in &ending {
            tx.revoke_session(&a.live.session.id, now).await?;
        }
        tx.commit().await.map_err(postern_store::StoreError::from)?;
    }
    let remaining: Vec<BrowserAccount> = accounts
        .iter()
        .filter(|a| {
            !ending
                .iter()
                .any(|e| e.live.session.id == a.live.session.id)
        })
        .cloned()
        .collect();
    let mut jar = jar.add(oidc::accounts_cookie(&state, &remaining));
    if remaining.is_empty() {
        jar = jar.add(cookies::build(
            &state,
            cookies::ACCOUNT,
            String::new(),
            Some(0),
        ));
    }
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

/// CORS for the endpoints browser apps call (SPEC §3.2): only the origins of
/// registered redirect URIs, nothing else.
pub async fn cors(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = match &origin {
        Some(o) => state.app_origins().await.contains(o),
        None => false,
    };
    let preflight = req.method() == Method::OPTIONS;
    let mut res = if preflight {
        axum::http::StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.append(header::VARY, header::HeaderValue::from_static("Origin"));
    if let (true, Some(o)) = (allowed, origin) {
        if let Ok(v) = header::HeaderValue::from_str(&o) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            if preflight {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    header::HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    header::HeaderValue::from_static("authorization, content-type"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    header::HeaderValue::from_static("600"),
                );
            }
        }
    }
    res
}

/// `OPTIONS` on the CORS endpoints: the [`cors`] layer answers preflights.
pub async fn preflight() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}
