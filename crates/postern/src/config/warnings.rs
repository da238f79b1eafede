//! Warnings logged at start-up: unknown settings (with a suggestion when a
//! known name is close) and settings that would be insecure in production.

use std::net::IpAddr;

use url::Url;

use super::{Config, ConfigError, MailConfig};

/// "unknown … ignored", plus "did you mean X?" when a known name is close.
pub(super) fn unknown_setting_warning<'a>(
    message: &str,
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> String {
    let upper = name.to_ascii_uppercase();
    let best = known
        .map(|k| (strsim::levenshtein(&upper, &k.to_ascii_uppercase()), k))
        .min_by_key(|(d, _)| *d);
    match best {
        // Close enough to be a typo: a few edits, and not most of the name.
        Some((d, k)) if d <= 3 && d * 3 <= upper.len() => format!("{message} (did you mean {k}?)"),
        _ => message.to_owned(),
    }
}

/// The rules of SPEC §4 on who may read mail, and loud warnings for settings
/// that would be insecure in production.
pub(super) fn check_security(
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
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

pub(super) fn is_loopback_url(url: &Url) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{load, Overrides};

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
}
