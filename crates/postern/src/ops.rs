//! Operations commands (issue 14): `postern backup FILE` and
//! `postern master-key rotate --new-key-file F`.
//!
//! Output contract as in [`crate::commands`]: stdout carries the result as
//! JSON; notes for a person go to stderr.

use std::path::Path;

use anyhow::Context as _;
use postern_core::{MasterKey, Secrets};
use postern_store::{RekeyQueries as _, Sealed, SealedKind, Store};

use crate::commands::CommandError;
use crate::config::Config;

/// `postern backup FILE`: a consistent copy of the live SQLite database
/// (`VACUUM INTO`, safe while the server runs), then a reminder of what the
/// copy does not hold: the master key.
pub async fn backup(file: &Path, config: &Config) -> Result<(), CommandError> {
    let url = config.database_url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(CommandError::Invalid(
            "postern backup copies SQLite databases; back up PostgreSQL with its own tools, \
             e.g. `pg_dump --format=custom --file=postern.dump \"$POSTERN_DATABASE_URL\"` \
             (restore with pg_restore), and keep the master key with it"
                .into(),
        ));
    }
    if file.exists() {
        return Err(CommandError::Invalid(format!(
            "{} already exists; name a new file",
            file.display()
        )));
    }
    let target = std::path::absolute(file).context("cannot resolve the backup path")?;
    let store = Store::connect(&config.database_url)
        .await
        .context("could not open the database (POSTERN_DATABASE_URL)")?;
    let path = target
        .to_str()
        .ok_or_else(|| CommandError::Invalid("the backup path must be valid UTF-8".into()))?;
    store
        .backup_into(path)
        .await
        .with_context(|| format!("could not write the backup to {}", target.display()))?;
    store.close().await;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({ "backup": target.display().to_string(), "bytes": bytes })
    );
    let key = if config.master_key.is_some() {
        "the master key you configure (POSTERN_MASTER_KEY_FILE or POSTERN_MASTER_KEY)".to_owned()
    } else {
        format!(
            "the master key file {}",
            std::env::current_dir()
                .map(|d| d.join("postern.key").display().to_string())
                .unwrap_or_else(|_| "postern.key".into())
        )
    };
    eprintln!(
        "Backed up the database to {}.\n\
         Keep {key} as well, stored apart from this copy: the backup's secrets are \
         encrypted under it and cannot be read without it.\n\
         To restore: stop Postern, put the copy where POSTERN_DATABASE_URL points \
         (removing any -wal and -shm files beside it), and start Postern with the same master key.",
        target.display()
    );
    Ok(())
}

/// The encryption context of the sealed keyed-hash key.
const HASH_KEY_CONTEXT: &str = "master-key:hash-key";

/// The working keys for `master` on this database: after a master-key
/// rotation, keyed hashes stay under the key the database started with,
/// which the database keeps sealed under the current master key. Run after
/// migrating.
pub async fn secrets_for(store: &Store, master: &MasterKey) -> anyhow::Result<Secrets> {
    let own = Secrets::new(master);
    let sealed = store.conn().await?.sealed_hash_key().await?;
    let Some(sealed) = sealed else {
        return Ok(own);
    };
    let bytes = own.decrypt(HASH_KEY_CONTEXT, &sealed).map_err(|_| {
        anyhow::anyhow!(
            "the master key does not open this database: it was rotated to another key \
             (`postern master-key rotate`); configure the new key"
        )
    })?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored keyed-hash key is corrupt"))?;
    Ok(Secrets::with_hash_key(master, key))
}

/// The encryption context of a sealed value (as its owner seals it).
fn context(sealed: &Sealed) -> String {
    match sealed.kind {
        SealedKind::SigningKey => format!("signing-key:{}", sealed.id),
        SealedKind::Outbox => format!("outbox:{}", sealed.id),
        SealedKind::PasskeyChallenge => format!("passkey-challenge:{}", sealed.id),
    }
}

/// `postern master-key rotate --new-key-file F`: opens every value sealed
/// under the configured master key and seals it again under the key in F,
/// in one transaction, keeping keyed hashes as they were. Refuses, changing
/// nothing, when the configured key cannot open every value. Every
/// instance must be stopped first and started again with the new key.
pub async fn rotate_master_key(new_key_file: &Path, config: &Config) -> Result<(), CommandError> {
    let text = std::fs::read_to_string(new_key_file).map_err(|e| {
        CommandError::Invalid(format!("cannot read {}: {e}", new_key_file.display()))
    })?;
    let new_master = MasterKey::from_hex(&text).map_err(|_| {
        CommandError::Invalid(format!(
            "{}: the new master key must be 64 hexadecimal characters (32 bytes); \
             generate one with `openssl rand -hex 32`",
            new_key_file.display()
        ))
    })?;
    let store = Store::connect(&config.database_url)
        .await
        .context("could not open the database (POSTERN_DATABASE_URL)")?;
    store
        .migrate()
        .await
        .context("could not apply database migrations")?;
    let dir = std::env::current_dir().context("no working directory")?;
    let (old_master, _) = crate::config::resolve_master_key(config, store.backend(), &dir)?;
    if old_master.to_hex() == new_master.to_hex() {
        return Err(CommandError::Invalid(
            "the new master key is the key already in use".into(),
        ));
    }
    let old = secrets_for(&store, &old_master)
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let new = Secrets::with_hash_key(&new_master, old.hash_key());
    let now = postern_core::Clock::now(&postern_core::SystemClock);
    let mut tx = store
        .begin()
        .await
        .context("could not start a transaction")?;
    let sealed = tx
        .sealed_values()
        .await
        .context("could not read sealed values")?;
    let mut opened = Vec::with_capacity(sealed.len());
    let mut unreadable: Vec<String> = Vec::new();
    for s in sealed {
        match old.decrypt(&context(&s), &s.value) {
            Ok(plain) => opened.push((s, plain)),
            Err(_) => unreadable.push(format!("{:?} {}", s.kind, s.id)),
        }
    }
    if !unreadable.is_empty() {
        drop(tx);
        return Err(CommandError::Invalid(format!(
            "refusing to rotate: the configured master key cannot open {} sealed value(s) \
             ({}); nothing was changed",
            unreadable.len(),
            unreadable.join(", ")
        )));
    }
    let (mut keys, mut messages) = (0, 0);
    for (mut s, plain) in opened {
        s.value = new.encrypt(&context(&s), &plain);
        tx.reseal(&s)
            .await
            .context("could not rewrite a sealed value")?;
        match s.kind {
            SealedKind::SigningKey => keys += 1,
            SealedKind::Outbox => messages += 1,
            // Ceremonies live five minutes; resealed so none in flight breaks.
            SealedKind::PasskeyChallenge => {}
        }
    }
    tx.set_sealed_hash_key(&new.encrypt(HASH_KEY_CONTEXT, &new.hash_key()), now)
        .await
        .context("could not store the keyed-hash key")?;
    tx.commit().await.context("could not commit the rotation")?;
    store.close().await;
    println!(
        "{}",
        serde_json::json!({ "signing_keys": keys, "outbox_messages": messages })
    );
    eprintln!(
        "postern: every sealed value is now under the new master key ({keys} signing keys, \
         {messages} queued emails). Start Postern with POSTERN_MASTER_KEY_FILE={} (every \
         instance); the old key no longer opens this database. Sessions, links and codes \
         keep working.",
        new_key_file.display()
    );
    Ok(())
}
