//! Signing in with a passkey: discoverable credentials, finished through
//! the link's [`finish`](crate::signin::finish); every failure recorded.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use postern_core::crypto::{random_id, random_token};
use postern_core::{App, PasskeyPolicy};
use postern_store::{LoginKind, LoginRequest, PasskeyQueries, Queries, SignInEvent};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PublicKeyCredential};

use super::*;
use crate::signin::{
    peek_limit, purpose, AuthParams, Method, RawAuthParams, SignedIn, CODE_TRIES_PER_EMAIL_DAY,
    CODE_TRIES_PER_EMAIL_HOUR, CODE_TRIES_PER_IP_HOUR, DAY,
};

/// The authorization request a passkey sign-in answers, kept with its
/// ceremony.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredFlow {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    ui_locales: Option<String>,
    locale: String,
}

/// Starts a passkey sign-in for the authorization request `params` in the
/// browser `who` (discoverable credentials: no address is asked first; the
/// options say `mediation: conditional` for the browser's autofill).
pub async fn start_authentication(
    svc: &Services,
    params: &AuthParams,
    who: &Requester,
) -> Result<Started> {
    let app = &params.app;
    if app.settings.passkeys == PasskeyPolicy::Off {
        return Err(AuthError::in_app(app, problem(PasskeyProblem::Off)));
    }
    let (rcr, state) = relying_party(svc)?
        .start_discoverable_authentication()
        .map_err(AuthError::internal)?;
    let locale = postern_core::locale::negotiate(
        params.ui_locales.as_deref(),
        who.accept_language.as_deref(),
        &app.settings.locale,
    );
    let flow = StoredFlow {
        client_id: app.client_id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        scope: params.scope.to_string(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        ui_locales: params.ui_locales.clone(),
        locale: locale.to_owned(),
    };
    let flow = serde_json::to_string(&flow).map_err(AuthError::internal)?;
    let id = store_challenge(svc, AUTHENTICATE, None, Some(flow), &state, who)
        .await
        .map_err(|e| AuthError::in_app(app, e))?;
    Ok(Started {
        challenge_id: id,
        options: serde_json::to_value(&rcr).map_err(AuthError::internal)?,
    })
}

/// A failed passkey sign-in, for history: what is known of it.
struct Failure {
    client_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    outcome: &'static str,
    problem: PasskeyProblem,
    app: Option<App>,
}

impl Failure {
    fn new(problem: PasskeyProblem, outcome: &'static str) -> Self {
        Failure {
            client_id: None,
            user_id: None,
            email: None,
            outcome,
            problem,
            app: None,
        }
    }
}

/// Records a failed passkey sign-in (history row, the `passkey` sign-in
/// metric, the try counted against the code-entry budgets of the IP and,
/// when known, the address) and returns its error. Runs after the
/// ceremony's transaction ended.
async fn fail(svc: &Services, f: Failure, who: &Requester) -> AuthError {
    let now = svc.now();
    svc.metrics.passkey_sign_in(match f.problem {
        // A spent ceremony says how, as a dead link does.
        PasskeyProblem::Challenge => match f.outcome {
            "used" => "used",
            "expired" => "expired",
            _ => "invalid",
        },
        PasskeyProblem::UnknownCredential => "unknown_passkey",
        PasskeyProblem::UserDisabled => "disabled",
        PasskeyProblem::Off => "passkeys_off",
        _ => "rejected",
    });
    let record = async {
        let mut tx = svc.store.begin().await?;
        if let Some(client_id) = &f.client_id {
            tx.insert_sign_in_event(&SignInEvent {
                id: random_id(),
                user_id: f.user_id.clone(),
                client_id: client_id.clone(),
                at: now,
                ip: Some(who.ip.to_string()),
                user_agent: who.user_agent.clone(),
                method: "passkey".to_owned(),
                outcome: f.outcome.to_owned(),
            })
            .await?;
        }
        let ip = postern_core::net::rate_limit_subject(who.ip);
        // A spent budget is what the next try hears about; this one is
        // refused for its own reason.
        let _ = hit_limit(
            svc,
            &mut tx,
            "code-ip-hour",
            &ip,
            CODE_TRIES_PER_IP_HOUR,
            HOUR,
        )
        .await;
        if let Some(email) = &f.email {
            for (name, limit, window) in [
                ("code-email-hour", CODE_TRIES_PER_EMAIL_HOUR, HOUR),
                ("code-email-day", CODE_TRIES_PER_EMAIL_DAY, DAY),
            ] {
                let _ = hit_limit(svc, &mut tx, name, email, limit, window).await;
            }
        }
        tx.commit().await?;
        Ok::<_, AuthError>(())
    };
    if let Err(e) = record.await {
        return e;
    }
    let error = problem(f.problem);
    match &f.app {
        Some(app) => AuthError::in_app(app, error),
        None => error,
    }
}

/// Finishes a passkey sign-in: the browser's answer to ceremony
/// `challenge_id`. A good answer signs the passkey's owner in exactly as
/// a link would (session, history `passkey`, consent or a code); anything
/// else is refused with a history row and counts against the IP's (and
/// the address's) code-entry budget. Every ending is counted in the
/// `sign_ins` metric with method `passkey`.
pub async fn finish_authentication(
    svc: &Services,
    challenge_id: &str,
    credential: &str,
    who: &Requester,
) -> Result<SignedIn> {
    let result = finish_uncounted(svc, challenge_id, credential, who).await;
    match &result {
        Ok(_) => svc.metrics.passkey_sign_in("success"),
        // [`fail`] counted a refused answer with what it knew of it.
        Err(e) if matches!(e.inner(), AuthError::Passkey(_)) => {}
        // Over budget, an unavailable database, a broken request.
        Err(e) => svc.metrics.passkey_sign_in(crate::metrics::failure(e)),
    }
    result
}

async fn finish_uncounted(
    svc: &Services,
    challenge_id: &str,
    credential: &str,
    who: &Requester,
) -> Result<SignedIn> {
    let now = svc.now();
    let ip = postern_core::net::rate_limit_subject(who.ip);
    {
        let mut conn = svc.store.conn().await?;
        peek_limit(
            svc,
            &mut conn,
            "code-ip-hour",
            &ip,
            CODE_TRIES_PER_IP_HOUR,
            HOUR,
        )
        .await?;
    }
    let answer: Option<PublicKeyCredential> = serde_json::from_str(credential).ok();
    let mut tx = svc.store.begin().await?;
    let taken = take_challenge(svc, &mut tx, challenge_id, AUTHENTICATE, who).await?;
    let challenge = match taken {
        Ok(c) => c,
        Err(found) => {
            drop(tx);
            let mut f = Failure::new(PasskeyProblem::Challenge, "refused");
            if let Some((c, outcome)) = found {
                f.outcome = outcome;
                f.client_id = c
                    .flow
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<StoredFlow>(s).ok())
                    .map(|s| s.client_id);
            }
            return Err(fail(svc, f, who).await);
        }
    };
    let flow: Option<StoredFlow> = challenge
        .flow
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let Some(flow) = flow else {
        return Err(AuthError::internal("a passkey challenge without its flow"));
    };
    let state: DiscoverableAuthentication = open(svc, &challenge)?;
    // The ceremony is spent whatever happens next.
    tx.commit().await?;

    let mut failure = Failure::new(PasskeyProblem::Rejected, "refused");
    failure.client_id = Some(flow.client_id.clone());
    let raw = RawAuthParams {
        client_id: Some(flow.client_id.clone()),
        redirect_uri: Some(flow.redirect_uri.clone()),
        scope: Some(flow.scope.clone()),
        state: flow.state.clone(),
        nonce: flow.nonce.clone(),
        code_challenge: flow.code_challenge.clone(),
        code_challenge_method: flow.code_challenge.as_ref().map(|_| "S256".to_owned()),
        ui_locales: flow.ui_locales.clone(),
    };
    let params = signin::validate_auth_params(svc, &raw).await?;
    let app = params.app.clone();
    failure.app = Some(app.clone());
    if app.settings.passkeys == PasskeyPolicy::Off {
        failure.problem = PasskeyProblem::Off;
        return Err(fail(svc, failure, who).await);
    }
    // SPEC §2 `bind_ip_range`: the answer comes from the range that asked.
    let started_here = challenge
        .ip
        .as_deref()
        .and_then(|s| s.parse().ok())
        .is_some_and(|asked| postern_core::net::same_binding_range(asked, who.ip));
    if app.settings.bind_ip_range && !started_here {
        failure.problem = PasskeyProblem::Challenge;
        return Err(fail(svc, failure, who).await);
    }
    let Some(answer) = answer else {
        return Err(fail(svc, failure, who).await);
    };
    let rp = relying_party(svc)?;
    let Ok((handle, raw_id)) = rp.identify_discoverable_authentication(&answer) else {
        return Err(fail(svc, failure, who).await);
    };
    let credential_id = URL_SAFE_NO_PAD.encode(raw_id);
    let mut conn = svc.store.conn().await?;
    let Some(stored) = conn.passkey_by_credential(&credential_id).await? else {
        drop(conn);
        failure.problem = PasskeyProblem::UnknownCredential;
        return Err(fail(svc, failure, who).await);
    };
    let user = conn.user(&stored.user_id).await?;
    drop(conn);
    failure.user_id = Some(stored.user_id.clone());
    failure.email = user.as_ref().map(|u| u.email.clone());
    if stored.user_handle != handle.to_string() {
        return Err(fail(svc, failure, who).await);
    }
    let Ok(mut passkey) = serde_json::from_str::<Passkey>(&stored.passkey) else {
        return Err(AuthError::internal("a stored passkey does not parse"));
    };
    let result = match rp.finish_discoverable_authentication_v2(&answer, state, &passkey) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "passkey sign-in refused");
            return Err(fail(svc, failure, who).await);
        }
    };
    // Only after the signature verified: a credential id and user handle
    // alone (both readable off a device) must not tell that the account
    // is disabled. Its use is not recorded either.
    let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
        failure.problem = PasskeyProblem::UserDisabled;
        return Err(fail(svc, failure, who).await);
    };
    passkey.update_credential(&result);
    let (sign_count, _, backup_state, _) = flags_of(&passkey)?;
    let method = Method::Passkey {
        hardware: !stored.backup_eligible && !result.backup_eligible(),
        verified: result.user_verified(),
    };

    let mut tx = svc.store.begin().await?;
    tx.record_passkey_use(
        &stored.id,
        &serde_json::to_string(&passkey).map_err(AuthError::internal)?,
        sign_count,
        backup_state,
        now,
    )
    .await?;
    let request = LoginRequest {
        id: random_id(),
        client_id: app.client_id.clone(),
        email: user.email.clone(),
        kind: LoginKind::Session,
        headless: false,
        token_hash: svc
            .secrets
            .keyed_hash(purpose::LINK, random_token(32).as_bytes()),
        code_hash: svc
            .secrets
            .keyed_hash(purpose::CODE, random_token(32).as_bytes()),
        code_attempts: 0,
        redirect_uri: params.redirect_uri.clone(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        scope: params.scope.to_string(),
        locale: flow.locale.clone(),
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        binding_hash: who.binding.as_deref().map(|b| signin::binding_hash(svc, b)),
        remote_number: None,
        approved_at: None,
        completed_at: None,
        rate_slot: None,
        admin_issued: false,
        created_at: now,
        expires_at: now + CHALLENGE_TTL,
        consumed_at: Some(now),
    };
    // Every sign-in burns the person's other live requests for this app;
    // link sign-ins do it in the statement that consumes their request
    // (`consume_burning_siblings`), a passkey has no such request.
    tx.burn_sibling_requests(&app.client_id, &request.email, now)
        .await?;
    tx.insert_login_request(&request).await?;
    signin::finish(svc, tx, &app, request, method, who)
        .await
        .map_err(|e| AuthError::in_app(&app, e))
}
