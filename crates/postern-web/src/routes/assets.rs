//! Static assets, compiled into the binary.

use axum::http::header;
use axum::response::IntoResponse;

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
