//! The pages' words, from the one catalogue per language in
//! [`postern_core::i18n`] (pages, account, panel, passkeys and emails
//! together). Re-exported here so the faces say `crate::i18n::…`.

pub use postern_core::i18n::{account, admin, fill, negotiate, passkeys, strings, Strings};
