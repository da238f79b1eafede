//! The mail settings: the transport URL (its password moved out), the
//! sender, and DKIM signing (the key file is opened at start-up, by
//! [`crate::serve`]).

use std::path::Path;

use percent_encoding::percent_decode_str;
use postern_mail::dkim;
use secrecy::SecretString;
use url::Url;

use super::{secrets, ConfigError, DkimSettings, MailConfig, MailFrom, Raw, SettingPath};

pub(super) fn parse_mail(
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
                *smtp_password = Some(SecretString::from(
                    percent_decode_str(password)
                        .decode_utf8_lossy()
                        .into_owned(),
                ));
                // Keep the secret out of the URL, which is logged and shown.
                let _ = url.set_password(None);
            }
            Ok(MailConfig::Smtp(url))
        }
        _ => Err(r.invalid(usage)),
    }
}

/// DKIM signing: the key file, the selector and the signing domain, all
/// three or none. The selector and domain are checked here; the key file
/// is opened and checked at start-up, where it is used
/// ([`crate::serve::open_dkim`]).
pub(super) fn parse_dkim(
    key_file: Option<Raw>,
    selector: Option<Raw>,
    domain: Option<Raw>,
    mail_from: &MailFrom,
    working_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<DkimSettings>, ConfigError> {
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
    if let Some(w) = secrets::readable_by_others(&path) {
        warnings.push(format!("{w} ({})", key_file.origin));
    }
    let selector_name = dkim::dns_name(&selector.value).map_err(|e| selector.invalid(e))?;
    let domain_name = dkim::dns_name(&domain.value)
        .map_err(|e| domain.invalid(e))?
        .to_ascii_lowercase();
    let from_domain = mail_from
        .address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let aligned = from_domain == domain_name || from_domain.ends_with(&format!(".{domain_name}"));
    if !aligned {
        warnings.push(format!(
            "POSTERN_DKIM_DOMAIN {domain_name} is not the domain of POSTERN_MAIL_FROM \
             ({from_domain}) or a parent of it: receivers that check DMARC will not count \
             this signature"
        ));
    }
    Ok(Some(DkimSettings {
        key_file: SettingPath {
            path,
            origin: key_file.origin,
        },
        selector: selector_name,
        domain: domain_name,
    }))
}

/// Parses `Name <local@domain>`, `"Name" <local@domain>` or `local@domain`.
pub(super) fn parse_mail_from(text: &str) -> Result<MailFrom, String> {
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn a_malformed_mail_url_is_not_echoed() {
        let e = error(&[("POSTERN_MAIL", "smtps//user:hunter2@mail.example.com")]);
        assert!(!e.contains("hunter2"), "{e}");
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
    fn dkim_takes_a_key_file_selector_and_domain_together() {
        let dir = tempfile::tempdir().unwrap();
        let load_in = |pairs: &[(&str, &str)]| load(&Overrides::default(), &env(pairs), dir.path());
        let all = [
            ("POSTERN_DKIM_KEY_FILE", "dkim.pem"),
            ("POSTERN_DKIM_SELECTOR", "mail2025"),
            ("POSTERN_DKIM_DOMAIN", "Example.com"),
            ("POSTERN_MAIL_FROM", "Acme <no-reply@auth.example.com>"),
        ];
        let (c, w) = load_in(&all).unwrap();
        let dkim = c.dkim.as_ref().expect("DKIM configured");
        assert_eq!(
            (dkim.selector.as_str(), dkim.domain.as_str()),
            ("mail2025", "example.com")
        );
        assert_eq!(dkim.key_file.path, dir.path().join("dkim.pem"));
        assert_eq!(dkim.key_file.origin, "POSTERN_DKIM_KEY_FILE");
        assert!(w.is_empty(), "{w:?}");
        assert!(load_env(&[]).unwrap().0.dkim.is_none());

        let cases: &[(Env, &str)] = &[
            (
                &all[..1],
                "missing POSTERN_DKIM_SELECTOR and POSTERN_DKIM_DOMAIN",
            ),
            (&all[1..3], "missing POSTERN_DKIM_KEY_FILE"),
            (
                &[all[0], ("POSTERN_DKIM_SELECTOR", "a b"), all[2]],
                "POSTERN_DKIM_SELECTOR: ",
            ),
            (
                &[all[0], all[1], ("POSTERN_DKIM_DOMAIN", "exa mple.com")],
                "POSTERN_DKIM_DOMAIN: ",
            ),
        ];
        for (pairs, expected) in cases {
            let e = load_in(pairs).expect_err("refused").to_string();
            assert!(e.contains(expected), "{pairs:?}: {e}");
        }

        let (_, w) = load_in(&[all[0], all[1], ("POSTERN_DKIM_DOMAIN", "other.example")]).unwrap();
        assert!(w.iter().any(|w| w.contains("DMARC")), "{w:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_dkim_key_file_readable_by_others_is_flagged() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("dkim.pem");
        std::fs::write(&key, "key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pairs = [
            ("POSTERN_DKIM_KEY_FILE", "dkim.pem"),
            ("POSTERN_DKIM_SELECTOR", "mail2025"),
            ("POSTERN_DKIM_DOMAIN", "localhost"),
        ];
        let (_, w) = load(&Overrides::default(), &env(&pairs), dir.path()).unwrap();
        assert!(
            w.iter()
                .any(|w| w.contains("chmod 600") && w.contains("POSTERN_DKIM_KEY_FILE")),
            "{w:?}"
        );
    }
}
