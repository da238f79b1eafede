//! Server-rendered pages: one askama template and one struct per page,
//! autoescaped, every word from the page catalogue ([`crate::i18n`]) of the
//! language the person reads (SPEC §3.3). No page carries inline style or
//! script: an app's colour comes from `/static/brand/{client_id}.css` and the
//! one script, `/static/postern.js`, only enhances pages that work without it
//! (local times, countdowns, pasted codes, waiting for a remote approval).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use postern_core::{brand, App};

use crate::error::{ErrorHint, RenderedError};
use crate::i18n::{fill, Strings};

mod error;

pub use error::*;

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

/// Renders a template with another status: a form shown again with its
/// error (400), say.
pub fn render_with(status: StatusCode, page: &impl Template) -> Response {
    let mut res = render(page);
    if res.status().is_success() {
        *res.status_mut() = status;
    }
    res
}

/// The HTML text helpers live in the core ([`postern_core::html`]): pure
/// string functions over the catalogues, re-exported for the pages' paths.
pub use postern_core::html::{address_html, escape, moment_html, with_address, MomentStyle};

/// Template filters.
pub mod filters {
    use askama::filters::Safe;

    /// `{{ email|address }}`: see [`super::address_html`].
    pub fn address(s: impl ToString, _: &dyn askama::Values) -> askama::Result<Safe<String>> {
        Ok(Safe(super::address_html(&s.to_string())))
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
    /// Whether the page opens with the app's name (and logo): for apps that
    /// set any branding, so that every page of their flow, errors too, says
    /// whose it is.
    pub header: bool,
}

impl Brand {
    /// The branding of `app`, on a page in the language of `t`. Its logo is
    /// shown only when Postern itself serves it (same origin as the public
    /// URL): SPEC §3.3 allows no third-party images on any page. Postern's
    /// own account page is "your Postern account" in the page's language.
    pub fn of(app: &App, config: &crate::WebConfig, t: &Strings) -> Self {
        let b = &app.settings.branding;
        let own = app.client_id == postern_auth::account::ACCOUNT_CLIENT_ID;
        let name = if own {
            t.own_account.to_owned()
        } else {
            app.display_name().to_owned()
        };
        Brand {
            name,
            header: !own && (b.name.is_some() || b.logo_url.is_some() || b.color.is_some()),
            logo_url: brand::own_logo(b.logo_url.as_deref(), &config.public_url),
            css: brand::stylesheet_path(&app.client_id, b.color.as_deref()),
        }
    }

    /// `template` with `{app}` filled with this app's name.
    pub fn fill(&self, template: &str) -> String {
        fill(template, &[("app", &self.name)])
    }
}

/// "Did you mean …?" is the core's rule ([`postern_core::typo`]).
pub use postern_core::typo::Suggestion;

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
    /// Pre-filled address (`login_hint`, or what was typed).
    pub email: String,
    /// Why the address was not taken, shown under the field.
    pub error: Option<String>,
    /// "Did you mean …?" for a slip in a common domain (a button that
    /// sends the form with that address).
    pub suggestion: Option<Suggestion>,
    /// "Back" to the account chooser this form was reached from.
    pub back: Option<String>,
    /// "Sign in with a passkey", when the app takes passkeys (issue 15).
    pub passkey: Option<&'static crate::i18n::passkeys::PasskeyStrings>,
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
    /// `/login/check?id=…`: where the script goes once the other device
    /// answered (this page may be the answer to a code form).
    pub check_url: String,
    /// The code as typed, kept after a wrong one.
    pub code: String,
    /// Why the code was not taken, shown under the field.
    pub error: Option<String>,
    /// "New link sent at 10:05." after "Send again" (HTML: a `<time>`).
    pub resent: Option<String>,
    /// "Did you mean …?" when the address looks like a slip.
    pub suggestion: Option<Suggestion>,
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
    /// When it asked (HTML: a `<time>`).
    pub asked_at: String,
    /// What this page offers (SPEC §3.1 `device_policy`): one button
    /// (`any`), the code on the asking device (`same_browser`), or the
    /// asking device's number (`remote`).
    pub mode: postern_auth::signin::OtherDevice,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// The link token, posted back (empty where nothing may be posted).
    pub token: String,
}

impl ConfirmPage {
    /// Whether the page carries the one-button form.
    pub fn continues(&self) -> bool {
        self.mode == postern_auth::signin::OtherDevice::MayContinue
    }
    /// Whether the page asks for the asking device's number.
    pub fn remote(&self) -> bool {
        self.mode == postern_auth::signin::OtherDevice::TypeNumber
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

/// The consent screen: what the app will see, with whom (the address) and
/// where the person goes next (the redirect host).
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app.
    pub brand: Brand,
    /// What the app will see, one line per scope (HTML: the address in the
    /// email line breaks only after `@` and `.`).
    pub items: Vec<String>,
    /// The address that signs in (and, with `email`, is shared).
    pub email: String,
    /// "You will go back to notes.acme.example."
    pub returns_to: String,
    /// `/login` for the same destination: "Not you? Use another account".
    pub other_account: String,
    /// The login request being finished.
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

impl ConsentPage {
    /// "Signed in as {email}" (HTML).
    pub fn signed_in_as(&self) -> String {
        with_address(self.t.signed_in_as, &self.email)
    }

    /// The consent screen's words for `scope`, the address in the email
    /// line ([`postern_core::html::consent_items`]).
    pub fn items(
        t: &'static Strings,
        scope: &postern_core::oauth::Scope,
        email: &str,
    ) -> Vec<String> {
        postern_core::html::consent_items(t, scope, email)
    }
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
    /// `/_dev/mail/{id}.html`: its HTML part, framed in a sandbox.
    pub html_url: String,
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

impl ChooserAccount {
    /// The first letter of the address, upper case, for its round mark.
    pub fn initial(&self) -> String {
        postern_core::html::initial(&self.email)
    }
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
