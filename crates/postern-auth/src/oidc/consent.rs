//! Consent for a person already signed in: the request waits sealed in
//! the form, not in the database (docs/decisions.md).

use super::*;

// ---- consent for a signed-in person ----------------------------------------

/// Context of the sealed consent request (AES-GCM associated data).
pub(crate) const PENDING_CONSENT: &str = "pending-consent";

/// An authorization request waiting on the consent screen of a person who
/// is already signed in. Nothing is stored for it: the consent form carries
/// it sealed (AES-256-GCM under the master key, so it can be neither read
/// nor changed), bound to the browser session it was shown to and valid for
/// [`crate::signin::CONSENT_WINDOW`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingConsent {
    /// The app.
    pub client_id: String,
    /// Its exact, registered redirect URI.
    pub redirect_uri: String,
    /// Requested scope.
    pub scope: String,
    /// The app's `state`.
    pub state: Option<String>,
    /// The app's `nonce`.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// The only session that may answer.
    pub session_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl PendingConsent {
    /// The hidden form field.
    pub fn seal(&self, svc: &Services) -> String {
        let json = serde_json::to_vec(self).expect("a pending consent serializes");
        svc.secrets.encrypt(PENDING_CONSENT, &json)
    }

    /// The request a form carried, if Postern sealed it and it has not expired.
    fn open(svc: &Services, sealed: &str) -> Option<Self> {
        if sealed.len() > 16_384 {
            return None;
        }
        let json = svc.secrets.decrypt(PENDING_CONSENT, sealed).ok()?;
        serde_json::from_slice::<Self>(&json)
            .ok()
            .filter(|p| p.expires_at > svc.now())
    }
}

/// Answers the consent screen shown at `/authorize` to someone already
/// signed in. Only a browser holding the session the screen was shown to
/// may answer, within the window. Allow adds the scopes to what the person
/// granted the app before and mints a code (subject to
/// [`LIVE_CODES_PER_SESSION`]); Deny returns `access_denied`. Returns the
/// redirect to the app.
pub async fn decide_pending_consent(
    svc: &Services,
    sealed: &str,
    session_secrets: &[String],
    decision: crate::signin::Decision,
) -> Result<AuthorizationResponse> {
    use crate::error::TokenProblem;
    let unknown = || AuthError::token(TokenProblem::Unknown);
    let pending = PendingConsent::open(svc, sealed).ok_or_else(unknown)?;
    let mut answering = None;
    for secret in session_secrets {
        if let Some(live) = resolve_session(svc, secret).await? {
            if live.session.id == pending.session_id {
                answering = Some(live);
                break;
            }
        }
    }
    let live = answering.ok_or_else(unknown)?;
    let app = svc
        .store
        .app(&pending.client_id)
        .await?
        .filter(|a| a.has_redirect_uri(&pending.redirect_uri))
        .ok_or_else(unknown)?;
    if decision == crate::signin::Decision::Deny {
        return Ok(AuthorizationResponse::error(
            &pending.redirect_uri,
            pending.state.as_deref(),
            svc.settings.issuer(),
            "access_denied",
            "The user denied access.",
        ));
    }
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let code = mint_sso_code(
        svc,
        &mut tx,
        CodeGrant {
            client_id: &app.client_id,
            user_id: &live.user.id,
            session_id: &live.session.id,
            redirect_uri: &pending.redirect_uri,
            code_challenge: pending.code_challenge.as_deref(),
            nonce: pending.nonce.as_deref(),
            scope: &pending.scope,
            amr: &live.session.amr,
            auth_time: live.session.auth_time,
        },
    )
    .await?;
    let Some(code) = code else {
        return Ok(too_many_codes(
            svc,
            &pending.redirect_uri,
            pending.state.as_deref(),
        ));
    };
    // Grants accumulate: allowing `offline_access` today keeps the `email`
    // allowed last week.
    let before = tx
        .grant(&live.user.id, &app.client_id)
        .await?
        .unwrap_or_default();
    let scope = Scope::parse(Some(&format!("{before} {}", pending.scope)));
    tx.upsert_grant(&live.user.id, &app.client_id, &scope.to_string(), now)
        .await?;
    tx.commit().await?;
    Ok(AuthorizationResponse::code(
        &pending.redirect_uri,
        pending.state.as_deref(),
        svc.settings.issuer(),
        code,
    ))
}
