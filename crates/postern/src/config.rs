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

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_core::net::IpCidr;
use postern_core::{EmailAddress, MasterKey};
use postern_mail::dkim::{Dkim, DkimError};
use postern_store::Backend;
use postern_web::geoip::GeoIp;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use url::Url;

/// Prefix of every environment variable Postern reads.
const ENV_PREFIX: &str = "POSTERN_";
/// Name of the configuration file looked for in the working directory.
const DEFAULT_CONFIG_FILE: &str = "postern.toml";
/// Name of the master key file created next to a SQLite database.
pub const MASTER_KEY_FILE: &str = "postern.key";

/// Every setting, by its file key; the environment variable is
/// `POSTERN_` + the key in upper case.
const KEYS: &[&str] = &[
    "public_url",
    "bind",
    "database_url",
    "mail",
    "mail_from",
    "master_key",
    "master_key_file",
    "admin_emails",
    "rate_limit_email_per_hour",
    "rate_limit_ip_per_hour",
    "trusted_proxies",
    "max_connections",
    "session_idle_ttl",
    "session_max_age",
    "history_retention",
    "smtp_password",
    "smtp_password_file",
    "dkim_key_file",
    "dkim_selector",
    "dkim_domain",
    "geoip_db",
    "log",
    "log_format",
];

/// Secrets that may also be given as the path of a file holding them.
const SECRETS: &[&str] = &["master_key", "smtp_password"];

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
    /// Link requests per email address per hour (`POSTERN_RATE_LIMIT_EMAIL_PER_HOUR`), ≥ 1.
    pub rate_limit_email_per_hour: u32,
    /// Link requests per client IP per hour (`POSTERN_RATE_LIMIT_IP_PER_HOUR`), ≥ 1.
    pub rate_limit_ip_per_hour: u32,
    /// Proxies whose `X-Forwarded-For` is believed (`POSTERN_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpCidr>,
    /// HTTP connections served at once (`POSTERN_MAX_CONNECTIONS`), ≥ 1;
    /// further ones wait to be accepted.
    pub max_connections: u32,
    /// Sliding inactivity limit of a browser session, seconds (`POSTERN_SESSION_IDLE_TTL`), > 0.
    pub session_idle_ttl: i64,
    /// Absolute cap on a session's age, seconds (`POSTERN_SESSION_MAX_AGE`), > 0.
    pub session_max_age: i64,
    /// How long sign-in history and stored IP addresses are kept, seconds
    /// (`POSTERN_HISTORY_RETENTION`), > 0.
    pub history_retention: i64,
    /// SMTP password (`POSTERN_SMTP_PASSWORD`, `POSTERN_SMTP_PASSWORD_FILE`,
    /// or the password part of an SMTP `POSTERN_MAIL` URL, percent-decoded).
    pub smtp_password: Option<SecretString>,
    /// DKIM signing of every email (`POSTERN_DKIM_KEY_FILE`,
    /// `POSTERN_DKIM_SELECTOR`, `POSTERN_DKIM_DOMAIN`, all three or none),
    /// the key loaded and checked.
    pub dkim: Option<Arc<Dkim>>,
    /// The GeoIP database (MaxMind format, e.g. GeoLite2-City) that places
    /// session addresses on `/account` (`POSTERN_GEOIP_DB`), opened and
    /// checked at load.
    pub geoip: Option<Arc<GeoIp>>,
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
            .field("rate_limit_email_per_hour", &self.rate_limit_email_per_hour)
            .field("rate_limit_ip_per_hour", &self.rate_limit_ip_per_hour)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_connections", &self.max_connections)
            .field("session_idle_ttl", &self.session_idle_ttl)
            .field("session_max_age", &self.session_max_age)
            .field("history_retention", &self.history_retention)
            .field("smtp_password", &redacted(&self.smtp_password))
            .field("dkim", &self.dkim)
            .field("geoip", &self.geoip)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Config {
    /// Whether the public URL's host is loopback (`127.0.0.0/8`, `::1`,
    /// `localhost` or a `*.localhost` name).
    pub fn is_loopback_public_url(&self) -> bool {
        Url::parse(&self.public_url).is_ok_and(|u| is_loopback_url(&u))
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

fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// Loads the configuration from its layers. `env` is the process environment
/// (only `POSTERN_*` entries are looked at); relative paths (the
/// configuration file, `*_FILE` secrets, `file://` is always absolute) are
/// resolved against `working_dir`, where `postern.toml` is also looked for
/// when no file is named. Returns the configuration and the warnings to log
/// at start-up (unknown variables, insecure settings).
pub fn load(
    flags: &Overrides,
    env: &BTreeMap<String, String>,
    working_dir: &Path,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();

    // Layer 1: the configuration file.
    let explicit_file = flags
        .config
        .clone()
        .map(|p| (p, "--config".to_owned()))
        .or_else(|| {
            env.get("POSTERN_CONFIG")
                .map(|p| (PathBuf::from(p), "POSTERN_CONFIG".to_owned()))
        });
    let config_file = match explicit_file {
        Some((path, origin)) => {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    origin,
                    message: "empty path".into(),
                });
            }
            Some(working_dir.join(path))
        }
        None => Some(working_dir.join(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    if let Some(path) = &config_file {
        let layer = read_config_file(path, &mut warnings)?;
        apply_layer(&mut raw, layer)?;
    }

    // Layer 2: the environment.
    let mut layer = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == "POSTERN_CONFIG" || rest.starts_with("TEST_") {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        match KEYS.iter().find(|k| **k == key) {
            Some(k) if rest == k.to_ascii_uppercase() => layer.push((
                *k,
                Raw {
                    value: value.clone(),
                    origin: name.clone(),
                },
            )),
            _ => {
                let known: Vec<String> = KEYS.iter().map(|k| env_name(k)).collect();
                warnings.push(unknown_setting_warning(
                    &format!("unknown environment variable {name} is ignored"),
                    name,
                    known.iter().map(String::as_str),
                ));
            }
        }
    }
    apply_layer(&mut raw, layer)?;

    // Layer 3: command-line flags.
    let flag_layer = [
        ("database_url", &flags.database_url, "--database-url"),
        ("public_url", &flags.public_url, "--public-url"),
        ("bind", &flags.bind, "--bind"),
    ]
    .into_iter()
    .filter_map(|(key, value, flag)| {
        value.as_ref().map(|v| {
            (
                key,
                Raw {
                    value: v.clone(),
                    origin: flag.to_owned(),
                },
            )
        })
    })
    .collect();
    apply_layer(&mut raw, flag_layer)?;

    let config = build(raw, config_file, working_dir, &mut warnings)?;
    Ok((config, warnings))
}

/// Reads `path` as flat TOML into raw values. Strings are taken as they are,
/// integers as their decimal text, arrays of strings joined with commas.
fn read_config_file(
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<(&'static str, Raw)>, ConfigError> {
    let file_error = |message: String| ConfigError::File {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(e.message().to_owned()))?;
    let shown = path.display();
    let mut layer = Vec::new();
    for (key, value) in table {
        let Some(known) = KEYS.iter().find(|k| **k == key) else {
            warnings.push(unknown_setting_warning(
                &format!("unknown key {key:?} in {shown} is ignored"),
                &key,
                KEYS.iter().copied(),
            ));
            continue;
        };
        let origin = format!("{key} in {shown}");
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    _ => Err(ConfigError::Invalid {
                        origin: origin.clone(),
                        message: "expected a list of strings".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => {
                return Err(ConfigError::Invalid {
                    origin,
                    message: "expected a string or a number".into(),
                })
            }
        };
        layer.push((*known, Raw { value, origin }));
    }
    Ok(layer)
}

/// Applies one layer over the ones before. A secret given in a layer, as a
/// value or as a file, replaces both forms from lower layers; both forms in
/// the same layer are an error.
fn apply_layer(
    raw: &mut BTreeMap<&'static str, Raw>,
    layer: Vec<(&'static str, Raw)>,
) -> Result<(), ConfigError> {
    for secret in SECRETS {
        let file_key = format!("{secret}_file");
        let direct = layer.iter().find(|(k, _)| k == secret);
        let file = layer.iter().find(|(k, _)| *k == file_key);
        match (direct, file) {
            (Some((_, a)), Some((_, b))) => {
                return Err(ConfigError::BothSet(a.origin.clone(), b.origin.clone()))
            }
            (None, None) => {}
            _ => {
                raw.remove(secret);
                raw.remove(file_key.as_str());
            }
        }
    }
    raw.extend(layer);
    Ok(())
}

/// "unknown … ignored", plus "did you mean X?" when a known name is close.
fn unknown_setting_warning<'a>(
    message: &str,
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> String {
    let upper = name.to_ascii_uppercase();
    let best = known
        .map(|k| (levenshtein(&upper, &k.to_ascii_uppercase()), k))
        .min_by_key(|(d, _)| *d);
    match best {
        // Close enough to be a typo: a few edits, and not most of the name.
        Some((d, k)) if d <= 3 && d * 3 <= upper.len() => format!("{message} (did you mean {k}?)"),
        _ => message.to_owned(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Turns the layered raw values into a validated [`Config`].
fn build(
    mut raw: BTreeMap<&'static str, Raw>,
    config_file: Option<PathBuf>,
    working_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let mut take = |key: &'static str| raw.remove(key);

    let public_url = match take("public_url") {
        Some(r) => parse_public_url(&r)?,
        None => "http://127.0.0.1:8080".to_owned(),
    };
    let bind = match take("bind") {
        Some(r) => r.value.trim().parse().map_err(|_| {
            r.invalid(format!(
                "{:?} is not a socket address such as 127.0.0.1:8080 or [::]:8080",
                r.value
            ))
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let database_url = match take("database_url") {
        Some(r) => {
            let v = r.value.trim();
            if !(v.starts_with("sqlite:")
                || v.starts_with("postgres://")
                || v.starts_with("postgresql://"))
            {
                return Err(
                    r.invalid("use sqlite://path/to/postern.db or postgres://user@host/database")
                );
            }
            v.to_owned()
        }
        None => "sqlite://postern.db".to_owned(),
    };
    let mut smtp_password = secret(
        take("smtp_password"),
        take("smtp_password_file"),
        working_dir,
        warnings,
    )?
    .map(|(s, _)| s);
    let (mail, mail_explicit) = match take("mail") {
        Some(r) => (parse_mail(&r, &mut smtp_password)?, true),
        None => (MailConfig::Stdout, false),
    };
    let mail_from = match take("mail_from") {
        Some(r) => parse_mail_from(&r.value).map_err(|m| r.invalid(m))?,
        None => parse_mail_from("Postern <no-reply@localhost>").expect("default sender parses"),
    };
    let dkim = parse_dkim(
        take("dkim_key_file"),
        take("dkim_selector"),
        take("dkim_domain"),
        &mail_from,
        working_dir,
        warnings,
    )?;
    let master_key = match secret(
        take("master_key"),
        take("master_key_file"),
        working_dir,
        warnings,
    )? {
        Some((key, source)) => {
            if MasterKey::from_hex(key.expose_secret()).is_err() {
                return Err(ConfigError::Invalid {
                    origin: source.origin.clone(),
                    message: "the master key must be 64 hexadecimal characters (32 bytes); \
                              generate one with `openssl rand -hex 32`"
                        .into(),
                });
            }
            if !source.from_file {
                warnings.push(format!(
                    "the master key is given directly in {}; prefer POSTERN_MASTER_KEY_FILE \
                     (values in the environment or config file leak into process listings, \
                     crash reports and backups)",
                    source.origin
                ));
            }
            Some(key)
        }
        None => None,
    };
    let admin_emails = match take("admin_emails") {
        Some(r) => list(&r.value)
            .map(|item| EmailAddress::parse(item).map_err(|e| r.invalid(format!("{item:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let rate_limit_email_per_hour = positive_int(take("rate_limit_email_per_hour"), 20)?;
    let rate_limit_ip_per_hour = positive_int(take("rate_limit_ip_per_hour"), 100)?;
    let trusted_proxies = match take("trusted_proxies") {
        Some(r) => list(&r.value)
            .map(|item| item.parse::<IpCidr>().map_err(|e| r.invalid(e)))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let max_connections = positive_int(
        take("max_connections"),
        postern_web::server::DEFAULT_MAX_CONNECTIONS as u32,
    )?;
    let session_idle_ttl = duration(take("session_idle_ttl"), 30 * 86_400)?;
    let session_max_age = duration(take("session_max_age"), 90 * 86_400)?;
    let history_retention = duration(take("history_retention"), 90 * 86_400)?;
    let geoip = match take("geoip_db") {
        Some(r) => {
            let path = working_dir.join(r.value.trim());
            let db = GeoIp::open(&path).map_err(|e| {
                r.invalid(format!(
                    "cannot use {} as a GeoIP database (a MaxMind .mmdb file such as \
                     GeoLite2-City.mmdb): {e}",
                    path.display()
                ))
            })?;
            Some(Arc::new(db))
        }
        None => None,
    };
    let log = match take("log") {
        Some(r) => {
            let v = r.value.trim().to_owned();
            tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| {
                r.invalid(format!(
                    "not a log filter such as `info` or `postern=debug,info`: {e}"
                ))
            })?;
            v
        }
        None => "info".to_owned(),
    };
    let log_format = match take("log_format") {
        Some(r) => match r.value.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(r.invalid("use text or json")),
        },
        None => LogFormat::Text,
    };
    debug_assert!(raw.is_empty(), "every key is read: {raw:?}");

    let config = Config {
        config_file,
        public_url,
        bind,
        database_url,
        mail,
        mail_explicit,
        mail_from,
        master_key,
        admin_emails,
        rate_limit_email_per_hour,
        rate_limit_ip_per_hour,
        trusted_proxies,
        max_connections,
        session_idle_ttl,
        session_max_age,
        history_retention,
        smtp_password,
        dkim,
        geoip,
        log,
        log_format,
    };
    check_security(&config, warnings)?;
    Ok(config)
}

/// The rules of SPEC §4 on who may read mail, and loud warnings for settings
/// that would be insecure in production.
fn check_security(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let loopback = config.is_loopback_public_url();
    if !loopback && !config.secure_cookies() {
        warnings.push(format!(
            "POSTERN_PUBLIC_URL {} uses plain http on a host that is not loopback: sign-in links, \
             codes and session cookies travel unencrypted; use https",
            config.public_url
        ));
    }
    match &config.mail {
        MailConfig::Stdout if !loopback => {
            if !config.mail_explicit {
                return Err(ConfigError::StdoutMailOnPublicUrl(
                    config.public_url.clone(),
                ));
            }
            warnings.push(format!(
                "POSTERN_MAIL=stdout with the public URL {}: every email, sign-in link included, \
                 is printed to standard output instead of being sent",
                config.public_url
            ));
        }
        MailConfig::File(dir) if !loopback => warnings.push(format!(
            "POSTERN_MAIL writes emails, sign-in links included, to {} instead of sending them, \
             with the public URL {}",
            dir.display(),
            config.public_url
        )),
        MailConfig::Smtp(smtp) if smtp.scheme() == "smtp" && !is_loopback_url(smtp) => warnings
            .push(format!(
                "POSTERN_MAIL uses plain smtp:// to {}: emails carrying sign-in links are sent \
                 unencrypted; use smtps:// or smtp+starttls://",
                smtp.host_str().unwrap_or_default()
            )),
        _ => {}
    }
    if config.session_idle_ttl > config.session_max_age {
        warnings.push(
            "POSTERN_SESSION_IDLE_TTL is longer than POSTERN_SESSION_MAX_AGE: sessions end at \
             the maximum age regardless"
                .into(),
        );
    }
    Ok(())
}

fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical().is_loopback(),
        Some(url::Host::Domain(d)) => {
            // URLs of schemes the url crate does not know (smtp://) keep an IP
            // host as an opaque name.
            if let Ok(ip) = d.parse::<IpAddr>() {
                return ip.to_canonical().is_loopback();
            }
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

fn parse_public_url(r: &Raw) -> Result<String, ConfigError> {
    let url = Url::parse(r.value.trim())
        .map_err(|e| r.invalid(format!("{:?} is not an absolute URL ({e})", r.value)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(r.invalid("the public URL must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(r.invalid("the public URL must not have a query (?) or fragment (#)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(r.invalid("the public URL must not contain a user name or password"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_mail(
    r: &Raw,
    smtp_password: &mut Option<SecretString>,
) -> Result<MailConfig, ConfigError> {
    let v = r.value.trim();
    if v == "stdout" {
        return Ok(MailConfig::Stdout);
    }
    let usage = "use stdout, file:///directory, smtp://host:port, smtps://user:password@host:465 \
                 or smtp+starttls://host:587";
    // Never echo the value: it may hold a password.
    let mut url =
        Url::parse(v).map_err(|_| r.invalid(format!("not a mail transport URL; {usage}")))?;
    match url.scheme() {
        "file" => {
            if url.host().is_some() || url.query().is_some() || url.fragment().is_some() {
                return Err(r.invalid("use file:///absolute/directory"));
            }
            let dir = url
                .to_file_path()
                .map_err(|()| r.invalid("use file:///absolute/directory"))?;
            Ok(MailConfig::File(dir))
        }
        "smtp" | "smtps" | "smtp+starttls" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(r.invalid("the SMTP URL needs a host"));
            }
            if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some()
            {
                return Err(r.invalid("the SMTP URL takes only user, password, host and port"));
            }
            if let Some(password) = url.password() {
                if smtp_password.is_some() {
                    return Err(r.invalid(
                        "the SMTP URL holds a password and POSTERN_SMTP_PASSWORD is set too: set only one",
                    ));
                }
                *smtp_password = Some(SecretString::from(percent_decode(password)));
                // Keep the secret out of the URL, which is logged and shown.
                let _ = url.set_password(None);
            }
            Ok(MailConfig::Smtp(url))
        }
        _ => Err(r.invalid(usage)),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// DKIM signing: the key file (RSA or Ed25519 PEM, read and checked now),
/// the selector and the signing domain, all three or none.
fn parse_dkim(
    key_file: Option<Raw>,
    selector: Option<Raw>,
    domain: Option<Raw>,
    mail_from: &MailFrom,
    working_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<Arc<Dkim>>, ConfigError> {
    let (key_file, selector, domain) = match (key_file, selector, domain) {
        (None, None, None) => return Ok(None),
        (Some(k), Some(s), Some(d)) => (k, s, d),
        (k, s, d) => {
            let given = [&k, &s, &d]
                .into_iter()
                .flatten()
                .next()
                .expect("one is set");
            let missing: Vec<&str> = [
                (k.is_none(), "POSTERN_DKIM_KEY_FILE"),
                (s.is_none(), "POSTERN_DKIM_SELECTOR"),
                (d.is_none(), "POSTERN_DKIM_DOMAIN"),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect();
            return Err(given.invalid(format!(
                "DKIM signing needs POSTERN_DKIM_KEY_FILE, POSTERN_DKIM_SELECTOR and \
                 POSTERN_DKIM_DOMAIN together; missing {}",
                missing.join(" and ")
            )));
        }
    };
    let path = working_dir.join(key_file.value.trim());
    let (pem, _) =
        secret(None, Some(key_file.clone()), working_dir, warnings)?.expect("a key file was given");
    let dkim = Dkim::from_pem(&selector.value, &domain.value, pem.expose_secret()).map_err(
        |e| match &e {
            DkimError::BadName(name) if name == selector.value.trim() => selector.invalid(&e),
            DkimError::BadName(_) => domain.invalid(&e),
            _ => key_file.invalid(format!("{}: {e}", path.display())),
        },
    )?;
    let from_domain = mail_from
        .address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let aligned =
        from_domain == dkim.domain() || from_domain.ends_with(&format!(".{}", dkim.domain()));
    if !aligned {
        warnings.push(format!(
            "POSTERN_DKIM_DOMAIN {} is not the domain of POSTERN_MAIL_FROM ({from_domain}) \
             or a parent of it: receivers that check DMARC will not count this signature",
            dkim.domain()
        ));
    }
    Ok(Some(Arc::new(dkim)))
}

/// Parses `Name <local@domain>`, `"Name" <local@domain>` or `local@domain`.
fn parse_mail_from(text: &str) -> Result<MailFrom, String> {
    let raw = text.trim();
    if raw.chars().any(char::is_control) {
        return Err("the sender must not contain line breaks or control characters".into());
    }
    let (name, address) = match raw.strip_suffix('>').and_then(|r| r.split_once('<')) {
        Some((name, address)) => {
            let name = name.trim();
            let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted,
                None if name.contains([',', ';', ':', '@', '(', ')', '[', ']']) => {
                    return Err("put a display name with , ; : @ ( ) [ ] in double quotes".into())
                }
                None => name,
            };
            if name.contains(['"', '\\', '<', '>']) {
                return Err("the display name must not contain \" \\ < or >".into());
            }
            ((!name.is_empty()).then(|| name.to_owned()), address.trim())
        }
        None => (None, raw),
    };
    if !is_plain_address(address) {
        return Err(format!(
            "{raw:?} is not one mailbox such as `Postern <no-reply@example.com>`"
        ));
    }
    Ok(MailFrom {
        raw: raw.to_owned(),
        name,
        address: address.to_owned(),
    })
}

/// `local@domain` with a dot-atom local part and an ASCII host name (one
/// label allowed, so `no-reply@localhost` works for development).
fn is_plain_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c == '.' || atext(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// Where a secret came from.
struct SecretSource {
    origin: String,
    from_file: bool,
}

/// Reads a secret given directly or as a file (contents trimmed).
fn secret(
    direct: Option<Raw>,
    file: Option<Raw>,
    working_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<(SecretString, SecretSource)>, ConfigError> {
    // `apply_layer` guarantees at most one survives.
    if let Some(r) = direct {
        let value = r.value.trim();
        if value.is_empty() {
            return Err(r.invalid("empty secret"));
        }
        let source = SecretSource {
            origin: r.origin.clone(),
            from_file: false,
        };
        return Ok(Some((SecretString::from(value.to_owned()), source)));
    }
    let Some(r) = file else {
        return Ok(None);
    };
    let path = working_dir.join(r.value.trim());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| r.invalid(format!("cannot read {}: {e}", path.display())))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(r.invalid(format!("{} is empty", path.display())));
    }
    if let Some(w) = readable_by_others(&path) {
        warnings.push(format!("{} ({})", w, r.origin));
    }
    let source = SecretSource {
        origin: r.origin.clone(),
        from_file: true,
    };
    Ok(Some((SecretString::from(value.to_owned()), source)))
}

/// A warning if a secret file can be read by its group or others.
fn readable_by_others(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "secret file {} can be read by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn positive_int(r: Option<Raw>, default: u32) -> Result<u32, ConfigError> {
    let Some(r) = r else {
        return Ok(default);
    };
    match r.value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(r.invalid(format!("{:?} is not a positive whole number", r.value))),
    }
}

fn duration(r: Option<Raw>, default: i64) -> Result<i64, ConfigError> {
    let Some(r) = r else {
        return Ok(default);
    };
    match postern_core::duration::parse_duration(&r.value) {
        Ok(s) if s > 0 => Ok(s),
        Ok(_) => Err(r.invalid("the duration must be longer than zero")),
        Err(e) => Err(r.invalid(e)),
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

/// The master key to run with, and a notice to log when something happened
/// that the operator must know about.
///
/// An explicit key (`POSTERN_MASTER_KEY` or `_FILE`) wins. PostgreSQL
/// requires one: every instance must share it. With SQLite and no key set,
/// `dir/postern.key` is read, or created (mode 0600, never overwritten) with
/// a fresh key and a notice to back it up separately from the database.
pub fn resolve_master_key(
    cfg: &Config,
    backend: Backend,
    dir: &Path,
) -> anyhow::Result<(MasterKey, Option<String>)> {
    if let Some(hex) = &cfg.master_key {
        let key = MasterKey::from_hex(hex.expose_secret())?;
        return Ok((key, None));
    }
    if backend == Backend::Postgres {
        anyhow::bail!(
            "PostgreSQL needs a master key shared by every instance: set POSTERN_MASTER_KEY_FILE \
             (or POSTERN_MASTER_KEY) to 64 hexadecimal characters, e.g. from `openssl rand -hex 32`"
        );
    }
    let path = dir.join(MASTER_KEY_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            let key = MasterKey::generate();
            file.write_all(format!("{}\n", key.to_hex()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    anyhow::anyhow!("cannot write the master key file {}: {e}", path.display())
                })?;
            let notice = format!(
                "created the master key file {} (mode 0600): back it up separately from the \
                 database; without it, the encrypted data in the database cannot be read",
                path.display()
            );
            Ok((key, Some(notice)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("cannot read the master key file {}: {e}", path.display())
            })?;
            let key = MasterKey::from_hex(&text).map_err(|e| {
                anyhow::anyhow!("the master key file {} is damaged: {e}", path.display())
            })?;
            Ok((key, readable_by_others(&path)))
        }
        Err(e) => anyhow::bail!("cannot create the master key file {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment as a list of pairs.
    type Env<'a> = &'a [(&'a str, &'a str)];

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Loads with `pairs` as the environment, no flags and an empty working directory.
    fn load_env(pairs: &[(&str, &str)]) -> Result<(Config, Vec<String>), ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        load(&Overrides::default(), &env(pairs), dir.path())
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match load_env(pairs) {
            Ok(_) => panic!("{pairs:?} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    fn warnings(pairs: &[(&str, &str)]) -> Vec<String> {
        load_env(pairs)
            .unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
            .1
    }

    #[test]
    fn defaults_are_those_of_the_spec() {
        let (c, w) = load_env(&[]).unwrap();
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url, "sqlite://postern.db");
        assert_eq!(c.mail, MailConfig::Stdout);
        assert!(!c.mail_explicit);
        assert_eq!(c.mail_from.raw, "Postern <no-reply@localhost>");
        assert_eq!(c.mail_from.name.as_deref(), Some("Postern"));
        assert_eq!(c.mail_from.address, "no-reply@localhost");
        assert!(c.master_key.is_none());
        assert!(c.admin_emails.is_empty());
        assert_eq!(
            (c.rate_limit_email_per_hour, c.rate_limit_ip_per_hour),
            (20, 100)
        );
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.max_connections, 512);
        assert_eq!(c.session_idle_ttl, 30 * 86_400);
        assert_eq!(c.session_max_age, 90 * 86_400);
        assert_eq!(c.history_retention, 90 * 86_400);
        assert!(c.smtp_password.is_none());
        assert!(c.geoip.is_none());
        assert_eq!(c.log, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.config_file.is_none());
        assert!(c.is_loopback_public_url());
        assert!(!c.secure_cookies());
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postern.toml"),
            "bind = \"127.0.0.1:1001\"\npublic_url = \"http://127.0.0.1:1001/\"\n\
             database_url = \"sqlite://file.db\"\nrate_limit_ip_per_hour = 7\n\
             admin_emails = [\"a@example.com\", \"B@Example.com\"]\n",
        )
        .unwrap();
        let none = Overrides::default();
        // Defaults < file (found in the working directory).
        let (c, _) = load(&none, &env(&[]), dir.path()).unwrap();
        assert_eq!(c.config_file, Some(dir.path().join("postern.toml")));
        assert_eq!(c.bind.port(), 1001);
        assert_eq!(c.public_url, "http://127.0.0.1:1001");
        assert_eq!(c.database_url, "sqlite://file.db");
        assert_eq!(c.rate_limit_ip_per_hour, 7);
        assert_eq!(c.rate_limit_email_per_hour, 20);
        let admins: Vec<&str> = c.admin_emails.iter().map(|e| e.as_str()).collect();
        assert_eq!(admins, ["a@example.com", "b@example.com"]);
        // File < environment.
        let e = env(&[
            ("POSTERN_BIND", "127.0.0.1:1002"),
            ("POSTERN_DATABASE_URL", "sqlite://env.db"),
            ("POSTERN_PUBLIC_URL", "http://localhost:1002"),
        ]);
        let (c, _) = load(&none, &e, dir.path()).unwrap();
        assert_eq!(c.bind.port(), 1002);
        assert_eq!(c.database_url, "sqlite://env.db");
        assert_eq!(c.public_url, "http://localhost:1002");
        assert_eq!(
            c.rate_limit_ip_per_hour, 7,
            "the file still counts where env is silent"
        );
        // Environment < flags.
        let flags = Overrides {
            config: None,
            database_url: Some("postgres://db.internal/postern".into()),
            public_url: Some("http://[::1]:1003".into()),
            bind: Some("[::1]:1003".into()),
        };
        let (c, _) = load(&flags, &e, dir.path()).unwrap();
        assert_eq!(c.bind, "[::1]:1003".parse().unwrap());
        assert_eq!(c.database_url, "postgres://db.internal/postern");
        assert_eq!(c.public_url, "http://[::1]:1003");
        assert!(c.is_loopback_public_url());
    }

    #[test]
    fn the_config_file_is_named_by_flag_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "bind = \"127.0.0.1:1\"").unwrap();
        std::fs::write(dir.path().join("b.toml"), "bind = \"127.0.0.1:2\"").unwrap();
        std::fs::write(dir.path().join("postern.toml"), "bind = \"127.0.0.1:3\"").unwrap();
        let by_env = env(&[("POSTERN_CONFIG", "b.toml")]);
        let (c, w) = load(&Overrides::default(), &by_env, dir.path()).unwrap();
        assert_eq!(c.bind.port(), 2);
        assert!(
            w.is_empty(),
            "POSTERN_CONFIG is not an unknown variable: {w:?}"
        );
        let flags = Overrides {
            config: Some("a.toml".into()),
            ..Overrides::default()
        };
        let (c, _) = load(&flags, &by_env, dir.path()).unwrap();
        assert_eq!(c.bind.port(), 1, "the flag wins over POSTERN_CONFIG");

        let missing = Overrides {
            config: Some("missing.toml".into()),
            ..Overrides::default()
        };
        let e = load(&missing, &env(&[]), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        let e = load(
            &Overrides::default(),
            &env(&[("POSTERN_CONFIG", "nope.toml")]),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn config_file_mistakes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("not toml", "bind = ", "postern.toml"),
            ("wrong type", "bind = true", "bind in"),
            ("bad list", "admin_emails = [1]", "admin_emails in"),
            (
                "bad value names the key and file",
                "bind = \"nowhere\"",
                "bind in",
            ),
            (
                "both secret forms",
                "master_key = \"x\"\nmaster_key_file = \"y\"",
                "both set",
            ),
        ];
        for (what, text, expected) in cases {
            std::fs::write(dir.path().join("postern.toml"), text).unwrap();
            let e = load(&Overrides::default(), &env(&[]), dir.path())
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{what}: {e}");
        }
        std::fs::write(dir.path().join("postern.toml"), "publik_url = \"x\"").unwrap();
        let (_, w) = load(&Overrides::default(), &env(&[]), dir.path()).unwrap();
        assert!(
            w.iter()
                .any(|w| w.contains("publik_url") && w.contains("did you mean public_url?")),
            "{w:?}"
        );
    }

    #[test]
    fn invalid_values_are_refused_naming_the_variable() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "POSTERN_PUBLIC_URL",
                "auth.example.com",
                "not an absolute URL",
            ),
            (
                "POSTERN_PUBLIC_URL",
                "ftp://auth.example.com",
                "http:// or https://",
            ),
            (
                "POSTERN_PUBLIC_URL",
                "https://auth.example.com/?x=1",
                "query",
            ),
            (
                "POSTERN_PUBLIC_URL",
                "https://auth.example.com/#top",
                "fragment",
            ),
            (
                "POSTERN_PUBLIC_URL",
                "https://u:p@auth.example.com",
                "user name",
            ),
            ("POSTERN_BIND", "8080", "socket address"),
            ("POSTERN_BIND", "localhost:8080", "socket address"),
            ("POSTERN_DATABASE_URL", "mysql://db/postern", "sqlite://"),
            ("POSTERN_MAIL", "sendmail", "stdout, file:///"),
            (
                "POSTERN_MAIL",
                "http://mail.example.com",
                "stdout, file:///",
            ),
            ("POSTERN_MAIL", "smtps://mail.example.com/path", "only user"),
            ("POSTERN_MAIL", "file://host/dir", "file:///absolute"),
            (
                "POSTERN_MAIL_FROM",
                "Postern <no-reply@example.com>\r\nBcc: x@example.com",
                "line breaks",
            ),
            (
                "POSTERN_MAIL_FROM",
                "a@example.com, b@example.com",
                "one mailbox",
            ),
            (
                "POSTERN_MAIL_FROM",
                "A <a@example.com>, B <b@example.com>",
                "one mailbox",
            ),
            ("POSTERN_MAIL_FROM", "Postern", "one mailbox"),
            (
                "POSTERN_MAIL_FROM",
                "Acme, Inc. <a@example.com>",
                "double quotes",
            ),
            ("POSTERN_MASTER_KEY", "abc", "64 hexadecimal"),
            ("POSTERN_MASTER_KEY", "", "empty secret"),
            (
                "POSTERN_ADMIN_EMAILS",
                "a@example.com, not-an-address",
                "not-an-address",
            ),
            (
                "POSTERN_RATE_LIMIT_EMAIL_PER_HOUR",
                "0",
                "positive whole number",
            ),
            (
                "POSTERN_RATE_LIMIT_IP_PER_HOUR",
                "-5",
                "positive whole number",
            ),
            (
                "POSTERN_RATE_LIMIT_IP_PER_HOUR",
                "lots",
                "positive whole number",
            ),
            (
                "POSTERN_TRUSTED_PROXIES",
                "10.0.0.0/8, 10.0.0.0/33",
                "10.0.0.0/33",
            ),
            ("POSTERN_MAX_CONNECTIONS", "0", "positive whole number"),
            ("POSTERN_SESSION_IDLE_TTL", "forever", "invalid duration"),
            ("POSTERN_SESSION_MAX_AGE", "0d", "longer than zero"),
            ("POSTERN_HISTORY_RETENTION", "1y", "invalid duration"),
            ("POSTERN_LOG", "info,[", "log filter"),
            ("POSTERN_LOG_FORMAT", "xml", "text or json"),
            (
                "POSTERN_MASTER_KEY_FILE",
                "/nonexistent/postern.key",
                "cannot read",
            ),
            (
                "POSTERN_SMTP_PASSWORD_FILE",
                "/nonexistent/password",
                "cannot read",
            ),
        ];
        for (name, value, expected) in cases {
            let e = error(&[(name, value)]);
            assert!(e.starts_with(&format!("{name}: ")), "{name}={value:?}: {e}");
            assert!(e.contains(expected), "{name}={value:?}: {e}");
        }
    }

    #[test]
    fn a_malformed_mail_url_is_not_echoed() {
        let e = error(&[("POSTERN_MAIL", "smtps//user:hunter2@mail.example.com")]);
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn values_are_normalized() {
        let (c, _) = load_env(&[
            ("POSTERN_PUBLIC_URL", "https://Auth.Example.com/sso/"),
            ("POSTERN_MAIL", "file:///var/mail/postern"),
            ("POSTERN_MAIL_FROM", "\"Acme, Inc.\" <login@acme.example>"),
            (
                "POSTERN_TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.1.1,2001:db8::/32",
            ),
            ("POSTERN_SESSION_IDLE_TTL", "12h"),
            ("POSTERN_LOG_FORMAT", "JSON"),
            ("POSTERN_MAX_CONNECTIONS", " 64 "),
        ])
        .unwrap();
        assert_eq!(c.max_connections, 64);
        assert_eq!(c.public_url, "https://auth.example.com/sso");
        assert!(c.secure_cookies());
        assert_eq!(c.mail, MailConfig::File("/var/mail/postern".into()));
        assert!(c.mail_explicit);
        assert_eq!(c.mail_from.name.as_deref(), Some("Acme, Inc."));
        assert_eq!(c.mail_from.address, "login@acme.example");
        let proxies: Vec<String> = c.trusted_proxies.iter().map(|p| p.to_string()).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32"]);
        assert_eq!(c.session_idle_ttl, 43_200);
        assert_eq!(c.log_format, LogFormat::Json);
        let (c, _) = load_env(&[("POSTERN_MAIL_FROM", "bare@example.com")]).unwrap();
        assert_eq!(
            (c.mail_from.name, c.mail_from.address.as_str()),
            (None, "bare@example.com")
        );
    }

    #[test]
    fn a_geoip_database_that_cannot_be_opened_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.mmdb"), "not a database\n").unwrap();
        let load_in = |pairs: &[(&str, &str)]| load(&Overrides::default(), &env(pairs), dir.path());
        for file in ["missing.mmdb", "junk.mmdb"] {
            let e = load_in(&[("POSTERN_GEOIP_DB", file)])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("POSTERN_GEOIP_DB: "), "{e}");
            assert!(e.contains(file) && e.contains("GeoIP database"), "{e}");
        }
    }

    #[test]
    fn dkim_takes_a_key_file_selector_and_domain_together() {
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIHDqAzebrbQfxyLK2ykQhIq4/O594Yrko0m7woj4UPjz\n\
                   -----END PRIVATE KEY-----\n";
        std::fs::write(dir.path().join("dkim.pem"), key).unwrap();
        std::fs::write(dir.path().join("bad.pem"), "not a key\n").unwrap();
        #[cfg(unix)]
        for f in ["dkim.pem", "bad.pem"] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        let load_in = |pairs: &[(&str, &str)]| load(&Overrides::default(), &env(pairs), dir.path());
        let all = [
            ("POSTERN_DKIM_KEY_FILE", "dkim.pem"),
            ("POSTERN_DKIM_SELECTOR", "mail2025"),
            ("POSTERN_DKIM_DOMAIN", "example.com"),
            ("POSTERN_MAIL_FROM", "Acme <no-reply@auth.example.com>"),
        ];
        let (c, w) = load_in(&all).unwrap();
        let dkim = c.dkim.as_ref().expect("DKIM configured");
        assert_eq!(
            (dkim.selector(), dkim.domain(), dkim.algorithm()),
            ("mail2025", "example.com", "ed25519-sha256")
        );
        assert!(w.is_empty(), "{w:?}");
        assert!(!format!("{c:?}").contains("MC4CAQ"), "the key never shows");
        assert!(load_env(&[]).unwrap().0.dkim.is_none());

        let cases: &[(Env, &str)] = &[
            (
                &all[..1],
                "missing POSTERN_DKIM_SELECTOR and POSTERN_DKIM_DOMAIN",
            ),
            (&all[1..3], "missing POSTERN_DKIM_KEY_FILE"),
            (
                &[all[0], ("POSTERN_DKIM_SELECTOR", "a b"), all[2]],
                "POSTERN_DKIM_SELECTOR",
            ),
            (
                &[all[0], all[1], ("POSTERN_DKIM_DOMAIN", "exa mple.com")],
                "POSTERN_DKIM_DOMAIN",
            ),
            (
                &[("POSTERN_DKIM_KEY_FILE", "bad.pem"), all[1], all[2]],
                "not an RSA or Ed25519 private key",
            ),
            (
                &[("POSTERN_DKIM_KEY_FILE", "missing.pem"), all[1], all[2]],
                "POSTERN_DKIM_KEY_FILE",
            ),
        ];
        for (pairs, expected) in cases {
            let e = load_in(pairs).expect_err("refused").to_string();
            assert!(e.contains(expected), "{pairs:?}: {e}");
        }

        let (_, w) = load_in(&[all[0], all[1], ("POSTERN_DKIM_DOMAIN", "other.example")]).unwrap();
        assert!(w.iter().any(|w| w.contains("DMARC")), "{w:?}");
    }

    #[test]
    fn an_smtp_password_moves_out_of_the_url() {
        let (c, w) = load_env(&[
            ("POSTERN_PUBLIC_URL", "https://auth.example.com"),
            (
                "POSTERN_MAIL",
                "smtps://postern%40example.com:p%40ss%3Aw@mail.example.com:465",
            ),
        ])
        .unwrap();
        let MailConfig::Smtp(url) = &c.mail else {
            panic!("{:?}", c.mail)
        };
        assert_eq!(
            url.as_str(),
            "smtps://postern%40example.com@mail.example.com:465"
        );
        assert_eq!(c.smtp_password.as_ref().unwrap().expose_secret(), "p@ss:w");
        assert!(w.is_empty(), "{w:?}");
        let e = error(&[
            ("POSTERN_MAIL", "smtps://u:p@mail.example.com"),
            ("POSTERN_SMTP_PASSWORD", "q"),
        ]);
        assert!(e.contains("set only one"), "{e}");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("  {KEY}\n")).unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        #[cfg(unix)]
        for f in ["key", "pw"] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        let e = env(&[
            ("POSTERN_MASTER_KEY_FILE", "key"),
            (
                "POSTERN_SMTP_PASSWORD_FILE",
                dir.path().join("pw").to_str().unwrap(),
            ),
        ]);
        let (c, w) = load(&Overrides::default(), &e, dir.path()).unwrap();
        assert_eq!(c.master_key.as_ref().unwrap().expose_secret(), KEY);
        assert_eq!(c.smtp_password.as_ref().unwrap().expose_secret(), "s3cret");
        assert!(w.is_empty(), "a key file raises no warning: {w:?}");

        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let e = load(
            &Overrides::default(),
            &env(&[("POSTERN_SMTP_PASSWORD_FILE", "empty")]),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is empty"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_readable_by_others_is_flagged() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), KEY).unwrap();
        std::fs::set_permissions(
            dir.path().join("key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let (_, w) = load(
            &Overrides::default(),
            &env(&[("POSTERN_MASTER_KEY_FILE", "key")]),
            dir.path(),
        )
        .unwrap();
        assert!(w.iter().any(|w| w.contains("chmod 600")), "{w:?}");
    }

    #[test]
    fn a_secret_and_its_file_cannot_both_be_set() {
        for secret in ["MASTER_KEY", "SMTP_PASSWORD"] {
            let e = error(&[
                (&format!("POSTERN_{secret}"), KEY),
                (&format!("POSTERN_{secret}_FILE"), "/some/file"),
            ]);
            assert!(e.contains("both set"), "{secret}: {e}");
            assert!(
                e.contains(&format!("POSTERN_{secret}_FILE")),
                "{secret}: {e}"
            );
        }
    }

    #[test]
    fn a_secret_in_the_environment_replaces_the_file_form_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postern.toml"),
            "master_key_file = \"/nonexistent\"",
        )
        .unwrap();
        let (c, _) = load(
            &Overrides::default(),
            &env(&[("POSTERN_MASTER_KEY", KEY)]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.master_key.unwrap().expose_secret(), KEY);
    }

    #[test]
    fn unknown_variables_are_warned_about_with_a_suggestion() {
        let w = warnings(&[
            ("POSTERN_PUBLIC_URLS", "x"),
            ("POSTERN_RATE_LIMIT_EMAILS_PER_HOUR", "5"),
            ("POSTERN_SOMETHING_ELSE", "x"),
            ("POSTERN_public_url", "x"),
            ("POSTERN_TEST_BACKEND", "postgres"),
            ("POSTERN_CONFIG_DIR", "x"),
            ("HOME", "/root"),
        ]);
        let expect = [
            (
                "POSTERN_PUBLIC_URLS",
                Some("did you mean POSTERN_PUBLIC_URL?"),
            ),
            (
                "POSTERN_RATE_LIMIT_EMAILS_PER_HOUR",
                Some("did you mean POSTERN_RATE_LIMIT_EMAIL_PER_HOUR?"),
            ),
            ("POSTERN_SOMETHING_ELSE", None),
            (
                "POSTERN_public_url",
                Some("did you mean POSTERN_PUBLIC_URL?"),
            ),
            ("POSTERN_CONFIG_DIR", None),
        ];
        assert_eq!(w.len(), expect.len(), "{w:?}");
        for (name, hint) in expect {
            let line = w
                .iter()
                .find(|l| l.contains(&format!("variable {name} ")))
                .unwrap_or_else(|| panic!("{name}: {w:?}"));
            match hint {
                Some(h) => assert!(line.ends_with(&format!("({h})")), "{line}"),
                None => assert!(!line.contains("did you mean"), "{line}"),
            }
        }
    }

    #[test]
    fn insecure_settings_are_warned_about() {
        let https = ("POSTERN_PUBLIC_URL", "https://auth.example.com");
        let smtps = ("POSTERN_MAIL", "smtps://mail.example.com");
        let cases: &[(&str, Env, &str)] = &[
            (
                "http on a public host",
                &[("POSTERN_PUBLIC_URL", "http://auth.example.com"), smtps],
                "plain http",
            ),
            (
                "explicit stdout mail",
                &[https, ("POSTERN_MAIL", "stdout")],
                "printed to standard output",
            ),
            (
                "file mail",
                &[https, ("POSTERN_MAIL", "file:///tmp/mail")],
                "instead of sending",
            ),
            (
                "plain smtp",
                &[https, ("POSTERN_MAIL", "smtp://mail.example.com:25")],
                "unencrypted",
            ),
            (
                "key in the environment",
                &[("POSTERN_MASTER_KEY", KEY)],
                "prefer POSTERN_MASTER_KEY_FILE",
            ),
            (
                "idle longer than max",
                &[("POSTERN_SESSION_IDLE_TTL", "100d")],
                "longer than",
            ),
        ];
        for (what, env, expected) in cases {
            let w = warnings(env);
            assert_eq!(w.len(), 1, "{what}: {w:?}");
            assert!(w[0].contains(expected), "{what}: {w:?}");
        }
        let quiet: &[Env] = &[
            &[https, smtps],
            &[
                https,
                ("POSTERN_MAIL", "smtp+starttls://mail.example.com:587"),
            ],
            &[("POSTERN_MAIL", "smtp://127.0.0.1:1025")],
            &[("POSTERN_MAIL", "smtp://localhost:1025")],
            &[("POSTERN_PUBLIC_URL", "http://localhost:3000")],
            &[
                ("POSTERN_PUBLIC_URL", "http://[::1]:3000"),
                ("POSTERN_MAIL", "stdout"),
            ],
        ];
        for env in quiet {
            assert_eq!(warnings(env), Vec::<String>::new(), "{env:?}");
        }
    }

    #[test]
    fn stdout_mail_needs_to_be_explicit_on_a_public_url() {
        let e = error(&[("POSTERN_PUBLIC_URL", "https://auth.example.com")]);
        assert!(e.contains("POSTERN_MAIL"), "{e}");
        assert!(load_env(&[
            ("POSTERN_PUBLIC_URL", "https://auth.example.com"),
            ("POSTERN_MAIL", "stdout")
        ])
        .is_ok());
        assert!(load_env(&[("POSTERN_PUBLIC_URL", "http://127.0.0.1:9000")]).is_ok());
        // The rule holds whichever layer sets the public URL.
        let dir = tempfile::tempdir().unwrap();
        let flags = Overrides {
            public_url: Some("https://auth.example.com".into()),
            ..Overrides::default()
        };
        assert!(load(&flags, &env(&[]), dir.path()).is_err());
    }

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

    fn config_with(pairs: &[(&str, &str)]) -> Config {
        load_env(pairs).unwrap().0
    }

    #[test]
    fn a_master_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with(&[]);
        let (first, notice) = resolve_master_key(&cfg, Backend::Sqlite, dir.path()).unwrap();
        let notice = notice.expect("creating a key is announced");
        assert!(notice.contains("back it up"), "{notice}");
        let path = dir.path().join(MASTER_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, notice) = resolve_master_key(&cfg, Backend::Sqlite, dir.path()).unwrap();
        assert!(notice.is_none(), "{notice:?}");
        assert_eq!(first.to_hex(), second.to_hex());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            first.to_hex()
        );
    }

    #[test]
    fn an_explicit_master_key_wins_and_postgres_requires_one() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with(&[("POSTERN_MASTER_KEY", KEY)]);
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (key, notice) = resolve_master_key(&cfg, backend, dir.path()).unwrap();
            assert_eq!(key.to_hex(), KEY);
            assert!(notice.is_none());
        }
        assert!(
            !dir.path().join(MASTER_KEY_FILE).exists(),
            "no key file is made when a key is given"
        );
        let e = resolve_master_key(&config_with(&[]), Backend::Postgres, dir.path()).unwrap_err();
        assert!(e.to_string().contains("POSTERN_MASTER_KEY_FILE"), "{e}");
    }

    #[test]
    fn a_damaged_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MASTER_KEY_FILE), "short").unwrap();
        let e = resolve_master_key(&config_with(&[]), Backend::Sqlite, dir.path()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
