//! SPEC §3.3 `/_dev/mail`: the local inbox of a development setup.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use postern_mail::DevInbox;

use crate::error::{AppError, Result};
use crate::extract::{accept_language, AppPath, Peer};
use crate::i18n::{self, fill};
use crate::pages::{self, Brand, DevMailPage, DevMessage};
use crate::AppState;

/// Whether a `Host` header names a loopback address (any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The inbox, when this request may see it: the stdout transport with a
/// loopback public URL and bind address, a loopback client and a loopback
/// `Host` header. Otherwise a plain 404, indistinguishable from any
/// unknown path.
fn inbox<'a>(
    state: &'a AppState,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
) -> Result<&'a DevInbox> {
    let client_loopback = peer.is_some_and(|addr| addr.ip().is_loopback());
    match &state.dev_inbox {
        Some(inbox) if state.config.dev_mail && client_loopback && loopback_host(headers) => {
            Ok(inbox)
        }
        _ => Err(AppError::NotFound),
    }
}

/// `GET /_dev/mail`: the newest emails with their link, code, HTML part (in
/// a sandboxed frame) and text part.
pub async fn dev_mail(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response> {
    let inbox = inbox(&state, peer, &headers)?;
    let t = i18n::negotiate(None, accept_language(&headers).as_deref(), "en");
    let messages = inbox
        .messages()
        .into_iter()
        .map(|m| DevMessage {
            to_line: fill(
                t.dev_to,
                &[("email", &m.to), ("time", &t.date_time(m.received_at))],
            ),
            html_url: format!("/_dev/mail/{}.html", m.id),
            subject: m.subject,
            text: m.text,
            link: m.link,
            code: m.code,
        })
        .collect();
    let mut res = pages::render(&DevMailPage {
        t,
        brand: Brand::default(),
        messages,
    });
    // The page's policy stays the strict one, plus one thing: it may frame
    // the previews below, which come from this origin.
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEV_MAIL_CSP),
    );
    Ok(res)
}

/// The strict policy of every page, plus framing this origin's previews.
const DEV_MAIL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of an email's HTML part shown in the inbox: a sandbox (no
/// script, no form, no navigation of the page around it, an origin of its
/// own), the email's inline styles, images from https and this origin (an
/// app's logo), and nothing else; only this origin may frame it.
const PREVIEW_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; \
    img-src 'self' https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// `GET /_dev/mail/{id}.html`: one email's HTML part as it was sent, for
/// the inbox's sandboxed frame.
pub async fn dev_mail_html(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    AppPath(file): AppPath<String>,
) -> Result<Response> {
    let inbox = inbox(&state, peer, &headers)?;
    let id = file
        .strip_suffix(".html")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or(AppError::NotFound)?;
    let mail = inbox.message(id).ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PREVIEW_CSP),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        mail.html,
    )
        .into_response())
}
