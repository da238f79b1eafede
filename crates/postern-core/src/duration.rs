//! Durations: `15m`, `24h`, `90d` in settings and flags, and spans of time
//! in words ("15 minutes", "2 hours 30 minutes") for pages and emails, said
//! by [`say_duration`] with each language's words.

use thiserror::Error;

/// A duration string that could not be understood.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: use a number followed by s, m, h or d (e.g. 15m)")]
pub struct DurationError(pub String);

/// Parses `90s`, `15m`, `24h`, `30d` (or a bare number of seconds) into seconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let t = text.trim();
    let err = || DurationError(text.to_owned());
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    if digits.is_empty() || digits.len() > 9 {
        return Err(err());
    }
    let n: i64 = digits.parse().map_err(|_| err())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    Ok(n * mult)
}

/// Renders seconds as the shortest exact human form (`15m`, `2h`, `90s`).
pub fn format_duration(seconds: i64) -> String {
    if seconds != 0 && seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else if seconds != 0 && seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds != 0 && seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The words one language says spans of time with, from its catalogue.
/// `{n}` in the plural forms is the number.
#[derive(Debug, Clone, Copy)]
pub struct DurationWords<'a> {
    /// "1 minute".
    pub one_minute: &'a str,
    /// "{n} minutes".
    pub minutes: &'a str,
    /// "1 hour".
    pub one_hour: &'a str,
    /// "{n} hours".
    pub hours: &'a str,
}

/// Which way a span is rounded to whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Down, never promising more time than there is (what is left of a
    /// link), at least one minute.
    Down,
    /// Up, never promising less waiting than there is (`Retry-After`).
    Up,
}

/// A span of time in words, exact to the minute, the one formatter of
/// pages and emails: whole hours in hours ("1 hour", "24 hours"), under two
/// hours in minutes ("15 minutes", "90 minutes"), otherwise hours then
/// minutes ("2 hours 30 minutes"), joined by a space as English, German and
/// French all say it.
pub fn say_duration(words: &DurationWords<'_>, seconds: i64, rounding: Rounding) -> String {
    let minutes = match rounding {
        Rounding::Down => (seconds / 60).max(1),
        Rounding::Up => (seconds.max(1) + 59) / 60,
    };
    let say = |n: i64, one: &str, many: &str| {
        if n == 1 {
            one.to_owned()
        } else {
            many.replace("{n}", &n.to_string())
        }
    };
    let (hours, rest) = (minutes / 60, minutes % 60);
    if rest == 0 {
        say(hours, words.one_hour, words.hours)
    } else if minutes < 120 {
        say(minutes, words.one_minute, words.minutes)
    } else {
        format!(
            "{} {}",
            say(hours, words.one_hour, words.hours),
            say(rest, words.one_minute, words.minutes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in ["", "m", "15x", "-5m", "1.5h", "99999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(900), "15m");
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(61), "61s");
    }

    const EN: DurationWords<'static> = DurationWords {
        one_minute: "1 minute",
        minutes: "{n} minutes",
        one_hour: "1 hour",
        hours: "{n} hours",
    };

    #[test]
    fn a_link_with_150_minutes_left_says_2_hours_30_minutes_both_ways() {
        // The check page once said "3 hours" and the email "150 minutes".
        assert_eq!(
            say_duration(&EN, 9000, Rounding::Down),
            "2 hours 30 minutes"
        );
        assert_eq!(say_duration(&EN, 9000, Rounding::Up), "2 hours 30 minutes");
        assert_eq!(
            say_duration(&EN, 8999, Rounding::Down),
            "2 hours 29 minutes"
        );
        assert_eq!(say_duration(&EN, 8941, Rounding::Up), "2 hours 30 minutes");
    }

    #[test]
    fn spans_are_said_exactly_to_the_minute() {
        let cases = [
            (0, Rounding::Down, "1 minute"),
            (0, Rounding::Up, "1 minute"),
            (59, Rounding::Down, "1 minute"),
            (61, Rounding::Up, "2 minutes"),
            (899, Rounding::Down, "14 minutes"),
            (900, Rounding::Down, "15 minutes"),
            (3600, Rounding::Down, "1 hour"),
            (3601, Rounding::Up, "61 minutes"),
            (5400, Rounding::Down, "90 minutes"),
            (7200, Rounding::Up, "2 hours"),
            (7201, Rounding::Up, "2 hours 1 minute"),
            (7260, Rounding::Down, "2 hours 1 minute"),
            (86_399, Rounding::Down, "23 hours 59 minutes"),
            (86_400, Rounding::Down, "24 hours"),
        ];
        for (seconds, rounding, want) in cases {
            assert_eq!(
                say_duration(&EN, seconds, rounding),
                want,
                "{seconds} s {rounding:?}"
            );
        }
    }
}
