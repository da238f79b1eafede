//! Passkeys (WebAuthn, issue 15): made after an email sign-in, used to sign
//! in within a second on that device with no email round trip.
//!
//! The ceremonies run through `webauthn-rs` with its security defaults:
//! RP ID = the public URL's host, the origin checked exactly, user
//! verification required by its passkey profile, no attestation asked,
//! the signature counter checked. Each ceremony's state is stored here,
//! server-side, encrypted under the master key, for
//! [`CHALLENGE_TTL`] seconds, usable once and only by the browser that
//! started it (its binding cookie, as for link requests).
//!
//! A passkey sign-in is a sign-in like any other: it stores a login request
//! (consumed at birth) for the authorization request it answers and goes
//! through the same [`finish`](crate::signin::finish) as a link: session,
//! history (method `passkey`), consent, authorization code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use postern_core::crypto::{random_id, random_token};
use postern_core::{App, PasskeyPolicy};
use postern_store::{
    LoginKind, LoginRequest, PasskeyChallenge, PasskeyQueries, Queries, SignInEvent, StoredPasskey,
    Tx,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use crate::error::{AuthError, Flow, Result};
use crate::signin::{
    self, flow_of, hit_limit, peek_limit, purpose, AuthParams, Method, RawAuthParams, Requester,
    SignedIn, CODE_TRIES_PER_EMAIL_HOUR, CODE_TRIES_PER_IP_HOUR, HOUR,
};
use crate::Services;

/// How long a ceremony may take, seconds (issue 15: 5 minutes).
pub const CHALLENGE_TTL: i64 = 300;

/// Ceremony starts per IP per hour: each `/login` view with passkey
/// autofill starts one, so this is looser than the wrong-try budget that
/// failed finishes spend.
pub const STARTS_PER_IP_HOUR: i64 = 300;

/// Longest name a person may give a passkey, in characters.
pub const MAX_NAME: usize = 60;

/// Most passkeys one person may register.
pub const MAX_PER_USER: i64 = 20;

const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";
const HANDLE: &str = "passkey-user-handle";

/// Why a passkey ceremony failed, in the product's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyProblem {
    /// The ceremony is unknown, used, expired or was started by another
    /// browser.
    Challenge,
    /// The browser's answer did not verify: wrong origin, bad signature,
    /// no user verification, a counter that went backwards, malformed.
    Rejected,
    /// No account has this passkey (never registered, or deleted).
    UnknownCredential,
    /// The passkey's owner is disabled.
    UserDisabled,
    /// This app does not take passkeys.
    Off,
    /// The passkey is registered already.
    Duplicate,
    /// The person has as many passkeys as allowed.
    TooMany,
}

impl PasskeyProblem {
    /// The `error_description` a developer reads.
    pub fn describe(self) -> &'static str {
        match self {
            PasskeyProblem::Challenge => {
                "The passkey request has expired, was already used or belongs to another browser."
            }
            PasskeyProblem::Rejected => "The passkey answer could not be verified.",
            PasskeyProblem::UnknownCredential => "This passkey is not registered.",
            PasskeyProblem::UserDisabled => "This account is disabled.",
            PasskeyProblem::Off => "This app does not accept passkeys.",
            PasskeyProblem::Duplicate => "This passkey is registered already.",
            PasskeyProblem::TooMany => "This account has as many passkeys as allowed.",
        }
    }
}

/// What a device a passkey lives on is, as far as the authenticator said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Synced by a password manager or the platform (backup eligible).
    Synced,
    /// A removable security key (USB, NFC, Bluetooth).
    SecurityKey,
    /// Kept on one device only.
    ThisDevice,
    /// The authenticator said nothing.
    Unknown,
}

/// One passkey as pages and the admin API show it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    /// Id (forms, the admin API).
    pub id: String,
    /// The person's name for it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of its last sign-in.
    pub last_used_at: Option<i64>,
    /// What kind of device it lives on.
    pub device: DeviceKind,
    /// Synced now.
    pub backed_up: bool,
}

impl PasskeyInfo {
    fn of(p: &StoredPasskey) -> Self {
        let transports = p.transports.as_deref().unwrap_or_default();
        let has = |t: &str| transports.split(',').any(|x| x == t);
        let device = if p.backup_eligible {
            DeviceKind::Synced
        } else if has("usb") || has("nfc") || has("ble") {
            DeviceKind::SecurityKey
        } else if has("internal") {
            DeviceKind::ThisDevice
        } else {
            DeviceKind::Unknown
        };
        PasskeyInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            device,
            backed_up: p.backup_state,
        }
    }
}

/// A ceremony started: its id (posted back with the answer) and the
/// options for `navigator.credentials.create` or `.get`, as JSON with
/// binary fields in base64url.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The ceremony's id.
    pub challenge_id: String,
    /// `{"publicKey": …}` (and `"mediation"` for authentication).
    pub options: Value,
}

/// Whether this server can take passkeys at all: WebAuthn's relying party
/// is a domain, so a public URL on an IP address (the quick start's
/// `http://127.0.0.1:8080`) has none; `localhost` works.
pub fn available(svc: &Services) -> bool {
    svc.settings.public_url.domain().is_some()
}

/// The relying party: this server, at its public URL.
fn relying_party(svc: &Services) -> Result<Webauthn> {
    if !available(svc) {
        return Err(problem(PasskeyProblem::Off));
    }
    let url = &svc.settings.public_url;
    let host = url
        .host_str()
        .ok_or_else(|| AuthError::internal("the public URL has no host"))?;
    WebauthnBuilder::new(host, url)
        .and_then(|b| b.rp_name("Postern").build())
        .map_err(AuthError::internal)
}

/// The WebAuthn user handle of a user: derived, so nothing ties it to the
/// address or the internal id for anyone without the master key.
fn user_handle(svc: &Services, user_id: &str) -> Uuid {
    let hash = svc.secrets.keyed_hash(HANDLE, user_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    Uuid::from_bytes(bytes)
}

fn seal(svc: &Services, id: &str, state: &impl Serialize) -> Result<String> {
    let json = serde_json::to_vec(state).map_err(AuthError::internal)?;
    Ok(svc
        .secrets
        .encrypt(&format!("passkey-challenge:{id}"), &json))
}

fn open<T: for<'de> Deserialize<'de>>(svc: &Services, c: &PasskeyChallenge) -> Result<T> {
    let json = svc
        .secrets
        .decrypt(&format!("passkey-challenge:{}", c.id), &c.state)
        .map_err(|_| AuthError::internal("a passkey challenge does not decrypt"))?;
    serde_json::from_slice(&json).map_err(AuthError::internal)
}

fn problem(p: PasskeyProblem) -> AuthError {
    AuthError::Passkey(p)
}

fn well_formed_id(id: &str) -> bool {
    postern_core::LoginId::parse(id).is_ok()
}

/// The fields of a stored passkey that pages show, read from the
/// credential webauthn-rs keeps (it exposes them only as JSON).
fn flags_of(passkey: &Passkey) -> Result<(i64, bool, bool, Option<String>)> {
    let v = serde_json::to_value(passkey).map_err(AuthError::internal)?;
    let cred = &v["cred"];
    let transports = cred["transports"].as_array().map(|ts| {
        ts.iter()
            .filter_map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    Ok((
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
        transports.filter(|t| !t.is_empty()),
    ))
}

async fn store_challenge(
    svc: &Services,
    kind: &str,
    user_id: Option<&str>,
    flow: Option<String>,
    state: &impl Serialize,
    who: &Requester,
) -> Result<String> {
    let binding = who
        .binding
        .as_deref()
        .ok_or_else(|| problem(PasskeyProblem::Challenge))?;
    let now = svc.now();
    let id = random_id();
    let mut tx = svc.store.begin().await?;
    let ip = postern_core::net::rate_limit_subject(who.ip);
    hit_limit(
        svc,
        &mut tx,
        "passkey-start-ip",
        &ip,
        STARTS_PER_IP_HOUR,
        HOUR,
    )
    .await?;
    tx.insert_passkey_challenge(
        &PasskeyChallenge {
            id: id.clone(),
            kind: kind.to_owned(),
            user_id: user_id.map(str::to_owned),
            binding_hash: signin::binding_hash(svc, binding),
            state: seal(svc, &id, state)?,
            flow,
            ip: Some(who.ip.to_string()),
            created_at: now,
            expires_at: now + CHALLENGE_TTL,
            consumed_at: None,
        },
        now - CHALLENGE_TTL,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A ceremony taken, or why not: none of that id, or the ceremony and the
/// history outcome of trying it (`used`, `expired`, `refused`).
type Taken = std::result::Result<PasskeyChallenge, Option<(PasskeyChallenge, &'static str)>>;

/// Consumes the ceremony `id` of `kind` for the browser `who` (once).
/// Otherwise says why not: unknown, used, expired, or another browser's
/// (then it stays usable by its own browser).
async fn take_challenge(
    svc: &Services,
    tx: &mut Tx,
    id: &str,
    kind: &str,
    who: &Requester,
) -> Result<Taken> {
    if !well_formed_id(id) {
        return Ok(Err(None));
    }
    let binding = who
        .binding
        .as_deref()
        .map(|b| signin::binding_hash(svc, b))
        .unwrap_or_default();
    let now = svc.now();
    if let Some(c) = tx
        .consume_passkey_challenge(id, kind, &binding, now)
        .await?
    {
        return Ok(Ok(c));
    }
    let Some(c) = tx.passkey_challenge(id).await? else {
        return Ok(Err(None));
    };
    let outcome = if c.kind != kind || c.binding_hash != binding {
        "refused"
    } else if c.consumed_at.is_some() {
        "used"
    } else {
        "expired"
    };
    Ok(Err(Some((c, outcome))))
}

// ---- registration ---------------------------------------------------------

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

fn clean_name(name: &str) -> String {
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name.to_owned()
    }
}

/// Finishes making a passkey: the browser's answer to ceremony
/// `challenge_id`, which this person (`user_id`) started in this browser.
pub async fn finish_registration(
    svc: &Services,
    user_id: &str,
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
    tx.commit().await?;
    Ok(PasskeyInfo::of(&stored))
}

// ---- authentication -------------------------------------------------------

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

/// Records a failed passkey sign-in (history row, the try counted against
/// the code-entry budgets of the IP and, when known, the address) and
/// returns its error. Runs after the ceremony's transaction ended.
async fn fail(svc: &Services, f: Failure, who: &Requester) -> AuthError {
    let now = svc.now();
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
            let _ = hit_limit(
                svc,
                &mut tx,
                "code-email-hour",
                email,
                CODE_TRIES_PER_EMAIL_HOUR,
                HOUR,
            )
            .await;
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
/// the address's) code-entry budget.
pub async fn finish_authentication(
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
    let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
        failure.problem = PasskeyProblem::UserDisabled;
        return Err(fail(svc, failure, who).await);
    };
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
        created_at: now,
        expires_at: now + CHALLENGE_TTL,
        consumed_at: Some(now),
    };
    tx.insert_login_request(&request).await?;
    signin::finish(svc, tx, &app, request, method, who)
        .await
        .map_err(|e| AuthError::in_app(&app, e))
}

// ---- the rule of `required_after_first_sign_in` -------------------------------

/// What [`gate`] decided for a link or code sign-in.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Go on, recorded with this method.
    Pass(Method),
    /// Refused: the person has a passkey and this app wants it.
    Refuse,
}

/// Issue 15 `required_after_first_sign_in`: once a person has a passkey, a
/// link or code alone does not sign them in to such an app, unless they
/// said they lost their passkey (`who.passkey_lost`): then it does, and
/// history says so.
pub(crate) async fn gate(
    tx: &mut Tx,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> Result<Gate> {
    let email_based = matches!(method, Method::Link | Method::Code);
    if !email_based || app.settings.passkeys != PasskeyPolicy::RequiredAfterFirstSignIn {
        return Ok(Gate::Pass(method));
    }
    let Some(user) = tx.user_by_email(&request.email).await? else {
        return Ok(Gate::Pass(method));
    };
    if tx.count_passkeys(&user.id).await? == 0 {
        return Ok(Gate::Pass(method));
    }
    if !who.passkey_lost {
        return Ok(Gate::Refuse);
    }
    Ok(Gate::Pass(match method {
        Method::Link => Method::LinkPasskeyLost,
        _ => Method::CodePasskeyLost,
    }))
}

/// Records the refusal of [`gate`] (after the sign-in's transaction was
/// rolled back, so the link or code still works once the person says they
/// lost their passkey) and returns its error.
pub(crate) async fn refuse(
    svc: &Services,
    app: &App,
    request: &LoginRequest,
    method: Method,
    who: &Requester,
) -> AuthError {
    let record = async {
        let mut conn = svc.store.conn().await?;
        let user = conn.user_by_email(&request.email).await?;
        conn.insert_sign_in_event(&SignInEvent {
            id: random_id(),
            user_id: user.map(|u| u.id),
            client_id: app.client_id.clone(),
            at: svc.now(),
            ip: Some(who.ip.to_string()),
            user_agent: who.user_agent.clone(),
            method: method.event().to_owned(),
            outcome: "refused".to_owned(),
        })
        .await?;
        Ok::<_, AuthError>(())
    };
    if let Err(e) = record.await {
        return e;
    }
    AuthError::in_app(
        app,
        AuthError::PasskeyRequired {
            flow: Box::new(flow_of(request)),
        },
    )
}

/// Whether to offer making a passkey after this finished sign-in: an email
/// sign-in (link or code) in a browser, for an app that takes passkeys.
/// The face decides the rest (the browser said "not now", or made one).
pub(crate) fn offer_after(
    svc: &Services,
    app: &App,
    method: Method,
    request: &LoginRequest,
) -> Option<Box<Flow>> {
    if !available(svc) {
        return None;
    }
    let email_based = matches!(
        method,
        Method::Link | Method::Code | Method::LinkPasskeyLost | Method::CodePasskeyLost
    );
    (email_based && !request.headless && app.settings.passkeys != PasskeyPolicy::Off)
        .then(|| Box::new(flow_of(request)))
}

// ---- a person's passkeys (account page, admin) -------------------------------

/// A user's passkeys, newest first (the account page; the admin panel and
/// API show a user's passkeys with this too).
pub async fn list_for_user(svc: &Services, user_id: &str) -> Result<Vec<PasskeyInfo>> {
    let rows = svc.store.conn().await?.passkeys_of_user(user_id).await?;
    Ok(rows.iter().map(PasskeyInfo::of).collect())
}

/// Renames one of a user's passkeys.
pub async fn rename(svc: &Services, user_id: &str, id: &str, name: &str) -> Result<()> {
    if !well_formed_id(id) {
        return Err(AuthError::NotFound);
    }
    let name = clean_name(name);
    if !svc
        .store
        .conn()
        .await?
        .rename_passkey(user_id, id, &name)
        .await?
    {
        return Err(AuthError::NotFound);
    }
    Ok(())
}

/// Deletes one of a user's passkeys: it signs no one in any more (the
/// account page; the admin panel and API delete a user's passkeys with
/// this too).
pub async fn delete(svc: &Services, user_id: &str, id: &str) -> Result<()> {
    if !well_formed_id(id) {
        return Err(AuthError::NotFound);
    }
    if !svc.store.conn().await?.delete_passkey(user_id, id).await? {
        return Err(AuthError::NotFound);
    }
    Ok(())
}
