//! Composing and queueing the emails the sign-in flow sends.

use postern_core::{App, EmailAddress};
use postern_mail::{Brand, NoAccountEmail, OutgoingEmail, SignInEmail};
use postern_store::{LoginKind, Tx};

use crate::error::{AuthError, Result};
use crate::Services;

/// Renders the email for a login request: the link and code, or the "no
/// account" notice.
pub fn sign_in_email(
    app: &App,
    to: &EmailAddress,
    kind: LoginKind,
    link: &str,
    code: &str,
    locale: &str,
) -> Result<OutgoingEmail> {
    let b = &app.settings.branding;
    // Postern's own account page is "your Postern account", in the email's
    // language.
    let own = app.client_id == crate::account::ACCOUNT_CLIENT_ID;
    let app_name = if own {
        postern_core::i18n::strings(locale).own_account
    } else {
        app.display_name()
    };
    let brand = Brand {
        app_name,
        logo_url: b.logo_url.as_deref(),
        color: b.color.as_deref(),
        note: b.email_note.as_deref(),
        header: own.then_some("Postern"),
    };
    let rendered = match kind {
        LoginKind::Link => postern_mail::render_sign_in(&SignInEmail {
            locale,
            brand,
            link,
            code,
            link_ttl: app.settings.link_ttl,
        }),
        LoginKind::NoAccount => postern_mail::render_no_account(&NoAccountEmail {
            locale,
            brand,
            email: to.as_str(),
        }),
        LoginKind::Session => return Err(AuthError::internal("no email for a session request")),
    }
    .map_err(AuthError::internal)?;
    Ok(OutgoingEmail::new(
        to.as_str(),
        app.sender_name(),
        locale,
        rendered,
    ))
}

/// Writes `email` to the outbox inside the caller's transaction, encrypted
/// under the master key and leased to this instance; the caller hands it
/// over (`services.mail_wake.hand_over`) after committing.
pub async fn enqueue(
    services: &Services,
    tx: &mut Tx,
    email: &OutgoingEmail,
    now: i64,
    expires_at: i64,
) -> Result<postern_mail::Queued> {
    services
        .mail_wake
        .enqueue(
            tx,
            &services.secrets,
            email,
            now,
            expires_at,
            &services.settings.mail_from_domain,
        )
        .await
        .map_err(AuthError::internal)
}
