//! RP-Initiated Logout 1.0: which of a browser's accounts end, and where
//! the person goes next.

use postern_core::ClientId;
use postern_store::SessionQueries;

use super::*;

/// RP-Initiated Logout 1.0 §2 parameters.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LogoutInput {
    /// An ID token Postern issued (expired ones are accepted).
    pub id_token_hint: Option<String>,
    /// Registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// The client, when no hint is given.
    pub client_id: Option<String>,
    /// The confirmation page's CSRF token (checked by the face).
    pub csrf_token: Option<String>,
    /// Set by the confirmation page's button.
    pub confirm: Option<String>,
}

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// The verified hint.
    pub hint: Option<IdTokenHint>,
    /// The app, from the hint or `client_id`.
    pub client_id: Option<String>,
    /// Its registration, when it exists.
    pub app: Option<App>,
    /// A registered post-logout redirect URI.
    pub redirect: Option<String>,
}

/// What `/logout` does.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// Ask "sign out of Postern?" first: the request names none of the
    /// browser's accounts, and may come from any site (§2).
    Confirm,
    /// These accounts (indices into the browser's list) were signed out;
    /// the others stay.
    SignedOut(Vec<usize>),
}

/// Checks a logout request: the hint must be Postern's, agree with
/// `client_id`, and a post-logout redirect URI must be registered for the
/// app.
pub async fn logout_request(svc: &Services, p: &LogoutInput) -> Result<LogoutRequest> {
    let hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some(verify_id_token_hint(svc, h).await.map_err(|_| {
            AuthError::invalid("id_token_hint is not an ID token issued by Postern.")
        })?),
        None => None,
    };
    let client_id = match (&hint, p.client_id.as_deref()) {
        (Some(h), Some(c)) if h.aud != c => {
            return Err(AuthError::invalid(
                "client_id does not match id_token_hint.",
            ))
        }
        (Some(h), _) => Some(h.aud.clone()),
        (None, c) => c.map(str::to_owned),
    };
    let app = match &client_id {
        Some(c) if ClientId::parse(c).is_ok() => svc.store.app(c).await?,
        _ => None,
    };
    let redirect = match p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => match &app {
            Some(app) if app.has_post_logout_redirect_uri(uri) => Some(uri.to_owned()),
            _ => {
                return Err(AuthError::invalid(
                    "post_logout_redirect_uri is not registered for this client.",
                ))
            }
        },
    };
    Ok(LogoutRequest {
        hint,
        client_id,
        app,
        redirect,
    })
}

/// Only the browser's own accounts are ever signed out: the hint selects
/// among them and never ends a session by itself, so an ID token someone
/// saw once signs no one out. A hint naming an account ends that account's
/// session (every instance sees it in the database); `confirmed` (the
/// confirmation's CSRF-checked answer) ends every account of the browser.
pub async fn logout(
    svc: &Services,
    req: &LogoutRequest,
    accounts: &[BrowserAccount],
    confirmed: bool,
) -> Result<LogoutOutcome> {
    let named = |a: &BrowserAccount| match (&req.hint, &req.app) {
        (Some(h), app) => {
            h.sid.as_deref() == Some(a.live.session.id.as_str())
                || app.as_ref().is_some_and(|app| {
                    h.sub.as_deref() == Some(subject(svc, app, &a.live.user.id).as_str())
                })
        }
        (None, _) => false,
    };
    let ending: Vec<usize> = (0..accounts.len())
        .filter(|&i| confirmed || named(&accounts[i]))
        .collect();
    if !confirmed && ending.is_empty() && !accounts.is_empty() {
        return Ok(LogoutOutcome::Confirm);
    }
    // With no account on this browser there is nothing to end: the hint's
    // session belongs to another browser and stays.
    if !ending.is_empty() {
        let now = svc.now();
        let mut tx = svc.store.begin().await?;
        for &i in &ending {
            tx.revoke_session(&accounts[i].live.session.id, now).await?;
        }
        tx.commit().await?;
    }
    Ok(LogoutOutcome::SignedOut(ending))
}
