//! The words of the emails (SPEC §3.1): the sign-in email and the
//! "no account" notice, the `mail` section of each language's
//! [`super::Catalogue`]. Their time spans and "your Postern account" are
//! the words the pages use ([`super::Strings`]), so an email and the check
//! page say a link's lifetime the same way. Placeholders are `{app}`,
//! `{email}`, `{code}` and `{duration}`, filled by [`super::fill`].

/// The emails' strings of one language.
#[derive(Debug)]
pub struct MailStrings {
    /// BCP 47 primary language tag (`"en"`), the HTML part's `lang`.
    pub lang: &'static str,
    /// Heading and no-account subject: "Sign in to {app}".
    pub sign_in_to: &'static str,
    /// Subject of the sign-in email: "Sign in to {app}: {code}".
    pub sign_in_subject: &'static str,
    /// Text part, above the link: "Open this link to sign in to {app}:".
    pub open_link: &'static str,
    /// HTML part, above the button.
    pub press_button: &'static str,
    /// The button's label.
    pub button: &'static str,
    /// Above the one-time code.
    pub enter_code: &'static str,
    /// HTML part, above the link in plain for clients that hide the button.
    pub link_fallback: &'static str,
    /// "This link will expire in {duration}."
    pub expires_in: &'static str,
    /// "If you didn't request this, you can safely ignore this email."
    pub ignore: &'static str,
    /// No-account email: there is no account for {email} at {app}.
    pub no_account: &'static str,
    /// No-account email: who to ask for access.
    pub no_account_help: &'static str,
}

#[cfg(test)]
mod tests {
    use super::super::for_tag;

    #[test]
    fn the_placeholders_each_email_string_needs_are_there_in_every_language() {
        for lang in crate::locale::SUPPORTED {
            let s = &for_tag(lang).mail;
            let cases: &[(&str, &str, &[&str])] = &[
                ("sign_in_to", s.sign_in_to, &["{app}"]),
                ("sign_in_subject", s.sign_in_subject, &["{app}", "{code}"]),
                ("open_link", s.open_link, &["{app}"]),
                ("press_button", s.press_button, &["{app}"]),
                ("expires_in", s.expires_in, &["{duration}"]),
                ("no_account", s.no_account, &["{app}", "{email}"]),
                ("no_account_help", s.no_account_help, &["{app}"]),
            ];
            for (key, text, needs) in cases {
                for n in *needs {
                    assert!(text.contains(n), "{lang}.{key} lacks {n}: {text}");
                }
            }
        }
    }

    #[test]
    fn an_emails_link_lifetime_reads_naturally() {
        // The emails' former `lifetime` cases, now said by the pages' words.
        let en = &for_tag("en").pages;
        let cases = [
            (60, "1 minute"),
            (90, "1 minute"),
            (600, "10 minutes"),
            (900, "15 minutes"),
            (3600, "1 hour"),
            (5400, "90 minutes"),
            (7200, "2 hours"),
            (9000, "2 hours 30 minutes"),
            (86_400, "24 hours"),
            (0, "1 minute"),
        ];
        for (secs, want) in cases {
            assert_eq!(en.duration_down(secs), want, "{secs} s");
        }
        assert_eq!(for_tag("de").pages.duration_down(7200), "2 Stunden");
        assert_eq!(for_tag("fr").pages.duration_down(60), "1 minute");
    }
}
