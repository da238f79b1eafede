//! Server-rendered pages: one askama template and one struct per page,
//! autoescaped, every word from the page catalogue ([`crate::i18n`]) of the
//! language the person reads (SPEC §3.3). No page carries inline style or
//! script: an app's colour comes from `/static/brand/{client_id}.css` and the
//! one script, `/static/postern.js`, only enhances pages that work without it.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use postern_core::App;

use crate::error::{RenderedError, TokenProblem};
use crate::i18n::{fill, Strings};

/// Renders a template into a 200 HTML response (500 if rendering fails).
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// What a page shows of the app it signs in to: name, logo, accent colour.
#[derive(Debug, Clone, Default)]
pub struct Brand {
    /// Display name (empty on pages that belong to no app).
    pub name: String,
    /// HTTPS logo (validated when the app was saved).
    pub logo_url: Option<String>,
    /// The app's stylesheet (`/static/brand/{client_id}.css?v=…`), when it
    /// has a colour.
    pub css: Option<String>,
}

impl Brand {
    /// The branding of `app`. Its logo is shown only when Postern itself
    /// serves it (same origin as the public URL): SPEC §3.3 allows no
    /// third-party images on any page. Emails show any https logo.
    pub fn of(app: &App, config: &crate::WebConfig) -> Self {
        let b = &app.settings.branding;
        // Client ids are URL-safe tokens; one that is not gets no stylesheet
        // rather than a path that needs escaping.
        let safe_id = !app.client_id.is_empty()
            && app
                .client_id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        let css = match (&b.color, safe_id) {
            (Some(color), true) if crate::routes::assets::valid_color(color) => Some(format!(
                "/static/brand/{}.css?v={}",
                app.client_id,
                color.trim_start_matches('#').to_ascii_lowercase()
            )),
            _ => None,
        };
        Brand {
            name: app.display_name().to_owned(),
            logo_url: b.logo_url.clone().filter(|u| {
                url::Url::parse(u).is_ok_and(|u| u.origin() == config.public_url.origin())
            }),
            css,
        }
    }

    /// `template` with `{app}` filled with this app's name.
    pub fn fill(&self, template: &str) -> String {
        fill(template, &[("app", &self.name)])
    }
}

/// The email form of `/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// Authorization parameters carried through the form.
    pub hidden: Vec<(&'static str, String)>,
    /// Pre-filled address (`login_hint`).
    pub email: String,
}

/// "Check your email", with code entry, "send again" and, under
/// `device_policy = remote`, the number to type on the other device.
#[derive(Template)]
#[template(path = "check.html")]
pub struct CheckPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// Where the email went.
    pub email: String,
    /// The login request.
    pub login_id: String,
    /// CSRF token for the forms.
    pub csrf_token: String,
    /// "The link and the code expire in 15 minutes."
    pub expires: String,
    /// Seconds until "send again" is offered (the script counts down; without
    /// it the button is simply there).
    pub resend_wait: i64,
    /// `/login` for the same destination, to type another address.
    pub another_address: String,
    /// `device_policy = remote`: the two-digit number.
    pub remote_number: Option<String>,
    /// `/login/status?id=…`, polled by the script under `remote`.
    pub status_url: String,
}

/// How the confirmation page lets another browser go on (SPEC §3.1
/// `device_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmMode {
    /// `any`: one button signs in this browser.
    Continue,
    /// `same_browser`: use the code on the asking device.
    SameBrowser,
    /// `remote`: type the number the asking device shows.
    Remote,
}

/// The page another browser sees when it opens a link (SPEC §3.1).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// Address signing in.
    pub email: String,
    /// The asking browser, briefly ("Firefox on Linux").
    pub asked_from: String,
    /// When it asked, in words.
    pub asked_at: String,
    /// What this page offers.
    pub mode: ConfirmMode,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// The link token, posted back (empty where nothing may be posted).
    pub token: String,
}

impl ConfirmPage {
    /// Whether the page carries the one-button form.
    pub fn continues(&self) -> bool {
        self.mode == ConfirmMode::Continue
    }
    /// Whether the page asks for the asking device's number.
    pub fn remote(&self) -> bool {
        self.mode == ConfirmMode::Remote
    }
}

/// After the right number under `device_policy = remote`.
#[derive(Template)]
#[template(path = "approved.html")]
pub struct ApprovedPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
}

/// The consent screen.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// What the app will see, one line per scope.
    pub items: Vec<&'static str>,
    /// The login request being finished (after a fresh sign-in), or empty.
    pub login_id: String,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// Binds the answer to the session that may give it
    /// (`signin::consent_token`), with `login_id`.
    pub consent_token: String,
    /// For someone already signed in: the sealed authorization request
    /// (`oidc::PendingConsent`) instead of a login request, or empty.
    pub request: String,
}

/// An error, with a way forward when there is one.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The page's language.
    pub t: &'static Strings,
    /// No app: errors are Postern's own pages.
    pub brand: Brand,
    /// Heading.
    pub title: String,
    /// Explanation.
    pub message: String,
    /// The request's own (English) explanation, for bad input.
    pub detail: Option<String>,
    /// "Reference: …" of an unexpected failure.
    pub reference: Option<String>,
    /// A way forward.
    pub retry: Option<String>,
    /// Its label.
    pub retry_label: &'static str,
}

/// One email in the development inbox.
pub struct DevMessage {
    /// "To … · when".
    pub to_line: String,
    /// Subject.
    pub subject: String,
    /// Text part.
    pub text: String,
    /// The sign-in link in it.
    pub link: Option<String>,
    /// The code in it.
    pub code: Option<String>,
}

/// `/_dev/mail`.
#[derive(Template)]
#[template(path = "dev_mail.html")]
pub struct DevMailPage {
    /// The page's language.
    pub t: &'static Strings,
    /// No app.
    pub brand: Brand,
    /// Newest first.
    pub messages: Vec<DevMessage>,
}

/// What an app will see for each scope, for the consent screen.
pub fn scope_items(t: &'static Strings, scope: &postern_core::oauth::Scope) -> Vec<&'static str> {
    scope
        .iter()
        .filter_map(|s| match s {
            "openid" => Some(t.scope_openid),
            "email" => Some(t.scope_email),
            "profile" => Some(t.scope_profile),
            "offline_access" => Some(t.scope_offline),
            _ => None,
        })
        .collect()
}

/// The HTML page for an error rendered as JSON by [`crate::AppError`], in
/// the language `t`. Each page says what happened in plain words and offers
/// a way forward that keeps the original destination where there is one.
pub fn error_page(t: &'static Strings, err: &RenderedError) -> Response {
    let description = err.body.error_description.as_str();
    let mut detail = None;
    let (title, message) = match err.token_problem {
        Some(TokenProblem::Expired) => (t.expired_title, t.expired_text.to_owned()),
        Some(TokenProblem::Used) => (t.used_title, t.used_text.to_owned()),
        Some(TokenProblem::Unknown) => (t.unknown_title, t.unknown_text.to_owned()),
        Some(TokenProblem::WrongNumber) => (t.wrong_number_title, t.wrong_number_text.to_owned()),
        Some(TokenProblem::Missing) => (t.no_link_title, t.no_link_text.to_owned()),
        None => match err.body.error {
            "too_many_requests" => (
                t.rate_title,
                match err.retry_after {
                    Some(s) => fill(t.rate_text, &[("duration", &t.duration_up(s))]),
                    None => t.rate_text_later.to_owned(),
                },
            ),
            "invalid_code" => (t.invalid_code_title, t.invalid_code_text.to_owned()),
            "invalid_csrf" if err.retry.is_some() => (t.csrf_title, t.csrf_text_retry.to_owned()),
            "invalid_csrf" => (t.csrf_title, t.csrf_text.to_owned()),
            "not_found" => (t.not_found_title, t.not_found_text.to_owned()),
            "temporarily_unavailable" | "server_error" => {
                (t.server_title, t.server_text.to_owned())
            }
            _ => {
                // The SPEC's error descriptions are English sentences about
                // the request itself (a missing field); shown marked as such.
                detail = Some(description.to_owned());
                (t.bad_request_title, t.bad_request_text.to_owned())
            }
        },
    };
    // `/account` starts its own sign-in again: no link to send from here.
    let to_account = err.retry.as_deref() == Some("/account");
    let retry_label = match (err.token_problem, err.body.error) {
        (Some(_), _) if to_account => t.start_again,
        (Some(_), _) => t.send_new_link,
        (None, "invalid_csrf") => t.open_form_again,
        (None, "invalid_code") => t.try_again,
        (None, "too_many_requests") => t.go_back,
        _ => t.start_again,
    };
    render(&ErrorPage {
        t,
        brand: Brand::default(),
        title: title.to_owned(),
        message,
        detail,
        reference: err
            .reference
            .as_ref()
            .map(|r| fill(t.reference, &[("reference", r)])),
        retry: err.retry.clone(),
        retry_label,
    })
}

/// One account on the chooser.
pub struct ChooserAccount {
    /// The session that continues (the `account` field's value).
    pub session_id: String,
    /// Its address.
    pub email: String,
}

/// The account chooser: several accounts signed in on this browser, or
/// `prompt=select_account`. Each account is a submit button named
/// `account` whose value is its session id.
#[derive(Template)]
#[template(path = "chooser.html")]
pub struct ChooserPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// The accounts that may continue, current first.
    pub accounts: Vec<ChooserAccount>,
    /// Authorization parameters, posted back to `/authorize`.
    pub hidden: Vec<(&'static str, String)>,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// `/login` for the same destination.
    pub other_account: String,
}

impl ChooserPage {
    /// "Continue as {email}".
    pub fn continue_as(&self, email: &str) -> String {
        fill(self.t.continue_as, &[("email", email)])
    }
}

/// After `/logout` without a redirect.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    /// The page's language.
    pub t: &'static Strings,
    /// No app.
    pub brand: Brand,
}
