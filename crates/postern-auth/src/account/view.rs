//! `/account` as its page shows it: the overview's lines with their times
//! as `<time>` elements, the allowed apps with what each may see, and the
//! words of the notice a form left. Plain data; the web crate renders it.

use postern_core::html::{moment_html, MomentStyle};
use postern_core::i18n::{self, fill, Strings};

use super::{grant_scope, EventLine, Overview, SessionLine};
use crate::geoip::GeoIp;
use crate::Services;

/// One session on `/account`: the service's words and its times as HTML.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// What the service says of it.
    pub line: SessionLine,
    /// When it was last used (HTML: a `<time>`).
    pub last_seen: String,
    /// When it began (HTML).
    pub signed_in: String,
}

/// One sign-in on `/account`.
#[derive(Debug, Clone)]
pub struct EventView {
    /// What the service says of it.
    pub line: EventLine,
    /// When (HTML: a `<time>`).
    pub time: String,
}

/// One allowed app on `/account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    /// The value of the `client_id` field of its "Revoke" form.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// What it may see, one line per scope.
    pub items: Vec<&'static str>,
}

/// What `/account` lists.
#[derive(Debug, Clone)]
pub struct AccountView {
    /// Live sessions.
    pub sessions: Vec<SessionView>,
    /// Recent sign-ins.
    pub history: Vec<EventView>,
    /// Allowed apps.
    pub apps: Vec<AppView>,
}

impl Overview {
    /// Everything `/account` lists, in `t`'s language ([`Overview::lines`],
    /// with times as `<time>` elements, and the apps with what each may
    /// see).
    pub fn view(&self, t: &Strings, this_session: &str, geoip: Option<&GeoIp>) -> AccountView {
        let (sessions, history) = self.lines(t, this_session, geoip);
        let moment = |at| moment_html(t, at, MomentStyle::DateTime);
        let sessions = sessions
            .into_iter()
            .map(|s| SessionView {
                last_seen: moment(s.last_seen_at),
                signed_in: moment(s.created_at),
                line: s,
            })
            .collect();
        let history = history
            .into_iter()
            .map(|e| EventView {
                time: moment(e.at),
                line: e,
            })
            .collect();
        let apps = self
            .grants
            .iter()
            .map(|g| AppView {
                client_id: g.app.client_id.clone(),
                name: g.app.display_name().to_owned(),
                items: t.scope_items(&grant_scope(g)),
            })
            .collect();
        AccountView {
            sessions,
            history,
            apps,
        }
    }
}

/// What the form before `/account` did, in `t`'s language, from the notice
/// it left (`signed-out`, `revoked.{client_id}`, `passkey-…`); none for a
/// notice it does not know, or an app that is gone.
pub async fn notice(svc: &Services, t: &Strings, notice: &str) -> Option<String> {
    let Some(client_id) = notice.strip_prefix("revoked.") else {
        return fixed_notice(t, notice);
    };
    let a = i18n::account::strings(t.lang);
    let app = crate::signin::app_named(svc, Some(client_id)).await.ok()?;
    Some(fill(a.notice_revoked, &[("app", app.display_name())]))
}

/// The words of a notice that names no app.
fn fixed_notice(t: &Strings, notice: &str) -> Option<String> {
    if notice == "signed-out" {
        return Some(i18n::account::strings(t.lang).notice_signed_out.to_owned());
    }
    if notice.starts_with("passkey-") {
        return crate::passkeys::account_notice(t, notice);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_worded_in_the_page_language() {
        let t = i18n::strings("de");
        let a = i18n::account::strings("de");
        let p = i18n::passkeys::strings("de");
        assert_eq!(
            fixed_notice(t, "signed-out").as_deref(),
            Some(a.notice_signed_out)
        );
        assert_eq!(
            fixed_notice(t, "passkey-deleted").as_deref(),
            Some(p.notice_deleted)
        );
        assert_eq!(fixed_notice(t, "passkey-eaten"), None);
        assert_eq!(fixed_notice(t, "whatever"), None);
    }

    #[test]
    fn sessions_show_their_times_as_time_elements() {
        let session = postern_store::Session {
            id: "s1".into(),
            token_hash: String::new(),
            user_id: "u1".into(),
            client_id: None,
            kind: "browser".into(),
            amr: "email".into(),
            auth_time: 1_741_943_100,
            created_at: 1_741_943_100,
            last_seen_at: 1_741_946_700,
            expires_at: 1_742_000_000,
            ip: None,
            user_agent: None,
            revoked_at: None,
            passkey_ok: false,
        };
        let overview = Overview {
            sessions: vec![session],
            history: Vec::new(),
            grants: Vec::new(),
            app_names: Default::default(),
        };
        let t = i18n::strings("en");
        let view = overview.view(t, "s1", None);
        assert_eq!(view.sessions.len(), 1);
        let s = &view.sessions[0];
        assert_eq!(s.line.id, "s1");
        assert_eq!(
            s.signed_in,
            moment_html(t, 1_741_943_100, MomentStyle::DateTime)
        );
        assert_eq!(
            s.last_seen,
            moment_html(t, 1_741_946_700, MomentStyle::DateTime)
        );
        assert!(view.history.is_empty() && view.apps.is_empty());
    }
}
