//! What `/account` and the error page show of passkeys, in the person's
//! language: the list (with its moments as `<time>` elements), the notice
//! after a passkey form, the words for a refused passkey. Plain data; the
//! web crate renders it.

use postern_core::html::{moment_html, MomentStyle};
use postern_core::i18n::passkeys::{self as words, PasskeyStrings};
use postern_core::i18n::Strings;

use super::{available, list_for_user, PasskeyInfo, PasskeyProblem};
use crate::error::Result;
use crate::Services;

/// One passkey on `/account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    /// Its id (the forms' `id`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// "Synced passkey", "Security key", …, when known.
    pub kind: Option<&'static str>,
    /// When it was made (HTML: a `<time>`).
    pub created: String,
    /// When it last signed in (HTML), or "never".
    pub last_used: String,
}

impl PasskeyView {
    /// How `/account` shows `k`, in the language of `t`.
    pub fn of(t: &Strings, k: PasskeyInfo) -> Self {
        let p = words::strings(t.lang);
        PasskeyView {
            id: k.id,
            name: k.name,
            kind: k.device.words(p),
            created: moment_html(t, k.created_at, MomentStyle::DateTime),
            last_used: match k.last_used_at {
                Some(at) => moment_html(t, at, MomentStyle::DateTime),
                None => p.never_used.to_owned(),
            },
        }
    }
}

/// The passkey part of `/account`.
#[derive(Debug)]
pub struct AccountPasskeys {
    /// The words.
    pub p: &'static PasskeyStrings,
    /// The person's passkeys, newest first.
    pub items: Vec<PasskeyView>,
    /// Whether a passkey can be made here (the public URL is a domain).
    pub available: bool,
}

/// The passkey part of `/account` for `user_id`, in the language of `t`.
pub async fn account_section(
    svc: &Services,
    t: &'static Strings,
    user_id: &str,
) -> Result<AccountPasskeys> {
    let items = list_for_user(svc, user_id).await?;
    Ok(AccountPasskeys {
        p: words::strings(t.lang),
        items: items.into_iter().map(|k| PasskeyView::of(t, k)).collect(),
        available: available(svc),
    })
}

/// The notice of `/account` after a passkey form (`passkey-added`, …), in
/// the language of `t`; none for an id it does not know.
pub fn account_notice(t: &Strings, notice: &str) -> Option<String> {
    let p = words::strings(t.lang);
    match notice {
        "passkey-added" => Some(p.notice_added.to_owned()),
        "passkey-deleted" => Some(p.notice_deleted.to_owned()),
        "passkey-renamed" => Some(p.notice_renamed.to_owned()),
        _ => None,
    }
}

/// The error page's title and text for a passkey error, named by its
/// `error_description` (the page is rendered from the error body alone); an
/// unknown description reads as a rejected passkey.
pub fn error_words(t: &Strings, description: &str) -> (&'static str, &'static str) {
    let p = words::strings(t.lang);
    let text = PasskeyProblem::named_by(description).map_or(p.error_rejected, |k| k.words(p));
    (p.error_title, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passkeys::DeviceKind;

    #[test]
    fn the_list_shows_moments_and_never_used() {
        let t = postern_core::i18n::strings("en");
        let p = words::strings("en");
        let view = PasskeyView::of(
            t,
            PasskeyInfo {
                id: "pk1".into(),
                name: "Laptop".into(),
                created_at: 1_741_943_100,
                last_used_at: None,
                device: DeviceKind::SecurityKey,
                backed_up: false,
            },
        );
        assert_eq!(view.kind, Some(p.kind_security_key));
        assert_eq!(view.last_used, p.never_used);
        assert!(view
            .created
            .starts_with("<time datetime=\"2025-03-14T09:05:00Z\""));
    }

    #[test]
    fn notices_and_errors_come_from_the_passkey_words() {
        let t = postern_core::i18n::strings("fr");
        let p = words::strings("fr");
        assert_eq!(
            account_notice(t, "passkey-added").as_deref(),
            Some(p.notice_added)
        );
        assert_eq!(
            account_notice(t, "passkey-deleted").as_deref(),
            Some(p.notice_deleted)
        );
        assert_eq!(
            account_notice(t, "passkey-renamed").as_deref(),
            Some(p.notice_renamed)
        );
        assert_eq!(account_notice(t, "signed-out"), None);
        let off = PasskeyProblem::Off.describe();
        assert_eq!(error_words(t, off), (p.error_title, p.error_off));
        assert_eq!(
            error_words(t, "anything else"),
            (p.error_title, p.error_rejected)
        );
    }
}
