//! Sessions, refresh tokens and the bookkeeping of issued codes (SPEC §2,
//! §3.2): every statement one SQL text for both databases.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::deferred::Op;
use crate::queries::{session_from_row, SESSION_COLUMNS};
use crate::rows::Session;
use crate::Result;

/// An opaque refresh token, stored hashed. Tokens of one family descend
/// from one authorization code; presenting a used one revokes the family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Keyed hash of the token.
    pub token_hash: String,
    /// The family (one per authorization-code exchange or headless sign-in).
    pub family_id: String,
    /// The session it keeps alive.
    pub session_id: String,
    /// The app it was issued to.
    pub client_id: String,
    /// Its user.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Set when it was exchanged for its successor.
    pub used_at: Option<i64>,
    /// Set when its family was revoked.
    pub revoked_at: Option<i64>,
}

const REFRESH_COLUMNS: &str =
    "token_hash, family_id, session_id, client_id, user_id, scope, created_at, used_at, revoked_at";

fn refresh_from_row(row: &AnyRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        session_id: row.try_get("session_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        created_at: row.try_get("created_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Session and token statements, available on connections and transactions.
#[allow(async_fn_in_trait)]
pub trait SessionQueries {
    /// The session with this public id.
    async fn session(&mut self, id: &str) -> Result<Option<Session>>;
    /// A user's sessions that are not revoked, newest first.
    async fn user_sessions(&mut self, user_id: &str) -> Result<Vec<Session>>;
    /// Records activity (sliding inactivity).
    async fn touch_session(&mut self, id: &str, now: i64) -> Result<()>;
    /// Marks a session of `user_id` as standing for the passkey (issue 15:
    /// a passkey was made in it), so it may enter an app that requires one.
    async fn mark_session_passkey_ok(&mut self, id: &str, user_id: &str) -> Result<()>;
    /// Ends one session and its refresh tokens; false if it was already ended.
    async fn revoke_session(&mut self, id: &str, now: i64) -> Result<bool>;
    /// Ends every session and refresh token of a user ("sign out everywhere").
    async fn revoke_user_sessions(&mut self, user_id: &str, now: i64) -> Result<u64>;
    /// Stores a refresh token.
    async fn insert_refresh_token(&mut self, token: &RefreshToken) -> Result<()>;
    /// The refresh token with this hash, used or not.
    async fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// Atomically marks an unused, unrevoked refresh token used; None when
    /// it is unknown, used or revoked. Exactly one concurrent caller wins.
    async fn use_refresh_token(
        &mut self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>>;
    /// Revokes every token of a family.
    async fn revoke_refresh_family(&mut self, family_id: &str, now: i64) -> Result<u64>;
    /// Records the app's user id (pairwise subject) of a headless session.
    async fn set_session_subject(&mut self, id: &str, subject: &str) -> Result<()>;
    /// Ends an app's headless sessions of one of its users, with their
    /// refresh tokens ("sign out everywhere" of SPEC §3.4).
    async fn revoke_subject_sessions(
        &mut self,
        client_id: &str,
        subject: &str,
        now: i64,
    ) -> Result<u64>;
    /// Remembers which refresh family an authorization code produced.
    async fn set_code_family(&mut self, code_hash: &str, family_id: &str) -> Result<()>;
    /// For a consumed code issued to `client_id`: the session it came from
    /// and the family it produced. None for a code of another client, so a
    /// replay by someone else revokes nothing (RFC 6749 §4.1.2).
    async fn code_issued(
        &mut self,
        code_hash: &str,
        client_id: &str,
    ) -> Result<Option<(Option<String>, Option<String>)>>;
    /// Puts an access token's `jti` on the denylist until `expires_at` (its
    /// `exp`); revoking it again changes nothing (RFC 7009 §2.2).
    async fn revoke_access_token(&mut self, jti: &str, expires_at: i64, now: i64) -> Result<()>;
    /// The session an access token names (`sid`), unless its `jti` was
    /// revoked: the one lookup behind every access-token check.
    async fn access_token_session(&mut self, sid: &str, jti: &str) -> Result<Option<Session>>;
    /// How many codes of one session for one app are neither redeemed nor
    /// expired at `now`.
    async fn live_codes(&mut self, session_id: &str, client_id: &str, now: i64) -> Result<i64>;
}

/// [`SessionQueries::insert_refresh_token`]'s statement.
pub(crate) fn insert_refresh_op(t: &RefreshToken) -> Op {
    Op::new(
        format!(
            "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        vec![
            (&t.token_hash).into(),
            (&t.family_id).into(),
            (&t.session_id).into(),
            (&t.client_id).into(),
            (&t.user_id).into(),
            (&t.scope).into(),
            t.created_at.into(),
            t.used_at.into(),
            t.revoked_at.into(),
        ],
    )
}

/// [`SessionQueries::set_code_family`]'s statement.
pub(crate) fn code_family_op(code_hash: &str, family_id: &str) -> Op {
    Op::new(
        "UPDATE authorization_codes SET family_id = $2 WHERE code_hash = $1",
        vec![code_hash.into(), family_id.into()],
    )
}

impl<C: crate::Connection> SessionQueries for C {
    async fn session(&mut self, id: &str) -> Result<Option<Session>> {
        crate::queries::session_op(id)
            .fetch_optional(self.raw(), session_from_row)
            .await
    }

    async fn user_sessions(&mut self, user_id: &str) -> Result<Vec<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY last_seen_at DESC, id"
        ))
        .bind(user_id)
        .fetch_all(self.raw())
        .await?
        .iter()
        .map(session_from_row)
        .collect()
    }

    async fn touch_session(&mut self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
            .bind(id)
            .bind(now)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn mark_session_passkey_ok(&mut self, id: &str, user_id: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET passkey_ok = 1 WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn revoke_session(&mut self, id: &str, now: i64) -> Result<bool> {
        let ended =
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(self.raw())
                .await?
                .rows_affected();
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(self.raw())
            .await?;
        Ok(ended == 1)
    }

    async fn revoke_user_sessions(&mut self, user_id: &str, now: i64) -> Result<u64> {
        let ended = sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(ended)
    }

    async fn insert_refresh_token(&mut self, t: &RefreshToken) -> Result<()> {
        insert_refresh_op(t).execute(self.raw()).await?;
        Ok(())
    }

    async fn refresh_token(&mut self, token_hash: &str) -> Result<Option<RefreshToken>> {
        sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    async fn use_refresh_token(
        &mut self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        sqlx::query(&format!(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND revoked_at IS NULL RETURNING {REFRESH_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    async fn revoke_refresh_family(&mut self, family_id: &str, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn set_session_subject(&mut self, id: &str, subject: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET subject = $2 WHERE id = $1")
            .bind(id)
            .bind(subject)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn revoke_subject_sessions(
        &mut self,
        client_id: &str,
        subject: &str,
        now: i64,
    ) -> Result<u64> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND session_id IN \
             (SELECT id FROM sessions WHERE client_id = $1 AND subject = $2)",
        )
        .bind(client_id)
        .bind(subject)
        .bind(now)
        .execute(self.raw())
        .await?;
        Ok(sqlx::query(
            "UPDATE sessions SET revoked_at = $3 WHERE client_id = $1 AND subject = $2 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(subject)
        .bind(now)
        .execute(self.raw())
        .await?
        .rows_affected())
    }

    async fn set_code_family(&mut self, code_hash: &str, family_id: &str) -> Result<()> {
        code_family_op(code_hash, family_id)
            .execute(self.raw())
            .await?;
        Ok(())
    }

    async fn code_issued(
        &mut self,
        code_hash: &str,
        client_id: &str,
    ) -> Result<Option<(Option<String>, Option<String>)>> {
        let row = sqlx::query(
            "SELECT session_id, family_id FROM authorization_codes \
             WHERE code_hash = $1 AND client_id = $2 AND consumed_at IS NOT NULL",
        )
        .bind(code_hash)
        .bind(client_id)
        .fetch_optional(self.raw())
        .await?;
        row.map(|r| Ok((r.try_get("session_id")?, r.try_get("family_id")?)))
            .transpose()
    }

    async fn revoke_access_token(&mut self, jti: &str, expires_at: i64, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, revoked_at, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(now)
        .bind(expires_at)
        .execute(self.raw())
        .await?;
        Ok(())
    }

    async fn access_token_session(&mut self, sid: &str, jti: &str) -> Result<Option<Session>> {
        sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $2)"
        ))
        .bind(sid)
        .bind(jti)
        .fetch_optional(self.raw())
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn live_codes(&mut self, session_id: &str, client_id: &str, now: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM authorization_codes \
             WHERE session_id = $1 AND client_id = $2 AND consumed_at IS NULL AND expires_at > $3",
        )
        .bind(session_id)
        .bind(client_id)
        .bind(now)
        .fetch_one(self.raw())
        .await?)
    }
}
