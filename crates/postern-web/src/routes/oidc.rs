//! SPEC §3.2 OpenID Connect endpoints.

use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use postern_core::App;
use serde::Deserialize;
use serde_json::Value;

use crate::cookies;
use crate::error::{AppError, ErrorBody, Result};
use crate::extract::{accept_language, AppForm, AppQuery, ClientIp};
use crate::i18n;
use crate::{render, AppState};
use postern_auth::oidc::{self, AuthorizeInput, Chosen, TokenRequest};
use postern_auth::AuthError;

/// OIDC Discovery 1.0 §4: `GET /.well-known/openid-configuration`.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oidc",
    responses((status = 200, description = "The provider metadata.", body = crate::openapi::Discovery)),
)]
pub async fn discovery(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(oidc::discovery(&state)),
    )
        .into_response()
}

/// RFC 7517: `GET /jwks.json`, the active, next and recently retired keys.
#[utoipa::path(
    get,
    path = "/jwks.json",
    tag = "oidc",
    responses((status = 200, description = "The JWK Set.", body = crate::openapi::Jwks)),
)]
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

/// OIDC Core §3.1.2: `GET /authorize`.
pub async fn authorize_get(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    AppQuery(input): AppQuery<AuthorizeInput>,
) -> Result<Response> {
    authorize(state, jar, &headers, ip, input, false).await
}

/// OIDC Core §3.1.2.1: `POST /authorize` (form-encoded), also the account
/// chooser's "Continue".
pub async fn authorize_post(
    state: State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    ip: ClientIp,
    AppForm(input): AppForm<AuthorizeInput>,
) -> Result<Response> {
    authorize(state, jar, &headers, ip, input, true).await
}

/// Checks the request, reads the browser's accounts and the chooser's
/// answer, asks the service what comes next and renders it.
async fn authorize(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: &HeaderMap,
    ip: ClientIp,
    input: AuthorizeInput,
    posted: bool,
) -> Result<Response> {
    let req = oidc::authorize_request(&state, &input).await?;
    // The accounts signed in on this browser, current first; ended ones
    // leave the cookie.
    let accounts = crate::browser::accounts(&state, &jar).await?;
    let jar = if accounts.len() != cookies::session_secrets(&state, &jar).len() {
        jar.add(crate::browser::accounts_cookie(&state, &accounts))
    } else {
        jar
    };
    // The account chooser's answer: a CSRF-protected POST naming one of
    // this browser's sessions.
    let chosen = match input.account.as_deref().filter(|a| posted && !a.is_empty()) {
        None => Chosen::Nobody,
        Some(_) if !cookies::csrf_ok(&state, &jar, input.csrf_token.as_deref()) => {
            // The way forward is the chooser again, for the same request.
            let again = format!(
                "/authorize?response_type=code&prompt=select_account&{}",
                req.params.login_query(None)
            );
            return Err(AppError::Csrf
                .with_retry(state.config.url(&again))
                .for_app(&req.params.app));
        }
        Some("current") => Chosen::Current,
        Some(id) => Chosen::Session(id.to_owned()),
    };
    let outcome = oidc::authorize(&state, &req, &accounts, chosen, ip.0).await?;
    let t = i18n::negotiate(
        req.params.ui_locales.as_deref(),
        accept_language(headers).as_deref(),
        &req.params.app.settings.locale,
    );
    Ok(render::authorize(&state, jar, t, &req, accounts, outcome))
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
#[utoipa::path(
    post,
    path = "/token",
    tag = "oidc",
    security((), ("client_basic" = [])),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens (RFC 6749 §5.1, OIDC Core §3.1.3.3).", body = postern_auth::oidc::TokenResponse),
        (status = 400, description = "RFC 6749 §5.2: `invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`.", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
    ),
)]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(req): AppForm<TokenRequest>,
) -> Result<Response> {
    let creds = crate::extract::client_credentials(
        authorization(&headers),
        req.client_id.as_deref(),
        req.client_secret.as_deref(),
    )?;
    let app = oidc::authenticate_client(&state, &creds).await?;
    let tokens = oidc::token(&state, &app, &req).await?;
    Ok(([(header::PRAGMA, "no-cache")], Json(tokens)).into_response())
}

/// OIDC Core §5.3: `GET /userinfo` with a Bearer token.
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "oidc",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Claims about the person.", body = crate::openapi::Userinfo),
        (status = 401, description = "No access token (`invalid_request`) or an invalid one (`invalid_token`).", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "RFC 6750 §3"))),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = "oidc",
    security((), ("access_token" = [])),
    request_body(content = Option<UserinfoForm>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Claims about the person.", body = crate::openapi::Userinfo),
        (status = 400, description = "`invalid_request`: the token both in the header and in the form, or twice in the form.", body = ErrorBody),
        (status = 401, description = "No access token (`invalid_request`) or an invalid one (`invalid_token`).", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "RFC 6750 §3"))),
    ),
)]
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

/// The form body `POST /userinfo` reads (RFC 6750 §2.2); other bodies are
/// ignored. Only for the document: the handler reads the raw body.
#[derive(Debug, utoipa::ToSchema)]
pub struct UserinfoForm {
    /// The access token, instead of the `Authorization` header.
    pub access_token: Option<String>,
}

/// Form of `/revoke` and `/introspect`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// The token.
    #[schema(value_type = String, required = true)]
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
    let creds = crate::extract::client_credentials(
        authorization(headers),
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    )?;
    Ok(oidc::authenticate_client(state, &creds).await?)
}

/// RFC 7009: `POST /revoke`.
#[utoipa::path(
    post,
    path = "/revoke",
    tag = "oidc",
    security((), ("client_basic" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2): an empty body."),
        (status = 400, description = "`invalid_request`: no token.", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "oidc",
    security(("client_basic" = []), ()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "What the token is; `{\"active\": false}` for anything not live.", body = crate::openapi::Introspection),
        (status = 400, description = "`invalid_request`: no token.", body = ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"postern\"`"))),
    ),
)]
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppForm(form): AppForm<TokenForm>,
) -> Result<Json<Value>> {
    let app = token_endpoint_client(&state, &headers, &form).await?;
    if app.settings.public {
        return Err(AppError::Auth(AuthError::ClientAuth));
    }
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| AppError::InvalidRequest("token is required.".into()))?;
    Ok(Json(oidc::introspect(&state, &app, token).await?))
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
