//! Using and ending tokens: userinfo (OIDC Core §5.3), introspection
//! (RFC 7662), revocation (RFC 7009) and ID token hints.

use super::*;

// ---- userinfo, introspection, revocation -----------------------------------

/// Verifies an access token and that its session is still live (online
/// check: sign-out is seen at once) and that it was not revoked at
/// `/revoke`. Returns its claims.
pub async fn verify_access_token(svc: &Services, token: &str) -> Result<AccessClaims> {
    Ok(verify_access_token_session(svc, token).await?.0)
}

/// The signature and claims of an access token (RFC 9068 §4), without
/// asking the database.
pub(crate) fn access_token_claims(svc: &Services, token: &str, now: i64) -> Result<AccessClaims> {
    if token.len() > MAX_JWT_LEN {
        return Err(AuthError::InvalidAccessToken);
    }
    let check = postern_core::jose::Check {
        issuer: &svc.settings.issuer(),
        audience: None,
        now,
        leeway: 0,
    };
    svc.keys
        .keys()
        .verify(token, &[Alg::EdDSA], Some(ACCESS_TOKEN_TYP), &check)
        .map_err(|_| AuthError::InvalidAccessToken)
}

/// [`verify_access_token`], also returning the live session: one query for
/// the session and the denylist together.
pub(crate) async fn verify_access_token_session(
    svc: &Services,
    token: &str,
) -> Result<(AccessClaims, Session)> {
    let now = svc.now();
    let claims = access_token_claims(svc, token, now)?;
    let session = svc
        .store
        .conn()
        .await?
        .access_token_session(&claims.sid, &claims.jti)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .ok_or(AuthError::InvalidAccessToken)?;
    Ok((claims, session))
}

/// OIDC Core §5.3: the claims of the access token's user.
pub async fn userinfo(svc: &Services, token: &str) -> Result<Value> {
    let (claims, session) = verify_access_token_session(svc, token).await?;
    let user = svc
        .store
        .conn()
        .await?
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or(AuthError::InvalidAccessToken)?;
    let mut out = json!({ "sub": claims.sub });
    if Scope::parse(Some(&claims.scope)).contains("email") {
        out["email"] = json!(user.email);
        out["email_verified"] = json!(true);
    }
    Ok(out)
}

/// RFC 7662: what a token is, for the client it was issued to.
pub async fn introspect(svc: &Services, app: &App, token: &str) -> Result<Value> {
    let inactive = json!({ "active": false });
    if token.starts_with("prt_") {
        let hash = svc.secrets.keyed_hash(purpose::REFRESH, token.as_bytes());
        let mut conn = svc.store.conn().await?;
        let Some(t) = conn.refresh_token(&hash).await? else {
            return Ok(inactive);
        };
        let now = svc.now();
        let session = conn.session(&t.session_id).await?;
        let active = t.client_id == app.client_id
            && t.used_at.is_none()
            && t.revoked_at.is_none()
            && session.as_ref().is_some_and(|s| {
                s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.last_seen_at + svc.settings.session_idle_ttl > now
            });
        if !active {
            return Ok(inactive);
        }
        let s = session.expect("checked above");
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": t.client_id,
            "scope": t.scope,
            "sub": subject(svc, app, &t.user_id),
            "iss": svc.settings.issuer(),
            "iat": t.created_at,
            "exp": (s.last_seen_at + svc.settings.session_idle_ttl).min(s.expires_at),
            "sid": s.id,
        }));
    }
    match verify_access_token(svc, token).await {
        Ok(c) if c.client_id == app.client_id => Ok(json!({
            "active": true,
            "token_type": "access_token",
            "client_id": c.client_id,
            "scope": c.scope,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
            "sid": c.sid,
        })),
        Ok(_) | Err(AuthError::InvalidAccessToken) => Ok(inactive),
        Err(e) => Err(e),
    }
}

/// RFC 7009: revokes a refresh token and its whole family, or an access
/// token: its `jti` goes on a denylist in the database (every instance sees
/// it) until the token's `exp`, so `/userinfo` and `/introspect` refuse it
/// at once; its refresh tokens and session are untouched. Unknown, invalid
/// and expired tokens and tokens of other clients are ignored (the answer
/// is still 200, RFC 7009 §2.2).
pub async fn revoke(svc: &Services, app: &App, token: &str) -> Result<()> {
    let now = svc.now();
    if !token.starts_with("prt_") {
        let Ok(claims) = access_token_claims(svc, token, now) else {
            return Ok(());
        };
        if claims.client_id != app.client_id {
            return Ok(());
        }
        let mut tx = svc.store.begin().await?;
        tx.revoke_access_token(&claims.jti, claims.exp, now).await?;
        tx.commit().await?;
        return Ok(());
    }
    if token.len() > 200 {
        return Ok(());
    }
    let hash = svc.secrets.keyed_hash(purpose::REFRESH, token.as_bytes());
    let mut tx = svc.store.begin().await?;
    if let Some(t) = tx
        .refresh_token(&hash)
        .await?
        .filter(|t| t.client_id == app.client_id)
    {
        tx.revoke_refresh_family(&t.family_id, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What `/logout` needs from an `id_token_hint`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    /// The client it was issued to.
    pub aud: String,
    /// The user, as that client sees them.
    pub sub: Option<String>,
    /// The session it was issued in.
    pub sid: Option<String>,
}

/// Verifies an ID token Postern issued, accepting expired ones
/// (RP-Initiated Logout 1.0 §2: the hint may have expired).
pub async fn verify_id_token_hint(svc: &Services, token: &str) -> Result<IdTokenHint> {
    if token.len() > 8192 {
        return Err(AuthError::invalid("id_token_hint is too long."));
    }
    let check = postern_core::jose::Check {
        issuer: &svc.settings.issuer(),
        audience: None,
        now: svc.now(),
        // Expired hints are fine: logout only needs to know who issued it.
        leeway: 10 * 365 * 86_400,
    };
    svc.keys
        .keys()
        .verify::<IdTokenHint>(token, &Alg::ALL, Some("JWT"), &check)
        .map_err(|_| AuthError::invalid("id_token_hint is not valid."))
}
