//! Cross-cutting layers: security headers, error-format negotiation and
//! request tracing that never records a query string.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::RenderedError;
use crate::extract::{wants_html, wants_json};
use crate::{pages, AppState};

/// The Content-Security-Policy of every page: nothing from elsewhere, no
/// inline script, our own stylesheet only.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https:; \
    frame-ancestors 'none'; base-uri 'none'";

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

/// Browser routes: errors become an HTML page unless the client asked for
/// JSON (`Accept: application/json`), SPEC §3.
pub async fn negotiate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let json = wants_json(req.headers());
    let res = next.run(req).await;
    match (json, res.extensions().get::<RenderedError>()) {
        (false, Some(err)) => html_error(&state, err.clone(), res),
        _ => res,
    }
}

/// JSON endpoints that browsers may also post to: errors stay JSON unless
/// the client prefers HTML (a plain form navigation).
pub async fn negotiate_api(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let html = wants_html(req.headers());
    let res = next.run(req).await;
    match (html, res.extensions().get::<RenderedError>()) {
        (true, Some(err)) => html_error(&state, err.clone(), res),
        _ => res,
    }
}

fn html_error(state: &AppState, err: RenderedError, original: Response) -> Response {
    let mut page = pages::error_page(state, &err).into_response();
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
