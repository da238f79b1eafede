//! The OpenAPI schemas of the answers this module builds as JSON values
//! (`discovery`, the JWK Set, `userinfo`, `introspect`): schema-only types,
//! so `/openapi.json` describes them beside the values they describe.

use serde::Serialize;
use utoipa::ToSchema;

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
