//! The words of Postern's own account pages (`/account`, its confirmation
//! and "deleted" pages) and of the logout confirmation, the `account`
//! section of each language's [`super::Catalogue`], so a key missing from
//! one language is a compile error.
//! Placeholders (`{email}`, `{app}`, `{ip}`) are filled by [`super::fill`].

/// The account pages' strings of one language.
#[derive(Debug)]
pub struct AccountStrings {
    /// BCP 47 primary language tag, as [`super::Strings::lang`].
    pub lang: &'static str,

    // ---- /account ------------------------------------------------------
    /// Title and heading.
    pub title: &'static str,
    /// "Signed in as {email}".
    pub signed_in_as: &'static str,
    /// Heading of the sessions.
    pub sessions_title: &'static str,
    /// Marks the session of the browser showing the page.
    pub this_browser: &'static str,
    /// A session an app holds through the headless API: "through {app}".
    pub through_app: &'static str,
    /// "IP address {ip}".
    pub ip_address: &'static str,
    /// "IP address {ip}, near {place}": the address and the approximate
    /// place a GeoIP database gives for it ("Berlin, Germany").
    pub ip_address_place: &'static str,
    /// Label: when the session was last used.
    pub last_seen: &'static str,
    /// Label: when the session began.
    pub signed_in_at: &'static str,
    /// Button: end one session.
    pub sign_out: &'static str,
    /// Button: end every session and refresh token of the account.
    pub sign_out_everywhere: &'static str,
    /// What "sign out everywhere" does.
    pub sign_out_everywhere_text: &'static str,
    /// Heading of the history.
    pub history_title: &'static str,
    /// No history.
    pub history_empty: &'static str,
    /// Method `link`.
    pub method_link: &'static str,
    /// Method `code`.
    pub method_code: &'static str,
    /// Method `admin_link`: a link an administrator sent or handed over.
    pub method_admin_link: &'static str,
    /// Outcome `success`.
    pub outcome_success: &'static str,
    /// Any other outcome.
    pub outcome_failed: &'static str,
    /// An app that was deleted since.
    pub removed_app: &'static str,
    /// Postern's own account page in the history: "Postern account".
    pub own_account_app: &'static str,
    /// Heading of the apps the person allowed.
    pub apps_title: &'static str,
    /// What revoking does.
    pub apps_intro: &'static str,
    /// No app allowed.
    pub apps_empty: &'static str,
    /// Button: take an app's access back.
    pub revoke: &'static str,
    /// After signing out one session: a confirmation.
    pub notice_signed_out: &'static str,
    /// After revoking an app: a confirmation, "{app} …".
    pub notice_revoked: &'static str,
    /// Heading of the deletion section, and the button leading to it.
    pub delete_title: &'static str,
    /// What deleting does.
    pub delete_text: &'static str,

    // ---- /account/delete -----------------------------------------------
    /// Title and heading: "Delete {email}?".
    pub delete_confirm_title: &'static str,
    /// What goes, and that it cannot be undone.
    pub delete_confirm_text: &'static str,
    /// The button that deletes.
    pub delete_confirm_button: &'static str,
    /// Back to `/account`.
    pub cancel: &'static str,
    /// After deleting: heading.
    pub deleted_title: &'static str,
    /// After deleting: text.
    pub deleted_text: &'static str,

    // ---- /logout without a valid id_token_hint -------------------------
    /// Title and heading: "Sign out of Postern?".
    pub logout_title: &'static str,
    /// Why the question is asked.
    pub logout_text: &'static str,
    /// Above the accounts that will be signed out.
    pub logout_accounts: &'static str,
    /// The button.
    pub logout_button: &'static str,
}

/// The account strings for a primary language tag, English when unsupported.
pub fn strings(lang: &str) -> &'static AccountStrings {
    &super::exact_or_english(lang).account
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_account_strings_named_after_it() {
        for lang in crate::locale::SUPPORTED {
            assert_eq!(strings(lang).lang, *lang);
        }
    }

    #[test]
    fn the_placeholders_each_account_string_needs_are_there_in_every_language() {
        for lang in crate::locale::SUPPORTED {
            let s = strings(lang);
            let cases: &[(&str, &str, &[&str])] = &[
                ("signed_in_as", s.signed_in_as, &["{email}"]),
                ("through_app", s.through_app, &["{app}"]),
                ("ip_address", s.ip_address, &["{ip}"]),
                ("ip_address_place", s.ip_address_place, &["{ip}", "{place}"]),
                ("delete_confirm_title", s.delete_confirm_title, &["{email}"]),
                ("notice_revoked", s.notice_revoked, &["{app}"]),
            ];
            for (key, text, needs) in cases {
                for n in *needs {
                    assert!(text.contains(n), "{lang}.{key} lacks {n}: {text}");
                }
            }
        }
    }
}
