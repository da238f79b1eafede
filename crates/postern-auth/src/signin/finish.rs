//! The end of a sign-in: the user, the session, then consent or an
//! authorization code (OIDC Core §3.1.2.5).

use super::*;
/// Where a finished sign-in goes next.
#[derive(Debug)]
pub enum Next {
    /// Back to the app with a code.
    Redirect(AuthorizationResponse),
    /// An admin-issued link (SPEC §3.5): signed in to Postern, on to the
    /// app's `initiate_login_uri` or `/account`, with no code.
    Continue(String),
    /// Show the consent screen for this (consumed) login request.
    Consent {
        /// The request being finished.
        login_id: String,
        /// Its app.
        app: Box<App>,
        /// Scopes asked.
        scope: Scope,
        /// The language the request was made in.
        locale: String,
        /// Binds the consent form to the session this sign-in created
        /// ([`consent_token`]).
        consent_token: String,
        /// The sign-in (who signs in, where they go next), for the page.
        flow: Box<Flow>,
    },
}

/// A finished sign-in: the new browser session's cookie secret and what next.
#[derive(Debug)]
pub struct SignedIn {
    /// Secret for the session cookie.
    pub session_secret: String,
    /// Lifetime of the session cookie, seconds.
    pub session_ttl: i64,
    /// What comes next.
    pub next: Next,
    /// After an email sign-in for an app that takes passkeys: the sign-in,
    /// so a face may offer to make a passkey first and then continue it
    /// (issue 15).
    pub passkey_offer: Option<Box<Flow>>,
}

/// The common part of every successful sign-in, inside the transaction that
/// consumed the request (and burnt its siblings with it,
/// [`Queries::consume_burning_siblings`]): find or create the user, free
/// the rate slot, record history. The last two are deferred to the commit.
pub async fn sign_in_user(
    svc: &Services,
    tx: &mut Tx,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<postern_store::User> {
    let now = svc.now();
    let user = tx
        .upsert_user_sign_in(&random_id(), &request.email, now)
        .await?;
    if user.disabled_at.is_some() {
        return Err(AuthError::token(TokenProblem::Unknown));
    }
    if let Some(slot) = &request.rate_slot {
        tx.defer_rate_release(slot);
    }
    tx.defer_sign_in_event(&success_event(app, request, method, who, now, &user.id));
    Ok(user)
}

/// The history row of a successful sign-in.
pub(crate) fn success_event(
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
    now: i64,
    user_id: &str,
) -> SignInEvent {
    SignInEvent {
        id: random_id(),
        user_id: Some(user_id.to_owned()),
        client_id: app.client_id.clone(),
        at: now,
        ip: Some(who.ip.to_string()),
        user_agent: who.user_agent.clone(),
        method: event_method(request, method).to_owned(),
        outcome: "success".to_owned(),
    }
}

/// How history names a sign-in with `request`: `admin_link` for a link an
/// administrator issued, however it was redeemed.
pub(crate) fn event_method(request: &LoginRequest, method: Method) -> &'static str {
    if request.admin_issued {
        "admin_link"
    } else {
        method.event()
    }
}

/// Whether finishing `request` asks what the person granted `app` before:
/// only an app that needs consent, and not for an admin-issued link (it
/// goes on without a code).
fn reads_grant(app: &App, request: &LoginRequest) -> bool {
    !request.admin_issued && app.needs_consent()
}

/// Whether a stored grant covers `request`'s scopes.
fn grant_covers(request: &LoginRequest, grant: Option<&str>) -> bool {
    grant.is_some_and(|g| Scope::parse(Some(&request.scope)).is_subset_of(&Scope::parse(Some(g))))
}

/// Everything a finished browser sign-in writes and answers, computed
/// before its transaction (secrets, hashes, the code, where to go next);
/// only the person's id comes from the transaction ([`Finishing::write`]).
#[derive(Debug)]
pub(crate) struct Finishing {
    rate_slot: Option<RateSlot>,
    event: SignInEvent,
    session: Session,
    session_secret: String,
    /// The request to mark complete (its code issued, or an admin link).
    complete: Option<(String, i64)>,
    code: Option<postern_store::AuthorizationCode>,
    next: Next,
    passkey_offer: Option<Box<Flow>>,
    session_ttl: i64,
}

impl Finishing {
    /// The sign-in of `request` by `method`; `granted`: the person's grant
    /// to `app` covers the request's scopes ([`reads_grant`]).
    pub(crate) fn new(
        svc: &Services,
        app: &App,
        request: &LoginRequest,
        method: Method,
        who: &Requester,
        granted: bool,
    ) -> Self {
        let now = svc.now();
        let passkey_offer = crate::passkeys::offer_after(svc, app, method, request);
        let session_secret = random_token(32);
        let session_id = random_id();
        let session = Session {
            id: session_id.clone(),
            token_hash: svc
                .secrets
                .keyed_hash(purpose::SESSION, session_secret.as_bytes()),
            user_id: String::new(),
            client_id: None,
            kind: "browser".to_owned(),
            amr: method.amr().to_owned(),
            auth_time: now,
            created_at: now,
            last_seen_at: now,
            expires_at: now + svc.settings.session_max_age,
            ip: Some(who.ip.to_string()),
            user_agent: who.user_agent.clone(),
            revoked_at: None,
            // A "lost passkey" sign-in stands for the passkey it replaces.
            passkey_ok: matches!(method, Method::LinkPasskeyLost | Method::CodePasskeyLost),
        };
        let scope = Scope::parse(Some(&request.scope));
        let (next, complete, code) = if request.admin_issued {
            // Once: the request is complete, as if a code had been issued.
            // The transaction consumed it, so completing it cannot miss and
            // goes with the commit.
            (
                Next::Continue(request.redirect_uri.clone()),
                Some((request.id.clone(), now)),
                None,
            )
        } else if app.needs_consent() && !granted {
            let consent = Next::Consent {
                login_id: request.id.clone(),
                app: Box::new(app.clone()),
                scope,
                locale: request.locale.clone(),
                consent_token: consent_token(svc, &request.id, &session_id),
                flow: Box::new(flow_of(request)),
            };
            (consent, None, None)
        } else {
            // The transaction consumed the request: completing it cannot
            // miss, so it and the code go with the commit too.
            let session = (session_id.as_str(), method.amr(), now);
            let (code, row) = crate::oidc::new_code(svc, code_grant(request, session, ""));
            let next = Next::Redirect(AuthorizationResponse::code(
                &request.redirect_uri,
                request.state.as_deref(),
                svc.settings.issuer(),
                code,
            ));
            (next, Some((request.id.clone(), now)), Some(row))
        };
        Self {
            rate_slot: request.rate_slot.clone(),
            event: success_event(app, request, method, who, now, ""),
            session,
            session_secret,
            complete,
            code,
            next,
            passkey_offer,
            session_ttl: svc.settings.session_idle_ttl,
        }
    }

    /// The sign-in's writes for the person `user_id`, all deferred to the
    /// commit: the rate slot given back, history, the session, the request
    /// completed and the code.
    pub(crate) fn write(&mut self, d: &mut impl Defer, user_id: &str) {
        if let Some(slot) = &self.rate_slot {
            d.defer_rate_release(slot);
        }
        self.event.user_id = Some(user_id.to_owned());
        d.defer_sign_in_event(&self.event);
        self.session.user_id = user_id.to_owned();
        d.defer_session(&self.session);
        if let Some((id, now)) = &self.complete {
            d.defer_complete_login_request(id, *now);
        }
        if let Some(code) = &mut self.code {
            code.user_id = user_id.to_owned();
            d.defer_authorization_code(code);
        }
    }

    /// The answer, once the transaction committed.
    pub(crate) fn signed_in(self) -> SignedIn {
        SignedIn {
            session_secret: self.session_secret,
            session_ttl: self.session_ttl,
            next: self.next,
            passkey_offer: self.passkey_offer,
        }
    }
}

/// The end of a browser sign-in inside `tx`, which consumed `request`: a
/// session cookie, then consent or an authorization code (an admin-issued
/// link: on to its destination).
pub(crate) async fn finish(
    svc: &Services,
    mut tx: Tx,
    app: &App,
    request: LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<SignedIn> {
    let method = match crate::passkeys::gate(&mut tx, app, &request, method, who).await? {
        crate::passkeys::Gate::Pass(m) => m,
        crate::passkeys::Gate::Refuse => {
            // Nothing of this sign-in is kept: the link or code still works
            // once the person says they lost their passkey.
            drop(tx);
            return Err(crate::passkeys::refuse(svc, app, &request, method, who).await);
        }
    };
    let user = tx
        .upsert_user_sign_in(&random_id(), &request.email, svc.now())
        .await?;
    if user.disabled_at.is_some() {
        return Err(AuthError::token(TokenProblem::Unknown));
    }
    let granted = reads_grant(app, &request)
        && grant_covers(
            &request,
            tx.grant(&user.id, &app.client_id).await?.as_deref(),
        );
    let mut finishing = Finishing::new(svc, app, &request, method, who, granted);
    finishing.write(&mut tx, &user.id);
    tx.commit().await?;
    Ok(finishing.signed_in())
}

/// The start of every link sign-in's transaction on the store's writer:
/// the link, by its token's hash, and the person it was sent to, found or
/// made. Made before the transaction, so the closure only moves it in.
pub(crate) struct LinkClaim {
    token_hash: String,
    email: String,
    new_id: String,
    now: i64,
}

impl LinkClaim {
    /// The claim on `request`'s link at `now`.
    pub(crate) fn new(request: &LoginRequest, now: i64) -> Self {
        Self {
            token_hash: request.token_hash.clone(),
            email: request.email.clone(),
            new_id: random_id(),
            now,
        }
    }

    /// Consumes the link and burns its siblings (of concurrent claims
    /// exactly one gets past this), then finds or makes its person, who
    /// must not be disabled.
    pub(crate) async fn claim(
        &self,
        w: &mut Writes<'_>,
    ) -> std::result::Result<postern_store::User, FinishStop> {
        let live = w
            .consume_burning_siblings(Consume::Token(&self.token_hash), self.now)
            .await?;
        if !live {
            return Err(FinishStop::LostRace);
        }
        let user = w
            .upsert_user_sign_in(&self.new_id, &self.email, self.now)
            .await?;
        if user.disabled_at.is_some() {
            return Err(FinishStop::Disabled);
        }
        Ok(user)
    }
}

/// Why a sign-in's transaction on the store's writer stopped.
#[derive(Debug)]
pub(crate) enum FinishStop {
    /// The link was no longer live: another click or sibling won.
    LostRace,
    /// The person is disabled.
    Disabled,
    Store(postern_store::StoreError),
}

impl From<postern_store::StoreError> for FinishStop {
    fn from(e: postern_store::StoreError) -> Self {
        FinishStop::Store(e)
    }
}

/// Consumes the link `opened` (atomically: of concurrent clicks exactly
/// one gets here) and signs the person in, in one transaction on the
/// store's writer. What the sign-in needs to read first (the passkey rule,
/// a grant) is read before it, from a pooled connection, and only for the
/// apps that need it.
pub(crate) async fn finish_link(
    svc: &Services,
    opened: &OpenedLink,
    who: &Requester,
) -> Result<SignedIn> {
    let (app, request) = (&opened.app, &opened.request);
    let method = match crate::passkeys::gate_before(svc, app, request, Method::Link, who).await? {
        crate::passkeys::Gate::Pass(m) => m,
        crate::passkeys::Gate::Refuse => {
            return Err(crate::passkeys::refuse(svc, app, request, Method::Link, who).await);
        }
    };
    let granted = reads_grant(app, request) && {
        let mut conn = svc.store.conn().await?;
        match conn.user_by_email(&request.email).await? {
            Some(user) => grant_covers(
                request,
                conn.grant(&user.id, &app.client_id).await?.as_deref(),
            ),
            None => false,
        }
    };
    let mut finishing = Finishing::new(svc, app, request, method, who, granted);
    let link = LinkClaim::new(request, svc.now());
    let written = svc
        .store
        .write(async move |w: &mut Writes<'_>| {
            let user = link.claim(w).await?;
            finishing.write(w, &user.id);
            Ok(finishing)
        })
        .await;
    match written {
        Ok(finishing) => Ok(finishing.signed_in()),
        Err(FinishStop::LostRace) => {
            let tx = svc.store.begin().await?;
            Err(match lost_race(svc, tx, request, who).await {
                AuthError::Token { problem, .. } => AuthError::token_in(problem, flow_of(request)),
                other => other,
            })
        }
        Err(FinishStop::Disabled) => Err(AuthError::token(TokenProblem::Unknown)),
        Err(FinishStop::Store(e)) => Err(e.into()),
    }
}

/// Issues a single-use authorization code for `request` (once: the request
/// is marked complete) and returns the redirect to the app (OIDC Core
/// §3.1.2.5, RFC 9207 `iss`).
pub(crate) async fn issue_code(
    svc: &Services,
    tx: &mut Tx,
    request: &LoginRequest,
    session: (&str, &str, i64),
    user_id: &str,
) -> Result<AuthorizationResponse> {
    if !tx.complete_login_request(&request.id, svc.now()).await? {
        return Err(AuthError::token(TokenProblem::Used));
    }
    let code = crate::oidc::mint_code(svc, tx, code_grant(request, session, user_id)).await?;
    Ok(AuthorizationResponse::code(
        &request.redirect_uri,
        request.state.as_deref(),
        svc.settings.issuer(),
        code,
    ))
}

/// The authorization code `request` leads to, for `session` (id, `amr`,
/// `auth_time`) of `user_id`.
fn code_grant<'a>(
    request: &'a LoginRequest,
    session: (&'a str, &'a str, i64),
    user_id: &'a str,
) -> crate::oidc::CodeGrant<'a> {
    let (session_id, amr, auth_time) = session;
    crate::oidc::CodeGrant {
        client_id: &request.client_id,
        user_id,
        session_id,
        redirect_uri: &request.redirect_uri,
        code_challenge: request.code_challenge.as_deref(),
        nonce: request.nonce.as_deref(),
        scope: &request.scope,
        amr,
        auth_time,
    }
}

/// The person's answer on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allow: remember the grant and continue.
    Allow,
    /// Deny: back to the app with `access_denied`.
    Deny,
}

/// The token a consent form carries: it names the login request and the
/// session that may answer it, so only the browser holding that session
/// (not another session of the same person) can allow or deny.
pub fn consent_token(svc: &Services, login_id: &str, session_id: &str) -> String {
    svc.secrets.keyed_hash(
        purpose::CONSENT,
        format!("{login_id}\n{session_id}").as_bytes(),
    )
}

/// Finishes a sign-in waiting on consent. Only the browser holding the
/// session that the sign-in created (named by `consent_token`, among the
/// browser's `session_secrets`) may answer, once, within 10 minutes. Allow
/// adds the scopes to what the person granted the app before.
pub async fn decide_consent(
    svc: &Services,
    login_id: &str,
    session_secrets: &[String],
    consent_token: Option<&str>,
    decision: Decision,
) -> Result<AuthorizationResponse> {
    let unknown = || AuthError::token(TokenProblem::Unknown);
    LoginId::parse(login_id).map_err(|_| unknown())?;
    let now = svc.now();
    let token = consent_token
        .filter(|t| t.len() <= 100)
        .ok_or_else(unknown)?;
    let mut tx = svc.store.begin().await?;
    let mut answering = None;
    for secret in session_secrets {
        let hash = svc.secrets.keyed_hash(purpose::SESSION, secret.as_bytes());
        let Some(s) = tx.session_by_token(&hash).await? else {
            continue;
        };
        let message = format!("{login_id}\n{}", s.id);
        // Every secret is checked, in constant time each, so the answer
        // takes as long whichever session matches.
        let matches = svc
            .secrets
            .verify_keyed_hash(purpose::CONSENT, message.as_bytes(), token);
        if matches && answering.is_none() && s.revoked_at.is_none() && s.expires_at > now {
            answering = Some(s);
        }
    }
    let session = answering.ok_or_else(unknown)?;
    let user = tx.user(&session.user_id).await?.ok_or_else(unknown)?;
    let request = tx
        .login_request(login_id)
        .await?
        .filter(|r| r.email == user.email && r.completed_at.is_none())
        .filter(|r| r.consumed_at.is_some_and(|c| c + CONSENT_WINDOW > now))
        .ok_or_else(unknown)?;
    let redirect = match decision {
        Decision::Allow => {
            // Grants accumulate: allowing `offline_access` today keeps the
            // `email` allowed last week.
            let before = tx
                .grant(&user.id, &request.client_id)
                .await?
                .unwrap_or_default();
            let scope = Scope::parse(Some(&format!("{before} {}", request.scope)));
            tx.upsert_grant(&user.id, &request.client_id, &scope.to_string(), now)
                .await?;
            let s = (session.id.as_str(), session.amr.as_str(), session.auth_time);
            issue_code(svc, &mut tx, &request, s, &user.id).await?
        }
        Decision::Deny => {
            if !tx.complete_login_request(&request.id, now).await? {
                return Err(unknown());
            }
            AuthorizationResponse::error(
                &request.redirect_uri,
                request.state.as_deref(),
                svc.settings.issuer(),
                "access_denied",
                "The user denied access.",
            )
        }
    };
    tx.commit().await?;
    Ok(redirect)
}
