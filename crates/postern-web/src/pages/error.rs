//! The error page: what happened in plain words, in the person's language
//! and the app's look, with a way forward (for a dead link, one click sends
//! a new one). Rendered from the error alone: never a database lookup.

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
/// query of [`crate::signin::retry_url`]), for a one-click resend form.
pub(crate) fn login_form_fields(
    config: &crate::WebConfig,
    retry: &str,
) -> Option<(Vec<(String, String)>, String)> {
    let url = url::Url::parse(retry).ok()?;
    if url.origin() != config.public_url.origin() || url.path() != "/login" {
        return None;
    }
    let mut email = None;
    let mut hidden = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "login_hint" => email = Some(v.into_owned()),
            "client_id"
            | "redirect_uri"
            | "scope"
            | "state"
            | "nonce"
            | "code_challenge"
            | "code_challenge_method"
            | "ui_locales" => hidden.push((k.into_owned(), v.into_owned())),
            _ => {}
        }
    }
    Some((hidden, email?))
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
    let description = err.body.error_description.as_str();
    let mut detail = None;
    let mut more = None;
    let mut retry = err.retry.clone();
    let mut retry_label = None;
    let (title, message): (&str, String) = match err.token_problem {
        Some(problem) => {
            let (title, text) = problem.words(t);
            (title, text.to_owned())
        }
        None => match err.body.error {
            "too_many_requests" => {
                let again_in = err.retry_after.map(|s| t.duration_up(s));
                match &err.hint {
                    Some(ErrorHint::LiveEmail {
                        check_url,
                        expires_at,
                    }) => {
                        retry = Some(check_url.clone());
                        retry_label = Some(t.enter_code);
                        more =
                            again_in.map(|d| escape(&fill(t.rate_again_in, &[("duration", &d)])));
                        let until = moment_html(t, *expires_at, MomentStyle::Clock);
                        let text = escape(t.rate_live_text);
                        (t.rate_live_title, text.replace("{time}", &until))
                    }
                    None => (
                        t.rate_title,
                        escape(&match again_in {
                            Some(d) => fill(t.rate_text, &[("duration", &d)]),
                            None => t.rate_text_later.to_owned(),
                        }),
                    ),
                }
            }
            "invalid_code" => (t.invalid_code_title, t.invalid_code_text.to_owned()),
            "invalid_passkey" => {
                let (title, text) = crate::routes::passkeys::error_words(t, description);
                (title, text.to_owned())
            }
            "invalid_csrf" if err.retry.is_some() => (t.csrf_title, t.csrf_text_retry.to_owned()),
            "invalid_csrf" => (t.csrf_title, t.csrf_text.to_owned()),
            "not_found" => (t.not_found_title, t.not_found_text.to_owned()),
            "temporarily_unavailable" | "server_error" => {
                if retry.is_none() {
                    retry = cx.again.clone();
                    retry_label = Some(t.try_again);
                }
                (t.server_title, t.server_text.to_owned())
            }
            _ => {
                // The SPEC's error descriptions are English sentences about
                // the request itself (a missing field), for the app's
                // developers; shown marked as such.
                detail = Some(description.to_owned());
                (t.bad_request_title, t.bad_request_text.to_owned())
            }
        },
    };
    // Only the rate-limit text is HTML already (it may hold a `<time>`).
    let message = if err.body.error == "too_many_requests" {
        message
    } else {
        escape(&message)
    };
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
    // `/account` starts its own sign-in again: no link to send from here.
    let to_account = err.retry.as_deref() == Some("/account");
    let retry_label = retry_label.unwrap_or(match (err.token_problem, err.body.error) {
        (Some(_), _) if resend.is_some() => t.use_another_address,
        (Some(_), _) if to_account => t.start_again,
        (Some(_), _) => t.send_new_link,
        (None, "invalid_csrf") => t.open_form_again,
        (None, "invalid_code") => t.try_again,
        (None, "too_many_requests") => t.go_back,
        _ => t.start_again,
    });
    let resend_label = match err.token_problem {
        Some(TokenProblem::FinishedElsewhere) => t.sign_in_here_too,
        _ => t.send_new_link,
    };
    let back = retry.is_none() && resend.is_none();
    render(&ErrorPage {
        t,
        brand: cx.brand,
        title: title.to_owned(),
        message,
        more,
        detail,
        reference: err
            .reference
            .as_ref()
            .map(|r| fill(t.reference, &[("reference", r)])),
        resend,
        resend_label,
        retry,
        retry_label,
        back,
    })
}
