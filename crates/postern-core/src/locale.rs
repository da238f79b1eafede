//! Choosing a language: `ui_locales`, then `Accept-Language`, then the
//! app's default (SPEC §3.3), among the languages Postern has. The one
//! negotiator of pages and emails: [`crate::i18n`] picks their one
//! catalogue per language with [`negotiate`] or [`pick`].

/// Languages every page and email is translated into.
pub const SUPPORTED: &[&str] = &["en", "de", "fr"];

/// The primary language subtag of `tag` if Postern supports it. Region
/// subtags, case, `_` for `-`, whitespace and a `;q=` are tolerated
/// (`" de-CH ;q=0.8"` is `de`).
pub fn supported(tag: &str) -> Option<&'static str> {
    let primary = tag
        .split(['-', '_', ';'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    SUPPORTED.iter().copied().find(|s| *s == primary)
}

/// The first supported language among `candidates` (tags in order of
/// preference), else English.
pub fn pick(candidates: &[&str]) -> &'static str {
    candidates.iter().find_map(|t| supported(t)).unwrap_or("en")
}

/// Tags of an `Accept-Language` header, best first (stable for equal `q`).
fn accept_language_tags(header: &str) -> Vec<&str> {
    let mut tags: Vec<(&str, f32)> = header
        .split(',')
        .take(20)
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty() && q > 0.0).then_some((tag, q))
        })
        .collect();
    tags.sort_by(|a, b| b.1.total_cmp(&a.1));
    tags.into_iter().map(|(t, _)| t).collect()
}

/// Picks the language: the first supported tag of `ui_locales`
/// (space-separated), else of `accept_language`, else the app default, else English.
pub fn negotiate(
    ui_locales: Option<&str>,
    accept_language: Option<&str>,
    app_default: &str,
) -> &'static str {
    ui_locales
        .into_iter()
        .flat_map(|u| u.split_ascii_whitespace().take(10))
        .find_map(supported)
        .or_else(|| {
            accept_language
                .map(accept_language_tags)
                .unwrap_or_default()
                .into_iter()
                .find_map(supported)
        })
        .or_else(|| supported(app_default))
        .unwrap_or("en")
}

#[cfg(test)]
mod tests {
    use super::{negotiate, pick};

    #[test]
    fn the_first_supported_language_wins() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["de-CH"], "de", "region subtags are ignored"),
            (&["es", "fr", "de"], "fr", "unsupported tags are skipped"),
            (&["FR_ca"], "fr", "case and underscores are tolerated"),
            (
                &[" de ;q=0.8"],
                "de",
                "whitespace and q-values are tolerated",
            ),
            (&["ja", "zz"], "en", "falls back to English"),
            (&[], "en", "nothing asked gives English"),
            (&[""], "en", "an empty tag gives English"),
        ];
        for (tags, want, why) in cases {
            assert_eq!(pick(tags), *want, "{why}");
        }
    }

    #[test]
    fn ui_locales_come_first_then_accept_language_then_the_app() {
        assert_eq!(negotiate(Some("fr-CA de"), Some("de"), "en"), "fr");
        assert_eq!(
            negotiate(Some("es"), Some("es, de-CH;q=0.8, fr;q=0.9"), "en"),
            "fr"
        );
        assert_eq!(negotiate(None, Some("de-DE,de;q=0.9,en;q=0.8"), "fr"), "de");
        assert_eq!(negotiate(None, Some("*"), "de"), "de");
        assert_eq!(negotiate(None, None, "fr"), "fr");
        assert_eq!(negotiate(None, None, "es"), "en");
        assert_eq!(negotiate(None, Some("de;q=0"), "en"), "en");
    }
}
