//! The one-time code of SPEC §3.1 as people type it: six digits, often
//! pasted with spaces, dashes or dots between them.

/// Digits in a code.
pub const CODE_LEN: usize = 6;

/// A code as people paste it ("123 456", "123-456", " 123456 "): the
/// digits and nothing between them. Other characters are kept, so that a
/// code with letters stays wrong.
pub fn clean(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '‑' | '–' | '—' | '.'))
        .collect()
}

/// Whether `code` (cleaned) has the shape of a code at all: six ASCII
/// digits. Anything else is a typing slip, not a wrong try.
pub fn is_code(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_codes_lose_their_separators_and_keep_everything_else() {
        let cases = [
            ("123456", "123456", "as sent"),
            ("123 456", "123456", "a space between halves"),
            (" 123456 \n", "123456", "spaces around"),
            ("123-456", "123456", "a hyphen"),
            ("123\u{2013}456", "123456", "an en dash"),
            ("123\u{2014}456", "123456", "an em dash"),
            ("123.456", "123456", "a dot"),
            (
                "12a456",
                "12a456",
                "a letter stays, so the code stays wrong",
            ),
            ("", "", "nothing typed"),
        ];
        for (typed, cleaned, why) in cases {
            assert_eq!(clean(typed), cleaned, "{why}");
        }
    }

    #[test]
    fn only_six_digits_are_a_code() {
        assert!(is_code("012345"));
        for bad in [
            "12345",
            "1234567",
            "12a456",
            "",
            "\u{661}\u{662}\u{663}\u{664}\u{665}\u{666}",
        ] {
            assert!(!is_code(bad), "{bad:?}");
        }
    }
}
