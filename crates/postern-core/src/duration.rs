//! Human durations such as `15m`, `24h`, `90d` used by settings and flags.

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
}
