//! Signing keys (SPEC §2: "Keys rotate without downtime"). Rows of
//! `signing_keys`; the private key is stored encrypted under the master key
//! by the caller, this layer only moves text.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

/// One row of `signing_keys`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (primary key), as in token headers.
    pub kid: String,
    /// JOSE algorithm name: `RS256`, `EdDSA`, `ES256`.
    pub alg: String,
    /// The public JWK, JSON text.
    pub public_jwk: String,
    /// The PKCS#8 private key, encrypted (`v1.` ciphertext): never plain.
    pub private_key: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// When the key was made (unix seconds).
    pub created_at: i64,
    /// When it became active.
    pub activated_at: Option<i64>,
    /// When it was retired.
    pub retired_at: Option<i64>,
}

/// Reads and writes of signing keys, on a pooled connection or inside a
/// transaction, like [`crate::Queries`].
#[allow(async_fn_in_trait)]
pub trait KeyQueries {
    /// Stores a new key; [`StoreError::Conflict`] if the kid exists.
    async fn insert_signing_key(&mut self, key: &StoredKey) -> Result<()>;
    /// Every stored key, oldest first.
    async fn signing_keys(&mut self) -> Result<Vec<StoredKey>>;
    /// Moves key `kid` to `state` if it is in `only_if_state`, recording `at`
    /// as `activated_at` (for `active`) or `retired_at` (for `retired`).
    /// One conditional statement: of instances racing to move the same key,
    /// exactly one gets `true`.
    async fn set_signing_key_state(
        &mut self,
        kid: &str,
        state: &str,
        at: i64,
        only_if_state: &str,
    ) -> Result<bool>;
    /// Deletes key `kid`; false when it did not exist.
    async fn delete_signing_key(&mut self, kid: &str) -> Result<bool>;
}

fn key_from_row(row: &AnyRow) -> Result<StoredKey> {
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        public_jwk: row.try_get("public_jwk")?,
        private_key: row.try_get("private_key")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

impl<C: crate::Connection> KeyQueries for C {
    async fn insert_signing_key(&mut self, key: &StoredKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, state, created_at, activated_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.public_jwk)
        .bind(&key.private_key)
        .bind(&key.state)
        .bind(key.created_at)
        .bind(key.activated_at)
        .bind(key.retired_at)
        .execute(self.raw())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => e.into(),
        })?;
        Ok(())
    }

    async fn signing_keys(&mut self) -> Result<Vec<StoredKey>> {
        sqlx::query(
            "SELECT kid, alg, public_jwk, private_key, state, created_at, activated_at, retired_at \
             FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn set_signing_key_state(
        &mut self,
        kid: &str,
        state: &str,
        at: i64,
        only_if_state: &str,
    ) -> Result<bool> {
        // Which column `at` goes to depends on the target state; picked here
        // so each statement stays one plain SQL text for both databases.
        let query = match state {
            "active" => sqlx::query("UPDATE signing_keys SET state = $1, activated_at = $2 WHERE kid = $3 AND state = $4")
                .bind(state)
                .bind(at),
            "retired" => sqlx::query("UPDATE signing_keys SET state = $1, retired_at = $2 WHERE kid = $3 AND state = $4")
                .bind(state)
                .bind(at),
            _ => sqlx::query("UPDATE signing_keys SET state = $1 WHERE kid = $2 AND state = $3").bind(state),
        };
        // The state condition is evaluated under the row lock (PostgreSQL) or
        // the write lock (SQLite): a second racer sees the new state and misses.
        let done = query
            .bind(kid)
            .bind(only_if_state)
            .execute(self.raw())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_signing_key(&mut self, kid: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(self.raw())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
