//! Opening a link, typing a code and remote approval (SPEC §2, §3.1):
//! every way a login request is redeemed, each consuming it exactly once.

use super::*;
use crate::metrics::CodeOutcome;
/// A link's request and app, looked up without consuming anything.
#[derive(Debug, Clone)]
pub struct OpenedLink {
    /// The request.
    pub request: LoginRequest,
    /// Its app.
    pub app: App,
}

/// Whether `token` has the shape of a link token (`pml_` and at least 43
/// base64url characters, 100 bytes at most): anything else is unknown
/// without a database lookup.
pub fn well_formed_token(token: &str) -> bool {
    token.len() <= 100
        && token.strip_prefix("pml_").is_some_and(|t| {
            t.len() >= 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Finds the live link request for `token`, or says why it cannot be used.
/// Consumes nothing: safe for mail scanners and link previews.
pub async fn open_link(svc: &Services, token: &str, ip: IpAddr) -> Result<OpenedLink> {
    if !well_formed_token(token) {
        return Err(AuthError::token(TokenProblem::Unknown));
    }
    let hash = svc.secrets.keyed_hash(purpose::LINK, token.as_bytes());
    let mut conn = svc.store.conn().await?;
    let request = conn
        .login_request_by_token(&hash)
        .await?
        .filter(|r| r.kind == LoginKind::Link && !r.headless)
        .ok_or(AuthError::token(TokenProblem::Unknown))?;
    let app = conn
        .cached_app(&request.client_id)
        .await?
        .ok_or(AuthError::token(TokenProblem::Unknown))?;
    let retry = flow_of(&request);
    let problem = if request.consumed_at.is_some() {
        Some(TokenProblem::of_dead_link(&request))
    } else if request.expires_at <= svc.now() {
        Some(TokenProblem::Expired)
    } else if !ip_allowed(&app, &request, ip) {
        Some(TokenProblem::Unknown)
    } else {
        None
    };
    let outcome = match problem {
        Some(TokenProblem::Expired) => Some("expired"),
        Some(TokenProblem::Used) => Some("used"),
        _ => None,
    };
    if let Some(outcome) = outcome {
        record_outcome(
            &mut conn,
            &request,
            Some(ip.to_string()),
            None,
            "link",
            outcome,
            svc.now(),
        )
        .await?;
    }
    match problem {
        Some(p) => Err(AuthError::in_app(&app, AuthError::token_in(p, retry))),
        None => Ok(OpenedLink { request, app }),
    }
}

/// Finds `app`'s live headless link request for `token` without consuming
/// it. A used or expired one is recorded in history (method `link`,
/// outcome `used` / `expired`) as [`open_link`] does for browsers, with
/// the person's IP and browser as the app passed them; another app's
/// token is unknown and recorded nowhere (it is not this app's history).
pub async fn open_headless_link(
    svc: &Services,
    app: &App,
    token: &str,
    who: &Requester,
) -> Result<OpenedLink> {
    let unknown = || AuthError::token(TokenProblem::Unknown);
    if !well_formed_token(token) {
        return Err(unknown());
    }
    let hash = svc.secrets.keyed_hash(purpose::LINK, token.as_bytes());
    let mut conn = svc.store.conn().await?;
    let request = conn
        .login_request_by_token(&hash)
        .await?
        .filter(|r| r.kind == LoginKind::Link && r.headless && r.client_id == app.client_id)
        .ok_or_else(unknown)?;
    let now = svc.now();
    // The headless API answers `used` for every consumed request.
    let problem = if request.consumed_at.is_some() {
        Some((TokenProblem::Used, "used"))
    } else if request.expires_at <= now {
        Some((TokenProblem::Expired, "expired"))
    } else {
        None
    };
    if let Some((problem, outcome)) = problem {
        let ip = Some(who.ip.to_string());
        let ua = who.user_agent.clone();
        record_outcome(&mut conn, &request, ip, ua, "link", outcome, now).await?;
        return Err(AuthError::token(problem));
    }
    let app = conn
        .cached_app(&request.client_id)
        .await?
        .ok_or_else(unknown)?;
    Ok(OpenedLink { request, app })
}

/// A link whose request another click consumed between [`open_link`] (or
/// [`open_headless_link`]) and its consumption: the lost race is recorded
/// as `used` in the transaction that found it so, as the open would have.
pub(crate) async fn lost_race(
    svc: &Services,
    mut tx: Tx,
    request: &LoginRequest,
    who: &Requester,
) -> AuthError {
    let (ip, ua) = (Some(who.ip.to_string()), who.user_agent.clone());
    let recorded = async {
        record_outcome(&mut tx, request, ip, ua, "link", "used", svc.now()).await?;
        tx.commit().await?;
        Ok::<(), AuthError>(())
    };
    match recorded.await {
        Ok(()) => AuthError::token(TokenProblem::Used),
        Err(e) => e,
    }
}

/// Consumes the link (atomically: of concurrent clicks exactly one gets
/// here) and signs the person in.
pub async fn consume_link(
    svc: &Services,
    opened: &OpenedLink,
    who: &Requester,
) -> Result<SignedIn> {
    finish_link(svc, opened, who).await
}

/// SPEC §2 code entry: only the asking browser may try, within the
/// per-request, per-address and per-IP budgets. A right code signs in.
pub async fn redeem_code(
    svc: &Services,
    login_id: &str,
    code: &str,
    who: &Requester,
) -> Result<SignedIn> {
    let signed_in = async {
        let (tx, app, request) = take_code(svc, login_id, code, who, None).await?;
        finish(svc, tx, &app, request, Method::Code, who).await
    }
    .await;
    svc.metrics.sign_in(Method::Code, &signed_in, |_| true);
    signed_in
}

/// Checks a code for a login request and consumes the request when it is
/// right, returning the open transaction. Browser flows: only the asking
/// browser may try. Headless flows (`who.headless`): only the app named in
/// `only_client` may try, for its own requests. Budgets as SPEC §2.
pub async fn take_code(
    svc: &Services,
    login_id: &str,
    code: &str,
    who: &Requester,
    only_client: Option<&str>,
) -> Result<(Tx, App, LoginRequest)> {
    let mut outcome = CodeOutcome::Refused;
    let taken = take_code_counted(svc, login_id, code, who, only_client, &mut outcome).await;
    svc.metrics.code_attempt(outcome);
    taken
}

/// [`take_code`], saying in `outcome` what came of the code when it was
/// read ([`CodeOutcome::Refused`] when it was not).
async fn take_code_counted(
    svc: &Services,
    login_id: &str,
    code: &str,
    who: &Requester,
    only_client: Option<&str>,
    outcome: &mut CodeOutcome,
) -> Result<(Tx, App, LoginRequest)> {
    let unknown = || AuthError::token(TokenProblem::Unknown);
    if LoginId::parse(login_id).is_err() {
        return Err(unknown());
    }
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let request = tx.login_request(login_id).await?.ok_or_else(unknown)?;
    let may_try = if who.headless {
        is_headless(&request) && only_client == Some(request.client_id.as_str())
    } else {
        !is_headless(&request) && is_asking_browser(svc, &request, who.binding.as_deref())
    };
    // A "no account" request goes on exactly like a link request: its code
    // hash matches no code, so every try is wrong, spends the same budgets
    // and gets the same answers; code entry never tells whether an address
    // has an account.
    let kind_ok = matches!(request.kind, LoginKind::Link | LoginKind::NoAccount);
    if !kind_ok || !may_try {
        return Err(unknown());
    }
    let retry = flow_of(&request);
    let dead = if request.consumed_at.is_some() {
        Some((TokenProblem::Used, "used"))
    } else if request.expires_at <= now {
        Some((TokenProblem::Expired, "expired"))
    } else {
        None
    };
    if let Some((problem, outcome)) = dead {
        let (ip, ua) = (Some(who.ip.to_string()), who.user_agent.clone());
        record_outcome(&mut tx, &request, ip, ua, "code", outcome, now).await?;
        tx.commit().await?;
        return Err(AuthError::token_in(problem, retry));
    }
    let app = tx
        .cached_app(&request.client_id)
        .await?
        .ok_or_else(unknown)?;
    if !ip_allowed(&app, &request, who.ip) {
        return Err(unknown());
    }
    // Every try spends the address's and the IP's budgets; a right code gives
    // them back. A spent budget stops codes, not links.
    let exhausted = |_| AuthError::token_in(TokenProblem::Used, retry.clone());
    let slots = spend_code_budgets(svc, &mut tx, &request.email, who)
        .await
        .map_err(|e| {
            *outcome = CodeOutcome::OverBudget;
            exhausted(e)
        })?;
    let code = code.trim();
    let right = code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && constant_time_eq(
            code_hash(svc, login_id, code).as_bytes(),
            request.code_hash.as_bytes(),
        )
        // Never matched anyway (see `request_link`); said again so no code
        // can ever open a "no account" request.
        && request.kind == LoginKind::Link;
    if !right {
        let attempts = tx
            .record_wrong_code(login_id, CODE_TRIES_PER_REQUEST, now)
            .await?;
        let (ip, ua) = (Some(who.ip.to_string()), who.user_agent.clone());
        record_outcome(&mut tx, &request, ip, ua, "code", "wrong_code", now).await?;
        tx.commit().await?;
        return Err(match attempts {
            Some(n) if n < CODE_TRIES_PER_REQUEST => {
                *outcome = CodeOutcome::Wrong;
                AuthError::WrongCode {
                    tries_left: CODE_TRIES_PER_REQUEST - n,
                }
            }
            _ => {
                *outcome = CodeOutcome::Killed;
                AuthError::token_in(TokenProblem::Used, retry)
            }
        });
    }
    *outcome = CodeOutcome::Right;
    release_limits(&mut tx, &slots).await?;
    let request = tx
        .consume_burning_siblings(Consume::Id(login_id), now)
        .await?
        .ok_or_else(|| AuthError::token_in(TokenProblem::Used, retry))?;
    Ok((tx, app, request))
}

/// Where a `device_policy = remote` request stands, for the asking
/// browser's page (`GET /login/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteStatus {
    /// Waiting for the other device.
    Pending,
    /// The right number was typed: the asking browser may continue.
    Approved,
    /// Used, expired or killed: nothing more will happen.
    Dead,
}

impl RemoteStatus {
    /// `pending`, `approved` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteStatus::Pending => "pending",
            RemoteStatus::Approved => "approved",
            RemoteStatus::Dead => "dead",
        }
    }

    /// The status of `req` at `now`.
    pub fn of(req: &LoginRequest, now: i64) -> Self {
        if req.consumed_at.is_some() || req.expires_at <= now {
            RemoteStatus::Dead
        } else if req.approved_at.is_some() {
            RemoteStatus::Approved
        } else {
            RemoteStatus::Pending
        }
    }
}

/// SPEC §3.1 `device_policy = remote`: another device, holding the link,
/// approves the request by typing the number the asking page shows. Nothing
/// is consumed and this browser is not signed in; the asking browser then
/// continues by itself ([`continue_approved`]). Every try spends the code
/// budgets of SPEC §2 (a right one gives them back); a wrong number kills
/// the request, link included.
pub async fn approve_remote(
    svc: &Services,
    opened: &OpenedLink,
    number: &str,
    who: &Requester,
) -> Result<()> {
    let now = svc.now();
    let request = &opened.request;
    let retry = flow_of(request);
    let Some(expected) = request.remote_number.as_deref() else {
        return Err(AuthError::token_in(TokenProblem::Unknown, retry));
    };
    let mut tx = svc.store.begin().await?;
    let exhausted = |_| AuthError::token_in(TokenProblem::Used, retry.clone());
    let slots = spend_code_budgets(svc, &mut tx, &request.email, who)
        .await
        .map_err(exhausted)?;
    let number = number.trim();
    let right = number.len() == expected.len()
        && number.bytes().all(|b| b.is_ascii_digit())
        && constant_time_eq(number.as_bytes(), expected.as_bytes());
    if !right {
        // A wrong number is one try too many: the request dies at once.
        tx.record_wrong_code(&request.id, 1, now).await?;
        tx.commit().await?;
        return Err(AuthError::token_in(TokenProblem::WrongNumber, retry));
    }
    release_limits(&mut tx, &slots).await?;
    if !tx.approve_remote(&request.id, now).await? {
        // Approved already (a second right answer changes nothing), or no
        // longer live.
        let current = tx.login_request(&request.id).await?;
        if !current.is_some_and(|r| RemoteStatus::of(&r, now) == RemoteStatus::Approved) {
            return Err(AuthError::token_in(TokenProblem::Used, retry));
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The asking browser of an approved `remote` request continues exactly as
/// if it had opened the link: the request is consumed (once) and the person
/// signed in. The caller has checked that `who` is the asking browser.
pub async fn continue_approved(
    svc: &Services,
    app: &App,
    request: &LoginRequest,
    who: &Requester,
) -> Result<SignedIn> {
    let signed_in = async {
        let now = svc.now();
        let mut tx = svc.store.begin().await?;
        let request = tx
            .consume_burning_siblings(Consume::Approved(&request.id), now)
            .await?
            .ok_or_else(|| AuthError::token_in(TokenProblem::Used, flow_of(request)))?;
        finish(svc, tx, app, request, Method::Link, who).await
    }
    .await;
    svc.metrics.sign_in(Method::Link, &signed_in, |_| true);
    signed_in
}
