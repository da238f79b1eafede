//! What a person's own account page (SPEC §3.3 `/account`) reads and
//! changes: the apps they allowed, taking an app's access back, and
//! deleting the account with everything that names them.

use postern_core::App;
use sqlx::Row;

use crate::queries::app_from_row;
use crate::Result;

/// A user's remembered consent for one app (a row of `grants`), with the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    /// The app the person allowed.
    pub app: App,
    /// The scopes allowed, space-separated.
    pub scope: String,
    /// When the app was first allowed, unix seconds.
    pub created_at: i64,
    /// When the grant last grew, unix seconds.
    pub updated_at: i64,
}

/// Account statements, available on connections and transactions.
#[allow(async_fn_in_trait)]
pub trait AccountQueries {
    /// The apps a user allowed, with their grants, most recently changed first.
    async fn user_grants(&mut self, user_id: &str) -> Result<Vec<UserGrant>>;
    /// Forgets a user's consent for an app; false when there was none.
    async fn delete_grant(&mut self, user_id: &str, client_id: &str) -> Result<bool>;
    /// Revokes every live refresh token an app holds for a user (taking an
    /// app's access back); returns how many.
    async fn revoke_app_refresh_tokens(
        &mut self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<u64>;
    /// Deletes a user and everything that names them: the user row (the
    /// schema's `ON DELETE CASCADE` removes sessions, grants, authorization
    /// codes and refresh tokens), their sign-in history and their login
    /// requests (which carry the address). False when there was no such
    /// user. Run it in a transaction.
    async fn delete_user(&mut self, user_id: &str) -> Result<bool>;
}

impl<C: crate::Connection> AccountQueries for C {
    async fn user_grants(&mut self, user_id: &str) -> Result<Vec<UserGrant>> {
        sqlx::query(
            "SELECT a.client_id, a.name, a.settings, a.created_at, a.updated_at, \
             g.scope, g.created_at AS granted_at, g.updated_at AS grant_updated_at \
             FROM grants g JOIN apps a ON a.client_id = g.client_id \
             WHERE g.user_id = $1 ORDER BY g.updated_at DESC, a.client_id",
        )
        .bind(user_id)
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(|row| {
            Ok(UserGrant {
                app: app_from_row(row)?,
                scope: row.try_get("scope")?,
                created_at: row.try_get("granted_at")?,
                updated_at: row.try_get("grant_updated_at")?,
            })
        })
        .collect()
    }

    async fn delete_grant(&mut self, user_id: &str, client_id: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM grants WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .execute(self.raw())
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn revoke_app_refresh_tokens(
        &mut self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3 \
             WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn delete_user(&mut self, user_id: &str) -> Result<bool> {
        let email: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.raw())
            .await?;
        let Some(email) = email else {
            return Ok(false);
        };
        // History has no foreign key (it outlives deleted apps), so it goes
        // by hand; so do login requests, which name the address, not the user.
        sqlx::query("DELETE FROM sign_in_events WHERE user_id = $1")
            .bind(user_id)
            .execute(self.raw())
            .await?;
        sqlx::query("DELETE FROM login_requests WHERE email = $1")
            .bind(&email)
            .execute(self.raw())
            .await?;
        // Refresh tokens and sessions cascade from the user; deleting them
        // first keeps the order explicit on both databases.
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(self.raw())
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(self.raw())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}
