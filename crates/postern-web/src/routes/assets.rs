//! Static assets, compiled into the binary, and each app's brand stylesheet.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use postern_auth::AuthError;
use postern_core::brand;

use crate::error::{AppError, Result};
use crate::extract::AppPath;
use crate::AppState;

/// `GET /static/postern.css`: the one stylesheet of every page.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/postern.css"),
    )
}

/// `GET /static/postern.js`: the one script, which only enhances the
/// "check your email" page (countdown, waiting for a remote approval).
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/postern.js"),
    )
}

/// `GET /static/brand/{client_id}.css`: the app's accent colour as custom
/// properties, so pages stay free of inline style (CSP `style-src 'self'`).
/// Pages link it with `?v=<colour>`, so it may be cached for a day: a new
/// colour is a new URL.
pub async fn brand_stylesheet(
    State(state): State<AppState>,
    AppPath(file): AppPath<String>,
) -> Result<Response> {
    let client_id = file.strip_suffix(".css").ok_or(AppError::NotFound)?;
    let app = postern_auth::signin::app_named(&state, Some(client_id))
        .await
        .map_err(|e| match e {
            AuthError::UnknownClient | AuthError::InvalidRequest(_) => AppError::NotFound,
            other => other.into(),
        })?;
    let color = app
        .settings
        .branding
        .color
        .as_deref()
        .filter(|c| brand::valid_color(c))
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        brand_css(&brand::Palette::of(color)),
    )
        .into_response())
}

/// The brand stylesheet of a [`brand::Palette`]: the accent for buttons,
/// the text on it, and the accent as link text on light and dark cards.
pub fn brand_css(p: &brand::Palette) -> String {
    format!(
        "/* Brand colour of one app; see postern.css. */\n\
         :root {{ --accent: {}; --on-accent: {}; --accent-text: {}; }}\n\
         @media (prefers-color-scheme: dark) {{ :root {{ --accent-text: {}; }} }}\n",
        p.accent, p.on_accent, p.light_text, p.dark_text,
    )
}
