//! Apps (OIDC clients) and their settings, SPEC §1 and §4.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

/// Shortest link lifetime an app may choose (1 minute).
pub const MIN_LINK_TTL: i64 = 60;
/// Longest link lifetime an app may choose (24 hours).
pub const MAX_LINK_TTL: i64 = 24 * 3600;
/// Default link lifetime (15 minutes).
pub const DEFAULT_LINK_TTL: i64 = 15 * 60;

/// What a browser other than the asking one may do with a link (SPEC §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DevicePolicy {
    /// Confirming in any browser signs in that browser.
    #[default]
    Any,
    /// Only the asking browser signs in; elsewhere, use the code there.
    SameBrowser,
    /// Another device approves by typing the number the asking page shows.
    Remote,
}

/// Whether an app's people may sign in with a passkey (WebAuthn), and
/// whether they must once they have one (issue 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyPolicy {
    /// No passkey sign-in and no offer to create one for this app.
    Off,
    /// A passkey is offered after an email sign-in and may be used (default).
    #[default]
    Optional,
    /// Once a person has a passkey, a link or code alone no longer signs
    /// them in to this app, unless they say they lost their passkey.
    RequiredAfterFirstSignIn,
}

/// How `sub` is computed for an app (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A different, uncorrelatable `sub` per app (default).
    #[default]
    Pairwise,
    /// The user's internal id, the same for every app.
    Public,
}

/// Signature algorithm of an app's ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the OIDC default.
    #[default]
    RS256,
    /// Ed25519.
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// Whether the consent screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Ask once per set of scopes, remember the grant.
    Required,
    /// Never ask.
    Skip,
}

/// How an app presents itself in pages and emails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    /// Display name (falls back to the app's name).
    pub name: Option<String>,
    /// HTTPS URL of a logo image.
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    pub color: Option<String>,
    /// Display name in the email's From header (defaults to the brand name
    /// when branding is set, see [`App::sender_name`]).
    pub sender_name: Option<String>,
    /// A short extra note shown in the app's emails, in every language
    /// (plain text, escaped, at most [`MAX_EMAIL_NOTE`] characters; line
    /// breaks are kept).
    pub email_note: Option<String>,
}

/// The longest email note, in characters (SPEC §3.5).
pub const MAX_EMAIL_NOTE: usize = 500;

/// Every per-app setting of SPEC §1 with its default. Stored as JSON so later
/// settings are added without a schema change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    /// Exact-match redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact-match post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Public clients have no secret and must use PKCE.
    pub public: bool,
    /// First-party apps skip the consent screen unless told otherwise.
    pub first_party: bool,
    /// Link lifetime in seconds, within 1 minute and 24 hours.
    pub link_ttl: i64,
    /// Maximum session age for this app in seconds (shorter than the server's cap).
    pub session_max_age: Option<i64>,
    /// See [`DevicePolicy`].
    pub device_policy: DevicePolicy,
    /// See [`PasskeyPolicy`].
    pub passkeys: PasskeyPolicy,
    /// Explicit consent mode; `None` means "required unless first-party".
    pub consent: Option<ConsentMode>,
    /// Whether unknown addresses may create an account.
    pub signup_allowed: bool,
    /// If non-empty, only these email domains may sign in (punycode, lower case).
    pub allowed_domains: Vec<String>,
    /// Bind links and sessions to the /24 (IPv4) or /56 (IPv6) they came from.
    pub bind_ip_range: bool,
    /// See [`SubjectType`].
    pub subject_type: SubjectType,
    /// See [`IdTokenAlg`].
    pub id_token_alg: IdTokenAlg,
    /// Whether access tokens (with the `email` scope) and headless session
    /// tokens also carry `email`. Off by default: anyone holding a JWT can
    /// read its payload, so tokens carry no personal data (SPEC §2).
    pub token_email: bool,
    /// Default locale for pages and emails.
    pub locale: String,
    /// Per-app limit on headless API link requests per hour (SPEC §3.4);
    /// the anonymous browser endpoints are limited per address and IP only.
    pub link_requests_per_hour: u32,
    /// See [`Branding`].
    pub branding: Branding,
    /// A disabled app signs no one in (SPEC §3.6); its sessions live on.
    pub enabled: bool,
    /// Normalized addresses that manage this app in `/admin` (SPEC §3.5).
    pub owners: Vec<String>,
    /// Where the app starts its own sign-in (OIDC Core §4), an https URL
    /// (or a loopback http one); admin-issued links lead there.
    pub initiate_login_uri: Option<String>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            public: false,
            first_party: false,
            link_ttl: DEFAULT_LINK_TTL,
            session_max_age: None,
            device_policy: DevicePolicy::Any,
            passkeys: PasskeyPolicy::Optional,
            consent: None,
            signup_allowed: true,
            allowed_domains: Vec::new(),
            bind_ip_range: false,
            subject_type: SubjectType::Pairwise,
            id_token_alg: IdTokenAlg::RS256,
            token_email: false,
            locale: "en".to_owned(),
            link_requests_per_hour: 1000,
            branding: Branding::default(),
            enabled: true,
            owners: Vec::new(),
            initiate_login_uri: None,
        }
    }
}

/// An integrating application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Public identifier.
    pub client_id: String,
    /// Name shown to people.
    pub name: String,
    /// Settings.
    pub settings: AppSettings,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Why app settings were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AppSettingsError {
    /// No name.
    #[error("an app needs a name (1 to 100 characters, no control characters)")]
    BadName,
    /// No redirect URI registered.
    #[error("an app needs at least one redirect URI")]
    NoRedirectUri,
    /// A URI that cannot be registered.
    #[error("{0}")]
    BadRedirectUri(#[from] RedirectUriError),
    /// Link lifetime outside 1 minute to 24 hours.
    #[error("the link lifetime must be between 1 minute and 24 hours")]
    LinkTtlOutOfRange,
    /// Non-positive session age.
    #[error("the session maximum age must be positive")]
    BadSessionMaxAge,
    /// A domain that is not a domain.
    #[error("invalid allowed domain {0:?}")]
    BadDomain(String),
    /// Not `#rrggbb`.
    #[error("the brand colour must look like #1a2b3c")]
    BadColor,
    /// Not an https URL.
    #[error("the logo URL must be an https URL")]
    BadLogoUrl,
    /// A locale tag that is not a language tag.
    #[error("invalid locale {0:?}")]
    BadLocale(String),
    /// Branding text with control characters or too long.
    #[error("branding text must be at most 100 characters without control characters")]
    BadBrandingText,
    /// An email note that is empty, too long or has control characters.
    #[error("the email note must be 1 to 500 characters of plain text")]
    BadEmailNote,
    /// Per-app limit of zero.
    #[error("the per-app request limit must be at least 1")]
    BadLimit,
    /// An owner that is not one email address.
    #[error("owner {0:?} is not an email address")]
    BadOwner(String),
    /// An `initiate_login_uri` that is not an https URL.
    #[error("initiate_login_uri must be an https URL (http only for loopback addresses)")]
    BadInitiateLoginUri,
}

impl AppSettingsError {
    /// The field of the SPEC §3.5 app shape the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::BadName => "name",
            Self::NoRedirectUri | Self::BadRedirectUri(_) => "redirect_uris",
            Self::LinkTtlOutOfRange => "settings.link_ttl",
            Self::BadSessionMaxAge => "settings.session_max_age",
            Self::BadDomain(_) => "settings.allowed_domains",
            Self::BadColor => "branding.color",
            Self::BadLogoUrl => "branding.logo_url",
            Self::BadLocale(_) => "settings.locale",
            Self::BadBrandingText => "branding",
            Self::BadEmailNote => "branding.email_note",
            Self::BadLimit => "settings.link_requests_per_hour",
            Self::BadOwner(_) => "owners",
            Self::BadInitiateLoginUri => "initiate_login_uri",
        }
    }
}

fn plain_text_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control)
}

impl App {
    /// Checks a name and settings before they are stored, normalizing what
    /// has one canonical form (domains to punycode, locale to lower case).
    pub fn validate(name: &str, settings: &mut AppSettings) -> Result<(), AppSettingsError> {
        if !plain_text_ok(name) {
            return Err(AppSettingsError::BadName);
        }
        if settings.redirect_uris.is_empty() {
            return Err(AppSettingsError::NoRedirectUri);
        }
        for uri in settings
            .redirect_uris
            .iter()
            .chain(&settings.post_logout_redirect_uris)
        {
            validate_redirect_uri(uri)?;
        }
        if !(MIN_LINK_TTL..=MAX_LINK_TTL).contains(&settings.link_ttl) {
            return Err(AppSettingsError::LinkTtlOutOfRange);
        }
        if settings.session_max_age.is_some_and(|s| s <= 0) {
            return Err(AppSettingsError::BadSessionMaxAge);
        }
        if settings.link_requests_per_hour == 0 {
            return Err(AppSettingsError::BadLimit);
        }
        for d in settings.allowed_domains.iter_mut() {
            let ascii = idna::domain_to_ascii(d.trim())
                .ok()
                .filter(|a| !a.is_empty() && a.contains('.') && !a.starts_with('.'))
                .ok_or_else(|| AppSettingsError::BadDomain(d.clone()))?;
            *d = ascii;
        }
        let locale = settings.locale.trim().to_ascii_lowercase();
        if locale.is_empty()
            || locale.len() > 35
            || !locale
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AppSettingsError::BadLocale(settings.locale.clone()));
        }
        settings.locale = locale;
        let mut owners = Vec::with_capacity(settings.owners.len());
        for o in &settings.owners {
            let email =
                crate::EmailAddress::parse(o).map_err(|_| AppSettingsError::BadOwner(o.clone()))?;
            let email = email.as_str().to_owned();
            if !owners.contains(&email) {
                owners.push(email);
            }
        }
        settings.owners = owners;
        if let Some(u) = &settings.initiate_login_uri {
            let ok = Url::parse(u).is_ok_and(|p| {
                p.fragment().is_none()
                    && (p.scheme() == "https" && p.host().is_some()
                        || p.scheme() == "http"
                            && (is_loopback_host(&p) || p.host_str() == Some("localhost")))
            });
            if !ok || u.len() > 2000 {
                return Err(AppSettingsError::BadInitiateLoginUri);
            }
        }
        let b = &settings.branding;
        if let Some(c) = &b.color {
            let ok =
                c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !ok {
                return Err(AppSettingsError::BadColor);
            }
        }
        if let Some(u) = &b.logo_url {
            let ok = Url::parse(u).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err(AppSettingsError::BadLogoUrl);
            }
        }
        for t in [&b.name, &b.sender_name].into_iter().flatten() {
            if !plain_text_ok(t) || t.contains(['"', '<', '>']) {
                return Err(AppSettingsError::BadBrandingText);
            }
        }
        if let Some(note) = &settings.branding.email_note {
            // Plain text: line breaks are the only control characters kept.
            let normalized = note.replace("\r\n", "\n");
            let ok = !normalized.trim().is_empty()
                && normalized.chars().count() <= MAX_EMAIL_NOTE
                && !normalized.chars().any(|c| c.is_control() && c != '\n');
            if !ok {
                return Err(AppSettingsError::BadEmailNote);
            }
            settings.branding.email_note = Some(normalized.trim().to_owned());
        }
        Ok(())
    }

    /// Whether this app asks for consent before the first redirect.
    pub fn needs_consent(&self) -> bool {
        match self.settings.consent {
            Some(ConsentMode::Required) => true,
            Some(ConsentMode::Skip) => false,
            None => !self.settings.first_party,
        }
    }

    /// The name shown to people: the brand name if set, else the app name.
    pub fn display_name(&self) -> &str {
        self.settings.branding.name.as_deref().unwrap_or(&self.name)
    }

    /// The display name of the From header of this app's emails: the
    /// sender name; else, when the app has any branding, its brand name (an
    /// email from a branded app comes from the app, not from "Postern");
    /// else none, and the configured From is kept.
    pub fn sender_name(&self) -> Option<&str> {
        let b = &self.settings.branding;
        let branded = b.name.is_some() || b.logo_url.is_some() || b.color.is_some();
        b.sender_name
            .as_deref()
            .or_else(|| branded.then(|| self.display_name()))
    }

    /// Whether `uri` is one of this app's redirect URIs (exact match, with
    /// the loopback port exception of RFC 8252 §7.3).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        matches_registered(&self.settings.redirect_uris, uri)
    }

    /// Whether `uri` is one of this app's post-logout redirect URIs.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        matches_registered(&self.settings.post_logout_redirect_uris, uri)
    }

    /// Whether `domain` (punycode, lower case) may sign in to this app.
    pub fn allows_domain(&self, domain: &str) -> bool {
        self.settings.allowed_domains.is_empty()
            || self.settings.allowed_domains.iter().any(|d| d == domain)
    }
}

/// Why a redirect URI cannot be registered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RedirectUriError {
    /// Not an absolute URL.
    #[error("redirect URI {0:?} is not an absolute URL")]
    Malformed(String),
    /// Has a fragment (RFC 6749 §3.1.2).
    #[error("redirect URI {0:?} must not contain a fragment")]
    Fragment(String),
    /// Plain http to a host that is not loopback.
    #[error("redirect URI {0:?} must use https (http is only allowed for loopback addresses)")]
    InsecureHttp(String),
}

/// Checks that `uri` may be registered: absolute, no fragment, https unless loopback.
pub fn validate_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    let parsed = Url::parse(uri).map_err(|_| RedirectUriError::Malformed(uri.to_owned()))?;
    if uri.len() > 2000 || uri.chars().any(char::is_control) {
        return Err(RedirectUriError::Malformed(uri.to_owned()));
    }
    if parsed.fragment().is_some() {
        return Err(RedirectUriError::Fragment(uri.to_owned()));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback_host(&parsed) || parsed.host_str() == Some("localhost") => Ok(()),
        "http" => Err(RedirectUriError::InsecureHttp(uri.to_owned())),
        "https" => Err(RedirectUriError::Malformed(uri.to_owned())),
        // Private-use schemes of native apps (RFC 8252 §7.1) are reverse domain names.
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(RedirectUriError::Malformed(uri.to_owned())),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn matches_registered(registered: &[String], uri: &str) -> bool {
    if registered.iter().any(|r| r == uri) {
        return true;
    }
    // RFC 8252 §7.3: loopback IP redirect URIs match on any port. Only a
    // URI that could itself be registered: the URL parser drops tabs and
    // newlines, so `http://127.0.0.1:1/c\tb` would otherwise match `/cb`.
    if validate_redirect_uri(uri).is_err() {
        return false;
    }
    let Ok(asked) = Url::parse(uri) else {
        return false;
    };
    if asked.scheme() != "http" || !is_loopback_host(&asked) {
        return false;
    }
    registered.iter().any(|r| {
        Url::parse(r).is_ok_and(|mut reg| {
            is_loopback_host(&reg) && {
                let mut a = asked.clone();
                let _ = reg.set_port(None);
                let _ = a.set_port(None);
                // Compare as strings after dropping ports: exact in all else.
                reg.as_str() == a.as_str()
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(uris: &[&str]) -> App {
        App {
            client_id: "c".into(),
            name: "n".into(),
            settings: AppSettings {
                redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
                ..AppSettings::default()
            },
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let a = app(&["https://app.example/cb"]);
        assert!(a.has_redirect_uri("https://app.example/cb"));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/CB",
            "https://app.example:443/cb ",
            "http://app.example/cb",
            "https://app.example.evil/cb",
            "https://app.example/cb#f",
        ] {
            assert!(!a.has_redirect_uri(other), "{other} must not match");
        }
    }

    #[test]
    fn loopback_redirect_uris_match_on_any_port() {
        let a = app(&["http://127.0.0.1/cb", "http://[::1]:8000/cb"]);
        assert!(a.has_redirect_uri("http://127.0.0.1:51234/cb"));
        assert!(a.has_redirect_uri("http://[::1]:9/cb"));
        assert!(!a.has_redirect_uri("http://127.0.0.1:51234/other"));
        assert!(!a.has_redirect_uri("http://localhost:51234/cb"));
        for hostile in [
            "http://127.0.0.1:5/c\tb",
            "http://127.0.0.1:5/cb\n",
            "http://[::1]:9/\rcb",
        ] {
            assert!(!a.has_redirect_uri(hostile), "{hostile:?} must not match");
        }
    }

    #[test]
    fn settings_are_validated() {
        let mut s = AppSettings {
            redirect_uris: vec!["https://a.example/cb".into()],
            ..AppSettings::default()
        };
        assert_eq!(App::validate("App", &mut s), Ok(()));
        type Case = (&'static str, fn(&mut AppSettings), AppSettingsError);
        let cases: Vec<Case> = vec![
            (
                "ttl too short",
                |s| s.link_ttl = 59,
                AppSettingsError::LinkTtlOutOfRange,
            ),
            (
                "ttl too long",
                |s| s.link_ttl = 86_401,
                AppSettingsError::LinkTtlOutOfRange,
            ),
            (
                "no uri",
                |s| s.redirect_uris.clear(),
                AppSettingsError::NoRedirectUri,
            ),
            (
                "bad colour",
                |s| s.branding.color = Some("red".into()),
                AppSettingsError::BadColor,
            ),
            (
                "http logo",
                |s| s.branding.logo_url = Some("http://x.example/l.png".into()),
                AppSettingsError::BadLogoUrl,
            ),
            (
                "newline in sender",
                |s| s.branding.sender_name = Some("a\r\nBcc: x".into()),
                AppSettingsError::BadBrandingText,
            ),
            (
                "email note too long",
                |s| s.branding.email_note = Some("n".repeat(MAX_EMAIL_NOTE + 1)),
                AppSettingsError::BadEmailNote,
            ),
            (
                "control character in the email note",
                |s| s.branding.email_note = Some("a\u{7}b".into()),
                AppSettingsError::BadEmailNote,
            ),
            (
                "blank email note",
                |s| s.branding.email_note = Some(" \n ".into()),
                AppSettingsError::BadEmailNote,
            ),
        ];
        for (what, change, expected) in cases {
            let mut s2 = s.clone();
            change(&mut s2);
            assert_eq!(App::validate("App", &mut s2), Err(expected), "{what}");
        }
        assert_eq!(
            App::validate("", &mut s.clone()),
            Err(AppSettingsError::BadName)
        );
    }

    #[test]
    fn an_email_note_keeps_its_line_breaks_and_may_be_500_characters() {
        let mut s = AppSettings {
            redirect_uris: vec!["https://a.example/cb".into()],
            ..AppSettings::default()
        };
        s.branding.email_note = Some(" Questions?\r\nWrite to help@acme.example \n".into());
        App::validate("App", &mut s).unwrap();
        assert_eq!(
            s.branding.email_note.as_deref(),
            Some("Questions?\nWrite to help@acme.example")
        );
        s.branding.email_note = Some("é".repeat(MAX_EMAIL_NOTE));
        assert_eq!(App::validate("App", &mut s), Ok(()));
    }

    #[test]
    fn emails_of_a_branded_app_come_from_its_name_unless_a_sender_name_is_set() {
        let mut a = app(&["https://a.example/cb"]);
        assert_eq!(a.sender_name(), None, "no branding: the configured From");
        a.settings.branding.color = Some("#0a7e3c".into());
        assert_eq!(a.sender_name(), Some("n"), "branded: the app's name");
        a.settings.branding.name = Some("Acme Notes".into());
        assert_eq!(a.sender_name(), Some("Acme Notes"), "the brand name");
        a.settings.branding.sender_name = Some("Acme Sign-in".into());
        assert_eq!(a.sender_name(), Some("Acme Sign-in"), "the sender name");
    }

    #[test]
    fn registrable_redirect_uris() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:3000/cb").is_ok());
        assert!(validate_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
        assert!(validate_redirect_uri("/relative").is_err());
    }

    #[test]
    fn domains_are_normalized_to_punycode() {
        let mut s = AppSettings {
            redirect_uris: vec!["https://a.example/cb".into()],
            allowed_domains: vec!["Bücher.Example".into()],
            ..AppSettings::default()
        };
        App::validate("App", &mut s).unwrap();
        assert_eq!(s.allowed_domains, vec!["xn--bcher-kva.example"]);
    }

    #[test]
    fn settings_stored_before_token_email_read_back_with_it_off() {
        let stored = r#"{"redirect_uris": ["https://a.example/cb"], "bind_ip_range": true}"#;
        let s: AppSettings = serde_json::from_str(stored).unwrap();
        assert!(!s.token_email);
        assert!(s.bind_ip_range);
    }

    #[test]
    fn consent_defaults_follow_first_party() {
        let mut a = app(&["https://a.example/cb"]);
        assert!(a.needs_consent());
        a.settings.first_party = true;
        assert!(!a.needs_consent());
        a.settings.consent = Some(ConsentMode::Required);
        assert!(a.needs_consent());
    }
}
