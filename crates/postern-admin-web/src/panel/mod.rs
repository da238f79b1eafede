//! SPEC §3.5 `/admin`: the administration panel, server-rendered like the
//! other pages (no third-party assets, CSP without `unsafe-inline`, CSRF on
//! every form, en/de/fr). It is a face over the administration services in
//! `postern_auth::admin`: handlers parse a form or query, make one service
//! call and render. Who may do what is the services' decision.
//!
//! Signing in is `/account`'s: the same Postern browser session, started
//! through the built-in first-party app, comes back here. Destructive
//! actions answer their first POST with a confirmation page whose form
//! posts again with `confirmed=yes`.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use postern_auth::admin::{self, Principal};
use postern_auth::oidc::BrowserAccount;
use postern_auth::AuthError;

use postern_web::cookies;
use postern_web::error::{AppError, Result};
use postern_web::extract::{accept_language, ClientIp};
use postern_web::i18n::admin::AdminStrings;
use postern_web::i18n::{self, fill, Strings};
use postern_web::pages::{self, Brand, MomentStyle};
use postern_web::AppState;

mod app_forms;
mod apps;
pub mod chart;
mod dashboard;
mod lists;
mod passkeys;
mod users;

macro_rules! panel_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every panel route, `(method, path)` with the method in lower
        /// case: the tests walk it, so a new form is checked for CSRF and a
        /// new page for the hardening of SPEC §3.3 without being listed there.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Every `/admin` page.
        pub fn router(state: &AppState) -> Router<AppState> {
            let r = Router::new();
            $(let r = r.route($path, $method($handler));)*
            r.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                postern_web::middleware::negotiate,
            ))
        }
    };
}

panel_routes! {
    get "/admin" => dashboard::page,
    get "/admin/apps" => apps::list,
    post "/admin/apps" => apps::create,
    get "/admin/apps/{client_id}" => apps::page,
    post "/admin/apps/{client_id}/settings" => apps::save_settings,
    post "/admin/apps/{client_id}/branding" => apps::save_branding,
    get "/admin/apps/{client_id}/email-preview.html" => dashboard::email_preview,
    post "/admin/apps/{client_id}/test-email" => apps::test_email,
    post "/admin/apps/{client_id}/secret" => apps::rotate_secret,
    post "/admin/apps/{client_id}/delete" => apps::delete,
    get "/admin/users" => users::search,
    get "/admin/users/{user_id}" => users::page,
    post "/admin/users/{user_id}/disable" => users::disable,
    post "/admin/users/{user_id}/enable" => users::enable,
    post "/admin/users/{user_id}/sign-in-link" => users::sign_in_link,
    post "/admin/users/{user_id}/delete" => users::delete,
    post "/admin/users/{user_id}/passkeys/delete" => passkeys::delete_passkey,
    post "/admin/sessions/{session_id}/end" => users::end_session,
    get "/admin/history" => lists::history,
    get "/admin/history.csv" => lists::history_csv,
    get "/admin/keys" => lists::keys,
    post "/admin/keys/rotate" => lists::rotate_keys,
    get "/admin/outbox" => lists::outbox,
    post "/admin/outbox/{id}/retry" => lists::retry,
    get "/admin/audit" => lists::audit,
}

/// One entry of the menu.
pub struct NavItem {
    /// Where it leads.
    pub href: &'static str,
    /// Its words.
    pub label: &'static str,
    /// Whether it is the page shown (`aria-current`).
    pub current: bool,
}

/// What every panel page shows around its content.
pub struct Frame {
    /// The signed-in address.
    pub email: String,
    /// "Administrator" or "App owner".
    pub role: &'static str,
    /// Whether the viewer administers everything.
    pub admin: bool,
    /// Whether the viewer sees only their apps.
    pub owner: bool,
    /// The menu.
    pub nav: Vec<NavItem>,
    /// CSRF token of every form.
    pub csrf_token: String,
    /// What the last action did, said once.
    pub notice: Option<String>,
    /// What went wrong with the last form.
    pub error: Option<String>,
}

/// A signed-in administrator or owner, with the page's language.
pub struct Ctx {
    /// The page catalogue (footer, times, browsers).
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// The Postern browser session.
    pub viewer: BrowserAccount,
    /// Who acts, as the services see them.
    pub who: Principal,
    /// The cookies, with the CSRF token set.
    pub jar: CookieJar,
    /// The CSRF token of the page's forms.
    pub csrf_token: String,
    /// The one-time notice, already cleared from `jar`.
    pub notice: Option<String>,
}

impl Ctx {
    /// The frame of a page whose menu entry is `current`.
    pub fn frame(&self, current: &str) -> Frame {
        let a = self.a;
        let admin = self.who.is_admin();
        let mut items = vec![
            ("/admin", a.nav_dashboard),
            ("/admin/apps", a.nav_apps),
            ("/admin/users", a.nav_users),
            ("/admin/history", a.nav_history),
        ];
        if admin {
            items.extend([
                ("/admin/keys", a.nav_keys),
                ("/admin/outbox", a.nav_outbox),
                ("/admin/audit", a.nav_audit),
            ]);
        }
        Frame {
            email: self.viewer.live.user.email.clone(),
            role: if admin { a.role_admin } else { a.role_owner },
            admin,
            owner: !admin,
            nav: items
                .into_iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: href == current,
                })
                .collect(),
            csrf_token: self.csrf_token.clone(),
            notice: None,
            error: None,
        }
    }

    /// A moment as a `<time>` element.
    pub fn moment(&self, unix: i64) -> String {
        pages::moment_html(self.t, unix, MomentStyle::DateTime)
    }

    /// Checks a form's CSRF token (403 `invalid_csrf` otherwise).
    pub fn csrf(&self, state: &AppState, token: Option<&str>) -> Result<()> {
        if cookies::csrf_ok(state, &self.jar, token) {
            Ok(())
        } else {
            Err(AppError::Csrf.with_retry("/admin".to_owned()))
        }
    }

    /// The confirmation step of a destructive action: the same form again,
    /// with `confirmed=yes`.
    pub fn confirm(
        self,
        current: &str,
        question: String,
        action: String,
        hidden: Vec<(String, String)>,
        cancel: String,
    ) -> Response {
        let page = ConfirmPage {
            t: self.t,
            a: self.a,
            frame: self.frame(current),
            question,
            button: self.a.confirm_button,
            action,
            hidden,
            cancel,
        };
        self.render(&page)
    }

    /// A redirect to `to` (303), saying `notice` there once.
    pub fn done(self, state: &AppState, to: &str, notice: &str) -> Response {
        // Paths carry ids from the request: anything unexpected goes home.
        let safe = to.starts_with("/admin")
            && to
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&%".contains(&b));
        let to = if safe { to } else { "/admin" };
        let notice: String = notice
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(100)
            .collect();
        let jar = self.jar.add(self::notice(state, &notice));
        (jar, Redirect::to(to)).into_response()
    }

    /// `page` with the cookies.
    pub fn render(self, page: &impl Template) -> Response {
        (self.jar, pages::render(page)).into_response()
    }

    /// `page` with the cookies and another status.
    pub fn render_with(self, status: StatusCode, page: &impl Template) -> Response {
        (self.jar, pages::render_with(status, page)).into_response()
    }
}

/// The panel's language: `Accept-Language`, else English.
pub fn languages(headers: &HeaderMap) -> (&'static Strings, &'static AdminStrings) {
    let t = i18n::negotiate(None, accept_language(headers).as_deref(), "en");
    (t, i18n::admin::strings(t.lang))
}

/// "No access": signed in, neither an administrator nor an owner.
#[derive(Template)]
#[template(path = "admin_no_access.html")]
pub struct NoAccessPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// No app.
    pub brand: Brand,
    /// "You are signed in as {email} …" as HTML.
    pub text: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    /// The viewer of an `/admin` page: an administrator or owner; otherwise
    /// the answer to give: the sign-in through Postern (coming back to the
    /// page asked for), or the 403 "no access" page.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let back = if parts.method == Method::GET {
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .filter(|p| p.len() <= 120)
                .unwrap_or_else(|| "/admin".to_owned())
        } else {
            "/admin".to_owned()
        };
        enter(state, jar, &parts.headers, &back, ip.to_string())
            .await
            .map_err(IntoResponse::into_response)?
    }
}

async fn enter(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    back: &str,
    ip: String,
) -> Result<std::result::Result<Ctx, Response>> {
    let (t, a) = languages(headers);
    let Some(viewer) = postern_web::browser::viewer(state, &jar).await? else {
        let jar = jar.add(cookies::build(
            state,
            cookies::RETURN_TO,
            back.to_owned(),
            Some(postern_auth::account::FLOW_TTL),
        ));
        return Ok(Err(postern_web::routes::account::start_sign_in(state, jar)));
    };
    postern_auth::oidc::touch(state, &viewer.live.session).await?;
    let who = match admin::principal_for_user(state, &viewer.live.user, Some(ip)).await {
        Ok(who) => who,
        Err(AuthError::Forbidden(_)) => {
            let page = NoAccessPage {
                t,
                a,
                brand: Brand::default(),
                text: pages::with_address(a.no_access_text, &viewer.live.user.email),
            };
            return Ok(Err(pages::render_with(StatusCode::FORBIDDEN, &page)));
        }
        Err(e) => return Err(e.into()),
    };
    let notice = cookies::get(state, &jar, cookies::NOTICE)
        .and_then(|n| n.strip_prefix("admin.").map(str::to_owned));
    let jar = if notice.is_some() {
        jar.add(cookies::build(
            state,
            cookies::NOTICE,
            String::new(),
            Some(0),
        ))
    } else {
        jar
    };
    let (jar, csrf_token) = cookies::csrf_token(state, jar);
    Ok(Ok(Ctx {
        t,
        a,
        viewer,
        who,
        jar,
        csrf_token,
        notice,
    }))
}

/// The one-minute cookie that makes the next panel page say what a form did
/// (`what` is a key the page knows, never text from the request).
pub fn notice(state: &AppState, what: &str) -> axum_extra::extract::cookie::Cookie<'static> {
    cookies::build(state, cookies::NOTICE, format!("admin.{what}"), Some(60))
}

/// The confirmation step of a destructive action.
#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    /// The page's language.
    pub t: &'static Strings,
    /// The panel's words.
    pub a: &'static AdminStrings,
    /// Around the content.
    pub frame: Frame,
    /// What will happen, asked.
    pub question: String,
    /// The button's words.
    pub button: &'static str,
    /// Where the form posts (the action itself).
    pub action: String,
    /// The action's other fields, posted again.
    pub hidden: Vec<(String, String)>,
    /// Back without doing it.
    pub cancel: String,
}

/// The policy of the email preview frame: a sandbox (no script, no form,
/// an origin of its own), the email's inline styles, images from https and
/// this origin, and nothing else; only this origin may frame it.
pub const PREVIEW_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; \
    img-src 'self' https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// The strict policy of every page, plus framing this origin's previews.
pub const FRAMING_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `res` allowed to frame this origin's email previews.
pub fn allow_preview_frames(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FRAMING_CSP),
    );
    res
}

/// `{email}` filled, as plain text.
pub fn with_email(template: &str, email: &str) -> String {
    fill(template, &[("email", email)])
}
