//! The one routine that turns user input into an email address (SPEC §1).
//!
//! Accepted: exactly one bare address `local@domain` — no display name, no
//! comments, no quoted local part, no whitespace or control characters
//! inside, nothing that could end a mail header. The local part is ASCII
//! (RFC 5322 `dot-atom`); the domain may be internationalized and is stored
//! in punycode. Everything is lower-cased. Lengths follow RFC 5321 §4.5.3.1:
//! local part ≤ 64 octets, domain ≤ 253, whole address ≤ 254.

use std::fmt;
use thiserror::Error;

/// A normalized, validated email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// Why an address was refused. Every variant renders as a sentence safe to
/// show the person who typed it.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum EmailError {
    /// Empty after trimming.
    #[error("the email address is empty")]
    Empty,
    /// Longer than RFC 5321 allows.
    #[error("the email address is too long")]
    TooLong,
    /// Control characters, CR/LF, whitespace, or characters only allowed in
    /// display names, lists or quoted strings.
    #[error("the email address contains characters that are not allowed")]
    ForbiddenCharacter,
    /// Not exactly one `@`.
    #[error("the email address must contain exactly one @")]
    NotOneAt,
    /// Bad local part.
    #[error("the part before the @ is not valid")]
    BadLocalPart,
    /// Bad domain.
    #[error("the domain of the email address is not valid")]
    BadDomain,
}

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_TOTAL: usize = 254;

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

impl EmailAddress {
    /// Validates and normalizes `input` (see the module documentation).
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim_matches(|c: char| c == ' ' || c == '\t');
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        // Bound work before any further processing of hostile input.
        if trimmed.len() > 4 * MAX_TOTAL {
            return Err(EmailError::TooLong);
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"".contains(c))
        {
            return Err(EmailError::ForbiddenCharacter);
        }
        let mut parts = trimmed.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::NotOneAt);
        };
        if local.is_empty()
            || local.len() > MAX_LOCAL
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local.chars().all(|c| c == '.' || is_atext(c))
        {
            return Err(EmailError::BadLocalPart);
        }
        let domain = normalize_domain(domain)?;
        let address = format!("{}@{}", local.to_ascii_lowercase(), domain);
        if address.len() > MAX_TOTAL {
            return Err(EmailError::TooLong);
        }
        Ok(Self(address))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part (punycode, lower case).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

fn normalize_domain(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() || domain.len() > 4 * MAX_DOMAIN {
        return Err(EmailError::BadDomain);
    }
    let ascii = idna::domain_to_ascii(domain).map_err(|_| EmailError::BadDomain)?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_owned();
    if ascii.is_empty() || ascii.len() > MAX_DOMAIN {
        return Err(EmailError::BadDomain);
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(EmailError::BadDomain);
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(EmailError::BadDomain);
        }
    }
    // A numeric top-level label would make this an IP address, which we refuse.
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(EmailError::BadDomain);
    }
    Ok(ascii)
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_are_normalized() {
        let cases = [
            ("user@example.com", "user@example.com"),
            ("  User@Example.COM ", "user@example.com"),
            (
                "\tfirst.last+tag@sub.example.org",
                "first.last+tag@sub.example.org",
            ),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("a@b.c", "a@b.c"),
            ("x@bücher.example", "x@xn--bcher-kva.example"),
            ("x@BÜCHER.example", "x@xn--bcher-kva.example"),
            ("x@例え.jp", "x@xn--r8jz45g.jp"),
            ("x@example.com.", "x@example.com"),
            (
                "_-#!$%&*/=?^`{|}~@ex-ample.com",
                "_-#!$%&*/=?^`{|}~@ex-ample.com",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                EmailAddress::parse(input).map(|e| e.0),
                Ok(expected.to_owned()),
                "{input:?}"
            );
        }
    }

    #[test]
    fn hostile_and_malformed_addresses_are_refused() {
        use EmailError::*;
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_domain = format!("a@{}.com", "b".repeat(250));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let huge = "a".repeat(100_000);
        let cases: Vec<(&str, EmailError)> = vec![
            ("", Empty),
            ("   ", Empty),
            ("a@b.c\r\nBcc: x@y.z", ForbiddenCharacter),
            ("a@b.c\nBcc: x@y.z", ForbiddenCharacter),
            ("a@b.c\0", ForbiddenCharacter),
            ("Alice <alice@example.com>", ForbiddenCharacter),
            ("<alice@example.com>", ForbiddenCharacter),
            ("alice@example.com, bob@example.com", ForbiddenCharacter),
            ("alice@example.com;bob@example.com", ForbiddenCharacter),
            ("\"alice\"@example.com", ForbiddenCharacter),
            ("alice(comment)@example.com", ForbiddenCharacter),
            ("al ice@example.com", ForbiddenCharacter),
            ("alice@[127.0.0.1]", ForbiddenCharacter),
            ("alice@exa\u{85}mple.com", ForbiddenCharacter),
            ("alice@exa\u{2028}mple.com", ForbiddenCharacter),
            ("alice", NotOneAt),
            ("a@b@example.com", NotOneAt),
            ("@example.com", BadLocalPart),
            (".alice@example.com", BadLocalPart),
            ("alice.@example.com", BadLocalPart),
            ("al..ice@example.com", BadLocalPart),
            ("ålice@example.com", BadLocalPart),
            (&long_local, BadLocalPart),
            ("alice@", BadDomain),
            ("alice@localhost", BadDomain),
            ("alice@-example.com", BadDomain),
            ("alice@example-.com", BadDomain),
            ("alice@exa_mple.com", BadDomain),
            ("alice@example..com", BadDomain),
            ("alice@127.0.0.1", BadDomain),
            (&long_label, BadDomain),
            (&long_domain, BadDomain),
            (&huge, TooLong),
        ];
        for (input, expected) in cases {
            assert_eq!(EmailAddress::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn the_whole_address_is_limited_to_254_octets() {
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(60)
        );
        let addr = format!("{local}@{domain}");
        assert!(addr.len() > 254);
        assert_eq!(EmailAddress::parse(&addr), Err(EmailError::TooLong));
    }

    #[test]
    fn the_domain_is_available() {
        let e = EmailAddress::parse("a@Bücher.example").unwrap();
        assert_eq!(e.domain(), "xn--bcher-kva.example");
        assert_eq!(e.to_string(), "a@xn--bcher-kva.example");
    }
}
