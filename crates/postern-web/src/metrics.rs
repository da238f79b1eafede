//! `GET /metrics` (SPEC §3.6): the middleware that counts requests by
//! matched route and status and times them by route, and who may read
//! `/metrics`. The series and the registry every crate's series are shown
//! from are [`Metrics`] (`postern_auth::metrics`).
//!
//! Labels name route templates (`/api/v1/sessions/{session_id}`), never a
//! path as requested: a path may carry an id, and an unknown one is just
//! `unmatched`. No label holds an address, a token or an IP.

use std::future::Future;
use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use postern_auth::AuthError;

use crate::error::AppError;
use crate::AppState;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The registry of every series, with the HTTP layer's own, lives with the
/// services' counters: nothing in it is HTTP but the labels this
/// middleware chooses.
pub use postern_auth::metrics::{Metrics, CONTENT_TYPE};

/// A method as a label: the standard ones by name, anything else `other`
/// (a client may send any token as a method).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts every request by the route it matched and the status it got,
/// and times it. Outermost of the per-route layers, so a deadline's 408
/// or a body limit's 413 is counted as answered.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .observe(route, method, res.status().as_u16(), started.elapsed());
    res
}

/// Who asks for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Scraper<'a> {
    /// The client's address as derived through `POSTERN_TRUSTED_PROXIES`.
    pub client: IpAddr,
    /// Whether the request came through a proxy (it carries
    /// `X-Forwarded-For`, `Forwarded` or `X-Real-IP`).
    pub forwarded: bool,
    /// Its `Authorization` header.
    pub authorization: Option<&'a str>,
}

impl<'a> Scraper<'a> {
    /// The facts of a request with these headers from `client`.
    pub fn of(client: IpAddr, headers: &'a HeaderMap) -> Self {
        Scraper {
            client,
            forwarded: ["x-forwarded-for", "forwarded", "x-real-ip"]
                .iter()
                .any(|h| headers.contains_key(*h)),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        }
    }
}

/// SPEC §3.6: `/metrics` answers a loopback client, a request bearing an
/// admin token (`Authorization: Bearer pat_…`, checked by
/// `verify_admin_token`), or anyone when `public` (`POSTERN_METRICS_PUBLIC`).
///
/// Loopback means the client as derived through the trusted proxies, and
/// a request that came through any proxy is never loopback: a reverse
/// proxy on the same host would otherwise open `/metrics` to the world,
/// whether or not it is listed in `POSTERN_TRUSTED_PROXIES`.
///
/// Others get 401 (`WWW-Authenticate: Bearer`) without a token and 401
/// `invalid_token` with a token that is not a live admin token.
pub async fn may_scrape<F, Fut>(
    who: Scraper<'_>,
    public: bool,
    verify_admin_token: F,
) -> Result<(), AppError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<bool, AuthError>>,
{
    if public || (who.client.to_canonical().is_loopback() && !who.forwarded) {
        return Ok(());
    }
    let Some(authorization) = who.authorization else {
        return Err(AppError::NoBearer);
    };
    // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1).
    let token = authorization
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| authorization[7..].trim())
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or(AppError::Auth(AuthError::InvalidAccessToken))?;
    if verify_admin_token(token.to_owned()).await? {
        Ok(())
    } else {
        Err(AppError::Auth(AuthError::InvalidAccessToken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    async fn decide(who: Scraper<'_>, public: bool) -> Result<(), (StatusCode, &'static str)> {
        may_scrape(who, public, |token| async move { Ok(token == "pat_good") })
            .await
            .map_err(|e| e.status_and_code())
    }

    fn scraper(
        client: &str,
        forwarded: bool,
        authorization: Option<&'static str>,
    ) -> Scraper<'static> {
        Scraper {
            client: ip(client),
            forwarded,
            authorization,
        }
    }

    #[tokio::test]
    async fn loopback_admin_tokens_and_public_mode_may_scrape_and_no_one_else() {
        let unauthorized = Err((StatusCode::UNAUTHORIZED, "invalid_request"));
        let bad_token = Err((StatusCode::UNAUTHORIZED, "invalid_token"));
        let cases = [
            ("127.0.0.1", false, None, false, Ok(()), "loopback"),
            ("::1", false, None, false, Ok(()), "IPv6 loopback"),
            (
                "::ffff:127.0.0.1",
                false,
                None,
                false,
                Ok(()),
                "mapped loopback",
            ),
            (
                "127.0.0.1",
                true,
                None,
                false,
                unauthorized,
                "forwarded by a local proxy",
            ),
            ("203.0.113.9", false, None, false, unauthorized, "remote"),
            (
                "10.0.0.2",
                false,
                None,
                false,
                unauthorized,
                "private is not loopback",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer pat_good"),
                false,
                Ok(()),
                "admin token",
            ),
            (
                "203.0.113.9",
                true,
                Some("bearer pat_good"),
                false,
                Ok(()),
                "scheme any case",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer pat_bad"),
                false,
                bad_token,
                "wrong token",
            ),
            (
                "203.0.113.9",
                false,
                Some("Basic cGF0Og=="),
                false,
                bad_token,
                "not bearer",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer "),
                false,
                bad_token,
                "empty token",
            ),
            ("203.0.113.9", true, None, true, Ok(()), "public"),
        ];
        for (client, forwarded, auth, public, expected, case) in cases {
            let got = decide(scraper(client, forwarded, auth), public).await;
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn any_forwarding_header_marks_a_request_forwarded() {
        for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let mut headers = HeaderMap::new();
            headers.insert(h, "127.0.0.1".parse().unwrap());
            assert!(Scraper::of(ip("127.0.0.1"), &headers).forwarded, "{h}");
        }
        assert!(!Scraper::of(ip("127.0.0.1"), &HeaderMap::new()).forwarded);
    }

    #[test]
    fn requests_are_counted_by_route_template_and_methods_from_a_fixed_set() {
        let m = Metrics::default();
        m.observe(
            "/api/v1/sessions/{session_id}".into(),
            method_label(&Method::DELETE),
            StatusCode::NO_CONTENT.as_u16(),
            std::time::Duration::from_millis(3),
        );
        m.observe(
            UNMATCHED.into(),
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            StatusCode::NOT_FOUND.as_u16(),
            std::time::Duration::from_millis(1),
        );
        let text = m.encode().unwrap();
        assert!(
            text.contains(
                r#"postern_http_requests_total{route="/api/v1/sessions/{session_id}",method="DELETE",status="204"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"postern_http_requests_total{route="unmatched",method="other",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"postern_http_request_duration_seconds_bucket{le="0.005",route="/api/v1/sessions/{session_id}",method="DELETE"} 1"#)
                || text.contains(r#"postern_http_request_duration_seconds_bucket{route="/api/v1/sessions/{session_id}",method="DELETE",le="0.005"} 1"#),
            "{text}"
        );
    }
}
