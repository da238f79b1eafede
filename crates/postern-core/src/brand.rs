//! An app's brand colour made readable (SPEC §3.3): from one `#rrggbb`,
//! the accent for buttons, the text on it and shades of it that stay
//! readable as link text on Postern's light and dark cards (WCAG 2.1 AA).
//! The web crate writes them into the app's stylesheet.

/// Whether `color` is `#rrggbb` (what app settings accept).
pub fn valid_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The path of an app's stylesheet, `/static/brand/{client_id}.css?v=…`
/// (a new colour is a new URL), when it has a valid colour. Client ids are
/// URL-safe tokens; one that is not gets no stylesheet rather than a path
/// that needs escaping.
pub fn stylesheet_path(client_id: &str, color: Option<&str>) -> Option<String> {
    let safe_id = !client_id.is_empty()
        && client_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let color = color.filter(|c| safe_id && valid_color(c))?;
    Some(format!(
        "/static/brand/{client_id}.css?v={}",
        color.trim_start_matches('#').to_ascii_lowercase()
    ))
}

/// The logo a page may show: only one Postern itself serves (the public
/// URL's origin), as SPEC §3.3 allows no third-party images on any page.
pub fn own_logo(logo_url: Option<&str>, public_url: &url::Url) -> Option<String> {
    logo_url
        .filter(|u| url::Url::parse(u).is_ok_and(|u| u.origin() == public_url.origin()))
        .map(str::to_owned)
}

/// Light and dark card backgrounds of `postern.css`, for contrast checks.
const LIGHT_CARD: Rgb = (0xff, 0xff, 0xff);
const DARK_CARD: Rgb = (0x1f, 0x29, 0x37);
/// WCAG 2.1 AA for normal text.
const TEXT_CONTRAST: f64 = 4.5;

type Rgb = (u8, u8, u8);

pub(crate) fn parse(color: &str) -> Rgb {
    let c = |i: usize| u8::from_str_radix(&color[i..i + 2], 16).unwrap_or(0);
    (c(1), c(3), c(5))
}

pub(crate) fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// WCAG 2.1 relative luminance.
fn luminance((r, g, b): Rgb) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// WCAG 2.1 contrast ratio.
fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// `color` mixed towards `target` until it reads on `background`.
fn readable_on(color: Rgb, background: Rgb, target: Rgb) -> Rgb {
    let mix =
        |c: u8, t: u8, k: f64| (f64::from(c) + (f64::from(t) - f64::from(c)) * k).round() as u8;
    (0..=20)
        .map(|step| {
            let k = f64::from(step) / 20.0;
            (
                mix(color.0, target.0, k),
                mix(color.1, target.1, k),
                mix(color.2, target.2, k),
            )
        })
        .find(|c| contrast(*c, background) >= TEXT_CONTRAST)
        .unwrap_or(target)
}

/// The colours of one app's pages, each `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    /// The accent, for buttons.
    pub accent: String,
    /// Black or white, whichever contrasts more with the accent.
    pub on_accent: String,
    /// A shade of the accent that reads on the light card.
    pub light_text: String,
    /// A shade of the accent that reads on the dark card.
    pub dark_text: String,
}

impl Palette {
    /// The palette of `color` (`#rrggbb`, see [`valid_color`]).
    pub fn of(color: &str) -> Self {
        let accent = parse(color);
        let white = (0xff, 0xff, 0xff);
        let ink = (0x11, 0x18, 0x27);
        let on_accent = if contrast(accent, white) >= contrast(accent, ink) {
            white
        } else {
            ink
        };
        Palette {
            accent: hex(accent),
            on_accent: hex(on_accent),
            light_text: hex(readable_on(accent, LIGHT_CARD, (0, 0, 0))),
            dark_text: hex(readable_on(accent, DARK_CARD, white)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_with_a_valid_colour_get_a_stylesheet() {
        assert_eq!(
            stylesheet_path("notes.app-1_x", Some("#A0B1C2")).as_deref(),
            Some("/static/brand/notes.app-1_x.css?v=a0b1c2")
        );
        assert_eq!(stylesheet_path("notes", None), None, "no colour");
        assert_eq!(stylesheet_path("notes", Some("red")), None, "not #rrggbb");
        assert_eq!(
            stylesheet_path("no/tes", Some("#000000")),
            None,
            "unsafe id"
        );
        assert_eq!(stylesheet_path("", Some("#000000")), None, "no id");
    }

    #[test]
    fn only_logos_postern_serves_are_shown() {
        let public = url::Url::parse("https://id.example.com/").unwrap();
        let own = "https://id.example.com/static/logo.png";
        assert_eq!(own_logo(Some(own), &public).as_deref(), Some(own));
        for other in [
            "https://cdn.example.net/logo.png",
            "http://id.example.com/logo.png",
            "https://id.example.com:8443/logo.png",
            "not a url",
        ] {
            assert_eq!(own_logo(Some(other), &public), None, "{other}");
        }
        assert_eq!(own_logo(None, &public), None);
    }

    #[test]
    fn brand_colours_stay_readable() {
        let cases = [
            ("#2563eb", "a mid blue"),
            ("#ffff00", "a pale yellow"),
            ("#000000", "black"),
            ("#ffffff", "white"),
            ("#7f7f7f", "grey"),
        ];
        for (color, what) in cases {
            let p = Palette::of(color);
            let (accent, on) = (parse(&p.accent), parse(&p.on_accent));
            let (light, dark) = (parse(&p.light_text), parse(&p.dark_text));
            assert_eq!(p.accent, color, "{what}");
            assert!(contrast(accent, on) >= 4.0, "{what}: button text");
            assert!(
                contrast(light, LIGHT_CARD) >= TEXT_CONTRAST,
                "{what}: light"
            );
            assert!(contrast(dark, DARK_CARD) >= TEXT_CONTRAST, "{what}: dark");
        }
        assert!(valid_color("#A0b1C2"));
        for bad in ["red", "#fff", "#12345g", "#1234567", "123456#"] {
            assert!(!valid_color(bad), "{bad}");
        }
    }
}
