//! Making a passkey: for a signed-in person, in the browser that asks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use postern_core::crypto::random_id;
use postern_store::{PasskeyQueries, Queries, SessionQueries, StoredPasskey};
use serde_json::Value;
use webauthn_rs::prelude::{Passkey, PasskeyRegistration, RegisterPublicKeyCredential};

use super::*;

/// Starts making a passkey for a signed-in person (`user_id`, from their
/// session) in the browser `who`. Their passkeys are excluded, so the same
/// authenticator is not registered twice.
pub async fn start_registration(
    svc: &Services,
    user_id: &str,
    default_name: &str,
    who: &Requester,
) -> Result<Started> {
    let mut conn = svc.store.conn().await?;
    let user = conn
        .user(user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or(problem(PasskeyProblem::UserDisabled))?;
    let existing = conn.passkeys_of_user(user_id).await?;
    drop(conn);
    if existing.len() as i64 >= MAX_PER_USER {
        return Err(problem(PasskeyProblem::TooMany));
    }
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (ccr, state) = relying_party(svc)?
        .start_passkey_registration(
            user_handle(svc, user_id),
            &user.email,
            &user.email,
            Some(exclude),
        )
        .map_err(AuthError::internal)?;
    // A passkey signs in without an address typed first: ask for a
    // discoverable credential (webauthn-rs leaves it to the authenticator;
    // nothing in the answer's check depends on it).
    let mut options = serde_json::to_value(&ccr).map_err(AuthError::internal)?;
    options["publicKey"]["authenticatorSelection"]["residentKey"] = "required".into();
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = true.into();
    let name = clean_name(default_name);
    let flow =
        serde_json::to_string(&serde_json::json!({ "name": name })).map_err(AuthError::internal)?;
    let id = store_challenge(svc, REGISTER, Some(user_id), Some(flow), &state, who).await?;
    Ok(Started {
        challenge_id: id,
        options,
    })
}

/// Finishes making a passkey: the browser's answer to ceremony
/// `challenge_id`, which this person (`user_id`, signed in by
/// `session_id`) started in this browser. That session now stands for the
/// passkey (an app that requires one takes it).
pub async fn finish_registration(
    svc: &Services,
    user_id: &str,
    session_id: &str,
    challenge_id: &str,
    credential: &str,
    who: &Requester,
) -> Result<PasskeyInfo> {
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let challenge = match take_challenge(svc, &mut tx, challenge_id, REGISTER, who).await? {
        Ok(c) if c.user_id.as_deref() == Some(user_id) => c,
        _ => return Err(problem(PasskeyProblem::Challenge)),
    };
    let state: PasskeyRegistration = open(svc, &challenge)?;
    // The ceremony is spent whatever the answer: commit that first.
    tx.commit().await?;
    let answer: RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| problem(PasskeyProblem::Rejected))?;
    let passkey = relying_party(svc)?
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            problem(PasskeyProblem::Rejected)
        })?;
    let (sign_count, backup_eligible, backup_state, transports) = flags_of(&passkey)?;
    // webauthn-rs keeps the browser's transport hints only with a trusted
    // attestation, which a passkey does not ask for: take the hints from
    // the answer (they name the device kind, nothing is decided on them).
    let transports = transports.or_else(|| transports_of(&answer));
    let name = challenge
        .flow
        .as_deref()
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .and_then(|v| v["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| clean_name(""));
    let stored = StoredPasskey {
        id: random_id(),
        user_id: user_id.to_owned(),
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref() as &[u8]),
        user_handle: user_handle(svc, user_id).to_string(),
        passkey: serde_json::to_string(&passkey).map_err(AuthError::internal)?,
        sign_count,
        backup_eligible,
        backup_state,
        transports,
        name,
        created_at: now,
        last_used_at: None,
    };
    let mut tx = svc.store.begin().await?;
    if tx.user(user_id).await?.is_none() {
        return Err(problem(PasskeyProblem::UserDisabled));
    }
    match tx.insert_passkey(&stored).await {
        Ok(()) => {}
        Err(postern_store::StoreError::Conflict) => return Err(problem(PasskeyProblem::Duplicate)),
        Err(e) => return Err(e.into()),
    }
    // The browser holding this session just proved it holds the passkey:
    // it may go on to an app that requires one (the offer continues there).
    tx.mark_session_passkey_ok(session_id, user_id).await?;
    tx.commit().await?;
    Ok(PasskeyInfo::of(&stored))
}

/// The transport hints of a registration answer (`getTransports()`), as
/// `internal,hybrid`; none when the browser gave none.
fn transports_of(answer: &RegisterPublicKeyCredential) -> Option<String> {
    let hints = answer.response.transports.as_ref()?;
    let known = hints
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_owned))
        .filter(|t| ["usb", "nfc", "ble", "internal", "hybrid"].contains(&t.as_str()))
        .collect::<Vec<_>>();
    (!known.is_empty()).then(|| known.join(","))
}
