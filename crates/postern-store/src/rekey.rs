//! Every value sealed under the master key, for `postern master-key rotate`
//! (read them all, open each with the old key, seal it again with the new
//! one, all in one transaction), and the sealed keyed-hash key that a
//! rotation leaves behind (`master_key_state`, migration 0006).

use sqlx::Row;

use crate::Result;

/// Where a sealed value lives; its encryption context follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// `signing_keys.private_key`, context `signing-key:{kid}`.
    SigningKey,
    /// `outbox.payload` of a message not yet delivered, context `outbox:{id}`.
    Outbox,
    /// `passkey_challenges.state` of a ceremony under way (issue 15),
    /// context `passkey-challenge:{id}`.
    PasskeyChallenge,
}

/// One sealed value.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Its table.
    pub kind: SealedKind,
    /// The row's key (`kid` or outbox id).
    pub id: String,
    /// The ciphertext.
    pub value: String,
}

/// Reads and rewrites sealed values (run inside one transaction).
#[allow(async_fn_in_trait)]
pub trait RekeyQueries {
    /// Every sealed value in the database.
    async fn sealed_values(&mut self) -> Result<Vec<Sealed>>;
    /// Replaces one sealed value.
    async fn reseal(&mut self, sealed: &Sealed) -> Result<()>;
    /// The sealed keyed-hash key, if the master key was ever rotated.
    async fn sealed_hash_key(&mut self) -> Result<Option<String>>;
    /// Stores the sealed keyed-hash key.
    async fn set_sealed_hash_key(&mut self, value: &str, now: i64) -> Result<()>;
}

impl<C: crate::Connection> RekeyQueries for C {
    async fn sealed_values(&mut self) -> Result<Vec<Sealed>> {
        let mut out = Vec::new();
        for row in sqlx::query("SELECT kid, private_key FROM signing_keys ORDER BY kid")
            .fetch_all(self.raw())
            .await?
        {
            out.push(Sealed {
                kind: SealedKind::SigningKey,
                id: row.try_get("kid")?,
                value: row.try_get("private_key")?,
            });
        }
        for row in
            sqlx::query("SELECT id, payload FROM outbox WHERE payload IS NOT NULL ORDER BY id")
                .fetch_all(self.raw())
                .await?
        {
            out.push(Sealed {
                kind: SealedKind::Outbox,
                id: row.try_get("id")?,
                value: row.try_get("payload")?,
            });
        }
        for row in sqlx::query("SELECT id, state FROM passkey_challenges ORDER BY id")
            .fetch_all(self.raw())
            .await?
        {
            out.push(Sealed {
                kind: SealedKind::PasskeyChallenge,
                id: row.try_get("id")?,
                value: row.try_get("state")?,
            });
        }
        Ok(out)
    }

    async fn reseal(&mut self, sealed: &Sealed) -> Result<()> {
        let sql = match sealed.kind {
            SealedKind::SigningKey => "UPDATE signing_keys SET private_key = $2 WHERE kid = $1",
            SealedKind::Outbox => "UPDATE outbox SET payload = $2 WHERE id = $1",
            SealedKind::PasskeyChallenge => {
                "UPDATE passkey_challenges SET state = $2 WHERE id = $1"
            }
        };
        sqlx::query(sql)
            .bind(&sealed.id)
            .bind(&sealed.value)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn sealed_hash_key(&mut self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT hash_key FROM master_key_state WHERE id = 1")
                .fetch_optional(self.raw())
                .await?,
        )
    }

    async fn set_sealed_hash_key(&mut self, value: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO master_key_state (id, hash_key, rotated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET hash_key = excluded.hash_key, rotated_at = excluded.rotated_at",
        )
        .bind(value)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(())
    }
}
