//! The token endpoint (RFC 6749 §4.1.3, §6; OIDC Core §3.1.3): codes and
//! refresh tokens in, signed ID and access tokens out.

use super::*;

// ---- the token endpoint ----------------------------------------------------

/// The `/token` form (RFC 6749 §4.1.3, §6).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    #[schema(value_type = String, required = true)]
    pub grant_type: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// Must equal the one of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// For the refresh grant.
    pub refresh_token: Option<String>,
    /// For the refresh grant: at most the original scope.
    pub scope: Option<String>,
    /// `client_secret_post` / `none`.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// JWT, `typ: at+jwt`, EdDSA.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// The ID token.
    pub id_token: String,
    /// With `offline_access`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope.
    pub scope: String,
}

/// `/token`: exchanges a code or a refresh token for tokens.
pub async fn token(svc: &Services, app: &App, req: &TokenRequest) -> Result<TokenResponse> {
    match req.grant_type.as_deref() {
        Some("authorization_code") => exchange_code(svc, app, req).await,
        Some("refresh_token") => refresh(svc, app, req).await,
        Some(_) => Err(AuthError::UnsupportedGrantType),
        None => Err(AuthError::missing("grant_type")),
    }
}

/// An authorization code as a client presents it (RFC 6749 §4.1.3).
#[derive(Debug, Clone, Copy)]
pub struct PresentedCode<'a> {
    /// The code.
    pub code: Option<&'a str>,
    /// Must equal the authorization request's.
    pub redirect_uri: Option<&'a str>,
    /// PKCE verifier (RFC 7636 §4.5).
    pub code_verifier: Option<&'a str>,
}

/// What a code is checked against when it is redeemed: the client that
/// presents it, the exact redirect URI and the PKCE verifier (RFC 6749
/// §4.1.3, RFC 7636 §4.6, no downgrade per RFC 9700 §4.8.2). Owned, so the
/// check runs inside the write transaction that consumes the code.
struct CodeCheck {
    client_id: String,
    public: bool,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

impl CodeCheck {
    fn new(app: &App, req: PresentedCode<'_>) -> Self {
        CodeCheck {
            client_id: app.client_id.to_string(),
            public: app.settings.public,
            redirect_uri: req.redirect_uri.map(str::to_owned),
            code_verifier: req.code_verifier.map(str::to_owned),
        }
    }

    fn admits(&self, grant: &AuthorizationCode) -> std::result::Result<(), GrantError> {
        if grant.client_id != self.client_id {
            return Err(GrantError::CodeOfAnotherClient);
        }
        if self.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(GrantError::RedirectUriMismatch);
        }
        match (&grant.code_challenge, self.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => Ok(()),
            (Some(_), _) => Err(GrantError::PkceMismatch),
            // RFC 9700 §4.8.2: no downgrade.
            (None, Some(_)) => Err(GrantError::PkceDowngrade),
            (None, None) if self.public => Err(GrantError::PkceRequired),
            (None, None) => Ok(()),
        }
    }
}

/// A refresh token made before the transaction that may store it (when the
/// code turns out to grant `offline_access`).
struct NewRefresh {
    token: String,
    token_hash: String,
    family_id: String,
}

/// What a redeemed code brings.
struct Redeemed {
    grant: AuthorizationCode,
    session: Session,
    user: User,
    /// The refresh token, when the code grants `offline_access`.
    refresh_token: Option<String>,
}

/// Redeems an authorization code for `app` in one write transaction
/// ([`postern_store::Store::write`]): consumes it, checks what it is bound
/// to ([`CodeCheck`]), reads the session it came from (`rule`) and its
/// person, and stores `refresh`'s token when the code grants
/// `offline_access`. Any refusal rolls the consumption back. A code used
/// twice by its own client revokes what it issued ([`code_replayed`]).
async fn redeem(
    svc: &Services,
    app: &App,
    req: PresentedCode<'_>,
    rule: SessionRule,
    refresh: Option<NewRefresh>,
) -> Result<Redeemed> {
    let code = req
        .code
        .filter(|c| !c.is_empty() && c.len() <= 100)
        .ok_or_else(|| AuthError::missing("code"))?;
    let now = svc.now();
    let hash = svc.secrets.keyed_hash(purpose::AUTHZ_CODE, code.as_bytes());
    let check = CodeCheck::new(app, req);
    let code_hash = hash.clone();
    let redeemed = svc
        .store
        .write(async move |w: &mut Writes<'_>| {
            let grant = w
                .consume_authorization_code(&code_hash, now)
                .await?
                .ok_or(GrantError::CodeUnusable)?;
            check.admits(&grant)?;
            let session = w
                .session(grant.session_id.as_deref().unwrap_or_default())
                .await?
                .filter(|s| rule.admits(s, now))
                .ok_or(GrantError::CodeSessionEnded)?;
            let user = w
                .user(&grant.user_id)
                .await?
                .filter(|u| u.disabled_at.is_none())
                .ok_or(GrantError::UserUnavailable)?;
            let refresh_token = match refresh {
                Some(new) if Scope::parse(Some(&grant.scope)).contains("offline_access") => {
                    w.defer_code_family(&code_hash, &new.family_id);
                    w.defer_refresh_token(&RefreshToken {
                        token_hash: new.token_hash,
                        family_id: new.family_id,
                        session_id: session.id.clone(),
                        client_id: check.client_id.clone(),
                        user_id: user.id.clone(),
                        scope: grant.scope.clone(),
                        created_at: now,
                        used_at: None,
                        revoked_at: None,
                    });
                    Some(new.token)
                }
                _ => None,
            };
            Ok::<_, AuthError>(Redeemed {
                grant,
                session,
                user,
                refresh_token,
            })
        })
        .await;
    if let Err(AuthError::Grant(GrantError::CodeUnusable)) = &redeemed {
        code_replayed(svc, app, &hash).await?;
    }
    redeemed
}

/// RFC 6749 §4.1.2: a code used twice by its client revokes what it
/// issued. The session it came from ends too, which ends its access tokens
/// at userinfo and introspection. Another client's replay revokes nothing:
/// anyone who saw a used code could otherwise sign its owner out.
async fn code_replayed(svc: &Services, app: &App, hash: &str) -> Result<()> {
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    if let Some((session_id, family)) = tx.code_issued(hash, &app.client_id).await? {
        if let Some(f) = family {
            tx.revoke_refresh_family(&f, now).await?;
        }
        if let Some(s) = session_id {
            tx.revoke_session(&s, now).await?;
        }
        tx.commit().await?;
        tracing::warn!(client_id = %app.client_id, "authorization code replayed; its tokens were revoked");
    }
    Ok(())
}

/// Redeems a code issued to Postern's own account page (`app`, the built-in
/// `postern-account`) without an HTTP round trip to itself: the same checks
/// as the token endpoint, then the live browser session the code came from.
pub async fn redeem_own_code(
    svc: &Services,
    app: &App,
    req: PresentedCode<'_>,
) -> Result<LiveSession> {
    let rule = SessionRule::LiveBrowser {
        idle_ttl: svc.settings.session_idle_ttl,
    };
    let Redeemed { session, user, .. } = redeem(svc, app, req, rule, None).await?;
    Ok(LiveSession { session, user })
}

pub(crate) async fn exchange_code(
    svc: &Services,
    app: &App,
    req: &TokenRequest,
) -> Result<TokenResponse> {
    let presented = PresentedCode {
        code: req.code.as_deref(),
        redirect_uri: req.redirect_uri.as_deref(),
        code_verifier: req.code_verifier.as_deref(),
    };
    let token = format!("prt_{}", random_token(32));
    let refresh = NewRefresh {
        token_hash: svc.secrets.keyed_hash(purpose::REFRESH, token.as_bytes()),
        token,
        family_id: random_id(),
    };
    let Redeemed {
        grant,
        session,
        user,
        refresh_token,
    } = redeem(svc, app, presented, SessionRule::Live, Some(refresh)).await?;
    let scope = Scope::parse(Some(&grant.scope));
    let claims = IdentityClaims {
        app,
        user: &user,
        session: &session,
        scope: &scope,
        nonce: grant.nonce.as_deref(),
        amr: &grant.amr,
        auth_time: grant.auth_time,
    };
    issue_tokens(svc, claims, refresh_token).await
}

/// Issues an opaque refresh token (`prt_` + 256 random bits, stored as a
/// keyed hash) in `family_id` for a session; used by `/token` and the
/// headless API.
pub(crate) async fn new_refresh_token(
    svc: &Services,
    tx: &mut Tx,
    family_id: &str,
    session: &Session,
    app: &App,
    user_id: &str,
    scope: &Scope,
) -> Result<String> {
    let token = format!("prt_{}", random_token(32));
    tx.insert_refresh_token(&RefreshToken {
        token_hash: svc.secrets.keyed_hash(purpose::REFRESH, token.as_bytes()),
        family_id: family_id.to_owned(),
        session_id: session.id.clone(),
        client_id: app.client_id.clone(),
        user_id: user_id.to_owned(),
        scope: scope.to_string(),
        created_at: svc.now(),
        used_at: None,
        revoked_at: None,
    })
    .await?;
    Ok(token)
}

pub(crate) async fn refresh(
    svc: &Services,
    app: &App,
    req: &TokenRequest,
) -> Result<TokenResponse> {
    let presented = req
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or_else(|| AuthError::missing("refresh_token"))?;
    let now = svc.now();
    let hash = svc
        .secrets
        .keyed_hash(purpose::REFRESH, presented.as_bytes());
    let mut tx = svc.store.begin().await?;
    let Some(old) = tx.use_refresh_token(&hash, now).await? else {
        // A used token presented again: someone holds a copy. Revoke the family.
        if let Some(t) = tx.refresh_token(&hash).await? {
            if t.client_id == app.client_id && t.revoked_at.is_none() {
                tx.revoke_refresh_family(&t.family_id, now).await?;
                tx.commit().await?;
                tracing::warn!(client_id = %app.client_id, "refresh token reused; its family was revoked");
            }
        }
        return Err(AuthError::Grant(GrantError::RefreshUnusable));
    };
    if old.client_id != app.client_id {
        return Err(AuthError::Grant(GrantError::RefreshOfAnotherClient));
    }
    let session = tx
        .session(&old.session_id)
        .await?
        .filter(|s| {
            s.revoked_at.is_none()
                && s.expires_at > now
                && s.last_seen_at + svc.settings.session_idle_ttl > now
        })
        .ok_or_else(|| AuthError::Grant(GrantError::SessionEnded))?;
    if !session_fits_app_at(&session, app, now) {
        return Err(AuthError::Grant(GrantError::SessionTooOld));
    }
    let user = tx
        .user(&old.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| AuthError::Grant(GrantError::UserUnavailable))?;
    let granted = Scope::parse(Some(&old.scope));
    let scope = match req.scope.as_deref() {
        Some(asked) => {
            let asked = Scope::parse(Some(asked));
            if !asked.is_subset_of(&granted) {
                return Err(AuthError::InvalidScope);
            }
            asked
        }
        None => granted.clone(),
    };
    tx.touch_session(&session.id, now).await?;
    let next = new_refresh_token(
        svc,
        &mut tx,
        &old.family_id,
        &session,
        app,
        &user.id,
        &granted,
    )
    .await?;
    tx.commit().await?;
    let claims = IdentityClaims {
        app,
        user: &user,
        session: &session,
        scope: &scope,
        nonce: None,
        amr: &session.amr,
        auth_time: session.auth_time,
    };
    issue_tokens(svc, claims, Some(next)).await
}

pub(crate) fn session_fits_app_at(s: &Session, app: &App, now: i64) -> bool {
    app.settings
        .session_max_age
        .is_none_or(|cap| now - s.created_at <= cap)
}

pub(crate) struct IdentityClaims<'a> {
    app: &'a App,
    user: &'a User,
    session: &'a Session,
    scope: &'a Scope,
    nonce: Option<&'a str>,
    amr: &'a str,
    auth_time: i64,
}

/// Claims of Postern's access tokens (RFC 9068 §2.2). Anyone holding one
/// can read them, so they carry no personal data unless the app opted in
/// with `token_email` (SPEC §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Pairwise subject.
    pub sub: String,
    /// The client (this token is for Postern's userinfo and the app).
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Session id.
    pub sid: String,
    /// How the person signed in: `email` (link) or `otp` (code).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The address, only for apps with `token_email` and the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

pub(crate) async fn issue_tokens(
    svc: &Services,
    c: IdentityClaims<'_>,
    refresh_token: Option<String>,
) -> Result<TokenResponse> {
    let now = svc.now();
    let iss = svc.settings.issuer();
    let sub = subject(svc, c.app, &c.user.id);
    let mut id = json!({
        "iss": iss,
        "sub": sub,
        "aud": c.app.client_id,
        "exp": now + TOKEN_TTL,
        "iat": now,
        "auth_time": c.auth_time,
        // A passkey's `amr` is stored as "hwk user": one entry each.
        "amr": c.amr.split_whitespace().collect::<Vec<_>>(),
        "sid": c.session.id,
        "azp": c.app.client_id,
    });
    if let Some(n) = c.nonce {
        id["nonce"] = json!(n);
    }
    if c.scope.contains("email") {
        id["email"] = json!(c.user.email);
        id["email_verified"] = json!(true);
    }
    let access = AccessClaims {
        iss: iss.clone(),
        sub,
        aud: c.app.client_id.clone(),
        exp: now + TOKEN_TTL,
        iat: now,
        jti: random_id(),
        client_id: c.app.client_id.clone(),
        scope: c.scope.to_string(),
        sid: c.session.id.clone(),
        amr: c.amr.split_whitespace().map(str::to_owned).collect(),
        // SPEC §2: private unless the app asked for it, and never beyond
        // what the person granted.
        email: (c.app.settings.token_email && c.scope.contains("email"))
            .then(|| c.user.email.clone()),
    };
    let id_alg = Alg::from(c.app.settings.id_token_alg);
    let id_token = svc
        .keys
        .sign(id_alg, "JWT", id)
        .await
        .map_err(AuthError::internal)?;
    let access_token = svc
        .keys
        .sign(Alg::EdDSA, ACCESS_TOKEN_TYP, access)
        .await
        .map_err(AuthError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: TOKEN_TTL,
        id_token,
        refresh_token,
        scope: c.scope.to_string(),
    })
}
