//! Server-rendered pages: one askama template and one struct per page,
//! autoescaped. Later work translates them; today they are English.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::error::{RenderedError, TokenProblem};
use crate::AppState;

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

/// The email form of `/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// App display name.
    pub app_name: String,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// Authorization parameters carried through the form.
    pub hidden: Vec<(&'static str, String)>,
    /// Pre-filled address (`login_hint`).
    pub email: String,
}

/// "Check your email", with code entry.
#[derive(Template)]
#[template(path = "check.html")]
pub struct CheckPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// App display name.
    pub app_name: String,
    /// Where the email went.
    pub email: String,
    /// The login request.
    pub login_id: String,
    /// CSRF token for the forms.
    pub csrf_token: String,
    /// "15 minutes".
    pub expires_in: String,
}

/// The page another browser sees when it opens a link (SPEC §3.1).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// App display name.
    pub app_name: String,
    /// Address signing in.
    pub email: String,
    /// The asking browser, briefly.
    pub asked_from: String,
    /// When it asked.
    pub asked_at: String,
    /// `device_policy = same_browser`: no button, use the code.
    pub same_browser_only: bool,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// The link token, posted back.
    pub token: String,
}

/// The consent screen.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// App display name.
    pub app_name: String,
    /// HTTPS logo.
    pub logo_url: Option<String>,
    /// What the app will see, one line per scope.
    pub items: Vec<&'static str>,
    /// The login request being finished.
    pub login_id: String,
    /// CSRF token for the form.
    pub csrf_token: String,
}

/// An error, with a way forward when there is one.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// Heading.
    pub title: String,
    /// Explanation.
    pub message: String,
    /// A way forward.
    pub retry: Option<String>,
    /// Its label.
    pub retry_label: &'static str,
}

/// One email in the development inbox.
pub struct DevMessage {
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// When it was delivered.
    pub received_at: String,
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
    /// `lang` attribute.
    pub lang: &'static str,
    /// Newest first.
    pub messages: Vec<DevMessage>,
}

/// What an app will see for each scope, for the consent screen.
pub fn scope_items(scope: &postern_core::oauth::Scope) -> Vec<&'static str> {
    scope
        .iter()
        .filter_map(|s| match s {
            "openid" => Some("That you signed in, with an identifier for you at this app"),
            "email" => Some("Your email address"),
            "profile" => Some("Your basic profile"),
            "offline_access" => Some("Access while you are away (it stays signed in)"),
            _ => None,
        })
        .collect()
}

/// The HTML page for an error rendered as JSON by [`crate::AppError`].
pub fn error_page(_state: &AppState, err: &RenderedError) -> Response {
    let (title, message) = match err.token_problem {
        Some(TokenProblem::Expired) => (
            "This link has expired",
            "Sign-in links only work for a short time. Ask for a new one: it takes one click.",
        ),
        Some(TokenProblem::Used) => (
            "This link was already used",
            "Each sign-in link and code works once. If it wasn't you who used it, ask for a new link.",
        ),
        Some(TokenProblem::Unknown) => (
            "This link is not valid",
            "The sign-in link is incomplete or not valid. Copy the whole link from the email, or ask for a new one.",
        ),
        None => match err.body.error {
            "too_many_requests" => ("Please wait a moment", err.body.error_description.as_str()),
            "invalid_code" => ("That code is not right", "Check the 6-digit code in the email and try again."),
            "not_found" => ("Page not found", "There is nothing at this address."),
            "temporarily_unavailable" | "server_error" => {
                ("Something went wrong", err.body.error_description.as_str())
            }
            _ => ("Something is not right", err.body.error_description.as_str()),
        },
    };
    let retry_label = match (err.token_problem, err.body.error) {
        (Some(_), _) => "Send a new link",
        (None, "invalid_code") => "Try again",
        _ => "Start again",
    };
    render(&ErrorPage {
        lang: "en",
        title: title.to_owned(),
        message: message.to_owned(),
        retry: err.retry.clone(),
        retry_label,
    })
}

/// The account chooser (`prompt=select_account`).
#[derive(Template)]
#[template(path = "chooser.html")]
pub struct ChooserPage {
    /// `lang` attribute.
    pub lang: &'static str,
    /// App display name.
    pub app_name: String,
    /// The signed-in account.
    pub email: String,
    /// Authorization parameters, posted back to `/authorize`.
    pub hidden: Vec<(&'static str, String)>,
    /// CSRF token for the form.
    pub csrf_token: String,
    /// `/login` for the same destination.
    pub other_account: String,
}

/// After `/logout` without a redirect.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    /// `lang` attribute.
    pub lang: &'static str,
}
