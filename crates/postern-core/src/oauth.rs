//! OAuth 2.0 / OpenID Connect parameters shared by `/authorize`,
//! `/request-magic-link` and `/token`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use crate::crypto::constant_time_eq;

/// Scopes Postern knows. Unknown scopes are dropped (RFC 6749 §3.3 lets the
/// server grant fewer than asked).
pub const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Why authorization parameters were refused. Each maps to `invalid_request`.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum ParamError {
    /// PKCE is required for public clients (SPEC §3.1, RFC 7636).
    #[error("code_challenge is required for public clients")]
    PkceRequired,
    /// Only S256 is accepted.
    #[error("code_challenge_method must be S256")]
    PkceMethod,
    /// Not 43 base64url characters.
    #[error("code_challenge must be 43 base64url characters (S256)")]
    PkceMalformed,
    /// A parameter too long or with control characters.
    #[error("{0} is too long or contains control characters")]
    BadText(&'static str),
}

/// A space-separated, de-duplicated list of known scopes, in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<&'static str>);

impl Scope {
    /// Parses a `scope` parameter; `openid` is always included.
    pub fn parse(text: Option<&str>) -> Self {
        let asked: Vec<&str> = text.unwrap_or("").split_ascii_whitespace().collect();
        let mut out = vec!["openid"];
        for known in &KNOWN_SCOPES[1..] {
            if asked.contains(known) {
                out.push(known);
            }
        }
        Self(out)
    }

    /// Whether `scope` was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(&scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|s| other.0.contains(s))
    }

    /// The scopes, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// Checks `code_challenge` / `code_challenge_method` for a client, returning
/// the challenge to store. S256 only; required when `public`.
pub fn check_pkce(
    public: bool,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, ParamError> {
    match (challenge.filter(|c| !c.is_empty()), method) {
        (None, None) if !public => Ok(None),
        (None, _) => Err(ParamError::PkceRequired),
        // RFC 7636 §4.3 defaults to "plain", which we refuse.
        (Some(_), m) if m != Some("S256") => Err(ParamError::PkceMethod),
        (Some(c), _) => {
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Some(c.to_owned()))
            } else {
                Err(ParamError::PkceMalformed)
            }
        }
    }
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
/// The verifier must be 43–128 unreserved characters.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    constant_time_eq(
        URL_SAFE_NO_PAD.encode(digest).as_bytes(),
        challenge.as_bytes(),
    )
}

/// Checks an opaque client-supplied value (`state`, `nonce`): at most
/// `max` bytes and no control characters. Empty counts as absent.
pub fn check_text(
    name: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ParamError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= max && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
        Some(_) => Err(ParamError::BadText(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_canonical() {
        let s = Scope::parse(Some("email  bogus openid email offline_access"));
        assert_eq!(s.to_string(), "openid email offline_access");
        assert_eq!(Scope::parse(None).to_string(), "openid");
        assert!(Scope::parse(Some("email")).is_subset_of(&s));
        assert!(!s.is_subset_of(&Scope::parse(Some("email"))));
    }

    #[test]
    fn pkce_is_s256_only_and_required_for_public_clients() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
        assert_eq!(
            check_pkce(true, Some(challenge), Some("S256")),
            Ok(Some(challenge.into()))
        );
        assert_eq!(check_pkce(false, None, None), Ok(None));
        assert_eq!(check_pkce(true, None, None), Err(ParamError::PkceRequired));
        assert_eq!(
            check_pkce(false, None, Some("S256")),
            Err(ParamError::PkceRequired)
        );
        assert_eq!(
            check_pkce(false, Some(challenge), None),
            Err(ParamError::PkceMethod)
        );
        assert_eq!(
            check_pkce(true, Some(challenge), Some("plain")),
            Err(ParamError::PkceMethod)
        );
        assert_eq!(
            check_pkce(true, Some("abc"), Some("S256")),
            Err(ParamError::PkceMalformed)
        );
    }

    #[test]
    fn opaque_values_are_bounded() {
        assert_eq!(check_text("state", Some("xyz"), 10), Ok(Some("xyz".into())));
        assert_eq!(check_text("state", Some(""), 10), Ok(None));
        assert!(check_text("state", Some("a\nb"), 10).is_err());
        assert!(check_text("state", Some(&"a".repeat(11)), 10).is_err());
    }
}
