//! Sign-in links an administrator issues for a person (SPEC §3.5
//! `POST …/users/{user_id}/sign-in-link`): a login request like the one the
//! person would ask for (single use, the app's link lifetime and device
//! policy), marked as admin-issued, redeemed by the ordinary `/verify-email`
//! or headless verify.

use postern_core::DevicePolicy;
use postern_store::User;

use super::*;

/// A link an administrator issued.
#[derive(Debug)]
pub struct AdminLink {
    /// The link itself (for copying; never logged or stored).
    pub link: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The queued email, to hand to the mail worker once `tx` commits.
    pub queued: Option<postern_mail::Queued>,
}

/// Creates, inside `tx`, an admin-issued login request for `user` and
/// `app`, and (with `send`) queues its email like a sign-in email.
/// `headless`: the link is `redirect_uri?token=` (SPEC §3.4; default the
/// app's first redirect URI); otherwise `/verify-email?token=`, which signs
/// the person in to Postern and goes on to the app's `initiate_login_uri`,
/// or `/account` when it has none.
pub async fn issue_admin_link(
    svc: &Services,
    tx: &mut Tx,
    app: &App,
    user: &User,
    headless: bool,
    redirect_uri: Option<&str>,
    send: bool,
) -> Result<AdminLink> {
    if !app.settings.enabled {
        return Err(AuthError::AppDisabled);
    }
    if user.disabled_at.is_some() {
        return Err(AuthError::conflict(
            "The person is disabled: enable them before sending a sign-in link.",
        ));
    }
    // A browser link has no asking browser, IP or page: under a policy
    // that signs in only the asking browser, or binds the session to the
    // asking IP range, it could never be used, so none is issued.
    if !headless && (app.settings.device_policy != DevicePolicy::Any || app.settings.bind_ip_range)
    {
        return Err(AuthError::conflict(
            "The app signs in only the browser that asked (device_policy) or binds sessions to the asking network (bind_ip_range): a link an administrator issues cannot be used there. Use the headless flow, or ask the person to sign in themselves.",
        ));
    }
    let email = EmailAddress::parse(&user.email).map_err(AuthError::internal)?;
    if !app.allows_domain(email.domain()) {
        return Err(AuthError::conflict(
            "The app does not let this address's domain sign in.",
        ));
    }
    let target = if headless {
        let uri = match redirect_uri {
            Some(u) => u.to_owned(),
            None => app
                .settings
                .redirect_uris
                .first()
                .cloned()
                .ok_or(AuthError::invalid_field("redirect_uri", "is missing"))?,
        };
        if !app.has_redirect_uri(&uri) {
            return Err(AuthError::invalid_field(
                "redirect_uri",
                "is not registered for this app",
            ));
        }
        uri
    } else {
        if redirect_uri.is_some() {
            return Err(AuthError::invalid_field(
                "redirect_uri",
                "is only for the headless flow",
            ));
        }
        app.settings
            .initiate_login_uri
            .clone()
            .unwrap_or_else(|| svc.settings.url("/account"))
    };
    let id = random_id();
    let token = format!("pml_{}", random_token(32));
    let code = random_digits(6);
    let link = if headless {
        let mut url = url::Url::parse(&target).map_err(AuthError::internal)?;
        url.query_pairs_mut().append_pair("token", &token);
        url.to_string()
    } else {
        format!("{}?token={token}", svc.settings.url("/verify-email"))
    };
    let locale = postern_core::locale::negotiate(None, None, &app.settings.locale);
    let now = svc.now();
    let expires_at = now + app.settings.link_ttl;
    let request = LoginRequest {
        id: id.clone(),
        client_id: app.client_id.clone(),
        email: email.as_str().to_owned(),
        kind: LoginKind::Link,
        headless,
        admin_issued: true,
        token_hash: svc.secrets.keyed_hash(purpose::LINK, token.as_bytes()),
        code_hash: code_hash(svc, &id, &code),
        code_attempts: 0,
        // Browser: where the person goes once signed in to Postern.
        redirect_uri: target,
        state: None,
        nonce: None,
        code_challenge: None,
        scope: if headless { "openid email" } else { "openid" }.to_owned(),
        locale: locale.to_owned(),
        // No asking browser, IP or page to show a number on: another
        // browser's rules (the app's device policy) apply wherever it opens.
        ip: None,
        user_agent: None,
        binding_hash: None,
        remote_number: None,
        approved_at: None,
        completed_at: None,
        rate_slot: None,
        created_at: now,
        expires_at,
        consumed_at: None,
    };
    tx.insert_login_request(&request).await?;
    let queued = if send {
        let message =
            crate::mail::sign_in_email(app, &email, LoginKind::Link, &link, &code, locale)?;
        let queued = crate::mail::enqueue(svc, tx, &message, now, expires_at).await?;
        postern_store::AdminQueries::set_outbox_meta(
            tx,
            queued.id(),
            Some(&app.client_id),
            &crate::admin::ops::mask_address(email.as_str()),
        )
        .await?;
        Some(queued)
    } else {
        None
    };
    Ok(AdminLink {
        link,
        expires_at,
        queued,
    })
}
