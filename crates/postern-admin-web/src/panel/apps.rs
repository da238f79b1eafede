//! `/admin/apps`: the apps list, an app's page with every setting, its
//! branding beside a live preview of its email, secret rotation and
//! deletion.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use postern_auth::admin;
use postern_core::App;
use serde_json::{json, Value};

use super::app_forms::{
    apply_branding, brand_view, branding_patch, settings_patch, settings_view, split_lines,
    BrandView, BrandingForm, SettingsForm, SettingsView, LOCALES,
};
use super::dashboard::PreviewQuery;
use super::{Ctx, Frame};
use postern_web::error::Result;
use postern_web::extract::{AppForm, AppPath};
use postern_web::i18n::admin::AdminStrings;
use postern_web::i18n::Strings;
use postern_web::AppState;

/// One app in the list.
pub struct AppRow {
    /// Its client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// "Public" or "Confidential" (and "First-party").
    pub kind: String,
    /// Whether it signs people in.
    pub enabled: bool,
}

/// `GET /admin/apps`.
#[derive(Template)]
#[template(path = "admin/apps.html")]
pub struct AppsPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The apps the viewer sees.
    pub apps: Vec<AppRow>,
    /// The new-app form as it was sent (after an error).
    pub draft_name: String,
    /// Its redirect URIs.
    pub draft_uris: String,
}

/// What an app is, in words.
pub fn kind(a: &AdminStrings, public: bool, first_party: bool) -> String {
    let mut kind = if public {
        a.public_app.to_owned()
    } else {
        a.confidential_app.to_owned()
    };
    if first_party {
        kind.push_str(" · ");
        kind.push_str(a.first_party);
    }
    kind
}

/// `GET /admin/apps/{client_id}`.
#[derive(Template)]
#[template(path = "admin/app.html")]
pub struct AppPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// Its client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Public or confidential.
    pub kind: String,
    /// Whether it signs people in.
    pub enabled: bool,
    /// Public apps have no secret to rotate.
    pub public: bool,
    /// Postern's own account app cannot be deleted.
    pub first_party_builtin: bool,
    /// The branding form.
    pub brand: BrandView,
    /// The settings form.
    pub s: SettingsView,
    /// The languages of the preview.
    pub locales: Vec<(&'static str, &'static str)>,
    /// The preview's language.
    pub preview_locale: String,
    /// The preview frame's address (with unsaved branding, if any).
    pub preview_url: String,
    /// Grace periods of the old secret.
    pub graces: Vec<(&'static str, String)>,
}

/// `GET /admin/apps`: the apps the viewer sees; for administrators, the
/// form that creates one.
pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Response> {
    let mut frame = ctx.frame("/admin/apps");
    if ctx.notice.as_deref() == Some("app-deleted") {
        frame.notice = Some(ctx.a.app_deleted.to_owned());
    }
    apps_page(&state, ctx, frame, String::new(), String::new()).await
}

async fn apps_page(
    state: &AppState,
    ctx: Ctx,
    frame: Frame,
    draft_name: String,
    draft_uris: String,
) -> Result<Response> {
    let apps = admin::apps::list(state, &ctx.who).await?;
    let page = AppsPage {
        t: ctx.t,
        a: ctx.a,
        frame,
        apps: apps
            .iter()
            .map(|app| AppRow {
                client_id: app.client_id.clone(),
                name: app.name.clone(),
                kind: kind(ctx.a, app.public, app.first_party),
                enabled: app.enabled,
            })
            .collect(),
        draft_name,
        draft_uris,
    };
    let status = if page.frame.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(ctx.render_with(status, &page))
}

/// The query of an app's page: the preview's language and, after the
/// "Preview" button without the script, the unsaved branding.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AppQuery {
    /// "yes" when the branding form's "Preview" button sent it.
    pub preview: Option<String>,
    /// The branding form.
    #[serde(flatten)]
    pub draft: PreviewQuery,
}

/// The app page of `app`, with `brand` in the branding form.
pub fn app_page(ctx: &Ctx, frame: Frame, app: &App, draft: &PreviewQuery) -> AppPage {
    let a = ctx.a;
    let mut shown = app.clone();
    apply_branding(&mut shown, draft);
    let preview_locale = draft
        .preview_locale
        .clone()
        .filter(|l| LOCALES.iter().any(|(t, _)| t == l))
        .unwrap_or_else(|| app.settings.locale.clone());
    let brand = brand_view(&shown);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("brand_name", &brand.name);
    q.append_pair("color", &brand.color);
    q.append_pair("logo_url", &brand.logo_url);
    q.append_pair("sender_name", &brand.sender_name);
    q.append_pair("email_note", &brand.email_note);
    q.append_pair("preview_locale", &preview_locale);
    AppPage {
        t: ctx.t,
        a,
        frame,
        client_id: app.client_id.clone(),
        name: app.name.clone(),
        kind: kind(a, app.settings.public, app.settings.first_party),
        enabled: app.settings.enabled,
        public: app.settings.public,
        first_party_builtin: app.client_id == postern_auth::account::ACCOUNT_CLIENT_ID,
        preview_url: format!(
            "/admin/apps/{}/email-preview.html?{}",
            app.client_id,
            q.finish()
        ),
        brand,
        s: settings_view(a, app),
        locales: LOCALES.to_vec(),
        preview_locale,
        graces: vec![
            ("", a.end_at_once.to_owned()),
            ("1h", ctx.t.duration_up(3600)),
            ("24h", ctx.t.duration_up(86_400)),
            ("7d", "7 × 24 h".to_owned()),
        ],
    }
}

/// SPEC §3.5 `GET /admin/apps/{client_id}`: every setting, the branding
/// beside the email preview, the secret and deletion.
pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    postern_web::extract::AppQuery(q): postern_web::extract::AppQuery<AppQuery>,
) -> Result<Response> {
    let app = admin::apps::app(&state, &ctx.who, &client_id).await?;
    let mut frame = ctx.frame("/admin/apps");
    frame.notice = ctx.notice.as_deref().map(|n| match n {
        "test-email" => ctx
            .a
            .test_email_sent
            .replace("{email}", &ctx.viewer.live.user.email),
        _ => ctx.a.saved.to_owned(),
    });
    let draft = if q.preview.is_some() {
        q.draft
    } else {
        PreviewQuery {
            preview_locale: q.draft.preview_locale,
            ..PreviewQuery::default()
        }
    };
    let page = app_page(&ctx, frame, &app, &draft);
    Ok(super::allow_preview_frames(ctx.render(&page)))
}

/// A service's refusal of a form's input, said on the page it came from
/// ("Not saved: redirect_uris: …"); other errors stay errors.
fn form_problem(a: &AdminStrings, e: postern_auth::AuthError) -> Result<String> {
    match e {
        postern_auth::AuthError::InvalidRequest(reason) => Ok(postern_web::i18n::fill(
            a.not_saved,
            &[("reason", &reason.to_string())],
        )),
        other => Err(other.into()),
    }
}

/// The new-app form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// One per line.
    pub redirect_uris: Option<String>,
    /// "yes": a public client.
    pub public: Option<String>,
}

/// SPEC §3.5 `POST /admin/apps` (administrators): creates the app and
/// shows its secret once.
pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    AppForm(form): AppForm<CreateForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let input = json!({
        "name": form.name.as_deref().unwrap_or_default().trim(),
        "redirect_uris": split_lines(form.redirect_uris.as_deref()),
        "public": form.public.as_deref() == Some("yes"),
    });
    let created = match admin::AppCreate::from_json(input) {
        Ok(input) => admin::apps::create(&state, &ctx.who, input).await,
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let mut frame = ctx.frame("/admin/apps");
            frame.error = Some(form_problem(ctx.a, e)?);
            let name = form.name.unwrap_or_default();
            let uris = form.redirect_uris.unwrap_or_default();
            return apps_page(&state, ctx, frame, name, uris).await;
        }
    };
    let Some(secret) = created.client_secret else {
        return Ok(ctx.done(
            &state,
            &format!("/admin/apps/{}", created.app.client_id),
            "saved",
        ));
    };
    let page = SecretPage {
        t: ctx.t,
        a: ctx.a,
        frame: ctx.frame("/admin/apps"),
        app_name: created.app.name,
        client_id: created.app.client_id,
        secret,
    };
    Ok(ctx.render(&page))
}

/// A new client secret, shown once.
#[derive(Template)]
#[template(path = "admin/secret.html")]
pub struct SecretPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The app's name.
    pub app_name: String,
    /// Its client id.
    pub client_id: String,
    /// The secret.
    pub secret: String,
}

/// Applies `patch` to the app through the API's update; on bad input the
/// app page again, with the form's problem and `draft` in the branding form.
async fn save(
    state: &AppState,
    ctx: Ctx,
    client_id: &str,
    patch: Value,
    draft: &PreviewQuery,
) -> Result<Response> {
    let done = match admin::apps::from_json::<admin::AppPatch>(patch) {
        Ok(patch) => admin::apps::update(state, &ctx.who, client_id, patch).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => {
            let mut to = format!("/admin/apps/{client_id}");
            if let Some(l) = &draft.preview_locale {
                to.push_str(&format!(
                    "?preview_locale={}",
                    url::form_urlencoded::byte_serialize(l.as_bytes()).collect::<String>()
                ));
            }
            Ok(ctx.done(state, &to, "saved"))
        }
        Err(e) => {
            let app = admin::apps::app(state, &ctx.who, client_id).await?;
            let mut frame = ctx.frame("/admin/apps");
            frame.error = Some(form_problem(ctx.a, e)?);
            let page = app_page(&ctx, frame, &app, draft);
            Ok(super::allow_preview_frames(
                ctx.render_with(StatusCode::BAD_REQUEST, &page),
            ))
        }
    }
}

/// SPEC §3.5 `POST /admin/apps/{client_id}/settings`: the settings form,
/// as a PATCH of the API.
pub async fn save_settings(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppForm(form): AppForm<SettingsForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let patch = settings_patch(&form, ctx.who.is_admin());
    save(&state, ctx, &client_id, patch, &PreviewQuery::default()).await
}

/// SPEC §3.5 `POST /admin/apps/{client_id}/branding`: the branding form.
pub async fn save_branding(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppForm(form): AppForm<BrandingForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let patch = branding_patch(&form.fields);
    save(&state, ctx, &client_id, patch, &form.fields).await
}

/// The test-email form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TestEmailForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// Where to.
    pub to: Option<String>,
    /// In which language.
    pub locale: Option<String>,
}

/// SPEC §3.5 `POST /admin/apps/{client_id}/test-email`: the preview,
/// through the outbox.
pub async fn test_email(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppForm(form): AppForm<TestEmailForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let input = json!({
        "to": form.to.as_deref().unwrap_or_default().trim(),
        "locale": form.locale.as_deref().filter(|l| !l.is_empty()),
    });
    let input: admin::apps::TestEmail = admin::apps::from_json(input)?;
    admin::apps::test_email(&state, &ctx.who, &client_id, input).await?;
    Ok(ctx.done(&state, &format!("/admin/apps/{client_id}"), "test-email"))
}

/// The forms of a destructive action: `confirmed=yes` once asked.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ConfirmForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// "yes" from the confirmation page.
    pub confirmed: Option<String>,
    /// The old secret's grace (`1h`, `24h`, `7d`; empty: none).
    pub previous_valid_for: Option<String>,
}

/// SPEC §3.5 `POST /admin/apps/{client_id}/secret`: after confirmation, a
/// new secret shown once; the old one keeps working for the grace chosen.
pub async fn rotate_secret(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppForm(form): AppForm<ConfirmForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let app = admin::apps::app(&state, &ctx.who, &client_id).await?;
    let grace = form.previous_valid_for.clone().unwrap_or_default();
    if form.confirmed.as_deref() != Some("yes") {
        let question =
            postern_web::i18n::fill(ctx.a.confirm_rotate_secret, &[("app", app.display_name())]);
        let back = format!("/admin/apps/{client_id}");
        return Ok(ctx.confirm(
            "/admin/apps",
            question,
            format!("{back}/secret"),
            vec![("previous_valid_for".to_owned(), grace)],
            back,
        ));
    }
    let input = if grace.is_empty() {
        json!({})
    } else {
        json!({ "previous_valid_for": grace })
    };
    let input: admin::SecretRotation = admin::apps::from_json(input)?;
    let rotated = admin::apps::rotate_secret(&state, &ctx.who, &client_id, input).await?;
    let page = SecretPage {
        t: ctx.t,
        a: ctx.a,
        frame: ctx.frame("/admin/apps"),
        app_name: app.name,
        client_id: rotated.client_id,
        secret: rotated.client_secret,
    };
    Ok(ctx.render(&page))
}

/// SPEC §3.5 `POST /admin/apps/{client_id}/delete`: after confirmation,
/// deletes the app (its sessions, grants and refresh tokens end).
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(client_id): AppPath<String>,
    AppForm(form): AppForm<ConfirmForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let app = admin::apps::app(&state, &ctx.who, &client_id).await?;
    if form.confirmed.as_deref() != Some("yes") {
        let question =
            postern_web::i18n::fill(ctx.a.confirm_delete_app, &[("app", app.display_name())]);
        return Ok(ctx.confirm(
            "/admin/apps",
            question,
            format!("/admin/apps/{client_id}/delete"),
            Vec::new(),
            format!("/admin/apps/{client_id}"),
        ));
    }
    admin::apps::delete(&state, &ctx.who, &client_id).await?;
    Ok(ctx.done(&state, "/admin/apps", "app-deleted"))
}
