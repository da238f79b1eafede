//! Cross-cutting layers: security headers, error-format negotiation, the
//! whole-request deadline and request tracing that never records a query
//! string.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{AppError, RenderedError};
use crate::extract::{accept_language, wants_html, wants_json};
use crate::{i18n, pages, AppState};
use postern_store::Queries;

/// The Content-Security-Policy of every page: nothing from elsewhere, no
/// inline script or style, our own stylesheets and script only (the script
/// may ask this origin where a sign-in stands); images from https for apps'
/// logos. (No `form-action`: browsers apply it to the redirect that follows
/// a form, and sign-in forms end in a redirect to the app.)
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers SPEC §3.3 asks of every response; `Cache-Control:
/// no-store` unless the handler chose a cache policy itself.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// How long a request may take, from its head to its answer (a slow body
/// included), before it is answered 408 and its connection closed. The
/// request head itself has [`HEADER_READ_TIMEOUT`](crate::server::HEADER_READ_TIMEOUT).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Routes a page polls, which may one day hold a request open until
/// something happens (long polling): exempt from [`REQUEST_DEADLINE`].
pub const LONG_POLLING: &[&str] = &["/login/status"];

/// Answers 408 `invalid_request` when a request takes longer than
/// [`REQUEST_DEADLINE`]; the handler is dropped, so its transaction rolls
/// back and nothing half-done is stored.
pub async fn request_deadline(req: Request, next: Next) -> Response {
    if LONG_POLLING.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(res) => res,
        Err(_) => AppError::RequestTimeout.into_response(),
    }
}

/// Browser routes: errors become an HTML page unless the client asked for
/// JSON (`Accept: application/json`), SPEC §3.
pub async fn negotiate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let json = wants_json(req.headers());
    let asked = LanguageHints::of(&req);
    let res = next.run(req).await;
    match (json, res.extensions().get::<RenderedError>()) {
        (false, Some(err)) => html_error(&state, err.clone(), asked, res).await,
        _ => res,
    }
}

/// JSON endpoints that browsers may also post to: errors stay JSON unless
/// the client prefers HTML (a plain form navigation).
pub async fn negotiate_api(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let html = wants_html(req.headers());
    let asked = LanguageHints::of(&req);
    let res = next.run(req).await;
    match (html, res.extensions().get::<RenderedError>()) {
        (true, Some(err)) => html_error(&state, err.clone(), asked, res).await,
        _ => res,
    }
}

/// What a request says about the language of an error page: `ui_locales`
/// and `client_id` from its query, and `Accept-Language`.
struct LanguageHints {
    ui_locales: Option<String>,
    client_id: Option<String>,
    accept_language: Option<String>,
}

impl LanguageHints {
    fn of(req: &Request) -> Self {
        let (ui_locales, client_id) = locale_params(req.uri().query());
        LanguageHints {
            ui_locales,
            client_id,
            accept_language: accept_language(req.headers()),
        }
    }
}

/// `ui_locales` and `client_id` of a query string.
fn locale_params(query: Option<&str>) -> (Option<String>, Option<String>) {
    let (mut ui, mut client) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "ui_locales" if v.len() <= 100 => ui = Some(v.into_owned()),
            "client_id" if postern_core::ClientId::parse(&v).is_ok() => {
                client = Some(v.into_owned())
            }
            _ => {}
        }
    }
    (ui, client)
}

/// The language of an error page (SPEC §3.3): the one the handler named
/// (the login request's), else `ui_locales` — carried by the way forward,
/// which holds the login request's language, or by the request's query —
/// then `Accept-Language`, then the app's default.
async fn error_strings(
    state: &AppState,
    err: &RenderedError,
    asked: LanguageHints,
) -> &'static i18n::Strings {
    if let Some(lang) = err.lang {
        return i18n::strings(lang);
    }
    let from_retry = err
        .retry
        .as_deref()
        .map(|r| locale_params(r.split_once('?').map(|(_, q)| q)))
        .unwrap_or_default();
    let ui = from_retry.0.or(asked.ui_locales);
    let client_id = from_retry.1.or(asked.client_id);
    let app_locale = match client_id {
        // A failing database is not asked again for a language.
        Some(_) if err.status.is_server_error() => None,
        Some(c) => match state.store.conn().await {
            Ok(mut conn) => conn.app(&c).await.ok().flatten().map(|a| a.settings.locale),
            Err(_) => None,
        },
        None => None,
    };
    i18n::negotiate(
        ui.as_deref(),
        asked.accept_language.as_deref(),
        app_locale.as_deref().unwrap_or("en"),
    )
}

async fn html_error(
    state: &AppState,
    err: RenderedError,
    asked: LanguageHints,
    original: Response,
) -> Response {
    let t = error_strings(state, &err, asked).await;
    let mut page = pages::error_page(t, &err).into_response();
    *page.status_mut() = err.status;
    if let Some(retry) = original.headers().get(header::RETRY_AFTER) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    page
}

/// Request spans carry the method and the matched route, never the URI:
/// the query strings of `/verify-email` and `/authorize` hold secrets.
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    impl Fn(&Request) -> tracing::Span + Clone,
    tower_http::trace::DefaultOnRequest,
    DefaultOnResponse,
> {
    TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| "<unmatched>".to_owned());
            tracing::info_span!("request", method = %req.method(), route = %route)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
}
