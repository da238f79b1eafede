//! Every word Postern shows people, one [`Catalogue`] per language (SPEC
//! §3.3: English, German and French at least): the hosted pages
//! ([`Strings`]), the account pages ([`account`]), the administration panel
//! ([`admin`]), passkeys ([`passkeys`]) and the emails ([`mail`]).
//!
//! A catalogue is a `static` of structs of `&'static str` fields: a key
//! missing from one language is a compile error. Adding a language is one
//! file plus one arm in [`catalogue`] (and its tag in
//! [`crate::locale::SUPPORTED`]). Pages and emails choose their language
//! with the one negotiator ([`crate::locale`]) and say time spans with the
//! one formatter ([`crate::duration::say_duration`], through
//! [`Strings::duration_down`] and [`Strings::duration_up`]).
//!
//! Placeholders are `{app}`, `{email}`, `{code}`, `{n}`, `{duration}`,
//! `{browser}`, `{os}`, `{day}`, `{month}`, `{year}`, `{time}`, `{host}`,
//! `{reference}` and the like, substituted in one pass by [`fill`], so a
//! value that itself contains `{app}` is never expanded again. `{s}` in
//! [`Strings::resend_countdown`] is left for `/static/postern.js`.

pub mod account;
pub mod admin;
mod de;
mod en;
mod fr;
pub mod mail;
mod pages;
pub mod passkeys;

pub use mail::MailStrings;
pub use pages::Strings;

/// Every word of one language.
#[derive(Debug)]
pub struct Catalogue {
    /// BCP 47 primary language tag (`"en"`), the `lang` of every section.
    pub lang: &'static str,
    /// The hosted pages, and the words every part shares (time spans,
    /// dates, "your Postern account").
    pub pages: Strings,
    /// The account pages and the logout confirmation.
    pub account: account::AccountStrings,
    /// The administration panel.
    pub admin: admin::AdminStrings,
    /// Passkeys.
    pub passkeys: passkeys::PasskeyStrings,
    /// The emails.
    pub mail: MailStrings,
}

/// The catalogue for a primary language tag (`"de"`), if Postern speaks it.
pub fn catalogue(lang: &str) -> Option<&'static Catalogue> {
    match lang {
        "en" => Some(&en::CATALOGUE),
        "de" => Some(&de::CATALOGUE),
        "fr" => Some(&fr::CATALOGUE),
        _ => None,
    }
}

/// The catalogue for exactly this primary tag, else English: how the
/// sections' `strings(lang)` are called, with a page's own `lang`.
fn exact_or_english(lang: &str) -> &'static Catalogue {
    catalogue(lang).unwrap_or(&en::CATALOGUE)
}

/// The catalogue for any language tag (`"de-CH"`), English when
/// unsupported ([`crate::locale::pick`]).
pub fn for_tag(tag: &str) -> &'static Catalogue {
    exact_or_english(crate::locale::pick(&[tag]))
}

/// The pages' strings for any language tag, English when unsupported.
pub fn strings(lang: &str) -> &'static Strings {
    &for_tag(lang).pages
}

/// The pages' strings by SPEC §3.3: `ui_locales`, then `Accept-Language`,
/// then the app's default ([`crate::locale::negotiate`]).
pub fn negotiate(
    ui_locales: Option<&str>,
    accept_language: Option<&str>,
    app_default: &str,
) -> &'static Strings {
    strings(crate::locale::negotiate(
        ui_locales,
        accept_language,
        app_default,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_a_catalogue_named_after_it_in_every_section() {
        for lang in crate::locale::SUPPORTED {
            let c = catalogue(lang).unwrap_or_else(|| panic!("no catalogue for {lang}"));
            let sections = [
                c.lang,
                c.pages.lang,
                c.account.lang,
                c.admin.lang,
                c.passkeys.lang,
                c.mail.lang,
            ];
            assert!(sections.iter().all(|l| l == lang), "{lang}: {sections:?}");
        }
        assert_eq!(strings("de-CH").lang, "de");
        assert_eq!(strings("es").lang, "en");
        assert_eq!(for_tag("FR_ca").lang, "fr");
        assert_eq!(
            account::strings("de-CH").lang,
            "en",
            "sections take a page's own tag"
        );
    }

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

    /// The check page says what is left of a link as the email says the
    /// link's lifetime: once "3 hours" on one and "150 minutes" on the other.
    #[test]
    fn the_check_page_and_the_email_say_150_minutes_alike() {
        let said = |lang: &str, seconds: i64| {
            let c = for_tag(lang);
            let span = c.pages.duration_down(seconds);
            let page = fill(c.pages.check_expires, &[("duration", &span)]);
            let email = fill(c.mail.expires_in, &[("duration", &span)]);
            assert!(page.contains(&span) && email.contains(&span), "{lang}");
            span
        };
        assert_eq!(said("en", 9000), "2 hours 30 minutes");
        assert_eq!(said("de", 9000), "2 Stunden 30 Minuten");
        assert_eq!(said("fr", 9000), "2 heures 30 minutes");
        for lang in crate::locale::SUPPORTED {
            for secs in [0, 59, 900, 5400, 8999, 86_399, 86_400] {
                said(lang, secs);
            }
        }
    }
}
