//! `/admin/users`: search, a person's page (sessions with browser, IP and
//! place, history, grants) and what may be done to them: end a session,
//! disable, enable, send a sign-in link, delete.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use postern_auth::admin::{self, EventQuery, PageRequest, SessionQuery};
use serde_json::json;

use super::{Ctx, Frame};
use postern_web::error::Result;
use postern_web::extract::{AppForm, AppPath, AppQuery};
use postern_web::i18n::admin::AdminStrings;
use postern_web::i18n::{fill, Strings};
use postern_web::pages::{self, filters};
use postern_web::AppState;

/// One person in the search results.
pub struct UserRow {
    /// Their id.
    pub id: String,
    /// Their address.
    pub email: String,
    /// When the account was made.
    pub created: String,
    /// Whether they may sign in.
    pub disabled: bool,
}

/// `GET /admin/users?q=`.
#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// What was searched.
    pub q: String,
    /// Who matches.
    pub users: Vec<UserRow>,
    /// The next page.
    pub next: Option<String>,
}

/// The search's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchQuery {
    /// The beginning of an address.
    pub q: Option<String>,
    /// The next page.
    pub cursor: Option<String>,
}

/// SPEC §3.5 `GET /admin/users?q=`: people whose address starts with `q`
/// (owners: people who signed in to their apps).
pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    AppQuery(query): AppQuery<SearchQuery>,
) -> Result<Response> {
    let q = query.q.unwrap_or_default();
    let found = admin::users::search(
        &state,
        &ctx.who,
        &q,
        &PageRequest {
            cursor: query.cursor,
            limit: None,
        },
    )
    .await?;
    let mut frame = ctx.frame("/admin/users");
    if ctx.notice.as_deref() == Some("user-deleted") {
        frame.notice = Some(ctx.a.user_deleted.to_owned());
    }
    let next = found.next_cursor.map(|c| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &q);
        s.append_pair("cursor", &c);
        format!("/admin/users?{}", s.finish())
    });
    let page = UsersPage {
        t: ctx.t,
        a: ctx.a,
        frame,
        users: found
            .items
            .into_iter()
            .map(|u| UserRow {
                created: ctx.moment(u.created_at),
                id: u.id,
                email: u.email,
                disabled: u.disabled,
            })
            .collect(),
        q,
        next,
    };
    Ok(ctx.render(&page))
}

/// One live session on a person's page.
pub struct SessionRow {
    /// Its id.
    pub id: String,
    /// "Firefox on Linux".
    pub browser: String,
    /// The app holding a headless session.
    pub app: Option<String>,
    /// "203.0.113.7, near Berlin, Germany".
    pub ip: Option<String>,
    /// When it was last used.
    pub last_seen: String,
    /// When it began.
    pub created: String,
}

/// One sign-in in a history table.
pub struct EventRow {
    /// When.
    pub time: String,
    /// Whose page it links to.
    pub user_id: Option<String>,
    /// Who, as far as the list knows.
    pub user: String,
    /// Which app.
    pub app: String,
    /// Link, code, admin link.
    pub method: &'static str,
    /// The outcome in words.
    pub outcome: &'static str,
    /// `success` or `failed`, for the stylesheet.
    pub outcome_class: &'static str,
    /// From where.
    pub ip: String,
    /// With what.
    pub browser: String,
}

/// One of a person's passkeys on their page (issue 15).
pub struct PasskeyRow {
    /// Its id (the delete form).
    pub id: String,
    /// The person's name for it.
    pub name: String,
    /// `synced`, `security_key`, `this_device` or `unknown`.
    pub device: String,
    /// When it was made.
    pub created: String,
    /// When it last signed in.
    pub last_used: String,
}

/// `GET /admin/users/{user_id}`.
#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// Their id.
    pub id: String,
    /// Their address.
    pub email: String,
    /// Whether they may sign in.
    pub disabled: bool,
    /// When the account was made.
    pub created: String,
    /// Their last sign-in.
    pub last_sign_in: String,
    /// Live sessions.
    pub sessions: Vec<SessionRow>,
    /// Their passkeys.
    pub passkeys: Vec<PasskeyRow>,
    /// Apps with a grant ("Notes: openid email").
    pub grants: Vec<String>,
    /// Apps a sign-in link may be for.
    pub link_apps: Vec<(String, String)>,
    /// Whether a link may be shown here to copy (`POSTERN_ADMIN_LINKS=copy`).
    pub can_copy: bool,
    /// Recent sign-ins.
    pub events: Vec<EventRow>,
    /// The history table shows no person column here.
    pub show_user: bool,
}

/// The words of a method.
pub fn method(a: &'static AdminStrings, m: &str) -> &'static str {
    match m {
        "code" => a.method_code,
        "admin_link" => a.method_admin_link,
        "passkey" => a.method_passkey,
        "link_passkey_lost" | "code_passkey_lost" => a.method_passkey_lost,
        _ => a.method_link,
    }
}

/// The words of an outcome.
pub fn outcome(a: &'static AdminStrings, o: &str) -> &'static str {
    super::dashboard::outcomes(a)
        .into_iter()
        .find(|(k, _)| *k == o)
        .map_or(a.outcome_refused, |(_, l)| l)
}

/// An IP address with the place a GeoIP database gives for it.
pub fn ip_and_place(state: &AppState, a: &AdminStrings, ip: &str) -> String {
    let place = state
        .config
        .geoip
        .as_ref()
        .and_then(|g| g.place(ip.parse().ok()?));
    match place {
        Some(place) => fill(a.ip_place, &[("ip", ip), ("place", &place)]),
        None => ip.to_owned(),
    }
}

/// The names of the apps `ctx` sees, by client id.
pub async fn app_names(state: &AppState, ctx: &Ctx) -> Result<HashMap<String, String>> {
    Ok(admin::apps::list(state, &ctx.who)
        .await?
        .into_iter()
        .map(|a| {
            let name = if a.client_id == postern_auth::account::ACCOUNT_CLIENT_ID {
                ctx.t.own_account.to_owned()
            } else {
                a.branding.name.clone().unwrap_or(a.name)
            };
            (a.client_id, name)
        })
        .collect())
}

/// History rows of `events`.
pub fn event_rows(
    ctx: &Ctx,
    names: &HashMap<String, String>,
    events: Vec<admin::EventView>,
) -> Vec<EventRow> {
    let a = ctx.a;
    events
        .into_iter()
        .map(|e| EventRow {
            time: ctx.moment(e.at),
            user: e
                .user_id
                .as_deref()
                .map(|id| id.chars().take(10).collect())
                .unwrap_or_else(|| "—".to_owned()),
            user_id: e.user_id,
            app: names
                .get(&e.client_id)
                .cloned()
                .unwrap_or_else(|| a.removed_app.to_owned()),
            method: method(a, &e.method),
            outcome: outcome(a, &e.outcome),
            outcome_class: if e.outcome == "success" {
                "success"
            } else {
                "failed"
            },
            ip: e.ip.unwrap_or_default(),
            browser: ctx.t.describe_browser(e.user_agent.as_deref()),
        })
        .collect()
}

/// SPEC §3.5 `GET /admin/users/{user_id}`.
pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(user_id): AppPath<String>,
) -> Result<Response> {
    let user = admin::users::read(&state, &ctx.who, &user_id).await?;
    let names = app_names(&state, &ctx).await?;
    let sessions = admin::activity::sessions(
        &state,
        &ctx.who,
        &SessionQuery {
            user_id: Some(user_id.clone()),
            client_id: None,
        },
        &PageRequest::default(),
    )
    .await?;
    let events = admin::activity::events(
        &state,
        &ctx.who,
        &EventQuery {
            user_id: Some(user_id.clone()),
            ..EventQuery::default()
        },
        &PageRequest {
            cursor: None,
            limit: Some(20),
        },
    )
    .await?;
    let a = ctx.a;
    let mut frame = ctx.frame("/admin/users");
    frame.notice = ctx.notice.as_deref().map(|n| match n {
        "session-ended" => a.session_ended.to_owned(),
        "disabled" => a.user_now_disabled.to_owned(),
        "enabled" => a.user_now_enabled.to_owned(),
        "passkey-deleted" => a.passkey_deleted.to_owned(),
        n => match n.strip_prefix("link-sent.") {
            Some(client_id) => fill(
                a.link_sent,
                &[
                    ("email", &user.email),
                    ("app", names.get(client_id).map_or("", String::as_str)),
                ],
            ),
            None => a.saved.to_owned(),
        },
    });
    let page = UserPage {
        t: ctx.t,
        a,
        sessions: sessions
            .items
            .into_iter()
            .map(|s| SessionRow {
                browser: ctx.t.describe_browser(s.user_agent.as_deref()),
                app: s.client_id.as_ref().and_then(|c| names.get(c).cloned()),
                ip: s.ip.as_deref().map(|ip| ip_and_place(&state, a, ip)),
                last_seen: ctx.moment(s.last_seen_at),
                created: ctx.moment(s.created_at),
                id: s.id,
            })
            .collect(),
        passkeys: user
            .passkeys
            .iter()
            .map(|p| PasskeyRow {
                id: p.id.clone(),
                name: p.name.clone(),
                device: serde_json::to_value(p.device)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                created: ctx.moment(p.created_at),
                last_used: p
                    .last_used_at
                    .map_or_else(|| a.never.to_owned(), |t| ctx.moment(t)),
            })
            .collect(),
        grants: user
            .apps
            .iter()
            .map(|g| format!("{} ({})", g.name, g.scope))
            .collect(),
        link_apps: {
            let mut apps: Vec<(String, String)> = names
                .iter()
                .filter(|(c, _)| c.as_str() != postern_auth::account::ACCOUNT_CLIENT_ID)
                .map(|(c, n)| (c.clone(), n.clone()))
                .collect();
            apps.sort_by(|x, y| x.1.cmp(&y.1));
            apps
        },
        can_copy: state.settings.admin_links == postern_auth::AdminLinks::Copy,
        events: event_rows(&ctx, &names, events.items),
        show_user: false,
        created: ctx.moment(user.created_at),
        last_sign_in: user
            .last_sign_in_at
            .map_or_else(|| a.never.to_owned(), |t| ctx.moment(t)),
        id: user.id,
        email: user.email,
        disabled: user.disabled,
        frame,
    };
    Ok(ctx.render(&page))
}

/// The forms of a person's page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct UserForm {
    /// CSRF token.
    pub csrf_token: Option<String>,
    /// "yes" from the confirmation page.
    pub confirmed: Option<String>,
    /// The app of a sign-in link.
    pub client_id: Option<String>,
    /// Whose session (to come back to their page).
    pub user_id: Option<String>,
    /// The passkey to delete.
    pub passkey_id: Option<String>,
    /// "yes" from the "Make a link to copy" button: show the link instead
    /// of emailing it.
    pub copy: Option<String>,
}

pub(super) fn user_url(user_id: &str) -> String {
    format!("/admin/users/{user_id}")
}

/// SPEC §3.5 `POST /admin/users/{user_id}/disable`: after confirmation,
/// the person cannot sign in and every session of theirs ends.
pub async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(user_id): AppPath<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    if form.confirmed.as_deref() != Some("yes") {
        // Asked before the question: an owner is refused, not asked first.
        ctx.who
            .authorize(&state, admin::Target::Account(&user_id))
            .await?;
        let user = admin::users::read(&state, &ctx.who, &user_id).await?;
        let question = fill(ctx.a.confirm_disable_user, &[("email", &user.email)]);
        return Ok(ctx.confirm(
            "/admin/users",
            question,
            format!("{}/disable", user_url(&user_id)),
            Vec::new(),
            user_url(&user_id),
        ));
    }
    admin::users::set_disabled(&state, &ctx.who, &user_id, true).await?;
    Ok(ctx.done(&state, &user_url(&user_id), "disabled"))
}

/// SPEC §3.5 `POST /admin/users/{user_id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(user_id): AppPath<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    admin::users::set_disabled(&state, &ctx.who, &user_id, false).await?;
    Ok(ctx.done(&state, &user_url(&user_id), "enabled"))
}

/// SPEC §3.5 `POST /admin/users/{user_id}/delete`: after confirmation,
/// deletes the person and everything of theirs.
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(user_id): AppPath<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    if form.confirmed.as_deref() != Some("yes") {
        // Asked before the question: an owner is refused, not asked first.
        ctx.who
            .authorize(&state, admin::Target::Account(&user_id))
            .await?;
        let user = admin::users::read(&state, &ctx.who, &user_id).await?;
        let question = fill(ctx.a.confirm_delete_user, &[("email", &user.email)]);
        return Ok(ctx.confirm(
            "/admin/users",
            question,
            format!("{}/delete", user_url(&user_id)),
            Vec::new(),
            user_url(&user_id),
        ));
    }
    admin::users::delete(&state, &ctx.who, &user_id).await?;
    Ok(ctx.done(&state, "/admin/users", "user-deleted"))
}

/// SPEC §3.5 `POST /admin/users/{user_id}/sign-in-link`: emails the person
/// a fresh link for the app (the `browser` flow), or, with the copy button
/// and `POSTERN_ADMIN_LINKS=copy`, shows it once to hand over.
pub async fn sign_in_link(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(user_id): AppPath<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let client_id = form.client_id.unwrap_or_default();
    let send = form.copy.as_deref() != Some("yes");
    let input: admin::SignInLinkRequest = admin::apps::from_json(json!({
        "client_id": client_id,
        "flow": "browser",
        "send": send,
    }))?;
    let issued = admin::users::sign_in_link(&state, &ctx.who, &user_id, input).await?;
    let Some(link) = issued.link else {
        return Ok(ctx.done(
            &state,
            &user_url(&user_id),
            &format!("link-sent.{client_id}"),
        ));
    };
    let user = admin::users::read(&state, &ctx.who, &user_id).await?;
    let app = admin::apps::read(&state, &ctx.who, &client_id).await?;
    let text = fill(
        ctx.a.link_once_text,
        &[
            ("email", &pages::escape(&user.email)),
            ("app", &pages::escape(&app.name)),
            ("time", &ctx.moment(issued.expires_at)),
        ],
    );
    let page = LinkPage {
        t: ctx.t,
        a: ctx.a,
        frame: ctx.frame("/admin/users"),
        id: user_id,
        text,
        link,
    };
    Ok(ctx.render(&page))
}

/// A sign-in link to hand over, shown once.
#[derive(Template)]
#[template(path = "admin/link.html")]
pub struct LinkPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// The person's id (the way back).
    pub id: String,
    /// Whom it is for, for which app, until when (HTML: the values are
    /// escaped, the time is a `<time>` element).
    pub text: String,
    /// The link.
    pub link: String,
}

/// SPEC §3.5 `POST /admin/sessions/{session_id}/end`: after confirmation,
/// ends one session of the person whose page it is on.
pub async fn end_session(
    State(state): State<AppState>,
    ctx: Ctx,
    AppPath(session_id): AppPath<String>,
    AppForm(form): AppForm<UserForm>,
) -> Result<Response> {
    ctx.csrf(&state, form.csrf_token.as_deref())?;
    let user_id = form.user_id.clone().unwrap_or_default();
    if form.confirmed.as_deref() != Some("yes") {
        let user = admin::users::read(&state, &ctx.who, &user_id).await?;
        let sessions = admin::activity::sessions(
            &state,
            &ctx.who,
            &SessionQuery {
                user_id: Some(user_id.clone()),
                client_id: None,
            },
            &PageRequest {
                cursor: None,
                limit: Some(200),
            },
        )
        .await?;
        let browser = sessions
            .items
            .iter()
            .find(|s| s.id == session_id)
            .map(|s| ctx.t.describe_browser(s.user_agent.as_deref()))
            .ok_or(postern_web::error::AppError::NotFound)?;
        let question = fill(
            ctx.a.confirm_end_session,
            &[("email", &user.email), ("browser", &browser)],
        );
        return Ok(ctx.confirm(
            "/admin/users",
            question,
            format!("/admin/sessions/{session_id}/end"),
            vec![("user_id".to_owned(), user_id.clone())],
            user_url(&user_id),
        ));
    }
    admin::activity::end_session(&state, &ctx.who, &session_id).await?;
    let back = if user_id.is_empty() {
        "/admin/users".to_owned()
    } else {
        user_url(&user_id)
    };
    Ok(ctx.done(&state, &back, "session-ended"))
}
