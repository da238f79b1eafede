//! English.

use super::Strings;

/// English strings.
pub const STRINGS: Strings = Strings {
    lang: "en",
    sign_in_to: "Sign in to {app}",
    sign_in_subject: "Sign in to {app}: {code}",
    open_link: "Open this link to sign in to {app}:",
    press_button: "Press the button below to sign in to {app}.",
    button: "Sign in",
    enter_code: "Or enter this code on the sign-in page:",
    link_fallback: "If the button doesn't work, copy this link into your browser:",
    expires_in: "This link will expire in {duration}.",
    one_minute: "1 minute",
    minutes: "{n} minutes",
    one_hour: "1 hour",
    hours: "{n} hours",
    ignore: "If you didn't request this, you can safely ignore this email.",
    no_account: "Someone asked to sign in to {app} as {email}, but there is no account for this address at {app}.",
    own_account: "your Postern account",
    no_account_help: "If you think you should have access, contact the people who run {app}.",
};
