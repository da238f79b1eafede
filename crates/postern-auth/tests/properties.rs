//! Property tests of the shape check on link tokens, the first thing every
//! presented token meets: thousands of generated inputs, never a panic;
//! every token Postern issues passes, and nothing that passes can be more
//! than an opaque, bounded, URL-safe string. One-time codes as typed
//! (`postern_core::code`) are tested in `postern-core/tests/properties.rs`.

use postern_auth::signin::well_formed_token;
use postern_core::crypto::random_token;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    /// Anything that passes is `pml_` and 43 to 96 base64url characters:
    /// no control character, no separator, nothing to escape in a URL or
    /// a log line.
    #[test]
    fn a_well_formed_token_is_bounded_and_url_safe(token in prop_oneof![
        "pml_[A-Za-z0-9_-]{0,110}",
        "(pml_|PML_|pml|)[ -~]{0,60}",
        "pml_[A-Za-z0-9_\\-\r\n\0%./+=]{40,60}",
        any::<String>(),
    ]) {
        if well_formed_token(&token) {
            let rest = token.strip_prefix("pml_").expect("the prefix");
            prop_assert!((43..=96).contains(&rest.len()), "{}", token);
            prop_assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    /// Every token Postern makes (`pml_` + 32 random bytes) is well formed,
    /// and so is none with a byte changed to one outside the alphabet.
    #[test]
    fn issued_tokens_are_well_formed_and_a_stray_byte_is_not(at in 4usize..47, stray in prop_oneof![
        Just('.'), Just('%'), Just('\n'), Just(' '), Just('+'), Just('/'), Just('='), Just('é'),
    ]) {
        let token = format!("pml_{}", random_token(32));
        prop_assert!(well_formed_token(&token), "{}", token);
        let mut broken: Vec<char> = token.chars().collect();
        broken[at] = stray;
        let broken: String = broken.into_iter().collect();
        prop_assert!(!well_formed_token(&broken), "{:?}", broken);
    }
}
