//! Static assets, compiled into the binary, and each app's brand stylesheet.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use postern_auth::AuthError;

use crate::error::{AppError, Result};
use crate::extract::AppPath;
use crate::AppState;

/// `GET /static/postern.css`: the one stylesheet of every page.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/postern.css"),
    )
}

/// `GET /static/postern.js`: the one script, which only enhances the
/// "check your email" page (countdown, waiting for a remote approval).
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/postern.js"),
    )
}

/// Whether `color` is `#rrggbb` (what app settings accept).
pub fn valid_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /static/brand/{client_id}.css`: the app's accent colour as custom
/// properties, so pages stay free of inline style (CSP `style-src 'self'`).
/// Pages link it with `?v=<colour>`, so it may be cached for a day: a new
/// colour is a new URL.
pub async fn brand_stylesheet(
    State(state): State<AppState>,
    AppPath(file): AppPath<String>,
) -> Result<Response> {
    let client_id = file.strip_suffix(".css").ok_or(AppError::NotFound)?;
    let app = postern_auth::signin::app_named(&state, Some(client_id))
        .await
        .map_err(|e| match e {
            AuthError::UnknownClient | AuthError::InvalidRequest(_) => AppError::NotFound,
            other => other.into(),
        })?;
    let color = app
        .settings
        .branding
        .color
        .as_deref()
        .filter(|c| valid_color(c))
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        brand_css(color),
    )
        .into_response())
}

/// Light and dark card backgrounds of `postern.css`, for contrast checks.
const LIGHT_CARD: Rgb = (0xff, 0xff, 0xff);
const DARK_CARD: Rgb = (0x1f, 0x29, 0x37);
/// WCAG 2.1 AA for normal text.
const TEXT_CONTRAST: f64 = 4.5;

type Rgb = (u8, u8, u8);

fn parse(color: &str) -> Rgb {
    let c = |i: usize| u8::from_str_radix(&color[i..i + 2], 16).unwrap_or(0);
    (c(1), c(3), c(5))
}

fn hex((r, g, b): Rgb) -> String {
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

/// The brand stylesheet for `#rrggbb`: the accent for buttons, black or
/// white text on it (whichever contrasts more), and a shade of the accent
/// that stays readable as link text on light and dark cards.
pub fn brand_css(color: &str) -> String {
    let accent = parse(color);
    let white = (0xff, 0xff, 0xff);
    let ink = (0x11, 0x18, 0x27);
    let on_accent = if contrast(accent, white) >= contrast(accent, ink) {
        white
    } else {
        ink
    };
    let light_text = readable_on(accent, LIGHT_CARD, (0, 0, 0));
    let dark_text = readable_on(accent, DARK_CARD, white);
    format!(
        "/* Brand colour of one app; see postern.css. */\n\
         :root {{ --accent: {}; --on-accent: {}; --accent-text: {}; }}\n\
         @media (prefers-color-scheme: dark) {{ :root {{ --accent-text: {}; }} }}\n",
        hex(accent),
        hex(on_accent),
        hex(light_text),
        hex(dark_text),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let css = brand_css(color);
            let var = |name: &str, from: usize| {
                let i = css[from..].find(&format!("{name}: #")).unwrap() + from + name.len() + 2;
                parse(&css[i..i + 7])
            };
            let accent = var("--accent", 0);
            let on = var("--on-accent", 0);
            let light = var("--accent-text", 0);
            let dark = var("--accent-text", css.find("@media").unwrap());
            assert_eq!(hex(accent), color, "{what}");
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
