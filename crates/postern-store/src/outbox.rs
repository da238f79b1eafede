//! The outbox's lease bookkeeping beyond claiming (see [`Store::claim_outbox`]):
//! renewing the leases of messages an instance holds, handing them back, and
//! the figures an operator watches (depth, age of the oldest message).
//!
//! Lists of ids travel as one JSON array bound to one parameter, expanded by
//! the database (`json_each` on SQLite, `json_array_elements_text` on
//! PostgreSQL), so a renewal is one statement however many messages an
//! instance holds.

use crate::{Backend, Result, Store};

/// How many messages wait and since when (the `created_at` of the oldest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Messages neither delivered nor given up.
    pub pending: i64,
    /// When the oldest of them was queued (unix seconds), if any.
    pub oldest_created_at: Option<i64>,
}

impl Store {
    /// A subquery yielding the ids of the JSON array bound to `$n`.
    fn id_list(&self, n: u8) -> String {
        match self.backend {
            Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Backend::Postgres => format!("SELECT json_array_elements_text(${n}::json)"),
        }
    }

    /// Extends to `lease_until` the leases `owner` still holds among `ids`;
    /// returns the ids it still holds (a lease that ran out and was taken
    /// by another instance is not extended and not returned).
    pub async fn renew_outbox_leases(
        &self,
        owner: &str,
        ids: &[String],
        lease_until: i64,
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE outbox SET lease_until = $2 \
             WHERE lease_owner = $1 AND sent_at IS NULL AND failed_at IS NULL \
               AND id IN ({}) RETURNING id",
            self.id_list(3)
        );
        let list =
            serde_json::to_string(ids).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query_scalar(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(list)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Hands back the leases `owner` holds on `ids` without an attempt
    /// having been made (shutting down): the messages are due at once for
    /// any instance, and the attempt counted when they were leased is
    /// given back.
    pub async fn release_outbox_leases(&self, owner: &str, ids: &[String]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, \
               attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE lease_owner = $1 AND sent_at IS NULL AND failed_at IS NULL \
               AND id IN ({})",
            self.id_list(2)
        );
        let list =
            serde_json::to_string(ids).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        let done = sqlx::query(&sql)
            .bind(owner)
            .bind(list)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends every lease on a pending message, whoever holds it: for a
    /// starting SQLite instance, the only process that delivers from its
    /// database, whose earlier self died holding them. Returns how many.
    pub async fn take_back_outbox_leases(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// How many messages wait and the age of the oldest (for metrics).
    pub async fn outbox_depth(&self) -> Result<OutboxDepth> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox \
             WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxDepth {
            pending: row.try_get("pending")?,
            oldest_created_at: row.try_get("oldest")?,
        })
    }
}
