//! Turning the layered raw values into a validated [`Config`]: URLs,
//! addresses, numbers, durations, lists.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use postern_core::net::IpCidr;
use postern_core::{EmailAddress, MasterKey};
use secrecy::ExposeSecret as _;
use url::Url;

use super::{
    mail, secrets, warnings, Config, ConfigError, LogFormat, MailConfig, Raw, SettingPath,
};

/// Turns the layered raw values into a validated [`Config`].
pub(super) fn build(
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
    let mut smtp_password = secrets::secret(
        take("smtp_password"),
        take("smtp_password_file"),
        working_dir,
        warnings,
    )?
    .map(|(s, _)| s);
    let (mail, mail_explicit) = match take("mail") {
        Some(r) => (mail::parse_mail(&r, &mut smtp_password)?, true),
        None => (MailConfig::Stdout, false),
    };
    let mail_from = match take("mail_from") {
        Some(r) => mail::parse_mail_from(&r.value).map_err(|m| r.invalid(m))?,
        None => {
            mail::parse_mail_from("Postern <no-reply@localhost>").expect("default sender parses")
        }
    };
    let dkim = mail::parse_dkim(
        take("dkim_key_file"),
        take("dkim_selector"),
        take("dkim_domain"),
        &mail_from,
        working_dir,
        warnings,
    )?;
    let master_key = match secrets::secret(
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
    let admin_links = match take("admin_links") {
        Some(r) => match r.value.trim().to_ascii_lowercase().as_str() {
            "send" => postern_auth::AdminLinks::Send,
            "copy" => postern_auth::AdminLinks::Copy,
            _ => return Err(r.invalid("use send or copy")),
        },
        None => postern_auth::AdminLinks::Send,
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
    let metrics_public = boolean(take("metrics_public"), false)?;
    let session_idle_ttl = duration(take("session_idle_ttl"), 30 * 86_400)?;
    let session_max_age = duration(take("session_max_age"), 90 * 86_400)?;
    let history_retention = duration(take("history_retention"), 90 * 86_400)?;
    let shutdown_grace = duration(take("shutdown_grace"), 10)?;
    let smtp_connections = match take("smtp_connections") {
        Some(r) => match r.value.trim().parse::<u32>() {
            Ok(n @ 1..=256) => n,
            _ => return Err(r.invalid(format!("{:?} is not a number from 1 to 256", r.value))),
        },
        None => postern_mail::smtp::DEFAULT_CONNECTIONS as u32,
    };
    let geoip_db = take("geoip_db").map(|r| SettingPath {
        path: working_dir.join(r.value.trim()),
        origin: r.origin,
    });
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
        admin_links,
        rate_limit_email_per_hour,
        rate_limit_ip_per_hour,
        trusted_proxies,
        max_connections,
        metrics_public,
        session_idle_ttl,
        session_max_age,
        history_retention,
        shutdown_grace,
        smtp_connections,
        smtp_password,
        dkim,
        geoip_db,
        log,
        log_format,
    };
    warnings::check_security(&config, warnings)?;
    Ok(config)
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

fn boolean(r: Option<Raw>, default: bool) -> Result<bool, ConfigError> {
    let Some(r) = r else {
        return Ok(default);
    };
    match r.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(r.invalid(format!("{:?} is not true or false", r.value))),
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

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
        assert_eq!(c.smtp_connections, 16);
        assert!(!c.metrics_public);
        assert_eq!(c.session_idle_ttl, 30 * 86_400);
        assert_eq!(c.session_max_age, 90 * 86_400);
        assert_eq!(c.history_retention, 90 * 86_400);
        assert!(c.smtp_password.is_none());
        assert!(c.geoip_db.is_none());
        assert_eq!(c.log, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.config_file.is_none());
        assert!(c.is_loopback_public_url());
        assert!(!c.secure_cookies());
        assert!(w.is_empty(), "{w:?}");
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
            ("POSTERN_SMTP_CONNECTIONS", "0", "from 1 to 256"),
            ("POSTERN_SMTP_CONNECTIONS", "1000", "from 1 to 256"),
            ("POSTERN_METRICS_PUBLIC", "maybe", "true or false"),
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
            ("POSTERN_SMTP_CONNECTIONS", "4"),
            ("POSTERN_METRICS_PUBLIC", " TRUE "),
        ])
        .unwrap();
        assert_eq!(c.max_connections, 64);
        assert_eq!(c.smtp_connections, 4);
        assert!(c.metrics_public);
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
}
