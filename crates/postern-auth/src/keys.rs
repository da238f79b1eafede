//! The signing keys of every instance, kept in the database (SPEC §2: "Keys
//! rotate without downtime: the JWKS always lists the active, next and
//! recently retired keys").
//!
//! A key's life: `next` (published, not signing) → `active` (signing) →
//! `retired` (published, not signing) → deleted. Every instance runs
//! [`KeyManager::tick`] each [`TICK_INTERVAL`]; each step is a conditional
//! update in the database, so instances racing over the same step agree and
//! all of them converge on the same keys at their next reload.
//!
//! The timings, from the outside in:
//!
//! * Relying parties cache `/jwks.json` for up to [`JWKS_MAX_AGE`] (10
//!   minutes, its `Cache-Control: max-age`), and other instances see a new
//!   key within one [`TICK_INTERVAL`] (1 minute).
//! * So a `next` key is published for [`PUBLISH_BEFORE_USE`] (1 hour) before
//!   it signs: six cache lifetimes plus the tick lag, enough for clients
//!   that poll the JWKS on a timer rather than on an unknown `kid`.
//! * A retired key stays published for [`RETIRED_KEEP`] (1 day): far beyond
//!   the longest lifetime of anything it signed (ID, access and headless
//!   session tokens live 10 minutes, SPEC §2), so that expired ID tokens still
//!   verify as `id_token_hint` at logout (RP-Initiated Logout 1.0 §2 accepts
//!   expired hints).
//! * An active key signs for [`ROTATE_AFTER`] (90 days) before a `next` key
//!   is made for it automatically.
//!
//! Private keys are stored as PKCS#8 encrypted under the master key (context
//! `signing-key:{kid}`), so a copy of the database signs nothing (SPEC §2).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use postern_core::jose::{self, Alg, JoseError, KeySet, KeyState, SigningKey};
use postern_core::{Clock, Secrets};
use postern_store::{KeyQueries, Store, StoreError, StoredKey, Tx};
use secrecy::{ExposeSecret, SecretBox};
use serde::Serialize;
use thiserror::Error;

/// `Cache-Control: max-age` of `/jwks.json`, seconds.
pub const JWKS_MAX_AGE: i64 = 10 * 60;
/// How often the server calls [`KeyManager::tick`].
pub const TICK_INTERVAL: Duration = Duration::from_secs(60);
/// How long a `next` key is published before it signs, seconds.
pub const PUBLISH_BEFORE_USE: i64 = 60 * 60;
/// How long a retired key stays published before it is deleted, seconds.
pub const RETIRED_KEEP: i64 = 24 * 60 * 60;
/// Age of the active key at which a rotation starts by itself, seconds.
pub const ROTATE_AFTER: i64 = 90 * 24 * 60 * 60;

/// Why keys could not be loaded, changed or used.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed, or no active key of the algorithm could be opened.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// A blocking key task panicked or was cancelled.
    #[error("key task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The signing keys, shared by every handler. Cheap to clone: all clones
/// see the same current [`KeySet`], replaced whole on each reload.
#[derive(Clone)]
pub struct KeyManager {
    store: Store,
    secrets: Arc<Secrets>,
    clock: Arc<dyn Clock>,
    current: Arc<RwLock<Arc<KeySet>>>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

fn context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl KeyManager {
    /// Loads the keys from the database. On first start, makes and stores
    /// an active key for each algorithm that has none. Two instances starting
    /// at once on an empty database may both make one: both are published
    /// and every instance signs with the newer ([`KeySet::signer`]) once it
    /// has seen it, at its next refresh (until then each refuses tokens of
    /// the other's key: docs/DEPLOYMENT.md says to start one instance
    /// first); the next [`KeyManager::tick`] retires the other.
    ///
    /// "Has none" counts stored rows, not the keys this instance could open:
    /// an instance started with the wrong master key logs an error per key
    /// and cannot sign, rather than adding keys the others cannot open.
    pub async fn load(
        store: Store,
        secrets: Arc<Secrets>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyError> {
        let keys = Self {
            store,
            secrets,
            clock,
            current: Arc::default(),
        };
        let stored = keys.store.conn().await?.signing_keys().await?;
        for alg in Alg::ALL {
            if !stored
                .iter()
                .any(|k| k.alg == alg.as_str() && k.state == KeyState::Active.as_str())
            {
                let kid = keys.create(alg, KeyState::Active).await?;
                tracing::info!(%alg, %kid, "created the first signing key");
            }
        }
        keys.tick().await?;
        Ok(keys)
    }

    /// The current keys: sign, verify and render the JWKS with them.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Signs `claims` with the active key of `alg` (see [`KeySet::sign`]).
    /// RSA signing takes about a millisecond, so it runs on the blocking pool;
    /// Ed25519 and P-256 take microseconds and run inline.
    pub async fn sign<T: Serialize + Send + 'static>(
        &self,
        alg: Alg,
        typ: &str,
        claims: T,
    ) -> Result<String, KeyError> {
        let keys = self.keys();
        Ok(match alg {
            Alg::RS256 => {
                let typ = typ.to_owned();
                tokio::task::spawn_blocking(move || keys.sign(alg, &typ, &claims)).await??
            }
            Alg::EdDSA | Alg::ES256 => keys.sign(alg, typ, &claims)?,
        })
    }

    /// Starts a rotation (admin "rotate keys"): for each algorithm without a
    /// `next` key, makes one. It is published at once and signs after
    /// [`PUBLISH_BEFORE_USE`]. Returns the kids of the new keys.
    pub async fn rotate(&self) -> Result<Vec<String>, KeyError> {
        let rotation = self.prepare_rotation().await?;
        let mut tx = self.store.begin().await?;
        rotation.store(&mut tx).await?;
        tx.commit().await?;
        self.rotated(&rotation).await?;
        Ok(rotation.kids())
    }

    /// The keys a rotation adds (one `next` key per algorithm without one),
    /// generated and sealed but not yet stored: generating an RSA key takes
    /// a while, and no transaction should be open meanwhile.
    /// [`Rotation::store`] then writes them inside the caller's
    /// transaction (the admin service's, with its audit record) and
    /// [`KeyManager::rotated`] reloads after the commit.
    pub async fn prepare_rotation(&self) -> Result<Rotation, KeyError> {
        let stored = self.store.conn().await?.signing_keys().await?;
        let mut rows = Vec::new();
        for alg in Alg::ALL {
            if !stored
                .iter()
                .any(|k| k.alg == alg.as_str() && k.state == KeyState::Next.as_str())
            {
                rows.push(self.generate(alg, KeyState::Next).await?);
            }
        }
        Ok(Rotation { rows })
    }

    /// After a [`Rotation`] was committed: this instance publishes its keys
    /// at once (others at their next tick).
    pub async fn rotated(&self, rotation: &Rotation) -> Result<(), KeyError> {
        tracing::info!(kids = ?rotation.kids(), "signing key rotation started");
        self.refresh().await
    }

    /// The periodic step, run on every instance each [`TICK_INTERVAL`]:
    ///
    /// 1. the newest `next` key published for [`PUBLISH_BEFORE_USE`] becomes
    ///    active;
    /// 2. every active key but the newest of its algorithm is retired, and a
    ///    `next` key older than the newest active one (it lost to another) too;
    /// 3. keys retired for [`RETIRED_KEEP`] are deleted;
    /// 4. an algorithm whose active key is [`ROTATE_AFTER`] old and that has no
    ///    `next` key gets one;
    ///
    /// then the keys are reloaded, so all instances converge on the same set.
    /// Every change is a conditional update: racing instances do it once.
    pub async fn tick(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let mut conn = self.store.conn().await?;

        let stored = conn.signing_keys().await?;
        for alg in Alg::ALL {
            let ready = of(&stored, alg, KeyState::Next)
                .filter(|k| k.created_at + PUBLISH_BEFORE_USE <= now)
                .max_by_key(|k| (k.created_at, &k.kid));
            if let Some(next) = ready {
                if conn
                    .set_signing_key_state(&next.kid, "active", now, "next")
                    .await?
                {
                    tracing::info!(%alg, kid = %next.kid, "signing key activated");
                }
            }
        }

        let stored = conn.signing_keys().await?;
        let mut rotate = Vec::new();
        for alg in Alg::ALL {
            let newest = of(&stored, alg, KeyState::Active).max_by_key(|k| newness(k));
            for old in of(&stored, alg, KeyState::Active).filter(|k| Some(*k) != newest) {
                if conn
                    .set_signing_key_state(&old.kid, "retired", now, "active")
                    .await?
                {
                    tracing::info!(%alg, kid = %old.kid, "signing key retired");
                }
            }
            if let Some(newest) = newest {
                for lost in
                    of(&stored, alg, KeyState::Next).filter(|k| k.created_at < newest.created_at)
                {
                    conn.set_signing_key_state(&lost.kid, "retired", now, "next")
                        .await?;
                }
            }
            for gone in of(&stored, alg, KeyState::Retired)
                .filter(|k| k.retired_at.unwrap_or(k.created_at) + RETIRED_KEEP <= now)
            {
                if conn.delete_signing_key(&gone.kid).await? {
                    tracing::info!(%alg, kid = %gone.kid, "retired signing key deleted");
                }
            }
            let due = newest.is_some_and(|k| newness(k).0 + ROTATE_AFTER <= now);
            if due && of(&stored, alg, KeyState::Next).next().is_none() {
                rotate.push(alg);
            }
        }
        drop(conn);
        for alg in rotate {
            let kid = self.create(alg, KeyState::Next).await?;
            tracing::info!(%alg, %kid, "automatic signing key rotation started");
        }
        self.refresh().await
    }

    /// Reloads the keys from the database. Keys already open are reused; a
    /// key that cannot be opened (wrong master key, corrupt row) is skipped
    /// with an error in the log.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let stored = self.store.conn().await?.signing_keys().await?;
        let current = self.keys();
        let mut keys = Vec::with_capacity(stored.len());
        for row in stored {
            let known = current
                .keys
                .iter()
                .find(|k| k.kid == row.kid && k.alg.as_str() == row.alg);
            let key = match known {
                Some(key) => Ok(key.clone()),
                None => self.open(&row),
            };
            match (key, KeyState::parse(&row.state)) {
                (Ok(mut key), Some(state)) => {
                    key.state = state;
                    key.created_at = row.created_at;
                    key.activated_at = row.activated_at;
                    key.retired_at = row.retired_at;
                    keys.push(key);
                }
                (Err(error), _) => {
                    tracing::error!(kid = %row.kid, alg = %row.alg, %error, "signing key skipped")
                }
                (_, None) => {
                    tracing::error!(kid = %row.kid, state = %row.state, "signing key in unknown state skipped")
                }
            }
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(KeySet { keys });
        Ok(())
    }

    /// Decrypts and parses a stored key.
    fn open(&self, row: &StoredKey) -> Result<SigningKey, String> {
        let alg = Alg::parse(&row.alg).ok_or("unknown algorithm")?;
        let pkcs8 = self
            .secrets
            .decrypt(&context(&row.kid), &row.private_key)
            .map_err(|e| e.to_string())?;
        let pkcs8 = SecretBox::new(Box::new(pkcs8));
        SigningKey::new(&row.kid, alg, KeyState::Next, pkcs8.expose_secret())
            .map_err(|e| e.to_string())
    }

    /// Generates a key off the async executor and stores it, encrypted.
    async fn create(&self, alg: Alg, state: KeyState) -> Result<String, KeyError> {
        let row = self.generate(alg, state).await?;
        self.store.conn().await?.insert_signing_key(&row).await?;
        Ok(row.kid)
    }

    /// A new key of `alg`, its private part sealed under the master key.
    async fn generate(&self, alg: Alg, state: KeyState) -> Result<StoredKey, KeyError> {
        let key = tokio::task::spawn_blocking(move || jose::generate(alg)).await?;
        let now = self.clock.now();
        let row = StoredKey {
            private_key: self
                .secrets
                .encrypt(&context(&key.kid), key.private_pkcs8.expose_secret()),
            kid: key.kid,
            alg: alg.as_str().to_owned(),
            public_jwk: key.public_jwk.to_string(),
            state: state.as_str().to_owned(),
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
        };
        Ok(row)
    }
}

/// A rotation's new keys, made by [`KeyManager::prepare_rotation`].
#[derive(Debug)]
pub struct Rotation {
    rows: Vec<StoredKey>,
}

impl Rotation {
    /// The new keys' kids.
    pub fn kids(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.kid.clone()).collect()
    }

    /// Stores the new keys on `conn`: a transaction of the caller's, so
    /// that the rotation and its audit record commit together.
    pub async fn store(&self, tx: &mut Tx) -> Result<(), KeyError> {
        for row in &self.rows {
            tx.insert_signing_key(row).await?;
        }
        Ok(())
    }
}

/// The stored keys of `alg` in `state`.
fn of(stored: &[StoredKey], alg: Alg, state: KeyState) -> impl Iterator<Item = &StoredKey> {
    stored
        .iter()
        .filter(move |k| k.alg == alg.as_str() && k.state == state.as_str())
}

/// The order in which the newest active key is picked, the same as
/// [`KeySet::signer`]'s: activation, then creation, then kid.
fn newness(k: &StoredKey) -> (i64, i64, &str) {
    (k.activated_at.unwrap_or(k.created_at), k.created_at, &k.kid)
}
