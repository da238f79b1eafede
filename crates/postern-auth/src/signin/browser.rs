//! The hosted sign-in seen from a browser (SPEC §3.1): the asking browser's
//! "check your email" page, and the link opened in the asking browser or on
//! another device, under the app's `device_policy`.

use postern_core::DevicePolicy;
use url::Url;

use super::*;

/// The login request `login_id` names, if `binding` (the browser's binding
/// secret) is the one that asked for it; any other browser learns nothing
/// (the same answer as an unknown id).
pub async fn asked_by(
    svc: &Services,
    login_id: &str,
    binding: Option<&str>,
) -> Result<Option<LoginRequest>> {
    if LoginId::parse(login_id).is_err() {
        return Ok(None);
    }
    let req = svc.store.conn().await?.login_request(login_id).await?;
    Ok(req.filter(|r| is_asking_browser(svc, r, binding)))
}

/// Where a login request stands for the browser that asked.
#[derive(Debug)]
pub enum Waiting {
    /// "Send again" replaced it: the newer request's id.
    Replaced(String),
    /// Still waiting for the link, the code or (`remote`) the other device.
    Pending {
        /// The request.
        request: Box<LoginRequest>,
        /// Its app.
        app: Box<App>,
    },
    /// `remote`: the other device approved, and this browser is now signed
    /// in exactly as if it had opened the link.
    SignedIn(SignedIn),
}

/// The asking browser's view of its request (`GET /login/check`): live and
/// waiting, replaced by a newer one, or approved on another device (then
/// it signs in, once). `sessions` are the browser's session secrets: they
/// tell a request used here from one finished on another device.
pub async fn check(
    svc: &Services,
    login_id: &str,
    who: &Requester,
    sessions: Vec<String>,
) -> Result<Waiting> {
    let unknown = || AuthError::token(TokenProblem::Unknown);
    let req = asked_by(svc, login_id, who.binding.as_deref())
        .await?
        .ok_or_else(unknown)?;
    let app = svc.store.app(&req.client_id).await?.ok_or_else(unknown)?;
    let dead = |problem| {
        Err(AuthError::in_app(
            &app,
            AuthError::token_in(problem, flow_of(&req)),
        ))
    };
    if req.consumed_at.is_some() {
        // "Send again" replaced it: the newest request's page, not a dead end.
        if let Some(b) = who.binding.as_deref() {
            let newer = live_request_for_browser(svc, &app.client_id, b)
                .await?
                .filter(|n| n.created_at >= req.created_at && n.id != req.id);
            if let Some(newer) = newer {
                return Ok(Waiting::Replaced(newer.id));
            }
        }
        return dead(why_dead(svc, &req, sessions, TokenProblem::Used).await);
    }
    if req.expires_at <= svc.now() {
        return dead(TokenProblem::Expired);
    }
    if req.approved_at.is_some() {
        let signed_in = continue_approved(svc, &app, &req, who)
            .await
            .map_err(|e| AuthError::in_app(&app, e))?;
        return Ok(Waiting::SignedIn(signed_in));
    }
    Ok(Waiting::Pending {
        request: Box::new(req),
        app: Box::new(app),
    })
}

/// The newest live request this browser (`binding`) made for the app.
pub async fn live_request_for_browser(
    svc: &Services,
    client_id: &str,
    binding: &str,
) -> Result<Option<LoginRequest>> {
    let hash = binding_hash(svc, binding);
    Ok(svc
        .store
        .conn()
        .await?
        .live_request_for_browser(client_id, &hash, svc.now())
        .await?)
}

/// The newest email a browser asked for an app that still works: what a
/// rate-limited page points to ("your newest email still works until
/// 10:35").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEmail {
    /// `/login/check?id=…` of the live request.
    pub check_url: String,
    /// When it expires, Unix seconds.
    pub expires_at: i64,
}

/// The newest live email this browser (`binding`) asked for the app, if
/// any; a failing database says none (the page only loses a hint).
pub async fn live_email(svc: &Services, client_id: &str, binding: &str) -> Option<LiveEmail> {
    let live = live_request_for_browser(svc, client_id, binding)
        .await
        .ok()??;
    Some(LiveEmail {
        check_url: format!("/login/check?id={}", live.id),
        expires_at: live.expires_at,
    })
}

/// The "check your email" page of `login_id`, when it looks like a login
/// id: the way back a page may name (only the asking browser can open it,
/// so naming it leaks nothing).
pub fn check_url(login_id: &str) -> Option<String> {
    let looks_right = !login_id.is_empty()
        && login_id.len() <= 64
        && login_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
    looks_right.then(|| format!("/login/check?id={login_id}"))
}

/// The hidden fields and the address of a one-click "send a new link" form,
/// read back from a way forward to `/login` on `public_url` (the form keeps
/// the original destination and address); none for any other URL or one
/// without the address.
pub fn resend_fields(public_url: &Url, retry: &str) -> Option<(Vec<(String, String)>, String)> {
    let url = Url::parse(retry).ok()?;
    if url.origin() != public_url.origin() || url.path() != "/login" {
        return None;
    }
    let mut email = None;
    let mut hidden = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "login_hint" => email = Some(v.into_owned()),
            "client_id"
            | "redirect_uri"
            | "scope"
            | "state"
            | "nonce"
            | "code_challenge"
            | "code_challenge_method"
            | "ui_locales" => hidden.push((k.into_owned(), v.into_owned())),
            _ => {}
        }
    }
    Some((hidden, email?))
}

/// Why the asking browser's dead request can no longer be used, as its
/// pages say it: stopped by wrong codes or by a wrong number on the other
/// device, used here (`used_here`: this browser holds the account it
/// signed in), or used by a sign-in on another device.
pub async fn why_dead(
    svc: &Services,
    req: &LoginRequest,
    sessions: Vec<String>,
    used_here: TokenProblem,
) -> TokenProblem {
    match TokenProblem::of_dead_link(req) {
        TokenProblem::WrongNumber => return TokenProblem::StoppedByWrongNumber,
        TokenProblem::Used => {}
        other => return other,
    }
    // This browser signed in with it (or with a sibling since): its own
    // doing. Otherwise another device finished the sign-in.
    let accounts = crate::oidc::browser_accounts(svc, sessions)
        .await
        .unwrap_or_default();
    let here = accounts
        .iter()
        .any(|a| a.live.user.email == req.email && a.live.session.created_at >= req.created_at);
    if here {
        used_here
    } else {
        TokenProblem::FinishedElsewhere
    }
}

/// The request `login_id` and its app, if it exists and (with
/// `binding: Some(..)`) `binding` is the browser that asked: to dress an
/// error page of its flow, so another browser learns nothing from it.
pub async fn request_and_app(
    svc: &Services,
    login_id: Option<&str>,
    binding: Option<Option<&str>>,
) -> Option<(App, LoginRequest)> {
    // Only a well-formed id reaches the database (no control characters).
    let id = LoginId::parse(login_id?).ok()?;
    let mut conn = svc.store.conn().await.ok()?;
    let req = conn.login_request(id.as_str()).await.ok()??;
    if let Some(b) = binding {
        if !is_asking_browser(svc, &req, b) {
            return None;
        }
    }
    let app = conn.cached_app(&req.client_id).await.ok()??;
    Some((app, req))
}

/// The asking browser's request `login_id` and its app, while it is live.
pub async fn live_request_of(
    svc: &Services,
    login_id: &str,
    binding: Option<&str>,
) -> Option<(App, LoginRequest)> {
    let (app, req) = request_and_app(svc, Some(login_id), Some(binding)).await?;
    let live = req.consumed_at.is_none() && req.expires_at > svc.now();
    live.then_some((app, req))
}

/// `GET /login/status`: where a `remote` request stands, for the asking
/// browser only ([`AuthError::NotFound`] for any other, as for an unknown id).
pub async fn remote_status(
    svc: &Services,
    login_id: &str,
    binding: Option<&str>,
) -> Result<RemoteStatus> {
    let req = asked_by(svc, login_id, binding)
        .await?
        .ok_or(AuthError::NotFound)?;
    Ok(RemoteStatus::of(&req, svc.now()))
}

/// "Send again" from the asking browser: a new link and code for the same
/// destination, in the request's language, replacing the earlier request.
pub async fn resend(svc: &Services, req: &LoginRequest, who: &Requester) -> Result<LinkSent> {
    let raw = RawAuthParams {
        client_id: Some(req.client_id.clone()),
        redirect_uri: Some(req.redirect_uri.clone()),
        scope: Some(req.scope.clone()),
        state: req.state.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge.as_ref().map(|_| "S256".to_owned()),
        ui_locales: Some(req.locale.clone()),
    };
    let params = validate_auth_params(svc, &raw).await?;
    request_link(svc, &params, &req.email, who)
        .await
        .map_err(|e| AuthError::in_app(&params.app, e))
}

/// What a browser other than the asking one may do with a link, by the
/// app's `device_policy` (SPEC §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherDevice {
    /// `any`: confirm, and continue here.
    MayContinue,
    /// `same_browser` (or `remote` without a number to type): nothing here
    /// signs anyone in; use the code on the asking device.
    UseCode,
    /// `remote`: type the number the asking device shows to approve it.
    TypeNumber,
}

impl OtherDevice {
    /// What another browser may do with `opened`.
    pub fn of(opened: &OpenedLink) -> Self {
        match opened.app.settings.device_policy {
            DevicePolicy::Any => OtherDevice::MayContinue,
            DevicePolicy::SameBrowser => OtherDevice::UseCode,
            // A request made where no page could show the number (a
            // cross-site JSON request) cannot be approved: use the code.
            DevicePolicy::Remote if opened.request.remote_number.is_some() => {
                OtherDevice::TypeNumber
            }
            DevicePolicy::Remote => OtherDevice::UseCode,
        }
    }
}

/// A link opened in a browser (`GET /verify-email`).
#[derive(Debug)]
pub enum Visit {
    /// The asking browser: signed in at once.
    SignedIn(SignedIn),
    /// Another browser: nothing consumed; show what it may do.
    Elsewhere(Box<OpenedLink>, OtherDevice),
}

/// SPEC §3.1: a link opened in the asking browser signs in at once; opened
/// anywhere else it consumes nothing (mail scanners, previews) and the
/// person is asked, by the app's `device_policy`.
pub async fn visit(svc: &Services, token: &str, who: &Requester) -> Result<Visit> {
    let visit = visit_uncounted(svc, token, who).await;
    let signed_in = |v: &Visit| matches!(v, Visit::SignedIn(_));
    svc.metrics.sign_in(Method::Link, &visit, signed_in);
    visit
}

async fn visit_uncounted(svc: &Services, token: &str, who: &Requester) -> Result<Visit> {
    let opened = open_link(svc, token, who.ip).await?;
    if is_asking_browser(svc, &opened.request, who.binding.as_deref()) {
        let signed_in = consume_link(svc, &opened, who)
            .await
            .map_err(|e| AuthError::in_app(&opened.app, e))?;
        return Ok(Visit::SignedIn(signed_in));
    }
    let other = OtherDevice::of(&opened);
    Ok(Visit::Elsewhere(Box::new(opened), other))
}

/// The answer to the confirmation page (`POST /verify-email`).
#[derive(Debug)]
pub enum Confirmed {
    /// Signed in here.
    SignedIn(SignedIn),
    /// `remote`: the number is still to be typed.
    AskNumber(Box<OpenedLink>),
    /// `remote`: the right number; the asking browser continues by itself.
    Approved(Box<OpenedLink>),
    /// `same_browser`: nothing here signs anyone in; use the code there.
    UseCode(Box<OpenedLink>),
}

/// SPEC §3.1: what the confirmation's button does follows the app's
/// `device_policy`: `any` consumes and continues in this browser;
/// `same_browser` says to use the code on the asking device; `remote`
/// approves the asking browser's request when `number` is right (and signs
/// in nobody here).
pub async fn confirm(
    svc: &Services,
    token: &str,
    number: Option<&str>,
    who: &Requester,
) -> Result<Confirmed> {
    let confirmed = confirm_uncounted(svc, token, number, who).await;
    let signed_in = |c: &Confirmed| matches!(c, Confirmed::SignedIn(_));
    svc.metrics.sign_in(Method::Link, &confirmed, signed_in);
    confirmed
}

async fn confirm_uncounted(
    svc: &Services,
    token: &str,
    number: Option<&str>,
    who: &Requester,
) -> Result<Confirmed> {
    let opened = open_link(svc, token, who.ip).await?;
    let asking = is_asking_browser(svc, &opened.request, who.binding.as_deref());
    if !asking {
        match OtherDevice::of(&opened) {
            OtherDevice::TypeNumber => {
                let Some(number) = number.filter(|n| !n.trim().is_empty()) else {
                    return Ok(Confirmed::AskNumber(Box::new(opened)));
                };
                let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
                approve_remote(svc, &opened, &number, who)
                    .await
                    .map_err(|e| AuthError::in_app(&opened.app, e))?;
                return Ok(Confirmed::Approved(Box::new(opened)));
            }
            OtherDevice::UseCode => return Ok(Confirmed::UseCode(Box::new(opened))),
            OtherDevice::MayContinue => {}
        }
    }
    let signed_in = consume_link(svc, &opened, who)
        .await
        .map_err(|e| AuthError::in_app(&opened.app, e))?;
    Ok(Confirmed::SignedIn(signed_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_id_that_looks_like_one_names_its_check_page() {
        assert_eq!(
            check_url("Ab-9_z").as_deref(),
            Some("/login/check?id=Ab-9_z")
        );
        assert_eq!(check_url(""), None);
        assert_eq!(check_url("a/b"), None);
        assert_eq!(check_url("a&next=x"), None);
        assert_eq!(check_url(&"a".repeat(65)), None);
        assert!(check_url(&"a".repeat(64)).is_some());
    }

    #[test]
    fn a_resend_form_is_read_back_from_our_own_login_url_only() {
        let ours = Url::parse("https://id.example").unwrap();
        let retry =
            "https://id.example/login?client_id=notes&redirect_uri=https%3A%2F%2Fn.example%2Fcb\
                     &scope=openid+email&state=s1&login_hint=jo%40example.com&from=chooser";
        let (hidden, email) = resend_fields(&ours, retry).unwrap();
        assert_eq!(email, "jo@example.com");
        let names: Vec<&str> = hidden.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["client_id", "redirect_uri", "scope", "state"]);
        assert_eq!(hidden[1].1, "https://n.example/cb");
        // Another origin, another path, no address, not a URL: no form.
        let theirs = retry.replace("id.example", "evil.example");
        assert_eq!(resend_fields(&ours, &theirs), None);
        assert_eq!(
            resend_fields(&ours, &retry.replace("/login", "/logout")),
            None
        );
        assert_eq!(
            resend_fields(&ours, "https://id.example/login?client_id=notes"),
            None
        );
        assert_eq!(resend_fields(&ours, "/account"), None);
    }
}
