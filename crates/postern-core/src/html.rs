//! Small pieces of HTML the pages and the administration faces build from
//! the catalogues' plain text ([`crate::i18n`]): escaping, email addresses
//! that break only after `@` and `.`, and moments as `<time>` elements.
//! Pure string functions: no HTTP, no templates.

use crate::i18n::{fill, Strings};

/// HTML-escapes `s` for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An email address as HTML that breaks only after `@` and `.` (each piece
/// an unbreakable inline block, `.addr` in the stylesheet), so a long
/// address never wraps as "hohenbe/rg-" or leaves a lone "m" on a line. A
/// piece longer than the line still wraps inside itself.
pub fn address_html(email: &str) -> String {
    let mut out = String::from("<span class=\"addr\">");
    let mut piece = String::new();
    for c in email.chars() {
        piece.push(c);
        if c == '@' || c == '.' {
            out.push_str("<span>");
            out.push_str(&escape(&piece));
            out.push_str("</span>");
            piece.clear();
        }
    }
    if !piece.is_empty() {
        out.push_str("<span>");
        out.push_str(&escape(&piece));
        out.push_str("</span>");
    }
    out.push_str("</span>");
    out
}

/// `template` (plain text from a catalogue) as HTML, with `{email}` as an
/// address that breaks only after `@` and `.` ([`address_html`]).
pub fn with_address(template: &str, email: &str) -> String {
    fill(&escape(template), &[("email", &address_html(email))])
}

/// How a moment is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentStyle {
    /// A date and time: without the script "14 March 2025, 09:05 UTC"; the
    /// script shows "3 minutes ago (14 Mar 2025, 10:05)" in the browser's
    /// time zone.
    DateTime,
    /// A time of day, soon: "09:05 UTC"; the script shows "10:05 (in 12
    /// minutes)" in the browser's time zone.
    Clock,
}

/// A moment as a `<time>` element: UTC in words for readers without the
/// script, the browser's local time and a relative time with it.
pub fn moment_html(t: &Strings, unix: i64, style: MomentStyle) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return String::new();
    };
    let iso = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (kind, text) = match style {
        MomentStyle::DateTime => ("datetime", t.date_time(unix)),
        MomentStyle::Clock => ("clock", format!("{:02}:{:02} UTC", at.hour(), at.minute())),
    };
    format!(
        "<time datetime=\"{}\" data-time=\"{kind}\">{}</time>",
        escape(&iso),
        escape(&text)
    )
}

/// The consent screen's lines for `scope` in `t`'s language, as HTML: the
/// email line names `email` (breaking only after `@` and `.`).
pub fn consent_items(t: &Strings, scope: &crate::oauth::Scope, email: &str) -> Vec<String> {
    t.scope_items(scope)
        .into_iter()
        .map(|item| {
            if item == t.scope_email {
                with_address(t.scope_email_is, email)
            } else {
                escape(item)
            }
        })
        .collect()
}

/// "New link sent at 10:05." after "Send again", as HTML (the time a
/// `<time>` element).
pub fn resent_at(t: &Strings, unix: i64) -> String {
    let at = moment_html(t, unix, MomentStyle::Clock);
    fill(&escape(t.resent_at), &[("time", &at)])
}

/// The first letter of an address, upper case: the round mark of an
/// account on the chooser.
pub fn initial(email: &str) -> String {
    email
        .chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_both_quotes() {
        assert_eq!(
            escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(escape("jens@example.com"), "jens@example.com");
    }

    #[test]
    fn addresses_break_only_after_at_and_dots_and_stay_escaped() {
        assert_eq!(
            address_html("jo.hohenberg-x@mail.example"),
            "<span class=\"addr\"><span>jo.</span><span>hohenberg-x@</span>\
             <span>mail.</span><span>example</span></span>"
        );
        assert_eq!(
            address_html("<b>\"x\"&"),
            "<span class=\"addr\"><span>&lt;b&gt;&quot;x&quot;&amp;</span></span>"
        );
    }

    #[test]
    fn templates_escape_their_words_but_not_the_address_markup() {
        assert_eq!(
            with_address("Sent to {email} <now>", "a@b.c"),
            "Sent to <span class=\"addr\"><span>a@</span><span>b.</span><span>c</span></span> \
             &lt;now&gt;"
        );
    }

    #[test]
    fn moments_fall_back_to_utc_in_words() {
        let t = crate::i18n::strings("de");
        assert_eq!(
            moment_html(t, 1_741_943_100, MomentStyle::DateTime),
            "<time datetime=\"2025-03-14T09:05:00Z\" data-time=\"datetime\">\
             14. März 2025, 09:05 UTC</time>"
        );
        assert_eq!(
            moment_html(t, 1_741_943_100, MomentStyle::Clock),
            "<time datetime=\"2025-03-14T09:05:00Z\" data-time=\"clock\">09:05 UTC</time>"
        );
        assert_eq!(moment_html(t, i64::MAX, MomentStyle::Clock), "");
    }

    #[test]
    fn consent_lines_name_the_address_in_the_email_line_only() {
        let t = crate::i18n::strings("en");
        let scope = crate::oauth::Scope::parse(Some("openid email"));
        let items = consent_items(t, &scope, "jo@x.example");
        let email_line = with_address(t.scope_email_is, "jo@x.example");
        assert!(items.contains(&email_line));
        for (item, words) in items.iter().zip(t.scope_items(&scope)) {
            if words != t.scope_email {
                assert_eq!(item, &escape(words));
            }
        }
    }

    #[test]
    fn an_account_mark_is_its_first_letter_upper_case() {
        assert_eq!(initial("jo@x.example"), "J");
        assert_eq!(initial("ßa@x.example"), "SS");
        assert_eq!(initial(""), "");
    }

    #[test]
    fn the_resent_line_holds_a_clock_time() {
        let t = crate::i18n::strings("en");
        let line = resent_at(t, 1_741_943_100);
        assert!(line.contains(&moment_html(t, 1_741_943_100, MomentStyle::Clock)));
        assert!(!line.contains("{time}"));
    }
}
