//! Outcomes of the services, rendered: each way forward a service names
//! becomes a redirect, a page or a cookie here, and nowhere else.

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use postern_auth::oidc::{AuthorizeOutcome, AuthorizeRequest, BrowserAccount};
use postern_auth::signin::{Next, SignedIn};
use postern_auth::Flow;

use crate::error::Result;
use crate::i18n::{self, Strings};
use crate::pages::{self, Brand, ChooserPage, ConsentPage};
use crate::{browser, cookies, AppState};

/// `/authorize`'s answer: back to the app, the consent screen, the account
/// chooser or the address form. The account that continues becomes the
/// browser's current one.
pub fn authorize(
    state: &AppState,
    mut jar: CookieJar,
    t: &'static Strings,
    req: &AuthorizeRequest,
    mut accounts: Vec<BrowserAccount>,
    outcome: AuthorizeOutcome,
) -> Response {
    let params = &req.params;
    let mut make_current = |jar: CookieJar, i: usize| {
        if i == 0 {
            return jar;
        }
        let used = accounts.remove(i);
        accounts.insert(0, used);
        jar.add(browser::accounts_cookie(state, &accounts))
    };
    match outcome {
        AuthorizeOutcome::Redirect { account, response } => {
            jar = make_current(jar, account);
            (jar, Redirect::to(&response.to_url())).into_response()
        }
        AuthorizeOutcome::Consent { account, pending } => {
            jar = make_current(jar, account);
            let (jar, csrf_token) = cookies::csrf_token(state, jar);
            let email = &accounts[0].live.user.email;
            let page = ConsentPage {
                t,
                brand: Brand::of(&params.app, &state.config, t),
                items: ConsentPage::items(t, &params.scope, email),
                email: email.clone(),
                returns_to: t.returns_to(&params.redirect_uri),
                other_account: state
                    .config
                    .url(&format!("/login?{}", params.login_query(None))),
                login_id: String::new(),
                csrf_token,
                consent_token: String::new(),
                request: pending.seal(state),
            };
            (jar, pages::render(&page)).into_response()
        }
        AuthorizeOutcome::Chooser(candidates) => {
            let (jar, csrf_token) = cookies::csrf_token(state, jar);
            let hidden = req.form_fields();
            let page = ChooserPage {
                t,
                brand: Brand::of(&params.app, &state.config, t),
                accounts: candidates
                    .iter()
                    .map(|&i| pages::ChooserAccount {
                        session_id: accounts[i].live.session.id.clone(),
                        email: accounts[i].live.user.email.clone(),
                    })
                    .collect(),
                hidden,
                csrf_token,
                // "Use another account" leads to the email form, which
                // offers "Back" to this chooser.
                other_account: state
                    .config
                    .url(&format!("/login?{}&from=chooser", params.login_query(None))),
            };
            (jar, pages::render(&page)).into_response()
        }
        AuthorizeOutcome::Login { login_hint } => {
            let url = state.config.url(&format!(
                "/login?{}",
                params.login_query(login_hint.as_deref())
            ));
            (jar, Redirect::to(&url)).into_response()
        }
    }
}

/// A finished sign-in: the session cookie (the new session joins the
/// browser's accounts as the current one), then the app or the consent
/// screen.
pub async fn signed_in(state: &AppState, jar: CookieJar, s: SignedIn) -> Result<Response> {
    let jar = browser::remember_session(state, jar, &s.session_secret).await?;
    // Issue 15: after an email sign-in, once, in a browser that can make a
    // passkey, offer one before going on.
    if let (Some(flow), Next::Redirect(_)) = (&s.passkey_offer, &s.next) {
        if crate::routes::passkeys::may_offer(state, &jar) {
            return crate::routes::passkeys::offer_page(state, jar, flow).await;
        }
    }
    Ok(match s.next {
        Next::Redirect(response) => (jar, Redirect::to(&response.to_url())).into_response(),
        Next::Continue(url) => (jar, Redirect::to(&url)).into_response(),
        Next::Consent {
            login_id,
            app,
            scope,
            locale,
            consent_token,
            flow,
        } => {
            let (jar, csrf_token) = cookies::csrf_token(state, jar);
            let t = i18n::negotiate(Some(&locale), None, &app.settings.locale);
            let page = ConsentPage {
                t,
                brand: Brand::of(&app, &state.config, t),
                items: ConsentPage::items(t, &scope, &flow.email),
                email: flow.email.clone(),
                returns_to: t.returns_to(&flow.redirect_uri),
                other_account: login_url(state, &flow, None),
                login_id,
                csrf_token,
                consent_token,
                request: String::new(),
            };
            (jar, pages::render(&page)).into_response()
        }
    })
}

/// `/login` with a sign-in's original destination and language, and
/// `email` filled in (none: "Use another account"): one click to a new link.
pub fn login_url(state: &AppState, flow: &Flow, email: Option<&str>) -> String {
    state
        .config
        .url(&format!("/login?{}", flow.query(None, email)))
}

/// `/authorize` for the sign-in `flow` (it completes at once by the session
/// just made: no `prompt`, the address as `login_hint` so the chooser does
/// not ask again).
pub fn continue_url(flow: &Flow) -> String {
    let code = Some(("response_type", "code"));
    format!("/authorize?{}", flow.query(code, Some(&flow.email)))
}
