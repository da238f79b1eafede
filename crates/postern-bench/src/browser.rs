//! A virtual browser: its own HTTP connection(s), its own cookie jar, and
//! its turn through the instances under test.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Why a step failed, as the report groups it: `HTTP 429 too_many_requests`,
/// `timeout`, `no email within 30 s`…
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Failure(pub String);

impl Failure {
    /// Not tried because the run was over; never counted as an error.
    pub fn run_ended() -> Self {
        Failure(RUN_ENDED.to_owned())
    }

    /// Whether this is [`Failure::run_ended`].
    pub fn is_run_ended(&self) -> bool {
        self.0 == RUN_ENDED
    }
}

const RUN_ENDED: &str = "not tried: the run ended";

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Failure(
            if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "cannot connect"
            } else if e.is_body() || e.is_decode() {
                "broken answer"
            } else {
                "connection error"
            }
            .to_owned(),
        )
    }
}

/// An answer, read whole (so the connection is reused).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// `Ok` when the status is `want`, else a failure named by the status
    /// and, for the SPEC's JSON errors, the `error` code.
    pub fn expect(&self, want: u16) -> Result<(), Failure> {
        if self.status.as_u16() == want {
            return Ok(());
        }
        let code = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
        Err(Failure(match code {
            Some(code) => format!("HTTP {} {code}", self.status.as_u16()),
            None => format!("HTTP {}", self.status.as_u16()),
        }))
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|_| Failure(format!("HTTP {} without a JSON body", self.status.as_u16())))
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

/// One cookie as a browser keeps it (only what Postern's cookies use).
#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

/// A browser's cookies. Postern's instances share one public origin behind
/// a load balancer, so cookies go to every instance under test alike.
#[derive(Debug, Clone, Default)]
pub struct Jar(Vec<Cookie>);

impl Jar {
    /// Takes the `Set-Cookie` headers of an answer (a cookie with an empty
    /// value or `Max-Age=0` is removed).
    pub fn store(&mut self, headers: &HeaderMap) {
        for header in headers.get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let mut path = "/".to_owned();
            let mut expired = value.is_empty();
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "path" => path = v.trim().to_owned(),
                    "max-age" => expired |= v.trim().starts_with(['0', '-']),
                    _ => {}
                }
            }
            self.0.retain(|c| !(c.name == name && c.path == path));
            if !expired {
                self.0.push(Cookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    /// The `Cookie` header for a request to `path`.
    pub fn header(&self, path: &str) -> Option<HeaderValue> {
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|c| path.starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty())
            .then(|| HeaderValue::from_str(&pairs.join("; ")).ok())
            .flatten()
    }

    /// Whether a cookie named `name` is held (`__Host-name` on https).
    pub fn has(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|c| c.name.strip_prefix("__Host-").unwrap_or(&c.name) == name)
    }
}

/// One virtual browser (or, for the headless scenario, one connection of
/// the app's server).
pub struct Browser {
    http: reqwest::Client,
    urls: Arc<Vec<Url>>,
    turn: usize,
    stop_at: Instant,
    /// The cookies of the person now using this browser.
    pub jar: Jar,
    /// With `--client-addresses per-person`: the address the person's
    /// requests come from, sent as `X-Forwarded-For` (the server trusts it
    /// from loopback with `POSTERN_TRUSTED_PROXIES=127.0.0.1/32`).
    pub client_ip: Option<HeaderValue>,
}

impl Browser {
    /// A browser that starts its round of the instances at `first` and
    /// sends nothing from `stop_at` on.
    pub fn new(urls: Arc<Vec<Url>>, first: usize, timeout: Duration, stop_at: Instant) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("postern-bench/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client without TLS builds");
        Self {
            http,
            urls,
            turn: first,
            stop_at,
            jar: Jar::default(),
            client_ip: None,
        }
    }

    /// The HTTP client (its connections are this browser's).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `path` on the next instance in this browser's round: with several
    /// `--url`s every request goes to the next one, so a sign-in started on
    /// one instance finishes on another.
    pub fn next_url(&mut self, path_and_query: &str) -> Url {
        let base = &self.urls[self.turn % self.urls.len()];
        self.turn = self.turn.wrapping_add(1);
        base.join(path_and_query)
            .expect("a path joins any base URL")
    }

    /// When this browser stops sending.
    pub fn stop_at(&self) -> Instant {
        self.stop_at
    }

    /// Sends `request` to `url` with this browser's cookies, keeps the
    /// cookies it sets, and reads the whole answer. Nothing is sent after
    /// the end of the run, but a request under way is never cut off: a
    /// client that hangs up mid-request is a different load (and a
    /// different test) from the one measured.
    pub async fn send(&mut self, url: &Url, request: RequestBuilder) -> Result<Answer, Failure> {
        if Instant::now() >= self.stop_at {
            return Err(Failure::run_ended());
        }
        let request = match self.jar.header(url.path()) {
            Some(cookies) => request.header(COOKIE, cookies),
            None => request,
        };
        let request = match &self.client_ip {
            Some(ip) => request.header(X_FORWARDED_FOR, ip.clone()),
            None => request,
        };
        let res = match request.send().await {
            Ok(res) => res,
            Err(e) => {
                if e.is_connect() {
                    // A server that is down refuses at once: don't spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return Err(e.into());
            }
        };
        let status = res.status();
        let headers = res.headers().clone();
        self.jar.store(&headers);
        let body = res.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn the_jar_sends_cookies_for_their_path_and_drops_expired_ones() {
        let mut jar = Jar::default();
        jar.store(&set(&[
            "postern_binding=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=86400",
            "postern_link=tok; Path=/verify-email",
            "postern_csrf=x; Path=/",
        ]));
        assert_eq!(
            jar.header("/verify-email").unwrap(),
            "postern_binding=abc; postern_link=tok; postern_csrf=x"
        );
        assert_eq!(
            jar.header("/token").unwrap(),
            "postern_binding=abc; postern_csrf=x"
        );
        jar.store(&set(&[
            "postern_csrf=; Path=/; Max-Age=0",
            "postern_binding=def; Path=/",
        ]));
        assert_eq!(jar.header("/").unwrap(), "postern_binding=def");
        assert!(jar.has("postern_binding"));
    }
}
