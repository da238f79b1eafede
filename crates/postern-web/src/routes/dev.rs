//! SPEC §3.3 `/_dev/mail`: the local inbox of a development setup.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use crate::error::{AppError, Result};
use crate::extract::{accept_language, Peer};
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

/// `GET /_dev/mail`: exists only with the stdout transport when the public
/// URL, the bind address, the client and the `Host` header are all loopback;
/// otherwise it is a plain 404, indistinguishable from any unknown path.
pub async fn dev_mail(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response> {
    let client_loopback = peer.is_some_and(|addr| addr.ip().is_loopback());
    let inbox = match &state.dev_inbox {
        Some(inbox) if state.config.dev_mail && client_loopback && loopback_host(&headers) => inbox,
        _ => return Err(AppError::NotFound),
    };
    let t = i18n::negotiate(None, accept_language(&headers).as_deref(), "en");
    let messages = inbox
        .messages()
        .into_iter()
        .map(|m| DevMessage {
            to_line: fill(
                t.dev_to,
                &[("email", &m.to), ("time", &t.date_time(m.received_at))],
            ),
            subject: m.subject,
            text: m.text,
            link: m.link,
            code: m.code,
        })
        .collect();
    Ok(pages::render(&DevMailPage {
        t,
        brand: Brand::default(),
        messages,
    }))
}
