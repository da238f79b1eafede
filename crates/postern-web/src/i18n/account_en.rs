//! English account pages.

use super::AccountStrings;

/// English.
pub const STRINGS: AccountStrings = AccountStrings {
    lang: "en",

    title: "Your account",
    signed_in_as: "Signed in as {email}",
    sessions_title: "Where you are signed in",
    this_browser: "This browser",
    through_app: "through {app}",
    ip_address: "IP address {ip}",
    ip_address_place: "IP address {ip}, near {place}",
    last_seen: "Last active",
    signed_in_at: "Signed in",
    sign_out: "Sign out",
    sign_out_everywhere: "Sign out everywhere",
    sign_out_everywhere_text: "Ends every session of this account on every device, and stops apps from staying signed in for you.",
    history_title: "Recent sign-ins",
    history_empty: "No sign-ins yet.",
    method_link: "Email link",
    method_code: "Code",
    method_admin_link: "Link from an admin",
    outcome_success: "Signed in",
    outcome_failed: "Refused",
    removed_app: "a removed app",
    own_account_app: "Postern account",
    apps_title: "Apps you allowed",
    apps_intro: "These apps may see what you allowed them. Revoking ends their access; they will ask you again next time.",
    apps_empty: "You have not allowed any app yet.",
    revoke: "Revoke",
    notice_signed_out: "That session was signed out. Its browser must sign in again.",
    notice_revoked: "{app} can no longer see your account. It will ask you again next time.",
    delete_title: "Delete my account",
    delete_text: "Deletes your address, sessions, sign-in history and the access you gave apps. This cannot be undone.",

    delete_confirm_title: "Delete {email}?",
    delete_confirm_text: "Your sessions end on every device, apps lose their access, and Postern forgets your sign-in history. Signing in again later creates a new account.",
    delete_confirm_button: "Yes, delete my account",
    cancel: "Cancel",
    deleted_title: "Your account was deleted",
    deleted_text: "Postern no longer knows your address, your sessions or your history.",

    logout_title: "Sign out of Postern?",
    logout_text: "An app or a link asked to sign you out. If you did not ask for this, close this page.",
    logout_accounts: "This signs out every account on this browser:",
    logout_button: "Sign out",
};
