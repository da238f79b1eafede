//! SPEC §3.6 `GET /openapi.json`: the handler that serves the OpenAPI 3.1
//! description of every JSON endpoint, and the schema-only types of the
//! answers the services build as JSON values. Each handler carries its own
//! `#[utoipa::path]` (method, path, parameters, body, answers) next to its
//! code, and the request and response types derive their schemas where they
//! live (postern-auth, postern-core, here), so a renamed field changes the
//! document with it.
//!
//! The document itself is assembled by the binary (`postern::openapi`),
//! which mounts both faces: this crate's operations and the administration
//! faces' (`postern-admin-web`, which this crate does not know), with the
//! answers every operation can give and the security schemes. The router
//! serves what it is given ([`crate::router`]).

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::ServerBuilder;

use crate::AppState;

/// The document `/openapi.json` serves, built at its first request and
/// kept: a server that is never asked for it never holds it (nor touches
/// the code that builds it), which keeps idle memory down.
#[derive(Clone)]
pub struct Document(Arc<LazyLock<utoipa::openapi::OpenApi, fn() -> utoipa::openapi::OpenApi>>);

impl Document {
    /// The document `build` makes, once it is first asked for.
    pub fn new(build: fn() -> utoipa::openapi::OpenApi) -> Self {
        Self(Arc::new(LazyLock::new(build)))
    }

    /// The document as JSON, with this server's public URL as its server.
    pub fn for_server(&self, public_url: &str) -> serde_json::Value {
        let mut doc = LazyLock::force(&self.0).clone();
        doc.servers = Some(vec![ServerBuilder::new()
            .url(public_url.trim_end_matches('/'))
            .build()]);
        serde_json::to_value(doc).unwrap_or_default()
    }
}

/// SPEC §3.6 `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1).", body = Object)),
)]
pub async fn serve(State(state): State<AppState>, Extension(doc): Extension<Document>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        axum::Json(doc.for_server(state.config.public_url.as_str())),
    )
        .into_response()
}

/// Schema-only types of the answers the services build as JSON values
/// (discovery, JWKS, userinfo, introspection), kept with those services.
pub use postern_auth::oidc::schema::{Discovery, Introspection, Jwk, Jwks, Userinfo};
