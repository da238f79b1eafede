//! Postern's services: the rules of signing in, the OpenID Provider, the
//! headless API, accounts and signing keys, knowing no HTTP.
//!
//! A service takes typed input and returns an outcome that names every way
//! forward, or an [`AuthError`] that names what went wrong; the web crate,
//! the CLI and any later face turn both into their own answers. Everything a
//! service needs is in one [`Services`] value; nothing is global, and the
//! clock is injected so tests move time instead of waiting.

pub mod account;
pub mod admin;
pub mod error;
pub mod explain;
pub mod geoip;
pub mod headless;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod passkeys;
pub mod response;
pub mod signin;

use std::sync::Arc;

use postern_core::{Clock, Secrets};
use postern_store::Store;
use url::Url;

pub use error::{AuthError, Flow, GrantError, RequestProblem, Result, TokenProblem};
pub use keys::KeyManager;
pub use response::{Answer, AuthorizationResponse};

/// Settings the services need, already validated by the binary's loader.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `POSTERN_PUBLIC_URL`: the issuer, and the base of links in emails.
    pub public_url: Url,
    /// Requests per email address per hour (`POSTERN_RATE_LIMIT_EMAIL_PER_HOUR`).
    pub rate_limit_email_per_hour: i64,
    /// Requests per IP per hour (`POSTERN_RATE_LIMIT_IP_PER_HOUR`).
    pub rate_limit_ip_per_hour: i64,
    /// Sliding inactivity limit of a session, seconds.
    pub session_idle_ttl: i64,
    /// Absolute cap of a session, seconds.
    pub session_max_age: i64,
    /// Domain for `Message-ID` headers (from `POSTERN_MAIL_FROM`).
    pub mail_from_domain: String,
    /// Administrators' normalized addresses (`POSTERN_ADMIN_EMAILS`).
    pub admin_emails: Vec<String>,
    /// What admins may do with a person's sign-in link
    /// (`POSTERN_ADMIN_LINKS`).
    pub admin_links: AdminLinks,
}

/// `POSTERN_ADMIN_LINKS` (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminLinks {
    /// Admins can email a person a sign-in link (the default).
    #[default]
    Send,
    /// They may also read the link itself (`"send": false`).
    Copy,
}

impl Settings {
    /// The issuer: the public URL without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// An absolute URL on this server for `path` (starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer(), path)
    }
}

/// Everything a service may use. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Services {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Database.
    pub store: Store,
    /// Keys derived from the master key.
    pub secrets: Arc<Secrets>,
    /// Time source (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Signing keys, shared by every instance through the database.
    pub keys: KeyManager,
    /// This instance's outbox: messages are queued leased to its worker and
    /// handed over after the commit (`hand_over`).
    pub mail_wake: postern_mail::MailQueue,
    /// What `/metrics` counts of the services' decisions.
    pub metrics: metrics::AuthMetrics,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The current time, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
