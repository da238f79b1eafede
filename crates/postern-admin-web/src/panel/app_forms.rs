//! The app page's two forms, settings and branding: the views that fill
//! them from an app, and the patches in the SPEC §3.5 app shape they become
//! (the same update the API's PATCH makes, so both validate alike).

use postern_core::App;
use serde_json::{json, Map, Value};

use super::dashboard::PreviewQuery;
use postern_web::i18n::admin::AdminStrings;

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
                    ("any", a.opt_device_any),
                    ("same_browser", a.opt_device_same_browser),
                    ("remote", a.opt_device_remote),
                ],
                value: str_of(json!(s.device_policy)),
            },
            SelectView {
                name: "passkeys",
                label: a.field_passkeys,
                options: vec![
                    ("off", a.opt_passkeys_off),
                    ("optional", a.opt_passkeys_optional),
                    ("required_after_first_sign_in", a.opt_passkeys_required),
                ],
                value: str_of(json!(s.passkeys)),
            },
            SelectView {
                name: "consent",
                label: a.field_consent,
                options: vec![
                    ("", a.opt_consent_default),
                    ("required", a.opt_consent_required),
                    ("skip", a.opt_consent_skip),
                ],
                value: s.consent.map(|c| str_of(json!(c))).unwrap_or_default(),
            },
            SelectView {
                name: "subject_type",
                label: a.field_subject_type,
                options: vec![
                    ("pairwise", a.opt_subject_pairwise),
                    ("public", a.opt_subject_public),
                ],
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
pub const LOCALES: [(&str, &str); 3] = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")];

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
    fn the_settings_choices_are_worded_in_each_language_and_send_the_spec_values() {
        let app = App {
            client_id: "notes".into(),
            name: "Notes".into(),
            settings: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        let worded = ["device_policy", "passkeys", "consent", "subject_type"];
        let mut by_lang = Vec::new();
        for lang in ["en", "de", "fr"] {
            let view = settings_view(postern_web::i18n::admin::strings(lang), &app);
            let mut words = Vec::new();
            for select in view.selects.iter().filter(|s| worded.contains(&s.name)) {
                for (value, label) in &select.options {
                    assert!(!label.is_empty(), "{lang} {}", select.name);
                    assert_ne!(value, label, "{lang}: {} is worded", select.name);
                    words.push(*label);
                }
                let values: Vec<&str> = select.options.iter().map(|o| o.0).collect();
                let spec: &[&str] = match select.name {
                    "device_policy" => &["any", "same_browser", "remote"],
                    "passkeys" => &["off", "optional", "required_after_first_sign_in"],
                    "consent" => &["", "required", "skip"],
                    _ => &["pairwise", "public"],
                };
                assert_eq!(values, spec, "{lang}: the form sends SPEC §3.5's values");
            }
            assert_eq!(words.len(), 11, "{lang}: every worded select is there");
            by_lang.push(words);
        }
        assert_ne!(by_lang[0], by_lang[1], "German has its own words");
        assert_ne!(by_lang[0], by_lang[2], "French has its own words");
    }

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
