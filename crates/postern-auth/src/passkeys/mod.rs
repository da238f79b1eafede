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

use postern_core::crypto::random_id;
use postern_core::i18n::passkeys::PasskeyStrings;
use postern_store::{PasskeyChallenge, PasskeyQueries, StoredPasskey, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{Passkey, Uuid, Webauthn, WebauthnBuilder};

use crate::error::{AuthError, Result};
use crate::signin::{self, hit_limit, Requester, HOUR};
use crate::Services;

mod account;
mod authenticate;
mod policy;
mod register;

pub use account::{account_notice, account_section, error_words, AccountPasskeys, PasskeyView};
pub use authenticate::{finish_authentication, start_authentication};
pub(crate) use policy::{gate, gate_before, offer_after, refuse, session_may_enter, Gate};
pub use register::{finish_registration, start_registration};

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
    /// Every problem.
    pub const ALL: [PasskeyProblem; 7] = [
        PasskeyProblem::Challenge,
        PasskeyProblem::Rejected,
        PasskeyProblem::UnknownCredential,
        PasskeyProblem::UserDisabled,
        PasskeyProblem::Off,
        PasskeyProblem::Duplicate,
        PasskeyProblem::TooMany,
    ];

    /// The problem an error's `error_description` names (an error page is
    /// rendered from the error body alone), if it is a passkey problem.
    pub fn named_by(description: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.describe() == description)
    }

    /// What the error page says of it to a person, in `p`'s language.
    pub fn words(self, p: &PasskeyStrings) -> &'static str {
        match self {
            PasskeyProblem::Challenge => p.error_challenge,
            PasskeyProblem::Rejected => p.error_rejected,
            PasskeyProblem::UnknownCredential => p.error_unknown,
            PasskeyProblem::UserDisabled => p.error_disabled,
            PasskeyProblem::Off => p.error_off,
            PasskeyProblem::Duplicate | PasskeyProblem::TooMany => p.error_duplicate,
        }
    }

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

impl DeviceKind {
    /// "Synced passkey", "Security key", … in `p`'s language; nothing when
    /// the authenticator said nothing.
    pub fn words(self, p: &PasskeyStrings) -> Option<&'static str> {
        match self {
            DeviceKind::Synced => Some(p.kind_synced),
            DeviceKind::SecurityKey => Some(p.kind_security_key),
            DeviceKind::ThisDevice => Some(p.kind_this_device),
            DeviceKind::Unknown => None,
        }
    }
}

/// One passkey as pages and the admin API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// What may be shown of a stored passkey.
    pub fn of(p: &StoredPasskey) -> Self {
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

/// A passkey's name as given: no control characters, at most
/// [`MAX_NAME`] characters, never empty.
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
