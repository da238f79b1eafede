//! The emails Postern sends, each rendered from one context into a subject,
//! a text part and an HTML part (SPEC §3.1).
//!
//! The public context structs ([`SignInEmail`], [`NoAccountEmail`]) are what
//! callers fill in; each becomes one view with every string already
//! translated, and the same view feeds both the `.txt` template (no
//! escaping) and the `.html` template (askama's HTML autoescaping).

use askama::Template;

use crate::MailError;
use postern_core::i18n::{fill, for_tag, MailStrings};

/// Button colour when the app has none (or an unusable one).
const DEFAULT_COLOR: &str = "#2563eb";

/// An app's look in its emails. Values are validated by the caller; the
/// renderer still drops a colour that is not `#rrggbb` and a logo that is
/// not `https://`, since they land inside attributes.
#[derive(Debug, Clone, Copy)]
pub struct Brand<'a> {
    /// Name shown to people (branding name, else the app's name).
    pub app_name: &'a str,
    /// HTTPS URL of a logo image.
    pub logo_url: Option<&'a str>,
    /// Button colour, `#rrggbb`.
    pub color: Option<&'a str>,
    /// The app's extra note (plain text, shown in every language; escaped
    /// in the HTML part, line breaks kept).
    pub note: Option<&'a str>,
    /// The name atop the HTML part, when it is not `app_name` (which is
    /// worded to fit sentences: "your Postern account" is "Postern" there).
    pub header: Option<&'a str>,
}

/// The sign-in email: link, code and expiry.
#[derive(Debug, Clone, Copy)]
pub struct SignInEmail<'a> {
    /// Language tag; unsupported languages fall back to English.
    pub locale: &'a str,
    /// The app's branding.
    pub brand: Brand<'a>,
    /// The full link (`{public_url}/verify-email?token=pml_...`).
    pub link: &'a str,
    /// The 6-digit one-time code.
    pub code: &'a str,
    /// How long the link lives, in seconds.
    pub link_ttl: i64,
}

/// The email sent when the address has no account at the app and cannot
/// get one (sign-up disabled, or outside the allowed domains): no link, no code.
#[derive(Debug, Clone, Copy)]
pub struct NoAccountEmail<'a> {
    /// Language tag; unsupported languages fall back to English.
    pub locale: &'a str,
    /// The app's branding.
    pub brand: Brand<'a>,
    /// The normalized address the request was made for.
    pub email: &'a str,
}

/// A rendered email. Its `Debug` hides the content, which carries live
/// secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line (plain text).
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered(..)")
    }
}

/// What every email's layout needs.
struct Common {
    lang: &'static str,
    header: String,
    logo_url: Option<String>,
    color: String,
    button_text: &'static str,
    heading: String,
    ignore: &'static str,
    /// The note's lines (empty without a note).
    note: Vec<String>,
}

impl Common {
    fn new(strings: &'static MailStrings, brand: &Brand<'_>) -> Self {
        let color = brand
            .color
            .filter(|c| parse_hex_color(c).is_some())
            .unwrap_or(DEFAULT_COLOR)
            .to_owned();
        Self {
            lang: strings.lang,
            header: brand.header.unwrap_or(brand.app_name).to_owned(),
            logo_url: brand
                .logo_url
                .filter(|u| u.starts_with("https://") && !u.contains(char::is_whitespace))
                .map(str::to_owned),
            button_text: readable_text_on(&color),
            color,
            heading: fill(strings.sign_in_to, &[("app", brand.app_name)]),
            ignore: strings.ignore,
            note: brand
                .note
                .map(|n| n.lines().map(|l| l.trim_end().to_owned()).collect())
                .unwrap_or_default(),
        }
    }
}

struct SignInView {
    c: Common,
    open_link: String,
    press_button: String,
    button: &'static str,
    enter_code: &'static str,
    link_fallback: &'static str,
    link: String,
    code: String,
    expiry: String,
}

#[derive(Template)]
#[template(path = "sign_in.txt")]
struct SignInText<'a> {
    v: &'a SignInView,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInHtml<'a> {
    v: &'a SignInView,
}

struct NoAccountView {
    c: Common,
    no_account: String,
    no_account_help: String,
}

#[derive(Template)]
#[template(path = "no_account.txt")]
struct NoAccountText<'a> {
    v: &'a NoAccountView,
}

#[derive(Template)]
#[template(path = "no_account.html")]
struct NoAccountHtml<'a> {
    v: &'a NoAccountView,
}

/// Renders the sign-in email. The subject ends with the code so it can be
/// read from a notification; both parts carry the link, the code, the
/// expiry sentence and the "ignore" line.
pub fn render_sign_in(ctx: &SignInEmail<'_>) -> Result<Rendered, MailError> {
    let all = for_tag(ctx.locale);
    let s = &all.mail;
    let app = ctx.brand.app_name;
    let view = SignInView {
        c: Common::new(s, &ctx.brand),
        open_link: fill(s.open_link, &[("app", app)]),
        press_button: fill(s.press_button, &[("app", app)]),
        button: s.button,
        enter_code: s.enter_code,
        link_fallback: s.link_fallback,
        link: ctx.link.to_owned(),
        code: ctx.code.to_owned(),
        // Said as the check page says what is left of the link.
        expiry: fill(
            s.expires_in,
            &[("duration", &all.pages.duration_down(ctx.link_ttl))],
        ),
    };
    Ok(Rendered {
        subject: fill(s.sign_in_subject, &[("app", app), ("code", ctx.code)]),
        text: SignInText { v: &view }.render()?,
        html: SignInHtml { v: &view }.render()?,
    })
}

/// Renders the "no account for this address" email: no link, no code.
pub fn render_no_account(ctx: &NoAccountEmail<'_>) -> Result<Rendered, MailError> {
    let s = &for_tag(ctx.locale).mail;
    let values = [("app", ctx.brand.app_name), ("email", ctx.email)];
    let view = NoAccountView {
        c: Common::new(s, &ctx.brand),
        no_account: fill(s.no_account, &values),
        no_account_help: fill(s.no_account_help, &values),
    };
    Ok(Rendered {
        subject: view.c.heading.clone(),
        text: NoAccountText { v: &view }.render()?,
        html: NoAccountHtml { v: &view }.render()?,
    })
}

fn parse_hex_color(color: &str) -> Option<(u8, u8, u8)> {
    let hex = color.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((channel(0)?, channel(2)?, channel(4)?))
}

/// Dark text on light buttons, white text on dark ones (perceived brightness,
/// ITU-R BT.601 weights), so any brand colour keeps the label readable.
fn readable_text_on(color: &str) -> &'static str {
    match parse_hex_color(color) {
        Some((r, g, b))
            if 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) > 160_000 =>
        {
            "#111111"
        }
        _ => "#ffffff",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_text_stays_readable() {
        assert_eq!(readable_text_on("#ffff00"), "#111111");
        assert_eq!(readable_text_on("#ffffff"), "#111111");
        assert_eq!(readable_text_on("#2563eb"), "#ffffff");
        assert_eq!(readable_text_on("#000000"), "#ffffff");
    }

    #[test]
    fn unusable_colours_and_logos_are_dropped() {
        let brand = Brand {
            app_name: "Acme",
            logo_url: Some("http://insecure.example/logo.png"),
            color: Some("red;background:url(x)"),
            note: None,
            header: None,
        };
        let c = Common::new(&for_tag("en").mail, &brand);
        assert_eq!(c.color, DEFAULT_COLOR);
        assert_eq!(c.logo_url, None);
    }

    #[test]
    fn the_email_says_150_minutes_as_the_check_page_does() {
        for lang in postern_core::locale::SUPPORTED {
            let email = render_sign_in(&SignInEmail {
                locale: lang,
                brand: Brand {
                    app_name: "Acme",
                    logo_url: None,
                    color: None,
                    note: None,
                    header: None,
                },
                link: "https://id.example/verify-email?token=pml_x",
                code: "123456",
                link_ttl: 9000,
            })
            .unwrap();
            // The check page's words for what is left of a link.
            let t = postern_core::i18n::strings(lang);
            let page = fill(t.check_expires, &[("duration", &t.duration_down(9000))]);
            let span = t.duration_down(9000);
            assert!(
                page.contains(&span) && email.text.contains(&span),
                "{lang}: {span}"
            );
        }
        assert_eq!(
            postern_core::i18n::strings("en").duration_down(9000),
            "2 hours 30 minutes"
        );
    }
}
