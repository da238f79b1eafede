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

use axum::http::Method;
use axum_extra::extract::cookie::CookieJar;

use crate::error::{AppError, RenderedError};
use crate::extract::{accept_language, wants_html, wants_json};
use crate::{cookies, i18n, pages, render, AppState};

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
    // A handler may allow its own origin to frame it (the development
    // inbox's sandboxed email preview); every other response is DENY.
    h.entry("x-frame-options")
        .or_insert(HeaderValue::from_static("DENY"));
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
    let asked = RequestFacts::of(&req);
    let res = next.run(req).await;
    match (json, res.extensions().get::<RenderedError>()) {
        (false, Some(err)) => html_error(&state, err.clone(), asked, res),
        _ => res,
    }
}

/// JSON endpoints that browsers may also post to: errors stay JSON unless
/// the client prefers HTML (a plain form navigation).
pub async fn negotiate_api(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let html = wants_html(req.headers());
    let asked = RequestFacts::of(&req);
    let res = next.run(req).await;
    match (html, res.extensions().get::<RenderedError>()) {
        (true, Some(err)) => html_error(&state, err.clone(), asked, res),
        _ => res,
    }
}

/// What a request tells an error page: `ui_locales` from its query,
/// `Accept-Language`, the cookies (a resend form needs the CSRF token), and
/// its own address when a GET may simply be tried again.
struct RequestFacts {
    ui_locales: Option<String>,
    accept_language: Option<String>,
    jar: CookieJar,
    again: Option<String>,
}

impl RequestFacts {
    fn of(req: &Request) -> Self {
        RequestFacts {
            ui_locales: ui_locales(req.uri().query()),
            accept_language: accept_language(req.headers()),
            jar: CookieJar::from_headers(req.headers()),
            again: (req.method() == Method::GET)
                .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
                .flatten()
                .filter(|p| p.starts_with('/') && p.len() <= 4096),
        }
    }
}

/// `ui_locales` of a query string.
fn ui_locales(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, v)| k == "ui_locales" && v.len() <= 100)
        .map(|(_, v)| v.into_owned())
}

/// The language of an error page (SPEC §3.3): the one the handler named
/// (the login request's), else `ui_locales` — the language the failed
/// sign-in ran in, the one its way forward carries, or the request's —
/// then `Accept-Language`, then the default of the app whose flow failed
/// (attached to the error: the renderer never asks the database).
fn error_strings(err: &RenderedError, asked: &RequestFacts) -> &'static i18n::Strings {
    if let Some(lang) = err.lang {
        return i18n::strings(lang);
    }
    let from_retry = err
        .retry
        .as_deref()
        .and_then(|r| ui_locales(r.split_once('?').map(|(_, q)| q)));
    let ui = err
        .flow
        .as_ref()
        .map(|f| f.locale.clone())
        .or(from_retry)
        .or_else(|| asked.ui_locales.clone());
    let app_locale = err.app.as_ref().map(|a| a.settings.locale.as_str());
    i18n::negotiate(
        ui.as_deref(),
        asked.accept_language.as_deref(),
        app_locale.unwrap_or("en"),
    )
}

fn html_error(
    state: &AppState,
    mut err: RenderedError,
    asked: RequestFacts,
    original: Response,
) -> Response {
    // A dead link's way forward: the same sign-in again, in its language.
    if err.retry.is_none() {
        err.retry = err
            .flow
            .as_ref()
            .map(|f| render::login_url(state, f, Some(&f.email)));
    }
    let t = error_strings(&err, &asked);
    let brand = err
        .app
        .as_deref()
        .map(|app| pages::Brand::of(app, &state.config, t))
        .unwrap_or_default();
    // A one-click "Send a new link" is a form: it needs this browser's
    // CSRF token (and sets its cookie when there is none yet).
    let (jar, csrf_token) = if pages::offers_resend(&state.config, &err) {
        let (jar, token) = cookies::csrf_token(state, asked.jar);
        (jar, Some(token))
    } else {
        (asked.jar, None)
    };
    let cx = pages::ErrorContext {
        config: &state.config,
        brand,
        csrf_token,
        again: asked.again,
    };
    let mut page = (jar, pages::error_page(t, cx, &err)).into_response();
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
