//! The words of passkeys (issue 15): the offer after an email sign-in, the
//! button on `/login`, the list on `/account`, their errors. The
//! `passkeys` section of each language's [`super::Catalogue`].

/// The passkey strings of one language.
#[derive(Debug)]
pub struct PasskeyStrings {
    /// BCP 47 primary language tag.
    pub lang: &'static str,

    // ---- /login ---------------------------------------------------------
    /// The button next to the email form.
    pub sign_in_button: &'static str,
    /// Between the email form and the passkey button.
    pub or: &'static str,

    // ---- the offer after an email sign-in -------------------------------
    /// Title and heading.
    pub offer_title: &'static str,
    /// What a passkey does.
    pub offer_text: &'static str,
    /// The button that makes one.
    pub offer_create: &'static str,
    /// The button that goes on without one.
    pub offer_not_now: &'static str,
    /// Shown when the browser cannot make passkeys.
    pub offer_unsupported: &'static str,

    // ---- /account -------------------------------------------------------
    /// Heading of the list.
    pub list_title: &'static str,
    /// What passkeys are for, above the list.
    pub list_intro: &'static str,
    /// No passkey yet.
    pub list_empty: &'static str,
    /// "Add a passkey".
    pub add: &'static str,
    /// Label: when it was made.
    pub created: &'static str,
    /// Label: when it last signed in.
    pub last_used: &'static str,
    /// It never signed in yet.
    pub never_used: &'static str,
    /// Device kind: synced by a password manager.
    pub kind_synced: &'static str,
    /// Device kind: a security key.
    pub kind_security_key: &'static str,
    /// Device kind: one device only.
    pub kind_this_device: &'static str,
    /// Label of the name field.
    pub name_label: &'static str,
    /// Button: save the name.
    pub rename: &'static str,
    /// Button: delete it.
    pub delete: &'static str,
    /// After adding one.
    pub notice_added: &'static str,
    /// After deleting one.
    pub notice_deleted: &'static str,
    /// After renaming one.
    pub notice_renamed: &'static str,
    /// Method `passkey` in the history.
    pub method_passkey: &'static str,
    /// A link or code used after saying the passkey was lost.
    pub method_lost: &'static str,

    // ---- errors ---------------------------------------------------------
    /// Title of a failed passkey sign-in or registration.
    pub error_title: &'static str,
    /// A ceremony that is used, expired or another browser's.
    pub error_challenge: &'static str,
    /// An answer that did not verify.
    pub error_rejected: &'static str,
    /// An unknown passkey.
    pub error_unknown: &'static str,
    /// A disabled account.
    pub error_disabled: &'static str,
    /// An app without passkeys.
    pub error_off: &'static str,
    /// Registered already.
    pub error_duplicate: &'static str,
    /// The browser gave up or the person cancelled (the script says it).
    pub error_cancelled: &'static str,

    // ---- required_after_first_sign_in -----------------------------------
    /// Title: the app wants the passkey.
    pub required_title: &'static str,
    /// Why the link alone is not enough.
    pub required_text: &'static str,
    /// Button: sign in with a passkey instead.
    pub required_use_passkey: &'static str,
    /// Above the "lost" button.
    pub required_lost_text: &'static str,
    /// Button: I lost my passkey, let the email work.
    pub required_lost_button: &'static str,
}

/// The passkey strings for a primary language tag, English when unsupported.
pub fn strings(lang: &str) -> &'static PasskeyStrings {
    &super::exact_or_english(lang).passkeys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_passkey_strings_named_after_it() {
        for lang in crate::locale::SUPPORTED {
            assert_eq!(strings(lang).lang, *lang);
            assert!(strings(lang).required_text.contains("{app}"));
        }
    }
}
