//! Secrets given directly or as a file, and the master key to run with.

use std::io::Write as _;
use std::path::Path;

use postern_core::MasterKey;
use postern_store::Backend;
use secrecy::{ExposeSecret as _, SecretString};

use super::{Config, ConfigError, Raw};

/// Name of the master key file created next to a SQLite database.
pub const MASTER_KEY_FILE: &str = "postern.key";

/// Where a secret came from.
pub(super) struct SecretSource {
    pub(super) origin: String,
    pub(super) from_file: bool,
}

/// Reads a secret given directly or as a file (contents trimmed).
pub(super) fn secret(
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
pub(super) fn readable_by_others(path: &Path) -> Option<String> {
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
    use secrecy::ExposeSecret as _;

    use super::super::testing::*;
    use super::super::*;
    use super::*;

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
