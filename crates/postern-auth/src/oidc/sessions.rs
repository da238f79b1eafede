//! Browser sessions (SPEC §2): which are live, which accounts a browser
//! holds, and whether a session may serve an app.

use super::*;

// ---- sessions --------------------------------------------------------------

/// A live browser session and its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// Whether a browser session is live at `now`: not revoked, within the
/// absolute cap and the sliding inactivity limit.
pub fn browser_session_live(svc: &Services, s: &Session, now: i64) -> bool {
    SessionRule::LiveBrowser {
        idle_ttl: svc.settings.session_idle_ttl,
    }
    .admits(s, now)
}

/// Which sessions a redeemed code may still stand for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionRule {
    /// Neither revoked nor past its absolute end (the token endpoint).
    Live,
    /// [`browser_session_live`]: a browser session, also within the
    /// inactivity limit (Postern's own account page).
    LiveBrowser { idle_ttl: i64 },
}

impl SessionRule {
    pub(crate) fn admits(self, s: &Session, now: i64) -> bool {
        let live = s.revoked_at.is_none() && s.expires_at > now;
        match self {
            SessionRule::Live => live,
            SessionRule::LiveBrowser { idle_ttl } => {
                live && s.kind == "browser" && s.last_seen_at + idle_ttl > now
            }
        }
    }
}

/// The browser's session, if its cookie names one that is live: not
/// revoked, within the absolute cap and the sliding inactivity limit, and
/// its user not disabled. Records the activity (sliding).
pub async fn current_session(svc: &Services, secret: Option<&str>) -> Result<Option<LiveSession>> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    let Some(live) = resolve_session(svc, secret).await? else {
        return Ok(None);
    };
    touch(svc, &live.session).await?;
    Ok(Some(live))
}

/// The live session and user a cookie secret names, without recording
/// activity.
pub(crate) async fn resolve_session(svc: &Services, secret: &str) -> Result<Option<LiveSession>> {
    let now = svc.now();
    let hash = svc.secrets.keyed_hash(purpose::SESSION, secret.as_bytes());
    let mut conn = svc.store.conn().await?;
    let Some(session) = conn.session_by_token(&hash).await? else {
        return Ok(None);
    };
    if !browser_session_live(svc, &session, now) {
        return Ok(None);
    }
    let Some(user) = conn
        .user(&session.user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
    else {
        return Ok(None);
    };
    Ok(Some(LiveSession { session, user }))
}

/// Records that a session was used (sliding inactivity), at most once a
/// minute.
pub async fn touch(svc: &Services, s: &Session) -> Result<()> {
    let now = svc.now();
    if now - s.last_seen_at >= TOUCH_EVERY {
        svc.store.conn().await?.touch_session(&s.id, now).await?;
    }
    Ok(())
}

/// One of the accounts signed in on this browser.
#[derive(Debug, Clone)]
pub struct BrowserAccount {
    /// Its secret in the session cookie.
    pub secret: String,
    /// The live session and its user.
    pub live: LiveSession,
}

/// The accounts signed in on a browser, current first: every secret of its
/// session cookie (`secrets`, in cookie order) whose session is live and
/// whose user may sign in, one per user (the most recent). Records no
/// activity.
pub async fn browser_accounts(svc: &Services, secrets: Vec<String>) -> Result<Vec<BrowserAccount>> {
    let mut out: Vec<BrowserAccount> = Vec::new();
    for secret in secrets {
        if let Some(live) = resolve_session(svc, &secret).await? {
            if !out.iter().any(|a| a.live.user.id == live.user.id) {
                out.push(BrowserAccount { secret, live });
            }
        }
    }
    Ok(out)
}

/// The session secrets a browser keeps after a new sign-in (`secret`): the
/// new one first, then the others of `secrets` that are live and of other
/// users. It replaces an earlier session of the same user (that session is
/// not revoked: tokens an app holds from it keep working until they end on
/// their own or on "sign out everywhere"); ended sessions are dropped.
pub async fn remember_session(
    svc: &Services,
    secrets: Vec<String>,
    secret: &str,
) -> Result<Vec<String>> {
    let now = svc.now();
    let hash = |s: &str| svc.secrets.keyed_hash(purpose::SESSION, s.as_bytes());
    let mut conn = svc.store.conn().await?;
    let user = conn
        .session_by_token(&hash(secret))
        .await?
        .map(|s| s.user_id);
    let mut kept = vec![secret.to_owned()];
    for old in secrets {
        if old == secret {
            continue;
        }
        let keep = conn.session_by_token(&hash(&old)).await?.is_some_and(|s| {
            browser_session_live(svc, &s, now) && Some(&s.user_id) != user.as_ref()
        });
        if keep {
            kept.push(old);
        }
    }
    Ok(kept)
}

/// Whether a session may serve `app` from `ip`: within the app's shorter
/// session cap (SPEC §2) and, for apps that bind sessions to an IP range,
/// from the range the session was created in.
pub fn session_fits_app(svc: &Services, s: &Session, app: &App, ip: IpAddr) -> bool {
    let now = svc.now();
    if app
        .settings
        .session_max_age
        .is_some_and(|cap| now - s.created_at > cap)
    {
        return false;
    }
    if app.settings.bind_ip_range {
        let created_from = s.ip.as_deref().and_then(|i| i.parse::<IpAddr>().ok());
        if !created_from.is_some_and(|c| postern_core::net::same_binding_range(c, ip)) {
            return false;
        }
    }
    true
}
