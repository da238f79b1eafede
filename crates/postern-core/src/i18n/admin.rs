//! The words of the administration panel (`/admin`, SPEC §3.5), the
//! `admin` section of each language's [`super::Catalogue`], so a key
//! missing from one language is a compile error. Placeholders are filled
//! by [`super::fill`].

/// The panel's strings of one language.
#[derive(Debug)]
pub struct AdminStrings {
    /// BCP 47 primary language tag, as [`super::Strings::lang`].
    pub lang: &'static str,

    // ---- layout ----------------------------------------------------------
    /// "Postern administration": after every page title and atop the menu.
    pub panel: &'static str,
    /// Menu.
    pub nav_dashboard: &'static str,
    pub nav_apps: &'static str,
    pub nav_users: &'static str,
    pub nav_history: &'static str,
    pub nav_keys: &'static str,
    pub nav_outbox: &'static str,
    pub nav_audit: &'static str,
    /// The menu's accessible name.
    pub nav_label: &'static str,
    /// "Administrator" / "App owner", beside the signed-in address.
    pub role_admin: &'static str,
    pub role_owner: &'static str,
    /// Link to `/account`.
    pub your_account: &'static str,
    /// Owners: what they see.
    pub owner_note: &'static str,

    // ---- no access -------------------------------------------------------
    pub no_access_title: &'static str,
    /// "{email} is neither …".
    pub no_access_text: &'static str,
    /// How to use another account.
    pub no_access_other: &'static str,

    // ---- dashboard -------------------------------------------------------
    pub dashboard_title: &'static str,
    pub today: &'static str,
    pub this_week: &'static str,
    pub outbox_pending: &'static str,
    pub outbox_failed: &'static str,
    pub apps_count: &'static str,
    pub live_sessions: &'static str,
    /// The chart's accessible name and heading.
    pub chart_title: &'static str,
    /// One bar: "{time}: {success} signed in, {failed} failed".
    pub chart_bar: &'static str,
    /// Legend.
    pub chart_ok: &'static str,
    pub chart_failed: &'static str,

    // ---- outcomes and methods ---------------------------------------------
    pub outcome_success: &'static str,
    pub outcome_wrong_code: &'static str,
    pub outcome_expired: &'static str,
    pub outcome_used: &'static str,
    pub outcome_refused: &'static str,
    pub method_link: &'static str,
    pub method_code: &'static str,
    pub method_admin_link: &'static str,

    // ---- common ----------------------------------------------------------
    pub save: &'static str,
    pub saved: &'static str,
    pub cancel: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub none: &'static str,
    pub never: &'static str,
    /// "Older": the next page of a list.
    pub older: &'static str,
    /// "Newest": back to the first page.
    pub newest: &'static str,
    /// Table headings.
    pub col_name: &'static str,
    pub col_time: &'static str,
    pub col_user: &'static str,
    pub col_app: &'static str,
    pub col_ip: &'static str,
    pub col_browser: &'static str,
    pub col_method: &'static str,
    pub col_outcome: &'static str,
    pub col_created: &'static str,
    /// An app deleted since.
    pub removed_app: &'static str,
    /// "{ip}, near {place}".
    pub ip_place: &'static str,
    /// A form with a problem: "Not saved: {reason}".
    pub not_saved: &'static str,

    // ---- confirmation ------------------------------------------------------
    pub confirm_title: &'static str,
    pub confirm_button: &'static str,
    /// "Delete {app}? …".
    pub confirm_delete_app: &'static str,
    /// "Make a new secret for {app}? …".
    pub confirm_rotate_secret: &'static str,
    pub confirm_delete_user: &'static str,
    pub confirm_disable_user: &'static str,
    /// "End the session of {email} in {browser}?".
    pub confirm_end_session: &'static str,
    pub confirm_rotate_keys: &'static str,

    // ---- apps --------------------------------------------------------------
    pub apps_title: &'static str,
    pub apps_empty: &'static str,
    pub new_app: &'static str,
    pub create_app: &'static str,
    pub public_app: &'static str,
    pub confidential_app: &'static str,
    pub first_party: &'static str,
    pub enabled: &'static str,
    pub disabled: &'static str,
    pub field_name: &'static str,
    pub field_redirect_uris: &'static str,
    pub field_public: &'static str,
    pub one_per_line: &'static str,
    pub secret_once_title: &'static str,
    pub secret_once_text: &'static str,
    pub back_to_app: &'static str,
    pub settings_title: &'static str,
    pub field_enabled: &'static str,
    pub field_post_logout: &'static str,
    pub field_initiate_login: &'static str,
    pub field_owners: &'static str,
    pub owners_admin_only: &'static str,
    pub field_link_ttl: &'static str,
    pub field_session_max_age: &'static str,
    pub duration_hint: &'static str,
    pub field_device_policy: &'static str,
    pub field_passkeys: &'static str,
    pub field_signup: &'static str,
    pub field_allowed_domains: &'static str,
    pub field_bind_ip: &'static str,
    pub field_subject_type: &'static str,
    pub field_locale: &'static str,
    pub field_consent: &'static str,
    /// The settings' choices, in words (the form sends the SPEC's values).
    pub opt_device_any: &'static str,
    pub opt_device_same_browser: &'static str,
    pub opt_device_remote: &'static str,
    pub opt_passkeys_off: &'static str,
    pub opt_passkeys_optional: &'static str,
    pub opt_passkeys_required: &'static str,
    pub opt_consent_default: &'static str,
    pub opt_consent_required: &'static str,
    pub opt_consent_skip: &'static str,
    pub opt_subject_pairwise: &'static str,
    pub opt_subject_public: &'static str,
    pub field_id_token_alg: &'static str,
    pub field_token_email: &'static str,
    pub field_rate: &'static str,
    pub branding_title: &'static str,
    pub field_brand_name: &'static str,
    pub field_logo_url: &'static str,
    pub field_color: &'static str,
    pub field_sender_name: &'static str,
    pub field_email_note: &'static str,
    pub preview_title: &'static str,
    pub preview_language: &'static str,
    /// Without the script: shows the preview of what the form holds.
    pub preview_button: &'static str,
    /// The preview's frame title.
    pub preview_frame: &'static str,
    pub test_email: &'static str,
    pub test_email_to: &'static str,
    /// "A test email to {email} is in the outbox."
    pub test_email_sent: &'static str,
    pub secret_title: &'static str,
    pub secret_text: &'static str,
    pub rotate_secret: &'static str,
    pub previous_valid_for: &'static str,
    pub end_at_once: &'static str,
    pub delete_app: &'static str,
    pub delete_app_text: &'static str,
    pub app_deleted: &'static str,

    // ---- users -------------------------------------------------------------
    pub users_title: &'static str,
    pub search_label: &'static str,
    pub search_button: &'static str,
    pub users_empty: &'static str,
    pub users_hint: &'static str,
    pub col_email: &'static str,
    pub col_last_sign_in: &'static str,
    pub user_facts: &'static str,
    pub user_status: &'static str,
    pub user_disabled: &'static str,
    pub user_active: &'static str,
    pub user_sessions: &'static str,
    pub sessions_empty: &'static str,
    pub end_session: &'static str,
    pub session_ended: &'static str,
    pub last_seen: &'static str,
    pub user_history: &'static str,
    pub history_empty: &'static str,
    pub user_grants: &'static str,
    pub grants_empty: &'static str,
    pub disable: &'static str,
    pub disable_text: &'static str,
    pub enable: &'static str,
    pub user_now_disabled: &'static str,
    pub user_now_enabled: &'static str,
    pub method_passkey: &'static str,
    pub method_passkey_lost: &'static str,
    pub user_passkeys: &'static str,
    pub passkeys_empty: &'static str,
    pub passkey_last_used: &'static str,
    pub delete_passkey: &'static str,
    /// "Delete the passkey “{name}” of {email}?…"
    pub confirm_delete_passkey: &'static str,
    pub passkey_deleted: &'static str,
    pub send_link: &'static str,
    pub send_link_text: &'static str,
    pub send_link_app: &'static str,
    /// Button: make a link and show it here instead of emailing it (only
    /// with `POSTERN_ADMIN_LINKS=copy`).
    pub copy_link: &'static str,
    /// Heading of the page that shows a copied link.
    pub link_once_title: &'static str,
    /// What to do with it; `{email}`, `{app}`, `{time}`.
    pub link_once_text: &'static str,
    /// Back to the person's page.
    pub back_to_user: &'static str,
    /// "A sign-in link for {app} went to {email}."
    pub link_sent: &'static str,
    pub delete_user: &'static str,
    pub delete_user_text: &'static str,
    pub user_deleted: &'static str,

    // ---- history -----------------------------------------------------------
    pub history_title: &'static str,
    pub filter_app: &'static str,
    pub filter_outcome: &'static str,
    pub filter_user: &'static str,
    pub filter_since: &'static str,
    pub filter_until: &'static str,
    pub any: &'static str,
    pub filter_button: &'static str,
    pub download_csv: &'static str,

    // ---- keys --------------------------------------------------------------
    pub keys_title: &'static str,
    pub keys_text: &'static str,
    pub col_kid: &'static str,
    pub col_alg: &'static str,
    pub col_state: &'static str,
    pub rotate_keys: &'static str,
    pub keys_rotated: &'static str,

    // ---- outbox ------------------------------------------------------------
    pub outbox_title: &'static str,
    pub outbox_text: &'static str,
    pub state_pending: &'static str,
    pub state_failed: &'static str,
    pub col_to: &'static str,
    pub col_attempts: &'static str,
    pub col_next_attempt: &'static str,
    pub col_last_error: &'static str,
    pub retry: &'static str,
    pub retried: &'static str,
    pub outbox_empty: &'static str,

    // ---- audit -------------------------------------------------------------
    pub audit_title: &'static str,
    pub col_actor: &'static str,
    pub col_action: &'static str,
    pub col_target: &'static str,
    pub audit_empty: &'static str,
}

/// The panel strings for a primary language tag, English when unsupported.
pub fn strings(lang: &str) -> &'static AdminStrings {
    &super::exact_or_english(lang).admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_admin_strings_named_after_it() {
        for lang in crate::locale::SUPPORTED {
            assert_eq!(strings(lang).lang, *lang);
        }
    }

    #[test]
    fn the_placeholders_each_admin_string_needs_are_there_in_every_language() {
        for lang in crate::locale::SUPPORTED {
            let s = strings(lang);
            let cases: &[(&str, &str, &[&str])] = &[
                ("no_access_text", s.no_access_text, &["{email}"]),
                (
                    "chart_bar",
                    s.chart_bar,
                    &["{time}", "{success}", "{failed}"],
                ),
                ("ip_place", s.ip_place, &["{ip}", "{place}"]),
                ("not_saved", s.not_saved, &["{reason}"]),
                ("confirm_delete_app", s.confirm_delete_app, &["{app}"]),
                ("confirm_rotate_secret", s.confirm_rotate_secret, &["{app}"]),
                ("confirm_delete_user", s.confirm_delete_user, &["{email}"]),
                ("confirm_disable_user", s.confirm_disable_user, &["{email}"]),
                (
                    "confirm_delete_passkey",
                    s.confirm_delete_passkey,
                    &["{name}", "{email}"],
                ),
                (
                    "confirm_end_session",
                    s.confirm_end_session,
                    &["{email}", "{browser}"],
                ),
                ("test_email_sent", s.test_email_sent, &["{email}"]),
                ("link_sent", s.link_sent, &["{email}", "{app}"]),
            ];
            for (key, text, needs) in cases {
                for n in *needs {
                    assert!(text.contains(n), "{lang}.{key} lacks {n}: {text}");
                }
            }
        }
    }
}
