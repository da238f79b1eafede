//! Server configuration (SPEC §4): one loader for every subcommand.
//!
//! Layers, each overriding the one before: built-in defaults, the
//! configuration file (`postern.toml`, or the path of `--config` /
//! `POSTERN_CONFIG`), `POSTERN_*` environment variables, command-line flags.
//! File keys are the variable names in lower case without the prefix
//! (`public_url`, `database_url`, `mail`, `master_key_file`, …).
//!
//! Everything is parsed once, here, into validated types; a mistake is an
//! error naming the variable (or file key, or flag) it came from. The loader
//! never reads the process environment itself: [`load`] takes it as a map, so
//! tests run sandboxed.
//!
//! The loader is split by concern: [`layers`] reads the file, the
//! environment and the flags; [`values`] validates each value ([`mail`] the
//! mail settings, [`secrets`] the secrets and the master key); [`warnings`]
//! says what is unknown or insecure. Files that only their user can judge
//! (the DKIM key, the GeoIP database) are named here and opened at start-up
//! by [`crate::serve`], with errors that name the setting just the same.

mod layers;
mod mail;
mod secrets;
mod values;
mod warnings;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use postern_core::net::IpCidr;
use postern_core::EmailAddress;
use secrecy::SecretString;
use thiserror::Error;
use url::Url;

pub use layers::load;
pub use secrets::{resolve_master_key, MASTER_KEY_FILE};

/// Where email goes (`POSTERN_MAIL`).
#[derive(Clone, PartialEq, Eq)]
pub enum MailConfig {
    /// Print each email, link included, to standard output (development).
    Stdout,
    /// Write one `.eml` file per message into this directory (development, tests).
    File(PathBuf),
    /// Deliver by SMTP. The scheme says how: `smtps` (TLS from the first byte),
    /// `smtp+starttls` (STARTTLS, required), `smtp` (plain; loopback only
    /// without a warning). The user name, if any, stays in the URL; a password
    /// given in the URL is moved to [`Config::smtp_password`], so this URL
    /// never holds a secret.
    Smtp(Url),
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdout => f.write_str("Stdout"),
            Self::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Self::Smtp(url) => f.debug_tuple("Smtp").field(&url.as_str()).finish(),
        }
    }
}

/// The sender of every email (`POSTERN_MAIL_FROM`): exactly one mailbox,
/// without CR, LF or other control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The setting as given (trimmed), e.g. `Postern <no-reply@localhost>`.
    pub raw: String,
    /// The display name, unquoted, if any (`Postern`).
    pub name: Option<String>,
    /// The bare address (`no-reply@localhost`).
    pub address: String,
}

/// A file named by a setting, resolved against the working directory, and
/// where the setting came from, so that a file that cannot be used when it
/// is opened at start-up is reported by the setting's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingPath {
    /// The file.
    pub path: PathBuf,
    /// Where the setting came from (`POSTERN_GEOIP_DB`, `geoip_db in postern.toml`).
    pub origin: String,
}

impl SettingPath {
    /// The configuration error for this file: `{origin}: {message}`.
    pub fn invalid(&self, message: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            message: message.to_string(),
        }
    }
}

/// DKIM signing settings: which key, and whose signature it makes. The
/// key file is read and checked at start-up, where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// The PEM private key file (`POSTERN_DKIM_KEY_FILE`).
    pub key_file: SettingPath,
    /// The selector, `s=` (`POSTERN_DKIM_SELECTOR`), a DNS label sequence.
    pub selector: String,
    /// The signing domain, `d=` (`POSTERN_DKIM_DOMAIN`), lower case.
    pub domain: String,
}

/// How log lines are written (`POSTERN_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration. Its `Debug` output never shows a secret.
#[derive(Clone)]
pub struct Config {
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Public base URL (`POSTERN_PUBLIC_URL`): http or https, no query or
    /// fragment, without a trailing slash (`https://auth.example.com`). This
    /// is the OIDC issuer; links are `{public_url}/verify-email?...`.
    pub public_url: String,
    /// Address to listen on (`POSTERN_BIND`).
    pub bind: SocketAddr,
    /// `sqlite:...`, `postgres://...` or `postgresql://...` (`POSTERN_DATABASE_URL`).
    pub database_url: String,
    /// Mail transport (`POSTERN_MAIL`).
    pub mail: MailConfig,
    /// Whether `mail` was set explicitly (by file, environment or flag)
    /// rather than left at the `stdout` default.
    pub mail_explicit: bool,
    /// Sender of every email (`POSTERN_MAIL_FROM`).
    pub mail_from: MailFrom,
    /// The master key as 64 hex characters, if given (`POSTERN_MASTER_KEY`
    /// or `POSTERN_MASTER_KEY_FILE`); checked to be well-formed. See
    /// [`resolve_master_key`] for the key actually used.
    pub master_key: Option<SecretString>,
    /// Addresses allowed into `/admin` (`POSTERN_ADMIN_EMAILS`), normalized.
    pub admin_emails: Vec<EmailAddress>,
    /// Whether admins may read a person's sign-in link (`POSTERN_ADMIN_LINKS`).
    pub admin_links: postern_auth::AdminLinks,
    /// Link requests per email address per hour (`POSTERN_RATE_LIMIT_EMAIL_PER_HOUR`), ≥ 1.
    pub rate_limit_email_per_hour: u32,
    /// Link requests per client IP per hour (`POSTERN_RATE_LIMIT_IP_PER_HOUR`), ≥ 1.
    pub rate_limit_ip_per_hour: u32,
    /// Proxies whose `X-Forwarded-For` is believed (`POSTERN_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpCidr>,
    /// HTTP connections served at once (`POSTERN_MAX_CONNECTIONS`), ≥ 1;
    /// further ones wait to be accepted.
    pub max_connections: u32,
    /// Whether anyone may read `/metrics` (`POSTERN_METRICS_PUBLIC`);
    /// otherwise loopback clients and admin tokens only.
    pub metrics_public: bool,
    /// Sliding inactivity limit of a browser session, seconds (`POSTERN_SESSION_IDLE_TTL`), > 0.
    pub session_idle_ttl: i64,
    /// Absolute cap on a session's age, seconds (`POSTERN_SESSION_MAX_AGE`), > 0.
    pub session_max_age: i64,
    /// How long sign-in history and stored IP addresses are kept, seconds
    /// (`POSTERN_HISTORY_RETENTION`), > 0.
    pub history_retention: i64,
    /// How long a stopping server (SIGTERM) may take to finish in-flight
    /// requests and deliveries before it exits, seconds
    /// (`POSTERN_SHUTDOWN_GRACE`), > 0.
    pub shutdown_grace: i64,
    /// SMTP connections each instance may hold open, and so messages in
    /// flight (`POSTERN_SMTP_CONNECTIONS`), 1 to 256.
    pub smtp_connections: u32,
    /// SMTP password (`POSTERN_SMTP_PASSWORD`, `POSTERN_SMTP_PASSWORD_FILE`,
    /// or the password part of an SMTP `POSTERN_MAIL` URL, percent-decoded).
    pub smtp_password: Option<SecretString>,
    /// DKIM signing of every email (`POSTERN_DKIM_KEY_FILE`,
    /// `POSTERN_DKIM_SELECTOR`, `POSTERN_DKIM_DOMAIN`, all three or none).
    /// The key file is opened at start-up ([`crate::serve::open_dkim`]).
    pub dkim: Option<DkimSettings>,
    /// The GeoIP database (MaxMind format, e.g. GeoLite2-City) that places
    /// session addresses on `/account` (`POSTERN_GEOIP_DB`), opened at
    /// start-up ([`crate::serve::open_geoip`]).
    pub geoip_db: Option<SettingPath>,
    /// `tracing` filter directive (`POSTERN_LOG`), checked to parse.
    pub log: String,
    /// Log line format (`POSTERN_LOG_FORMAT`).
    pub log_format: LogFormat,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("Config")
            .field("config_file", &self.config_file)
            .field("public_url", &self.public_url)
            .field("bind", &self.bind)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("mail", &self.mail)
            .field("mail_explicit", &self.mail_explicit)
            .field("mail_from", &self.mail_from.raw)
            .field("master_key", &redacted(&self.master_key))
            .field("admin_emails", &self.admin_emails)
            .field("admin_links", &self.admin_links)
            .field("rate_limit_email_per_hour", &self.rate_limit_email_per_hour)
            .field("rate_limit_ip_per_hour", &self.rate_limit_ip_per_hour)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_connections", &self.max_connections)
            .field("metrics_public", &self.metrics_public)
            .field("session_idle_ttl", &self.session_idle_ttl)
            .field("session_max_age", &self.session_max_age)
            .field("history_retention", &self.history_retention)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("smtp_connections", &self.smtp_connections)
            .field("smtp_password", &redacted(&self.smtp_password))
            .field("dkim", &self.dkim)
            .field("geoip_db", &self.geoip_db)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Config {
    /// Whether the public URL's host is loopback (`127.0.0.0/8`, `::1`,
    /// `localhost` or a `*.localhost` name).
    pub fn is_loopback_public_url(&self) -> bool {
        Url::parse(&self.public_url).is_ok_and(|u| warnings::is_loopback_url(&u))
    }

    /// Whether cookies carry `Secure`: exactly when the public URL is https (SPEC §3.3).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The public URL parsed (always succeeds: it was validated at load).
    pub fn public_url_parsed(&self) -> Url {
        Url::parse(&self.public_url).expect("public_url was validated at load")
    }
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: the configuration file (a missing file is an error).
    pub config: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--public-url`.
    pub public_url: Option<String>,
    /// `--bind`.
    pub bind: Option<String>,
}

/// Why the configuration was refused. Each message names where the bad
/// value came from.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from (`POSTERN_BIND`, `bind in postern.toml`, `--bind`).
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// A secret and its `_FILE` variant given together.
    #[error("{0} and {1} are both set: set only one")]
    BothSet(String, String),
    /// The configuration file could not be read or parsed.
    #[error("configuration file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The stdout transport with a public URL other people can reach (SPEC §4).
    #[error(
        "POSTERN_PUBLIC_URL {0} is not a loopback address, but no mail transport is configured: \
         set POSTERN_MAIL to an smtp://, smtps:// or smtp+starttls:// URL (or set POSTERN_MAIL=stdout \
         explicitly to print emails, sign-in links included, to standard output)"
    )]
    StdoutMailOnPublicUrl(String),
}

/// A raw value and where it came from.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    origin: String,
}

impl Raw {
    fn invalid(&self, message: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            message: message.to_string(),
        }
    }
}

fn redact_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod testing {
    use std::collections::BTreeMap;

    use super::*;

    /// An environment as a list of pairs.
    pub type Env<'a> = &'a [(&'a str, &'a str)];

    /// A well-formed master key.
    pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Loads with `pairs` as the environment, no flags and an empty working directory.
    pub fn load_env(pairs: &[(&str, &str)]) -> Result<(Config, Vec<String>), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        load(&Overrides::default(), &env(pairs), dir.path())
    }

    pub fn error(pairs: &[(&str, &str)]) -> String {
        match load_env(pairs) {
            Ok(_) => panic!("{pairs:?} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    pub fn warnings(pairs: &[(&str, &str)]) -> Vec<String> {
        load_env(pairs)
            .unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
            .1
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;

    #[test]
    fn debug_output_shows_no_secret() {
        let (c, _) = load_env(&[
            ("POSTERN_MASTER_KEY", KEY),
            ("POSTERN_MAIL", "smtps://user:hunter2@mail.example.com"),
            (
                "POSTERN_DATABASE_URL",
                "postgres://postern:dbpass@db.example.com/postern",
            ),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        for secret in [KEY, "hunter2", "dbpass"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("mail.example.com"), "{shown}");
    }
}
