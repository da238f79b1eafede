//! The one JSON shape of an app (SPEC §3.5): [`AppView`] as it is shown,
//! [`AppPatch`] as it is changed (any subset; nested objects merge, `null`
//! clears, unknown fields are a 400 naming the field), and the one
//! validation the API, the panel and the CLI share.

use postern_core::app::{ConsentMode, DevicePolicy, IdTokenAlg, PasskeyPolicy, SubjectType};
use postern_core::duration::{format_duration, parse_duration};
use postern_core::{App, AppSettings};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{AuthError, Result};

/// An app as the API, the panel and `postern app show` show it (SPEC §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AppView {
    /// Public identifier.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// No secret, PKCE required.
    pub public: bool,
    /// No consent screen unless asked.
    pub first_party: bool,
    /// A disabled app signs no one in.
    pub enabled: bool,
    /// Addresses that manage it.
    pub owners: Vec<String>,
    /// Exact-match redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact-match post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the app starts its own sign-in (OIDC Core §4).
    pub initiate_login_uri: Option<String>,
    /// The settings of SPEC §1.
    pub settings: SettingsView,
    /// How it presents itself.
    pub branding: BrandingView,
    /// Unix seconds.
    pub created_at: i64,
}

/// `settings` of [`AppView`]; durations as `15m`, `24h`, `7d`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    /// Link lifetime.
    pub link_ttl: String,
    /// Session cap for this app; none: the server's.
    pub session_max_age: Option<String>,
    /// `any`, `same_browser`, `remote`.
    pub device_policy: DevicePolicy,
    /// `off`, `optional`, `required_after_first_sign_in` (issue 15).
    pub passkeys: PasskeyPolicy,
    /// Whether unknown addresses may sign up.
    pub signup: bool,
    /// Only these domains may sign in; empty: any.
    pub allowed_domains: Vec<String>,
    /// Bind links and sessions to the asking network.
    pub bind_ip_range: bool,
    /// `pairwise` or `public`.
    pub subject_type: SubjectType,
    /// Default language.
    pub locale: String,
    /// `required`, `skip`, or none (required unless first-party).
    pub consent: Option<ConsentMode>,
    /// ID token algorithm.
    pub id_token_alg: IdTokenAlg,
    /// Whether tokens carry `email`.
    pub token_email: bool,
    /// Headless link requests per hour.
    pub link_requests_per_hour: u32,
}

/// `branding` of [`AppView`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BrandingView {
    /// Display name.
    pub name: Option<String>,
    /// HTTPS logo URL.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// From display name.
    pub sender_name: Option<String>,
    /// The note in its emails.
    pub email_note: Option<String>,
}

impl From<&App> for AppView {
    fn from(app: &App) -> Self {
        let s = &app.settings;
        let b = &s.branding;
        AppView {
            client_id: app.client_id.clone(),
            name: app.name.clone(),
            public: s.public,
            first_party: s.first_party,
            enabled: s.enabled,
            owners: s.owners.clone(),
            redirect_uris: s.redirect_uris.clone(),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            initiate_login_uri: s.initiate_login_uri.clone(),
            settings: SettingsView {
                link_ttl: format_duration(s.link_ttl),
                session_max_age: s.session_max_age.map(format_duration),
                device_policy: s.device_policy,
                passkeys: s.passkeys,
                signup: s.signup_allowed,
                allowed_domains: s.allowed_domains.clone(),
                bind_ip_range: s.bind_ip_range,
                subject_type: s.subject_type,
                locale: s.locale.clone(),
                consent: s.consent,
                id_token_alg: s.id_token_alg,
                token_email: s.token_email,
                link_requests_per_hour: s.link_requests_per_hour,
            },
            branding: BrandingView {
                name: b.name.clone(),
                logo_url: b.logo_url.clone(),
                color: b.color.clone(),
                sender_name: b.sender_name.clone(),
                email_note: b.email_note.clone(),
            },
            created_at: app.created_at,
        }
    }
}

/// A duration field: `"15m"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Seconds(n)),
            Raw::S(s) => parse_duration(&s)
                .map(Seconds)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl utoipa::PartialSchema for Seconds {
    /// What [`Seconds`] reads: `"15m"`-style text or a number of seconds.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[0-9]{1,9}[smhd]?\s*$"))
                    .examples([serde_json::json!("15m")]),
            )
            .item(ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
            )))
            .description(Some(
                "A duration: `90s`, `15m`, `24h`, `7d`, or a number of seconds.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Seconds {}

/// A field that may be set, or cleared with `null`.
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// `settings` of a POST or PATCH: any subset.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Link lifetime.
    pub link_ttl: Option<Seconds>,
    /// Session cap; `null` clears.
    #[serde(default, deserialize_with = "nullable")]
    pub session_max_age: Option<Option<Seconds>>,
    /// Device policy.
    pub device_policy: Option<DevicePolicy>,
    /// Passkey policy.
    pub passkeys: Option<PasskeyPolicy>,
    /// Sign-up allowed.
    pub signup: Option<bool>,
    /// Allowed domains (replaces).
    pub allowed_domains: Option<Vec<String>>,
    /// Bind to IP range.
    pub bind_ip_range: Option<bool>,
    /// Subject type.
    pub subject_type: Option<SubjectType>,
    /// Locale.
    pub locale: Option<String>,
    /// Consent; `null`: the default.
    #[serde(default, deserialize_with = "nullable")]
    pub consent: Option<Option<ConsentMode>>,
    /// ID token algorithm.
    pub id_token_alg: Option<IdTokenAlg>,
    /// Email in tokens.
    pub token_email: Option<bool>,
    /// Headless requests per hour.
    pub link_requests_per_hour: Option<u32>,
}

/// `branding` of a POST or PATCH: any subset; `null` or `""` clears.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingPatch {
    /// Display name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    /// Logo URL.
    #[serde(default, deserialize_with = "nullable")]
    pub logo_url: Option<Option<String>>,
    /// Colour.
    #[serde(default, deserialize_with = "nullable")]
    pub color: Option<Option<String>>,
    /// Sender name.
    #[serde(default, deserialize_with = "nullable")]
    pub sender_name: Option<Option<String>>,
    /// Email note.
    #[serde(default, deserialize_with = "nullable")]
    pub email_note: Option<Option<String>>,
}

/// A change to an app (SPEC §3.5 PATCH): any subset of the app shape;
/// nested objects merge; lists replace. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    /// Read-only: accepted when it is the app's own (a GET sent back).
    pub client_id: Option<String>,
    /// Fixed at creation: accepted on PATCH only when unchanged.
    pub public: Option<bool>,
    /// Read-only: accepted and ignored.
    pub created_at: Option<i64>,
    /// Name.
    pub name: Option<String>,
    /// First-party.
    pub first_party: Option<bool>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// Owners (administrators only).
    pub owners: Option<Vec<String>>,
    /// Redirect URIs (replace; never none).
    pub redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs (replace).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Initiate-login URI; `null` clears.
    #[serde(default, deserialize_with = "nullable")]
    pub initiate_login_uri: Option<Option<String>>,
    /// Settings to merge.
    pub settings: Option<SettingsPatch>,
    /// Branding to merge.
    pub branding: Option<BrandingPatch>,
}

/// A new app (SPEC §3.5 POST): the app shape; `name` and `redirect_uris`
/// are required, `public` is fixed at creation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppCreate {
    /// The fields; `public` is read from [`AppPatch::public`].
    pub fields: AppPatch,
}

impl AppCreate {
    /// Reads a POST body (unknown fields are 400 naming the field).
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        Ok(AppCreate {
            fields: from_json(value)?,
        })
    }
}

/// Reads JSON into `T`, turning serde's words into a 400 that names the
/// field (`unknown field "colour"`).
pub fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| AuthError::invalid(e.to_string()))
}

fn clear_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl AppPatch {
    /// Applies this change to `app`'s fields (not yet validated).
    pub fn apply(self, app: &mut App) {
        let s = &mut app.settings;
        if let Some(v) = self.name {
            app.name = v;
        }
        if let Some(v) = self.first_party {
            s.first_party = v;
        }
        if let Some(v) = self.enabled {
            s.enabled = v;
        }
        if let Some(v) = self.owners {
            s.owners = v;
        }
        if let Some(v) = self.redirect_uris {
            s.redirect_uris = v;
        }
        if let Some(v) = self.post_logout_redirect_uris {
            s.post_logout_redirect_uris = v;
        }
        if let Some(v) = self.initiate_login_uri {
            s.initiate_login_uri = clear_empty(v);
        }
        if let Some(p) = self.settings {
            if let Some(v) = p.link_ttl {
                s.link_ttl = v.0;
            }
            if let Some(v) = p.session_max_age {
                s.session_max_age = v.map(|v| v.0);
            }
            if let Some(v) = p.device_policy {
                s.device_policy = v;
            }
            if let Some(v) = p.passkeys {
                s.passkeys = v;
            }
            if let Some(v) = p.signup {
                s.signup_allowed = v;
            }
            if let Some(v) = p.allowed_domains {
                s.allowed_domains = v;
            }
            if let Some(v) = p.bind_ip_range {
                s.bind_ip_range = v;
            }
            if let Some(v) = p.subject_type {
                s.subject_type = v;
            }
            if let Some(v) = p.locale {
                s.locale = v;
            }
            if let Some(v) = p.consent {
                s.consent = v;
            }
            if let Some(v) = p.id_token_alg {
                s.id_token_alg = v;
            }
            if let Some(v) = p.token_email {
                s.token_email = v;
            }
            if let Some(v) = p.link_requests_per_hour {
                s.link_requests_per_hour = v;
            }
        }
        if let Some(p) = self.branding {
            let b = &mut s.branding;
            for (slot, v) in [
                (&mut b.name, p.name),
                (&mut b.logo_url, p.logo_url),
                (&mut b.color, p.color),
                (&mut b.sender_name, p.sender_name),
                (&mut b.email_note, p.email_note),
            ] {
                if let Some(v) = v {
                    *slot = clear_empty(v);
                }
            }
        }
    }
}

/// The one validation of an app, for the API, the panel and the CLI: the
/// SPEC §1 rules of [`App::validate`], as a 400 naming the field.
pub fn validate(name: &str, settings: &mut AppSettings) -> Result<()> {
    App::validate(name, settings).map_err(|e| AuthError::invalid_field(e.field(), &e))
}
