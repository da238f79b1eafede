//! Apps in administration: the one JSON shape of SPEC §3.5 ([`AppView`]),
//! creating, changing ([`AppPatch`], any subset, nested objects merge),
//! deleting, secret rotation, the email preview and the test email. The
//! CLI's `postern app …` uses the same shape and the same validation.

use postern_core::crypto::{random_array, random_token, sha256_b64};
use postern_core::duration::format_duration;
use postern_core::{App, AppSettings, EmailAddress};
use postern_store::{AdminQueries, LoginKind, Queries};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{apps_changed, audit, Principal, Target};
use crate::account::ACCOUNT_CLIENT_ID;
use crate::error::{AuthError, Result};
use crate::Services;

mod shape;

pub use shape::{
    from_json, validate, AppCreate, AppPatch, AppView, BrandingPatch, BrandingView, Seconds,
    SettingsPatch, SettingsView,
};

/// The longest overlap of an old secret after a rotation (30 days).
pub const MAX_PREVIOUS_VALID_FOR: i64 = 30 * 86_400;

/// `GET /apps`: every app (owners: theirs), newest first.
pub async fn list(svc: &Services, who: &Principal) -> Result<Vec<AppView>> {
    let mut apps = svc.store.conn().await?.apps().await?;
    if let Some(mine) = who.apps() {
        apps.retain(|a| mine.contains(&a.client_id));
    }
    apps.sort_by(|a, b| (b.created_at, &b.client_id).cmp(&(a.created_at, &a.client_id)));
    Ok(apps.iter().map(AppView::from).collect())
}

/// `GET /apps?cursor=&limit=`: [`list`] as a page.
pub async fn page(
    svc: &Services,
    who: &Principal,
    page: &super::PageRequest,
) -> Result<super::Page<AppView>> {
    let (limit, after) = page.parse()?;
    let rows: Vec<AppView> = list(svc, who)
        .await?
        .into_iter()
        .filter(|a| {
            after
                .as_ref()
                .is_none_or(|k| (a.created_at, a.client_id.as_str()) < (k.at, k.id.as_str()))
        })
        .take(limit as usize + 1)
        .collect();
    Ok(super::Page::of(
        rows,
        limit,
        |a| (a.created_at, &a.client_id),
        |a| a,
    ))
}

/// An app the principal may see.
pub async fn app(svc: &Services, who: &Principal, client_id: &str) -> Result<App> {
    who.authorize(svc, Target::App(client_id)).await?;
    svc.store
        .conn()
        .await?
        .app(client_id)
        .await?
        .ok_or(AuthError::NotFound)
}

/// `GET /apps/{client_id}`.
pub async fn read(svc: &Services, who: &Principal, client_id: &str) -> Result<AppView> {
    Ok(AppView::from(&app(svc, who, client_id).await?))
}

/// A new app and its secret, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppCreated {
    /// The app.
    #[serde(flatten)]
    pub app: AppView,
    /// `pcs_…`; none for a public app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// `POST /apps` (administrators): the app shape, `name` and
/// `redirect_uris` required.
pub async fn create(svc: &Services, who: &Principal, input: AppCreate) -> Result<AppCreated> {
    who.authorize(svc, Target::Server).await?;
    let patch = input.fields;
    if patch.name.is_none() {
        return Err(AuthError::missing("name"));
    }
    if patch.client_id.is_some() {
        return Err(AuthError::invalid_field(
            "client_id",
            "is chosen by the server",
        ));
    }
    let now = svc.now();
    let mut app = App {
        client_id: hex::encode(random_array::<16>()),
        name: String::new(),
        settings: AppSettings {
            public: patch.public.unwrap_or(false),
            ..AppSettings::default()
        },
        created_at: now,
        updated_at: now,
    };
    patch.apply(&mut app);
    validate(&app.name, &mut app.settings)?;
    let secret = (!app.settings.public).then(|| format!("pcs_{}", random_token(32)));
    let mut tx = svc.store.begin().await?;
    tx.insert_app(
        &app,
        secret
            .as_deref()
            .map(|s| sha256_b64(s.as_bytes()))
            .as_deref(),
    )
    .await?;
    audit(svc, &mut tx, who, "app.create", Some(&app.client_id), None).await?;
    tx.commit().await?;
    apps_changed(svc, &app.client_id);
    Ok(AppCreated {
        app: AppView::from(&app),
        client_secret: secret,
    })
}

/// `PATCH /apps/{client_id}`: any subset of the shape. Owners may not
/// change `owners` (403); no redirect URI left is 400; one transaction.
pub async fn update(
    svc: &Services,
    who: &Principal,
    client_id: &str,
    patch: AppPatch,
) -> Result<AppView> {
    who.authorize(svc, Target::App(client_id)).await?;
    if patch.owners.is_some() {
        who.authorize(svc, Target::Server)
            .await
            .map_err(|_| AuthError::Forbidden("Only administrators change an app's owners."))?;
    }
    let detail = json!({ "fields": changed_fields(&patch) });
    let mut tx = svc.store.begin().await?;
    let mut app = tx.app(client_id).await?.ok_or(AuthError::NotFound)?;
    if patch.client_id.as_ref().is_some_and(|c| c != client_id) {
        return Err(AuthError::invalid_field("client_id", "cannot be changed"));
    }
    if patch.public.is_some_and(|p| p != app.settings.public) {
        return Err(AuthError::invalid_field("public", "cannot be changed"));
    }
    patch.apply(&mut app);
    validate(&app.name, &mut app.settings)?;
    app.updated_at = svc.now().max(app.updated_at);
    if !tx.update_app(&app).await? {
        return Err(AuthError::NotFound);
    }
    audit(
        svc,
        &mut tx,
        who,
        "app.update",
        Some(client_id),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    apps_changed(svc, client_id);
    Ok(AppView::from(&app))
}

fn changed_fields(p: &AppPatch) -> Vec<&'static str> {
    let mut f = Vec::new();
    let top = [
        ("name", p.name.is_some()),
        ("first_party", p.first_party.is_some()),
        ("enabled", p.enabled.is_some()),
        ("owners", p.owners.is_some()),
        ("redirect_uris", p.redirect_uris.is_some()),
        (
            "post_logout_redirect_uris",
            p.post_logout_redirect_uris.is_some(),
        ),
        ("initiate_login_uri", p.initiate_login_uri.is_some()),
        ("settings", p.settings.is_some()),
        ("branding", p.branding.is_some()),
    ];
    for (name, set) in top {
        if set {
            f.push(name);
        }
    }
    f
}

/// `DELETE /apps/{client_id}`: the app, its secrets, grants, codes,
/// refresh tokens and headless sessions; the built-in app is 409.
pub async fn delete(svc: &Services, who: &Principal, client_id: &str) -> Result<()> {
    who.authorize(svc, Target::App(client_id)).await?;
    if client_id == ACCOUNT_CLIENT_ID {
        return Err(AuthError::conflict(
            "The built-in account app cannot be deleted.",
        ));
    }
    let mut tx = svc.store.begin().await?;
    if !tx.delete_app(client_id, svc.now()).await? {
        return Err(AuthError::NotFound);
    }
    audit(svc, &mut tx, who, "app.delete", Some(client_id), None).await?;
    tx.commit().await?;
    apps_changed(svc, client_id);
    Ok(())
}

/// `POST /apps/{client_id}/secrets` body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// How long the current secret keeps working (≤ 30 days; default: ends
    /// at once).
    pub previous_valid_for: Option<Seconds>,
}

/// A new secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewSecret {
    /// The app.
    pub client_id: String,
    /// `pcs_…`.
    pub client_secret: String,
    /// When the secret it replaced stops working, unix seconds.
    pub previous_expires_at: i64,
}

/// `POST /apps/{client_id}/secrets`: a new secret; the current one ends
/// after `previous_valid_for`; secrets already in a grace keep their end.
pub async fn rotate_secret(
    svc: &Services,
    who: &Principal,
    client_id: &str,
    input: SecretRotation,
) -> Result<NewSecret> {
    who.authorize(svc, Target::App(client_id)).await?;
    let grace = input.previous_valid_for.map_or(0, |s| s.0);
    if !(0..=MAX_PREVIOUS_VALID_FOR).contains(&grace) {
        return Err(AuthError::invalid_field(
            "previous_valid_for",
            "must be between 0 and 30d",
        ));
    }
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let app = tx.app(client_id).await?.ok_or(AuthError::NotFound)?;
    if app.settings.public {
        return Err(AuthError::conflict("A public app has no secret."));
    }
    tx.end_app_secrets(client_id, now + grace).await?;
    let secret = format!("pcs_{}", random_token(32));
    tx.add_app_secret(client_id, &sha256_b64(secret.as_bytes()), now)
        .await?;
    let detail = json!({ "previous_valid_for": format_duration(grace) });
    audit(
        svc,
        &mut tx,
        who,
        "app.rotate_secret",
        Some(client_id),
        Some(detail),
    )
    .await?;
    tx.commit().await?;
    apps_changed(svc, client_id);
    Ok(NewSecret {
        client_id: client_id.to_owned(),
        client_secret: secret,
        previous_expires_at: now + grace,
    })
}

/// `{"subject", "text", "html"}` of an app's email.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmailPreview {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The sample address, link and code of a preview.
const SAMPLE_TO: &str = "person@example.com";
const SAMPLE_CODE: &str = "123456";

fn kind_of(kind: Option<&str>) -> Result<LoginKind> {
    match kind.unwrap_or("sign_in") {
        "sign_in" => Ok(LoginKind::Link),
        "no_account" => Ok(LoginKind::NoAccount),
        _ => Err(AuthError::invalid_field(
            "kind",
            "must be sign_in or no_account",
        )),
    }
}

fn render_preview(
    svc: &Services,
    app: &App,
    to: &EmailAddress,
    locale: Option<&str>,
    kind: Option<&str>,
) -> Result<postern_mail::OutgoingEmail> {
    let kind = kind_of(kind)?;
    let locale = locale.unwrap_or(&app.settings.locale);
    if locale.is_empty()
        || locale.len() > 35
        || !locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(AuthError::invalid_field("locale", "is not a language tag"));
    }
    let link = svc.settings.url("/verify-email?token=pml_sample");
    crate::mail::sign_in_email(app, to, kind, &link, SAMPLE_CODE, locale)
}

/// `GET /apps/{client_id}/email-preview?locale=&kind=`: the email as the
/// app's users get it, with a sample link and code.
pub async fn email_preview(
    svc: &Services,
    who: &Principal,
    client_id: &str,
    locale: Option<&str>,
    kind: Option<&str>,
) -> Result<EmailPreview> {
    let app = app(svc, who, client_id).await?;
    let to = EmailAddress::parse(SAMPLE_TO).map_err(AuthError::internal)?;
    let email = render_preview(svc, &app, &to, locale, kind)?;
    Ok(EmailPreview {
        subject: email.subject,
        text: email.text,
        html: email.html,
    })
}

/// `POST /apps/{client_id}/test-email` `{"to", "locale"?, "kind"?}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEmail {
    /// Recipient.
    pub to: String,
    /// Language; default the app's.
    pub locale: Option<String>,
    /// `sign_in` (default) or `no_account`.
    pub kind: Option<String>,
}

/// `POST /apps/{client_id}/test-email`: sends the preview through the
/// outbox. Returns the outbox id.
pub async fn test_email(
    svc: &Services,
    who: &Principal,
    client_id: &str,
    input: TestEmail,
) -> Result<String> {
    let app = app(svc, who, client_id).await?;
    let to = EmailAddress::parse(&input.to).map_err(|e| AuthError::invalid_field("to", e))?;
    let email = render_preview(
        svc,
        &app,
        &to,
        input.locale.as_deref(),
        input.kind.as_deref(),
    )?;
    let now = svc.now();
    let mut tx = svc.store.begin().await?;
    let queued =
        crate::mail::enqueue(svc, &mut tx, &email, now, now + app.settings.link_ttl).await?;
    let id = queued.id().to_owned();
    tx.set_outbox_meta(&id, Some(client_id), &super::ops::mask_address(to.as_str()))
        .await?;
    audit(svc, &mut tx, who, "app.test_email", Some(client_id), None).await?;
    tx.commit().await?;
    svc.mail_wake.hand_over(queued);
    Ok(id)
}
