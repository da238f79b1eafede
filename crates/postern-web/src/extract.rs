//! Extractors that reject malformed input with our error shape, never axum's text.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use postern_auth::oidc::ClientCredentials;
use postern_auth::AuthError;

use crate::error::AppError;
use crate::AppState;

/// Largest accepted request body (SPEC §5).
pub const MAX_BODY: usize = 64 * 1024;

fn body_error(status: StatusCode, what: &str, detail: String) -> AppError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType,
        _ => AppError::InvalidRequest(format!("The {what} could not be read: {detail}")),
    }
}

/// `axum::Json` with SPEC error shapes.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> AppError {
    let detail = match &e {
        JsonRejection::JsonDataError(d) => d.body_text(),
        JsonRejection::JsonSyntaxError(_) => "malformed JSON".to_owned(),
        _ => e.body_text(),
    };
    body_error(e.status(), "JSON body", detail)
}

/// `axum::Form` with SPEC error shapes.
#[derive(Debug)]
pub struct AppForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Self(v)),
            Err(e) => Err(form_rejection(e)),
        }
    }
}

fn form_rejection(e: FormRejection) -> AppError {
    let detail = match &e {
        FormRejection::FailedToDeserializeForm(d) => d.body_text(),
        FormRejection::FailedToDeserializeFormBody(d) => d.body_text(),
        _ => e.body_text(),
    };
    body_error(e.status(), "form", detail)
}

/// A JSON or `application/x-www-form-urlencoded` body, chosen by `Content-Type`.
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"))
        {
            AppJson::from_request(req, state)
                .await
                .map(|AppJson(v)| Self(v))
        } else if mime == "application/x-www-form-urlencoded" {
            AppForm::from_request(req, state)
                .await
                .map(|AppForm(v)| Self(v))
        } else {
            Err(AppError::UnsupportedMediaType)
        }
    }
}

/// `axum::extract::Query` with SPEC error shapes.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> AppError {
    AppError::InvalidRequest(format!(
        "The query string could not be read: {}",
        e.body_text()
    ))
}

/// `axum::extract::Path` with SPEC error shapes: a segment that is not
/// UTF-8 (`/admin/api/v1/apps/%FF`) is 400 `invalid_request` in our JSON
/// (or page), never axum's plain text.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(AppError::InvalidRequest(format!(
                "The URL could not be read: {}",
                e.body_text()
            ))),
        }
    }
}

/// The person's IP address: the socket peer, or the first untrusted hop of
/// `X-Forwarded-For` (every line of it, in order) when the peer is a trusted
/// proxy (`POSTERN_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        // Every line, in order: a proxy may add its own line after the
        // client's. A line that is not text is a malformed entry, which
        // stops the walk from the right there.
        let xff: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or("unreadable"))
            .collect();
        Ok(ClientIp(postern_core::net::client_ip(
            peer,
            &xff,
            &state.config.trusted_proxies,
        )))
    }
}

/// The socket peer's address, when the server runs on a socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The `User-Agent` header, bounded to 512 characters.
#[derive(Debug, Clone)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent(
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().filter(|c| !c.is_control()).take(512).collect()),
        ))
    }
}

/// Whether the client asked for JSON (`Accept: application/json`).
pub fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// Whether the client prefers an HTML page (a browser navigation).
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The `Accept-Language` header, bounded.
pub fn accept_language(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
}

// ---- client authentication (RFC 6749 §2.3.1) --------------------------------

fn form_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// Reads client credentials from `Authorization: Basic` (each part
/// form-urlencoded, RFC 6749 §2.3.1) or the form body; both at once is an
/// error (RFC 6749 §2.3).
pub fn client_credentials(
    authorization: Option<&str>,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials, AuthError> {
    if let Some(h) = authorization {
        // RFC 7235 §2.1: the scheme is case-insensitive.
        let Some(b64) = h
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("basic "))
            .map(|_| &h[6..])
        else {
            return Err(AuthError::ClientAuth);
        };
        let raw = STANDARD
            .decode(b64.trim())
            .map_err(|_| AuthError::ClientAuth)?;
        let raw = String::from_utf8(raw).map_err(|_| AuthError::ClientAuth)?;
        let (id, secret) = raw.split_once(':').ok_or(AuthError::ClientAuth)?;
        if form_secret.is_some() {
            return Err(AuthError::invalid(
                "Use one client authentication method, not two.",
            ));
        }
        let id = form_decode(id).ok_or(AuthError::ClientAuth)?;
        if form_id.is_some_and(|f| f != id) {
            return Err(AuthError::ClientAuth);
        }
        return Ok(ClientCredentials {
            client_id: Some(id),
            client_secret: form_decode(secret),
            basic: true,
        });
    }
    Ok(ClientCredentials {
        client_id: form_id.map(str::to_owned),
        client_secret: form_secret.map(str::to_owned),
        basic: false,
    })
}
