//! The dashboard's chart of sign-ins per hour (SPEC §3.5, issue 12): a pure
//! function from hourly counts to an SVG drawn on the server, so the panel
//! needs no script and no third-party library to show it. Colours come from
//! the stylesheet (classes, no inline style: CSP `style-src 'self'`).

use postern_web::pages::escape;

/// The sign-ins of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hour {
    /// Start of the hour, unix seconds (UTC).
    pub start: i64,
    /// Sign-ins that succeeded.
    pub success: u32,
    /// Sign-ins that did not (wrong code, expired, used, refused).
    pub failed: u32,
}

/// The chart's words, in the panel's language.
#[derive(Debug, Clone, Copy)]
pub struct ChartWords<'a> {
    /// The chart's accessible name: "Sign-ins per hour, last 48 hours".
    pub title: &'a str,
    /// One bar's tooltip: "{time}: {success} signed in, {failed} failed".
    pub bar: &'a str,
}

/// The shape of one drawing of the chart, in SVG user units (the SVG
/// scales to its box, text with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The `class` besides `chart` (the stylesheet shows one drawing per
    /// screen width and sizes its text).
    class: &'static str,
    width: u32,
    height: u32,
    left: u32,
    bottom: u32,
    top: u32,
    /// An hour label under every this many bars.
    label_every: usize,
}

impl Layout {
    /// A desktop's: 720 units drawn about as many pixels wide, an hour
    /// label every 6 hours.
    pub const WIDE: Layout = Layout {
        class: "wide",
        width: 720,
        height: 200,
        left: 34,
        bottom: 22,
        top: 8,
        label_every: 6,
    };
    /// A phone's: 300 units, about the pixels a 360 px screen gives the
    /// chart, so 13-unit labels stay about 13 px; a label every 12 hours.
    pub const COMPACT: Layout = Layout {
        class: "compact",
        width: 300,
        height: 170,
        left: 32,
        bottom: 24,
        top: 8,
        label_every: 12,
    };
}

/// The smallest of 4, 10, 20, 40, 100, 200, 400, … that is at least `n`
/// (at least 4, so an empty or quiet chart still has a scale; always even,
/// so the middle line of the scale is a whole number).
fn nice_ceiling(n: u32) -> u32 {
    let n = n.max(4);
    let mut step = 1u32;
    loop {
        for m in [1, 2, 4] {
            let v = step.saturating_mul(m);
            if v >= n {
                return v;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn hh(unix: i64) -> String {
    let h = unix.rem_euclid(86_400) / 3600;
    format!("{h:02}:00")
}

/// Stacked bars (successes below, failures above), one per hour, oldest on
/// the left; a scale at 0, half and the top; the hour (UTC) under every
/// sixth (wide) or twelfth (compact) bar. Each bar carries a `<title>`
/// with its exact numbers.
pub fn hourly_svg(hours: &[Hour], words: &ChartWords<'_>, layout: Layout) -> String {
    let Layout {
        class,
        width,
        height,
        left,
        bottom,
        top: margin,
        label_every,
    } = layout;
    let top = nice_ceiling(
        hours
            .iter()
            .map(|h| h.success + h.failed)
            .max()
            .unwrap_or(0),
    );
    let plot_h = height - margin - bottom;
    let plot_w = width - left;
    let n = hours.len().max(1) as u32;
    let slot = f64::from(plot_w) / f64::from(n);
    let bar_w = (slot * 0.78).max(1.0);
    let y_of =
        |v: u32| f64::from(margin) + f64::from(plot_h) * (1.0 - f64::from(v) / f64::from(top));
    let mut s = format!(
        "<svg class=\"chart {class}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        escape(words.title),
        escape(words.title)
    );
    for v in [0, top / 2, top] {
        let y = y_of(v);
        s.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            left - 6,
            y + 4.0
        ));
    }
    for (i, h) in hours.iter().enumerate() {
        let x = f64::from(left) + slot * i as f64 + (slot - bar_w) / 2.0;
        let tip = postern_web::i18n::fill(
            words.bar,
            &[
                ("time", &hh(h.start)),
                ("success", &h.success.to_string()),
                ("failed", &h.failed.to_string()),
            ],
        );
        s.push_str(&format!("<g class=\"bar\"><title>{}</title>", escape(&tip)));
        // A transparent full-height target, so the tooltip is easy to reach.
        s.push_str(&format!(
            "<rect class=\"hit\" x=\"{x:.1}\" y=\"{margin}\" width=\"{bar_w:.1}\" height=\"{plot_h}\"/>"
        ));
        if h.success > 0 {
            let y = y_of(h.success);
            s.push_str(&format!(
                "<rect class=\"ok\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"/>",
                y_of(0) - y
            ));
        }
        if h.failed > 0 {
            let y = y_of(h.success + h.failed);
            s.push_str(&format!(
                "<rect class=\"failed\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"/>",
                y_of(h.success) - y
            ));
        }
        s.push_str("</g>");
        if i % label_every == 0 {
            s.push_str(&format!(
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\">{}</text>",
                x,
                height - 6,
                hh(h.start)
            ));
        }
    }
    s.push_str("</svg>");
    s
}

/// `counts` (events as `(unix time, succeeded)`) bucketed into the 48 hours
/// that end with the hour of `now`, oldest first. Events outside are ignored.
pub fn bucket(now: i64, events: impl IntoIterator<Item = (i64, bool)>) -> Vec<Hour> {
    let last = now - now.rem_euclid(3600);
    let first = last - 47 * 3600;
    let mut hours: Vec<Hour> = (0..48)
        .map(|i| Hour {
            start: first + i * 3600,
            ..Hour::default()
        })
        .collect();
    for (at, ok) in events {
        if at < first || at >= last + 3600 {
            continue;
        }
        let h = &mut hours[((at - first) / 3600) as usize];
        if ok {
            h.success += 1;
        } else {
            h.failed += 1;
        }
    }
    hours
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: ChartWords<'static> = ChartWords {
        title: "Sign-ins per hour <48 h>",
        bar: "{time}: {success} signed in, {failed} failed",
    };

    #[test]
    fn the_scale_is_a_round_number_at_or_above_the_busiest_hour() {
        assert_eq!(nice_ceiling(0), 4);
        assert_eq!(nice_ceiling(3), 4);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(21), 40);
        assert_eq!(nice_ceiling(40), 40);
        assert_eq!(nice_ceiling(51), 100);
        assert_eq!(nice_ceiling(1000), 1000);
    }

    #[test]
    fn events_fall_into_their_hour_of_the_last_48_and_older_ones_are_dropped() {
        let now: i64 = 1_700_000_000 + 1234; // some minutes into an hour
        let hour = now - now.rem_euclid(3600);
        let hours = bucket(
            now,
            [
                (now, true),
                (now - 10, false),
                (hour - 1, true),             // the hour before
                (hour - 47 * 3600, true),     // the first hour shown
                (hour - 47 * 3600 - 1, true), // 49 hours ago: out
                (now + 3600, true),           // the future: out
            ],
        );
        assert_eq!(hours.len(), 48);
        assert_eq!(hours[47].start, hour);
        assert_eq!((hours[47].success, hours[47].failed), (1, 1));
        assert_eq!((hours[46].success, hours[46].failed), (1, 0));
        assert_eq!((hours[0].success, hours[0].failed), (1, 0));
        let total: u32 = hours.iter().map(|h| h.success + h.failed).sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn bars_are_as_tall_as_their_counts_and_say_their_numbers() {
        let mut hours = bucket(0, []);
        hours[10].success = 10;
        hours[11].success = 5;
        hours[11].failed = 5;
        let svg = hourly_svg(&hours, &WORDS, Layout::WIDE);
        assert!(svg.starts_with("<svg class=\"chart wide\""));
        assert!(svg.ends_with("</svg>"));
        // The title is escaped, text and attribute alike.
        assert!(svg.contains("aria-label=\"Sign-ins per hour &lt;48 h&gt;\""));
        assert!(!svg.contains("<48 h>"));
        // Scale 0..10: a full bar spans the plot (170 units), half a bar 85.
        assert!(svg.contains("height=\"170.0\""), "{svg}");
        assert_eq!(svg.matches("class=\"ok\"").count(), 2);
        assert_eq!(svg.matches("class=\"failed\"").count(), 1);
        assert_eq!(svg.matches("height=\"85.0\"").count(), 2, "{svg}");
        // Every hour has its tooltip; empty ones draw no bar.
        assert_eq!(svg.matches("<g class=\"bar\">").count(), 48);
        let h10 = hh(hours[10].start);
        assert!(svg.contains(&format!("<title>{h10}: 10 signed in, 0 failed</title>")));
        // Hour labels under every sixth bar.
        assert_eq!(svg.matches("<text class=\"axis\" x=").count(), 3 + 8);
        // Nothing a strict CSP would block.
        assert!(!svg.contains("style="));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn a_quiet_chart_still_has_a_scale() {
        let svg = hourly_svg(&bucket(0, []), &WORDS, Layout::COMPACT);
        assert!(
            svg.contains(">4</text>") && svg.contains(">2</text>") && svg.contains(">0</text>")
        );
        assert!(!svg.contains("class=\"ok\""));
    }

    #[test]
    fn the_compact_drawing_has_room_for_its_labels_on_a_phone() {
        let mut hours = bucket(0, []);
        hours[47].success = 10;
        let svg = hourly_svg(&hours, &WORDS, Layout::COMPACT);
        assert!(svg.starts_with("<svg class=\"chart compact\" viewBox=\"0 0 300 170\""));
        // Four hour labels (every twelfth bar) besides the three of the scale.
        assert_eq!(svg.matches("<text class=\"axis\" x=").count(), 3 + 4);
        // A full bar spans the plot: 170 - 8 - 24 units.
        assert!(svg.contains("height=\"138.0\""), "{svg}");
        assert_eq!(svg.matches("<g class=\"bar\">").count(), 48);
        // The last bar ends inside the drawing.
        let last_x: f64 = svg
            .rsplit("<rect class=\"ok\" x=\"")
            .next()
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(last_x > 290.0 && last_x < 300.0, "{last_x}");
    }
}
