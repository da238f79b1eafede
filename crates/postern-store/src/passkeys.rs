//! Passkeys (WebAuthn, issue 15): a user's credentials and the ceremonies
//! under way. One SQL text per statement for both databases, as elsewhere.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::Result;

/// One registered passkey of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// Random id, for forms and the admin API.
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// The WebAuthn user handle given when it was made.
    pub user_handle: String,
    /// The credential as webauthn-rs keeps it (JSON: public key, counter,
    /// backup flags, transports); the columns below repeat what pages show.
    pub passkey: String,
    /// The signature counter last seen.
    pub sign_count: i64,
    /// May be synced to other devices.
    pub backup_eligible: bool,
    /// Is backed up (synced) now.
    pub backup_state: bool,
    /// Transports the authenticator said it speaks, comma-separated.
    pub transports: Option<String>,
    /// The person's name for it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of its last sign-in.
    pub last_used_at: Option<i64>,
}

/// A ceremony under way: its state, bound to the browser that started it,
/// usable once within its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallenge {
    /// Random id, sent to the browser with the options.
    pub id: String,
    /// `register` or `authenticate`.
    pub kind: String,
    /// The user registering (registration only).
    pub user_id: Option<String>,
    /// Keyed hash of the starting browser's binding cookie.
    pub binding_hash: String,
    /// The ceremony state, encrypted under the master key.
    pub state: String,
    /// The sign-in's authorization request (authentication), JSON.
    pub flow: Option<String>,
    /// The starting IP.
    pub ip: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set once used.
    pub consumed_at: Option<i64>,
}

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, user_handle, passkey, sign_count, \
    backup_eligible, backup_state, transports, name, created_at, last_used_at";

const CHALLENGE_COLUMNS: &str =
    "id, kind, user_id, binding_hash, state, flow, ip, created_at, expires_at, consumed_at";

fn passkey_from_row(row: &AnyRow) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        credential_id: row.try_get("credential_id")?,
        user_handle: row.try_get("user_handle")?,
        passkey: row.try_get("passkey")?,
        sign_count: row.try_get("sign_count")?,
        backup_eligible: row.try_get::<i64, _>("backup_eligible")? != 0,
        backup_state: row.try_get::<i64, _>("backup_state")? != 0,
        transports: row.try_get("transports")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn challenge_from_row(row: &AnyRow) -> Result<PasskeyChallenge> {
    Ok(PasskeyChallenge {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        user_id: row.try_get("user_id")?,
        binding_hash: row.try_get("binding_hash")?,
        state: row.try_get("state")?,
        flow: row.try_get("flow")?,
        ip: row.try_get("ip")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        consumed_at: row.try_get("consumed_at")?,
    })
}

/// Passkey statements, available on connections and transactions.
#[allow(async_fn_in_trait)]
pub trait PasskeyQueries {
    /// Stores a new passkey; [`crate::StoreError::Conflict`] when its
    /// credential id is registered already (to anyone).
    async fn insert_passkey(&mut self, p: &StoredPasskey) -> Result<()>;
    /// A user's passkeys, newest first.
    async fn passkeys_of_user(&mut self, user_id: &str) -> Result<Vec<StoredPasskey>>;
    /// The passkey with this credential id.
    async fn passkey_by_credential(&mut self, credential_id: &str)
        -> Result<Option<StoredPasskey>>;
    /// How many passkeys a user has.
    async fn count_passkeys(&mut self, user_id: &str) -> Result<i64>;
    /// After a sign-in with it: the updated credential (counter, flags)
    /// and when it was used.
    async fn record_passkey_use(
        &mut self,
        id: &str,
        passkey: &str,
        sign_count: i64,
        backup_state: bool,
        now: i64,
    ) -> Result<()>;
    /// Renames a user's passkey; false when the user has no such passkey.
    async fn rename_passkey(&mut self, user_id: &str, id: &str, name: &str) -> Result<bool>;
    /// Deletes a user's passkey; false when the user has no such passkey.
    async fn delete_passkey(&mut self, user_id: &str, id: &str) -> Result<bool>;
    /// Stores a ceremony under way, dropping ceremonies that ended before
    /// `purge_before`.
    async fn insert_passkey_challenge(
        &mut self,
        c: &PasskeyChallenge,
        purge_before: i64,
    ) -> Result<()>;
    /// A ceremony by id, consumed or not (to tell why it cannot be used).
    async fn passkey_challenge(&mut self, id: &str) -> Result<Option<PasskeyChallenge>>;
    /// Consumes a live ceremony of `kind` started by the browser whose
    /// binding hashes to `binding_hash`, in one statement: of two
    /// concurrent uses exactly one gets it. None when there is no such live
    /// ceremony for this browser.
    async fn consume_passkey_challenge(
        &mut self,
        id: &str,
        kind: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<Option<PasskeyChallenge>>;
}

impl<C: crate::Connection> PasskeyQueries for C {
    async fn insert_passkey(&mut self, p: &StoredPasskey) -> Result<()> {
        let res = sqlx::query(&format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&p.id)
        .bind(&p.user_id)
        .bind(&p.credential_id)
        .bind(&p.user_handle)
        .bind(&p.passkey)
        .bind(p.sign_count)
        .bind(i64::from(p.backup_eligible))
        .bind(i64::from(p.backup_state))
        .bind(&p.transports)
        .bind(&p.name)
        .bind(p.created_at)
        .bind(p.last_used_at)
        .execute(self.raw())
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(crate::StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn passkeys_of_user(&mut self, user_id: &str) -> Result<Vec<StoredPasskey>> {
        sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 \
             ORDER BY created_at DESC, id"
        ))
        .bind(user_id)
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(passkey_from_row)
        .collect()
    }

    async fn passkey_by_credential(
        &mut self,
        credential_id: &str,
    ) -> Result<Option<StoredPasskey>> {
        sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(passkey_from_row)
        .transpose()
    }

    async fn count_passkeys(&mut self, user_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(self.raw())
                .await?,
        )
    }

    async fn record_passkey_use(
        &mut self,
        id: &str,
        passkey: &str,
        sign_count: i64,
        backup_state: bool,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE passkeys SET passkey = $1, sign_count = $2, backup_state = $3, \
             last_used_at = $4 WHERE id = $5",
        )
        .bind(passkey)
        .bind(sign_count)
        .bind(i64::from(backup_state))
        .bind(now)
        .bind(id)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn rename_passkey(&mut self, user_id: &str, id: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
            .bind(name)
            .bind(id)
            .bind(user_id)
            .execute(self.raw())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&mut self, user_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.raw())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_passkey_challenge(
        &mut self,
        c: &PasskeyChallenge,
        purge_before: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM passkey_challenges WHERE expires_at < $1")
            .bind(purge_before)
            .execute(self.raw())
            .await?;
        sqlx::query(&format!(
            "INSERT INTO passkey_challenges ({CHALLENGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&c.id)
        .bind(&c.kind)
        .bind(&c.user_id)
        .bind(&c.binding_hash)
        .bind(&c.state)
        .bind(&c.flow)
        .bind(&c.ip)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.consumed_at)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn passkey_challenge(&mut self, id: &str) -> Result<Option<PasskeyChallenge>> {
        sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM passkey_challenges WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(challenge_from_row)
        .transpose()
    }

    async fn consume_passkey_challenge(
        &mut self,
        id: &str,
        kind: &str,
        binding_hash: &str,
        now: i64,
    ) -> Result<Option<PasskeyChallenge>> {
        sqlx::query(&format!(
            "UPDATE passkey_challenges SET consumed_at = $1 \
             WHERE id = $2 AND kind = $3 AND binding_hash = $4 \
             AND consumed_at IS NULL AND expires_at > $1 \
             RETURNING {CHALLENGE_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .bind(kind)
        .bind(binding_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(challenge_from_row)
        .transpose()
    }
}
