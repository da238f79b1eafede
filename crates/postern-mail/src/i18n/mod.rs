//! Every user-visible string of the emails, one catalogue per language.
//!
//! A catalogue is a `const` [`Strings`]: a key missing from one language is
//! a compile error. Adding a language is one file plus one arm in
//! [`catalogue`]. Placeholders are `{app}`, `{email}`, `{code}`, `{n}` and
//! `{duration}`, substituted in one pass by [`fill`] so a value that itself
//! contains `{code}` is never expanded again.

mod de;
mod en;
mod fr;

use postern_core::duration::{say_duration, DurationWords, Rounding};

/// The strings of one language.
#[derive(Debug)]
pub struct Strings {
    /// BCP 47 primary language tag of this catalogue (`"en"`).
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
    /// "1 minute".
    pub one_minute: &'static str,
    /// "{n} minutes".
    pub minutes: &'static str,
    /// "1 hour".
    pub one_hour: &'static str,
    /// "{n} hours".
    pub hours: &'static str,
    /// "If you didn't request this, you can safely ignore this email."
    pub ignore: &'static str,
    /// No-account email: there is no account for {email} at {app}.
    pub no_account: &'static str,
    /// Postern's own account page as `{app}` ("your Postern account"),
    /// worded to fit every sentence that names an app (German: dative).
    pub own_account: &'static str,
    /// No-account email: who to ask for access.
    pub no_account_help: &'static str,
}

/// The catalogue for a primary language tag (`"de"`), if Postern speaks it.
pub fn catalogue(lang: &str) -> Option<&'static Strings> {
    match lang {
        "en" => Some(&en::STRINGS),
        "de" => Some(&de::STRINGS),
        "fr" => Some(&fr::STRINGS),
        _ => None,
    }
}

/// The first supported language among `candidates` (language tags such as
/// `"de-CH"`, `"fr"`, `"EN_gb"`, in order of preference), else `"en"`:
/// [`postern_core::locale::pick`], the pages' negotiator too.
pub use postern_core::locale::pick as pick_locale;

/// The catalogue for any language tag, English when unsupported.
pub fn strings_for(locale: &str) -> &'static Strings {
    catalogue(pick_locale(&[locale])).unwrap_or(&en::STRINGS)
}

/// Replaces each `{key}` of `template` with its value, in a single pass.
/// Unknown `{...}` sequences are kept as they are.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (close, *v))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A link lifetime in words, rounded down to whole minutes (never promising
/// more time than the link has), at least one minute: "15 minutes",
/// "1 hour", "2 hours 30 minutes". The pages' formatter too
/// ([`postern_core::duration::say_duration`]).
pub fn lifetime(strings: &Strings, seconds: i64) -> String {
    say_duration(&strings.duration_words(), seconds, Rounding::Down)
}

impl Strings {
    /// This language's words for spans of time.
    pub fn duration_words(&self) -> DurationWords<'static> {
        DurationWords {
            one_minute: self.one_minute,
            minutes: self.minutes,
            one_hour: self.one_hour,
            hours: self.hours,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill(
                "Sign in to {app}: {code}",
                &[("app", "{code} & co"), ("code", "123456")]
            ),
            "Sign in to {code} & co: 123456"
        );
        assert_eq!(fill("{unknown} {app", &[("app", "x")]), "{unknown} {app");
    }

    #[test]
    fn lifetimes_read_naturally() {
        let en = strings_for("en");
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
            assert_eq!(lifetime(en, secs), want, "{secs} s");
        }
        assert_eq!(lifetime(strings_for("de"), 7200), "2 Stunden");
        assert_eq!(lifetime(strings_for("fr"), 60), "1 minute");
    }
}
