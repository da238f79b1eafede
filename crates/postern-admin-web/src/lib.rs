//! Postern's administration faces over HTTP (SPEC §3.5): the `/admin`
//! panel ([`panel`]) and the `/admin/api/v1` JSON API ([`api`]). Both are
//! faces over `postern_auth::admin`, which decides who may do what; they
//! use the web crate's HTTP kit (state, extractors, cookies, CSRF,
//! `AppError` and its renderer, page helpers, catalogues, middleware).
//!
//! The web crate does not know this one: the binary mounts [`faces`] into
//! `postern_web::router`, inside the same middleware as every other route,
//! and the OpenAPI document gets the admin operations from [`openapi`].

pub mod api;
pub mod panel;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use postern_web::{AppState, Faces};
use utoipa::OpenApi;

/// The panel, its assets and the admin API, ready for
/// `postern_web::router` (their OpenAPI part is [`openapi`]).
pub fn faces(state: &AppState) -> Faces {
    Faces {
        router: router(state),
    }
}

/// Every administration route: the panel's pages and assets, the API.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/static/admin.css", get(stylesheet))
        .route("/static/admin.js", get(script))
        .merge(api::router())
        .merge(panel::router(state))
}

/// The admin API's JSON routes, `(method, path)` with the method in lower
/// case: what `/openapi.json` must describe besides the web crate's
/// `json_routes`.
pub fn json_routes() -> Vec<(&'static str, String)> {
    api::ROUTES
        .iter()
        .map(|(m, p)| (*m, format!("{}{p}", api::PREFIX)))
        .collect()
}

/// The admin API's part of the OpenAPI document: its operations and the
/// schemas they name. The binary adds the rest (the 401/403 every admin
/// operation can answer among them) when it assembles the document
/// (`postern::openapi::document`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::ApiDoc::openapi()
}

/// `GET /static/admin.css`: the administration panel's additions.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/admin.css"),
    )
}

/// `GET /static/admin.js`: the panel's script (the live email preview).
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/admin.js"),
    )
}
