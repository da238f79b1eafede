//! "Did you mean jens@gmail.com?": a suggestion for an address whose
//! domain looks like a slip on a common mail provider (`jens@gmail`,
//! `jens@gmial.com`, `jens@gmail.con`). Pure: no lookup, no network.

use crate::i18n::Strings;
use crate::EmailAddress;

/// Mail domains common among the people of the languages Postern speaks.
/// A domain on this list is never "corrected"; near-misses of two listed
/// domains (`gmx.de`, `gmx.net`) are both listed, so neither is taken for
/// a slip of the other.
const COMMON_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "mail.com",
    "gmx.com",
    "ymail.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "gmx.at",
    "gmx.ch",
    "web.de",
    "t-online.de",
    "freenet.de",
    "posteo.de",
    "mailbox.org",
    "yahoo.de",
    "hotmail.de",
    "outlook.de",
    "orange.fr",
    "free.fr",
    "sfr.fr",
    "laposte.net",
    "wanadoo.fr",
    "yahoo.fr",
    "hotmail.fr",
    "bluewin.ch",
];

/// A corrected address for `input` when its domain looks like a slip on a
/// common domain, else `None`. The suggestion is always a valid address
/// (normalized) and differs from what was typed.
pub fn suggest(input: &str) -> Option<String> {
    let input = input.trim();
    let (local, domain) = input.rsplit_once('@')?;
    let local = local.trim();
    if local.is_empty() || local.contains('@') || domain.len() > 100 {
        return None;
    }
    // Commas and spaces are slips for dots; a trailing dot is noise.
    let domain: String = domain
        .trim()
        .to_ascii_lowercase()
        .replace([',', ' '], ".")
        .trim_matches('.')
        .to_owned();
    if domain.is_empty() {
        return None;
    }
    let fixed = match COMMON_DOMAINS.iter().find(|d| **d == domain) {
        Some(d) => d,
        None => closest(&domain)?,
    };
    let suggestion = EmailAddress::parse(&format!("{local}@{fixed}")).ok()?;
    (suggestion.as_str() != input.to_ascii_lowercase()).then(|| suggestion.as_str().to_owned())
}

/// The common domain `domain` most likely stands for: the one whose name
/// without its ending it is (`gmail` → `gmail.com`), or the one within a
/// small edit distance (a transposition counts once), when that one is
/// clearly closest.
fn closest(domain: &str) -> Option<&'static str> {
    if !domain.contains('.') {
        return COMMON_DOMAINS
            .iter()
            .find(|d| d.split('.').next() == Some(domain))
            .copied()
            .or_else(|| within(domain, |d| d.split('.').next().unwrap_or(d)));
    }
    within(domain, |d| d)
}

/// The listed domain nearest to `domain` (comparing `key(listed)`), if it
/// is near enough and no other is as near.
fn within(domain: &str, key: impl Fn(&'static str) -> &'static str) -> Option<&'static str> {
    // Short names leave little room: one slip in a name of six letters or
    // fewer, two in longer ones.
    let allowed = if domain.chars().count() <= 6 { 1 } else { 2 };
    let mut best: Option<(usize, &'static str)> = None;
    let mut tie = false;
    for d in COMMON_DOMAINS {
        let distance = strsim::damerau_levenshtein(domain, key(d));
        match best {
            Some((b, _)) if distance > b => {}
            Some((b, _)) if distance == b => tie = true,
            _ => {
                best = Some((distance, d));
                tie = false;
            }
        }
    }
    match best {
        Some((distance, d)) if distance >= 1 && distance <= allowed && !tie => Some(d),
        _ => None,
    }
}

/// "Did you mean jens@gmail.com?", split around the address so the page
/// can make the address a button or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Words before the address.
    pub before: String,
    /// The suggested address.
    pub email: String,
    /// Words after it.
    pub after: String,
    /// Where the address leads (a link), when it is not a button.
    pub url: String,
}

impl Suggestion {
    /// The suggestion for `typed` in `t`'s words, if its domain looks like
    /// a slip; `url` makes the link of the suggested address.
    pub fn of(t: &Strings, typed: &str, url: impl FnOnce(&str) -> String) -> Option<Self> {
        let email = suggest(typed)?;
        let (before, after) = t.did_you_mean.split_once("{email}").unwrap_or(("", ""));
        Some(Suggestion {
            before: before.to_owned(),
            url: url(&email),
            after: after.to_owned(),
            email,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn slips_on_common_domains_get_a_suggestion() {
        let cases = [
            ("jens@gmail", "jens@gmail.com", "no ending"),
            ("jens@gmial.com", "jens@gmail.com", "two letters swapped"),
            ("jens@gmail.con", "jens@gmail.com", "a wrong ending"),
            ("jens@gmail.co", "jens@gmail.com", "a short ending"),
            ("jens@gmail,com", "jens@gmail.com", "a comma for a dot"),
            ("jens@hotmial.com", "jens@hotmail.com", "hotmail"),
            ("Jens@Outlok.com", "jens@outlook.com", "case is normalized"),
            ("jens@web", "jens@web.de", "web.de"),
            ("jens@t-onlin.de", "jens@t-online.de", "a missing letter"),
            ("anne@orange.fe", "anne@orange.fr", "orange.fr"),
        ];
        for (typed, want, why) in cases {
            assert_eq!(suggest(typed).as_deref(), Some(want), "{why}: {typed}");
        }
    }

    #[test]
    fn right_or_unknown_domains_get_none() {
        let cases = [
            ("jens@gmail.com", "a common domain"),
            ("jens@gmx.net", "gmx.net is not a slip of gmx.de"),
            ("jens@gmx.de", "nor the other way round"),
            ("jens@example.org", "far from every common domain"),
            ("jens@acme-corp.example", "a company domain"),
            ("a@b", "too short to guess"),
            ("jens", "no @ at all"),
            ("@gmail", "no local part"),
            ("je ns@gmail", "no valid address comes out"),
            ("jens@mail.com", "mail.com is not a slip of gmail.com"),
            ("jens@gmail.xyz", "too far from gmail.com"),
        ];
        for (typed, why) in cases {
            assert_eq!(suggest(typed), None, "{why}: {typed}");
        }
    }
}

#[cfg(test)]
mod suggestion_tests {
    use super::Suggestion;

    #[test]
    fn a_suggestion_is_split_around_the_address_with_its_link() {
        let t = crate::i18n::strings("en");
        let s = Suggestion::of(t, "jens@gmial.com", |e| format!("/login?login_hint={e}")).unwrap();
        assert_eq!(s.email, "jens@gmail.com");
        assert_eq!(s.url, "/login?login_hint=jens@gmail.com");
        assert_eq!(format!("{}{{email}}{}", s.before, s.after), t.did_you_mean);
        assert_eq!(Suggestion::of(t, "jens@gmail.com", |_| String::new()), None);
    }
}
