//! People in administration: prefix search, one person (with their
//! passkeys), disable/enable (ending every session and refresh token at
//! once), delete, deleting one passkey, and the admin-issued sign-in link
//! (SPEC §3.5).

use postern_store::{AccountQueries, AdminQueries, PasskeyQueries, Queries, SessionFilter, User};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, Page, PageRequest, Principal, Target};
use crate::error::{AuthError, Result};
use crate::passkeys::PasskeyInfo;
use crate::Services;

/// A person in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    /// Internal id.
    pub id: String,
    /// Normalized address.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful sign-in.
    pub last_sign_in_at: Option<i64>,
    /// Whether they are disabled.
    pub disabled: bool,
}

impl From<&User> for UserSummary {
    fn from(u: &User) -> Self {
        UserSummary {
            id: u.id.clone(),
            email: u.email.clone(),
            created_at: u.created_at,
            last_sign_in_at: u.last_sign_in_at,
            disabled: u.disabled_at.is_some(),
        }
    }
}

/// An app a person allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserApp {
    /// The app.
    pub client_id: String,
    /// Its display name.
    pub name: String,
    /// Allowed scopes.
    pub scope: String,
}

/// One person (SPEC §3.5 `GET /users/{user_id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Internal id.
    pub id: String,
    /// Normalized address.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful sign-in.
    pub last_sign_in_at: Option<i64>,
    /// Whether they are disabled.
    pub disabled: bool,
    /// Apps with grants (owners: only theirs).
    pub apps: Vec<UserApp>,
    /// Live sessions (owners: those used with their apps).
    pub live_sessions: i64,
    /// Their passkeys, newest first (issue 15): name, created, last used,
    /// device kind; never the key itself.
    pub passkeys: Vec<PasskeyInfo>,
}

/// `GET /users?q=`: people whose address starts with `q` (owners: people
/// with sign-in history in their apps), newest first.
pub async fn search(
    svc: &Services,
    who: &Principal,
    q: &str,
    page: &PageRequest,
) -> Result<Page<UserSummary>> {
    let (limit, after) = page.parse()?;
    let prefix = q.trim().to_lowercase();
    if prefix.chars().count() > 320 {
        return Err(AuthError::invalid_field("q", "is too long"));
    }
    let rows = svc
        .store
        .conn()
        .await?
        .users_page(&prefix, who.apps(), after.as_ref(), limit + 1)
        .await?;
    Ok(Page::of(
        rows,
        limit,
        |u| (u.created_at, &u.id),
        |u| UserSummary::from(&u),
    ))
}

async fn user(svc: &Services, who: &Principal, user_id: &str) -> Result<User> {
    who.authorize(svc, Target::User(user_id)).await?;
    svc.store
        .conn()
        .await?
        .user(user_id)
        .await?
        .ok_or(AuthError::NotFound)
}

/// `GET /users/{user_id}`.
pub async fn read(svc: &Services, who: &Principal, user_id: &str) -> Result<UserView> {
    let u = user(svc, who, user_id).await?;
    let now = svc.now();
    let mut conn = svc.store.conn().await?;
    let apps = conn
        .user_grants(user_id)
        .await?
        .into_iter()
        .filter(|g| {
            who.apps()
                .is_none_or(|mine| mine.contains(&g.app.client_id))
        })
        .map(|g| UserApp {
            name: g.app.display_name().to_owned(),
            client_id: g.app.client_id,
            scope: g.scope,
        })
        .collect();
    let filter = SessionFilter {
        user_id: Some(user_id.to_owned()),
        client_id: None,
        within: who.apps().map(<[String]>::to_vec),
    };
    let live = conn
        .sessions_page(
            &filter,
            now,
            now - svc.settings.session_idle_ttl,
            None,
            10_000,
        )
        .await?
        .len() as i64;
    let passkeys = conn
        .passkeys_of_user(user_id)
        .await?
        .iter()
        .map(PasskeyInfo::of)
        .collect();
    Ok(UserView {
        id: u.id,
        email: u.email,
        created_at: u.created_at,
        last_sign_in_at: u.last_sign_in_at,
        disabled: u.disabled_at.is_some(),
        apps,
        live_sessions: live,
        passkeys,
    })
}

/// `POST /users/{user_id}/disable` and `…/enable` (administrators only:
/// the account signs in to every app, [`Target::Account`]). Disabling ends every
/// session and refresh token of the person in the same transaction; a
/// disabled person cannot sign in (they get the "no account" email).
pub async fn set_disabled(
    svc: &Services,
    who: &Principal,
    user_id: &str,
    disabled: bool,
) -> Result<UserView> {
    who.authorize(svc, Target::Account(user_id)).await?;
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    if !tx
        .set_user_disabled(user_id, disabled.then_some(now))
        .await?
    {
        return Err(AuthError::NotFound);
    }
    if disabled {
        postern_store::SessionQueries::revoke_user_sessions(&mut tx, user_id, now).await?;
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    audit(svc, &mut tx, who, action, Some(user_id), None).await?;
    tx.commit().await?;
    read(svc, who, user_id).await
}

/// `DELETE /users/{user_id}`: the person and everything of theirs, as
/// "delete my account" does (administrators only, [`Target::Account`]).
pub async fn delete(svc: &Services, who: &Principal, user_id: &str) -> Result<()> {
    who.authorize(svc, Target::Account(user_id)).await?;
    let mut tx = svc.store.begin().await?;
    if !tx.delete_user(user_id).await? {
        return Err(AuthError::NotFound);
    }
    audit(svc, &mut tx, who, "user.delete", Some(user_id), None).await?;
    tx.commit().await?;
    Ok(())
}

/// `DELETE /users/{user_id}/passkeys/{passkey_id}` (issue 15): that
/// passkey signs no one in any more; the email link still does.
/// Administrators only: a passkey signs in to every app, not only an
/// owner's.
pub async fn delete_passkey(
    svc: &Services,
    who: &Principal,
    user_id: &str,
    passkey_id: &str,
) -> Result<()> {
    who.authorize(svc, Target::Account(user_id)).await?;
    if postern_core::LoginId::parse(passkey_id).is_err() {
        return Err(AuthError::NotFound);
    }
    let mut tx = svc.store.begin().await?;
    if !tx.delete_passkey(user_id, passkey_id).await? {
        return Err(AuthError::NotFound);
    }
    let detail = json!({ "passkey_id": passkey_id });
    audit(
        svc,
        &mut tx,
        who,
        "user.passkey_delete",
        Some(user_id),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /users/{user_id}/sign-in-link` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInLinkRequest {
    /// The app to sign in to.
    pub client_id: String,
    /// `browser` (default) or `headless`.
    #[serde(default)]
    pub flow: LinkFlow,
    /// Headless: which registered redirect URI carries the token (default:
    /// the app's first).
    pub redirect_uri: Option<String>,
    /// Email it (default); `false` returns the link itself (only with
    /// `POSTERN_ADMIN_LINKS=copy`).
    #[serde(default = "yes")]
    pub send: bool,
}

fn yes() -> bool {
    true
}

/// Which sign-in an admin-issued link starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkFlow {
    /// `/verify-email?token=`: signs in to Postern, then on to the app.
    #[default]
    Browser,
    /// `redirect_uri?token=`: for the app's server to redeem (SPEC §3.4).
    Headless,
}

/// What an admin-issued link answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignInLink {
    /// Whether it was emailed.
    pub sent: bool,
    /// The link itself, only when copying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// `POST /users/{user_id}/sign-in-link`.
pub async fn sign_in_link(
    svc: &Services,
    who: &Principal,
    user_id: &str,
    input: SignInLinkRequest,
) -> Result<SignInLink> {
    who.authorize(svc, Target::User(user_id)).await?;
    who.authorize(svc, Target::App(&input.client_id)).await?;
    if !input.send && svc.settings.admin_links != crate::AdminLinks::Copy {
        return Err(AuthError::Forbidden(
            "Copying sign-in links is off (POSTERN_ADMIN_LINKS=send).",
        ));
    }
    let person = user(svc, who, user_id).await?;
    let app = crate::signin::app_named(svc, Some(&input.client_id))
        .await
        .map_err(|_| AuthError::NotFound)?;
    let mut tx = svc.store.begin().await?;
    let issued = crate::signin::issue_admin_link(
        svc,
        &mut tx,
        &app,
        &person,
        input.flow == LinkFlow::Headless,
        input.redirect_uri.as_deref(),
        input.send,
    )
    .await?;
    let detail = json!({ "client_id": input.client_id, "flow": input.flow, "send": input.send });
    audit(
        svc,
        &mut tx,
        who,
        "user.sign_in_link",
        Some(user_id),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    if let Some(queued) = issued.queued {
        svc.mail_wake.hand_over(queued);
    }
    Ok(SignInLink {
        sent: input.send,
        link: (!input.send).then_some(issued.link),
        expires_at: issued.expires_at,
    })
}
