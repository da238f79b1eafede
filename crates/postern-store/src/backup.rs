//! Consistent copies of a live SQLite database (`postern backup`).

use crate::{Backend, Result, Store, StoreError};

impl Store {
    /// Writes a consistent copy of this SQLite database to `path` (which
    /// must not exist) with `VACUUM INTO`: one read transaction, so the copy
    /// is the database as of one instant even while the server writes.
    /// PostgreSQL has its own tools (`pg_dump`): refused with
    /// [`StoreError::UnsupportedUrl`].
    pub async fn backup_into(&self, path: &str) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::UnsupportedUrl);
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
