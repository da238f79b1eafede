//! The error page: what happened in plain words, in the person's language
//! and the app's look, with a way forward (for a dead link, one click sends
//! a new one). Rendered from the error alone: never a database lookup.

use postern_auth::explain::{explain, Failure};

use super::*;

/// The one-click "Send a new link" of a dead link's page: a form posting
/// to `/login` with the original destination and address.
#[derive(Debug, Clone)]
pub struct ResendForm {
    /// The authorization parameters of the dead request.
    pub hidden: Vec<(String, String)>,
    /// The address the new link goes to.
    pub email: String,
    /// This browser's CSRF token.
    pub csrf_token: String,
}

/// An error, with a way forward when there is one.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The app of the flow that failed (empty on Postern's own pages).
    pub brand: Brand,
    /// Heading.
    pub title: String,
    /// Explanation.
    pub message: String,
    /// A second sentence, HTML (it may hold a `<time>`).
    pub more: Option<String>,
    /// The request's own (English) explanation, for bad input.
    pub detail: Option<String>,
    /// "Reference: …" of an unexpected failure.
    pub reference: Option<String>,
    /// One click to a new link, when the way forward is the email form.
    pub resend: Option<ResendForm>,
    /// Its button.
    pub resend_label: &'static str,
    /// A way forward (a link).
    pub retry: Option<String>,
    /// Its label.
    pub retry_label: &'static str,
    /// A "Back" button (shown by the script) when there is no other way.
    pub back: bool,
}

/// The hidden fields and the address of a way forward to `/login` (the
/// query of [`crate::signin::retry_url`]), for a one-click resend form: the
/// sign-in service reads them back ([`postern_auth::signin::resend_fields`]).
pub(crate) fn login_form_fields(
    config: &crate::WebConfig,
    retry: &str,
) -> Option<(Vec<(String, String)>, String)> {
    postern_auth::signin::resend_fields(&config.public_url, retry)
}

/// Whether the page of `err` offers a one-click resend form (and so needs
/// this browser's CSRF token).
pub fn offers_resend(config: &crate::WebConfig, err: &RenderedError) -> bool {
    err.token_problem.is_some()
        && err
            .retry
            .as_deref()
            .is_some_and(|r| login_form_fields(config, r).is_some())
}

/// Where an error page comes from: what the middleware knows besides the
/// error itself.
pub struct ErrorContext<'a> {
    /// Settings (the public URL).
    pub config: &'a crate::WebConfig,
    /// The app of the flow, dressed for the page.
    pub brand: Brand,
    /// This browser's CSRF token, when the page has a resend form.
    pub csrf_token: Option<String>,
    /// The address of a GET request, to try a failed one again.
    pub again: Option<String>,
}

/// The HTML page for an error rendered as JSON by [`crate::AppError`], in
/// the language `t`. Each page says what happened in plain words and offers
/// a way forward that keeps the original destination where there is one:
/// for a dead link, one click sends a new one.
pub fn error_page(t: &'static Strings, cx: ErrorContext<'_>, err: &RenderedError) -> Response {
    // A dead link: one click sends a new one to the same address and
    // destination; the link to the form stays for another address.
    let resend = match (&cx.csrf_token, err.retry.as_deref()) {
        (Some(csrf), Some(r)) if err.token_problem.is_some() => login_form_fields(cx.config, r)
            .map(|(hidden, email)| ResendForm {
                hidden,
                email,
                csrf_token: csrf.clone(),
            }),
        _ => None,
    };
    let live_email = err.hint.as_ref().map(
        |ErrorHint::LiveEmail {
             check_url,
             expires_at,
         }| {
            postern_auth::signin::LiveEmail {
                check_url: check_url.clone(),
                expires_at: *expires_at,
            }
        },
    );
    let page = explain(
        t,
        &Failure {
            code: err.body.error,
            description: &err.body.error_description,
            token_problem: err.token_problem,
            retry: err.retry.as_deref(),
            retry_after: err.retry_after,
            live_email: live_email.as_ref(),
            again: cx.again.as_deref(),
            reference: err.reference.as_deref(),
            resend: resend.is_some(),
        },
    );
    render(&ErrorPage {
        t,
        brand: cx.brand,
        title: page.title.to_owned(),
        message: page.message,
        more: page.more,
        detail: page.detail,
        reference: page.reference,
        resend,
        resend_label: page.resend_label,
        retry: page.retry,
        retry_label: page.retry_label,
        back: page.back,
    })
}
