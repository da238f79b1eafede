//! `/admin/apps`: the apps list, an app's page with every setting, its
//! branding beside a live preview of its email, secret rotation and
//! deletion.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use postern_auth::admin;
use postern_core::App;
use serde_json::{json, Map, Value};

use super::dashboard::PreviewQuery;
use super::{Ctx, Frame};
use crate::error::Result;
use crate::extract::{AppForm, AppPath};
use crate::i18n::admin::AdminStrings;
use crate::i18n::Strings;
use crate::AppState;

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

/// The branding form's values.
#[derive(Debug, Default)]
pub struct BrandView {
    /// Display name.
    pub name: String,
    /// `#rrggbb` or empty.
    pub color: String,
    /// The colour picker's value (Postern's blue when none).
    pub color_or_default: String,
    /// https logo.
    pub logo_url: String,
    /// Sender name.
    pub sender_name: String,
    /// The note.
    pub email_note: String,
}

/// A `<select>` of the settings form.
pub struct SelectView {
    /// Field name.
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// (value, words).
    pub options: Vec<(&'static str, &'static str)>,
    /// The value chosen.
    pub value: String,
}

/// The settings form's values, as text.
pub struct SettingsView {
    /// One per line.
    pub redirect_uris: String,
    /// One per line.
    pub post_logout_redirect_uris: String,
    /// Or empty.
    pub initiate_login_uri: String,
    /// One per line.
    pub owners: String,
    /// "15m".
    pub link_ttl: String,
    /// "7d" or empty.
    pub session_max_age: String,
    /// One per line.
    pub allowed_domains: String,
    /// Per hour.
    pub link_requests_per_hour: String,
    /// Sign-up open.
    pub signup: bool,
    /// IP binding.
    pub bind_ip_range: bool,
    /// Address in tokens.
    pub token_email: bool,
    /// Device policy, subject type, locale, consent, algorithm.
    pub selects: Vec<SelectView>,
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

fn duration(seconds: i64) -> String {
    postern_core::duration::format_duration(seconds)
}

fn lines(v: &[String]) -> String {
    v.join("\n")
}

/// The branding form filled from the app.
pub fn brand_view(app: &App) -> BrandView {
    let b = &app.settings.branding;
    let color = b.color.clone().unwrap_or_default();
    BrandView {
        name: b.name.clone().unwrap_or_default(),
        color_or_default: if color.is_empty() {
            "#2563eb".to_owned()
        } else {
            color.to_ascii_lowercase()
        },
        color,
        logo_url: b.logo_url.clone().unwrap_or_default(),
        sender_name: b.sender_name.clone().unwrap_or_default(),
        email_note: b.email_note.clone().unwrap_or_default(),
    }
}

/// The settings form filled from the app.
pub fn settings_view(a: &'static AdminStrings, app: &App) -> SettingsView {
    let s = &app.settings;
    let str_of = |v: Value| v.as_str().unwrap_or_default().to_owned();
    SettingsView {
        redirect_uris: lines(&s.redirect_uris),
        post_logout_redirect_uris: lines(&s.post_logout_redirect_uris),
        initiate_login_uri: s.initiate_login_uri.clone().unwrap_or_default(),
        owners: lines(&s.owners),
        link_ttl: duration(s.link_ttl),
        session_max_age: s.session_max_age.map(duration).unwrap_or_default(),
        allowed_domains: lines(&s.allowed_domains),
        link_requests_per_hour: s.link_requests_per_hour.to_string(),
        signup: s.signup_allowed,
        bind_ip_range: s.bind_ip_range,
        token_email: s.token_email,
        selects: vec![
            SelectView {
                name: "device_policy",
                label: a.field_device_policy,
                options: vec![
                    ("any", "any"),
                    ("same_browser", "same_browser"),
                    ("remote", "remote"),
                ],
                value: str_of(json!(s.device_policy)),
            },
            SelectView {
                name: "passkeys",
                label: a.field_passkeys,
                options: vec![
                    ("off", "off"),
                    ("optional", "optional"),
                    (
                        "required_after_first_sign_in",
                        "required_after_first_sign_in",
                    ),
                ],
                value: str_of(json!(s.passkeys)),
            },
            SelectView {
                name: "consent",
                label: a.field_consent,
                options: vec![("", "—"), ("required", "required"), ("skip", "skip")],
                value: s.consent.map(|c| str_of(json!(c))).unwrap_or_default(),
            },
            SelectView {
                name: "subject_type",
                label: a.field_subject_type,
                options: vec![("pairwise", "pairwise"), ("public", "public")],
                value: str_of(json!(s.subject_type)),
            },
            SelectView {
                name: "id_token_alg",
                label: a.field_id_token_alg,
                options: vec![("RS256", "RS256"), ("EdDSA", "EdDSA"), ("ES256", "ES256")],
                value: str_of(json!(s.id_token_alg)),
            },
            SelectView {
                name: "locale",
                label: a.field_locale,
                options: LOCALES.to_vec(),
                value: s.locale.clone(),
            },
        ],
    }
}

/// The languages Postern speaks, in their own words.
const LOCALES: [(&str, &str); 3] = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")];

/// The form's unsaved branding over `app`'s, for the preview.
pub fn apply_branding(app: &mut App, q: &PreviewQuery) {
    let b = &mut app.settings.branding;
    let set = |field: &mut Option<String>, v: &Option<String>| {
        if let Some(v) = v {
            let v = v.trim();
            *field = (!v.is_empty()).then(|| v.to_owned());
        }
    };
    set(&mut b.name, &q.brand_name);
    set(&mut b.color, &q.color);
    set(&mut b.logo_url, &q.logo_url);
    set(&mut b.sender_name, &q.sender_name);
    set(&mut b.email_note, &q.email_note);
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
    crate::extract::AppQuery(q): crate::extract::AppQuery<AppQuery>,
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
        postern_auth::AuthError::InvalidRequest(reason) => Ok(crate::i18n::fill(
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
            crate::i18n::fill(ctx.a.confirm_rotate_secret, &[("app", app.display_name())]);
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
        let question = crate::i18n::fill(ctx.a.confirm_delete_app, &[("app", app.display_name())]);
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

/// A text area's lines, trimmed, empty ones dropped.
pub fn split_lines(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The settings form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SettingsForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<String>,
    pub redirect_uris: Option<String>,
    pub post_logout_redirect_uris: Option<String>,
    pub initiate_login_uri: Option<String>,
    pub owners: Option<String>,
    pub link_ttl: Option<String>,
    pub session_max_age: Option<String>,
    pub device_policy: Option<String>,
    pub passkeys: Option<String>,
    pub consent: Option<String>,
    pub subject_type: Option<String>,
    pub id_token_alg: Option<String>,
    pub locale: Option<String>,
    pub link_requests_per_hour: Option<String>,
    pub allowed_domains: Option<String>,
    pub signup: Option<String>,
    pub bind_ip_range: Option<String>,
    pub token_email: Option<String>,
}

fn opt_text(v: Option<&str>) -> Value {
    match v.map(str::trim) {
        Some(s) if !s.is_empty() => Value::String(s.to_owned()),
        _ => Value::Null,
    }
}

/// The settings form as the SPEC §3.5 app shape, for the same update the
/// API's PATCH makes. An owner's form leaves `owners` out (only
/// administrators change owners). Checkboxes absent from a form are off.
pub fn settings_patch(form: &SettingsForm, with_owners: bool) -> Value {
    let on = |v: &Option<String>| v.as_deref() == Some("yes");
    let rate = form
        .link_requests_per_hour
        .as_deref()
        .map(str::trim)
        .and_then(|r| r.parse::<u64>().ok().map(Value::from))
        .unwrap_or_else(|| opt_text(form.link_requests_per_hour.as_deref()));
    let mut patch = json!({
        "name": form.name.as_deref().unwrap_or_default().trim(),
        "enabled": on(&form.enabled),
        "redirect_uris": split_lines(form.redirect_uris.as_deref()),
        "post_logout_redirect_uris": split_lines(form.post_logout_redirect_uris.as_deref()),
        "initiate_login_uri": opt_text(form.initiate_login_uri.as_deref()),
        "settings": {
            "link_ttl": opt_text(form.link_ttl.as_deref()),
            "session_max_age": opt_text(form.session_max_age.as_deref()),
            "device_policy": opt_text(form.device_policy.as_deref()),
            "passkeys": opt_text(form.passkeys.as_deref()),
            "signup": on(&form.signup),
            "allowed_domains": split_lines(form.allowed_domains.as_deref()),
            "bind_ip_range": on(&form.bind_ip_range),
            "subject_type": opt_text(form.subject_type.as_deref()),
            "locale": opt_text(form.locale.as_deref()),
            "consent": opt_text(form.consent.as_deref()),
            "id_token_alg": opt_text(form.id_token_alg.as_deref()),
            "token_email": on(&form.token_email),
            "link_requests_per_hour": rate,
        },
    });
    if with_owners {
        patch["owners"] = json!(split_lines(form.owners.as_deref()));
    }
    patch
}

/// The branding form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BrandingForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// The fields the preview follows.
    #[serde(flatten)]
    pub fields: PreviewQuery,
}

/// The branding form as the SPEC §3.5 app shape: an empty field clears,
/// an absent one stays as saved.
pub fn branding_patch(form: &PreviewQuery) -> Value {
    let mut b = Map::new();
    for (key, v) in [
        ("name", &form.brand_name),
        ("color", &form.color),
        ("logo_url", &form.logo_url),
        ("sender_name", &form.sender_name),
        ("email_note", &form.email_note),
    ] {
        if let Some(v) = v {
            b.insert(key.to_owned(), opt_text(Some(v)));
        }
    }
    json!({ "branding": b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_form_becomes_the_apis_app_shape() {
        let form = SettingsForm {
            name: Some(" Notes ".into()),
            enabled: Some("yes".into()),
            redirect_uris: Some("https://a.example/cb\r\n\r\n  https://b.example/cb \n".into()),
            owners: Some("o@example.com".into()),
            link_ttl: Some("15m".into()),
            session_max_age: Some(" ".into()),
            link_requests_per_hour: Some("60".into()),
            consent: Some(String::new()),
            ..SettingsForm::default()
        };
        let p = settings_patch(&form, true);
        assert_eq!(p["name"], "Notes");
        assert_eq!(p["enabled"], true);
        assert_eq!(
            p["redirect_uris"],
            json!(["https://a.example/cb", "https://b.example/cb"])
        );
        assert_eq!(p["owners"], json!(["o@example.com"]));
        assert_eq!(p["settings"]["link_ttl"], "15m");
        assert_eq!(p["settings"]["session_max_age"], Value::Null);
        assert_eq!(p["settings"]["consent"], Value::Null);
        assert_eq!(p["settings"]["link_requests_per_hour"], 60);
        assert_eq!(p["settings"]["signup"], false, "an unticked box is off");
        // An owner's form never carries owners.
        assert!(settings_patch(&form, false).get("owners").is_none());
    }

    #[test]
    fn an_empty_branding_field_clears_it() {
        let p = branding_patch(&PreviewQuery {
            color: Some("#0a7e3c".into()),
            brand_name: Some("  ".into()),
            ..PreviewQuery::default()
        });
        assert_eq!(p["branding"]["color"], "#0a7e3c");
        assert_eq!(p["branding"]["name"], Value::Null);
        assert!(p["branding"].get("email_note").is_none(), "absent: kept");
    }
}
