//! SPEC §3.6 `GET /openapi.json`: the OpenAPI 3.1 description of every
//! JSON endpoint, assembled where both faces are mounted. Each handler
//! carries its own `#[utoipa::path]` next to its code (in `postern-web` and
//! `postern-admin-web`), and the types derive their schemas where they
//! live; this module joins the web crate's operations with the admin API's
//! ([`postern_admin_web::openapi`]) and adds what every operation can
//! answer and the security schemes. [`crate::serve::json_routes`] lists
//! what the router serves; the black-box test `tests/openapi.rs` checks
//! that the document describes exactly those routes, and
//! `scripts/schemathesis` checks the server's answers against it.
//!
//! What every operation can answer besides its own list — 408 after the
//! request deadline, 503 while the database is unreachable, 413 and 415 for
//! a body, 401 and 403 for an admin operation — is added by
//! [`CommonAnswers`] rather than repeated on each handler.

use postern_web::error::ErrorBody;
use postern_web::openapi;
use postern_web::routes::{check, headless, health, oidc, signin};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

/// Security scheme of apps: HTTP Basic `client_id:client_secret` (each part
/// form-urlencoded, RFC 6749 §2.3.1).
pub const CLIENT_BASIC: &str = "client_basic";
/// Security scheme of the admin API: `Authorization: Bearer pat_…`.
pub const ADMIN_TOKEN: &str = "admin_token";
/// Security scheme of `/userinfo`: an access token from `/token`.
pub const ACCESS_TOKEN: &str = "access_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postern",
        description = "Passwordless sign-in server: magic links, one-time codes, OpenID Connect, \
a headless API and an admin API. Every JSON error has the shape \
`{\"error\": \"<code>\", \"error_description\": \"<human sentence>\"}` (`ErrorBody`). \
The admin API also accepts the Postern browser session of an administrator or app owner \
(the cookie `/account` uses; writes only from Postern's own origin).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        signin::request_magic_link,
        check::login_status,
        oidc::discovery,
        oidc::jwks,
        oidc::token,
        oidc::userinfo_get,
        oidc::userinfo_post,
        oidc::revoke,
        oidc::introspect,
        headless::create_link,
        headless::verify_link,
        headless::refresh,
        headless::verify_session,
        headless::delete_session,
        headless::revoke_user_sessions,
        health::healthz,
        health::readyz,
        openapi::serve,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "sign-in", description = "SPEC §3.1: asking for a magic link"),
        (name = "oidc", description = "SPEC §3.2: OpenID Connect's JSON endpoints"),
        (name = "headless", description = "SPEC §3.4: the headless API, authenticated as the app"),
        (name = "admin", description = "SPEC §3.5: the admin API"),
        (name = "operations", description = "SPEC §3.6: health and this document"),
    ),
)]
struct ApiDoc;

/// The whole document `/openapi.json` serves: the web crate's operations,
/// the admin API's, the answers any operation can give and the security
/// schemes.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(postern_admin_web::openapi());
    SecuritySchemes.modify(&mut doc);
    CommonAnswers.modify(&mut doc);
    doc
}

/// The three ways of authenticating that the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut basic = HttpBuilder::new().scheme(HttpAuthScheme::Basic).build();
        basic.description = Some(
            "The app's `client_id:client_secret`, each part form-urlencoded (RFC 6749 §2.3.1)."
                .into(),
        );
        components.add_security_scheme(CLIENT_BASIC, SecurityScheme::Http(basic));
        let admin = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("pat_…")
            .description(Some(
                "An admin token from `postern admin token create` (SPEC §3.5).",
            ))
            .build();
        components.add_security_scheme(ADMIN_TOKEN, SecurityScheme::Http(admin));
        let access = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("An access token from `/token` (RFC 6750)."))
            .build();
        components.add_security_scheme(ACCESS_TOKEN, SecurityScheme::Http(access));
    }
}

/// Answers any operation may give, added where the handler's own list
/// lacks them: the request deadline (408), the database being down (503),
/// for a body, too large (413) or of another type (415), and for an admin
/// operation (secured by [`ADMIN_TOKEN`]), no or a bad credential (401)
/// and not allowed (403) — each in the SPEC §3 error shape.
struct CommonAnswers;

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    error_response(description).build().into()
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

/// Whether `op` is the admin API's: authenticated by an admin token.
fn is_admin(op: &Operation) -> bool {
    let admin = SecurityRequirement::new(ADMIN_TOKEN, Vec::<String>::new());
    op.security.iter().flatten().any(|r| *r == admin)
}

fn add_common(op: &mut Operation) {
    let mut answers: Vec<(&str, &str)> = vec![
        (
            "408",
            "`invalid_request`: the request was not complete in time.",
        ),
        (
            "503",
            "`temporarily_unavailable`: the database is unreachable; try again.",
        ),
    ];
    if op.request_body.is_some() {
        answers.push(("413", "`invalid_request`: the body is over 64 KiB."));
        answers.push((
            "415",
            "`invalid_request`: the body is of a content type this operation does not read.",
        ));
    }
    if is_admin(op) {
        let unauthenticated =
            error_response("`invalid_token`: no admin token or session, or a bad one.").header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Object::with_type(Type::String))
                    .description(Some("`Bearer realm=\"postern\"`"))
                    .build(),
            );
        op.responses
            .responses
            .entry("401".to_owned())
            .or_insert_with(|| unauthenticated.build().into());
        answers.push((
            "403",
            "`forbidden`: signed in but not allowed (an app owner outside their apps), \
or `invalid_csrf` (a session's write from another origin).",
        ));
    }
    for (status, description) in answers {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_answer(description));
    }
}

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common(op);
            }
        }
    }
}
