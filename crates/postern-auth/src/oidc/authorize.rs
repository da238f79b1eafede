//! OIDC Core §3.1.2 — the authorization decision: who is signed in on this
//! browser, whether one of them may continue to the app, and whether the
//! person must be asked (an address, an account, or consent) first.

use postern_core::oauth::Scope;
use postern_core::EmailAddress;
use postern_store::Queries;

use super::*;
use crate::signin::{self, AuthParams, RawAuthParams};

/// An authorization request as it arrives (query or form).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthorizeInput {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Must be `query` when given.
    pub response_mode: Option<String>,
    /// `none`, `login`, `consent`, `select_account`.
    pub prompt: Option<String>,
    /// Seconds since the last authentication.
    pub max_age: Option<String>,
    /// Pre-fills `/login`, or names the account.
    pub login_hint: Option<String>,
    /// Not supported (OIDC Core §6).
    pub request: Option<String>,
    /// Not supported (OIDC Core §6).
    pub request_uri: Option<String>,
    /// An ID token Postern issued, naming the account the app expects.
    pub id_token_hint: Option<String>,
    /// Chosen on the account chooser: a session id of this browser.
    pub account: Option<String>,
    /// CSRF token of the chooser form (checked by the face).
    pub csrf_token: Option<String>,
    /// Client, redirect URI, scope, state, nonce, PKCE, languages.
    #[serde(flatten)]
    pub raw: RawAuthParams,
}

/// `prompt` (OIDC Core §3.1.2.1), parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Ask nothing: fail instead.
    pub none: bool,
    /// Sign in again even with a live session.
    pub login: bool,
    /// Ask for consent even when granted before.
    pub consent: bool,
    /// Show the account chooser.
    pub select_account: bool,
}

impl Prompt {
    /// Parses `prompt`; None for an unknown value or `none` combined with
    /// another (OIDC Core §3.1.2.1).
    pub fn parse(p: Option<&str>) -> Option<Self> {
        let mut out = Prompt::default();
        for v in p.unwrap_or("").split_ascii_whitespace() {
            match v {
                "none" => out.none = true,
                "login" => out.login = true,
                "consent" => out.consent = true,
                "select_account" => out.select_account = true,
                _ => return None,
            }
        }
        if out.none && (out.login || out.consent || out.select_account) {
            return None;
        }
        Some(out)
    }
}

/// A valid authorization request: its app and redirect URI are checked, so
/// every later failure goes back to the app.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Client, redirect URI, scope and the rest, validated.
    pub params: AuthParams,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// `login_hint`, bounded.
    pub login_hint: Option<String>,
    /// A verified `id_token_hint` for this app.
    pub id_token_hint: Option<IdTokenHint>,
}

impl AuthorizeRequest {
    /// The request as `(name, value)` pairs for the account chooser's form,
    /// which posts it back to `/authorize`: the parameters, the response
    /// type, `max_age` and a `prompt=consent` still to honour.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut v = self.params.form_fields();
        v.push(("response_type", "code".to_owned()));
        if let Some(m) = self.max_age {
            v.push(("max_age", m.to_string()));
        }
        if self.prompt.consent {
            v.push(("prompt", "consent".to_owned()));
        }
        v
    }
}

/// Which account the chooser's answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// No answer: decide from the accounts and hints.
    Nobody,
    /// "Continue as" the browser's current account.
    Current,
    /// One of the browser's sessions, by id.
    Session(String),
}

/// Every way forward from `/authorize`.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Signed in (the account at `account` of the browser's list continues,
    /// and becomes its current one), consent on file: the app's answer.
    Redirect {
        /// Index into the browser's accounts.
        account: usize,
        /// The code (or `temporarily_unavailable`), for the app.
        response: AuthorizationResponse,
    },
    /// Signed in, but the person must allow the app first.
    Consent {
        /// Index into the browser's accounts.
        account: usize,
        /// The request the consent form carries, sealed.
        pending: PendingConsent,
    },
    /// Several accounts here, or `prompt=select_account`: these may go on.
    Chooser(Vec<usize>),
    /// Nobody usable here: ask for an address (pre-filled with the hint).
    Login {
        /// `login_hint`, for the form.
        login_hint: Option<String>,
    },
}

/// An error the app gets at its redirect URI (OIDC Core §3.1.2.6).
fn at_client(
    svc: &Services,
    redirect_uri: &str,
    state: Option<&str>,
    error: &'static str,
    description: impl Into<String>,
) -> AuthError {
    AuthError::AtClient(Box::new(AuthorizationResponse::error(
        redirect_uri,
        state,
        svc.settings.issuer(),
        error,
        description,
    )))
}

/// OIDC Core §3.1.2.1–2: checks a request. Client and redirect URI first:
/// until both are valid, errors are for the person (pages), never
/// redirects (RFC 6749 §4.1.2.1); after that every failure goes back to
/// the app as [`AuthError::AtClient`].
pub async fn authorize_request(svc: &Services, p: &AuthorizeInput) -> Result<AuthorizeRequest> {
    let app = signin::app_named(svc, p.raw.client_id.as_deref()).await?;
    let redirect_uri = p.raw.redirect_uri.as_deref().filter(|r| !r.is_empty());
    let redirect_uri =
        redirect_uri.ok_or_else(|| AuthError::in_app(&app, AuthError::missing("redirect_uri")))?;
    if !app.has_redirect_uri(redirect_uri) {
        return Err(AuthError::in_app(&app, AuthError::RedirectUriNotRegistered));
    }
    if !app.settings.enabled {
        // SPEC §3.6: an error page; the app's sessions keep working elsewhere.
        return Err(AuthError::in_app(&app, AuthError::AppDisabled));
    }
    let client_state = p
        .raw
        .state
        .as_deref()
        .filter(|s| s.len() <= 2048 && !s.chars().any(char::is_control));
    let fail =
        |error, description: &str| at_client(svc, redirect_uri, client_state, error, description);
    if p.request.is_some() {
        return Err(fail(
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if p.request_uri.is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported.",
        ));
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "Only response_mode=query is supported.",
        ));
    }
    let prompt = Prompt::parse(p.prompt.as_deref()).ok_or_else(|| {
        fail(
            "invalid_request",
            "prompt has an unknown value or combines none with another.",
        )
    })?;
    let max_age = match p.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative integer.",
                ))
            }
        },
    };
    let params = match signin::validate_auth_params(svc, &p.raw).await {
        Ok(params) => params,
        Err(e) => match e.into_inner() {
            AuthError::InvalidRequest(problem) => {
                return Err(fail("invalid_request", &problem.to_string()))
            }
            other => return Err(other),
        },
    };
    let id_token_hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => match verify_id_token_hint(svc, h).await {
            Ok(hint) if hint.aud == params.app.client_id => Some(hint),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not valid for this client.",
                ))
            }
        },
    };
    Ok(AuthorizeRequest {
        params,
        prompt,
        max_age,
        login_hint: p.login_hint.clone().filter(|h| h.len() <= 254),
        id_token_hint,
    })
}

/// OIDC Core §3.1.2.3–5: the decision for a valid request, given the
/// browser's live accounts (current first), the chooser's answer and the
/// person's IP. Records the session's activity and mints a code when one
/// of the accounts continues; asks (chooser, consent, address) otherwise.
pub async fn authorize(
    svc: &Services,
    req: &AuthorizeRequest,
    accounts: &[BrowserAccount],
    chosen: Chosen,
    ip: IpAddr,
) -> Result<AuthorizeOutcome> {
    let now = svc.now();
    let params = &req.params;
    let app = &params.app;
    let fail = |error, description: &str| {
        at_client(
            svc,
            &params.redirect_uri,
            params.state.as_deref(),
            error,
            description,
        )
    };
    let fresh_enough = |s: &LiveSession| req.max_age.is_none_or(|m| now - s.session.auth_time <= m);
    // Issue 15: an app that requires the passkey takes only the sessions
    // that stand for it; for the others nobody usable is here.
    let mut may_enter = Vec::with_capacity(accounts.len());
    for a in accounts {
        may_enter.push(crate::passkeys::session_may_enter(svc, app, &a.live.session).await?);
    }
    let usable = |i: usize| {
        let a = &accounts[i];
        may_enter[i] && session_fits_app(svc, &a.live.session, app, ip) && fresh_enough(&a.live)
    };
    let chosen = match chosen {
        Chosen::Nobody => None,
        Chosen::Current => (0..accounts.len()).find(|&i| usable(i)),
        Chosen::Session(id) => {
            (0..accounts.len()).find(|&i| accounts[i].live.session.id == id && usable(i))
        }
    };
    // OIDC Core §3.1.2.1 hints narrow the accounts to the one the app means.
    let hinted_email = req
        .login_hint
        .as_deref()
        .and_then(|h| EmailAddress::parse(h).ok());
    let named = |a: &BrowserAccount| match (&req.id_token_hint, &hinted_email) {
        (Some(h), _) => h.sub.as_deref() == Some(subject(svc, app, &a.live.user.id).as_str()),
        (None, Some(e)) => a.live.user.email == e.as_str(),
        (None, None) => true,
    };
    let candidates: Vec<usize> = (0..accounts.len())
        .filter(|&i| usable(i) && named(&accounts[i]))
        .collect();
    let prompt = req.prompt;
    let picked = match chosen {
        Some(i) => Some(i),
        None if prompt.login => None,
        None if candidates.len() == 1 && !prompt.select_account => Some(candidates[0]),
        None if candidates.is_empty() => None,
        // OIDC Core §3.1.2.6: several accounts and no way to ask.
        None if prompt.none => {
            return Err(fail(
                "account_selection_required",
                "Several accounts are signed in; the user must choose one.",
            ))
        }
        None => return Ok(AuthorizeOutcome::Chooser(candidates)),
    };
    let Some(account) = picked else {
        if prompt.none {
            return Err(fail("login_required", "The user is not signed in."));
        }
        return Ok(AuthorizeOutcome::Login {
            login_hint: req.login_hint.clone(),
        });
    };
    let live = &accounts[account].live;
    touch(svc, &live.session).await?;
    let granted = match svc
        .store
        .conn()
        .await?
        .grant(&live.user.id, &app.client_id)
        .await?
    {
        Some(g) => params.scope.is_subset_of(&Scope::parse(Some(&g))),
        None => false,
    };
    let needs_consent = app.needs_consent() && (!granted || prompt.consent);
    if needs_consent && prompt.none {
        return Err(fail(
            "consent_required",
            "The user has not granted this app access yet.",
        ));
    }
    if needs_consent {
        // Nothing is stored until the person answers: the form carries the
        // request sealed (docs/decisions.md, "Consent for a signed-in person").
        let pending = PendingConsent {
            client_id: app.client_id.clone(),
            redirect_uri: params.redirect_uri.clone(),
            scope: params.scope.to_string(),
            state: params.state.clone(),
            nonce: params.nonce.clone(),
            code_challenge: params.code_challenge.clone(),
            session_id: live.session.id.clone(),
            expires_at: now + signin::CONSENT_WINDOW,
        };
        return Ok(AuthorizeOutcome::Consent { account, pending });
    }
    // Single sign-on: the live session signs the person in, keeping its
    // auth_time. A session holds a bounded number of unredeemed codes.
    let mut tx = svc.store.begin().await?;
    let code = mint_sso_code(
        svc,
        &mut tx,
        CodeGrant {
            client_id: &app.client_id,
            user_id: &live.user.id,
            session_id: &live.session.id,
            redirect_uri: &params.redirect_uri,
            code_challenge: params.code_challenge.as_deref(),
            nonce: params.nonce.as_deref(),
            scope: &params.scope.to_string(),
            amr: &live.session.amr,
            auth_time: live.session.auth_time,
        },
    )
    .await?;
    let response = match code {
        Some(code) => {
            tx.commit().await?;
            AuthorizationResponse::code(
                &params.redirect_uri,
                params.state.as_deref(),
                svc.settings.issuer(),
                code,
            )
        }
        None => too_many_codes(svc, &params.redirect_uri, params.state.as_deref()),
    };
    Ok(AuthorizeOutcome::Redirect { account, response })
}
