//! The layers: built-in defaults, the configuration file, `POSTERN_*`
//! environment variables and command-line flags, each overriding the one
//! before, read into raw values that remember where they came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{values, warnings, Config, ConfigError, Overrides, Raw};

/// Prefix of every environment variable Postern reads.
const ENV_PREFIX: &str = "POSTERN_";
/// Name of the configuration file looked for in the working directory.
const DEFAULT_CONFIG_FILE: &str = "postern.toml";

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
    "admin_links",
    "rate_limit_email_per_hour",
    "rate_limit_ip_per_hour",
    "trusted_proxies",
    "max_connections",
    "metrics_public",
    "session_idle_ttl",
    "session_max_age",
    "history_retention",
    "shutdown_grace",
    "smtp_password",
    "smtp_password_file",
    "smtp_connections",
    "dkim_key_file",
    "dkim_selector",
    "dkim_domain",
    "geoip_db",
    "log",
    "log_format",
];

/// Secrets that may also be given as the path of a file holding them.
const SECRETS: &[&str] = &["master_key", "smtp_password"];

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
                warnings.push(warnings::unknown_setting_warning(
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

    let config = values::build(raw, config_file, working_dir, &mut warnings)?;
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
            warnings.push(warnings::unknown_setting_warning(
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::super::testing::*;
    use super::*;

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
}
