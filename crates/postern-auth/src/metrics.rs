//! What `/metrics` tells of the services (SPEC §3.6): counters moved where
//! a decision is made (sign-ins, refused link requests, code attempts) and
//! gauges read at each scrape (outbox backlog, database pool, signing-key
//! age). And [`Metrics`]: the one registry every crate adds its series to,
//! encoded as the Prometheus text `/metrics` answers, with the HTTP
//! layer's requests and latency, which the web middleware records (no
//! HTTP type here: route templates, method names and statuses as words
//! and numbers).
//!
//! Every label value is one of a fixed set of words chosen here (or, for
//! the HTTP series, a route template and a method from a fixed set): never
//! an address, a token, an IP, a client id or anything else a request
//! brings, so neither privacy nor the number of series depends on what
//! callers send.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_core::jose::Alg;
use postern_store::Queries as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::error::{AuthError, TokenProblem};
use crate::signin::Method;
use crate::Services;

/// Upper bounds of the latency buckets, seconds: Prometheus' defaults,
/// from a cached page (milliseconds) to a request near its deadline.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every series `/metrics` shows (the registry each crate added its series
/// to), and the HTTP layer's own: requests and latency by the route
/// template and method its middleware names. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
}

impl Default for Metrics {
    /// The HTTP series alone, in a registry of their own (tests).
    fn default() -> Self {
        Self::new(Registry::with_prefix("postern"))
    }
}

impl Metrics {
    /// Adds the HTTP series to `registry`, which holds the other crates'
    /// series already, and keeps it for `/metrics`.
    pub fn new(mut registry: Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests answered, by matched route template, method and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its answer's head, by matched route template and method",
            Unit::Seconds,
            latency.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
        }
    }

    /// Counts one answered request: its matched route template (never a
    /// path as requested), its method from a fixed set, its status.
    pub fn observe(&self, route: String, method: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route, method })
            .observe(took.as_secs_f64());
    }

    /// Every series in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long a scrape waits for the database before reporting it down.
pub const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgLabels {
    alg: &'static str,
}

/// The services' metrics. Cheap to clone: clones count into the same
/// series. [`AuthMetrics::default`] counts into series no registry shows
/// (tests, tools); the server registers them with [`AuthMetrics::register`].
#[derive(Clone, Debug, Default)]
pub struct AuthMetrics {
    sign_ins: Family<SignInLabels, Counter>,
    link_requests_refused: Family<LimitLabels, Counter>,
    code_attempts: Family<OutcomeLabels, Counter>,
    database_up: Gauge,
    outbox_pending: Gauge,
    outbox_oldest_age: Gauge,
    pool_connections: Family<StateLabels, Gauge>,
    pool_max: Gauge,
    signing_key_age: Family<AlgLabels, Gauge>,
}

impl AuthMetrics {
    /// Adds every series to `registry` (names get its prefix, `postern_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sign_ins",
            "Sign-in attempts that ended, by method (link, code, passkey) and outcome (success, expired, used, invalid, wrong_code, too_many_tries, wrong_number, rate_limited, rejected, unavailable, error; a passkey also unknown_passkey, disabled, passkeys_off)",
            self.sign_ins.clone(),
        );
        registry.register(
            "link_requests_refused",
            "Link requests refused by a full rate limit, by which limit (ip, email, app)",
            self.link_requests_refused.clone(),
        );
        registry.register(
            "code_attempts",
            "One-time codes typed, by outcome (right, wrong, killed: the wrong code that ended its request, over_budget, refused: a request that takes no code)",
            self.code_attempts.clone(),
        );
        registry.register(
            "database_up",
            "1 when the last scrape could read the database, else 0",
            self.database_up.clone(),
        );
        registry.register(
            "outbox_pending_messages",
            "Emails neither delivered nor given up",
            self.outbox_pending.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_pending_age",
            "Age of the oldest email neither delivered nor given up (0 when none waits)",
            Unit::Seconds,
            self.outbox_oldest_age.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (in_use, idle) and callers waiting for one (waiting)",
            self.pool_connections.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "The database pool's size limit",
            self.pool_max.clone(),
        );
        registry.register_with_unit(
            "signing_key_age",
            "Time since the active signing key of each algorithm started signing",
            Unit::Seconds,
            self.signing_key_age.clone(),
        );
    }

    /// Counts a sign-in attempt that ended: `Some(true)` for signed in,
    /// `Some(false)` for an ending that is not a sign-in but no failure
    /// either (nothing is counted), from `result`.
    pub(crate) fn sign_in<T>(
        &self,
        method: Method,
        result: &Result<T, AuthError>,
        signed_in: impl FnOnce(&T) -> bool,
    ) {
        let outcome = match result {
            Ok(v) if signed_in(v) => "success",
            Ok(_) => return,
            Err(e) => failure(e),
        };
        self.sign_ins
            .get_or_create(&SignInLabels {
                method: method.event(),
                outcome,
            })
            .inc();
    }

    /// Counts a passkey sign-in that ended (issue 15): `success` or what
    /// refused it.
    pub(crate) fn passkey_sign_in(&self, outcome: &'static str) {
        self.sign_ins
            .get_or_create(&SignInLabels {
                method: "passkey",
                outcome,
            })
            .inc();
    }

    /// Counts a link request refused by the full rate limit `limit`.
    pub(crate) fn link_refused(&self, limit: &'static str) {
        self.link_requests_refused
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// Counts one typed code by what came of it.
    pub(crate) fn code_attempt(&self, outcome: CodeOutcome) {
        self.code_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// A sign-in count, for tests.
    pub fn sign_ins(&self, method: &'static str, outcome: &'static str) -> u64 {
        self.sign_ins
            .get_or_create(&SignInLabels { method, outcome })
            .get()
    }

    /// A refused-link-request count, for tests.
    pub fn link_requests_refused(&self, limit: &'static str) -> u64 {
        self.link_requests_refused
            .get_or_create(&LimitLabels { limit })
            .get()
    }

    /// A code-attempt count, for tests.
    pub fn code_attempts(&self, outcome: CodeOutcome) -> u64 {
        self.code_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .get()
    }
}

/// What came of a typed one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right: the request was consumed.
    Right,
    /// Wrong, the request survives.
    Wrong,
    /// Wrong, and the request died of it.
    Killed,
    /// Refused unread: an address or IP code budget is spent.
    OverBudget,
    /// Refused unread: no live request this caller may try.
    Refused,
}

impl CodeOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CodeOutcome::Right => "right",
            CodeOutcome::Wrong => "wrong",
            CodeOutcome::Killed => "killed",
            CodeOutcome::OverBudget => "over_budget",
            CodeOutcome::Refused => "refused",
        }
    }
}

/// The outcome label of a failed sign-in.
pub(crate) fn failure(e: &AuthError) -> &'static str {
    match e {
        AuthError::InApp { error, .. } => failure(error),
        AuthError::Token { problem, .. } => match problem {
            TokenProblem::Expired => "expired",
            TokenProblem::Used | TokenProblem::CodeUsed | TokenProblem::FinishedElsewhere => "used",
            TokenProblem::TooManyTries => "too_many_tries",
            TokenProblem::WrongNumber | TokenProblem::StoppedByWrongNumber => "wrong_number",
            TokenProblem::Unknown | TokenProblem::Missing => "invalid",
        },
        AuthError::WrongCode { .. } => "wrong_code",
        AuthError::RateLimited { .. } => "rate_limited",
        AuthError::Unavailable(_) => "unavailable",
        AuthError::Internal(_) => "error",
        _ => "rejected",
    }
}

/// Reads what the gauges show at this instant: the outbox backlog (one
/// aggregate query, at most [`SCRAPE_DB_TIMEOUT`]), the pool and the keys'
/// ages. A database that does not answer sets `postern_database_up` to 0
/// and leaves the outbox gauges as they were.
pub async fn refresh(svc: &Services) {
    let m = &svc.metrics;
    let now = svc.now();
    let pool = svc.store.pool_stats();
    for (state, n) in [
        ("in_use", pool.in_use),
        ("idle", pool.idle),
        ("waiting", pool.waiting),
    ] {
        m.pool_connections
            .get_or_create(&StateLabels { state })
            .set(i64::from(n));
    }
    m.pool_max.set(i64::from(pool.max));
    let keys = svc.keys.keys();
    for alg in Alg::ALL {
        if let Some(key) = keys.signer(alg) {
            let since = key.activated_at.unwrap_or(key.created_at);
            m.signing_key_age
                .get_or_create(&AlgLabels { alg: alg.as_str() })
                .set((now - since).max(0));
        }
    }
    let backlog = tokio::time::timeout(SCRAPE_DB_TIMEOUT, async {
        svc.store.conn().await?.outbox_backlog().await
    })
    .await;
    match backlog {
        Ok(Ok(b)) => {
            m.database_up.set(1);
            m.outbox_pending.set(b.pending);
            m.outbox_oldest_age
                .set(b.oldest_created_at.map_or(0, |t| (now - t).max(0)));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: could not read the outbox backlog");
            m.database_up.set(0);
        }
        Err(_) => {
            tracing::warn!("metrics: the database did not answer in time");
            m.database_up.set(0);
        }
    }
}

/// Who asks for `/metrics`, as the web layer read the request.
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

/// The answer to a scraper that is not refused outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scrape {
    /// It may read `/metrics`.
    Allowed,
    /// It must present an admin token first (a face asks for a bearer).
    NoCredential,
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
/// Others without a credential get [`Scrape::NoCredential`], and with one
/// that is not a live admin token [`AuthError::InvalidAccessToken`].
pub async fn may_scrape<F, Fut>(
    who: Scraper<'_>,
    public: bool,
    verify_admin_token: F,
) -> Result<Scrape, AuthError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<bool, AuthError>>,
{
    if public || (who.client.to_canonical().is_loopback() && !who.forwarded) {
        return Ok(Scrape::Allowed);
    }
    let Some(authorization) = who.authorization else {
        return Ok(Scrape::NoCredential);
    };
    // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1).
    let token = authorization
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| authorization[7..].trim())
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or(AuthError::InvalidAccessToken)?;
    if verify_admin_token(token.to_owned()).await? {
        Ok(Scrape::Allowed)
    } else {
        Err(AuthError::InvalidAccessToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn decide(
        client: &str,
        forwarded: bool,
        authorization: Option<&str>,
        public: bool,
    ) -> &'static str {
        let who = Scraper {
            client: client.parse().unwrap(),
            forwarded,
            authorization,
        };
        match may_scrape(who, public, |token| async move { Ok(token == "pat_good") }).await {
            Ok(Scrape::Allowed) => "allowed",
            Ok(Scrape::NoCredential) => "no credential",
            Err(AuthError::InvalidAccessToken) => "invalid token",
            Err(e) => panic!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn loopback_admin_tokens_and_public_mode_may_scrape_and_no_one_else() {
        let (ok, ask, bad) = ("allowed", "no credential", "invalid token");
        let cases = [
            ("127.0.0.1", false, None, false, ok, "loopback"),
            ("::1", false, None, false, ok, "IPv6 loopback"),
            (
                "::ffff:127.0.0.1",
                false,
                None,
                false,
                ok,
                "mapped loopback",
            ),
            (
                "127.0.0.1",
                true,
                None,
                false,
                ask,
                "forwarded by a local proxy",
            ),
            ("203.0.113.9", false, None, false, ask, "remote"),
            (
                "10.0.0.2",
                false,
                None,
                false,
                ask,
                "private is not loopback",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer pat_good"),
                false,
                ok,
                "admin token",
            ),
            (
                "203.0.113.9",
                true,
                Some("bearer pat_good"),
                false,
                ok,
                "scheme any case",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer pat_bad"),
                false,
                bad,
                "wrong token",
            ),
            (
                "203.0.113.9",
                false,
                Some("Basic cGF0Og=="),
                false,
                bad,
                "not bearer",
            ),
            (
                "203.0.113.9",
                false,
                Some("Bearer "),
                false,
                bad,
                "empty token",
            ),
            ("203.0.113.9", true, None, true, ok, "public"),
        ];
        for (client, forwarded, auth, public, expected, case) in cases {
            assert_eq!(
                decide(client, forwarded, auth, public).await,
                expected,
                "{case}"
            );
        }
    }
}
