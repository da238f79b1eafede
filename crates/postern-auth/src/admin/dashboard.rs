//! What the panel's dashboard shows (SPEC §3.5, issue 12): sign-ins today
//! and this week by outcome, sign-ins per hour over 48 hours, the outbox,
//! the apps and the live sessions, for an administrator (everything) or an
//! owner (their apps; never the outbox). And the email preview of the
//! branding form, which follows unsaved values.

use postern_core::EmailAddress;
use postern_mail::OutgoingEmail;
use postern_store::{DashboardQueries, LoginKind};

use super::apps::{self, AppPatch};
use super::Principal;
use crate::error::{AuthError, Result};
use crate::Services;

/// The dashboard's numbers.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Sign-ins since midnight UTC, per outcome.
    pub today: Vec<(String, i64)>,
    /// Sign-ins over the last 7 days, per outcome.
    pub week: Vec<(String, i64)>,
    /// The last 48 hours: (hour start, succeeded, count).
    pub hourly: Vec<(i64, bool, i64)>,
    /// Outbox messages waiting and given up; none for owners.
    pub outbox: Option<(i64, i64)>,
    /// Apps the viewer sees.
    pub apps: i64,
    /// Live sessions (of those apps).
    pub live_sessions: i64,
}

/// The dashboard as `who` may see it: administrators everything, owners
/// their apps' sign-ins and sessions (and not the outbox).
pub async fn dashboard(svc: &Services, who: &Principal) -> Result<Dashboard> {
    let now = svc.now();
    let midnight = now - now.rem_euclid(86_400);
    let hour = now - now.rem_euclid(3600);
    let within = who.apps();
    let apps = apps::list(svc, who).await?.len() as i64;
    let mut conn = svc.store.conn().await?;
    Ok(Dashboard {
        today: conn.outcome_counts(midnight, within).await?,
        week: conn.outcome_counts(now - 7 * 86_400, within).await?,
        hourly: conn.hourly_sign_ins(hour - 47 * 3600, within).await?,
        outbox: match who.is_admin() {
            true => Some(conn.outbox_counts().await?),
            false => None,
        },
        apps,
        live_sessions: conn
            .live_session_count(now, now - svc.settings.session_idle_ttl, within)
            .await?,
    })
}

/// The sign-in email of the app `client_id` in `locale`, with a sample
/// link and code, as it would be with `draft` (the branding form's unsaved
/// values, in the API's PATCH shape) applied: what the panel's preview
/// shows while the form is edited. The draft is validated with the rules
/// of saving; nothing is stored.
pub async fn sign_in_preview(
    svc: &Services,
    who: &Principal,
    client_id: &str,
    draft: serde_json::Value,
    locale: Option<&str>,
) -> Result<OutgoingEmail> {
    let mut app = apps::app(svc, who, client_id).await?;
    let patch: AppPatch = apps::from_json(draft)?;
    patch.apply(&mut app);
    apps::validate(&app.name, &mut app.settings)?;
    let locale = match locale {
        Some(l) if postern_core::locale::SUPPORTED.contains(&l) => l.to_owned(),
        Some(_) => {
            return Err(AuthError::invalid_field(
                "locale",
                "is not a language Postern speaks",
            ))
        }
        None => app.settings.locale.clone(),
    };
    let link = svc.settings.url("/verify-email?token=pml_sample");
    let to = EmailAddress::parse("person@example.com").map_err(AuthError::internal)?;
    crate::mail::sign_in_email(&app, &to, LoginKind::Link, &link, "123456", &locale)
}
