//! `GET /metrics` (SPEC §3.6): the middleware that counts requests by
//! matched route and status and times them by route, and who may read
//! `/metrics`. The series and the registry every crate's series are shown
//! from are [`Metrics`] (`postern_auth::metrics`).
//!
//! Labels name route templates (`/api/v1/sessions/{session_id}`), never a
//! path as requested: a path may carry an id, and an unknown one is just
//! `unmatched`. No label holds an address, a token or an IP.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use postern_auth::metrics::Scraper;

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

/// Who asks for `/metrics` ([`postern_auth::metrics::may_scrape`] decides):
/// the client's address as derived through `POSTERN_TRUSTED_PROXIES`,
/// whether the request came through a proxy (it carries `X-Forwarded-For`,
/// `Forwarded` or `X-Real-IP`), and its `Authorization` header.
pub fn scraper(client: IpAddr, headers: &HeaderMap) -> Scraper<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn any_forwarding_header_marks_a_request_forwarded() {
        for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let mut headers = HeaderMap::new();
            headers.insert(h, "127.0.0.1".parse().unwrap());
            assert!(scraper(ip("127.0.0.1"), &headers).forwarded, "{h}");
        }
        assert!(!scraper(ip("127.0.0.1"), &HeaderMap::new()).forwarded);
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
