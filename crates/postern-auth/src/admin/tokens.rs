//! Admin tokens (`pat_…`, SPEC §3.5): made and revoked on the command line,
//! stored only as keyed hashes, sent as `Authorization: Bearer pat_…`.

use postern_core::crypto::{random_id, random_token};
use postern_store::{AdminQueries, AdminToken};
use serde::Serialize;

use super::{audit, Actor, Principal, Target};
use crate::error::{AuthError, Result};
use crate::Services;

/// Keyed-hash purpose of admin tokens.
const PURPOSE: &str = "admin-token";

/// A new token: `{"id", "name", "token", "expires_at"}`, the token shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedToken {
    /// What `revoke` takes.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `pat_…`.
    pub token: String,
    /// Unix seconds; none: never.
    pub expires_at: Option<i64>,
}

/// A token in `list`: `{"id", "name", "expires_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// What `revoke` takes.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Unix seconds; none: never.
    pub expires_at: Option<i64>,
}

/// `postern admin token create --name N [--expires D]`.
pub async fn create(
    svc: &Services,
    who: &Principal,
    name: &str,
    expires_in: Option<i64>,
) -> Result<CreatedToken> {
    who.authorize(svc, Target::Server).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::invalid_field(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    if expires_in.is_some_and(|e| e <= 0) {
        return Err(AuthError::invalid_field("expires", "must be positive"));
    }
    let now = svc.now();
    let token = format!("pat_{}", random_token(32));
    let record = AdminToken {
        id: random_id(),
        name: name.to_owned(),
        created_at: now,
        expires_at: expires_in.map(|e| now + e),
        revoked_at: None,
    };
    let mut tx = svc.store.begin().await?;
    tx.insert_admin_token(&record, &svc.secrets.keyed_hash(PURPOSE, token.as_bytes()))
        .await?;
    audit(
        svc,
        &mut tx,
        who,
        "admin_token.create",
        Some(&record.id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken {
        id: record.id,
        name: record.name,
        token,
        expires_at: record.expires_at,
    })
}

/// `postern admin token list`: live tokens, newest first.
pub async fn list(svc: &Services, who: &Principal) -> Result<Vec<TokenView>> {
    who.authorize(svc, Target::Server).await?;
    let now = svc.now();
    Ok(svc
        .store
        .conn()
        .await?
        .admin_tokens()
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now))
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            expires_at: t.expires_at,
        })
        .collect())
}

/// `postern admin token revoke ID`.
pub async fn revoke(svc: &Services, who: &Principal, id: &str) -> Result<()> {
    who.authorize(svc, Target::Server).await?;
    let mut tx = svc.store.begin().await?;
    if !tx.revoke_admin_token(id, svc.now()).await? {
        return Err(AuthError::NotFound);
    }
    audit(svc, &mut tx, who, "admin_token.revoke", Some(id), None).await?;
    tx.commit().await?;
    Ok(())
}

/// The principal of `Authorization: Bearer pat_…`: an administrator named
/// by the token; a bad, expired or revoked token is 401.
pub async fn authenticate(svc: &Services, token: &str, ip: Option<String>) -> Result<Principal> {
    if !token.starts_with("pat_") || token.len() > 100 {
        return Err(AuthError::AdminUnauthenticated);
    }
    let hash = svc.secrets.keyed_hash(PURPOSE, token.as_bytes());
    let found = svc.store.conn().await?.admin_token_by_hash(&hash).await?;
    let now = svc.now();
    match found {
        Some(t) if t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now) => {
            Ok(Principal {
                actor: Actor::Token {
                    id: t.id,
                    name: t.name,
                },
                ip,
            })
        }
        _ => Err(AuthError::AdminUnauthenticated),
    }
}
