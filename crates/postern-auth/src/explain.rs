//! What an error's page tells a person (SPEC §3.3): what happened in plain
//! words, in their language, and the way forward (for a dead link, one
//! click sends a new one). Chosen from the error alone — its SPEC code,
//! its link problem, the way forward its handler named — never a database
//! lookup; the web crate renders the outcome.

use postern_core::html::{escape, moment_html, MomentStyle};
use postern_core::i18n::{fill, Strings};

use crate::signin::LiveEmail;
use crate::TokenProblem;

/// An error, as much of it as its page needs.
#[derive(Debug, Clone, Default)]
pub struct Failure<'a> {
    /// The SPEC error code (`too_many_requests`, `invalid_csrf`, …).
    pub code: &'a str,
    /// Its `error_description` (English, for developers).
    pub description: &'a str,
    /// What is wrong with a link, login id or form token.
    pub token_problem: Option<TokenProblem>,
    /// The way forward the handler named (a URL), if any.
    pub retry: Option<&'a str>,
    /// Seconds until a rate limit lets a request through.
    pub retry_after: Option<i64>,
    /// A rate limit stopped a new email, but this one still works.
    pub live_email: Option<&'a LiveEmail>,
    /// The address of the failed request, when trying it again may help (a
    /// `GET`).
    pub again: Option<&'a str>,
    /// The reference id logged with an unexpected failure.
    pub reference: Option<&'a str>,
    /// Whether the page carries the one-click "send a new link" form.
    pub resend: bool,
}

/// What the page of a [`Failure`] says and offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Heading.
    pub title: &'static str,
    /// Explanation (HTML: escaped, and it may hold a `<time>`).
    pub message: String,
    /// A second sentence (HTML).
    pub more: Option<String>,
    /// The request's own (English) explanation, for bad input.
    pub detail: Option<String>,
    /// "Reference: …" of an unexpected failure.
    pub reference: Option<String>,
    /// A way forward (a link).
    pub retry: Option<String>,
    /// Its label.
    pub retry_label: &'static str,
    /// The label of the one-click resend form's button.
    pub resend_label: &'static str,
    /// A "Back" button when there is no other way.
    pub back: bool,
}

/// What the page of `f` says in the language of `t`, and the way forward
/// it offers (keeping the original destination where there is one).
pub fn explain(t: &'static Strings, f: &Failure<'_>) -> Explanation {
    let mut detail = None;
    let mut more = None;
    let mut retry = f.retry.map(str::to_owned);
    let mut retry_label = None;
    let (title, message): (&str, String) = match f.token_problem {
        Some(problem) => {
            let (title, text) = problem.words(t);
            (title, text.to_owned())
        }
        None => match f.code {
            "too_many_requests" => {
                let again_in = f.retry_after.map(|s| t.duration_up(s));
                match f.live_email {
                    Some(live) => {
                        retry = Some(live.check_url.clone());
                        retry_label = Some(t.enter_code);
                        more =
                            again_in.map(|d| escape(&fill(t.rate_again_in, &[("duration", &d)])));
                        let until = moment_html(t, live.expires_at, MomentStyle::Clock);
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
                let (title, text) = crate::passkeys::error_words(t, f.description);
                (title, text.to_owned())
            }
            "invalid_csrf" if f.retry.is_some() => (t.csrf_title, t.csrf_text_retry.to_owned()),
            "invalid_csrf" => (t.csrf_title, t.csrf_text.to_owned()),
            "not_found" => (t.not_found_title, t.not_found_text.to_owned()),
            "temporarily_unavailable" | "server_error" => {
                if retry.is_none() {
                    retry = f.again.map(str::to_owned);
                    retry_label = Some(t.try_again);
                }
                (t.server_title, t.server_text.to_owned())
            }
            _ => {
                // The SPEC's error descriptions are English sentences about
                // the request itself (a missing field), for the app's
                // developers; shown marked as such.
                detail = Some(f.description.to_owned());
                (t.bad_request_title, t.bad_request_text.to_owned())
            }
        },
    };
    // Only the rate-limit text is HTML already (it may hold a `<time>`).
    let message = if f.code == "too_many_requests" {
        message
    } else {
        escape(&message)
    };
    // `/account` starts its own sign-in again: no link to send from here.
    let to_account = f.retry == Some("/account");
    let retry_label = retry_label.unwrap_or(match (f.token_problem, f.code) {
        (Some(_), _) if f.resend => t.use_another_address,
        (Some(_), _) if to_account => t.start_again,
        (Some(_), _) => t.send_new_link,
        (None, "invalid_csrf") => t.open_form_again,
        (None, "invalid_code") => t.try_again,
        (None, "too_many_requests") => t.go_back,
        _ => t.start_again,
    });
    let resend_label = match f.token_problem {
        Some(TokenProblem::FinishedElsewhere) => t.sign_in_here_too,
        _ => t.send_new_link,
    };
    Explanation {
        title,
        message,
        more,
        detail,
        reference: f.reference.map(|r| fill(t.reference, &[("reference", r)])),
        back: retry.is_none() && !f.resend,
        retry,
        retry_label,
        resend_label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> &'static Strings {
        postern_core::i18n::strings("en")
    }

    #[test]
    fn a_dead_link_offers_a_new_one_or_another_address() {
        let t = en();
        let dead = Failure {
            code: "invalid_token",
            token_problem: Some(TokenProblem::Expired),
            retry: Some("https://id.example/login?client_id=x"),
            ..Failure::default()
        };
        let page = explain(t, &dead);
        assert_eq!(
            (page.title, page.retry_label),
            (t.expired_title, t.send_new_link)
        );
        assert!(!page.back);
        let with_form = explain(
            t,
            &Failure {
                resend: true,
                ..dead.clone()
            },
        );
        assert_eq!(with_form.retry_label, t.use_another_address);
        let to_account = explain(
            t,
            &Failure {
                retry: Some("/account"),
                ..dead
            },
        );
        assert_eq!(to_account.retry_label, t.start_again);
        let elsewhere = Failure {
            code: "invalid_token",
            token_problem: Some(TokenProblem::FinishedElsewhere),
            ..Failure::default()
        };
        let page = explain(t, &elsewhere);
        assert_eq!(page.resend_label, t.sign_in_here_too);
        assert!(page.back, "no way forward: a Back button");
    }

    #[test]
    fn a_rate_limit_points_to_the_email_that_still_works() {
        let t = en();
        let live = LiveEmail {
            check_url: "/login/check?id=abc".into(),
            expires_at: 1_741_943_100,
        };
        let f = Failure {
            code: "too_many_requests",
            retry: Some("/login?client_id=x"),
            retry_after: Some(720),
            live_email: Some(&live),
            ..Failure::default()
        };
        let page = explain(t, &f);
        assert_eq!(page.title, t.rate_live_title);
        assert_eq!(page.retry.as_deref(), Some("/login/check?id=abc"));
        assert_eq!(page.retry_label, t.enter_code);
        assert!(page
            .message
            .contains("<time datetime=\"2025-03-14T09:05:00Z\""));
        assert!(page.more.is_some());
        let plain = explain(
            t,
            &Failure {
                live_email: None,
                ..f
            },
        );
        assert_eq!((plain.title, plain.retry_label), (t.rate_title, t.go_back));
        assert!(plain.more.is_none());
    }

    #[test]
    fn failures_of_ours_offer_the_same_request_again_with_a_reference() {
        let t = en();
        let f = Failure {
            code: "server_error",
            again: Some("/account"),
            reference: Some("r3f"),
            ..Failure::default()
        };
        let page = explain(t, &f);
        assert_eq!(page.retry.as_deref(), Some("/account"));
        assert_eq!(page.retry_label, t.try_again);
        assert_eq!(
            page.reference,
            Some(fill(t.reference, &[("reference", "r3f")]))
        );
    }

    #[test]
    fn bad_input_is_escaped_and_shown_as_the_developers_sentence() {
        let t = en();
        let f = Failure {
            code: "invalid_request",
            description: "client_id is required.",
            ..Failure::default()
        };
        let page = explain(t, &f);
        assert_eq!(page.detail.as_deref(), Some("client_id is required."));
        assert_eq!(page.message, escape(t.bad_request_text));
        assert!(page.back);
        let csrf = explain(
            t,
            &Failure {
                code: "invalid_csrf",
                retry: Some("/login"),
                ..Failure::default()
            },
        );
        assert_eq!(
            (csrf.message, csrf.retry_label),
            (escape(t.csrf_text_retry), t.open_form_again)
        );
    }
}
