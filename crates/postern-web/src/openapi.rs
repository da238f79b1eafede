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

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Serialize;
use utoipa::openapi::ServerBuilder;
use utoipa::ToSchema;

use crate::AppState;

/// The document `/openapi.json` serves, built once per router.
#[derive(Clone)]
pub struct Document(Arc<utoipa::openapi::OpenApi>);

impl Document {
    /// Wraps a built document.
    pub fn new(doc: utoipa::openapi::OpenApi) -> Self {
        Self(Arc::new(doc))
    }

    /// The document as JSON, with this server's public URL as its server.
    pub fn for_server(&self, public_url: &str) -> serde_json::Value {
        let mut doc = (*self.0).clone();
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

// ---- schemas of answers the services build as JSON values ------------------

/// OIDC Discovery 1.0 §3: the provider metadata (every member Postern
/// publishes; see the live document for the values).
#[derive(Debug, Serialize, ToSchema)]
pub struct Discovery {
    /// The issuer, the public URL.
    pub issuer: String,
    /// `/authorize`.
    pub authorization_endpoint: String,
    /// `/token`.
    pub token_endpoint: String,
    /// `/userinfo`.
    pub userinfo_endpoint: String,
    /// `/jwks.json`.
    pub jwks_uri: String,
    /// `/logout`.
    pub end_session_endpoint: String,
    /// `/revoke`.
    pub revocation_endpoint: String,
    /// `/introspect`.
    pub introspection_endpoint: String,
    /// Scopes Postern knows.
    pub scopes_supported: Vec<String>,
    /// `code`.
    pub response_types_supported: Vec<String>,
    /// `authorization_code`, `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// `pairwise`, `public`.
    pub subject_types_supported: Vec<String>,
    /// `RS256`, `EdDSA`, `ES256`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `S256`.
    pub code_challenge_methods_supported: Vec<String>,
}

/// RFC 7517 §5: a JWK Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// The active, next and recently retired public keys, active first.
    pub keys: Vec<Jwk>,
}

/// RFC 7517 §4: one public key (members by key type: `n`/`e` for RSA,
/// `crv`/`x`/`y` for EC and OKP).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Key id, as in the JWT header.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// OIDC Core §5.3.2: the UserInfo response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Userinfo {
    /// The app's subject for the person.
    pub sub: String,
    /// With the `email` scope.
    pub email: Option<String>,
    /// With the `email` scope: always true (the address signed in).
    pub email_verified: Option<bool>,
}

/// RFC 7662 §2.2: an introspection answer; an unknown, expired, revoked
/// or foreign token is `{"active": false}` alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// `access_token` or `refresh_token`.
    pub token_type: Option<String>,
    /// The app the token was issued to.
    pub client_id: Option<String>,
    /// Granted scope.
    pub scope: Option<String>,
    /// The app's subject for the person.
    pub sub: Option<String>,
    /// The issuer.
    pub iss: Option<String>,
    /// Issued at, unix seconds.
    pub iat: Option<i64>,
    /// Ends at, unix seconds.
    pub exp: Option<i64>,
    /// The session.
    pub sid: Option<String>,
}
